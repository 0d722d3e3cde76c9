"""train.kws.streams: labelled streams built deterministically, detections scored and charged to the
right kind of audio, the DET curve against a hand-computed example, replay equal to the live run."""
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Tuple

import numpy as np
import pytest

from kws_toy import random_decisions
from native.params import FrontendParams, ModelInput
from pi_runtime.kws_pipeline import Decision, Detection, DetectorConfig
from pi_runtime.replay import replay, replay_thresholds
from train.kws.data import ClipSet
from train.kws.streams import (GAP_KIND, KEYWORD_CLIP_KIND, MISS_BELOW_THRESHOLD, MISS_GATED, MISS_HELD_BACK,
                               MISS_OTHER_KEYWORD, MISS_REJECTED, Event, LabelledStream, StreamRecipe,
                               background_event_kind, build_stream, det_curve, miss_reasons, run_pipeline, score)


@dataclass(frozen=True)
class FakeNegatives:
    """The fields of train.kws.negatives.GeneratedClips that streams use."""

    audio: np.ndarray
    classes: Tuple[str, ...]
    kinds: Tuple[str, ...]
    sources: Tuple[str, ...]

    def __len__(self):
        return len(self.kinds)


def _tone_clips(count, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    clips = np.zeros((count, 16000), np.int16)
    for clip in clips:
        burst = (t > 0.3) & (t < 0.6)
        clip[burst] = (8000 * np.sin(2 * np.pi * rng.uniform(300, 3000) * t[burst])).astype(np.int16)
    return clips


def _keyword_clips():
    return ClipSet(audio=_tone_clips(3, 0), label_ids=np.array([0, 1, 0], np.int32), labels=("go", "stop"),
                   paths=[Path("go/a.wav"), Path("stop/b.wav"), Path("go/c.wav")])


def _negatives():
    audio = _tone_clips(6, 1)
    return FakeNegatives(audio=audio, classes=("_unknown_",) * 5 + ("_silence_",),
                         kinds=("tts_word",) * 4 + ("reversed", "noise_pink"),
                         sources=tuple(f"neg{k}" for k in range(6)))


# -- building -------------------------------------------------------------------------------------
def test_a_clean_stream_holds_each_clip_at_its_event():
    stream = build_stream(_keyword_clips(), _negatives(), recipe=StreamRecipe(seed=3, gap_noise_dbfs=None))
    assert len(stream.events) == 9
    assert stream.kind_counts() == {KEYWORD_CLIP_KIND: 3, "noise_pink": 1, "reversed": 1, "tts_word": 4}
    clips = {event.source: event for event in stream.events}
    first = clips["go/a.wav"]
    start = int(round(first.start_s * 16000))
    np.testing.assert_array_equal(stream.audio[start:start + 16000], _keyword_clips().audio[0] / 32768.0)
    assert (first.label, first.condition) == ("go", "clean") and math.isnan(first.peak_dbfs)
    for before, after in zip(stream.events, stream.events[1:]):
        assert 1.0 <= after.start_s - before.end_s <= 2.0
    assert not stream.audio[-32000:].any()  # two seconds of silence at the end
    assert "seed 3" in stream.description


def test_the_same_seed_gives_the_same_stream():
    recipe = StreamRecipe(seed=5, peak_dbfs=(-40.0, 0.0), background_share=1.0, background_minutes=0.5,
                          stretch_s=5.0, babble_talkers=(2, 3))
    first = build_stream(_keyword_clips(), _negatives(), recipe=recipe)
    again = build_stream(_keyword_clips(), _negatives(), recipe=recipe)
    other = build_stream(_keyword_clips(), _negatives(), recipe=StreamRecipe(**{**recipe.__dict__, "seed": 6}))
    np.testing.assert_array_equal(first.audio, again.audio)
    assert first.events == again.events
    assert first.audio.size != other.audio.size or not np.array_equal(first.audio, other.audio)


def test_levels_backgrounds_and_stretches_are_applied_as_recorded():
    recipe = StreamRecipe(seed=1, peak_dbfs=(-40.0, -10.0), background_share=1.0, background_minutes=0.5,
                          stretch_s=5.0, babble_talkers=(2, 3))
    stream = build_stream(_keyword_clips(), _negatives(), recipe=recipe)
    stretches = [event for event in stream.events if event.source.endswith("stretch")]
    assert len(stretches) == 6 and all(event.end_s - event.start_s == pytest.approx(5.0) for event in stretches)
    assert {event.kind for event in stretches} <= {"babble_stretch", "noise_white_stretch", "noise_pink_stretch",
                                                    "noise_brown_stretch"}
    for event in stream.events:
        start, end = int(round(event.start_s * 16000)), int(round(event.end_s * 16000))
        assert -40.0 <= event.peak_dbfs <= -10.0
        peak = np.max(np.abs(stream.audio[start:end]))
        assert 20 * np.log10(peak) == pytest.approx(event.peak_dbfs, abs=1e-3)
        if not event.source.endswith("stretch"):
            kind, snr, unit = event.condition.split()
            assert kind in ("babble", "white", "pink", "brown") and float(snr) in (20, 10, 5) and unit == "dB"


def test_bad_recipes_are_refused():
    with pytest.raises(ValueError, match="peak_dbfs"):
        StreamRecipe(peak_dbfs=(-10.0, 3.0))
    with pytest.raises(ValueError, match="background kind"):
        StreamRecipe(background_kinds=("rain",))
    with pytest.raises(ValueError, match="needs keyword clips"):
        build_stream()


# -- scoring: a hand-made event list ---------------------------------------------------------------
def _hand_made_stream():
    events = (Event(1.0, 2.0, "go", KEYWORD_CLIP_KIND), Event(4.0, 5.0, "_unknown_", "tts_word"),
              Event(7.0, 8.0, "_unknown_", "tts_word"), Event(10.0, 11.0, "_silence_", "noise_pink"),
              Event(13.0, 14.0, "stop", KEYWORD_CLIP_KIND))
    return LabelledStream(audio=np.zeros(20 * 16000, np.float32), events=events, description="hand-made")


def _detection(label, time_s):
    return Detection(label=label, score=0.9, time_s=time_s, window_start_s=time_s - 1.0)


def test_score_matches_hits_substitutions_and_charges_false_alarms_to_kinds():
    detections = [_detection("go", 1.5),    # hit on "go" (window end 0.5 s before the clip's end)
                  _detection("go", 2.5),    # the same word again: a false alarm on that clip
                  _detection("stop", 4.6),  # overlaps the first tts word by 0.6 s: it fired
                  _detection("go", 10.2),   # overlaps the pink noise by 0.2 s
                  _detection("go", 12.0),   # window 11-12 s: in a gap
                  _detection("go", 13.5),   # during "stop": a substitution
                  _detection("stop", 14.0)]  # then "stop" itself: a hit
    result = score(detections, _hand_made_stream(), keywords=("go", "stop"))
    assert (result.keywords, result.detected, result.substitutions, result.false_alarms) == (2, 2, 1, 4)
    assert result.false_alarms_by_kind == {KEYWORD_CLIP_KIND: 1, "tts_word": 1, "noise_pink": 1, GAP_KIND: 1}
    assert result.seconds_by_kind == {KEYWORD_CLIP_KIND: 2.0, "tts_word": 2.0, "noise_pink": 1.0, GAP_KIND: 15.0}
    assert (result.words, result.words_fired, result.words_fired_percent) == (2, 1, 50.0)
    assert result.false_alarms_per_hour == pytest.approx(4 * 3600 / 20)
    assert result.false_alarms_per_hour_of(["noise_pink"]) == pytest.approx(3600.0)
    np.testing.assert_allclose(result.delays_s, [-0.5, 0.0])
    assert result.to_dict()["non_keyword_words_fired_percent"] == 50.0


def test_for_a_keyword_subset_model_other_words_are_non_keyword_words():
    detections = [_detection("go", 1.5), _detection("go", 13.5)]
    result = score(detections, _hand_made_stream(), keywords=("go",))
    assert (result.keywords, result.detected, result.substitutions) == (1, 1, 0)
    assert result.false_alarms_by_kind == {KEYWORD_CLIP_KIND: 1}
    assert (result.words, result.words_fired) == (3, 1)  # two tts words and "stop"



def test_babble_clips_and_stretches_are_charged_apart_and_both_count_as_noise_and_babble():
    events = (Event(1.0, 2.0, "go", KEYWORD_CLIP_KIND), Event(3.0, 4.0, "_unknown_", "babble"),
              Event(5.0, 35.0, "_unknown_", background_event_kind("babble")),
              Event(36.0, 66.0, "_silence_", background_event_kind("pink")), Event(67.0, 68.0, "_unknown_", "tts_word"))
    stream = LabelledStream(audio=np.zeros(70 * 16000, np.float32), events=events, description="hand-made")
    detections = [_detection("go", 3.8), _detection("go", 10.0), _detection("go", 20.0), _detection("go", 67.9)]
    result = score(detections, stream, keywords=("go",))
    assert result.false_alarms_by_kind == {"babble": 1, "babble_stretch": 2, "tts_word": 1}
    assert sorted(result.noise_and_babble_kinds) == ["babble", "babble_stretch", "noise_pink_stretch"]
    assert result.to_dict()["false_alarms_per_hour_noise_and_babble"] == pytest.approx(3 * 3600 / 61, abs=1e-3)

# -- DET: a hand-computed example -----------------------------------------------------------------
def test_det_curve_against_a_hand_computed_example():
    labels = ["go", "_silence_", "_unknown_"]
    stream = LabelledStream(audio=np.zeros(10 * 16000, np.float32), description="hand-made",
                            events=(Event(1.0, 2.0, "go", KEYWORD_CLIP_KIND), Event(5.0, 6.0, "_unknown_", "tts_word")))

    def decision(time_s, go, silence, unknown):
        return Decision(time_s, 0.0, np.array([go, silence, unknown], np.float32))

    decisions = [decision(1.5, 0.6, 0.0, 0.4),   # thr 0.5: hit
                 decision(1.6, 0.8, 0.0, 0.2),   # thr 0.7: hit (at 0.5: "go" still up, not again)
                 decision(1.7, 0.1, 0.9, 0.0),   # re-armed
                 decision(5.5, 0.75, 0.0, 0.25),  # thr 0.5 and 0.7: a false alarm on the tts word
                 decision(5.6, 0.3, 0.0, 0.7),
                 decision(8.0, 0.55, 0.0, 0.45)]  # thr 0.5: a false alarm in a gap
    config = DetectorConfig(smoothing_windows=1, refractory_ms=0, min_level_dbfs=-math.inf)
    curve = det_curve(decisions, labels, stream, config=config, thresholds=[0.5, 0.7, 0.9])
    np.testing.assert_allclose(curve.miss_rate, [0.0, 0.0, 1.0])
    np.testing.assert_allclose(curve.false_alarms_per_hour, [2 * 360.0, 360.0, 0.0])  # per hour of a 10 s stream
    assert curve.scores[0].false_alarms_by_kind == {"tts_word": 1, GAP_KIND: 1}
    assert curve.scores[1].delays_s.tolist() == pytest.approx([-0.4])


def test_each_missed_keyword_is_given_its_reason():
    labels = ["go", "stop", "_silence_", "_unknown_"]
    stream = LabelledStream(audio=np.zeros(12 * 16000, np.float32), description="hand-made",
                            events=tuple(Event(start, start + 1.0, label, KEYWORD_CLIP_KIND) for start, label in
                                         ((1.0, "go"), (3.0, "go"), (5.0, "stop"), (7.0, "go"), (9.0, "go"))))

    def decision(time_s, go, stop, unknown, level_dbfs=-20.0):
        return Decision(time_s, level_dbfs, np.array([go, stop, 1.0 - go - stop - unknown, unknown], np.float32))

    decisions = [decision(1.5, 0.6, 0.0, 0.4),                   # go leads but stays under 0.7
                 decision(3.5, 0.2, 0.0, 0.8),                   # taken for _unknown_
                 decision(5.5, 0.9, 0.0, 0.1),                   # "stop" heard as "go": a substitution
                 decision(7.5, 0.9, 0.0, 0.1, level_dbfs=-80.0),  # below the energy gate
                 decision(8.9, 0.0, 0.9, 0.1),                   # a false alarm starts the refractory period
                 decision(9.5, 0.9, 0.0, 0.1)]                   # go, over the threshold, held back
    config = DetectorConfig(threshold=0.7, smoothing_windows=1, refractory_ms=1000, min_level_dbfs=-60.0)
    result = score(replay(decisions, labels, config), stream, keywords=("go", "stop"))
    assert result.detected == 0 and result.missed == (0, 1, 2, 3, 4) and result.substitutions == 1
    assert miss_reasons(decisions, labels, stream, result.missed, config=config) == {
        MISS_BELOW_THRESHOLD: 1, MISS_REJECTED: 1, MISS_OTHER_KEYWORD: 1, MISS_GATED: 1, MISS_HELD_BACK: 1}
    lower = config.replace(threshold=0.5)  # the first "go" is detected now, and no longer a reason
    result = score(replay(decisions, labels, lower), stream, keywords=("go", "stop"))
    assert result.missed == (1, 2, 3, 4)
    assert miss_reasons(decisions, labels, stream, result.missed, config=lower)[MISS_BELOW_THRESHOLD] == 0


# -- the live run and its replay ----------------------------------------------------------------------
class LoudnessModel:
    """Stands in for a LoadedModel: "go" when the window's first coefficient is high, else _silence_."""

    def __init__(self):
        self.path = Path("loudness.tflite")
        self.model_input = ModelInput(frontend=FrontendParams())
        self.labels = ["go", "_silence_", "_unknown_"]
        self.spec = None
        self.output_kind = "probabilities"

    def predict(self, window):
        go = float(np.clip((window[:, 0].max() + 20.0) / 40.0, 0.0, 1.0))
        return np.array([go, (1.0 - go) * 0.7, (1.0 - go) * 0.3], np.float32)


@pytest.mark.parametrize("input_rate_hz", [16000, 48000])
def test_replay_of_a_run_gives_its_detections_and_scores_them(input_rate_hz):
    stream = build_stream(_keyword_clips(), _negatives(), recipe=StreamRecipe(seed=2, gap_noise_dbfs=None))
    config = DetectorConfig(threshold=0.6)
    run = run_pipeline(LoudnessModel(), stream, config=config, input_rate_hz=input_rate_hz)
    assert len(run.decisions) == pytest.approx(stream.duration_s / 0.1 - 9, abs=2)
    assert run.keywords == ("go",) and run.detections
    assert replay(run.decisions, run.labels, config, keywords=run.keywords) == run.detections
    result = score(run.detections, stream, keywords=run.keywords)
    assert result.keywords == 2 and result.detected + result.false_alarms + result.substitutions == len(run.detections)


@pytest.mark.parametrize("labels, smoothing, temperature", [
    (["go", "stop", "_silence_", "_unknown_"], 3, 1.0),
    (["go", "stop", "_silence_", "_unknown_"], 3, 0.35),
    (["down", "go", "left", "no", "right", "stop", "up", "yes"], 1, 1.0)])
def test_replay_at_all_thresholds_at_once_equals_replay_threshold_by_threshold(labels, smoothing, temperature):
    decisions = random_decisions(labels, 1500, seed=1)  # some windows under the gate
    config = DetectorConfig(smoothing_windows=smoothing, refractory_ms=300, min_level_dbfs=-55.0,
                            temperature=temperature)
    thresholds = [0.3, 0.5, 0.62, 0.8, 0.95]
    at_once = replay_thresholds(decisions, labels, config, thresholds)
    for threshold, detections in zip(thresholds, at_once):
        assert detections == replay(decisions, labels, config.replace(threshold=threshold))
    assert len(at_once[0]) > len(at_once[-1]) > 0


def test_a_stream_halved_in_a_gap_keeps_every_event_and_its_audio():
    stream = build_stream(_keyword_clips(), _negatives(), recipe=StreamRecipe(seed=3))
    first, second = stream.halves()
    assert first.audio.size + second.audio.size == stream.audio.size + 2 * 16000  # the first gets a silent tail
    assert not first.audio[-2 * 16000:].any()
    assert len(first.events) + len(second.events) == len(stream.events) and first.events and second.events
    cut_s = first.duration_s - 2.0
    assert abs(cut_s - stream.duration_s / 2) < 3.0  # in the gap nearest the middle
    assert first.events[-1].end_s <= cut_s and second.events[0].start_s >= 0  # no event cut
    for half, offset_s in ((first, 0.0), (second, cut_s)):
        for event in half.events:
            original = next(e for e in stream.events if e.source == event.source and e.kind == event.kind
                            and e.start_s == pytest.approx(event.start_s + offset_s))
            a, b = (int(round(t * 16000)) for t in (event.start_s, event.end_s))
            c = int(round(original.start_s * 16000))
            np.testing.assert_array_equal(half.audio[a:b], stream.audio[c:c + b - a])
    assert "first half" in first.description and "second half" in second.description
    for events in (stream.events[:1],  # one event; two that overlap (no gap to cut in)
                   (stream.events[0], replace(stream.events[1], start_s=stream.events[0].end_s - 0.1))):
        with pytest.raises(ValueError, match="no gap"):
            LabelledStream(stream.audio, events, "no gap").halves()


def test_the_training_stream_is_drawn_to_a_validation_streams_counts(monkeypatch):
    """realistic_stream("train"): as many keyword clips as the validation split holds and, of each kind of
    negative, as many as a validation stream does, drawn with the seed from the training split's."""
    from train.kws import data, negatives as negatives_module, streams
    from train.kws.negatives import GeneratedClips

    splits = {"train": ClipSet(audio=_tone_clips(12, 1), label_ids=np.arange(12, dtype=np.int32) % 2,
                               labels=("go", "stop"), paths=[Path(f"go/t{k}.wav") for k in range(12)]),
              "val": _keyword_clips()}
    kinds = ("tts_word",) * 6 + ("half",) * 4 + ("tts_keyword",) * 2
    generated = GeneratedClips(audio=_tone_clips(len(kinds), 2),
                               classes=tuple("go" if kind == "tts_keyword" else "_unknown_" for kind in kinds),
                               kinds=kinds, sources=tuple(f"n{k}" for k in range(len(kinds))))
    monkeypatch.setattr(data, "load_split", lambda split, data_dir=None: splits[split])
    monkeypatch.setattr(negatives_module, "build_negatives", lambda split, **kwargs: generated)
    monkeypatch.setitem(negatives_module.DEFAULT_SIZES, "val", {"tts_word": 2, "half": 3})
    recipe = StreamRecipe(gap_s=(0.1, 0.1), background_minutes=0.0)
    stream = streams.realistic_stream("train", recipe=recipe)
    counts = stream.kind_counts()
    assert counts == {KEYWORD_CLIP_KIND: 3, "tts_word": 2, "half": 3} and stream.description.startswith("training")
    sources = sorted(event.source for event in stream.events)
    assert sources == sorted(event.source for event in streams.realistic_stream("train", recipe=recipe).events)
    assert sources != sorted(event.source for event in streams.realistic_stream("train", recipe=recipe,
                                                                                    seed=1).events)
    with pytest.raises(ValueError, match="'train', 'val' or 'test'"):
        streams.realistic_stream("holdout")
