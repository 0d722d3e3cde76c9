/* Mixed-radix real FFT over blocks of interleaved frames; see fft.h. */
#include "fft.h"
#include "status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STAGES 64

struct tinyml_fft_plan {
    int n;          /* real length */
    int m;          /* complex length: n / 2 for even n, n for odd n */
    int buffer_length; /* complex points per work buffer: m, or the chirp-z sub-plan's length */
    /* Chirp-z (Bluestein) when m has a prime factor above CHIRP_Z_MIN_PRIME:
     * the length-m DFT as a circular convolution of length chirp_z->m (a
     * product of 2, 3 and 5 >= 2m - 1), two FFTs of that length instead of
     * O(m p) work for the prime factor p.  NULL otherwise. */
    struct tinyml_fft_plan *chirp_z;
    float *chirp_re, *chirp_im;   /* m: w[j] = exp(-i pi j^2 / m) */
    float *kernel_re, *kernel_im; /* chirp_z->m: FFT of conj(w) wrapped around, divided by chirp_z->m */
    int num_stages;
    int radix[MAX_STAGES];
    size_t twiddle_offset[MAX_STAGES]; /* into twiddle_re/im: (radix - 1) * (sub_length / radix) */
    size_t root_offset[MAX_STAGES];    /* into root_re/im: radix roots, generic radices only */
    float *twiddle_re, *twiddle_im;
    float *root_re, *root_im;
    float *split_re, *split_im; /* exp(-2 pi i k / n), k = 0..m (even n) */
};

/* The runs a butterfly reads and writes never overlap; tell the compiler so it
 * vectorises the loop without versioning it for every pair of pointers. */
#if defined(__clang__)
#define INDEPENDENT_ITERATIONS _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define INDEPENDENT_ITERATIONS _Pragma("GCC ivdep")
#else
#define INDEPENDENT_ITERATIONS
#endif

static const double TWO_PI = 6.283185307179586476925286766559;

/* ---------------------------------------------------------------------------
 * Butterflies of one Stockham stage (decimation in frequency).
 *
 * The current sub-transforms have length sub = radix * quarter (quarter = sub /
 * radix, named `count` below); s sub-transforms are interleaved, and with the
 * lanes every (element, lane) pair is a contiguous run of span = s * lanes floats.
 * Input element (j + r * count) of every run goes into butterfly j; output k of
 * butterfly j, times exp(-2 pi i j k / sub), lands at element radix * j + k.
 * ------------------------------------------------------------------------- */

#define RUN(base, element) ((base) + (size_t)(element) * span)

/* b = c * w, or b = c where all twiddles are 1 (the last stage: `twiddled` is a
 * compile-time constant in each inlined copy, so the test costs nothing) */
#define STORE_TWIDDLED(br, bi, cr, ci, wr, wi)      \
    do {                                            \
        if (twiddled) {                             \
            (br)[t] = (cr) * (wr) - (ci) * (wi);    \
            (bi)[t] = (cr) * (wi) + (ci) * (wr);    \
        } else {                                    \
            (br)[t] = (cr);                         \
            (bi)[t] = (ci);                         \
        }                                           \
    } while (0)

static inline void stage_radix2(size_t span, size_t vec, int count, const float *tw_re, const float *tw_im,
                                const float *restrict xr, const float *restrict xi,
                                float *restrict yr, float *restrict yi, const int twiddled)
{
    for (int j = 0; j < count; j++) {
        const float *restrict a0r = RUN(xr, j), *restrict a0i = RUN(xi, j);
        const float *restrict a1r = RUN(xr, j + count), *restrict a1i = RUN(xi, j + count);
        float *restrict b0r = RUN(yr, 2 * j), *restrict b0i = RUN(yi, 2 * j);
        float *restrict b1r = RUN(yr, 2 * j + 1), *restrict b1i = RUN(yi, 2 * j + 1);
        const float w1r = tw_re[j], w1i = tw_im[j];
        for (size_t t0 = 0; t0 < span; t0 += vec)
        INDEPENDENT_ITERATIONS
        for (size_t t = t0; t < t0 + vec; t++) {
            const float dr = a0r[t] - a1r[t], di = a0i[t] - a1i[t];
            b0r[t] = a0r[t] + a1r[t];
            b0i[t] = a0i[t] + a1i[t];
            STORE_TWIDDLED(b1r, b1i, dr, di, w1r, w1i);
        }
    }
}

static inline void stage_radix3(size_t span, size_t vec, int count, const float *tw_re, const float *tw_im,
                                const float *restrict xr, const float *restrict xi,
                                float *restrict yr, float *restrict yi, const int twiddled)
{
    const float half_sqrt3 = 0.86602540378443864676f;
    for (int j = 0; j < count; j++) {
        const float *restrict a0r = RUN(xr, j), *restrict a0i = RUN(xi, j);
        const float *restrict a1r = RUN(xr, j + count), *restrict a1i = RUN(xi, j + count);
        const float *restrict a2r = RUN(xr, j + 2 * count), *restrict a2i = RUN(xi, j + 2 * count);
        float *restrict b0r = RUN(yr, 3 * j), *restrict b0i = RUN(yi, 3 * j);
        float *restrict b1r = RUN(yr, 3 * j + 1), *restrict b1i = RUN(yi, 3 * j + 1);
        float *restrict b2r = RUN(yr, 3 * j + 2), *restrict b2i = RUN(yi, 3 * j + 2);
        const float w1r = tw_re[2 * j], w1i = tw_im[2 * j];
        const float w2r = tw_re[2 * j + 1], w2i = tw_im[2 * j + 1];
        for (size_t t0 = 0; t0 < span; t0 += vec)
        INDEPENDENT_ITERATIONS
        for (size_t t = t0; t < t0 + vec; t++) {
            const float sr = a1r[t] + a2r[t], si = a1i[t] + a2i[t];
            const float dr = half_sqrt3 * (a1r[t] - a2r[t]), di = half_sqrt3 * (a1i[t] - a2i[t]);
            const float mr = a0r[t] - 0.5f * sr, mi = a0i[t] - 0.5f * si;
            const float c1r = mr + di, c1i = mi - dr; /* m - i d */
            const float c2r = mr - di, c2i = mi + dr; /* m + i d */
            b0r[t] = a0r[t] + sr;
            b0i[t] = a0i[t] + si;
            STORE_TWIDDLED(b1r, b1i, c1r, c1i, w1r, w1i);
            STORE_TWIDDLED(b2r, b2i, c2r, c2i, w2r, w2i);
        }
    }
}

static inline void stage_radix4(size_t span, size_t vec, int count, const float *tw_re, const float *tw_im,
                                const float *restrict xr, const float *restrict xi,
                                float *restrict yr, float *restrict yi, const int twiddled)
{
    for (int j = 0; j < count; j++) {
        const float *restrict a0r = RUN(xr, j), *restrict a0i = RUN(xi, j);
        const float *restrict a1r = RUN(xr, j + count), *restrict a1i = RUN(xi, j + count);
        const float *restrict a2r = RUN(xr, j + 2 * count), *restrict a2i = RUN(xi, j + 2 * count);
        const float *restrict a3r = RUN(xr, j + 3 * count), *restrict a3i = RUN(xi, j + 3 * count);
        float *restrict b0r = RUN(yr, 4 * j), *restrict b0i = RUN(yi, 4 * j);
        float *restrict b1r = RUN(yr, 4 * j + 1), *restrict b1i = RUN(yi, 4 * j + 1);
        float *restrict b2r = RUN(yr, 4 * j + 2), *restrict b2i = RUN(yi, 4 * j + 2);
        float *restrict b3r = RUN(yr, 4 * j + 3), *restrict b3i = RUN(yi, 4 * j + 3);
        const float w1r = tw_re[3 * j], w1i = tw_im[3 * j];
        const float w2r = tw_re[3 * j + 1], w2i = tw_im[3 * j + 1];
        const float w3r = tw_re[3 * j + 2], w3i = tw_im[3 * j + 2];
        for (size_t t0 = 0; t0 < span; t0 += vec)
        INDEPENDENT_ITERATIONS
        for (size_t t = t0; t < t0 + vec; t++) {
            const float s02r = a0r[t] + a2r[t], s02i = a0i[t] + a2i[t];
            const float d02r = a0r[t] - a2r[t], d02i = a0i[t] - a2i[t];
            const float s13r = a1r[t] + a3r[t], s13i = a1i[t] + a3i[t];
            const float d13r = a1r[t] - a3r[t], d13i = a1i[t] - a3i[t];
            const float c1r = d02r + d13i, c1i = d02i - d13r; /* d02 - i d13 */
            const float c2r = s02r - s13r, c2i = s02i - s13i;
            const float c3r = d02r - d13i, c3i = d02i + d13r; /* d02 + i d13 */
            b0r[t] = s02r + s13r;
            b0i[t] = s02i + s13i;
            STORE_TWIDDLED(b1r, b1i, c1r, c1i, w1r, w1i);
            STORE_TWIDDLED(b2r, b2i, c2r, c2i, w2r, w2i);
            STORE_TWIDDLED(b3r, b3i, c3r, c3i, w3r, w3i);
        }
    }
}

static inline void stage_radix5(size_t span, size_t vec, int count, const float *tw_re, const float *tw_im,
                                const float *restrict xr, const float *restrict xi,
                                float *restrict yr, float *restrict yi, const int twiddled)
{
    const float c1 = 0.30901699437494742410f;  /* cos(2 pi / 5) */
    const float c2 = -0.80901699437494742410f; /* cos(4 pi / 5) */
    const float s1 = 0.95105651629515357212f;  /* sin(2 pi / 5) */
    const float s2 = 0.58778525229247312917f;  /* sin(4 pi / 5) */
    for (int j = 0; j < count; j++) {
        const float *restrict a0r = RUN(xr, j), *restrict a0i = RUN(xi, j);
        const float *restrict a1r = RUN(xr, j + count), *restrict a1i = RUN(xi, j + count);
        const float *restrict a2r = RUN(xr, j + 2 * count), *restrict a2i = RUN(xi, j + 2 * count);
        const float *restrict a3r = RUN(xr, j + 3 * count), *restrict a3i = RUN(xi, j + 3 * count);
        const float *restrict a4r = RUN(xr, j + 4 * count), *restrict a4i = RUN(xi, j + 4 * count);
        float *restrict b0r = RUN(yr, 5 * j), *restrict b0i = RUN(yi, 5 * j);
        float *restrict b1r = RUN(yr, 5 * j + 1), *restrict b1i = RUN(yi, 5 * j + 1);
        float *restrict b2r = RUN(yr, 5 * j + 2), *restrict b2i = RUN(yi, 5 * j + 2);
        float *restrict b3r = RUN(yr, 5 * j + 3), *restrict b3i = RUN(yi, 5 * j + 3);
        float *restrict b4r = RUN(yr, 5 * j + 4), *restrict b4i = RUN(yi, 5 * j + 4);
        const float *w = tw_re + 4 * j, *v = tw_im + 4 * j;
        const float w1r = w[0], w1i = v[0], w2r = w[1], w2i = v[1];
        const float w3r = w[2], w3i = v[2], w4r = w[3], w4i = v[3];
        for (size_t t0 = 0; t0 < span; t0 += vec)
        INDEPENDENT_ITERATIONS
        for (size_t t = t0; t < t0 + vec; t++) {
            const float s14r = a1r[t] + a4r[t], s14i = a1i[t] + a4i[t];
            const float d14r = a1r[t] - a4r[t], d14i = a1i[t] - a4i[t];
            const float s23r = a2r[t] + a3r[t], s23i = a2i[t] + a3i[t];
            const float d23r = a2r[t] - a3r[t], d23i = a2i[t] - a3i[t];
            const float p1r = a0r[t] + c1 * s14r + c2 * s23r, p1i = a0i[t] + c1 * s14i + c2 * s23i;
            const float p2r = a0r[t] + c2 * s14r + c1 * s23r, p2i = a0i[t] + c2 * s14i + c1 * s23i;
            const float q1r = s1 * d14r + s2 * d23r, q1i = s1 * d14i + s2 * d23i;
            const float q2r = s2 * d14r - s1 * d23r, q2i = s2 * d14i - s1 * d23i;
            /* output k = p - i q (k = 1, 2) and p + i q (k = 4, 3) */
            const float e1r = p1r + q1i, e1i = p1i - q1r, e4r = p1r - q1i, e4i = p1i + q1r;
            const float e2r = p2r + q2i, e2i = p2i - q2r, e3r = p2r - q2i, e3i = p2i + q2r;
            b0r[t] = a0r[t] + s14r + s23r;
            b0i[t] = a0i[t] + s14i + s23i;
            STORE_TWIDDLED(b1r, b1i, e1r, e1i, w1r, w1i);
            STORE_TWIDDLED(b2r, b2i, e2r, e2i, w2r, w2i);
            STORE_TWIDDLED(b3r, b3i, e3r, e3i, w3r, w3i);
            STORE_TWIDDLED(b4r, b4i, e4r, e4i, w4r, w4i);
        }
    }
}

/* Any radix p: a direct p-point DFT per butterfly (O(p^2)); used for prime factors > 5. */
static void stage_generic(int p, size_t span, int count, const float *tw_re, const float *tw_im,
                          const float *root_re, const float *root_im,
                          const float *restrict xr, const float *restrict xi,
                          float *restrict yr, float *restrict yi)
{
    for (int j = 0; j < count; j++) {
        for (int k = 0; k < p; k++) {
            float *restrict bkr = RUN(yr, p * j + k), *restrict bki = RUN(yi, p * j + k);
            const float *restrict a0r = RUN(xr, j), *restrict a0i = RUN(xi, j);
            INDEPENDENT_ITERATIONS
        for (size_t t = 0; t < span; t++) {
                bkr[t] = a0r[t];
                bki[t] = a0i[t];
            }
            for (int r = 1; r < p; r++) {
                const int power = (int)(((long long)r * k) % p);
                const float cr = root_re[power], ci = root_im[power];
                const float *restrict arr = RUN(xr, j + r * count), *restrict ari = RUN(xi, j + r * count);
                INDEPENDENT_ITERATIONS
        for (size_t t = 0; t < span; t++) {
                    bkr[t] += arr[t] * cr - ari[t] * ci;
                    bki[t] += arr[t] * ci + ari[t] * cr;
                }
            }
            if (k > 0) {
                const float wr = tw_re[(size_t)j * (p - 1) + k - 1], wi = tw_im[(size_t)j * (p - 1) + k - 1];
                INDEPENDENT_ITERATIONS
        for (size_t t = 0; t < span; t++) {
                    const float br = bkr[t], bi = bki[t];
                    bkr[t] = br * wr - bi * wi;
                    bki[t] = br * wi + bi * wr;
                }
            }
        }
    }
}

/* ------------------------------------------------------------------------- */

static int smallest_factor(int n)
{
    for (int p = 3; (long long)p * p <= n; p += 2)
        if (n % p == 0)
            return p;
    return n;
}

/* Radices in the order the stages use them: 4s first, then a 2, then odd primes. */
static int factorize(int m, int *radix)
{
    int count = 0;
    while (m % 4 == 0) { radix[count++] = 4; m /= 4; }
    if (m % 2 == 0) { radix[count++] = 2; m /= 2; }
    while (m > 1) {
        const int p = smallest_factor(m);
        radix[count++] = p;
        m /= p;
    }
    return count;
}

/* Prime factors above this use the chirp-z transform: a generic butterfly
 * costs O(p) per point, the chirp-z two FFTs of 2 to 4 times the length.
 * Measured per frame of lengths 8p, 16p, 32p (frontend, spectrogram): the
 * generic butterfly wins only up to p = 7; at p = 11 to 17 the chirp-z is
 * 1.5 to 2.6 times faster, at p = 31 7 times, and a prime length such as
 * 641 or 4093 goes from 300 times to 2.5 to 10 times the cost of the
 * nearest power of two. */
#ifndef CHIRP_Z_MIN_PRIME
#define CHIRP_Z_MIN_PRIME 7
#endif

static int largest_prime_factor(int m)
{
    int largest = 1;
    for (int p = 2; (long long)p * p <= m; p++)
        while (m % p == 0) {
            largest = p;
            m /= p;
        }
    return m > largest ? m : largest;
}

/* The smallest product of 2, 3 and 5 that is >= n. */
static int smooth_length_at_least(int n)
{
    for (int length = n;; length++) {
        int rest = length;
        while (rest % 2 == 0) rest /= 2;
        while (rest % 3 == 0) rest /= 3;
        while (rest % 5 == 0) rest /= 5;
        if (rest == 1)
            return length;
    }
}

void tinyml_fft_plan_destroy(tinyml_fft_plan *plan)
{
    if (!plan)
        return;
    tinyml_fft_plan_destroy(plan->chirp_z);
    free(plan->chirp_re);
    free(plan->chirp_im);
    free(plan->kernel_re);
    free(plan->kernel_im);
    free(plan->twiddle_re);
    free(plan->twiddle_im);
    free(plan->root_re);
    free(plan->root_im);
    free(plan->split_re);
    free(plan->split_im);
    free(plan);
}

/* The real-FFT split step's twiddles exp(-2 pi i k / n), k = 0..m; the plan, or NULL (destroyed) when out of memory. */
static tinyml_fft_plan *plan_split(tinyml_fft_plan *plan)
{
    plan->split_re = (float *)malloc(((size_t)plan->m + 1) * sizeof(float));
    plan->split_im = (float *)malloc(((size_t)plan->m + 1) * sizeof(float));
    if (!plan->split_re || !plan->split_im) {
        tinyml_fft_plan_destroy(plan);
        return NULL;
    }
    for (int k = 0; k <= plan->m; k++) {
        const double angle = -TWO_PI * k / plan->n;
        plan->split_re[k] = (float)cos(angle);
        plan->split_im[k] = (float)sin(angle);
    }
    return plan;
}

static int stockham_fft(const tinyml_fft_plan *plan, int lanes, float *re[2], float *im[2]);

/* Chirp-z tables of a plan of complex length m: TINYML_OK, or TINYML_ERR_NO_MEMORY.
 * With w[j] = exp(-i pi j^2 / m), X[k] = w[k] sum_j (x[j] w[j]) conj(w[k - j]):
 * a convolution with conj(w), done circularly over a length >= 2m - 1. */
static int plan_chirp_z(tinyml_fft_plan *plan)
{
    const int m = plan->m, length = smooth_length_at_least(2 * m - 1);
    plan->chirp_z = tinyml_fft_plan_create(2 * length); /* complex length `length` */
    plan->chirp_re = (float *)malloc((size_t)m * sizeof(float));
    plan->chirp_im = (float *)malloc((size_t)m * sizeof(float));
    plan->kernel_re = (float *)calloc((size_t)length, sizeof(float));
    plan->kernel_im = (float *)calloc((size_t)length, sizeof(float));
    float *work = (float *)malloc(2 * (size_t)length * sizeof(float));
    if (!plan->chirp_z || !plan->chirp_re || !plan->chirp_im || !plan->kernel_re || !plan->kernel_im || !work) {
        free(work);
        return TINYML_ERR_NO_MEMORY;
    }
    for (int j = 0; j < m; j++) {
        /* j^2 mod 2m in integers, so the angle stays exact for large j */
        const double angle = -TWO_PI / 2 * (double)(((long long)j * j) % (2LL * m)) / m;
        plan->chirp_re[j] = (float)cos(angle);
        plan->chirp_im[j] = (float)sin(angle);
        plan->kernel_re[j] = plan->chirp_re[j]; /* conj(w[j]) at j and at length - j */
        plan->kernel_im[j] = -plan->chirp_im[j];
        if (j > 0) {
            plan->kernel_re[length - j] = plan->chirp_re[j];
            plan->kernel_im[length - j] = -plan->chirp_im[j];
        }
    }
    float *re[2] = {plan->kernel_re, work}, *im[2] = {plan->kernel_im, work + length};
    const int result = stockham_fft(plan->chirp_z, 1, re, im);
    for (int k = 0; k < length; k++) { /* the 1 / length of the inverse FFT, folded in */
        const float kr = re[result][k] / (float)length, ki = im[result][k] / (float)length;
        plan->kernel_re[k] = kr;
        plan->kernel_im[k] = ki;
    }
    free(work);
    return TINYML_OK;
}

tinyml_fft_plan *tinyml_fft_plan_create(int n)
{
    if (n < 1)
        return NULL;
    tinyml_fft_plan *plan = (tinyml_fft_plan *)calloc(1, sizeof(*plan));
    if (!plan)
        return NULL;
    plan->n = n;
    plan->m = (n % 2 == 0) ? n / 2 : n;
    plan->buffer_length = plan->m;
    if (largest_prime_factor(plan->m) > CHIRP_Z_MIN_PRIME) {
        plan->num_stages = 0; /* the stages are the sub-plan's */
        if (plan_chirp_z(plan) != TINYML_OK) {
            tinyml_fft_plan_destroy(plan);
            return NULL;
        }
        plan->buffer_length = plan->chirp_z->m;
        return plan_split(plan);
    }
    plan->num_stages = factorize(plan->m, plan->radix);

    size_t twiddles = 0, roots = 0;
    int sub = plan->m;
    for (int st = 0; st < plan->num_stages; st++) {
        const int p = plan->radix[st];
        plan->twiddle_offset[st] = twiddles;
        twiddles += (size_t)(p - 1) * (sub / p);
        plan->root_offset[st] = roots;
        if (p > 5)
            roots += (size_t)p;
        sub /= p;
    }
    plan->twiddle_re = (float *)malloc((twiddles + 1) * sizeof(float));
    plan->twiddle_im = (float *)malloc((twiddles + 1) * sizeof(float));
    plan->root_re = (float *)malloc((roots + 1) * sizeof(float));
    plan->root_im = (float *)malloc((roots + 1) * sizeof(float));
    if (!plan->twiddle_re || !plan->twiddle_im || !plan->root_re || !plan->root_im) {
        tinyml_fft_plan_destroy(plan);
        return NULL;
    }

    sub = plan->m;
    for (int st = 0; st < plan->num_stages; st++) {
        const int p = plan->radix[st];
        const int count = sub / p;
        float *wr = plan->twiddle_re + plan->twiddle_offset[st];
        float *wi = plan->twiddle_im + plan->twiddle_offset[st];
        for (int j = 0; j < count; j++)
            for (int k = 1; k < p; k++) {
                /* reduce the angle exactly in integers before going to radians */
                const double angle = -TWO_PI * (double)(((long long)j * k) % sub) / sub;
                wr[(size_t)j * (p - 1) + k - 1] = (float)cos(angle);
                wi[(size_t)j * (p - 1) + k - 1] = (float)sin(angle);
            }
        if (p > 5)
            for (int k = 0; k < p; k++) {
                const double angle = -TWO_PI * k / p;
                plan->root_re[plan->root_offset[st] + k] = (float)cos(angle);
                plan->root_im[plan->root_offset[st] + k] = (float)sin(angle);
            }
        sub = count;
    }
    return plan_split(plan);
}

int tinyml_fft_length(const tinyml_fft_plan *plan) { return plan->n; }

int tinyml_fft_largest_radix(const tinyml_fft_plan *plan)
{
    if (plan->chirp_z)
        return tinyml_fft_largest_radix(plan->chirp_z);
    int largest = 1;
    for (int st = 0; st < plan->num_stages; st++)
        largest = plan->radix[st] > largest ? plan->radix[st] : largest;
    return largest;
}

int tinyml_fft_chirp_z_length(const tinyml_fft_plan *plan) { return plan->chirp_z ? plan->chirp_z->m : 0; }

/* The four buffers of the complex FFT (re and im, twice) would lie a multiple of
 * 4 KiB apart for many lengths (320 x 8 lanes: 10 KiB), so the loads of one
 * stage and its stores to the same offsets look alike to the cache and the
 * store-to-load check; staggering the second pair by a few cache lines avoids
 * that (about 5 % faster at the course's 640). */
#define SECOND_RE_SHIFT 32 /* floats */
#define SECOND_IM_SHIFT 64

size_t tinyml_rfft_work_floats(const tinyml_fft_plan *plan, int lanes)
{
    return 4 * (size_t)plan->buffer_length * (size_t)lanes + SECOND_RE_SHIFT + SECOND_IM_SHIFT;
}

/* Complex FFT of length m in place of (re[0], im[0]); re[1], im[1] are the other
 * Stockham buffer.  Returns the index (0 or 1) of the buffer holding the result. */
/* count == 1 (the last stage): every twiddle is exp(0) = 1 */
#define RUN_STAGE(stage)                                          \
    do {                                                          \
        if (count > 1)                                            \
            stage(span, vec, count, wr, wi, xr, xi, yr, yi, 1);   \
        else                                                      \
            stage(span, vec, count, wr, wi, xr, xi, yr, yi, 0);   \
    } while (0)

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* lanes_by_8: lanes is a multiple of 8 (a compile-time constant in each copy),
 * so every run is whole 8-float vectors: the butterflies then loop over them in
 * steps of 8, with no remainder code or loop set-up per run (the first stage's
 * runs are a single vector each). */
static ALWAYS_INLINE int complex_fft_impl(const tinyml_fft_plan *plan, int lanes, float *re[2], float *im[2],
                                          const int lanes_by_8)
{
    int src = 0;
    size_t stride = 1; /* sub-transforms interleaved so far (product of radices used) */
    int sub = plan->m;
    for (int st = 0; st < plan->num_stages; st++) {
        const int p = plan->radix[st];
        const int count = sub / p;
        const size_t span = stride * (size_t)lanes;
        const size_t vec = lanes_by_8 ? 8 : span; /* runs are processed vec floats at a time */
        const float *wr = plan->twiddle_re + plan->twiddle_offset[st];
        const float *wi = plan->twiddle_im + plan->twiddle_offset[st];
        const float *xr = re[src], *xi = im[src];
        float *yr = re[1 - src], *yi = im[1 - src];
        switch (p) {
        case 2: RUN_STAGE(stage_radix2); break;
        case 3: RUN_STAGE(stage_radix3); break;
        case 4: RUN_STAGE(stage_radix4); break;
        case 5: RUN_STAGE(stage_radix5); break;
        default:
            stage_generic(p, span, count, wr, wi, plan->root_re + plan->root_offset[st],
                          plan->root_im + plan->root_offset[st], xr, xi, yr, yi);
        }
        src = 1 - src;
        stride *= (size_t)p;
        sub = count;
    }
    return src;
}

static ALWAYS_INLINE int stockham_fft(const tinyml_fft_plan *plan, int lanes, float *re[2], float *im[2])
{
    return lanes % 8 == 0 ? complex_fft_impl(plan, lanes, re, im, 1) : complex_fft_impl(plan, lanes, re, im, 0);
}

/* The length-m DFT by chirp-z (see plan_chirp_z), input and result as in
 * complex_fft; the buffers hold chirp_z->m points. A function of its own, so
 * that complex_fft's common path (a Stockham FFT) compiles as it did alone. */
TINYML_WIDE_VECTOR_CLONES
static int chirp_z_fft(const tinyml_fft_plan *plan, int lanes, float *re[2], float *im[2])
{
    const size_t L = (size_t)lanes, m = (size_t)plan->m, length = (size_t)plan->chirp_z->m;
    const float *restrict wr = plan->chirp_re, *restrict wi = plan->chirp_im;
    float *restrict xr = re[0], *restrict xi = im[0];
    for (size_t j = 0; j < m; j++) /* x w, zero-padded */
        INDEPENDENT_ITERATIONS
        for (size_t f = 0; f < L; f++) {
            const float ar = xr[j * L + f], ai = xi[j * L + f];
            xr[j * L + f] = ar * wr[j] - ai * wi[j];
            xi[j * L + f] = ar * wi[j] + ai * wr[j];
        }
    memset(xr + m * L, 0, (length - m) * L * sizeof(float));
    memset(xi + m * L, 0, (length - m) * L * sizeof(float));
    const int first = stockham_fft(plan->chirp_z, lanes, re, im);
    /* times the kernel's spectrum, conjugated: the inverse FFT as a forward one */
    const float *restrict kr = plan->kernel_re, *restrict ki = plan->kernel_im;
    float *restrict yr = re[first], *restrict yi = im[first];
    for (size_t k = 0; k < length; k++)
        INDEPENDENT_ITERATIONS
        for (size_t f = 0; f < L; f++) {
            const float ar = yr[k * L + f], ai = yi[k * L + f];
            yr[k * L + f] = ar * kr[k] - ai * ki[k];
            yi[k * L + f] = -(ar * ki[k] + ai * kr[k]);
        }
    float *second_re[2] = {re[first], re[1 - first]}, *second_im[2] = {im[first], im[1 - first]};
    const int second = stockham_fft(plan->chirp_z, lanes, second_re, second_im);
    const int result = second ? 1 - first : first;
    float *restrict zr = re[result], *restrict zi = im[result];
    for (size_t k = 0; k < m; k++) /* conj again (the inverse), times w */
        INDEPENDENT_ITERATIONS
        for (size_t f = 0; f < L; f++) {
            const float cr = zr[k * L + f], ci = -zi[k * L + f];
            zr[k * L + f] = cr * wr[k] - ci * wi[k];
            zi[k * L + f] = cr * wi[k] + ci * wr[k];
        }
    return result;
}

TINYML_WIDE_VECTOR_CLONES
static int complex_fft(const tinyml_fft_plan *plan, int lanes, float *re[2], float *im[2])
{
    return plan->chirp_z ? chirp_z_fft(plan, lanes, re, im) : stockham_fft(plan, lanes, re, im);
}

int tinyml_rfft_input_index(const tinyml_fft_plan *plan, int t)
{
    /* even n: z[u] = x[2u] + i x[2u + 1] with the real parts first, then the
     * imaginary parts (the first Stockham buffer's re and im halves) */
    return plan->n % 2 ? t : (t % 2) * plan->buffer_length + t / 2;
}

/* |X[k]| of one signal for k = 0 or k = m, where k mod m and (m - k) mod m are both 0 */
static inline float split_magnitude_edge(const tinyml_fft_plan *plan, const float *zr, const float *zi, int k)
{
    const float ar = zr[0], ai = zi[0], br = zr[0], bi = zi[0];
    const float wr = plan->split_re[k], wi = plan->split_im[k];
    const float er = 0.5f * (ar + br), ei = 0.5f * (ai - bi);
    const float or_ = 0.5f * (ai + bi), oi = -0.5f * (ar - br);
    const float xr = er + (wr * or_ - wi * oi), xi = ei + (wr * oi + wi * or_);
    return sqrtf(xr * xr + xi * xi);
}

/* |X[k]| of one signal for k_begin <= k < k_end (0 < k < m) to mag[k - k_begin]:
 * Z[k] forwards, Z[m - k] backwards, a loop the compiler vectorises (restrict
 * parameters: written in place it is versioned for aliasing and runs scalar) */
static inline void split_magnitudes_middle(int m, int k_begin, int k_end, const float *restrict zr,
                                           const float *restrict zi, const float *restrict split_re,
                                           const float *restrict split_im, float *restrict mag)
{
    for (int k = k_begin; k < k_end; k++) {
        const float ar = zr[k], ai = zi[k], br = zr[m - k], bi = zi[m - k];
        const float wr = split_re[k], wi = split_im[k];
        const float er = 0.5f * (ar + br), ei = 0.5f * (ai - bi);
        const float or_ = 0.5f * (ai + bi), oi = -0.5f * (ar - br);
        const float xr = er + (wr * or_ - wi * oi), xi = ei + (wr * oi + wi * or_);
        mag[k - k_begin] = sqrtf(xr * xr + xi * xi);
    }
}

/* The real FFT of the input prepared in work (see tinyml_rfft_input_index): bins
 * first_bin .. first_bin + num_bins - 1, as (re, im) or as magnitudes. */
TINYML_WIDE_VECTOR_CLONES
static void rfft_prepared(const tinyml_fft_plan *plan, int lanes, int first_bin, int num_bins,
                          float *out_re, float *out_im, float *out_magnitude, float *work,
                          int want_magnitude)
{
    const int m = plan->m;
    const size_t L = (size_t)lanes, block = (size_t)plan->buffer_length * L;
    float *re[2] = {work, work + 2 * block + SECOND_RE_SHIFT};
    float *im[2] = {work + block, work + 3 * block + SECOND_RE_SHIFT + SECOND_IM_SHIFT};
    const int end_bin = first_bin + num_bins;

    if (plan->n % 2) { /* odd length: complex FFT of the real signal itself */
        memset(im[0], 0, block * sizeof(float));
        const int res = complex_fft(plan, lanes, re, im);
        const float *restrict zr = re[res] + (size_t)first_bin * L, *restrict zi = im[res] + (size_t)first_bin * L;
        const size_t count = (size_t)num_bins * L;
        for (size_t i = 0; i < count; i++) {
            if (want_magnitude) {
                out_magnitude[i] = sqrtf(zr[i] * zr[i] + zi[i] * zi[i]);
            } else {
                out_re[i] = zr[i];
                out_im[i] = zi[i];
            }
        }
        return;
    }

    const int res = complex_fft(plan, lanes, re, im);
    const float *restrict zr = re[res], *restrict zi = im[res];

    /* Split: X[k] = E[k] + W^k O[k], with E = (Z[k] + conj Z[m-k]) / 2 and
     * O = (Z[k] - conj Z[m-k]) / 2i, indices mod m. */
    int k = first_bin;
    if (lanes == 1 && want_magnitude) {
        /* one signal: bins 0 < k < m in a loop over k that vectorises, the
         * same operations as the loop below */
        if (k == 0 && k < end_bin) {
            out_magnitude[0] = split_magnitude_edge(plan, zr, zi, 0);
            k++;
        }
        const int middle_end = end_bin < m ? end_bin : m;
        if (k < middle_end) {
            split_magnitudes_middle(m, k, middle_end, zr, zi, plan->split_re, plan->split_im,
                                    out_magnitude + (k - first_bin));
            k = middle_end;
        }
        if (k == m && k < end_bin)
            out_magnitude[k - first_bin] = split_magnitude_edge(plan, zr, zi, m);
        return;
    }
    for (; k < end_bin; k++) {
        /* k mod m and (m - k) mod m, without a division per bin (0 <= k <= m) */
        const size_t a = (size_t)(k < m ? k : 0) * L, b = (size_t)(k > 0 ? m - k : 0) * L;
        const float *restrict ar = zr + a, *restrict ai = zi + a;
        const float *restrict br = zr + b, *restrict bi = zi + b;
        const float wr = plan->split_re[k], wi = plan->split_im[k];
        const size_t out = (size_t)(k - first_bin) * L;
        if (want_magnitude) {
            float *restrict mag = out_magnitude + out;
            INDEPENDENT_ITERATIONS
            for (size_t f = 0; f < L; f++) {
                const float er = 0.5f * (ar[f] + br[f]), ei = 0.5f * (ai[f] - bi[f]);
                const float or_ = 0.5f * (ai[f] + bi[f]), oi = -0.5f * (ar[f] - br[f]);
                const float xr = er + (wr * or_ - wi * oi), xi = ei + (wr * oi + wi * or_);
                mag[f] = sqrtf(xr * xr + xi * xi);
            }
        } else {
            float *restrict xr = out_re + out, *restrict xi = out_im + out;
            INDEPENDENT_ITERATIONS
            for (size_t f = 0; f < L; f++) {
                const float er = 0.5f * (ar[f] + br[f]), ei = 0.5f * (ai[f] - bi[f]);
                const float or_ = 0.5f * (ai[f] + bi[f]), oi = -0.5f * (ar[f] - br[f]);
                xr[f] = er + (wr * or_ - wi * oi);
                xi[f] = ei + (wr * oi + wi * or_);
            }
        }
    }
}

void tinyml_rfft(const tinyml_fft_plan *plan, int lanes, const float *x,
                 float *out_re, float *out_im, float *work)
{
    const size_t L = (size_t)lanes;
    for (int t = 0; t < plan->n; t++)
        memcpy(work + (size_t)tinyml_rfft_input_index(plan, t) * L, x + (size_t)t * L, L * sizeof(float));
    rfft_prepared(plan, lanes, 0, plan->n / 2 + 1, out_re, out_im, NULL, work, 0);
}

void tinyml_rfft_magnitude_prepared(const tinyml_fft_plan *plan, int lanes, int first_bin, int num_bins,
                                    float *out_magnitude, float *work)
{
    rfft_prepared(plan, lanes, first_bin, num_bins, NULL, NULL, out_magnitude, work, 1);
}
