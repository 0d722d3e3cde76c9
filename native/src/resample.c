#include "resample.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK TINYML_RESAMPLE_TAP_BLOCK

int tinyml_all_finite(const float *x, size_t n) {
    /* Exponent bits all ones means Inf or NaN; integer OR reduces vectorise. */
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, x + i, sizeof bits);
        bad |= ((bits & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

/* taps . x over n taps (n a multiple of BLOCK).  BLOCK independent partial
 * sums: the compiler maps them to SIMD lanes without reassociating anything,
 * so results are the same at every call site and need no -ffast-math. */
static inline float dot(const float *restrict taps, const float *restrict x, size_t n) {
    float acc[BLOCK] = {0};
    for (size_t i = 0; i < n; i += BLOCK)
        for (size_t k = 0; k < BLOCK; k++) acc[k] += taps[i + k] * x[i + k];
    float sum = 0.0f;
    for (size_t k = 0; k < BLOCK / 2; k++) acc[k] += acc[k + BLOCK / 2];
    for (size_t k = 0; k < BLOCK / 2; k++) sum += acc[k];
    return sum;
}

/* Position of an output on the input: its newest input sample (base) and its
 * filter phase.  Moving to the next output adds down / up input samples. */
typedef struct {
    size_t base, phase;
    size_t up, base_step, phase_step; /* base_step = down / up, phase_step = down % up */
} position;

static position first_position(const tinyml_polyphase *f, size_t base, size_t phase) {
    position p = {base, phase, f->up, f->down / f->up, f->down % f->up};
    return p;
}

static inline void step(position *p) {
    p->base += p->base_step;
    p->phase += p->phase_step;
    if (p->phase >= p->up) {
        p->phase -= p->up;
        p->base += 1;
    }
}

void tinyml_resample_batch(const tinyml_polyphase *f, const float *x, size_t n_in,
                           float *y, size_t n_out, float *scratch) {
    const size_t taps = f->taps_per_phase;
    position at = first_position(f, f->half_len / f->up, f->half_len % f->up);
    for (size_t m = 0; m < n_out; m++, step(&at)) {
        const size_t base = at.base;
        const float *row = f->phases + at.phase * taps;
        if (base + 1 >= taps && base < n_in) {
            y[m] = dot(row, x + (base + 1 - taps), taps);
        } else {
            /* The window [base+1-taps, base] leaves the input: copy it with zeros outside. */
            for (size_t q = 0; q < taps; q++) {
                /* index = base + 1 - taps + q, kept unsigned by testing before subtracting */
                const size_t shifted = base + 1 + q;
                scratch[q] = (shifted >= taps && shifted - taps < n_in) ? x[shifted - taps] : 0.0f;
            }
            y[m] = dot(row, scratch, taps);
        }
    }
}

/* ---- streaming --------------------------------------------------------- */

int tinyml_resampler_init(tinyml_resampler *s, const tinyml_polyphase *filter) {
    memset(s, 0, sizeof *s);
    const size_t n_taps = filter->up * filter->taps_per_phase;
    float *phases = (float *)malloc(n_taps * sizeof(float));
    if (phases == NULL) return -1;
    memcpy(phases, filter->phases, n_taps * sizeof(float));
    s->filter = *filter;
    s->filter.phases = phases;
    /* Room for the history plus a typical chunk; grows when needed. */
    s->capacity = filter->taps_per_phase + 4096;
    s->buffer = (float *)malloc(s->capacity * sizeof(float));
    if (s->buffer == NULL) {
        free(phases);
        s->filter.phases = NULL;
        return -1;
    }
    tinyml_resampler_reset(s);
    return 0;
}

void tinyml_resampler_free(tinyml_resampler *s) {
    free((void *)s->filter.phases);
    free(s->buffer);
    s->filter.phases = NULL;
    s->buffer = NULL;
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

static int reserve(tinyml_resampler *s, size_t extra) {
    if (s->length + extra <= s->capacity) return 0;
    size_t capacity = s->capacity * 2;
    if (capacity < s->length + extra) capacity = s->length + extra;
    float *grown = (float *)realloc(s->buffer, capacity * sizeof(float));
    if (grown == NULL) return -1;
    s->buffer = grown;
    s->capacity = capacity;
    return 0;
}

/* Computes `count` outputs from the buffer, then drops the samples no later output needs. */
static void emit(tinyml_resampler *s, size_t count, float *y) {
    const size_t taps = s->filter.taps_per_phase;
    position at = first_position(&s->filter, s->next_base, s->next_phase);
    for (size_t m = 0; m < count; m++, step(&at))
        y[m] = dot(s->filter.phases + at.phase * taps, s->buffer + (at.base + 1 - taps), taps);
    size_t drop = at.base + 1 - taps; /* oldest sample of the next output's window */
    if (drop > s->length) drop = s->length;
    memmove(s->buffer, s->buffer + drop, (s->length - drop) * sizeof(float));
    s->length -= drop;
    s->next_base = at.base - drop;
    s->next_phase = at.phase;
}

int tinyml_resampler_process(tinyml_resampler *s, const float *x, size_t n, float *y) {
    const size_t count = tinyml_resampler_outputs_for(s, n);
    if (reserve(s, n) != 0) return -1;
    if (n > 0) memcpy(s->buffer + s->length, x, n * sizeof(float));
    s->length += n;
    emit(s, count, y);
    return 0;
}

int tinyml_resampler_flush(tinyml_resampler *s, float *y) {
    const size_t count = tinyml_resampler_flush_outputs(s);
    if (count > 0) {
        /* Zeros after the end, up to the newest sample the last output uses. */
        position last = first_position(&s->filter, s->next_base, s->next_phase);
        for (size_t m = 1; m < count; m++) step(&last);
        const size_t zeros = last.base + 1 > s->length ? last.base + 1 - s->length : 0;
        if (reserve(s, zeros) != 0) return -1;
        memset(s->buffer + s->length, 0, zeros * sizeof(float));
        s->length += zeros;
        emit(s, count, y);
    }
    tinyml_resampler_reset(s);
    return 0;
}
