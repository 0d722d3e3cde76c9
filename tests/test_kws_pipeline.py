"""pi_runtime.kws_pipeline: streaming equals batch, decisions tied to frames, the detection policy,
the open-set labels, the model's output kind and the end of a stream."""
import math
from pathlib import Path

import numpy as np
import pytest

from native.frontend import Frontend
from native.params import FrontendParams, ModelInput
from native.resample import Resampler, ratio_for
from native.resample import resample_poly
from pi_runtime.kws_pipeline import (MAX_SMOOTHING_WINDOWS, DetectionPolicy, DetectorConfig, frames_per_hop,
                                     KeywordSpotter, as_float_audio, to_probabilities)
from pi_runtime.labels import SILENCE_LABEL, UNKNOWN_LABEL
from pi_runtime.sidecar import KwsSpec
from pi_runtime.wav import read_wav

REPO_ROOT = Path(__file__).resolve().parent.parent

MFCC = FrontendParams()  # the course's: 16 kHz, 640/320, 40 mel bins, 10 MFCCs -> (49, 10)
RESIZED_SPECTROGRAM = ModelInput(frontend=FrontendParams(feature_kind="spectrogram"), resize=(32, 32))


class RecordingModel:
    """Stands in for a LoadedModel: records every window it is given, answers fixed probabilities
    (its output kind: ``output_kind``, as the loader decides it from the sidecar and the graph)."""

    def __init__(self, params, labels=("a", "b", "c"), answer=None, output_kind="probabilities"):
        self.path = Path("recording.tflite")
        self.model_input = ModelInput(frontend=params) if isinstance(params, FrontendParams) else params
        self.labels = None if labels is None else list(labels)
        self.spec = None
        self.output_kind = output_kind
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
    frames_per_window = ModelInput(frontend=MFCC).feature_shape[0]
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
    frontend = Frontend(RESIZED_SPECTROGRAM.frontend)
    assert len(model.windows) == 1 + (RESIZED_SPECTROGRAM.frontend.num_frames(audio.size) - 49) // 5
    for k, window in enumerate(model.windows):
        clip = audio[320 * 5 * k:320 * 5 * k + 16000]
        assert window.shape == (32, 32)
        # the same frames and the same C resize: bit for bit
        np.testing.assert_array_equal(window, frontend.compute(clip, resize=(32, 32)))


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


def test_the_hop_is_whole_frames_and_at_most_one_window():
    spotter = KeywordSpotter(RecordingModel(MFCC), input_rate_hz=16000, config=DetectorConfig(hop_ms=60))
    assert (spotter.hop_frames, spotter.hop_s) == (3, pytest.approx(0.06))
    assert frames_per_hop(1000.0, ModelInput(frontend=MFCC)) == 50
    # 2.5 frames used to become 2 without a word; 1 ms became one 20 ms frame
    with pytest.raises(ValueError, match=r"hop_ms 50 is not a whole number of the frontend's 20 ms frames \(e.g. 40 or 60\)"):
        KeywordSpotter(RecordingModel(MFCC), input_rate_hz=16000, config=DetectorConfig(hop_ms=50))
    with pytest.raises(ValueError, match=r"hop_ms 1 is not a whole number .* \(e.g. 20\)"):
        frames_per_hop(1.0, ModelInput(frontend=MFCC))
    with pytest.raises(ValueError, match="longer than the model's 1000 ms window"):
        frames_per_hop(1020.0, ModelInput(frontend=MFCC))
    # the default means about 100 ms: whole frames of any frontend (16 ms frames: 6, 96 ms); 100 ms given to
    # such a frontend is the default too, and 90 ms is refused
    sixteen = ModelInput(frontend=FrontendParams(frame_length_samples=512, frame_step_samples=256, fft_length=512))
    assert frames_per_hop(DetectorConfig().hop_ms, sixteen) == 6
    with pytest.raises(ValueError, match="hop_ms 90 is not a whole number of the frontend's 16 ms frames"):
        frames_per_hop(90.0, sixteen)


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


@pytest.mark.realdata
def test_the_default_gate_lets_through_words_at_the_robustness_bars_level(speech_commands_dir):
    """A word at a peak of -40 dBFS (the robustness bar's level) must reach the model: its
    one-second window is far quieter than its peak (-58.5 dBFS RMS at the median)."""
    from train.kws.data import load_split

    clips = load_split("val", data_dir=speech_commands_dir).audio[::8].astype(np.float32) / 32768
    peaks = np.abs(clips).max(axis=1)
    clips = clips[peaks > 0] / peaks[peaks > 0, None] * np.float32(10 ** (-40 / 20))
    model = RecordingModel(MFCC)
    spotter = KeywordSpotter(model, input_rate_hz=16000)  # the default DetectorConfig
    reached = 0
    for clip in clips:
        spotter.reset()
        spotter.push(clip)
        reached += spotter.invocations > 0
    assert reached >= 0.95 * len(clips), f"{reached} of {len(clips)} clips at -40 dBFS peak passed the gate"


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
    with pytest.raises(ValueError, match="the model gave probabilities must be finite"):  # NaN out of a model
        _policy().update(np.array([np.nan, 1.0], np.float32), 1.0)


@pytest.mark.parametrize("bad", [dict(hop_ms=0), dict(hop_ms=math.nan), dict(threshold=1.5), dict(threshold=-0.1),
                                 dict(smoothing_windows=0), dict(smoothing_windows=1.5), dict(refractory_ms=-1),
                                 dict(smoothing_windows=MAX_SMOOTHING_WINDOWS + 1), dict(smoothing_windows=10 ** 9),
                                 dict(min_level_dbfs=math.nan), dict(temperature=0.0), dict(temperature=-1.0),
                                 dict(temperature=math.inf), dict(temperature=math.nan), dict(temperature=1e-310),
                                 dict(temperature=1000.0)])
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        DetectorConfig(**bad)


# -- small pieces ----------------------------------------------------------------------------------
def test_to_probabilities_softmaxes_logits_and_clips_probabilities():
    np.testing.assert_allclose(to_probabilities(np.array([[0.2, 0.8]]), outputs_are_logits=False), [0.2, 0.8],
                               rtol=1e-6)
    np.testing.assert_allclose(to_probabilities(np.log(np.array([0.25, 0.75])), outputs_are_logits=True),
                               [0.25, 0.75], rtol=1e-6)
    # Logits read as probabilities (a sidecar that says the wrong kind): never a score above 1.
    np.testing.assert_array_equal(to_probabilities(np.array([3.5, -2.0]), outputs_are_logits=False), [1.0, 0.0])


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


def test_a_model_whose_output_kind_nobody_tells_is_refused():
    with pytest.raises(ValueError, match="logits or probabilities"):
        KeywordSpotter(RecordingModel(MFCC, output_kind=None), input_rate_hz=16000)


def test_logits_are_softmaxed_without_probing_the_model():
    logits = np.array([2.0, -1.0, 0.5], np.float32)
    model = RecordingModel(MFCC, answer=logits, output_kind="logits")  # decided once, at load
    spotter = KeywordSpotter(model, input_rate_hz=16000, config=DetectorConfig(threshold=0.5))
    assert model.windows == []  # no probe with made-up input
    detections = spotter.push(_speechy_audio(1.0, 16000))
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(spotter.last_probabilities, expected, rtol=1e-6)
    assert [(d.label, round(d.score, 5)) for d in detections] == [("a", round(float(expected[0]), 5))]


def test_a_model_declared_probabilities_that_outputs_logits_never_scores_above_1():
    model = RecordingModel(MFCC, answer=np.array([4.0, -2.0, 1.5], np.float32))  # logits, sidecar says otherwise
    spotter = KeywordSpotter(model, input_rate_hz=16000, config=DetectorConfig(threshold=0.5))
    detections = spotter.push(_speechy_audio(1.5, 16000))
    assert [d.label for d in detections] == ["a"] and detections[0].score <= 1.0


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


# -- open-set labels --------------------------------------------------------------------------------
OPEN_SET = ["go", "stop", SILENCE_LABEL, UNKNOWN_LABEL]


def _open_policy(keywords=None, **config):
    config = {"threshold": 0.4, "smoothing_windows": 1, "refractory_ms": 0, **config}
    return DetectionPolicy(OPEN_SET, DetectorConfig(**config), window_duration_s=1.0, keywords=keywords)


def test_a_keyword_fires_only_when_it_beats_unknown_and_silence():
    policy = _open_policy()
    assert policy.keywords == ("go", "stop")
    # "go" passes the threshold but _unknown_ is higher: no detection (a word that is not a keyword).
    assert policy.update(np.array([0.42, 0.0, 0.0, 0.58], np.float32), 1.0) is None
    # Tie with _silence_: no win.
    assert policy.update(np.array([0.45, 0.0, 0.45, 0.10], np.float32), 1.1) is None
    detection = policy.update(np.array([0.45, 0.05, 0.10, 0.40], np.float32), 1.2)
    assert detection is not None and detection.label == "go" and detection.score == pytest.approx(0.45)


def test_non_keyword_labels_never_fire_however_sure():
    policy = _open_policy()
    for k, probabilities in enumerate([[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 1, 0]]):
        assert policy.update(np.array(probabilities, np.float32), 1.0 + 0.1 * k) is None
    # A label the sidecar does not list among its keywords is not a keyword either.
    policy = _open_policy(keywords=["stop"])
    assert policy.update(np.array([1, 0, 0, 0], np.float32), 1.0) is None
    assert policy.update(np.array([0, 1, 0, 0], np.float32), 1.1).label == "stop"


def test_smoothing_applies_to_the_unknown_output_too():
    policy = _open_policy(smoothing_windows=2)
    assert policy.update(np.array([0.1, 0.0, 0.0, 0.9], np.float32), 1.0) is None
    # "go" at 0.9 now, but smoothed: go 0.5 vs unknown 0.5 (a tie): no detection yet.
    assert policy.update(np.array([0.9, 0.0, 0.0, 0.1], np.float32), 1.1) is None
    assert policy.update(np.array([0.9, 0.0, 0.0, 0.1], np.float32), 1.2).label == "go"


def test_a_temperature_sharpens_each_window_before_the_mean():
    """The policy at temperature T decides as the policy at 1 on posteriors p ** (1 / T), renormalised."""
    rng = np.random.default_rng(3)
    windows = [rng.dirichlet(np.full(4, 0.7)).astype(np.float32) for _ in range(300)]
    sharp = _open_policy(threshold=0.6, smoothing_windows=3, temperature=0.5)
    plain = _open_policy(threshold=0.6, smoothing_windows=3)
    fired = 0
    for k, window in enumerate(windows):
        squared = window.astype(np.float64) ** 2
        got = sharp.update(window, 0.1 * k)
        expected = plain.update(squared / squared.sum(), 0.1 * k)
        np.testing.assert_allclose(sharp.smoothed, plain.smoothed, rtol=1e-12, atol=1e-15)
        assert (got is None) == (expected is None)
        if got is not None:
            fired += 1
            assert (got.label, got.time_s) == (expected.label, expected.time_s)
            assert got.score == pytest.approx(expected.score, rel=1e-12)
    assert fired > 0
    # A hedging window sharpened: the leader's share grows, here past the threshold.
    hedging = np.array([0.55, 0.15, 0.1, 0.2], np.float32)
    assert _open_policy(threshold=0.6).update(hedging, 1.0) is None
    assert _open_policy(threshold=0.6, temperature=0.5).update(hedging, 1.0).label == "go"


def test_detector_settings_read_a_temperature_and_say_it():
    config = DetectorConfig.from_sidecar({"detector": {"threshold": 0.9, "temperature": 0.35}})
    assert (config.threshold, config.temperature) == (0.9, 0.35)
    assert config.summary() == "thr 0.9, smooth 3, T 0.35, gate -65 dBFS"
    assert DetectorConfig.from_sidecar({"detector": {"threshold": 0.9}}).temperature == 1.0  # older sidecars
    assert DetectorConfig(min_level_dbfs=-math.inf).summary() == "thr 0.8, smooth 3, no gate"
    assert DetectorConfig.from_sidecar({"detector": {"temperature": 0.35}}, temperature=1.0).temperature == 1.0


def test_unknown_keywords_in_the_sidecar_are_refused():
    with pytest.raises(ValueError, match="not among the labels"):
        _open_policy(keywords=["yes"])


def test_spotter_takes_its_keywords_from_the_sidecar():
    model = RecordingModel(MFCC, labels=OPEN_SET, answer=np.array([0.7, 0.1, 0.1, 0.1], np.float32))
    model.spec = KwsSpec(input=model.model_input, labels=tuple(OPEN_SET), keywords=("stop",),
                         output_kind="probabilities")
    spotter = KeywordSpotter(model, input_rate_hz=16000, config=DetectorConfig(threshold=0.5))
    assert spotter.keywords == ("stop",)
    assert spotter.push(_speechy_audio(2.0, 16000)) == []  # "go" is the model's answer, not a keyword here


def test_spotter_listens_for_a_subset_of_the_sidecars_keywords():
    """keywords=("stop",): "go" leading fires nothing (it counts as _unknown_), "stop" leading fires."""
    for answer, expected in (([0.7, 0.1, 0.1, 0.1], []), ([0.1, 0.7, 0.1, 0.1], ["stop"])):
        model = RecordingModel(MFCC, labels=OPEN_SET, answer=np.array(answer, np.float32))
        model.spec = KwsSpec(input=model.model_input, labels=tuple(OPEN_SET), output_kind="probabilities")
        everything = KeywordSpotter(model, input_rate_hz=16000, config=DetectorConfig(threshold=0.5))
        assert everything.keywords == ("go", "stop") and len(everything.push(_speechy_audio(2.0, 16000))) == 1
        spotter = KeywordSpotter(model, input_rate_hz=16000, config=DetectorConfig(threshold=0.5), keywords=["stop"])
        assert spotter.keywords == ("stop",)
        assert [d.label for d in spotter.push(_speechy_audio(2.0, 16000))] == expected
    with pytest.raises(ValueError, match="'_unknown_': a model can listen only for its own keywords"):
        KeywordSpotter(model, input_rate_hz=16000, keywords=["stop", UNKNOWN_LABEL])


def test_8_word_policy_is_unchanged_by_the_open_set_rule():
    """Without _unknown_/_silence_ outputs the open-set rule adds nothing: a replay of random
    posteriors gives the detections of the plain rule (best label, threshold, refractory, re-arm)."""
    rng = np.random.default_rng(0)
    labels = ["down", "go", "left", "no", "right", "stop", "up", "yes"]
    config = DetectorConfig(threshold=0.6, smoothing_windows=3, refractory_ms=300)
    policy = DetectionPolicy(labels, config, window_duration_s=1.0)
    history, detections, expected = [], [], []
    refractory_until, last = -math.inf, None
    current = 0
    for k in range(400):
        if rng.random() < 0.2:  # words of a few windows each, more or less clear
            current = int(rng.integers(8))
        weight = rng.random()
        peaked = (weight * np.eye(8)[current] + (1 - weight) * rng.dirichlet(np.ones(8))).astype(np.float32)
        gated = rng.random() < 0.1
        time_s = 1.0 + 0.1 * k
        detection = policy.update(None if gated else peaked, time_s)
        detections.append(None if detection is None else (detection.label, round(detection.score, 6)))
        history = (history + [np.zeros(8) if gated else peaked.astype(np.float64)])[-3:]
        smoothed = np.mean(history, axis=0)
        best = int(np.argmax(smoothed))
        if last is not None and smoothed[last] < 0.6:
            last = None
        if gated or smoothed[best] < 0.6 or time_s < refractory_until or best == last:
            expected.append(None)
            continue
        refractory_until, last = time_s + 0.3, best
        expected.append((labels[best], round(float(smoothed[best]), 6)))
    assert detections == expected and sum(d is not None for d in detections) > 10


# -- end of stream --------------------------------------------------------------------------------
def _decision_times(seconds, rate_hz, **config):
    times = []
    spotter = KeywordSpotter(RecordingModel(MFCC), input_rate_hz=rate_hz,
                             config=DetectorConfig(min_level_dbfs=-np.inf, **config),
                             on_decision=lambda decision: times.append(round(decision.time_s, 6)))
    spotter.push(_speechy_audio(seconds, rate_hz))
    pushed = list(times)
    spotter.flush()
    assert spotter.seconds_in == pytest.approx(seconds, abs=1.0 / rate_hz)  # the padding is not input
    return pushed, times[len(pushed):]


def test_flush_decides_the_window_of_input_that_ends_between_hops():
    pushed, flushed = _decision_times(1.55, 16000)
    # The last frame ends at 1.54 s (frames of 40 ms every 20 ms): one more window, ending there.
    assert pushed == [1.0, 1.1, 1.2, 1.3, 1.4, 1.5] and flushed == [1.54]


def test_flush_adds_nothing_when_the_last_window_covers_the_input():
    assert _decision_times(1.5, 16000) == ([1.0, 1.1, 1.2, 1.3, 1.4, 1.5], [])


@pytest.mark.parametrize("rate_hz", [48000, 44100])
def test_flush_drains_the_resampler(rate_hz):
    pushed, flushed = _decision_times(1.0, rate_hz)
    assert pushed == [] and flushed == [1.0]  # the resampler held back the end of the first window


def test_flush_pads_input_shorter_than_a_window_and_ends_the_stream():
    spotter = KeywordSpotter(RecordingModel(MFCC), input_rate_hz=16000, config=DetectorConfig(min_level_dbfs=-np.inf))
    assert spotter.flush() == [] and spotter.decisions == 0  # no input, nothing to decide
    spotter.reset()
    spotter.model.answer = np.array([0.0, 1.0, 0.0], np.float32)
    assert spotter.push(_speechy_audio(0.3, 16000)) == []
    assert [d.label for d in spotter.flush()] == ["b"]  # the padded window's detection is returned
    assert spotter.decisions == 1 and spotter.seconds_in == pytest.approx(0.3)
    np.testing.assert_allclose(spotter.model.windows[0], Frontend(MFCC).compute(
        np.concatenate([_speechy_audio(0.3, 16000), np.zeros(11200, np.float32)])), rtol=1e-5, atol=1e-5)
    assert spotter.flush() == [] and spotter.decisions == 1
    with pytest.raises(ValueError):
        spotter.push(np.zeros(10, np.float32))
    spotter.reset()
    spotter.push(np.zeros(10, np.float32))


def _example_clip(start_s=0.5):
    """One second of examples/keywords.wav: "yes", a test-split clip (examples/README.md)."""
    samples, rate_hz = read_wav(REPO_ROOT / "examples" / "keywords.wav")
    return samples[int(start_s * rate_hz):int((start_s + 1.0) * rate_hz)]


@pytest.mark.parametrize("rate_hz", [48000, 44100])
def test_a_one_second_clip_at_any_rate_gives_the_detection_it_gives_at_16_khz(rate_hz):
    from pi_runtime.model import load_model

    model = load_model(REPO_ROOT / "models" / "kws" / "kws_a.tflite.zlib")
    clip = _example_clip()
    results = {}
    for rate, audio in ((16000, clip), (rate_hz, resample_poly(clip, *_ratio(16000, rate_hz)))):
        spotter = KeywordSpotter(model, input_rate_hz=rate)
        detections = spotter.push(audio) + spotter.flush()
        results[rate] = [(d.label, round(d.time_s, 6)) for d in detections], [d.score for d in detections]
    assert results[16000][0] == results[rate_hz][0] == [("yes", 1.0)]
    np.testing.assert_allclose(results[16000][1], results[rate_hz][1], atol=0.02)


def _ratio(from_hz, to_hz):
    divisor = math.gcd(from_hz, to_hz)
    return to_hz // divisor, from_hz // divisor
