/* Live audio to feature windows in one call per chunk: resampler, streaming
 * frontend and the ring of the last `window_rows` frames chained in C, so a
 * hop of audio crosses from Python into C once (and once more per window).
 *
 *   push(chunk)          energy of the chunk (sum of squares, double) and its
 *                        finiteness in one pass; then resample, compute the
 *                        frames that became ready, keep them pending;
 *   next_window(out)     move pending frames into the ring up to the next
 *                        decision point (every hop_frames frames once the
 *                        ring is full); there, copy the window (oldest frame
 *                        first) into out, resized bilinearly when the model
 *                        input is (tinyml_resize_bilinear), and return its last
 *                        frame's index;
 *   flush()              end of the input: the resampler's tail (as if
 *                        silence followed, which makes the frames those of
 *                        the whole input resampled one-shot) goes through the
 *                        frontend; next_window() then hands out the remaining
 *                        windows and, optionally, one last window ending at
 *                        the last frame.  push() is refused until reset().
 *
 * Decisions are tied to frames, so the windows do not depend on how the audio
 * was chunked.  The pieces are the ones of resample.h, frontend.h and ring.h,
 * unchanged: the frames equal those of the separate objects bit for bit.
 */
#ifndef TINYML_FEATURE_STREAM_H
#define TINYML_FEATURE_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "frontend.h"
#include "resample.h"
#include "ring.h"

/* RMS level of the last window_samples samples, kept per pushed chunk: whole
 * chunks are dropped while the rest still covers the window, so the window is
 * exact to within one chunk. */
typedef struct {
    double energy;  /* sum of squares of the chunk */
    size_t samples;
} tinyml_level_chunk;

typedef struct {
    tinyml_level_chunk *chunks; /* ring, grown when full */
    size_t capacity, first, held;
    double sum_squares;         /* of the chunks held */
    size_t samples;             /* of the chunks held */
    size_t window_samples;
} tinyml_level_meter;

/* TINYML_OK, TINYML_ERR_INVALID_ARGUMENT (window_samples is 0) or TINYML_ERR_NO_MEMORY. */
int tinyml_level_meter_init(tinyml_level_meter *m, size_t window_samples);
void tinyml_level_meter_free(tinyml_level_meter *m);
void tinyml_level_meter_reset(tinyml_level_meter *m);
/* Adds a chunk (nothing for samples == 0): TINYML_OK, or TINYML_ERR_NO_MEMORY (unchanged). */
int tinyml_level_meter_add(tinyml_level_meter *m, double energy, size_t samples);
/* 10 log10(mean square), at least silence_dbfs (also when nothing or only zeros is held). */
double tinyml_level_meter_dbfs(const tinyml_level_meter *m, double silence_dbfs);

typedef struct {
    int resampling;            /* 0: input already at the frontend's rate */
    tinyml_resampler resampler;
    tinyml_frontend *frontend;    /* owned */
    tinyml_frontend_stream *frames;        /* owned */
    tinyml_row_ring window;
    size_t num_features;
    int resize_rows, resize_cols; /* the window handed out resized to this; 0, 0: as it is */
    float *resize_src;         /* window_rows x num_features, the window before its resize */
    tinyml_lerp_index *resize_rows_index, *resize_cols_index; /* computed once */
    float *resampled;          /* one chunk after resampling */
    size_t resampled_capacity; /* floats */
    float *pending;            /* frames computed, not yet in the ring */
    size_t pending_capacity;   /* frames */
    size_t pending_first, pending_end;
    size_t hop_frames;
    size_t frames_until_window;
    int64_t frames_emitted;    /* frames moved into the ring since reset */
    int flushed;               /* flush() ran since reset: push() is refused */
    int last_window;           /* after flush: a last window ends at the last frame */
    tinyml_level_meter level;  /* of the input pushed */
} tinyml_feature_stream;

/* filter: NULL when no resampling is needed (else copied).  frontend: taken
 * over (destroyed by free, also when init fails).  resize_rows, resize_cols:
 * the shape next_window() writes (0, 0: window_rows x num_features, no
 * resize).  TINYML_OK, TINYML_ERR_NO_MEMORY, or TINYML_ERR_INVALID_ARGUMENT
 * when a size is 0 or negative. */
int tinyml_feature_stream_init(tinyml_feature_stream *s, const tinyml_polyphase *filter, tinyml_frontend *frontend,
                               size_t window_rows, size_t hop_frames, size_t level_window_samples,
                               int resize_rows, int resize_cols);
void tinyml_feature_stream_free(tinyml_feature_stream *s);
void tinyml_feature_stream_reset(tinyml_feature_stream *s);

/* Sum of x[i]^2 in double; NaN or infinite exactly when some x[i] is. */
double tinyml_energy(const float *x, size_t n);

/* Consumes n samples and adds them to the level meter: TINYML_OK,
 * TINYML_ERR_NON_FINITE (NaN or Inf), TINYML_ERR_OUT_OF_RANGE (a sample beyond
 * +-TINYML_MAX_ABS_SAMPLE), TINYML_ERR_FLUSHED (push() after flush() without a
 * reset(); all three: nothing consumed, *energy still set) or
 * TINYML_ERR_NO_MEMORY.  *energy: the chunk's sum of squares. */
int tinyml_feature_stream_push(tinyml_feature_stream *s, const float *x, size_t n, double *energy);

/* Ends the input (see above).  *new_frames: frames the resampler's tail
 * completed (0 without resampling, and on a second flush).  last_window:
 * whether next_window() ends with a window at the last frame when the frames
 * after the last decision point do not reach the next one (the window must
 * still be full: a stream of fewer than window_rows frames gives none).
 * TINYML_OK, or TINYML_ERR_NO_MEMORY (nothing changed). */
int tinyml_feature_stream_flush(tinyml_feature_stream *s, int last_window, int64_t *new_frames);

/* See above: the window's last frame index (0-based, since reset) with the
 * window in out (window_rows x num_features floats, or resize_rows x
 * resize_cols), or -1 (no index, not a status) when the pending frames
 * reach no decision point.  TINYML_ERR_NON_FINITE when a frame is NaN or
 * infinite (bounded input never gives one): those frames are dropped and the
 * window starts filling again, so the stream goes on. */
int64_t tinyml_feature_stream_next_window(tinyml_feature_stream *s, float *out);

#endif
