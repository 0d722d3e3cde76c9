"""pi_runtime.kws_pipeline: streaming equals batch, decisions tied to frames, the detection policy."""
import math

import numpy as np
import pytest

from native.frontend import Frontend
from native.params import FrontendParams
from native.resample import Resampler, ratio_for
from pi_runtime.kws_pipeline import (SILENCE_DBFS, DetectionPolicy, DetectorConfig, KeywordSpotter, LevelMeter,
                                     as_float_audio, to_probabilities)

MFCC = FrontendParams()  # the course's: 16 kHz, 640/320, 40 mel bins, 10 MFCCs -> (49, 10)
RESIZED_SPECTROGRAM = FrontendParams(feature_kind="spectrogram", resize=(32, 32))


class RecordingModel:
    """Stands in for a LoadedModel: records every window it is given, answers fixed probabilities."""

    def __init__(self, params, labels=("a", "b", "c"), answer=None):
        self.frontend_params = params
        self.labels = list(labels)
        self.sidecar = {"output": "probabilities"}  # says so: no probing windows
        self.windows = []
        self.answer = np.full(len(labels), 1.0 / len(labels), np.float32) if answer is None else answer

    def predict(self, window):
        self.windows.append(np.array(window))
        return self.answer


def _speechy_audio(seconds, rate_hz, seed=0):
    """Noise shaped by a slow envelope: loud enough for the gate, different in every frame."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate_hz)
    envelope = 0.05 + 0.3 * np.abs(np.sin(np.arange(n) / rate_hz * 2 * np.pi * 1.3))
    return (rng.normal(size=n) * envelope).astype(np.float32)


def _push_in_chunks(spotter, audio, chunk):
    detections = []
    for start in range(0, audio.size, chunk):
        detections += spotter.push(audio[start:start + chunk])
    return detections


# -- streaming features equal batch features ----------------------------------------------------
@pytest.mark.parametrize("chunk", [1, 17, 1601, 48000])
def test_windows_equal_batch_features_at_model_rate(chunk):
    audio = _speechy_audio(2.0, 16000)
    model = RecordingModel(MFCC)
    spotter = KeywordSpotter(model, input_rate_hz=16000, config=DetectorConfig(min_level_dbfs=-np.inf))
    _push_in_chunks(spotter, audio, chunk)

    batch = Frontend(MFCC).compute(audio)  # (frames, 10) of the whole stream
    frames_per_window = MFCC.feature_shape[0]
    hop_frames = 5  # 100 ms of 20 ms frames
    assert len(model.windows) == 1 + (batch.shape[0] - frames_per_window) // hop_frames == 11
    for k, window in enumerate(model.windows):
        first = k * hop_frames
        np.testing.assert_allclose(window, batch[first:first + frames_per_window], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk", [17, 4800, 96000])
def test_windows_equal_batch_features_after_streaming_resampler(chunk):
    audio = _speechy_audio(2.0, 48000, seed=1)
    model = RecordingModel(MFCC)
    spotter = KeywordSpotter(model, input_rate_hz=48000, config=DetectorConfig(min_level_dbfs=-np.inf))
    _push_in_chunks(spotter, audio, chunk)

    # The pipeline must compute exactly the features of the resampled stream, however it was chunked.
    resampled = Resampler(*ratio_for(48000, 16000)).process(audio)
    batch = Frontend(MFCC).compute(resampled)
    assert len(model.windows) == 1 + (batch.shape[0] - 49) // 5
    for k, window in enumerate(model.windows):
        np.testing.assert_allclose(window, batch[5 * k:5 * k + 49], rtol=1e-5, atol=1e-5)


def test_resized_spectrogram_window_matches_batch_frontend():
    audio = _speechy_audio(1.5, 16000, seed=2)
    model = RecordingModel(RESIZED_SPECTROGRAM)
    spotter = KeywordSpotter(model, input_rate_hz=16000, config=DetectorConfig(min_level_dbfs=-np.inf))
    spotter.push(audio)
    frontend = Frontend(RESIZED_SPECTROGRAM)
    assert len(model.windows) == 1 + (RESIZED_SPECTROGRAM.num_frames(audio.size) - 49) // 5
    for k, window in enumerate(model.windows):
        clip = audio[320 * 5 * k:320 * 5 * k + 16000]
        assert window.shape == (32, 32)
        np.testing.assert_allclose(window, frontend.compute(clip), rtol=1e-4, atol=1e-4)


def test_decision_times_are_window_ends_in_input_seconds():
    times = []
    model = RecordingModel(MFCC)
    spotter = KeywordSpotter(model, input_rate_hz=16000, config=DetectorConfig(min_level_dbfs=-np.inf),
                             on_decision=lambda decision: times.append(decision.time_s))
    spotter.push(_speechy_audio(1.55, 16000))
    # First window: frames 0..48, ending at sample 48*320+640 = 16000 (1.0 s); then every 100 ms.
    np.testing.assert_allclose(times, [1.0, 1.1, 1.2, 1.3, 1.4, 1.5])
    assert spotter.seconds_in == pytest.approx(1.55)


def test_times_do_not_depend_on_the_input_rate():
    times = []
    spotter = KeywordSpotter(RecordingModel(MFCC), input_rate_hz=48000,
                             config=DetectorConfig(min_level_dbfs=-np.inf),
                             on_decision=lambda decision: times.append(decision.time_s))
    spotter.push(_speechy_audio(1.55, 48000))
    # The resampler's output is aligned with its input: only later, never shifted.
    np.testing.assert_allclose(times, [1.0, 1.1, 1.2, 1.3, 1.4, 1.5])


def test_hop_is_rounded_to_whole_frames():
    spotter = KeywordSpotter(RecordingModel(MFCC), input_rate_hz=16000, config=DetectorConfig(hop_ms=50))
    assert (spotter.hop_frames, spotter.hop_s) == (2, pytest.approx(0.04))  # 50 ms -> 2.5 frames -> 2 (banker's)
    spotter = KeywordSpotter(RecordingModel(MFCC), input_rate_hz=16000, config=DetectorConfig(hop_ms=1))
    assert spotter.hop_frames == 1


def test_reset_gives_the_same_windows_again():
    audio = _speechy_audio(1.3, 48000, seed=3)
    model = RecordingModel(MFCC)
    spotter = KeywordSpotter(model, input_rate_hz=48000, config=DetectorConfig(min_level_dbfs=-np.inf))
    spotter.push(audio)
    first = list(model.windows)
    spotter.reset()
    model.windows.clear()
    spotter.push(audio)
    assert len(first) == len(model.windows) > 0
    for a, b in zip(first, model.windows):
        np.testing.assert_array_equal(a, b)


# -- energy gate ---------------------------------------------------------------------------------
def test_quiet_input_never_reaches_the_model():
    model = RecordingModel(MFCC, answer=np.array([0.0, 1.0, 0.0], np.float32))
    spotter = KeywordSpotter(model, input_rate_hz=16000, config=DetectorConfig(min_level_dbfs=-50))
    noise = np.random.default_rng(0).normal(scale=10 ** (-70 / 20), size=32000).astype(np.float32)
    assert spotter.push(noise) == []
    assert spotter.decisions == 11 and spotter.invocations == 0 and model.windows == []
    assert spotter.level_dbfs == pytest.approx(-70, abs=0.5)

    loud = _speechy_audio(1.0, 16000)
    detections = spotter.push(loud)
    assert spotter.invocations > 0
    assert [d.label for d in detections] == ["b"]  # the model always says "b"; refractory keeps it to one


# -- detection policy ---------------------------------------------------------------------------
def _policy(**config):
    return DetectionPolicy(["x", "y"], DetectorConfig(**config), window_duration_s=1.0)


def test_threshold_smoothing_and_refractory():
    policy = _policy(threshold=0.75, smoothing_windows=2, refractory_ms=500)
    y, x = np.array([0.1, 0.9], np.float32), np.array([0.9, 0.1], np.float32)
    neutral = np.array([0.5, 0.5], np.float32)
    first = policy.update(y, 1.0)
    assert first is not None and (first.label, first.time_s, first.window_start_s) == ("y", 1.0, 0.0)
    assert first.score == pytest.approx(0.9)
    assert policy.update(y, 1.1) is None         # within the 500 ms refractory period
    assert policy.update(neutral, 1.6) is None   # smoothed y = (0.9 + 0.5) / 2 = 0.7 < 0.75
    assert policy.update(x, 1.7) is None         # smoothed x = (0.5 + 0.9) / 2 = 0.7 < 0.75
    detection = policy.update(x, 1.8)            # smoothed x = 0.9
    assert detection is not None and detection.label == "x" and detection.score == pytest.approx(0.9)


def test_gated_windows_pull_the_average_down():
    policy = _policy(threshold=0.6, smoothing_windows=2, refractory_ms=0)
    y = np.array([0.0, 1.0], np.float32)
    assert policy.update(None, 1.0) is None
    assert policy.update(y, 1.1) is None and policy.update(y, 1.2) is not None  # (0 + 1)/2 < 0.6, then 1.0


def test_policy_rejects_outputs_of_the_wrong_size():
    with pytest.raises(ValueError, match="3 outputs for 2 labels"):
        _policy().update(np.ones(3, np.float32) / 3, 1.0)


@pytest.mark.parametrize("bad", [dict(hop_ms=0), dict(hop_ms=math.nan), dict(threshold=1.5), dict(threshold=-0.1),
                                 dict(smoothing_windows=0), dict(smoothing_windows=1.5), dict(refractory_ms=-1),
                                 dict(min_level_dbfs=math.nan)])
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        DetectorConfig(**bad)


# -- small pieces ----------------------------------------------------------------------------------
def test_level_meter_reads_a_sine_at_minus_3_dbfs_and_forgets_old_audio():
    meter = LevelMeter(16000)
    assert meter.level_dbfs == SILENCE_DBFS
    t = np.arange(16000) / 16000
    meter.push((np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    assert meter.level_dbfs == pytest.approx(-3.01, abs=0.02)
    for _ in range(20):  # one second of silence in 50 ms chunks replaces the sine
        meter.push(np.zeros(800, np.float32))
    assert meter.level_dbfs == SILENCE_DBFS


def test_to_probabilities_softmaxes_logits_and_keeps_distributions():
    np.testing.assert_allclose(to_probabilities(np.array([[0.2, 0.8]])), [0.2, 0.8], rtol=1e-6)
    np.testing.assert_allclose(to_probabilities(np.log(np.array([0.25, 0.75]))), [0.25, 0.75], rtol=1e-6)
    np.testing.assert_allclose(to_probabilities(np.array([0.2, 0.8]), outputs_are_logits=True),
                               np.exp([0.2, 0.8]) / np.exp([0.2, 0.8]).sum(), rtol=1e-6)


def test_as_float_audio_scales_int16_and_refuses_bad_audio():
    np.testing.assert_array_equal(as_float_audio(np.array([-32768, 16384], np.int16)), [-1.0, 0.5])
    assert as_float_audio(np.zeros((5, 1), np.float64)).dtype == np.float32
    with pytest.raises(ValueError, match="mono"):
        as_float_audio(np.zeros((5, 2), np.float32))
    with pytest.raises(ValueError, match="int16 or floating"):
        as_float_audio(np.zeros(5, np.int32))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_audio_is_refused_before_any_state_changes(bad):
    spotter = KeywordSpotter(RecordingModel(MFCC), input_rate_hz=48000)
    with pytest.raises(ValueError, match="NaN or infinite"):
        spotter.push(np.array([0.0, bad, 0.1], np.float32))
    assert spotter.samples_in == 0 and spotter.features.frames_emitted == 0


def test_logits_are_recognised_once_and_softmaxed():
    logits = np.array([2.0, -1.0, 0.5], np.float32)
    model = RecordingModel(MFCC, answer=logits)
    model.sidecar = None  # the sidecar does not say: the spotter asks the model twice at start-up
    spotter = KeywordSpotter(model, input_rate_hz=16000, config=DetectorConfig(threshold=0.5))
    assert 1 <= len(model.windows) <= 2
    detections = spotter.push(_speechy_audio(1.0, 16000))
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(spotter.last_probabilities, expected, rtol=1e-6)
    assert [(d.label, round(d.score, 5)) for d in detections] == [("a", round(float(expected[0]), 5))]


def test_int8_rounded_softmax_outputs_count_as_probabilities():
    rounded = np.array([200, 30, 10, 5, 5, 3, 2, 1], np.float64) / 256  # sums to 256/256 minus rounding
    rounded[0] += 3 / 256
    assert to_probabilities(rounded).tolist() == rounded.astype(np.float32).tolist()


def test_spotter_refuses_a_model_without_frontend_or_labels():
    model = RecordingModel(MFCC)
    model.labels = None
    with pytest.raises(ValueError, match="labels"):
        KeywordSpotter(model, input_rate_hz=16000)
    model = RecordingModel(None)
    with pytest.raises(ValueError, match="frontend"):
        KeywordSpotter(model, input_rate_hz=16000)
    with pytest.raises(ValueError, match="input_rate_hz"):
        KeywordSpotter(RecordingModel(MFCC), input_rate_hz=0)


def test_a_word_that_stays_in_the_window_is_reported_once():
    policy = _policy(threshold=0.6, smoothing_windows=1, refractory_ms=0)
    y, low = np.array([0.1, 0.9], np.float32), np.array([0.6, 0.4], np.float32)
    fired = [policy.update(p, 1.0 + 0.1 * k) for k, p in enumerate([y, y, y, low, y])]
    # y fires, stays high (same word: silent), drops to 0.4 (re-armed; "x" at 0.6 fires), y again: a new word.
    assert [d.label if d else None for d in fired] == ["y", None, None, "x", "y"]
