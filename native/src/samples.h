/* The checks every float32 audio input passes where it enters the native code
 * (frontend, resampler, feature stream), and the one finiteness check of all
 * the native code (tinyml_all_finite, also the row ring's), header-only so
 * each file inlines them.
 *
 * Range: float audio is expected in [-1, 1].  Samples beyond +-1e6 are refused
 * (as are NaN and Inf): far above any real recording (int16-scaled floats
 * reach 32768), and low enough that no sum of products in the frontend (an FFT
 * of at most 16384 points, squared) can overflow to Inf and turn the features
 * into NaN.
 *
 * Tiny samples: |x| < 2^-64 (about 5e-20, 385 dB below full scale) is read as
 * 0.  Subnormal numbers (|x| < FLT_MIN, about 1.2e-38) cost tens of cycles per
 * operation on many CPUs; flushing at the boundary keeps them, and products of
 * such samples with the window or the filter taps, out of the arithmetic,
 * portably (no FTZ/DAZ state to set and restore).  Features of such input are
 * those of silence to within float32 rounding of the log offset.
 */
#ifndef TINYML_SAMPLES_H
#define TINYML_SAMPLES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "status.h"

#define TINYML_MAX_ABS_SAMPLE 1e6f
#define TINYML_MIN_ABS_SAMPLE 5.42101086242752217e-20f /* 2^-64 */

static inline uint32_t tinyml_abs_bits(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof(bits));
    return bits & 0x7fffffffu;
}

/* Whether no x[i] is NaN or infinite: the one finiteness check of the native
 * code (on the bits, a loop without early exit that the compiler vectorises). */
static inline int tinyml_all_finite(const float *x, size_t n)
{
    uint32_t non_finite = 0;
    for (size_t i = 0; i < n; i++)
        non_finite |= tinyml_abs_bits(x[i]) >= 0x7f800000u;
    return non_finite == 0;
}

/* TINYML_OK when every sample is finite with |x| <= TINYML_MAX_ABS_SAMPLE, else
 * TINYML_ERR_NON_FINITE (some NaN or Inf) or TINYML_ERR_OUT_OF_RANGE.
 * *has_tiny (when not NULL): whether some nonzero |x| < TINYML_MIN_ABS_SAMPLE.
 * Integer compares on the bits (NaN and Inf have the largest), a loop the
 * compiler vectorises. */
static inline int tinyml_scan_samples(const float *x, size_t n, int *has_tiny)
{
    const uint32_t max_bits = tinyml_abs_bits(TINYML_MAX_ABS_SAMPLE);
    const uint32_t min_bits = tinyml_abs_bits(TINYML_MIN_ABS_SAMPLE);
    uint32_t big = 0, tiny = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t a = tinyml_abs_bits(x[i]);
        big |= a > max_bits;
        tiny |= (a - 1u) < min_bits - 1u; /* 0 < a < min_bits */
    }
    if (has_tiny)
        *has_tiny = tiny != 0;
    if (!big)
        return TINYML_OK;
    /* the rare case: say which */
    return tinyml_all_finite(x, n) ? TINYML_ERR_OUT_OF_RANGE : TINYML_ERR_NON_FINITE;
}

/* dst[i] = src[i], or 0 where |src[i]| < TINYML_MIN_ABS_SAMPLE (dst may be src). */
static inline void tinyml_copy_flushing_tiny(float *dst, const float *src, size_t n)
{
    const uint32_t min_bits = tinyml_abs_bits(TINYML_MIN_ABS_SAMPLE);
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, src + i, sizeof(bits));
        bits &= 0u - (uint32_t)((bits & 0x7fffffffu) >= min_bits); /* all ones to keep, 0 to flush */
        memcpy(dst + i, &bits, sizeof(bits));
    }
}

#endif
