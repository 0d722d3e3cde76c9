#include "resample.h"
#include "samples.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* As in fft.h: on x86-64 with GCC and glibc the kernel is also compiled for
 * AVX2 and the copy to run is picked at load time.  Plain C either way, the
 * same IEEE operations in the same order (no FMA contraction in ISO C mode),
 * so the result does not depend on the copy; 8 floats a vector instead of 4
 * halves the cost of a 100 ms hop at 48 kHz.  -DTINYML_NO_CLONES turns it off. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) && \
    !defined(TINYML_NO_CLONES)
#define RESAMPLE_WIDE_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RESAMPLE_WIDE_VECTOR_CLONES
#endif
/* The kernels are inlined into run_outputs, hence into each of its copies. */
#if defined(__GNUC__)
#define KERNEL static inline __attribute__((always_inline))
#else
#define KERNEL static inline
#endif

/* Outputs of one phase summed together in a block that stays in L1 cache. */
#define CHUNK 256

/* ---- the kernel -------------------------------------------------------- */

/* Split input: row r holds window samples r, r + down, r + 2*down, ...; rows
 * are `stride` floats apart. */
typedef struct {
    const float *rows;
    size_t stride, down;
} split_window;

/* The `count` outputs of one phase, written to y[0], y[y_stride], ...
 * Output k uses window samples offset + k*down + j for taps j, that is split
 * row (offset + j) % down from index (offset + j) / down + k on.  Taps are
 * taken four at a time into one sequential sum per output, over blocks of
 * outputs: a plain loop over k that compilers vectorise as it stands. */
KERNEL void phase_outputs(const float *restrict taps, size_t n_taps, const split_window *w, size_t offset,
                          size_t count, float *y, size_t y_stride) {
    float block[CHUNK];
    const size_t down = w->down, stride = w->stride;
    for (size_t k0 = 0; k0 < count; k0 += CHUNK) {
        const size_t n = count - k0 < CHUNK ? count - k0 : CHUNK;
        float *restrict sums = y_stride == 1 ? y + k0 : block;
        for (size_t k = 0; k < n; k++) sums[k] = 0.0f;
        size_t r = offset % down, i = offset / down + k0;
        size_t j = 0;
        /* Eight taps a pass while they last: half the loads and stores of the
         * sums; each sum still adds its taps one by one, in order. */
        for (; j + 8 <= n_taps; j += 8) {
            const float *restrict s[8];
            for (int q = 0; q < 8; q++) {
                s[q] = w->rows + r * stride + i;
                if (++r == down) { r = 0; i++; }
            }
            const float t0 = taps[j], t1 = taps[j + 1], t2 = taps[j + 2], t3 = taps[j + 3];
            const float t4 = taps[j + 4], t5 = taps[j + 5], t6 = taps[j + 6], t7 = taps[j + 7];
            const float *restrict s0 = s[0], *restrict s1 = s[1], *restrict s2 = s[2], *restrict s3 = s[3];
            const float *restrict s4 = s[4], *restrict s5 = s[5], *restrict s6 = s[6], *restrict s7 = s[7];
            for (size_t k = 0; k < n; k++)
                sums[k] = sums[k] + t0 * s0[k] + t1 * s1[k] + t2 * s2[k] + t3 * s3[k] + t4 * s4[k] + t5 * s5[k] +
                          t6 * s6[k] + t7 * s7[k];
        }
        for (; j < n_taps; j += 4) {
            const float *restrict s0 = w->rows + r * stride + i;
            if (++r == down) { r = 0; i++; }
            const float *restrict s1 = w->rows + r * stride + i;
            if (++r == down) { r = 0; i++; }
            const float *restrict s2 = w->rows + r * stride + i;
            if (++r == down) { r = 0; i++; }
            const float *restrict s3 = w->rows + r * stride + i;
            if (++r == down) { r = 0; i++; }
            const float t0 = taps[j], t1 = taps[j + 1], t2 = taps[j + 2], t3 = taps[j + 3];
            for (size_t k = 0; k < n; k++) sums[k] = sums[k] + t0 * s0[k] + t1 * s1[k] + t2 * s2[k] + t3 * s3[k];
        }
        if (y_stride != 1)
            for (size_t k = 0; k < n; k++) y[(k0 + k) * y_stride] = block[k];
    }
}

/* Few outputs per phase (a short stream chunk at a ratio like 160/441): a few
 * outputs at a time, straight from the input, which avoids splitting the
 * input for a handful of outputs per phase.  Per output it is exactly the
 * arithmetic of phase_outputs (taps four at a time into one sequential sum),
 * so both paths give the same bits; DIRECT outputs run side by side so their
 * sums overlap in the pipeline.  scratch holds DIRECT * taps_per_phase floats,
 * for windows that reach outside x. */
#define DIRECT 4

KERNEL void direct_outputs(const tinyml_polyphase *f, const float *x, size_t n_x, ptrdiff_t first_base,
                           size_t first_phase, size_t count, float *y, float *scratch) {
    const size_t taps = f->taps_per_phase, up = f->up;
    const size_t base_step = f->down / up, phase_step = f->down % up;
    ptrdiff_t base = first_base;
    size_t phase = first_phase;
    for (size_t m0 = 0; m0 < count; m0 += DIRECT) {
        const float *window[DIRECT], *tap_row[DIRECT];
        for (size_t d = 0; d < DIRECT; d++) {
            /* Past the last output, repeat it: computed, never stored. */
            const ptrdiff_t start = base - (ptrdiff_t)(taps - 1);
            tap_row[d] = f->phases + phase * taps;
            if (start >= 0 && base < (ptrdiff_t)n_x) {
                window[d] = x + start;
            } else {
                float *copy = scratch + d * taps;
                for (size_t q = 0; q < taps; q++) {
                    const ptrdiff_t index = start + (ptrdiff_t)q;
                    copy[q] = index >= 0 && index < (ptrdiff_t)n_x ? x[index] : 0.0f;
                }
                window[d] = copy;
            }
            if (m0 + d + 1 < count) {
                base += (ptrdiff_t)base_step;
                phase += phase_step;
                if (phase >= up) {
                    phase -= up;
                    base += 1;
                }
            }
        }
        float sum[DIRECT] = {0};
        for (size_t j = 0; j < taps; j += 4)
            for (size_t d = 0; d < DIRECT; d++) {
                const float *t = tap_row[d], *w = window[d];
                sum[d] = sum[d] + t[j] * w[j] + t[j + 1] * w[j + 1] + t[j + 2] * w[j + 2] + t[j + 3] * w[j + 3];
            }
        for (size_t d = 0; d < DIRECT && m0 + d < count; d++) y[m0 + d] = sum[d];
    }
}

/* Fewer outputs than this per phase, on average, go through direct_outputs():
 * there the split costs more than it saves (measured crossover, x86-64). */
#define MIN_OUTPUTS_PER_PHASE 10

static int use_split(const tinyml_polyphase *f, size_t count) { return count >= MIN_OUTPUTS_PER_PHASE * f->up; }

/* Floats of work memory run_outputs() needs for `count` outputs starting at phase first_phase. */
static size_t work_floats(const tinyml_polyphase *f, size_t count, size_t first_phase) {
    if (count == 0) return 0;
    if (!use_split(f, count)) return DIRECT * f->taps_per_phase;
    const size_t last_offset = (size_t)(((unsigned long long)(count - 1) * f->down + first_phase) / f->up);
    const size_t window = last_offset + f->taps_per_phase;
    return f->down * ((window + f->down - 1) / f->down);
}

/* `count` outputs, the first of which has its newest sample at x index
 * first_base (any value: samples outside x[0:n_x] are zeros) and phase
 * first_phase.  work holds work_floats(f, count, first_phase) floats. */
RESAMPLE_WIDE_VECTOR_CLONES
static void run_outputs(const tinyml_polyphase *f, const float *x, size_t n_x, ptrdiff_t first_base,
                        size_t first_phase, size_t count, float *y, float *work) {
    const size_t taps = f->taps_per_phase, up = f->up, down = f->down;
    if (count == 0) return;
    if (!use_split(f, count)) {
        direct_outputs(f, x, n_x, first_base, first_phase, count, y, work);
        return;
    }
    /* The window: from the oldest sample of the first output to the newest of the last. */
    const size_t last_offset = (size_t)(((unsigned long long)(count - 1) * down + first_phase) / up);
    const ptrdiff_t start = first_base - (ptrdiff_t)(taps - 1);
    const size_t window = last_offset + taps;
    /* No read passes the end of a row: no output uses a sample past window - 1. */
    const size_t row_length = (window + down - 1) / down;

    /* Split it into `down` rows, zeros outside x and after the window. */
    for (size_t r = 0; r < down; r++) {
        float *row = work + r * row_length;
        const ptrdiff_t first = start + (ptrdiff_t)r; /* x index of row[0] */
        const size_t in_window = window > r ? (window - r + down - 1) / down : 0;
        size_t lo = first >= 0 ? 0 : (size_t)((-first + (ptrdiff_t)down - 1) / (ptrdiff_t)down);
        size_t hi = first >= (ptrdiff_t)n_x ? 0 : (size_t)(((ptrdiff_t)n_x - first + (ptrdiff_t)down - 1) / (ptrdiff_t)down);
        if (hi > in_window) hi = in_window;
        if (lo > hi) lo = hi;
        memset(row, 0, lo * sizeof(float));
        if (lo < hi) {
            const float *src = x + (first + (ptrdiff_t)(lo * down));
            if (down == 1) {
                memcpy(row + lo, src, (hi - lo) * sizeof(float));
            } else if (down == 3) { /* 48 kHz -> 16 kHz: a constant stride the compiler vectorises */
                for (size_t i = 0; i < hi - lo; i++) row[lo + i] = src[i * 3];
            } else if (down == 2) {
                for (size_t i = 0; i < hi - lo; i++) row[lo + i] = src[i * 2];
            } else {
                for (size_t i = 0; i < hi - lo; i++) row[lo + i] = src[i * down];
            }
        }
        memset(row + hi, 0, (row_length - hi) * sizeof(float));
    }

    const split_window w = {work, row_length, down};
    size_t offset = 0, phase = first_phase; /* window offset of the oldest sample of output c */
    for (size_t c = 0; c < up && c < count; c++) {
        phase_outputs(f->phases + phase * taps, taps, &w, offset, (count - c + up - 1) / up, y + c, up);
        phase += down;
        offset += phase / up;
        phase %= up;
    }
}

int tinyml_resample_batch(const tinyml_polyphase *f, const float *x, size_t n_in, float *y, size_t n_out) {
    if (n_out == 0) return TINYML_OK;
    int has_tiny = 0;
    tinyml_scan_samples(x, n_in, &has_tiny);
    float *flushed = has_tiny ? (float *)malloc(n_in * sizeof(float)) : NULL; /* rare: a copy without them */
    float *work = (float *)malloc(work_floats(f, n_out, f->half_len % f->up) * sizeof(float));
    if (work == NULL || (has_tiny && flushed == NULL)) {
        free(work);
        free(flushed);
        return TINYML_ERR_NO_MEMORY;
    }
    if (has_tiny) {
        tinyml_copy_flushing_tiny(flushed, x, n_in);
        x = flushed;
    }
    run_outputs(f, x, n_in, (ptrdiff_t)(f->half_len / f->up), f->half_len % f->up, n_out, y, work);
    free(work);
    free(flushed);
    return TINYML_OK;
}

/* ---- streaming --------------------------------------------------------- */

int tinyml_resampler_init(tinyml_resampler *s, const tinyml_polyphase *filter) {
    memset(s, 0, sizeof *s);
    const size_t n_taps = filter->up * filter->taps_per_phase;
    float *phases = (float *)malloc(n_taps * sizeof(float));
    /* Room for the history plus a typical chunk; grows when needed. */
    s->capacity = filter->taps_per_phase + 4096;
    s->buffer = (float *)malloc(s->capacity * sizeof(float));
    if (phases == NULL || s->buffer == NULL) {
        free(phases);
        free(s->buffer);
        s->buffer = NULL;
        return TINYML_ERR_NO_MEMORY;
    }
    memcpy(phases, filter->phases, n_taps * sizeof(float));
    s->filter = *filter;
    s->filter.phases = phases;
    tinyml_resampler_reset(s);
    return TINYML_OK;
}

void tinyml_resampler_free(tinyml_resampler *s) {
    free((void *)s->filter.phases);
    free(s->buffer);
    free(s->work);
    s->filter.phases = NULL;
    s->buffer = NULL;
    s->work = NULL;
}

void tinyml_resampler_reset(tinyml_resampler *s) {
    /* taps-1 zeros stand for the silence before the first sample, as in the batch form. */
    const size_t history = s->filter.taps_per_phase - 1;
    memset(s->buffer, 0, history * sizeof(float));
    s->length = history;
    s->next_base = history + s->filter.half_len / s->filter.up;
    s->next_phase = s->filter.half_len % s->filter.up;
}

/* Outputs whose upsampled-grid position is below `limit` (both relative to the buffer). */
static size_t outputs_before(const tinyml_resampler *s, unsigned long long limit) {
    const unsigned long long position = (unsigned long long)s->next_base * s->filter.up + s->next_phase;
    if (limit <= position) return 0;
    return (size_t)((limit - position + s->filter.down - 1) / s->filter.down);
}

size_t tinyml_resampler_outputs_for(const tinyml_resampler *s, size_t n_new) {
    /* An output is ready once its newest input sample (its base) has arrived. */
    return outputs_before(s, (unsigned long long)(s->length + n_new) * s->filter.up);
}

size_t tinyml_resampler_flush_outputs(const tinyml_resampler *s) {
    /* The batch form stops at output ceil(n_in * up / down), i.e. below input end + half_len. */
    return outputs_before(s, (unsigned long long)s->length * s->filter.up + s->filter.half_len);
}

static int grow(float **memory, size_t *capacity, size_t needed) {
    if (needed <= *capacity) return TINYML_OK;
    size_t larger = *capacity * 2 > needed ? *capacity * 2 : needed;
    float *grown = (float *)realloc(*memory, larger * sizeof(float));
    if (grown == NULL) return TINYML_ERR_NO_MEMORY;
    *memory = grown;
    *capacity = larger;
    return TINYML_OK;
}

/* Makes sure the work memory fits `count` outputs from the current position. */
static int reserve_work(tinyml_resampler *s, size_t count) {
    return grow(&s->work, &s->work_capacity, work_floats(&s->filter, count, s->next_phase));
}

/* Computes `count` outputs from the buffer, then drops the samples no later output needs. */
static void emit(tinyml_resampler *s, size_t count, float *y) {
    run_outputs(&s->filter, s->buffer, s->length, (ptrdiff_t)s->next_base, s->next_phase, count, y, s->work);
    const unsigned long long advanced = (unsigned long long)count * s->filter.down + s->next_phase;
    const size_t base = s->next_base + (size_t)(advanced / s->filter.up);
    s->next_phase = (size_t)(advanced % s->filter.up);
    size_t drop = base + 1 - s->filter.taps_per_phase; /* oldest sample of the next output's window */
    if (drop > s->length) drop = s->length;
    memmove(s->buffer, s->buffer + drop, (s->length - drop) * sizeof(float));
    s->length -= drop;
    s->next_base = base - drop;
}

int tinyml_resampler_process(tinyml_resampler *s, const float *x, size_t n, float *y) {
    const size_t count = tinyml_resampler_outputs_for(s, n);
    if (grow(&s->buffer, &s->capacity, s->length + n) != 0 || reserve_work(s, count) != 0) return TINYML_ERR_NO_MEMORY;
    tinyml_copy_flushing_tiny(s->buffer + s->length, x, n);
    s->length += n;
    emit(s, count, y);
    return TINYML_OK;
}

int tinyml_resampler_flush(tinyml_resampler *s, float *y) {
    const size_t count = tinyml_resampler_flush_outputs(s);
    if (reserve_work(s, count) != 0) return TINYML_ERR_NO_MEMORY;
    emit(s, count, y); /* samples past the buffer's end read as zeros */
    tinyml_resampler_reset(s);
    return TINYML_OK;
}
