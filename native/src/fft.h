/* Mixed-radix FFT of real float32 signals, several frames at once.
 *
 * Layout ("lanes"): a block of `lanes` signals is stored interleaved, sample t of
 * signal f at index t * lanes + f.  Every butterfly then runs an inner loop over
 * contiguous floats that the compiler vectorises (SSE/AVX here, NEON on the Pi)
 * without intrinsics, whatever the radix.  lanes = 1 is an ordinary scalar FFT.
 *
 * Algorithm: a real FFT of even length n is a complex FFT of length n/2 on
 * (x[2t] + i x[2t+1]) followed by a split step; odd n falls back to a complex FFT
 * of length n.  The complex FFT is a Stockham autosort (no bit reversal) with
 * radix-4, 2, 3 and 5 butterflies and a generic O(p^2) butterfly for the prime
 * factor 7.  A length with a larger prime factor (641, 4093, 2 x 127) goes
 * through the chirp-z transform (Bluestein): a circular convolution computed
 * with two FFTs of a length made of 2, 3 and 5, so every length costs
 * O(n log n).  Products of 2, 3 and 5 are the fastest; chirp-z lengths cost
 * about 2.5 to 10 times as much as the nearest power of two.  All twiddles
 * are precomputed in double precision in the plan.
 */
#ifndef TINYML_FFT_H
#define TINYML_FFT_H

#include <limits.h> /* also defines __GLIBC__ on glibc systems (see below) */
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* On x86-64 with GCC and glibc (whose ifuncs target_clones needs), the hot
 * loops are also compiled for AVX2 and the best copy is picked at load time
 * (plain C, no intrinsics: the compiler vectorises the same loops 8 floats wide
 * instead of 4).  Other targets (the Pi's NEON included) use the baseline build.
 * Both copies do the same IEEE operations in the same order (no FMA contraction
 * in ISO C mode), so results do not depend on which one runs.
 * -DTINYML_NO_CLONES turns this off. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) && \
    !defined(TINYML_NO_CLONES)
#define TINYML_WIDE_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TINYML_WIDE_VECTOR_CLONES
#endif

typedef struct tinyml_fft_plan tinyml_fft_plan;


/* Plan for a real FFT of length n >= 1; NULL when out of memory. */
tinyml_fft_plan *tinyml_fft_plan_create(int n);
void tinyml_fft_plan_destroy(tinyml_fft_plan *plan);

int tinyml_fft_length(const tinyml_fft_plan *plan);

/* The largest butterfly radix the plan runs (its chirp-z sub-plan's, if any):
 * at most 7 for every length, which is what keeps every length O(n log n). */
int tinyml_fft_largest_radix(const tinyml_fft_plan *plan);
/* The length of the chirp-z convolution, or 0 when the plan does not use it. */
int tinyml_fft_chirp_z_length(const tinyml_fft_plan *plan);

/* Floats of scratch memory tinyml_rfft needs for a block of `lanes` signals. */
size_t tinyml_rfft_work_floats(const tinyml_fft_plan *plan, int lanes);

/* One-sided spectrum of `lanes` real signals of length n.
 * x:            n * lanes floats, x[t * lanes + f]
 * out_re/out_im: (n / 2 + 1) * lanes floats each, bin k of signal f at k * lanes + f
 * work:         tinyml_rfft_work_floats(plan, lanes) floats
 * No allocation, no locks: safe to call from several threads with separate work. */
void tinyml_rfft(const tinyml_fft_plan *plan, int lanes, const float *x,
                 float *out_re, float *out_im, float *work);

/* Faster path for callers that build the input themselves (saves a copy):
 * write sample t of lane f to work[tinyml_rfft_input_index(plan, t) * lanes + f]
 * for every t < n, then call tinyml_rfft_magnitude_prepared, which overwrites work
 * and stores |X[k]| for k = first_bin .. first_bin + num_bins - 1 at
 * out_magnitude[(k - first_bin) * lanes + f]. */
int tinyml_rfft_input_index(const tinyml_fft_plan *plan, int t);
void tinyml_rfft_magnitude_prepared(const tinyml_fft_plan *plan, int lanes, int first_bin, int num_bins,
                                    float *out_magnitude, float *work);

#ifdef __cplusplus
}
#endif

#endif
