# Declarations of the ring buffers in src/ring.h and of their thin owners.

cdef extern from "ring.h" nogil:
    ctypedef struct tinyml_audio_ring:
        pass
    size_t tinyml_audio_ring_max_capacity()
    int tinyml_audio_ring_init(tinyml_audio_ring *ring, size_t capacity)
    void tinyml_audio_ring_free(tinyml_audio_ring *ring)
    size_t tinyml_audio_ring_write(tinyml_audio_ring *ring, const float *src, size_t n)
    size_t tinyml_audio_ring_read(tinyml_audio_ring *ring, float *dst, size_t max_n)
    size_t tinyml_audio_ring_discard(tinyml_audio_ring *ring)
    size_t tinyml_audio_ring_available(const tinyml_audio_ring *ring)
    size_t tinyml_audio_ring_overrun_samples(const tinyml_audio_ring *ring)
    size_t tinyml_audio_ring_overrun_events(const tinyml_audio_ring *ring)

    ctypedef struct tinyml_row_ring:
        size_t rows
        size_t cols
        size_t count
        unsigned long long total_pushed
    int tinyml_row_ring_init(tinyml_row_ring *ring, size_t rows, size_t cols)
    void tinyml_row_ring_free(tinyml_row_ring *ring)
    int tinyml_row_ring_push(tinyml_row_ring *ring, const float *block, size_t n_rows)
    void tinyml_row_ring_snapshot(const tinyml_row_ring *ring, float *dst)
    void tinyml_row_ring_clear(tinyml_row_ring *ring)


cdef class AudioRingCore:
    cdef tinyml_audio_ring ring
    cdef bint ready
    cdef bint writing   # a write() is copying without the GIL
    cdef bint reading   # a read_into() is copying without the GIL
    cdef _enter_consumer(self)


cdef class RowRingCore:
    cdef tinyml_row_ring ring
    cdef bint ready
    cdef bint busy      # a push() or snapshot_into() runs without the GIL
    cdef _check_idle(self)
