"""native.ring: exactness against Python models, overrun accounting, two real threads, bad input."""
import threading
import time
from collections import deque

import numpy as np
import pytest

from native.ring import AudioRing, RowRing


# ---------------------------------------------------------------- AudioRing --

def counter(start, n):
    """Consecutive integers as float32: exact up to 2**24, so order and gaps are visible."""
    return np.arange(start, start + n, dtype=np.float32)


@pytest.mark.parametrize("capacity", [1, 7, 64, 1000])
def test_audio_ring_equals_a_bounded_deque_model(capacity):
    rng = np.random.default_rng(capacity)
    ring, model = AudioRing(capacity), deque()
    dropped = events = 0
    next_value = 0
    for _ in range(600):
        if rng.random() < 0.5:
            n = int(rng.integers(0, 2 * capacity + 2))
            chunk = counter(next_value, n)
            next_value += n
            fits = min(n, capacity - len(model))
            model.extend(chunk[:fits].tolist())
            dropped += n - fits
            events += fits < n
            assert ring.write(chunk) == fits
        else:
            want = int(rng.integers(0, 2 * capacity + 2))
            expected = [model.popleft() for _ in range(min(want, len(model)))]
            got = ring.read(want)
            assert got.dtype == np.float32 and got.shape == (len(expected),)
            np.testing.assert_array_equal(got, np.array(expected, dtype=np.float32))
        assert ring.available == len(model)
        assert ring.overrun_samples == dropped and ring.overrun_events == events


def test_audio_ring_overrun_counts_are_exact():
    ring = AudioRing(10)
    assert ring.write(counter(0, 6)) == 6
    assert ring.write(counter(6, 6)) == 4            # 2 dropped
    assert ring.write(counter(12, 3)) == 0           # 3 dropped
    assert ring.write(np.zeros(0, np.float32)) == 0  # an empty write is no overrun
    assert (ring.overrun_samples, ring.overrun_events) == (5, 2)
    np.testing.assert_array_equal(ring.read(100), counter(0, 10))
    assert ring.write(counter(20, 25)) == 10         # wraps, 15 dropped
    assert (ring.overrun_samples, ring.overrun_events) == (20, 3)
    np.testing.assert_array_equal(ring.read(4), counter(20, 4))
    np.testing.assert_array_equal(ring.read(100), counter(24, 6))
    assert ring.available == 0 and ring.read(5).shape == (0,)


def test_audio_ring_read_into_and_clear():
    ring = AudioRing(8)
    ring.write(counter(0, 5))
    out = np.full(3, -1, np.float32)
    assert ring.read_into(out) == 3
    np.testing.assert_array_equal(out, counter(0, 3))
    assert ring.clear() == 2 and ring.available == 0
    ring.write(counter(5, 8))  # wraps around the end of the storage
    out = np.full(10, -1, np.float32)
    assert ring.read_into(out) == 8
    np.testing.assert_array_equal(out[:8], counter(5, 8))
    assert ring.read_into(np.zeros(0, np.float32)) == 0


def test_audio_ring_accepts_int16_and_sounddevice_frames():
    ring = AudioRing(16)
    pcm = np.array([-32768, -1, 0, 1, 32767], np.int16)
    ring.write(pcm)
    np.testing.assert_array_equal(ring.read(5), pcm.astype(np.float32) / 32768)
    ring.write(counter(0, 4).reshape(4, 1))          # (frames, 1) from sounddevice
    ring.write(pcm.reshape(-1, 1)[::2])              # non-contiguous too
    np.testing.assert_array_equal(ring.read(16), np.concatenate([counter(0, 4), pcm[::2] / np.float32(32768)]))


@pytest.mark.parametrize(
    "chunk",
    [
        np.zeros((4, 2), np.float32),   # stereo
        np.zeros((2, 3, 1), np.float32),
        np.float32(1.0),                # 0-d
        np.zeros(4, np.float64),
        np.zeros(4, np.int32),
        ["a", "b"],
    ],
)
def test_audio_ring_rejects_bad_chunks(chunk):
    ring = AudioRing(8)
    with pytest.raises(ValueError):
        ring.write(chunk)
    assert ring.available == 0 and ring.overrun_samples == 0


@pytest.mark.parametrize("capacity", [0, -5, 2.5, True, "16", None, 2**70])
def test_audio_ring_rejects_bad_capacity(capacity):
    with pytest.raises(ValueError):
        AudioRing(capacity)


def test_audio_ring_rejects_bad_read_arguments():
    ring = AudioRing(8)
    for bad in (-1, 1.5, None):
        with pytest.raises(ValueError):
            ring.read(bad)
    for bad in (np.zeros(4, np.float64), np.zeros((2, 2), np.float32), np.zeros(8, np.float32)[::2], [0.0]):
        with pytest.raises(ValueError):
            ring.read_into(bad)
    readonly = np.zeros(4, np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError):
        ring.read_into(readonly)


def _run_threads(ring, chunks, *, wait_for_space, consumer_pause_s=0.0):
    """Producer writes chunks of a counter, consumer reads until the producer is done and the ring empty."""
    accepted_counts, received = [], []
    producer_done = threading.Event()

    def producer():
        for chunk in chunks:
            if wait_for_space:  # a polite producer: only write what will fit
                while ring.capacity - ring.available < len(chunk):
                    time.sleep(0)
            accepted_counts.append(ring.write(chunk))
        producer_done.set()

    def consumer():
        out = np.empty(257, np.float32)  # odd size: reads straddle the wrap point
        while True:
            finished = producer_done.is_set()  # read this before draining, so nothing written later is missed
            taken = ring.read_into(out)
            if taken:
                received.append(out[:taken].copy())
            elif finished:
                return
            if consumer_pause_s:
                time.sleep(consumer_pause_s)

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return accepted_counts, (np.concatenate(received) if received else np.zeros(0, np.float32))


def test_audio_ring_two_threads_lose_and_duplicate_nothing_when_capacity_suffices():
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 600, size=3000)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    chunks = [counter(start, size) for start, size in zip(starts, sizes)]
    ring = AudioRing(1000)
    accepted, received = _run_threads(ring, chunks, wait_for_space=True)
    assert accepted == sizes.tolist()
    assert ring.overrun_samples == 0 and ring.overrun_events == 0
    np.testing.assert_array_equal(received, counter(0, int(sizes.sum())))


def test_audio_ring_two_threads_account_for_every_dropped_sample():
    sizes = [480] * 3000
    chunks = [counter(480 * i, 480) for i in range(len(sizes))]
    ring = AudioRing(2000)
    accepted, received = _run_threads(ring, chunks, wait_for_space=False, consumer_pause_s=0.0002)
    written = sum(sizes)
    assert ring.overrun_samples > 0  # the slow consumer made the producer drop samples
    assert len(received) + ring.overrun_samples == written
    assert ring.overrun_events == sum(a < n for a, n in zip(accepted, sizes))
    # What arrived is exactly the accepted head of each chunk, in order.
    expected = np.concatenate([chunk[:a] for chunk, a in zip(chunks, accepted)])
    np.testing.assert_array_equal(received, expected)


# ------------------------------------------------------------------ RowRing --

@pytest.mark.parametrize("rows,cols", [(1, 1), (6, 2), (49, 10), (5, 3)])
def test_row_ring_equals_a_deque_model(rows, cols):
    rng = np.random.default_rng(rows * 100 + cols)
    ring, model = RowRing(rows, cols), deque(maxlen=rows)
    total = 0
    for _ in range(300):
        k = int(rng.integers(0, 2 * rows + 2))
        block = rng.standard_normal((k, cols)).astype(np.float32)
        ring.push(block)
        model.extend(block)
        total += k
        expected = np.array(model, dtype=np.float32).reshape(len(model), cols)
        snapshot = ring.snapshot()
        assert snapshot.dtype == np.float32 and snapshot.flags.c_contiguous
        np.testing.assert_array_equal(snapshot, expected)
        assert ring.count == len(model) and ring.is_full == (len(model) == rows)
        assert ring.total_pushed == total


def test_row_ring_snapshot_is_oldest_first_and_a_copy():
    ring = RowRing(3, 2)
    assert ring.snapshot().shape == (0, 2) and not ring.is_full
    ring.push([1.0, 10.0])                 # one row, 1-D
    ring.push(np.array([[2, 20], [3, 30]], np.float64))
    assert ring.is_full
    first = ring.snapshot()
    ring.push(np.array([[4, 40]], np.float32))
    np.testing.assert_array_equal(first, [[1, 10], [2, 20], [3, 30]])
    np.testing.assert_array_equal(ring.snapshot(), [[2, 20], [3, 30], [4, 40]])
    out = np.empty((3, 2), np.float32)
    view = ring.snapshot(out=out)
    assert np.shares_memory(view, out)
    np.testing.assert_array_equal(out, [[2, 20], [3, 30], [4, 40]])
    ring.push(np.arange(20, dtype=np.float32).reshape(10, 2))  # longer than the ring
    np.testing.assert_array_equal(ring.snapshot(), [[14, 15], [16, 17], [18, 19]])
    assert ring.total_pushed == 14
    ring.clear()
    assert (ring.count, ring.total_pushed, ring.is_full) == (0, 0, False)
    ring.push([5.0, 50.0])
    np.testing.assert_array_equal(ring.snapshot(out=out), [[5, 50]])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e39])  # 1e39 overflows float32 to inf
def test_row_ring_rejects_non_finite_rows_and_keeps_its_state(bad):
    ring = RowRing(4, 2)
    ring.push([[1.0, 2.0]])
    block = np.array([[3.0, 4.0], [5.0, bad]])
    with pytest.raises(ValueError, match="NaN or infinite"):
        ring.push(block)
    np.testing.assert_array_equal(ring.snapshot(), [[1, 2]])
    assert ring.total_pushed == 1


@pytest.mark.parametrize(
    "block",
    [
        np.zeros((2, 3), np.float32),   # wrong width
        np.zeros(3, np.float32),
        np.zeros((1, 2, 2), np.float32),
        np.zeros((2, 2), np.int16),     # not floating point
        np.zeros((2, 2), bool),
        np.float32(1.0),
        "ab",
    ],
)
def test_row_ring_rejects_bad_blocks(block):
    ring = RowRing(4, 2)
    with pytest.raises(ValueError):
        ring.push(block)
    assert ring.count == 0


def test_row_ring_rejects_bad_construction_and_buffers():
    for rows, cols in [(0, 2), (2, 0), (-1, 2), (2.5, 2), (True, 2), (2**62, 2**62)]:
        with pytest.raises(ValueError):
            RowRing(rows, cols)
    ring = RowRing(3, 2)
    for out in (np.empty((2, 2), np.float32), np.empty((3, 2), np.float64), np.empty((2, 3), np.float32).T):
        with pytest.raises(ValueError):
            ring.snapshot(out=out)
