/* Polyphase rational resampler (up / down) with a filter designed by the caller.
 *
 * Output sample m is  y[m] = sum_k x[k] * h[m*down + half_len - k*up]  over the
 * input samples k, with h the prototype low-pass filter of 2*half_len + 1 taps
 * (zero outside) and x zero outside the input: the definition that
 * scipy.signal.resample_poly computes with upfirdn and then trims.
 *
 * Only the taps of one phase p = (m*down + half_len) % up meet input samples
 * in output m, so the filter is stored as `up` rows of `taps_per_phase` taps,
 * oldest input first: output m is the dot product of row p with the
 * taps_per_phase consecutive input samples ending at its newest one,
 * base = (m*down + half_len) / up.
 *
 * Outputs m, m + up, m + 2*up, ... share a phase and their windows start
 * `down` samples apart.  The input window is therefore split into `down`
 * rows (sample t goes to row t % down), in which those outputs' samples for
 * one tap are consecutive: the kernel adds tap * row[k] into the sums of
 * many outputs k at once, a loop compilers vectorise without reassociating
 * anything.  Each output is one sequential sum over its taps, computed the
 * same way by the one-shot and the streaming form, so the two agree bit for
 * bit.
 */
#ifndef TINYML_RESAMPLE_H
#define TINYML_RESAMPLE_H

#include <stddef.h>

#include "status.h"

/* taps_per_phase must be a multiple of this (rows padded with zero taps). */
#define TINYML_RESAMPLE_TAP_BLOCK 4

typedef struct {
    size_t up, down;         /* reduced ratio, both >= 1 */
    size_t half_len;         /* half length of the prototype filter, in taps */
    size_t taps_per_phase;   /* a positive multiple of TINYML_RESAMPLE_TAP_BLOCK */
    const float *phases;     /* up * taps_per_phase taps, row p = phase p */
} tinyml_polyphase;

/* Input samples are expected checked by the caller (tinyml_scan_samples in
 * samples.h: finite, within +-TINYML_MAX_ABS_SAMPLE); tiny ones are read as 0
 * (flushed) here, so no subnormal number slows the filter down. */

/* One-shot: y[0:n_out] from x[0:n_in] (x zero outside).  TINYML_OK, or
 * TINYML_ERR_NO_MEMORY. */
int tinyml_resample_batch(const tinyml_polyphase *filter, const float *x, size_t n_in,
                          float *y, size_t n_out);

/* Streaming state: the input samples still needed, as a window into a
 * growable buffer, and the position of the next output in it. */
typedef struct {
    tinyml_polyphase filter; /* phases owned (copied at init) */
    float *buffer;
    size_t length, capacity; /* floats in use / allocated */
    size_t next_base;        /* buffer index of the newest sample the next output uses */
    size_t next_phase;
    float *work;             /* split input, reused between calls */
    size_t work_capacity;
} tinyml_resampler;

/* TINYML_OK, or TINYML_ERR_NO_MEMORY.  The phases are copied. */
int tinyml_resampler_init(tinyml_resampler *state, const tinyml_polyphase *filter);
void tinyml_resampler_free(tinyml_resampler *state);
void tinyml_resampler_reset(tinyml_resampler *state);

/* Outputs that process() of n_new more samples will produce. */
size_t tinyml_resampler_outputs_for(const tinyml_resampler *state, size_t n_new);

/* Consumes n samples and writes outputs_for(n) outputs to y.  TINYML_OK, or
 * TINYML_ERR_NO_MEMORY (state unchanged). */
int tinyml_resampler_process(tinyml_resampler *state, const float *x, size_t n, float *y);

/* Outputs that flush() will produce: those the one-shot resampler computes
 * from the end of the input (treating what follows as zeros). */
size_t tinyml_resampler_flush_outputs(const tinyml_resampler *state);

/* Writes flush_outputs() outputs to y, then resets.  TINYML_OK, or
 * TINYML_ERR_NO_MEMORY (state unchanged). */
int tinyml_resampler_flush(tinyml_resampler *state, float *y);

#endif
