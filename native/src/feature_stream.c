#include "feature_stream.h"

#include "samples.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- level meter ------------------------------------------------------- */

int tinyml_level_meter_init(tinyml_level_meter *m, size_t window_samples) {
    memset(m, 0, sizeof *m);
    if (window_samples == 0) return TINYML_ERR_INVALID_ARGUMENT;
    m->capacity = 16;
    m->chunks = (tinyml_level_chunk *)malloc(m->capacity * sizeof *m->chunks);
    if (m->chunks == NULL) return TINYML_ERR_NO_MEMORY;
    m->window_samples = window_samples;
    return TINYML_OK;
}

void tinyml_level_meter_free(tinyml_level_meter *m) {
    free(m->chunks);
    memset(m, 0, sizeof *m);
}

void tinyml_level_meter_reset(tinyml_level_meter *m) {
    m->first = m->held = 0;
    m->sum_squares = 0.0;
    m->samples = 0;
}

int tinyml_level_meter_add(tinyml_level_meter *m, double energy, size_t samples) {
    if (samples == 0) return TINYML_OK;
    if (m->held == m->capacity) { /* grow, unrolling the ring to the front */
        tinyml_level_chunk *grown = (tinyml_level_chunk *)malloc(2 * m->capacity * sizeof *grown);
        if (grown == NULL) return TINYML_ERR_NO_MEMORY;
        for (size_t i = 0; i < m->held; i++) grown[i] = m->chunks[(m->first + i) % m->capacity];
        free(m->chunks);
        m->chunks = grown;
        m->capacity *= 2;
        m->first = 0;
    }
    m->chunks[(m->first + m->held) % m->capacity] = (tinyml_level_chunk){energy, samples};
    m->held++;
    m->sum_squares += energy;
    m->samples += samples;
    /* Drop whole chunks while the rest still covers the window. */
    while (m->held > 0 && m->samples - m->chunks[m->first].samples >= m->window_samples) {
        m->sum_squares -= m->chunks[m->first].energy;
        m->samples -= m->chunks[m->first].samples;
        m->first = (m->first + 1) % m->capacity;
        m->held--;
    }
    return TINYML_OK;
}

double tinyml_level_meter_dbfs(const tinyml_level_meter *m, double silence_dbfs) {
    if (m->samples == 0 || !(m->sum_squares > 0.0)) return silence_dbfs;
    const double level = 10.0 * log10(m->sum_squares / (double)m->samples);
    return level > silence_dbfs ? level : silence_dbfs;
}

/* ---- feature stream ----------------------------------------------------- */

int tinyml_feature_stream_init(tinyml_feature_stream *s, const tinyml_polyphase *filter, tinyml_frontend *frontend,
                               size_t window_rows, size_t hop_frames, size_t level_window_samples,
                               int resize_rows, int resize_cols) {
    memset(s, 0, sizeof *s);
    s->frontend = frontend;
    int status = TINYML_ERR_NO_MEMORY; /* a NULL frontend: its creation ran out of memory */
    if (frontend == NULL) goto fail;
    status = TINYML_ERR_INVALID_ARGUMENT;
    if (window_rows == 0 || hop_frames == 0 || window_rows > INT_MAX) goto fail;
    if (resize_rows < 0 || resize_cols < 0 || (resize_rows == 0) != (resize_cols == 0)) goto fail;
    status = tinyml_level_meter_init(&s->level, level_window_samples);
    if (status != TINYML_OK) goto fail;
    s->num_features = (size_t)tinyml_frontend_num_features(frontend);
    s->frames = tinyml_frontend_stream_create(frontend);
    status = TINYML_ERR_NO_MEMORY;
    if (s->frames == NULL) goto fail;
    status = tinyml_row_ring_init(&s->window, window_rows, s->num_features);
    if (status != TINYML_OK) goto fail;
    status = TINYML_ERR_NO_MEMORY;
    if (resize_rows > 0) {
        s->resize_src = (float *)malloc(window_rows * s->num_features * sizeof(float));
        s->resize_rows_index = (tinyml_lerp_index *)malloc((size_t)resize_rows * sizeof(tinyml_lerp_index));
        s->resize_cols_index = (tinyml_lerp_index *)malloc((size_t)resize_cols * sizeof(tinyml_lerp_index));
        if (s->resize_src == NULL || s->resize_rows_index == NULL || s->resize_cols_index == NULL) goto fail;
        tinyml_resize_indices((int)window_rows, resize_rows, s->resize_rows_index);
        tinyml_resize_indices((int)s->num_features, resize_cols, s->resize_cols_index);
        s->resize_rows = resize_rows;
        s->resize_cols = resize_cols;
    }
    if (filter != NULL) {
        status = tinyml_resampler_init(&s->resampler, filter);
        if (status != TINYML_OK) goto fail;
        s->resampling = 1;
    }
    s->hop_frames = hop_frames;
    tinyml_feature_stream_reset(s);
    return TINYML_OK;
fail:
    tinyml_feature_stream_free(s);
    return status;
}

void tinyml_feature_stream_free(tinyml_feature_stream *s) {
    if (s->resampling) tinyml_resampler_free(&s->resampler);
    s->resampling = 0;
    tinyml_row_ring_free(&s->window);
    tinyml_frontend_stream_destroy(s->frames);
    tinyml_frontend_destroy(s->frontend);
    tinyml_level_meter_free(&s->level);
    free(s->resampled);
    free(s->pending);
    free(s->resize_src);
    free(s->resize_rows_index);
    free(s->resize_cols_index);
    memset(s, 0, sizeof *s);
}

void tinyml_feature_stream_reset(tinyml_feature_stream *s) {
    if (s->resampling) tinyml_resampler_reset(&s->resampler);
    tinyml_frontend_stream_reset(s->frames);
    tinyml_row_ring_clear(&s->window);
    s->pending_first = s->pending_end = 0;
    s->frames_until_window = s->window.rows;
    s->frames_emitted = 0;
    s->flushed = 0;
    s->last_window = 0;
    tinyml_level_meter_reset(&s->level);
}

/* As in fft.h: an AVX2 copy picked at load time where glibc allows (same operations). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) && \
    !defined(TINYML_NO_CLONES)
__attribute__((target_clones("avx2", "default")))
#endif
double tinyml_energy(const float *x, size_t n) {
    /* 32 independent sums: a loop the compiler vectorises without reordering
     * any one sum, with enough of them to hide the latency of each addition. */
    double partial[32] = {0};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (size_t j = 0; j < 32; j++) partial[j] += (double)x[i + j] * (double)x[i + j];
    for (; i < n; i++) partial[0] += (double)x[i] * (double)x[i];
    double total = 0.0;
    for (size_t j = 0; j < 32; j++) total += partial[j];
    return total;
}

static int grow(float **memory, size_t *capacity, size_t needed, size_t unit) {
    if (needed <= *capacity) return TINYML_OK;
    size_t larger = *capacity * 2 > needed ? *capacity * 2 : needed;
    float *grown = (float *)realloc(*memory, larger * unit * sizeof(float));
    if (grown == NULL) return TINYML_ERR_NO_MEMORY;
    *memory = grown;
    *capacity = larger;
    return TINYML_OK;
}

/* Runs `count` samples at the frontend's rate through the streaming frontend
 * into the pending frames. */
static int append_frames(tinyml_feature_stream *s, const float *samples, size_t count) {
    if (count == 0) return TINYML_OK;
    /* Keep the frames not yet taken at the front, then append the new ones. */
    const size_t kept = s->pending_end - s->pending_first;
    const int64_t new_frames = tinyml_frontend_stream_frames_after(s->frames, (int64_t)count);
    if (grow(&s->pending, &s->pending_capacity, kept + (size_t)new_frames + 1, s->num_features) != 0)
        return TINYML_ERR_NO_MEMORY;
    if (s->pending_first > 0 && kept > 0)
        memmove(s->pending, s->pending + s->pending_first * s->num_features, kept * s->num_features * sizeof(float));
    s->pending_first = 0;
    s->pending_end = kept;
    const int64_t produced = tinyml_frontend_stream_push(s->frames, samples, 0, (int64_t)count,
                                                         s->pending + kept * s->num_features);
    if (produced < 0) return (int)produced;
    s->pending_end += (size_t)produced;
    return TINYML_OK;
}

int tinyml_feature_stream_push(tinyml_feature_stream *s, const float *x, size_t n, double *energy) {
    *energy = tinyml_energy(x, n);
    const int range = tinyml_scan_samples(x, n, NULL); /* tiny samples: flushed by the next stage's copy */
    if (range != TINYML_OK) return range;
    if (s->flushed) return TINYML_ERR_FLUSHED;
    const float *samples = x;
    size_t count = n;
    if (s->resampling) {
        count = tinyml_resampler_outputs_for(&s->resampler, n);
        if (grow(&s->resampled, &s->resampled_capacity, count ? count : 1, 1) != 0) return TINYML_ERR_NO_MEMORY;
        if (tinyml_resampler_process(&s->resampler, x, n, s->resampled) != 0) return TINYML_ERR_NO_MEMORY;
        samples = s->resampled;
    }
    const int status = append_frames(s, samples, count);
    if (status != 0) return status;
    return tinyml_level_meter_add(&s->level, *energy, n);
}

int tinyml_feature_stream_flush(tinyml_feature_stream *s, int last_window, int64_t *new_frames) {
    *new_frames = 0;
    if (s->flushed) return TINYML_OK;
    if (s->resampling) {
        const size_t count = tinyml_resampler_flush_outputs(&s->resampler);
        if (grow(&s->resampled, &s->resampled_capacity, count ? count : 1, 1) != 0) return TINYML_ERR_NO_MEMORY;
        const int64_t frames_before = (int64_t)(s->pending_end - s->pending_first);
        /* pending room first: once the resampler has flushed, nothing may fail */
        const size_t room = s->pending_end - s->pending_first +
                            (size_t)tinyml_frontend_stream_frames_after(s->frames, (int64_t)count) + 1;
        if (grow(&s->pending, &s->pending_capacity, room, s->num_features) != 0) return TINYML_ERR_NO_MEMORY;
        if (tinyml_resampler_flush(&s->resampler, s->resampled) != 0) return TINYML_ERR_NO_MEMORY;
        const int status = append_frames(s, s->resampled, count);
        if (status != 0) return status;
        *new_frames = (int64_t)(s->pending_end - s->pending_first) - frames_before;
    }
    s->flushed = 1;
    s->last_window = last_window != 0;
    return TINYML_OK;
}

/* Moves `take` pending frames into the ring; on a non-finite frame, drops
 * them and empties the ring (the next window needs window_rows new frames). */
static int take_frames(tinyml_feature_stream *s, size_t take) {
    const int status = tinyml_row_ring_push(&s->window, s->pending + s->pending_first * s->num_features, take);
    s->pending_first += take;
    s->frames_emitted += (int64_t)take;
    if (status != 0) {
        tinyml_row_ring_clear(&s->window);
        s->frames_until_window = s->window.rows;
        return TINYML_ERR_NON_FINITE;
    }
    s->frames_until_window -= take;
    return TINYML_OK;
}

/* The window, oldest frame first, into out: as it is, or resized. */
static int64_t hand_out_window(tinyml_feature_stream *s, float *out) {
    s->frames_until_window = s->hop_frames;
    if (s->resize_rows == 0) {
        tinyml_row_ring_snapshot(&s->window, out);
    } else {
        tinyml_row_ring_snapshot(&s->window, s->resize_src);
        tinyml_resize_apply(s->resize_src, (int)s->num_features, s->resize_rows_index, s->resize_rows,
                            s->resize_cols_index, s->resize_cols, out);
    }
    return s->frames_emitted - 1;
}

int64_t tinyml_feature_stream_next_window(tinyml_feature_stream *s, float *out) {
    const size_t available = s->pending_end - s->pending_first;
    if (available == 0) return -1;
    if (available < s->frames_until_window) {
        /* No decision point: after a flush with a last window, the window at
         * the last frame, once the ring is full; otherwise keep the frames. */
        if (!(s->flushed && s->last_window)) return -1;
        if (take_frames(s, available) != 0) return TINYML_ERR_NON_FINITE;
        if (s->window.count < s->window.rows) return -1;
        return hand_out_window(s, out);
    }
    if (take_frames(s, s->frames_until_window) != 0) return TINYML_ERR_NON_FINITE;
    return hand_out_window(s, out);
}
