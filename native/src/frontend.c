/* Audio frontend loops; see frontend.h. */
#include "frontend.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fft.h"
#include "samples.h"

struct tinyml_frontend {
    tinyml_frontend_config config;
    int num_bins;     /* fft_length / 2 + 1 */
    int num_features; /* per frame */
    float *window;
    int *fft_input_index;  /* fft_length: where sample t goes in the FFT's input */
    int input_deinterleaved; /* fft_input_index[t] = (t % 2) * fft_length / 2 + t / 2 */
    int first_used_bin;    /* magnitudes outside [first, first + count) feed no filter */
    int num_used_bins;
    int log_offset_is_normal; /* mel + log_offset >= FLT_MIN: log_positive applies */
    float pcen_delta_root;    /* pcen_delta ^ pcen_power */
    int *mel_first_bin, *mel_bin_count;
    size_t *mel_weight_offset;
    float *mel_weights;
    float *dct;
    float *dct_by_mel; /* dct transposed: num_mel_bins x num_mfccs (single frames) */
    tinyml_fft_plan *plan;
};

/* Scratch memory of one thread. */
typedef struct {
    float *samples;  /* one block of int16 input, scaled to float */
    float *fft_work; /* starts with the windowed, zero-padded frames */
    float *magnitude; /* num_bins x lanes */
    float *mel;      /* num_mel_bins x lanes: mel energies, then their log */
    float *mfcc;     /* num_mfccs x lanes */
    float *pcen_smooth; /* num_mel_bins: PCEN's smoother M per channel, < 0 before the first frame */
    float *noise_estimate; /* num_mel_bins: the noise reduction's N per channel, < 0 likewise */
    float *resize_src; /* frames x num_bins of one clip (resize only) */
    float *memory;
} workspace;

static const float INT16_SCALE = 1.0f / 32768.0f; /* as tf.audio.decode_wav */

/* Natural log of a positive normal float with the Cephes logf polynomial (the
 * one Eigen's vectorised log, hence TF's, is built on); error below 1 ulp
 * (0.78 ulp worst against a double-precision log, every 97th normal float tried).
 * Branch-free so a loop over lanes vectorises (libm's logf does not).  Inf and
 * NaN pass through; callers guarantee x >= FLT_MIN. */
static inline float log_positive(float x)
{
    /* Selections are done on the bits with integer masks: the compiler will not
     * if-convert float selects (it must not speculate float operations). */
    uint32_t bits;
    memcpy(&bits, &x, sizeof(bits));
    /* x = m * 2^e with m in [sqrt(1/2), sqrt(2)): take the mantissa into [1, 2),
     * and halve it (exponent field 126 instead of 127) when it is above sqrt(2) */
    const uint32_t above = (bits & 0x007fffffu) > 0x003504f3u; /* mantissa bits of sqrt(2) */
    const uint32_t mantissa_bits = (bits & 0x007fffffu) | (0x3f800000u - (above << 23));
    float m;
    memcpy(&m, &mantissa_bits, sizeof(m));
    const float e = (float)((int32_t)(bits >> 23) - 127 + (int32_t)above);
    const float f = m - 1.0f;
    const float z = f * f;
    float y = 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    y += -2.12194440e-4f * e; /* ln 2 = 0.693359375 - 2.12194440e-4, split for accuracy */
    y += -0.5f * z;
    const float result = (f + y) + 0.693359375f * e;
    uint32_t result_bits;
    memcpy(&result_bits, &result, sizeof(result_bits));
    const uint32_t pass = 0u - (uint32_t)(bits >= 0x7f800000u); /* Inf / NaN: all ones */
    const uint32_t out_bits = (bits & pass) | (result_bits & ~pass);
    float out;
    memcpy(&out, &out_bits, sizeof(out));
    return out;
}

/* ---- construction ---------------------------------------------------------- */

void tinyml_frontend_destroy(tinyml_frontend *fe)
{
    if (!fe)
        return;
    free(fe->window);
    free(fe->fft_input_index);
    free(fe->mel_first_bin);
    free(fe->mel_bin_count);
    free(fe->mel_weight_offset);
    free(fe->mel_weights);
    free(fe->dct);
    free(fe->dct_by_mel);
    tinyml_fft_plan_destroy(fe->plan);
    free(fe);
}

static void *copy_of(const void *src, size_t bytes)
{
    void *dst = malloc(bytes ? bytes : 1);
    if (dst && bytes)
        memcpy(dst, src, bytes);
    return dst;
}

tinyml_frontend *tinyml_frontend_create(const tinyml_frontend_config *config, const float *window,
                                        const int *mel_first_bin, const int *mel_bin_count,
                                        const float *mel_weights, const float *dct)
{
    tinyml_frontend *fe = (tinyml_frontend *)calloc(1, sizeof(*fe));
    if (!fe)
        return NULL;
    fe->config = *config;
    fe->num_bins = config->fft_length / 2 + 1;
    fe->window = (float *)copy_of(window, (size_t)config->frame_length_samples * sizeof(float));
    fe->plan = tinyml_fft_plan_create(config->fft_length);
    fe->fft_input_index = (int *)malloc((size_t)config->fft_length * sizeof(int));
    int ok = fe->window && fe->plan && fe->fft_input_index;
    fe->input_deinterleaved = config->fft_length % 2 == 0;
    for (int t = 0; ok && t < config->fft_length; t++) {
        fe->fft_input_index[t] = tinyml_rfft_input_index(fe->plan, t);
        fe->input_deinterleaved &= fe->fft_input_index[t] == (t % 2) * (config->fft_length / 2) + t / 2;
    }
    fe->first_used_bin = 0;
    fe->num_used_bins = fe->num_bins;
    fe->log_offset_is_normal = config->log_offset >= FLT_MIN;
    fe->pcen_delta_root = powf(config->pcen_delta, config->pcen_power);

    switch (config->feature_kind) {
    case TINYML_SPECTROGRAM: fe->num_features = fe->num_bins; break;
    case TINYML_LOG_MEL:
    case TINYML_PCEN: fe->num_features = config->num_mel_bins; break;
    default: fe->num_features = config->num_mfccs; break;
    }
    if (ok && config->feature_kind != TINYML_SPECTROGRAM) {
        const int num_mel = config->num_mel_bins;
        fe->mel_first_bin = (int *)copy_of(mel_first_bin, (size_t)num_mel * sizeof(int));
        fe->mel_bin_count = (int *)copy_of(mel_bin_count, (size_t)num_mel * sizeof(int));
        fe->mel_weight_offset = (size_t *)malloc((size_t)num_mel * sizeof(size_t));
        ok = fe->mel_first_bin && fe->mel_bin_count && fe->mel_weight_offset;
        size_t total = 0;
        for (int m = 0; ok && m < num_mel; m++) {
            fe->mel_weight_offset[m] = total;
            total += (size_t)mel_bin_count[m];
        }
        fe->mel_weights = ok ? (float *)copy_of(mel_weights, total * sizeof(float)) : NULL;
        ok = ok && fe->mel_weights;
        /* the FFT only needs the magnitudes of bins some filter uses */
        int first = fe->num_bins, end = 0;
        for (int m = 0; ok && m < num_mel; m++)
            if (mel_bin_count[m] > 0) {
                first = mel_first_bin[m] < first ? mel_first_bin[m] : first;
                end = mel_first_bin[m] + mel_bin_count[m] > end ? mel_first_bin[m] + mel_bin_count[m] : end;
            }
        fe->first_used_bin = first < end ? first : 0;
        fe->num_used_bins = first < end ? end - first : 1;
    }
    if (ok && config->feature_kind == TINYML_MFCC) {
        fe->dct = (float *)copy_of(dct, (size_t)config->num_mfccs * config->num_mel_bins * sizeof(float));
        const int num_mfccs = config->num_mfccs, num_mel = config->num_mel_bins;
        fe->dct_by_mel = (float *)malloc((size_t)num_mfccs * num_mel * sizeof(float) + 1);
        ok = fe->dct != NULL && fe->dct_by_mel != NULL;
        for (int c = 0; ok && c < num_mfccs; c++)
            for (int m = 0; m < num_mel; m++)
                fe->dct_by_mel[(size_t)m * num_mfccs + c] = dct[(size_t)c * num_mel + m];
    }
    if (!ok) {
        tinyml_frontend_destroy(fe);
        return NULL;
    }
    return fe;
}

int tinyml_frontend_num_features(const tinyml_frontend *fe) { return fe->num_features; }

int64_t tinyml_frontend_num_frames(const tinyml_frontend *fe, int64_t num_samples)
{
    const int64_t length = fe->config.frame_length_samples;
    if (num_samples < length)
        return 0;
    return 1 + (num_samples - length) / fe->config.frame_step_samples;
}

/* floats per 64-byte cache line: every scratch buffer starts on a line, so the
 * 32-byte vector loads and stores never straddle two lines (they are slower) */
#define LINE_FLOATS 16

static size_t whole_lines(size_t floats) { return (floats + LINE_FLOATS - 1) / LINE_FLOATS * LINE_FLOATS; }

static int workspace_init(workspace *ws, const tinyml_frontend *fe, int64_t resize_src_floats)
{
    const size_t L = TINYML_LANES;
    const size_t fft_work = whole_lines(tinyml_rfft_work_floats(fe->plan, TINYML_LANES));
    const size_t spec = whole_lines((size_t)fe->num_bins * L);
    const size_t mel = whole_lines((size_t)(fe->config.num_mel_bins > 0 ? fe->config.num_mel_bins : 1) * L);
    const size_t mfcc = whole_lines((size_t)(fe->config.num_mfccs > 0 ? fe->config.num_mfccs : 1) * L);
    const size_t samples = whole_lines((size_t)(TINYML_LANES - 1) * fe->config.frame_step_samples +
                                       fe->config.frame_length_samples);
    const size_t pcen = whole_lines((size_t)(fe->config.num_mel_bins > 0 ? fe->config.num_mel_bins : 1));
    const size_t total = samples + fft_work + spec + mel + mfcc + 2 * pcen + (size_t)resize_src_floats;
    ws->memory = (float *)malloc((total + LINE_FLOATS) * sizeof(float));
    if (!ws->memory)
        return TINYML_ERR_NO_MEMORY;
    const size_t misalignment = ((uintptr_t)ws->memory / sizeof(float)) % LINE_FLOATS;
    ws->samples = ws->memory + (misalignment ? LINE_FLOATS - misalignment : 0);
    ws->fft_work = ws->samples + samples;
    ws->magnitude = ws->fft_work + fft_work;
    ws->mel = ws->magnitude + spec;
    ws->mfcc = ws->mel + mel;
    ws->pcen_smooth = ws->mfcc + mfcc;
    ws->noise_estimate = ws->pcen_smooth + pcen;
    ws->resize_src = ws->noise_estimate + pcen;
    return TINYML_OK;
}

/* PCEN starts over: the next frame initialises each channel's smoother and noise estimate. */
static void pcen_restart(const tinyml_frontend *fe, const workspace *ws)
{
    for (int m = 0; m < fe->config.num_mel_bins; m++)
        ws->pcen_smooth[m] = ws->noise_estimate[m] = -1.0f;
}

/* PCEN of the mel energies of frames 0 .. stored - 1, in order, in place
 * (frame f of channel m at mel[m * lanes + f]); see tinyml_frontend_config.
 * Sequential over frames (the smoother links them), so padded lanes, never
 * stored, never touch the state. */
static void pcen_frames(const tinyml_frontend *fe, const workspace *ws, float *mel, size_t lanes, int stored)
{
    const tinyml_frontend_config *cfg = &fe->config;
    const float s = cfg->pcen_smoothing, keep = 1.0f - s;
    const float alpha = cfg->pcen_alpha, delta = cfg->pcen_delta, power = cfg->pcen_power;
    const float epsilon = cfg->pcen_epsilon, delta_root = fe->pcen_delta_root;
    const float n = cfg->noise_smoothing, noise_keep = 1.0f - n, min_remaining = cfg->noise_min_remaining;
    float *restrict smooth = ws->pcen_smooth;
    float *restrict noise = ws->noise_estimate;
    for (int f = 0; f < stored; f++)
        for (int m = 0; m < cfg->num_mel_bins; m++) {
            float *energy = mel + (size_t)m * lanes + (size_t)f;
            const float raw = *energy;
            float smoothed = smooth[m] < 0.0f ? raw : keep * smooth[m] + s * raw;
            if (smoothed < FLT_MIN) /* digital silence: no subnormal decay */
                smoothed = 0.0f;
            smooth[m] = smoothed;
            float e = raw;
            if (n > 0.0f) { /* the numerator only: the gain still follows the whole energy */
                float estimate = noise[m] < 0.0f ? raw : noise_keep * noise[m] + n * raw;
                if (estimate < FLT_MIN)
                    estimate = 0.0f;
                noise[m] = estimate;
                const float left = raw - estimate, floor = min_remaining * raw;
                e = left > floor ? left : floor;
            }
            const float gain = powf(epsilon + smoothed, -alpha);
            *energy = powf(e * gain + delta, power) - delta_root;
        }
}

/* ---- the per-frame pipeline, `lanes` frames at a time ------------------------ */

/* Samples t .. t+7 of 8 frames (frame f at src + f * step), windowed, stored
 * interleaved at frames[index[k] * lanes + f].  Plain C fallback: the compiler
 * moves the tile through memory, element by element. */
static inline void window_tile8(float *restrict frames, size_t lanes, const int *restrict index,
                                const float *restrict src, size_t step, const float *restrict window)
{
    float tile[8][8];
    for (int f = 0; f < 8; f++)
        for (int k = 0; k < 8; k++)
            tile[f][k] = src[(size_t)f * step + (size_t)k] * window[k];
    for (int k = 0; k < 8; k++) {
        float *restrict dst = frames + (size_t)index[k] * lanes;
        for (int f = 0; f < 8; f++)
            dst[f] = tile[f][k];
    }
}

/* The same tile with the transpose done by 24 register shuffles (GCC >= 12 and
 * clang have __builtin_shufflevector; 8-float vectors are one AVX register or two
 * NEON ones).  The int16 variant scales each sample by 1/32768 first, exactly as
 * the separate conversion pass does, so both give the same bits.
 * -DTINYML_NO_VECTOR_TRANSPOSE turns this off. */
#if defined(__has_builtin) && !defined(TINYML_NO_VECTOR_TRANSPOSE)
#if __has_builtin(__builtin_shufflevector) && __has_builtin(__builtin_convertvector)
#define TINYML_VECTOR_TRANSPOSE 1
#endif
#endif

/* Helpers of the hot loop are forced inline so they are compiled into each
 * vector-width copy of it (see TINYML_WIDE_VECTOR_CLONES). */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

#ifdef TINYML_VECTOR_TRANSPOSE
#if defined(__GNUC__) && !defined(__clang__)
/* the helpers below are always inlined: no call ever passes a vector by value */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float float8 __attribute__((vector_size(32)));

#define UNPACK_LO(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 4, 12, 5, 13)
#define UNPACK_HI(a, b) __builtin_shufflevector(a, b, 2, 10, 3, 11, 6, 14, 7, 15)
#define PAIRS_LO(a, b) __builtin_shufflevector(a, b, 0, 1, 8, 9, 4, 5, 12, 13)
#define PAIRS_HI(a, b) __builtin_shufflevector(a, b, 2, 3, 10, 11, 6, 7, 14, 15)
#define HALVES_LO(a, b) __builtin_shufflevector(a, b, 0, 1, 2, 3, 8, 9, 10, 11)
#define HALVES_HI(a, b) __builtin_shufflevector(a, b, 4, 5, 6, 7, 12, 13, 14, 15)

static ALWAYS_INLINE float8 load8(const float *src)
{
    float8 v;
    memcpy(&v, src, sizeof(v));
    return v;
}

/* Rows r0..r7 (frame f, samples k = 0..7) -> column k stored at frames[index[k] * 8].
 * Vectors are passed by value and never indexed: an array of them would go
 * through the stack, and the stores there stall the loads. */
static ALWAYS_INLINE void store_transposed8(float *restrict frames, const int *restrict index, float8 r0, float8 r1,
                                     float8 r2, float8 r3, float8 r4, float8 r5, float8 r6, float8 r7)
{
    const float8 t0 = UNPACK_LO(r0, r1), t1 = UNPACK_HI(r0, r1);
    const float8 t2 = UNPACK_LO(r2, r3), t3 = UNPACK_HI(r2, r3);
    const float8 t4 = UNPACK_LO(r4, r5), t5 = UNPACK_HI(r4, r5);
    const float8 t6 = UNPACK_LO(r6, r7), t7 = UNPACK_HI(r6, r7);
    /* u0: samples 0 | 4 of frames 0..3; u1: 1 | 5; u2: 2 | 6; u3: 3 | 7; u4..u7: frames 4..7 */
    const float8 u0 = PAIRS_LO(t0, t2), u1 = PAIRS_HI(t0, t2), u2 = PAIRS_LO(t1, t3), u3 = PAIRS_HI(t1, t3);
    const float8 u4 = PAIRS_LO(t4, t6), u5 = PAIRS_HI(t4, t6), u6 = PAIRS_LO(t5, t7), u7 = PAIRS_HI(t5, t7);
    const float8 c0 = HALVES_LO(u0, u4), c1 = HALVES_LO(u1, u5), c2 = HALVES_LO(u2, u6), c3 = HALVES_LO(u3, u7);
    const float8 c4 = HALVES_HI(u0, u4), c5 = HALVES_HI(u1, u5), c6 = HALVES_HI(u2, u6), c7 = HALVES_HI(u3, u7);
    memcpy(frames + (size_t)index[0] * 8, &c0, sizeof(float8));
    memcpy(frames + (size_t)index[1] * 8, &c1, sizeof(float8));
    memcpy(frames + (size_t)index[2] * 8, &c2, sizeof(float8));
    memcpy(frames + (size_t)index[3] * 8, &c3, sizeof(float8));
    memcpy(frames + (size_t)index[4] * 8, &c4, sizeof(float8));
    memcpy(frames + (size_t)index[5] * 8, &c5, sizeof(float8));
    memcpy(frames + (size_t)index[6] * 8, &c6, sizeof(float8));
    memcpy(frames + (size_t)index[7] * 8, &c7, sizeof(float8));
}

static ALWAYS_INLINE void window_tile8_vector(float *restrict frames, const int *restrict index,
                                       const float *restrict src, size_t step, const float *restrict window)
{
    const float8 w = load8(window);
    store_transposed8(frames, index, load8(src) * w, load8(src + step) * w, load8(src + 2 * step) * w,
                      load8(src + 3 * step) * w, load8(src + 4 * step) * w, load8(src + 5 * step) * w,
                      load8(src + 6 * step) * w, load8(src + 7 * step) * w);
}

/* 8 int16 samples scaled by 1/32768 (a vector conversion: a loop over the 8
 * values would go through the stack) */
typedef int16_t int16x8 __attribute__((vector_size(16)));

static ALWAYS_INLINE float8 load8_int16(const int16_t *src)
{
    int16x8 v;
    memcpy(&v, src, sizeof(v));
    return __builtin_convertvector(v, float8) * INT16_SCALE;
}

static ALWAYS_INLINE void window_tile8_int16(float *restrict frames, const int *restrict index,
                                      const int16_t *restrict src, size_t step, const float *restrict window)
{
    const float8 w = load8(window);
    store_transposed8(frames, index, load8_int16(src) * w, load8_int16(src + step) * w,
                      load8_int16(src + 2 * step) * w, load8_int16(src + 3 * step) * w,
                      load8_int16(src + 4 * step) * w, load8_int16(src + 5 * step) * w,
                      load8_int16(src + 6 * step) * w, load8_int16(src + 7 * step) * w);
}
#endif

/* y += a * x over the lanes (restrict parameters: the compiler then vectorises it
 * once inlined, which it does not for the same loop written in place) */
static inline void add_scaled(float *restrict y, float a, const float *restrict x, size_t lanes)
{
    for (size_t f = 0; f < lanes; f++)
        y[f] += a * x[f];
}

/* Frames f = 0..lanes-1 start at sample f * frame_step of f32 (or s16); their
 * features go to out + f * num_features.  Inlined with constant `lanes` for full
 * blocks and single frames (compute_frames below), so the per-lane loops become
 * whole vectors; being inlined, it is also compiled for each vector width that
 * TINYML_WIDE_VECTOR_CLONES asks for. */

static ALWAYS_INLINE void compute_frames_impl(const tinyml_frontend *fe, const workspace *ws, const float *f32,
                                       const int16_t *s16, const int lanes, int stored, float *out)
{
    const tinyml_frontend_config *cfg = &fe->config;
    const size_t L = (size_t)lanes;
    const int frame_length = cfg->frame_length_samples;
    const float *restrict window = fe->window;
    const int *restrict input_index = fe->fft_input_index;
    float *restrict frames = ws->fft_work;

    /* window the frames straight into the FFT's input, interleaved, zero-padded */
    const size_t step = (size_t)cfg->frame_step_samples;
    int t = 0;
#ifdef TINYML_VECTOR_TRANSPOSE
    if (L == 8 && frame_length % 8 == 0) { /* whole 8 x 8 tiles, int16 scaled on the fly */
        for (; t < frame_length; t += 8) {
            if (s16)
                window_tile8_int16(frames, input_index + t, s16 + t, step, window + t);
            else
                window_tile8_vector(frames, input_index + t, f32 + t, step, window + t);
        }
        s16 = NULL; /* nothing left to convert */
    }
#endif
    if (s16) { /* int16 input: scale this block's samples once */
        const size_t span = (L - 1) * step + (size_t)frame_length;
        for (size_t i = 0; i < span; i++)
            ws->samples[i] = (float)s16[i] * INT16_SCALE;
        f32 = ws->samples;
    }
    if (L == 1 && fe->input_deinterleaved) { /* one frame: even samples, then odd ones */
        const int half = cfg->fft_length / 2;
        float *restrict even = frames, *restrict odd = frames + half;
        for (int u = 0; u < frame_length / 2; u++) {
            even[u] = f32[2 * u] * window[2 * u];
            odd[u] = f32[2 * u + 1] * window[2 * u + 1];
        }
        t = frame_length / 2 * 2;
    }
    if (L % 8 == 0) { /* 8 x 8 tiles: contiguous loads, a transpose through memory */
        for (; t + 8 <= frame_length; t += 8)
            for (size_t f0 = 0; f0 < L; f0 += 8)
                window_tile8(frames + f0, L, input_index + t, f32 + f0 * step + (size_t)t, step, window + t);
    }
    for (; t < frame_length; t++) {
        float *restrict dst = frames + (size_t)input_index[t] * L;
        const float w = window[t];
        for (size_t f = 0; f < L; f++)
            dst[f] = f32[f * step + (size_t)t] * w;
    }
    for (int t = frame_length; t < cfg->fft_length; t++)
        for (size_t f = 0; f < L; f++)
            frames[(size_t)input_index[t] * L + f] = 0.0f;

    /* magnitude of bin first_used_bin + i at magnitude[i * L + f] */
    float *restrict magnitude = ws->magnitude;
    tinyml_rfft_magnitude_prepared(fe->plan, lanes, fe->first_used_bin, fe->num_used_bins, magnitude,
                                   ws->fft_work);

    const float *features = magnitude; /* feature c of lane f at features[c * L + f] */
    if (cfg->feature_kind != TINYML_SPECTROGRAM) {
        /* sparse mel projection: each filter is a run of consecutive bins */
        float *restrict mel = ws->mel;
        for (int m = 0; m < cfg->num_mel_bins; m++) {
            const float *restrict weights = fe->mel_weights + fe->mel_weight_offset[m];
            const float *restrict bins = magnitude + (size_t)(fe->mel_first_bin[m] - fe->first_used_bin) * L;
            float *restrict acc = mel + (size_t)m * L;
            for (size_t f = 0; f < L; f++)
                acc[f] = 0.0f;
            for (int b = 0; b < fe->mel_bin_count[m]; b++)
                add_scaled(acc, weights[b], bins + (size_t)b * L, L);
        }
        /* one flat loop, so it vectorises whatever the number of lanes */
        const size_t mel_floats = (size_t)cfg->num_mel_bins * L;
        const float offset = cfg->log_offset;
        if (cfg->feature_kind == TINYML_PCEN) {
            pcen_frames(fe, ws, mel, L, stored);
        } else if (fe->log_offset_is_normal) {
            for (size_t i = 0; i < mel_floats; i++)
                mel[i] = log_positive(mel[i] + offset);
        } else { /* a subnormal offset: leave the corner cases to libm */
            for (size_t i = 0; i < mel_floats; i++)
                mel[i] = logf(mel[i] + offset);
        }
        features = mel;
        if (cfg->feature_kind == TINYML_MFCC) {
            float *restrict mfcc = ws->mfcc;
            if (L == 1) {
                /* one frame: all coefficients at once (a vector over c); each
                 * sum still adds its terms in mel order, so the same bits */
                const int num_mfccs = cfg->num_mfccs;
                for (int c = 0; c < num_mfccs; c++)
                    mfcc[c] = 0.0f;
                for (int m = 0; m < cfg->num_mel_bins; m++) {
                    const float *restrict column = fe->dct_by_mel + (size_t)m * num_mfccs;
                    const float x = mel[m];
                    for (int c = 0; c < num_mfccs; c++)
                        mfcc[c] += column[c] * x;
                }
            }
            for (int c = 0; L > 1 && c < cfg->num_mfccs; c++) {
                const float *restrict row = fe->dct + (size_t)c * cfg->num_mel_bins;
                float *restrict acc = mfcc + (size_t)c * L;
                for (size_t f = 0; f < L; f++)
                    acc[f] = 0.0f;
                for (int m = 0; m < cfg->num_mel_bins; m++)
                    add_scaled(acc, row[m], mel + (size_t)m * L, L);
            }
            features = mfcc;
        }
    }

    const int num_features = fe->num_features;
    for (size_t f = 0; f < (size_t)stored; f++)
        for (int c = 0; c < num_features; c++)
            out[f * (size_t)num_features + c] = features[(size_t)c * L + f];
}

/* The features of the first `stored` of `lanes` frames go to out; the others
 * are computed and dropped (a full block of lanes costs less than a partial
 * one: its loops are whole vectors). */
TINYML_WIDE_VECTOR_CLONES
static void compute_frames(const tinyml_frontend *fe, const workspace *ws, const float *f32,
                           const int16_t *s16, int lanes, int stored, float *out)
{
    if (lanes == TINYML_LANES)
        compute_frames_impl(fe, ws, f32, s16, TINYML_LANES, stored, out);
    else if (lanes == 1)
        compute_frames_impl(fe, ws, f32, s16, 1, stored, out);
    else
        compute_frames_impl(fe, ws, f32, s16, lanes, stored, out);
}

/* Bilinear resize (frontend.h). */
void tinyml_resize_indices(int in_size, int out_size, tinyml_lerp_index *idx)
{
    const float scale = (float)in_size / (float)out_size;
    for (int i = 0; i < out_size; i++) {
        const float in = ((float)i + 0.5f) * scale - 0.5f;
        const float in_floor = floorf(in);
        const int upper = (int)ceilf(in);
        idx[i].lower = in_floor > 0.0f ? (int)in_floor : 0;
        idx[i].upper = upper < in_size - 1 ? upper : in_size - 1;
        idx[i].lerp = in - in_floor;
    }
}

void tinyml_resize_apply(const float *src, int in_cols, const tinyml_lerp_index *ys, int out_rows,
                         const tinyml_lerp_index *xs, int out_cols, float *dst)
{
    for (int y = 0; y < out_rows; y++) {
        const float *top_row = src + (size_t)ys[y].lower * in_cols;
        const float *bottom_row = src + (size_t)ys[y].upper * in_cols;
        const float y_lerp = ys[y].lerp;
        for (int x = 0; x < out_cols; x++) {
            const float top_left = top_row[xs[x].lower], top_right = top_row[xs[x].upper];
            const float bottom_left = bottom_row[xs[x].lower], bottom_right = bottom_row[xs[x].upper];
            const float top = top_left + (top_right - top_left) * xs[x].lerp;
            const float bottom = bottom_left + (bottom_right - bottom_left) * xs[x].lerp;
            dst[(size_t)y * out_cols + x] = top + (bottom - top) * y_lerp;
        }
    }
}

int tinyml_resize_bilinear(const float *src, int in_rows, int in_cols, float *dst, int out_rows, int out_cols)
{
    tinyml_lerp_index *ys = (tinyml_lerp_index *)malloc((size_t)(out_rows + out_cols) * sizeof(tinyml_lerp_index));
    if (!ys)
        return TINYML_ERR_NO_MEMORY;
    tinyml_lerp_index *xs = ys + out_rows;
    tinyml_resize_indices(in_rows, out_rows, ys);
    tinyml_resize_indices(in_cols, out_cols, xs);
    tinyml_resize_apply(src, in_cols, ys, out_rows, xs, out_cols, dst);
    free(ys);
    return TINYML_OK;
}

/* ---- batch ------------------------------------------------------------------- */

/* samples.h's check, in an AVX2 copy too where there is one (16000 samples: ~1 us) */
TINYML_WIDE_VECTOR_CLONES
static int scan_samples(const float *x, size_t n, int *has_tiny)
{
    return tinyml_scan_samples(x, n, has_tiny);
}

static void compute_clip_frames(const tinyml_frontend *fe, const workspace *ws, const float *f32,
                                const int16_t *s16, int64_t num_frames, float *out)
{
    const int64_t step = fe->config.frame_step_samples;
    pcen_restart(fe, ws); /* each clip from its own first frame */
    for (int64_t first = 0; first < num_frames; first += TINYML_LANES) {
        const int lanes = (int)(num_frames - first < TINYML_LANES ? num_frames - first : TINYML_LANES);
        compute_frames(fe, ws, f32 ? f32 + first * step : NULL, s16 ? s16 + first * step : NULL,
                       lanes, lanes, out + first * fe->num_features);
    }
}

/* Asks for the next clip while this one computes: a batch comes from memory, and
 * the frames read it as 8 interleaved streams, which the hardware does not
 * prefetch by itself (about -10 % per clip of a 256-clip batch). */
static void prefetch_bytes(const char *start, size_t bytes)
{
#if defined(__GNUC__)
    for (size_t offset = 0; offset < bytes; offset += 64)
        __builtin_prefetch(start + offset, 0, 2);
#else
    (void)start;
    (void)bytes;
#endif
}

int tinyml_frontend_compute_clips(const tinyml_frontend *fe, const void *audio, int audio_is_int16,
                                  int64_t num_clips, int64_t num_samples, int resize_rows, int resize_cols,
                                  float *out)
{
    const int64_t num_frames = tinyml_frontend_num_frames(fe, num_samples);
    if (num_frames == 0)
        return TINYML_ERR_TOO_SHORT;
    float *flushed = NULL; /* a copy without tiny samples, in the rare case there are some */
    if (!audio_is_int16) {
        int has_tiny = 0;
        const size_t total = (size_t)(num_clips * num_samples);
        const int status = scan_samples((const float *)audio, total, &has_tiny);
        if (status != 0)
            return status;
        if (has_tiny) {
            flushed = (float *)malloc(total * sizeof(float));
            if (!flushed)
                return TINYML_ERR_NO_MEMORY;
            tinyml_copy_flushing_tiny(flushed, (const float *)audio, total);
            audio = flushed;
        }
    }
    const int rows = resize_rows, cols = resize_cols;
    const int resizing = rows > 0;
    workspace ws;
    if (workspace_init(&ws, fe, resizing ? num_frames * fe->num_features : 0) != TINYML_OK) {
        free(flushed);
        return TINYML_ERR_NO_MEMORY;
    }
    const int64_t out_per_clip = resizing ? (int64_t)rows * cols : num_frames * fe->num_features;
    int status = TINYML_OK;
    const size_t clip_bytes = (size_t)num_samples * (audio_is_int16 ? sizeof(int16_t) : sizeof(float));
    for (int64_t c = 0; c < num_clips && status == TINYML_OK; c++) {
        const float *f32 = audio_is_int16 ? NULL : (const float *)audio + c * num_samples;
        const int16_t *s16 = audio_is_int16 ? (const int16_t *)audio + c * num_samples : NULL;
        if (c + 1 < num_clips)
            prefetch_bytes((const char *)audio + (size_t)(c + 1) * clip_bytes, clip_bytes);
        float *clip_out = out + c * out_per_clip;
        compute_clip_frames(fe, &ws, f32, s16, num_frames, resizing ? ws.resize_src : clip_out);
        if (resizing)
            status = tinyml_resize_bilinear(ws.resize_src, (int)num_frames, fe->num_features, clip_out, rows, cols);
    }
    free(ws.memory);
    free(flushed);
    return status;
}

/* ---- streaming ----------------------------------------------------------------- */

/* Partial blocks of at least this many frames are computed as full blocks. */
#ifndef STREAM_PAD_MIN_FRAMES
#define STREAM_PAD_MIN_FRAMES 2
#endif

struct tinyml_frontend_stream {
    const tinyml_frontend *fe;
    workspace ws;
    float *buffer;           /* samples from the start of the next frame on */
    int64_t buffered;        /* samples in buffer */
    int64_t capacity;        /* one block of TINYML_LANES frames */
    int64_t samples_seen;    /* since reset */
    int64_t frames_emitted;  /* since reset */
};

tinyml_frontend_stream *tinyml_frontend_stream_create(const tinyml_frontend *fe)
{
    tinyml_frontend_stream *s = (tinyml_frontend_stream *)calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->fe = fe;
    s->capacity = fe->config.frame_length_samples + (int64_t)(TINYML_LANES - 1) * fe->config.frame_step_samples;
    /* zeroed: a padded block (below) reads past the buffered samples */
    s->buffer = (float *)calloc((size_t)s->capacity, sizeof(float));
    if (!s->buffer || workspace_init(&s->ws, fe, 0) != TINYML_OK) {
        free(s->buffer);
        free(s);
        return NULL;
    }
    pcen_restart(fe, &s->ws);
    return s;
}

void tinyml_frontend_stream_destroy(tinyml_frontend_stream *s)
{
    if (!s)
        return;
    free(s->ws.memory);
    free(s->buffer);
    free(s);
}

void tinyml_frontend_stream_reset(tinyml_frontend_stream *s)
{
    pcen_restart(s->fe, &s->ws);
    s->buffered = 0;
    s->samples_seen = 0;
    s->frames_emitted = 0;
}

int64_t tinyml_frontend_stream_frames_after(const tinyml_frontend_stream *s, int64_t num_samples)
{
    return tinyml_frontend_num_frames(s->fe, s->samples_seen + num_samples) - s->frames_emitted;
}

int64_t tinyml_frontend_stream_push(tinyml_frontend_stream *s, const void *chunk, int chunk_is_int16, int64_t n,
                                    float *out)
{
    const tinyml_frontend *fe = s->fe;
    const int64_t step = fe->config.frame_step_samples;
    int has_tiny = 0;
    if (!chunk_is_int16) {
        const int status = scan_samples((const float *)chunk, (size_t)n, &has_tiny);
        if (status != 0)
            return status;
    }
    int64_t produced = 0, pos = 0;
    while (pos < n) {
        /* with frame_step > frame_length some samples belong to no frame */
        const int64_t next_frame_start = s->frames_emitted * step;
        if (s->buffered == 0 && s->samples_seen < next_frame_start) {
            const int64_t gap = next_frame_start - s->samples_seen;
            const int64_t skip = gap < n - pos ? gap : n - pos;
            s->samples_seen += skip;
            pos += skip;
            continue;
        }
        int64_t take = s->capacity - s->buffered;
        if (take > n - pos)
            take = n - pos;
        float *dst = s->buffer + s->buffered;
        if (chunk_is_int16) {
            const int16_t *src = (const int16_t *)chunk + pos;
            for (int64_t i = 0; i < take; i++)
                dst[i] = (float)src[i] * INT16_SCALE;
        } else if (has_tiny) {
            tinyml_copy_flushing_tiny(dst, (const float *)chunk + pos, (size_t)take);
        } else {
            memcpy(dst, (const float *)chunk + pos, (size_t)take * sizeof(float));
        }
        s->buffered += take;
        s->samples_seen += take;
        pos += take;

        int64_t ready;
        while ((ready = tinyml_frontend_num_frames(fe, s->buffered)) > 0) {
            const int lanes = (int)(ready < TINYML_LANES ? ready : TINYML_LANES);
            /* A partial block of several frames runs as a full one (the buffer
             * holds a full block's samples: the extra lanes read older, finite
             * samples or zeros and are dropped); lanes are independent, so the
             * frames are the same bits, faster (5 frames of a 100 ms hop: -30 %). */
            const int block = lanes >= STREAM_PAD_MIN_FRAMES ? TINYML_LANES : lanes;
            compute_frames(fe, &s->ws, s->buffer, NULL, block, lanes, out + produced * fe->num_features);
            produced += lanes;
            s->frames_emitted += lanes;
            const int64_t consumed = lanes * step;
            if (consumed < s->buffered) {
                memmove(s->buffer, s->buffer + consumed, (size_t)(s->buffered - consumed) * sizeof(float));
                s->buffered -= consumed;
            } else {
                s->buffered = 0;
            }
        }
    }
    return produced;
}
