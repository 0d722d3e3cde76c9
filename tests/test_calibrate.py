"""train.kws.calibrate: on a toy stream the chosen threshold meets its false-alarm target (and is the
lowest that does), and the sidecar gets the detector section that listen reads."""
import argparse
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from kws_toy import TOY_LABELS, build_toy_model, tone_word
from pi_runtime.kws_pipeline import DetectorConfig
from pi_runtime.model import load_model
from pi_runtime.replay import pick_threshold
from pi_runtime.sidecar import read_sidecar
from train.kws import calibrate
from pi_runtime.replay import DEFAULT_THRESHOLDS
from train.kws.calibrate import (DEFAULT_GATE_CANDIDATES_DBFS, SearchSpace, calibrate_model, join_list_values,
                                  out_of_sample, parse_gates)
from train.kws.data import ClipSet
from train.kws.streams import StreamRecipe, build_stream, det_curve, run_pipeline, score
from pi_runtime.replay import replay
from test_streams import FakeNegatives


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    return build_toy_model(tmp_path_factory.getbasetemp() / "toy_kws")


def _toy_stream(seed=0):
    """Toy words as keywords; tones between "low" and "high", two-tone chords and noise as negatives."""
    return build_stream(*_toy_stream_parts(seed), recipe=StreamRecipe(seed=seed), name="toy validation stream")


def _toy_stream_parts(seed=0):
    """The keyword clips and negatives of :func:`_toy_stream`."""
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000

    def place(word):
        clip = np.zeros(16000, np.float32)
        start = int(rng.uniform(0.1, 0.5) * 16000)
        clip[start:start + word.size] = word[:16000 - start]
        return np.round(clip * 32767).astype(np.int16)

    keyword_audio, label_ids = [], []
    for k in range(30):
        label_ids.append(k % 3)
        keyword_audio.append(place(tone_word(TOY_LABELS[k % 3], rng.uniform(0.3, 0.5), rng.uniform(0.1, 0.5), rng)))
    keywords = ClipSet(audio=np.stack(keyword_audio), label_ids=np.array(label_ids, np.int32),
                       labels=tuple(TOY_LABELS), paths=[Path(f"{TOY_LABELS[k % 3]}/{k}.wav") for k in range(30)])
    negative_audio, kinds = [], []
    for k in range(40):
        duration_s = rng.uniform(0.3, 0.5)
        s = t[:int(duration_s * 16000)]
        if k % 4 == 3:
            word = rng.normal(scale=0.1, size=s.size).astype(np.float32)
            kinds.append("noise_white")
        else:
            chord = np.sin(2 * np.pi * rng.uniform(600, 1800) * s) + (k % 2) * np.sin(2 * np.pi * rng.uniform(300, 3000) * s)
            word = (rng.uniform(0.1, 0.3) * chord / np.abs(chord).max()).astype(np.float32)
            kinds.append("tts_word")
        negative_audio.append(place(word))
    negatives = FakeNegatives(audio=np.stack(negative_audio),
                              classes=tuple("_silence_" if kind == "noise_white" else "_unknown_" for kind in kinds),
                              kinds=tuple(kinds), sources=tuple(f"neg{k}" for k in range(40)))
    return keywords, negatives


def test_pick_threshold_takes_the_lowest_from_which_every_higher_one_meets_the_target():
    thresholds = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    assert pick_threshold(thresholds, np.array([9.0, 3.0, 1.0, 2.0, 0.0]), 2.0) == 2
    assert pick_threshold(thresholds, np.array([9.0, 1.0, 3.0, 2.0, 0.0]), 2.0) == 3  # 0.6 meets it, 0.7 not
    assert pick_threshold(thresholds, np.array([1.0, 1.0, 1.0, 1.0, 1.0]), 2.0) == 0
    assert pick_threshold(thresholds, np.array([9.0, 9.0, 9.0, 9.0, 3.0]), 2.0) is None


def test_calibration_on_a_toy_stream_hits_its_target_and_writes_the_sidecar(toy_model, tmp_path):
    model_path = tmp_path / "toy.tflite"
    shutil.copy(toy_model, model_path)
    shutil.copy(toy_model.with_suffix(".json"), tmp_path / "toy.json")
    stream = _toy_stream()
    # The false alarms of this model on this stream over thresholds, to set a target inside their range.
    run = run_pipeline(load_model(model_path), stream, config=DetectorConfig(min_level_dbfs=-math.inf))
    curve = det_curve(run.decisions, run.labels, stream, config=DetectorConfig(smoothing_windows=2))
    assert curve.false_alarms_per_hour.max() > curve.false_alarms_per_hour.min()
    target = float(np.sort(np.unique(curve.false_alarms_per_hour))[1])  # the second lowest rate: reachable

    section = calibrate_model(model_path, stream, target_false_alarms_per_hour=target, smoothing_candidates=(2,),
                              gate_candidates_dbfs=(DetectorConfig().min_level_dbfs,))
    measured = section["calibration"]["measured"]
    assert measured["target_reached"] and measured["false_alarms_per_hour"] <= target + 1e-3  # rounded to 3 places
    assert section["smoothing_windows"] == 2
    index = list(curve.thresholds).index(section["threshold"])
    assert index == 0 or curve.false_alarms_per_hour[:index].max() > target  # the lowest threshold meeting it
    assert measured["keywords_detected_percent"] == pytest.approx(curve.scores[index].detected_percent, abs=0.01)
    assert section["calibration"]["stream"].startswith("toy validation stream") and "seed 0" in section["calibration"]["stream"]

    written = read_sidecar(model_path)["detector"]
    assert written == section
    config = DetectorConfig.from_sidecar(read_sidecar(model_path))
    assert (config.threshold, config.smoothing_windows) == (section["threshold"], 2)
    assert DetectorConfig.from_sidecar(read_sidecar(model_path), threshold=0.99).threshold == 0.99


def test_an_unreachable_target_is_said_and_the_highest_threshold_taken(toy_model, tmp_path):
    stream = _toy_stream(seed=1)
    section = calibrate_model(toy_model, stream, target_false_alarms_per_hour=0.0, smoothing_candidates=(1,),
                              thresholds=(0.3, 0.4), write=False)
    if section["calibration"]["measured"]["false_alarms"]:
        assert not section["calibration"]["measured"]["target_reached"] and section["threshold"] == 0.4
    assert "detector" not in read_sidecar(toy_model)  # write=False leaves the sidecar alone


def test_gate_lists_parse_with_or_without_the_equals_sign():
    # argparse reads "-55,-60" after an option as an option of its own unless written "--gates=-55,-60"
    assert parse_gates("-55,-65,off") == (-55.0, -65.0, -math.inf)
    assert join_list_values(["m", "--gates", "-55,-60", "--dry-run"]) == ["m", "--gates=-55,-60", "--dry-run"]
    assert join_list_values(["--gates", "off", "--gates"]) == ["--gates", "off", "--gates"]  # left as it is
    assert calibrate.build_parser().parse_args(join_list_values(["m", "--gates", "-55,-60"])).gates == (-55.0, -60.0)
    for bad in ("-55,loud", "6", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            parse_gates(bad)


def test_cli_refuses_bad_input(tmp_path, capsys):
    for argv, message in ((["absent.tflite"], "no such model file"),
                          ([str(tmp_path), "--smoothing", "a,b"], "--smoothing"),
                          ([str(tmp_path), "--temperatures", "1,warm"], "--temperatures"),
                          ([str(tmp_path), "--temperatures", "1,0"], "--temperatures"),
                          ([str(tmp_path), "--gates", "-55,loud"], "--gates"),
                          ([str(tmp_path), "--gates", "6"], "--gates"),
                          ([str(tmp_path), "--target-false-alarms-per-hour", "-1"], "must be >= 0"),
                          ([str(tmp_path), "--hop-ms", "0"], "--hop-ms")):
        with pytest.raises(SystemExit) as exit_info:
            calibrate.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(ValueError, match="smoothing_candidates"):
        calibrate_model(tmp_path / "x.tflite", _toy_stream(), smoothing_candidates=(0,))


def test_the_gate_is_searched_and_an_open_gate_is_written_as_null(toy_model, tmp_path):
    """Quiet keywords: a gate that shuts them out detects fewer, so the calibration opens it."""
    model_path = tmp_path / "toy.tflite"
    shutil.copy(toy_model, model_path)
    shutil.copy(toy_model.with_suffix(".json"), tmp_path / "toy.json")
    stream = _toy_stream()
    quiet = build_stream(*_toy_stream_parts(), recipe=StreamRecipe(seed=0, peak_dbfs=(-62.0, -58.0)),
                         name="toy validation stream, quiet")
    shut = calibrate_model(model_path, quiet, target_false_alarms_per_hour=1e9, smoothing_candidates=(1,),
                           gate_candidates_dbfs=(-20.0,), write=False)
    assert shut["calibration"]["measured"]["keywords_detected_percent"] == 0.0  # every window gated
    section = calibrate_model(model_path, quiet, target_false_alarms_per_hour=1e9, smoothing_candidates=(1,),
                              gate_candidates_dbfs=(-20.0, -math.inf))
    assert section["min_level_dbfs"] is None and section["calibration"]["measured"]["keywords_detected_percent"] > 0
    assert "gate -20, -inf dBFS" in section["calibration"]["measured"]["searched"]
    assert DetectorConfig.from_sidecar(read_sidecar(model_path)).min_level_dbfs == -math.inf
    # Equal detection: the higher gate (fewer windows classified) wins.
    tie = calibrate_model(model_path, stream, target_false_alarms_per_hour=1e9, smoothing_candidates=(1,),
                          gate_candidates_dbfs=(-120.0, -math.inf), write=False)
    assert tie["min_level_dbfs"] == -120.0
    with pytest.raises(ValueError, match="gate_candidates_dbfs"):
        calibrate_model(model_path, stream, gate_candidates_dbfs=(3.0,), write=False)


def test_a_subset_of_the_keywords_is_calibrated_beside_the_models_own_settings(toy_model, tmp_path):
    """--keywords low: the other words' clips are words that must not fire; the model's own settings stay."""
    model_path = tmp_path / "toy.tflite"
    shutil.copy(toy_model, model_path)
    shutil.copy(toy_model.with_suffix(".json"), tmp_path / "toy.json")
    stream = _toy_stream()
    own = calibrate_model(model_path, stream, target_false_alarms_per_hour=1e9, smoothing_candidates=(2,),
                          gate_candidates_dbfs=(-55.0,))
    subset = calibrate_model(model_path, stream, target_false_alarms_per_hour=1e9, smoothing_candidates=(1,),
                             gate_candidates_dbfs=(-55.0,), keywords=["low"])
    measured, measured_own = subset["calibration"]["measured"], own["calibration"]["measured"]
    assert subset["calibration"]["keywords"] == ["low"] and "keywords" not in own["calibration"]
    assert measured["keywords"] == 10 and measured_own["keywords"] == 30  # every third clip is "low"
    assert measured["non_keyword_words"] == measured_own["non_keyword_words"] + 20  # "high" and "chirp" clips
    run = run_pipeline(load_model(model_path), stream, config=DetectorConfig(), keywords=["low"])
    assert run.keywords == ("low",) and run.detections and {d.label for d in run.detections} == {"low"}
    written = read_sidecar(model_path)["detector"]
    assert written["keyword_subsets"] == {"low": subset}
    assert {key: value for key, value in written.items() if key != "keyword_subsets"} == own
    assert DetectorConfig.from_sidecar(read_sidecar(model_path), keywords=["low"]).smoothing_windows == 1
    assert DetectorConfig.from_sidecar(read_sidecar(model_path)).smoothing_windows == 2
    # Calibrating the model's own settings again keeps the subset's.
    calibrate_model(model_path, stream, target_false_alarms_per_hour=1e9, smoothing_candidates=(3,),
                    gate_candidates_dbfs=(-55.0,))
    written = read_sidecar(model_path)["detector"]
    assert written["smoothing_windows"] == 3 and written["keyword_subsets"] == {"low": subset}
    assert calibrate.describe(subset).startswith("for low alone: threshold")
    with pytest.raises(ValueError, match="'zebra': a model can listen only for its own keywords"):
        calibrate_model(model_path, stream, keywords=["zebra"], write=False)


def test_the_temperature_is_searched_written_and_read_back(toy_model, tmp_path):
    model_path = tmp_path / "toy.tflite"
    shutil.copy(toy_model, model_path)
    shutil.copy(toy_model.with_suffix(".json"), tmp_path / "toy.json")
    stream = _toy_stream()
    target = 1e9  # every setting reaches it: the most keywords detected wins
    kept = calibrate_model(model_path, stream, target_false_alarms_per_hour=target, smoothing_candidates=(2,),
                           temperature_candidates=(1.0,), write=False)
    section = calibrate_model(model_path, stream, target_false_alarms_per_hour=target, smoothing_candidates=(2,),
                              temperature_candidates=(1.0, 0.5, 0.25))
    assert "temperature 1, 0.5, 0.25" in section["calibration"]["measured"]["searched"]
    assert section["temperature"] in (1.0, 0.5, 0.25) and kept["temperature"] == 1.0
    detected = section["calibration"]["measured"]["keywords_detected_percent"]
    assert detected >= kept["calibration"]["measured"]["keywords_detected_percent"]
    for temperature in (1.0, 0.5, 0.25):  # the one written detects the most; a tie keeps the higher temperature
        alone = calibrate_model(model_path, stream, target_false_alarms_per_hour=target, smoothing_candidates=(2,),
                                temperature_candidates=(temperature,), write=False)
        found = alone["calibration"]["measured"]["keywords_detected_percent"]
        assert found < detected or (found == detected and temperature <= section["temperature"])
    assert DetectorConfig.from_sidecar(read_sidecar(model_path)).temperature == section["temperature"]
    with pytest.raises(ValueError, match="temperature_candidates"):
        calibrate_model(model_path, stream, temperature_candidates=(0.0,), write=False)


def test_cli_refuses_a_keyword_the_model_lacks_before_building_the_stream(toy_model, capsys, monkeypatch):
    import train.kws.streams as streams

    monkeypatch.setattr(streams, "realistic_stream", lambda *a, **k: pytest.fail("the stream was built"))
    assert calibrate.main([str(toy_model), "--keywords", "low,zebra"]) == 2
    assert "'zebra': a model can listen only for its own keywords (low, high, chirp)" in capsys.readouterr().err


def test_the_hop_is_kept_as_given_and_written(toy_model):
    section = calibrate_model(toy_model, _toy_stream(), target_false_alarms_per_hour=1e9, smoothing_candidates=(1,),
                              gate_candidates_dbfs=(-55.0,), base_config=DetectorConfig(hop_ms=200.0), write=False)
    assert section["hop_ms"] == 200.0
    assert calibrate.build_parser().parse_args(["m.tflite", "--hop-ms", "50"]).hop_ms == 50.0


def test_cli_refuses_a_hop_the_model_cannot_run_before_building_the_stream(toy_model, capsys, monkeypatch):
    import train.kws.streams as streams

    monkeypatch.setattr(streams, "realistic_stream", lambda *a, **k: pytest.fail("the stream was built"))
    assert calibrate.main([str(toy_model), "--hop-ms", "50"]) == 2
    assert "hop_ms 50 is not a whole number of the frontend's 20 ms frames (e.g. 40 or 60)" in capsys.readouterr().err
    assert calibrate.main([str(toy_model), "--hop-ms", "100000"]) == 2
    assert "longer than the model's 1000 ms window" in capsys.readouterr().err


def test_cli_keeps_the_sidecar_when_the_calibration_detects_too_little(toy_model, tmp_path, capsys, monkeypatch):
    import train.kws.streams as streams

    model_path = tmp_path / "toy.tflite"
    shutil.copy(toy_model, model_path)
    shutil.copy(toy_model.with_suffix(".json"), tmp_path / "toy.json")
    before = read_sidecar(model_path)
    monkeypatch.setattr(streams, "realistic_stream", lambda *a, **k: _toy_stream())
    monkeypatch.setattr(calibrate, "MIN_DETECTED_PERCENT", 101.0)  # no point can detect enough
    assert calibrate.main([str(model_path), "--smoothing", "1"]) == 1
    captured = capsys.readouterr()
    assert "NOT written: it detects under 101 % of the keywords" in captured.out
    assert "the sidecar of" in captured.err and "keeps its detector" in captured.err
    assert read_sidecar(model_path) == before
    assert calibrate.main([str(model_path), "--smoothing", "1", "--force"]) == 0
    assert read_sidecar(model_path)["detector"]["smoothing_windows"] == 1


def test_out_of_sample_chooses_on_one_half_and_scores_on_the_other(toy_model, tmp_path, capsys, monkeypatch):
    import train.kws.streams as streams

    model_path = tmp_path / "toy.tflite"
    shutil.copy(toy_model, model_path)
    shutil.copy(toy_model.with_suffix(".json"), tmp_path / "toy.json")
    stream = _toy_stream()
    calibrate_model(model_path, stream, target_false_alarms_per_hour=1e9, smoothing_candidates=(2,))
    before = read_sidecar(model_path)
    options = dict(target_false_alarms_per_hour=1e9, smoothing_candidates=(1, 2), temperature_candidates=(1.0, 0.5))
    space = SearchSpace.checked(1e9, (1, 2), DEFAULT_GATE_CANDIDATES_DBFS, (1.0, 0.5), DEFAULT_THRESHOLDS,
                                DetectorConfig())
    calibrated, kept = out_of_sample(model_path, stream, space)
    keywords = sum(event.label in TOY_LABELS for event in stream.events)
    assert calibrated.keywords == kept.keywords == keywords and len(calibrated.settings) == 2
    assert calibrated.hours == pytest.approx((stream.duration_s + 2.0) / 3600)  # the first half ends in 2 s of silence
    # The sidecar's detector, by hand: each half a stream of its own, the gate applied in the replay.
    in_use = DetectorConfig.from_sidecar(read_sidecar(model_path))
    model = load_model(model_path)
    detected = false_alarms = 0
    for half in stream.halves():
        run = run_pipeline(model, half, config=in_use.replace(min_level_dbfs=-math.inf))
        result = score(replay(run.decisions, run.labels, in_use, keywords=run.keywords), half, keywords=run.keywords)
        detected, false_alarms = detected + result.detected, false_alarms + result.false_alarms
    assert (kept.detected, kept.false_alarms) == (detected, false_alarms)
    assert kept.settings == [in_use.summary()] * 2
    assert kept.seen_before  # its calibration was made on this very stream
    # And each half's choice scored on the other half, by hand.
    halves = stream.halves()
    detected = false_alarms = 0
    for chosen_on, scored_on in ((0, 1), (1, 0)):
        config = DetectorConfig.from_sidecar({"detector": calibrate_model(model_path, halves[chosen_on], write=False,
                                                                          **options)})
        assert calibrated.settings[chosen_on] == config.summary()
        run = run_pipeline(model, halves[scored_on], config=config.replace(min_level_dbfs=-math.inf))
        result = score(replay(run.decisions, run.labels, config, keywords=run.keywords), halves[scored_on],
                       keywords=run.keywords)
        detected, false_alarms = detected + result.detected, false_alarms + result.false_alarms
    assert (calibrated.detected, calibrated.false_alarms) == (detected, false_alarms)
    # The command writes nothing and prints both.
    monkeypatch.setattr(streams, "realistic_stream", lambda *a, **k: stream)
    assert calibrate.main([str(model_path), "--out-of-sample", "--smoothing", "1,2", "--temperatures", "1,0.5",
                           "--target-false-alarms-per-hour", "1e9"]) == 0
    out = capsys.readouterr().out
    assert "calibrated on the other half" in out and "the sidecar's detector" in out and "keywords detected" in out
    assert "chosen on the first half" in out and "in-sample" in out
    assert read_sidecar(model_path) == before
