# Declarations of the polyphase resampler in src/resample.h and of its thin owner.

cdef extern from "samples.h" nogil:
    int tinyml_scan_samples(const float *x, size_t n, int *has_tiny)


cdef extern from "resample.h" nogil:
    enum: TINYML_RESAMPLE_TAP_BLOCK
    ctypedef struct tinyml_polyphase:
        size_t up
        size_t down
        size_t half_len
        size_t taps_per_phase
        const float *phases
    int tinyml_resample_batch(const tinyml_polyphase *filter, const float *x, size_t n_in,
                              float *y, size_t n_out)

    ctypedef struct tinyml_resampler:
        tinyml_polyphase filter
    int tinyml_resampler_init(tinyml_resampler *state, const tinyml_polyphase *filter)
    void tinyml_resampler_free(tinyml_resampler *state)
    void tinyml_resampler_reset(tinyml_resampler *state)
    size_t tinyml_resampler_outputs_for(const tinyml_resampler *state, size_t n_new)
    int tinyml_resampler_process(tinyml_resampler *state, const float *x, size_t n, float *y)
    size_t tinyml_resampler_flush_outputs(const tinyml_resampler *state)
    int tinyml_resampler_flush(tinyml_resampler *state, float *y)


cdef inline tinyml_polyphase polyphase_filter(size_t up, size_t down, size_t half_len,
                                              const float[:, ::1] phases) except *:
    """A view of phases (up x taps, built by native.resample) as the C filter; checks its shape."""
    cdef tinyml_polyphase filter
    if (up == 0 or down == 0 or phases.shape[0] != <Py_ssize_t>up or phases.shape[1] == 0
            or phases.shape[1] % TINYML_RESAMPLE_TAP_BLOCK != 0):
        raise ValueError(f"phases must have shape ({up}, a positive multiple of {TINYML_RESAMPLE_TAP_BLOCK})")
    filter.up = up
    filter.down = down
    filter.half_len = half_len
    filter.taps_per_phase = phases.shape[1]
    filter.phases = &phases[0, 0]
    return filter


cdef class ResamplerCore:
    cdef tinyml_resampler state
    cdef bint ready
    cdef bint busy      # a process() or flush() runs without the GIL
    cdef _check_idle(self)
