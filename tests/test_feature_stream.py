"""native.feature_stream and native.posteriors: the fused live path gives the same bits as the separate pieces."""
import math
from collections import deque

import numpy as np
import pytest

from native.posteriors import MAX_LABELS, PosteriorSmoother, softmax, sum_like_numpy
from native.feature_stream import FeatureStream, energy
from native.frontend import Frontend, resize_bilinear
from native.params import FrontendParams
from native.resample import Resampler, ratio_for, resample_poly

MFCC = FrontendParams()  # 16 kHz, 640/320, 40 mel bins, 10 MFCCs: 49 frames a second
LOG_MEL = FrontendParams(feature_kind="log_mel", frame_length_samples=480, frame_step_samples=160)


def _audio(seconds, rate_hz, seed=0):
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal(int(seconds * rate_hz))).astype(np.float32)


def _windows(stream, audio, chunk_sizes):
    """Push audio in chunks of the given sizes (cycled); collect (last frame, window copy)."""
    windows, position, sizes = [], 0, iter(np.resize(chunk_sizes, audio.size))
    while position < audio.size:
        size = int(next(sizes))
        stream.push(audio[position:position + size])
        position += size
        while (frame := stream.next_window()) >= 0:
            windows.append((frame, stream.window.copy()))
    return windows


@pytest.mark.parametrize("params", [MFCC, LOG_MEL], ids=["mfcc", "log_mel"])
@pytest.mark.parametrize("input_rate_hz", [48000, 44100, 16000])
@pytest.mark.parametrize("chunks", [[4800], [1, 7, 333, 2048, 9000], [100000]], ids=["hop", "ragged", "whole"])
def test_windows_equal_batch_features_of_the_resampled_audio(params, input_rate_hz, chunks):
    audio = _audio(2.5, input_rate_hz)
    stream = FeatureStream(params, input_rate_hz, window_rows=49, hop_frames=5)
    windows = _windows(stream, audio, chunks)
    up, down = ratio_for(input_rate_hz, params.sample_rate_hz)
    batch = Frontend(params).compute(resample_poly(audio, up, down) if up != down else audio)
    assert [frame for frame, _ in windows] == list(range(48, 48 + 5 * len(windows), 5))
    assert len(windows) >= (batch.shape[0] - 1 - 48) // 5  # all but the frames the resampler still owes
    for frame, window in windows:
        np.testing.assert_array_equal(window, batch[frame - 48:frame + 1])


def test_frames_do_not_depend_on_the_chunking():
    audio = _audio(3.0, 48000, seed=1)
    reference = _windows(FeatureStream(MFCC, 48000, 49, 3), audio, [4800])
    ragged = _windows(FeatureStream(MFCC, 48000, 49, 3), audio, [5, 4801, 17, 2999, 1])
    assert len(reference) == len(ragged) > 10
    for (frame_a, window_a), (frame_b, window_b) in zip(reference, ragged):
        assert frame_a == frame_b
        np.testing.assert_array_equal(window_a, window_b)


def _all_frames(stream):
    """Every frame a window_rows=1, hop_frames=1 stream has ready, stacked."""
    frames = []
    while stream.next_window() >= 0:
        frames.append(stream.window[0].copy())
    return np.array(frames, np.float32).reshape(-1, stream.num_features)


@pytest.mark.parametrize("input_rate_hz", [48000, 44100])
@pytest.mark.parametrize("chunk_size", [1, 17, 997, "whole"])
def test_flush_gives_the_frames_of_the_whole_signal_resampled_one_shot(input_rate_hz, chunk_size):
    audio = _audio(1.0, input_rate_hz, seed=4)
    stream = FeatureStream(MFCC, input_rate_hz, window_rows=1, hop_frames=1)
    size = audio.size if chunk_size == "whole" else chunk_size
    frames = []
    for start in range(0, audio.size, size):
        stream.push(audio[start:start + size])
        frames.append(_all_frames(stream))
    before = sum(len(f) for f in frames)
    new_frames = stream.flush()
    frames.append(_all_frames(stream))
    up, down = ratio_for(input_rate_hz, MFCC.sample_rate_hz)
    resampled = resample_poly(audio, up, down)
    # the one-shot output is what the streaming resampler gives, flush included
    resampler = Resampler(up, down)
    np.testing.assert_array_equal(np.concatenate([resampler.process(audio), resampler.flush()]), resampled)
    expected = Frontend(MFCC).compute(resampled)
    assert expected.shape[0] == 49 and before == 48 and new_frames == 1  # a 1 s file: the last frame is the tail's
    np.testing.assert_array_equal(np.concatenate(frames), expected)  # the same C code: bit for bit


def test_a_one_second_file_at_48_khz_gets_its_window_after_flush():
    audio = _audio(1.0, 48000, seed=5)
    stream = FeatureStream(MFCC, 48000, window_rows=49, hop_frames=5)
    stream.push(audio)
    assert stream.next_window() == -1  # the resampler still holds the end of the last frame
    assert stream.flush() == 1
    assert stream.next_window() == 48
    np.testing.assert_array_equal(stream.window, Frontend(MFCC).compute(resample_poly(audio, 1, 3)))
    assert stream.next_window() == -1


@pytest.mark.parametrize("input_rate_hz", [48000, 16000])
@pytest.mark.parametrize("last_window", [True, False])
def test_flush_decides_the_last_window_at_the_last_frame(input_rate_hz, last_window):
    audio = _audio(1.25, input_rate_hz, seed=6)  # 61 frames: regular windows end at 48, 53, 58
    stream = FeatureStream(MFCC, input_rate_hz, window_rows=49, hop_frames=5)
    windows = _windows(stream, audio, [input_rate_hz // 10])
    assert stream.flush(last_window=last_window) == 0  # the resampler's tail holds no frame's end here
    while (frame := stream.next_window()) >= 0:
        windows.append((frame, stream.window.copy()))
    assert [frame for frame, _ in windows] == [48, 53, 58] + ([60] if last_window else [])
    up, down = ratio_for(input_rate_hz, MFCC.sample_rate_hz)
    batch = Frontend(MFCC).compute(resample_poly(audio, up, down) if up != down else audio)
    assert batch.shape[0] == 61
    for frame, window in windows:
        np.testing.assert_array_equal(window, batch[frame - 48:frame + 1])


def test_a_stream_shorter_than_a_window_gives_none_even_after_flush():
    stream = FeatureStream(MFCC, 48000, window_rows=49, hop_frames=5)
    stream.push(_audio(0.5, 48000))
    assert stream.flush() >= 0 and stream.next_window() == -1


def test_after_flush_push_is_refused_until_reset():
    audio = _audio(1.0, 44100, seed=7)
    stream = FeatureStream(MFCC, 44100, window_rows=49, hop_frames=5)
    stream.push(audio)
    stream.flush()
    assert stream.flushed
    assert stream.flush() == 0  # a second flush has nothing left
    with pytest.raises(ValueError, match="flushed"):
        stream.push(audio[:100])
    assert stream.next_window() == 48
    stream.reset()
    assert not stream.flushed
    stream.push(audio)
    assert stream.next_window() == -1 and stream.flush() >= 1 and stream.next_window() == 48


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_audio_is_refused_and_not_consumed(bad):
    audio = _audio(1.5, 48000)
    clean = FeatureStream(MFCC, 48000, 49, 5)
    dirty = FeatureStream(MFCC, 48000, 49, 5)
    spoiled = audio[:4800].copy()
    spoiled[100] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        dirty.push(spoiled)
    assert dirty.frames_emitted == 0
    assert [f for f, _ in _windows(dirty, audio, [4800])] == [f for f, _ in _windows(clean, audio, [4800])]


@pytest.mark.parametrize("huge", [1e18, -1e30, 2e6])
def test_huge_samples_are_refused_and_the_stream_goes_on(huge):
    # finite |x| ~ 1e18 used to give NaN frames, after which next_window() refused every window until reset()
    audio = _audio(2.0, 48000, seed=8)
    clean = _windows(FeatureStream(MFCC, 48000, 49, 5), audio, [4800])
    stream = FeatureStream(MFCC, 48000, 49, 5)
    spoiled = audio[:4800].copy()
    spoiled[7] = huge
    with pytest.raises(ValueError, match="beyond"):
        stream.push(spoiled)
    assert stream.frames_emitted == 0 and stream.level_dbfs() == -150.0  # nothing consumed
    windows = _windows(stream, audio, [4800])
    assert [f for f, _ in windows] == [f for f, _ in clean] and len(windows) > 5
    for (_, a), (_, b) in zip(windows, clean):
        np.testing.assert_array_equal(a, b)


def test_tiny_samples_give_the_frames_of_zeros():
    tiny = np.full(48000, 1e-39, np.float32)
    stream = FeatureStream(MFCC, 48000, 49, 5)
    stream.push(tiny)
    stream.flush()
    assert stream.next_window() == 48
    np.testing.assert_array_equal(stream.window, Frontend(MFCC).compute(np.zeros(16000, np.float32)))


def test_input_rates_needing_a_huge_filter_are_refused():
    # a 767999 Hz file used to allocate 1.67 GB for the resampler's filter before anything else
    with pytest.raises(ValueError, match="cannot resample 767999 Hz to 16000 Hz"):
        FeatureStream(MFCC, 767999, 49, 5)


def test_energy_is_the_sum_of_squares_in_double_precision():
    audio = _audio(0.3, 48000)
    stream = FeatureStream(MFCC, 48000, 49, 5)
    expected = float(np.sum(audio.astype(np.float64) ** 2))
    assert stream.push(audio) == pytest.approx(expected, rel=1e-12)
    assert energy(audio) == pytest.approx(expected, rel=1e-12)
    assert stream.push(np.zeros(0, np.float32)) == 0.0
    assert np.isnan(energy(np.array([1.0, np.nan], np.float32)))


def test_reset_starts_a_new_stream():
    audio = _audio(1.5, 48000)
    stream = FeatureStream(MFCC, 48000, 49, 5)
    first = _windows(stream, audio, [4800])
    stream.reset()
    assert stream.frames_emitted == 0
    again = _windows(stream, audio, [4800])
    assert [f for f, _ in first] == [f for f, _ in again]
    for (_, a), (_, b) in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_bad_arguments_are_refused_clearly():
    with pytest.raises(ValueError, match="resize must be positive"):
        FeatureStream(FrontendParams(feature_kind="spectrogram"), 16000, 49, 5, resize=(32, 0))
    with pytest.raises(ValueError, match=r"shape \(32, 32\)"):
        FeatureStream(FrontendParams(feature_kind="spectrogram"), 16000, 49, 5, resize=(32, 32),
                      window=np.zeros((49, 321), np.float32))
    with pytest.raises(ValueError, match="input_rate_hz"):
        FeatureStream(MFCC, 0, 49, 5)
    with pytest.raises(ValueError, match="hop_frames"):
        FeatureStream(MFCC, 16000, 49, 0)
    stream = FeatureStream(MFCC, 16000, 49, 5)
    with pytest.raises(ValueError, match="float32"):
        stream.push(np.zeros(10, np.int32))
    with pytest.raises(ValueError, match="1-D"):
        stream.push(np.zeros((10, 2), np.float32))
    with pytest.raises(ValueError, match="shape"):
        FeatureStream(MFCC, 16000, 49, 5, window=np.empty((48, 10), np.float32))
    with pytest.raises(ValueError, match="shape"):
        FeatureStream(MFCC, 16000, 49, 5, window=np.empty((49, 10), np.float64))
    window = np.zeros((49, 10), np.float32)
    stream = FeatureStream(MFCC, 16000, 49, 5, window=window)
    stream.push(_audio(1.0, 16000))
    assert stream.next_window() == 48 and stream.window is window and window.any()


# -- posteriors ------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 100, MAX_LABELS])
def test_sum_and_softmax_have_numpys_bits(n):
    rng = np.random.default_rng(n)
    for scale in (1e-3, 1.0, 40.0):
        for _ in range(200):
            x = (scale * rng.standard_normal(n)).astype(np.float32)
            assert sum_like_numpy(x) == np.float32(np.add.reduce(x))
            expected = np.exp(x - x.max())
            expected /= expected.sum()
            got = softmax(x)
            np.testing.assert_array_equal(got, expected)
            assert got is not x and got.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("windows", [1, 3, 5])
def test_smoother_equals_a_running_sum_over_a_deque(dtype, windows):
    rng = np.random.default_rng(windows)
    labels = 8
    smoother = PosteriorSmoother(windows, labels)
    push, mean = smoother.push, smoother.mean
    queue, running = deque(), np.zeros(labels)
    for _ in range(50):
        p = rng.dirichlet(np.ones(labels)).astype(dtype)
        if len(queue) == windows:
            running -= queue.popleft()
        queue.append(p)
        running += p
        best = push(p)
        np.testing.assert_array_equal(mean, running / len(queue))
        assert best == int(np.argmax(running / len(queue)))
    smoother.clear()
    assert push(np.full(labels, 0.125, dtype)) == 0 and mean.tolist() == [0.125] * labels
    with pytest.raises(ValueError, match="labels"):
        push(np.zeros(3, dtype))
    assert push([0, 1, 0, 0, 0, 0, 0, 0]) == 1  # a list: converted to float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("exponent", [2.0, 1 / 0.35])
def test_smoother_sharpens_each_window_before_the_mean(dtype, exponent):
    rng = np.random.default_rng(7)
    labels, windows = 10, 3
    smoother = PosteriorSmoother(windows, labels, exponent)
    queue = deque(maxlen=windows)
    for k in range(40):
        p = np.zeros(labels, dtype) if k % 9 == 4 else rng.dirichlet(np.ones(labels)).astype(dtype)
        powered = p.astype(np.float64) ** exponent
        queue.append(powered / powered.sum() if powered.sum() > 0 else powered)  # a gated window stays zeros
        best = smoother.push(p)
        expected = np.mean(queue, axis=0)
        np.testing.assert_allclose(smoother.mean, expected, rtol=1e-12, atol=1e-15)
        assert best == int(np.argmax(smoother.mean))
    one = PosteriorSmoother(windows, labels, 1.0)
    p = rng.dirichlet(np.ones(labels)).astype(dtype)
    one.push(p)
    np.testing.assert_array_equal(one.mean, p.astype(np.float64))  # exponent 1: added as given, bit for bit
    single = PosteriorSmoother(1, labels, exponent)
    single.push(p)
    assert single.mean[np.argmax(p)] > p.max()  # one window: the leader's share grows


def test_smoother_sharpening_never_underflows_and_refuses_what_would_poison_its_sum():
    smoother = PosteriorSmoother(2, 4, 1000.0)  # 0.25 ** 1000 is 0 in float64; divided by the largest first
    smoother.push(np.full(4, 0.25))
    np.testing.assert_array_equal(smoother.mean, [0.25] * 4)
    smoother.push(np.array([0.5, 0.49, 0.01, 0.0]))
    assert smoother.mean[0] > 0.6 and smoother.mean[1] > 0.125
    before = smoother.mean.copy()
    for exponent in (1.0, 2.0):
        check = PosteriorSmoother(2, 4, exponent)
        for bad in ([np.nan, 0.5, 0.25, 0.25], [np.inf, 0, 0, 0], [0.5, -np.inf, 0.25, 0.25]):
            with pytest.raises(ValueError, match="finite"):
                check.push(np.array(bad))
        assert check.push(np.array([0.1, 0.7, 0.1, 0.1])) == 1 and check.mean[1] > 0.69  # nothing was added before
    np.testing.assert_array_equal(smoother.mean, before)
    rounded = PosteriorSmoother(1, 3, 2.0)  # a stored 1 - 0.9 - 0.1 below zero counts as zero, never NaN
    rounded.push(np.array([0.9, 0.1, -2.8e-17]))
    np.testing.assert_allclose(rounded.mean, [0.81 / 0.82, 0.01 / 0.82, 0.0])


def test_posterior_faces_refuse_what_they_cannot_compute():
    with pytest.raises(ValueError, match="no values"):
        softmax(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="float32"):
        sum_like_numpy(np.zeros(3))
    with pytest.raises(ValueError, match="windows"):
        PosteriorSmoother(0, 8)
    for exponent in (0.0, -1.0, math.inf, math.nan, "sharp"):
        with pytest.raises(ValueError, match="exponent"):
            PosteriorSmoother(3, 8, exponent)
    # beyond the native sum's order, numpy's own: still numpy's bits
    x = np.random.default_rng(0).standard_normal(MAX_LABELS + 5).astype(np.float32)
    expected = np.exp(x - x.max())
    np.testing.assert_array_equal(softmax(x), expected / expected.sum())


def _reference_level_dbfs(chunks, window_samples):
    """The level meter's rule in plain Python: whole chunks leave while the rest covers the window."""
    held = deque()
    for chunk in chunks:
        held.append(chunk)
        while sum(c.size for c in held) - held[0].size >= window_samples:
            held.popleft()
    energy = sum(float(np.sum(c.astype(np.float64) ** 2)) for c in held)
    samples = sum(c.size for c in held)
    return -150.0 if samples == 0 or energy <= 0 else max(-150.0, 10 * np.log10(energy / samples))


def test_the_stream_keeps_the_level_of_the_last_window_of_input():
    rng = np.random.default_rng(3)
    stream = FeatureStream(MFCC, 48000, 49, 5, level_window_samples=4800)
    assert stream.level_dbfs() == -150.0
    chunks = []
    for size in rng.integers(1, 700, 60):  # many small chunks: the native ring grows
        chunk = (rng.uniform(0.01, 0.5) * rng.standard_normal(size)).astype(np.float32)
        stream.push(chunk)
        chunks.append(chunk)
        assert stream.level_dbfs() == pytest.approx(_reference_level_dbfs(chunks, 4800), abs=1e-9)
    stream.reset()
    assert stream.level_dbfs() == -150.0
    stream.push(np.zeros(480, np.float32))
    assert stream.level_dbfs() == -150.0


# -- resized windows ------------------------------------------------------------------------
@pytest.mark.parametrize("input_rate_hz", [16000, 48000])
@pytest.mark.parametrize("resize", [(32, 32), (49, 40), (64, 400)])
def test_a_resized_stream_hands_out_resized_windows(input_rate_hz, resize):
    """Each window equals resize_bilinear of the plain stream's window, and the batch frontend's
    resized features of the same audio (the course's 32x32 spectrogram models stream)."""
    params = FrontendParams(feature_kind="spectrogram")
    audio = _audio(2.0, input_rate_hz)
    resized = _windows(FeatureStream(params, input_rate_hz, 49, 5, resize=resize), audio, [1000, 4801, 7])
    plain = _windows(FeatureStream(params, input_rate_hz, 49, 5), audio, [3333])
    assert [frame for frame, _ in resized] == [frame for frame, _ in plain] and resized
    for (_, window), (_, frames) in zip(resized, plain):
        assert window.shape == resize
        np.testing.assert_array_equal(window, resize_bilinear(frames, resize))
    model_rate = resample_poly(audio, *ratio_for(input_rate_hz, 16000))
    first_second = Frontend(params).compute(model_rate[:16000], resize=resize)
    assert resized[0][0] == 48
    np.testing.assert_array_equal(resized[0][1], first_second)
