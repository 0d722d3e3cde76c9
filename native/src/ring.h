/* Ring buffers of float32 samples and of fixed-width float32 rows.
 *
 * tinyml_audio_ring: single-producer / single-consumer, lock-free.  One thread
 * writes (the audio callback), one other thread reads (the processing loop).
 * Positions run modulo 2 * capacity so that "full" and "empty" differ without
 * a wasted slot and without counters that could overflow.  The producer alone
 * stores write_pos, the consumer alone stores read_pos; each publishes its
 * position with a release store after copying the samples and reads the
 * other's with an acquire load before copying, so a sample is never read
 * before it has been written, nor overwritten before it has been read.
 *
 * tinyml_row_ring: the last `rows` rows of `cols` floats; single-threaded.
 */
#ifndef TINYML_RING_H
#define TINYML_RING_H

#include <stddef.h>

#include "status.h"

typedef struct {
    float *samples;            /* capacity floats, owned */
    size_t capacity;           /* samples */
    size_t write_pos;          /* in [0, 2*capacity); stored by the producer only */
    size_t read_pos;           /* in [0, 2*capacity); stored by the consumer only */
    size_t overrun_samples;    /* dropped by write(); stored by the producer only */
    size_t overrun_events;     /* write() calls that dropped something */
} tinyml_audio_ring;

/* Largest capacity accepted: positions must fit 2 * capacity in size_t. */
size_t tinyml_audio_ring_max_capacity(void);

/* TINYML_OK, TINYML_ERR_INVALID_ARGUMENT when capacity is 0 or too large, or
 * TINYML_ERR_NO_MEMORY. */
int tinyml_audio_ring_init(tinyml_audio_ring *ring, size_t capacity);
void tinyml_audio_ring_free(tinyml_audio_ring *ring);

/* Producer side: copies as many of the n samples as fit, drops the rest
 * (counting them), returns how many were accepted.  Never blocks. */
size_t tinyml_audio_ring_write(tinyml_audio_ring *ring, const float *src, size_t n);

/* Consumer side: copies up to max_n of the oldest samples into dst and
 * returns how many were copied. */
size_t tinyml_audio_ring_read(tinyml_audio_ring *ring, float *dst, size_t max_n);

/* Consumer side: discards everything currently held, returns how many. */
size_t tinyml_audio_ring_discard(tinyml_audio_ring *ring);

/* Either side: samples held right now (a lower bound for the consumer,
 * an upper bound for the producer while the other side runs). */
size_t tinyml_audio_ring_available(const tinyml_audio_ring *ring);
size_t tinyml_audio_ring_overrun_samples(const tinyml_audio_ring *ring);
size_t tinyml_audio_ring_overrun_events(const tinyml_audio_ring *ring);

typedef struct {
    float *data;               /* rows * cols floats, owned */
    size_t rows, cols;
    size_t next_row;           /* where the next pushed row goes */
    size_t count;              /* rows held, saturates at rows */
    unsigned long long total_pushed;
} tinyml_row_ring;

/* TINYML_OK, TINYML_ERR_INVALID_ARGUMENT when rows or cols is 0 or rows * cols
 * overflows, or TINYML_ERR_NO_MEMORY. */
int tinyml_row_ring_init(tinyml_row_ring *ring, size_t rows, size_t cols);
void tinyml_row_ring_free(tinyml_row_ring *ring);

/* Pushes n_rows rows (row-major, cols floats each).  TINYML_OK, or
 * TINYML_ERR_NON_FINITE without changing anything when a value is NaN or
 * infinite. */
int tinyml_row_ring_push(tinyml_row_ring *ring, const float *block, size_t n_rows);

/* Copies the held rows, oldest first, into dst (count * cols floats). */
void tinyml_row_ring_snapshot(const tinyml_row_ring *ring, float *dst);

void tinyml_row_ring_clear(tinyml_row_ring *ring);

#endif
