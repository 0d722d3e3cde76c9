# distutils: sources = native/src/resample.c
"""Thin native layer of the polyphase resampler; filter design, validation and docs live in native.resample."""
import numpy as np


# Taps per phase must be a multiple of this: the C kernel takes taps four at a time.
TAP_BLOCK = TINYML_RESAMPLE_TAP_BLOCK


def scan_samples(const float[::1] x):
    """0 when every sample is finite and within the range of samples.h, else its negative status."""
    cdef int status = 0
    if x.shape[0] == 0:
        return 0
    with nogil:
        status = tinyml_scan_samples(&x[0], x.shape[0], NULL)
    return status


def resample_batch(const float[::1] x, size_t up, size_t down, size_t half_len,
                   const float[:, ::1] phases, float[::1] out):
    """Fill out (all n_out outputs) from x; phases is (up, taps_per_phase), validated by the caller."""
    cdef tinyml_polyphase filter = polyphase_filter(up, down, half_len, phases)
    cdef float dummy = 0.0
    cdef const float *samples = &dummy  # any valid pointer when x is empty: it is never read
    cdef int status = 0
    if out.shape[0] == 0:
        return
    if x.shape[0] > 0:
        samples = &x[0]
    with nogil:
        status = tinyml_resample_batch(&filter, samples, x.shape[0], &out[0], out.shape[0])
    if status != 0:
        raise MemoryError("cannot allocate the resampler's work memory")


cdef class ResamplerCore:
    """C state of one streaming resampler (see native.resample.Resampler)."""

    def __cinit__(self, size_t up, size_t down, size_t half_len, const float[:, ::1] phases):
        cdef tinyml_polyphase filter = polyphase_filter(up, down, half_len, phases)
        self.ready = False
        if tinyml_resampler_init(&self.state, &filter) != 0:
            raise MemoryError("cannot allocate the resampler state")
        self.ready = True

    def __dealloc__(self):
        if self.ready:
            tinyml_resampler_free(&self.state)

    def process(self, const float[::1] chunk):
        """Consume chunk, return the outputs that became ready (float32 array)."""
        cdef size_t n = chunk.shape[0]
        cdef size_t count = 0
        cdef int status = 0
        self._check_idle()
        count = tinyml_resampler_outputs_for(&self.state, n)
        out_array = np.empty(count, dtype=np.float32)
        cdef float[::1] out = out_array
        cdef float dummy = 0.0
        cdef const float *samples = &dummy
        cdef float *outputs = &dummy
        if n > 0:
            samples = &chunk[0]
        if count > 0:
            outputs = &out[0]
        self.busy = True
        try:
            with nogil:
                status = tinyml_resampler_process(&self.state, samples, n, outputs)
        finally:
            self.busy = False
        if status != 0:
            raise MemoryError("cannot grow the resampler buffer")
        return out_array

    def flush(self):
        """Outputs still owed for the input so far (as if silence followed), then reset."""
        cdef size_t count = 0
        cdef int status = 0
        self._check_idle()
        count = tinyml_resampler_flush_outputs(&self.state)
        out_array = np.empty(count, dtype=np.float32)
        cdef float[::1] out = out_array
        cdef float dummy = 0.0
        cdef float *outputs = &dummy
        if count > 0:
            outputs = &out[0]
        self.busy = True
        try:
            with nogil:
                status = tinyml_resampler_flush(&self.state, outputs)
        finally:
            self.busy = False
        if status != 0:
            raise MemoryError("cannot grow the resampler buffer")
        return out_array

    def reset(self):
        self._check_idle()
        tinyml_resampler_reset(&self.state)

    cdef _check_idle(self):
        if self.busy:
            raise RuntimeError("Resampler used from two threads at once: it is not thread-safe")
