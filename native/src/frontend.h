/* Audio frontend: framing, periodic Hann window, real FFT, magnitude, and then
 * either the magnitude itself, log-mel, or MFCC, computed as tf.signal
 * computes them, or PCEN of the mel energies.  The config describes frames
 * only; a model input's bilinear resize (tf.image.resize) is tinyml_resize_bilinear,
 * applied to whole clips by tinyml_frontend_compute_clips and to each window by
 * the feature stream.
 *
 * The caller (the Python layer) validates parameters and builds the window, the
 * sparse mel filterbank and the DCT matrix; this code only runs the loops.
 * Frames are processed TINYML_LANES at a time, interleaved, so the FFT and the
 * per-bin loops vectorise across frames.
 */
#ifndef TINYML_FRONTEND_H
#define TINYML_FRONTEND_H

#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TINYML_LANES 8

enum tinyml_feature_kind { TINYML_SPECTROGRAM = 0, TINYML_LOG_MEL = 1, TINYML_MFCC = 2, TINYML_PCEN = 3 };

typedef struct {
    int frame_length_samples;
    int frame_step_samples;
    int fft_length;
    int feature_kind; /* enum tinyml_feature_kind */
    int num_mel_bins;
    int num_mfccs;
    float log_offset;
    /* PCEN (Wang et al. 2017) of the mel energies E, per channel, frame by frame:
     *   M = E on the first frame, then M = (1 - s) M + s E   (M < FLT_MIN: 0)
     *   out = (E (epsilon + M)^-alpha + delta)^power - delta^power
     * The smoother M carries across frames: over a stream, from its start (or
     * reset); in batch, from each clip's first frame. */
    float pcen_smoothing; /* s, per frame, in (0, 1] */
    float pcen_alpha, pcen_delta, pcen_power, pcen_epsilon;
    /* Noise reduction inside PCEN (as tflite-micro's microfrontend reduces
     * noise before its PCAN): a slow estimate N of each channel's energy,
     * carried like M,
     *   N = E on the first frame, then N = (1 - n) N + n E   (N < FLT_MIN: 0)
     * and the numerator above takes max(E - N, noise_min_remaining * E) in
     * place of E (M still follows the whole E).  noise_smoothing 0: none. */
    float noise_smoothing;     /* n, per frame, in [0, 1] */
    float noise_min_remaining; /* in [0, 1] */
} tinyml_frontend_config;

typedef struct tinyml_frontend tinyml_frontend;

/* window:          frame_length_samples floats
 * mel_first_bin:   num_mel_bins ints, first FFT bin of each filter
 * mel_bin_count:   num_mel_bins ints, consecutive bins each filter covers
 * mel_weights:     the filters' weights, concatenated in filter order
 * dct:             num_mfccs x num_mel_bins, row-major (MFCC only, else NULL)
 * Everything is copied.  NULL when out of memory. */
tinyml_frontend *tinyml_frontend_create(const tinyml_frontend_config *config, const float *window,
                                        const int *mel_first_bin, const int *mel_bin_count,
                                        const float *mel_weights, const float *dct);
void tinyml_frontend_destroy(tinyml_frontend *frontend);

/* Values per frame. */
int tinyml_frontend_num_features(const tinyml_frontend *frontend);
/* Frames of a clip of num_samples samples (0 when shorter than one frame). */
int64_t tinyml_frontend_num_frames(const tinyml_frontend *frontend, int64_t num_samples);

/* Features of num_clips clips of num_samples samples each, clip c starting at
 * sample c * num_samples of `audio` (int16 when audio_is_int16, scaled by
 * 1/32768, else float32, checked and with tiny samples flushed to zero as
 * samples.h says).  Writes num_clips * frames * features floats, or, when
 * resize_rows > 0, each clip's frames x features resized by tinyml_resize_bilinear
 * to resize_rows x resize_cols (num_clips * resize_rows * resize_cols floats).
 * Returns TINYML_OK or a negative enum tinyml_status; never touches Python. */
int tinyml_frontend_compute_clips(const tinyml_frontend *frontend, const void *audio, int audio_is_int16,
                                  int64_t num_clips, int64_t num_samples, int resize_rows, int resize_cols,
                                  float *out);

/* Bilinear resize of a row-major in_rows x in_cols image to out_rows x
 * out_cols, as tf.image.resize (TF2: half-pixel centres, no antialiasing)
 * computes it, float for float.  All sizes >= 1.  TINYML_OK or TINYML_ERR_NO_MEMORY. */
int tinyml_resize_bilinear(const float *src, int in_rows, int in_cols, float *dst, int out_rows, int out_cols);

/* The same in two steps, for a resize repeated on images of one size (the
 * feature stream's windows): the interpolation indices of one axis
 * (out_size entries), then the resize with the indices of both axes. */
typedef struct {
    int lower, upper; /* the input rows (columns) read, within [0, in_size) */
    float lerp;       /* weight of upper */
} tinyml_lerp_index;
void tinyml_resize_indices(int in_size, int out_size, tinyml_lerp_index *idx);
void tinyml_resize_apply(const float *src, int in_cols, const tinyml_lerp_index *ys, int out_rows,
                         const tinyml_lerp_index *xs, int out_cols, float *dst);

/* ---- streaming ----------------------------------------------------------- */

typedef struct tinyml_frontend_stream tinyml_frontend_stream;

tinyml_frontend_stream *tinyml_frontend_stream_create(const tinyml_frontend *frontend);
void tinyml_frontend_stream_destroy(tinyml_frontend_stream *stream);
void tinyml_frontend_stream_reset(tinyml_frontend_stream *stream);
/* Frames a push of num_samples more samples will return. */
int64_t tinyml_frontend_stream_frames_after(const tinyml_frontend_stream *stream, int64_t num_samples);
/* Consumes the chunk (float32 checked and flushed as in compute_clips);
 * writes tinyml_frontend_stream_frames_after(stream, n) frames x features floats to out.
 * Returns the frame count or a negative tinyml_status (the state is unchanged on
 * TINYML_ERR_NON_FINITE and TINYML_ERR_OUT_OF_RANGE). */
int64_t tinyml_frontend_stream_push(tinyml_frontend_stream *stream, const void *chunk, int chunk_is_int16, int64_t n,
                                    float *out);

#ifdef __cplusplus
}
#endif

#endif
