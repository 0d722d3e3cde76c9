#include "ring.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "samples.h"

/* GCC and Clang atomic builtins (C11 memory orders) work under -std=c99 too,
 * which <stdatomic.h> does not. */
#if !defined(__GNUC__) && !defined(__clang__)
#error "ring.c needs the __atomic builtins of GCC or Clang (the compilers of Raspberry Pi OS and Linux)"
#endif
#define LOAD_ACQUIRE(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD_RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_RELEASE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define STORE_RELAXED(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

size_t tinyml_audio_ring_max_capacity(void) { return SIZE_MAX / 4; }

int tinyml_audio_ring_init(tinyml_audio_ring *ring, size_t capacity) {
    memset(ring, 0, sizeof *ring);
    if (capacity == 0 || capacity > tinyml_audio_ring_max_capacity()) return TINYML_ERR_INVALID_ARGUMENT;
    ring->samples = (float *)calloc(capacity, sizeof(float));
    if (ring->samples == NULL) return TINYML_ERR_NO_MEMORY;
    ring->capacity = capacity;
    return TINYML_OK;
}

void tinyml_audio_ring_free(tinyml_audio_ring *ring) {
    free(ring->samples);
    ring->samples = NULL;
    ring->capacity = 0;
}

/* Samples between two positions that both run modulo 2 * capacity.  Clamped
 * to capacity so that even a misuse (two producers or two consumers racing)
 * can never make a copy run past the storage. */
static size_t used_between(size_t capacity, size_t write_pos, size_t read_pos) {
    const size_t used = write_pos >= read_pos ? write_pos - read_pos : write_pos + 2 * capacity - read_pos;
    return used < capacity ? used : capacity;
}

static size_t advance(size_t capacity, size_t pos, size_t n) {
    pos += n;
    return pos >= 2 * capacity ? pos - 2 * capacity : pos;
}

static size_t slot_of(size_t capacity, size_t pos) { return pos >= capacity ? pos - capacity : pos; }

size_t tinyml_audio_ring_write(tinyml_audio_ring *ring, const float *src, size_t n) {
    const size_t capacity = ring->capacity;
    const size_t write_pos = LOAD_RELAXED(&ring->write_pos); /* our own */
    const size_t read_pos = LOAD_ACQUIRE(&ring->read_pos);   /* the consumer is done with those slots */
    const size_t free_slots = capacity - used_between(capacity, write_pos, read_pos);
    const size_t accepted = n < free_slots ? n : free_slots;
    if (accepted > 0) {
        const size_t slot = slot_of(capacity, write_pos);
        const size_t first = accepted < capacity - slot ? accepted : capacity - slot;
        memcpy(ring->samples + slot, src, first * sizeof(float));
        if (accepted > first) memcpy(ring->samples, src + first, (accepted - first) * sizeof(float));
        STORE_RELEASE(&ring->write_pos, advance(capacity, write_pos, accepted)); /* publish the samples */
    }
    if (accepted < n) {
        STORE_RELAXED(&ring->overrun_samples, LOAD_RELAXED(&ring->overrun_samples) + (n - accepted));
        STORE_RELAXED(&ring->overrun_events, LOAD_RELAXED(&ring->overrun_events) + 1);
    }
    return accepted;
}

size_t tinyml_audio_ring_read(tinyml_audio_ring *ring, float *dst, size_t max_n) {
    const size_t capacity = ring->capacity;
    const size_t read_pos = LOAD_RELAXED(&ring->read_pos);   /* our own */
    const size_t write_pos = LOAD_ACQUIRE(&ring->write_pos); /* the producer's samples are visible */
    const size_t used = used_between(capacity, write_pos, read_pos);
    const size_t taken = max_n < used ? max_n : used;
    if (taken > 0) {
        const size_t slot = slot_of(capacity, read_pos);
        const size_t first = taken < capacity - slot ? taken : capacity - slot;
        memcpy(dst, ring->samples + slot, first * sizeof(float));
        if (taken > first) memcpy(dst + first, ring->samples, (taken - first) * sizeof(float));
        STORE_RELEASE(&ring->read_pos, advance(capacity, read_pos, taken)); /* hand the slots back */
    }
    return taken;
}

size_t tinyml_audio_ring_discard(tinyml_audio_ring *ring) {
    const size_t read_pos = LOAD_RELAXED(&ring->read_pos);
    const size_t write_pos = LOAD_ACQUIRE(&ring->write_pos);
    STORE_RELEASE(&ring->read_pos, write_pos);
    return used_between(ring->capacity, write_pos, read_pos);
}

size_t tinyml_audio_ring_available(const tinyml_audio_ring *ring) {
    return used_between(ring->capacity, LOAD_ACQUIRE(&ring->write_pos), LOAD_ACQUIRE(&ring->read_pos));
}

size_t tinyml_audio_ring_overrun_samples(const tinyml_audio_ring *ring) {
    return LOAD_RELAXED(&ring->overrun_samples);
}

size_t tinyml_audio_ring_overrun_events(const tinyml_audio_ring *ring) {
    return LOAD_RELAXED(&ring->overrun_events);
}

/* ---- row ring ---------------------------------------------------------- */

int tinyml_row_ring_init(tinyml_row_ring *ring, size_t rows, size_t cols) {
    memset(ring, 0, sizeof *ring);
    if (rows == 0 || cols == 0 || rows > SIZE_MAX / sizeof(float) / cols) return TINYML_ERR_INVALID_ARGUMENT;
    ring->data = (float *)calloc(rows * cols, sizeof(float));
    if (ring->data == NULL) return TINYML_ERR_NO_MEMORY;
    ring->rows = rows;
    ring->cols = cols;
    return TINYML_OK;
}

void tinyml_row_ring_free(tinyml_row_ring *ring) {
    free(ring->data);
    ring->data = NULL;
}

int tinyml_row_ring_push(tinyml_row_ring *ring, const float *block, size_t n_rows) {
    const size_t rows = ring->rows, cols = ring->cols;
    if (!tinyml_all_finite(block, n_rows * cols)) return TINYML_ERR_NON_FINITE;
    if (n_rows == 0) return TINYML_OK;
    ring->total_pushed += n_rows;
    /* Only the last `rows` rows of the block can survive. */
    if (n_rows >= rows) {
        memcpy(ring->data, block + (n_rows - rows) * cols, rows * cols * sizeof(float));
        ring->next_row = 0;
        ring->count = rows;
        return TINYML_OK;
    }
    const size_t first = n_rows < rows - ring->next_row ? n_rows : rows - ring->next_row;
    memcpy(ring->data + ring->next_row * cols, block, first * cols * sizeof(float));
    memcpy(ring->data, block + first * cols, (n_rows - first) * cols * sizeof(float));
    ring->next_row = (ring->next_row + n_rows) % rows;
    ring->count = ring->count + n_rows < rows ? ring->count + n_rows : rows;
    return TINYML_OK;
}

void tinyml_row_ring_snapshot(const tinyml_row_ring *ring, float *dst) {
    const size_t cols = ring->cols;
    if (ring->count == 0) return;
    /* The oldest held row sits `count` rows behind next_row. */
    const size_t oldest = (ring->next_row + ring->rows - ring->count) % ring->rows;
    const size_t first = ring->count < ring->rows - oldest ? ring->count : ring->rows - oldest;
    memcpy(dst, ring->data + oldest * cols, first * cols * sizeof(float));
    memcpy(dst + first * cols, ring->data, (ring->count - first) * cols * sizeof(float));
}

void tinyml_row_ring_clear(tinyml_row_ring *ring) {
    ring->next_row = 0;
    ring->count = 0;
    ring->total_pushed = 0;
}
