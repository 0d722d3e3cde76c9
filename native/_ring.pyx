# distutils: sources = native/src/ring.c
"""Thin owners of the C ring buffers; validation and documentation live in native.ring.

The C calls run without the GIL. Flags, tested and set while the GIL is held,
turn a second concurrent producer (or consumer, or RowRing user) into a
RuntimeError instead of a data race.
"""


cdef class AudioRingCore:
    """C state of one single-producer/single-consumer float32 ring (see native.ring.AudioRing)."""

    def __cinit__(self, size_t capacity):
        self.ready = False
        if tinyml_audio_ring_init(&self.ring, capacity) != 0:
            raise MemoryError(f"cannot allocate an audio ring of {capacity} samples")
        self.ready = True

    def __dealloc__(self):
        if self.ready:
            tinyml_audio_ring_free(&self.ring)

    def write(self, const float[::1] chunk):
        """Producer: copy what fits, count the rest as overrun; return samples accepted."""
        cdef size_t n = chunk.shape[0], accepted = 0
        if self.writing:
            raise RuntimeError("AudioRing.write() called from two threads at once: it has one producer")
        if n == 0:
            return 0
        self.writing = True
        try:
            with nogil:
                accepted = tinyml_audio_ring_write(&self.ring, &chunk[0], n)
        finally:
            self.writing = False
        return accepted

    def read_into(self, float[::1] out):
        """Consumer: fill out with up to len(out) oldest samples; return how many."""
        cdef size_t n = out.shape[0], taken = 0
        self._enter_consumer()
        if n == 0:
            return 0
        self.reading = True
        try:
            with nogil:
                taken = tinyml_audio_ring_read(&self.ring, &out[0], n)
        finally:
            self.reading = False
        return taken

    def discard(self):
        self._enter_consumer()
        return tinyml_audio_ring_discard(&self.ring)

    cdef _enter_consumer(self):
        if self.reading:
            raise RuntimeError("AudioRing read from two threads at once: it has one consumer")

    @property
    def available(self):
        return tinyml_audio_ring_available(&self.ring)

    @property
    def overrun_samples(self):
        return tinyml_audio_ring_overrun_samples(&self.ring)

    @property
    def overrun_events(self):
        return tinyml_audio_ring_overrun_events(&self.ring)


def audio_ring_max_capacity():
    return tinyml_audio_ring_max_capacity()


cdef class RowRingCore:
    """C state of one ring of the last `rows` float32 rows (see native.ring.RowRing)."""

    def __cinit__(self, size_t rows, size_t cols):
        self.ready = False
        if tinyml_row_ring_init(&self.ring, rows, cols) != 0:
            raise MemoryError(f"cannot allocate a row ring of {rows} x {cols}")
        self.ready = True

    def __dealloc__(self):
        if self.ready:
            tinyml_row_ring_free(&self.ring)

    def push(self, const float[:, ::1] block):
        """Push rows; return False (nothing changed) when a value is NaN or infinite."""
        cdef size_t n_rows = block.shape[0]
        cdef int status = 0
        self._check_idle()
        if block.shape[1] != <Py_ssize_t>self.ring.cols:
            raise ValueError(f"block has {block.shape[1]} columns, ring has {self.ring.cols}")
        if n_rows == 0:
            return True
        self.busy = True
        try:
            with nogil:
                status = tinyml_row_ring_push(&self.ring, &block[0, 0], n_rows)
        finally:
            self.busy = False
        return status == 0

    def snapshot_into(self, float[:, ::1] out):
        """Copy the held rows, oldest first, into out[:count]."""
        self._check_idle()
        if out.shape[0] < <Py_ssize_t>self.ring.count or out.shape[1] != <Py_ssize_t>self.ring.cols:
            raise ValueError("snapshot buffer too small")
        if self.ring.count == 0:
            return
        self.busy = True
        try:
            with nogil:
                tinyml_row_ring_snapshot(&self.ring, &out[0, 0])
        finally:
            self.busy = False

    def clear(self):
        self._check_idle()
        tinyml_row_ring_clear(&self.ring)

    cdef _check_idle(self):
        if self.busy:
            raise RuntimeError("RowRing used from two threads at once: it is not thread-safe")

    @property
    def count(self):
        return self.ring.count

    @property
    def total_pushed(self):
        return self.ring.total_pushed
