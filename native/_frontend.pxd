# Declarations of the C frontend (native/src/fft.h, native/src/frontend.h).
from libc.stdint cimport int16_t, int64_t


cdef extern from "fft.h" nogil:
    ctypedef struct tmf_fft_plan:
        pass
    tmf_fft_plan *tmf_fft_plan_create(int n)
    void tmf_fft_plan_destroy(tmf_fft_plan *plan)
    int tmf_fft_largest_radix(const tmf_fft_plan *plan)
    int tmf_fft_chirp_z_length(const tmf_fft_plan *plan)
    size_t tmf_rfft_work_floats(const tmf_fft_plan *plan, int lanes)
    void tmf_rfft(const tmf_fft_plan *plan, int lanes, const float *x,
                  float *out_re, float *out_im, float *work)


cdef extern from "frontend.h" nogil:
    enum: TMF_LANES
    enum tmf_status:
        TMF_OK, TMF_ERR_NO_MEMORY, TMF_ERR_NON_FINITE, TMF_ERR_TOO_SHORT, TMF_ERR_OUT_OF_RANGE
    enum tmf_feature_kind:
        TMF_SPECTROGRAM, TMF_LOG_MEL, TMF_MFCC, TMF_PCEN

    ctypedef struct tmf_frontend_config:
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

    ctypedef struct tmf_frontend:
        pass
    ctypedef struct tmf_stream:
        pass

    tmf_frontend *tmf_frontend_create(const tmf_frontend_config *config, const float *window,
                                      const int *mel_first_bin, const int *mel_bin_count,
                                      const float *mel_weights, const float *dct)
    void tmf_frontend_destroy(tmf_frontend *frontend)
    int tmf_frontend_num_features(const tmf_frontend *frontend)
    int64_t tmf_frontend_num_frames(const tmf_frontend *frontend, int64_t num_samples)
    int tmf_frontend_compute_clips(const tmf_frontend *frontend, const void *audio, int audio_is_int16,
                                   int64_t num_clips, int64_t num_samples, int resize_rows, int resize_cols,
                                   float *out)
    int tmf_resize_bilinear(const float *src, int in_rows, int in_cols, float *dst, int out_rows, int out_cols)

    tmf_stream *tmf_stream_create(const tmf_frontend *frontend)
    void tmf_stream_destroy(tmf_stream *stream)
    void tmf_stream_reset(tmf_stream *stream)
    int64_t tmf_stream_frames_after(const tmf_stream *stream, int64_t num_samples)
    int64_t tmf_stream_push(tmf_stream *stream, const void *chunk, int chunk_is_int16,
                            int64_t n, float *out)


cdef class FrontendConfig:
    """One frontend, typed: the C config and the tables it is built from (native.frontend.frontend_config)."""
    cdef tmf_frontend_config config
    cdef readonly object window, mel_first_bin, mel_bin_count, mel_weights, dct  # numpy arrays, kept alive
    cdef const float[::1] _window
    cdef const int[::1] _mel_first_bin
    cdef const int[::1] _mel_bin_count
    cdef const float[::1] _mel_weights
    cdef const float[::1] _dct


cdef inline tmf_frontend *new_frontend(FrontendConfig config):
    """The C frontend of config (NULL when out of memory).

    Inline in this .pxd so each extension creates the frontend with its own
    copy of the C code that then runs it."""
    return tmf_frontend_create(
        &config.config, &config._window[0],
        &config._mel_first_bin[0] if config._mel_first_bin.shape[0] else NULL,
        &config._mel_bin_count[0] if config._mel_bin_count.shape[0] else NULL,
        &config._mel_weights[0] if config._mel_weights.shape[0] else NULL,
        &config._dct[0] if config._dct.shape[0] else NULL)
