"""Property tests (Hypothesis) of the native pieces, on random toy-sized inputs.

The number of examples comes from the Hypothesis profile (tests/conftest.py:
small by default, many under the "fuzz" profile); these tests set only
``deadline=None`` (a first call builds tables and may be slow).

* the frontend: finite features of the documented shape for any finite audio
  in range, every feature kind;
* streaming frontend = batch, bit for bit, under any chunking;
* streaming resampler (+ flush) = one-shot, bit for bit, under any chunking;
* AudioRing and RowRing = a few lines of Python doing the same;
* FeatureStream (+ flush) = resample_poly -> Frontend.compute, window by window.
"""
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from native.feature_stream import FeatureStream
from native.frontend import Frontend, StreamingFrontend
from native.params import FrontendParams
from native.resample import Resampler, ratio_for, resample_poly
from native.ring import AudioRing, RowRing

FAST_FFT_LENGTHS = (16, 24, 30, 32, 40, 45, 48, 60, 64, 80, 96, 100, 128)


@st.composite
def frontend_params(draw, kinds=("spectrogram", "log_mel", "mfcc", "pcen")):
    """Toy-sized valid FrontendParams (8 kHz, frames of 16 to 128 samples)."""
    kind = draw(st.sampled_from(kinds))
    fft_length = draw(st.sampled_from(FAST_FFT_LENGTHS))
    frame_length = draw(st.integers(2, fft_length))
    num_mel_bins = draw(st.integers(1, 12))
    return FrontendParams(
        sample_rate_hz=8000, frame_length_samples=frame_length, fft_length=fft_length,
        frame_step_samples=draw(st.integers(1, 2 * frame_length)), feature_kind=kind,
        num_mel_bins=num_mel_bins, num_mfccs=draw(st.integers(1, num_mel_bins)),
        lower_edge_hz=draw(st.sampled_from([0.0, 20.0, 300.0])), upper_edge_hz=draw(st.sampled_from([2000.0, 4000.0])), pcen_time_constant_ms=draw(st.sampled_from([5.0, 50.0, 400.0])),
        noise_reduction_time_constant_ms=draw(st.sampled_from([0.0, 5.0, 400.0])) if kind == "pcen" else 0.0,
        noise_reduction_min_remaining=draw(st.sampled_from([0.0, 0.05, 1.0])))


def audio(max_samples, min_samples=0):
    """Finite float32 audio in [-1, 1], with runs of silence and tiny values that arrays of noise lack."""
    # The tiny values as float32 holds them: under NumPy 1.x Hypothesis refuses 3e-8, which float32 rounds.
    tiny = [float(np.float32(value)) for value in (1e-39, 3e-8)]
    samples = st.one_of(st.floats(-1.0, 1.0, width=32), st.sampled_from([0.0, -1.0, 1.0, *tiny]))
    return hnp.arrays(np.float32, st.integers(min_samples, max_samples), elements=samples)


def chunked(draw, signal):
    """signal cut at random points (empty chunks included)."""
    cuts = sorted(draw(st.lists(st.integers(0, signal.size), max_size=12)))
    bounds = [0] + cuts + [signal.size]
    return [signal[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


@settings(deadline=None)
@given(params=frontend_params(), data=st.data())
def test_frontend_gives_finite_features_of_the_documented_shape(params, data):
    clip = data.draw(audio(800, min_samples=params.frame_length_samples))
    out = Frontend(params).compute(clip)
    assert out.shape == (params.num_frames(clip.size), params.num_features) and out.dtype == np.float32
    assert np.isfinite(out).all()
    if params.feature_kind == "spectrogram":
        assert (out >= 0).all()


@settings(deadline=None)
@given(params=frontend_params(), data=st.data())
def test_streaming_frontend_equals_batch_under_any_chunking(params, data):
    clip = data.draw(audio(800))
    stream = StreamingFrontend(params)
    streamed = np.concatenate([stream.push(chunk) for chunk in chunked(data.draw, clip)] +
                              [np.zeros((0, params.num_features), np.float32)])
    if clip.size < params.frame_length_samples:
        assert streamed.shape == (0, params.num_features)
    else:
        np.testing.assert_array_equal(streamed, Frontend(params).compute(clip))


RATIOS = [(1, 3), (1, 2), (2, 1), (3, 2), (160, 441), (147, 160), (1, 6), (5, 7)]


@settings(deadline=None)
@given(ratio=st.sampled_from(RATIOS), data=st.data())
def test_streaming_resampler_plus_flush_equals_one_shot(ratio, data):
    up, down = ratio
    signal = data.draw(audio(3000))
    resampler = Resampler(up, down)
    parts = [resampler.process(chunk) for chunk in chunked(data.draw, signal)] + [resampler.flush()]
    np.testing.assert_array_equal(np.concatenate(parts), resample_poly(signal, up, down))
    # flush resets: the same stream again gives the same samples
    again = np.concatenate([resampler.process(signal), resampler.flush()])
    np.testing.assert_array_equal(again, resample_poly(signal, up, down))


@settings(deadline=None)
@given(capacity=st.integers(1, 40),
       operations=st.lists(st.one_of(st.tuples(st.just("write"), st.integers(0, 60)),
                                     st.tuples(st.just("read"), st.integers(0, 60)),
                                     st.tuples(st.just("clear"), st.just(0))), max_size=40))
def test_audio_ring_behaves_like_a_bounded_queue(capacity, operations):
    ring, model = AudioRing(capacity), deque()
    next_value, dropped, events = 0, 0, 0
    for operation, count in operations:
        if operation == "write":
            chunk = np.arange(next_value, next_value + count, dtype=np.float32)
            next_value += count
            accepted = min(count, capacity - len(model))
            assert ring.write(chunk) == accepted
            model.extend(chunk[:accepted].tolist())
            dropped += count - accepted
            events += count > accepted
        elif operation == "read":
            expected = [model.popleft() for _ in range(min(count, len(model)))]
            np.testing.assert_array_equal(ring.read(count), np.array(expected, np.float32))
        else:
            assert ring.clear() == len(model)
            model.clear()
        assert ring.available == len(model)
        assert (ring.overrun_samples, ring.overrun_events) == (dropped, events)


@settings(deadline=None)
@given(rows=st.integers(1, 8), cols=st.integers(1, 5),
       blocks=st.lists(st.one_of(st.integers(0, 12), st.just("clear")), max_size=20))
def test_row_ring_keeps_the_last_rows_like_a_list(rows, cols, blocks):
    ring, model, total, counter = RowRing(rows, cols), [], 0, 0
    out = np.empty((rows, cols), np.float32)
    for block in blocks:
        if block == "clear":
            ring.clear()
            model, total = [], 0
            continue
        values = np.arange(counter, counter + block * cols, dtype=np.float32).reshape(block, cols)
        counter += block * cols
        ring.push(values)
        model = (model + values.tolist())[-rows:]
        total += block
        expected = np.array(model, np.float32).reshape(-1, cols)
        np.testing.assert_array_equal(ring.snapshot(), expected)
        np.testing.assert_array_equal(ring.snapshot(out=out), expected)
        assert (ring.count, ring.is_full, ring.total_pushed) == (len(model), len(model) == rows, total)


STREAM_PARAMS = {
    "mfcc": FrontendParams(sample_rate_hz=8000, frame_length_samples=80, frame_step_samples=40, num_mel_bins=12,
                           num_mfccs=6),
    "pcen": FrontendParams(sample_rate_hz=8000, frame_length_samples=64, frame_step_samples=64, fft_length=64,
                           feature_kind="pcen", num_mel_bins=8),
}


@settings(deadline=None)
@given(name=st.sampled_from(sorted(STREAM_PARAMS)), input_rate_hz=st.sampled_from([8000, 11025, 16000, 22050, 48000]),
       window_rows=st.integers(1, 12), hop_frames=st.integers(1, 6), last_window=st.booleans(), data=st.data())
def test_feature_stream_equals_the_one_shot_chain(name, input_rate_hz, window_rows, hop_frames, last_window, data):
    params = STREAM_PARAMS[name]
    signal = data.draw(audio(input_rate_hz // 4))
    stream = FeatureStream(params, input_rate_hz, window_rows, hop_frames)
    windows = []
    for chunk in chunked(data.draw, signal):
        stream.push(chunk)
        while (frame := stream.next_window()) >= 0:
            windows.append((frame, stream.window.copy()))
    stream.flush(last_window=last_window)
    while (frame := stream.next_window()) >= 0:
        windows.append((frame, stream.window.copy()))
    up, down = ratio_for(input_rate_hz, params.sample_rate_hz)
    resampled = resample_poly(signal, up, down)
    num_frames = params.num_frames(resampled.size)
    regular = list(range(window_rows - 1, num_frames, hop_frames))
    final = [num_frames - 1] if last_window and num_frames >= window_rows and num_frames - 1 not in regular else []
    assert [frame for frame, _ in windows] == regular + final
    if windows:
        batch = Frontend(params).compute(resampled)
        for frame, window in windows:
            np.testing.assert_array_equal(window, batch[frame + 1 - window_rows:frame + 1])


@pytest.mark.parametrize("value", [np.nan, np.inf, 2e6])
def test_a_bad_sample_anywhere_is_refused_by_every_entry_point(value):
    """Not random, but the same property at each boundary: refused, nothing consumed."""
    signal = np.zeros(4000, np.float32)
    signal[1234] = value
    params = STREAM_PARAMS["mfcc"]
    for call in (lambda: Frontend(params).compute(signal), lambda: StreamingFrontend(params).push(signal),
                 lambda: resample_poly(signal, 1, 2), lambda: Resampler(1, 2).process(signal),
                 lambda: FeatureStream(params, 16000, 4, 1).push(signal)):
        with pytest.raises(ValueError):
            call()
