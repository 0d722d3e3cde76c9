# Declarations of the C frontend (native/src/fft.h, native/src/frontend.h) and of the status codes of all
# the native code (native/src/status.h).
from libc.stdint cimport int16_t, int64_t


cdef extern from "fft.h" nogil:
    ctypedef struct tinyml_fft_plan:
        pass
    tinyml_fft_plan *tinyml_fft_plan_create(int n)
    void tinyml_fft_plan_destroy(tinyml_fft_plan *plan)
    int tinyml_fft_largest_radix(const tinyml_fft_plan *plan)
    int tinyml_fft_chirp_z_length(const tinyml_fft_plan *plan)
    size_t tinyml_rfft_work_floats(const tinyml_fft_plan *plan, int lanes)
    void tinyml_rfft(const tinyml_fft_plan *plan, int lanes, const float *x,
                     float *out_re, float *out_im, float *work)


cdef extern from "status.h" nogil:
    enum tinyml_status:
        TINYML_OK, TINYML_ERR_NO_MEMORY, TINYML_ERR_NON_FINITE, TINYML_ERR_TOO_SHORT, TINYML_ERR_OUT_OF_RANGE,
        TINYML_ERR_INVALID_ARGUMENT, TINYML_ERR_FLUSHED


cdef extern from "frontend.h" nogil:
    enum: TINYML_LANES
    enum tinyml_feature_kind:
        TINYML_SPECTROGRAM, TINYML_LOG_MEL, TINYML_MFCC, TINYML_PCEN

    ctypedef struct tinyml_frontend_config:
        int frame_length_samples
        int frame_step_samples
        int fft_length
        int feature_kind
        int num_mel_bins
        int num_mfccs
        float log_offset
        float pcen_smoothing
        float pcen_alpha
        float pcen_delta
        float pcen_power
        float pcen_epsilon
        float noise_smoothing
        float noise_min_remaining

    ctypedef struct tinyml_frontend:
        pass
    ctypedef struct tinyml_frontend_stream:
        pass

    tinyml_frontend *tinyml_frontend_create(const tinyml_frontend_config *config, const float *window,
                                            const int *mel_first_bin, const int *mel_bin_count,
                                            const float *mel_weights, const float *dct)
    void tinyml_frontend_destroy(tinyml_frontend *frontend)
    int tinyml_frontend_num_features(const tinyml_frontend *frontend)
    int64_t tinyml_frontend_num_frames(const tinyml_frontend *frontend, int64_t num_samples)
    int tinyml_frontend_compute_clips(const tinyml_frontend *frontend, const void *audio, int audio_is_int16,
                                      int64_t num_clips, int64_t num_samples, int resize_rows, int resize_cols,
                                      float *out)
    int tinyml_resize_bilinear(const float *src, int in_rows, int in_cols, float *dst, int out_rows, int out_cols)

    tinyml_frontend_stream *tinyml_frontend_stream_create(const tinyml_frontend *frontend)
    void tinyml_frontend_stream_destroy(tinyml_frontend_stream *stream)
    void tinyml_frontend_stream_reset(tinyml_frontend_stream *stream)
    int64_t tinyml_frontend_stream_frames_after(const tinyml_frontend_stream *stream, int64_t num_samples)
    int64_t tinyml_frontend_stream_push(tinyml_frontend_stream *stream, const void *chunk, int chunk_is_int16,
                                        int64_t n, float *out)


cdef class FrontendConfig:
    """One frontend, typed: the C config and the tables it is built from (native.frontend.frontend_config)."""
    cdef tinyml_frontend_config config
    cdef readonly object window, mel_first_bin, mel_bin_count, mel_weights, dct  # numpy arrays, kept alive
    cdef const float[::1] _window
    cdef const int[::1] _mel_first_bin
    cdef const int[::1] _mel_bin_count
    cdef const float[::1] _mel_weights
    cdef const float[::1] _dct


cdef inline tinyml_frontend *new_frontend(FrontendConfig config):
    """The C frontend of config (NULL when out of memory).

    Inline in this .pxd so each extension creates the frontend with its own
    copy of the C code that then runs it."""
    return tinyml_frontend_create(
        &config.config, &config._window[0],
        &config._mel_first_bin[0] if config._mel_first_bin.shape[0] else NULL,
        &config._mel_bin_count[0] if config._mel_bin_count.shape[0] else NULL,
        &config._mel_weights[0] if config._mel_weights.shape[0] else NULL,
        &config._dct[0] if config._dct.shape[0] else NULL)
