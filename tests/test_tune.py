"""pi_runtime.tune: false alarms on recordings of a room, the threshold that keeps them within a target."""
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kws_toy import build_toy_model
from pi_runtime import listen, tune
from pi_runtime.sidecar import read_sidecar, write_sidecar
from pi_runtime.wav import write_wav
from test_calibrate import _toy_stream, _toy_stream_parts
from train.kws.calibrate import calibrate_model
from train.kws.streams import StreamRecipe, build_stream


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """The toy model calibrated on the toy validation stream at its lowest threshold, so that a room's
    false alarms fall over the whole grid above it."""
    toy = build_toy_model(tmp_path_factory.getbasetemp() / "toy_kws")
    folder = tmp_path_factory.mktemp("tune")
    model = folder / "toy.tflite"
    shutil.copy(toy, model)
    shutil.copy(toy.with_suffix(".json"), folder / "toy.json")
    calibrate_model(model, _toy_stream(), target_false_alarms_per_hour=1e9, smoothing_candidates=(2,),
                    gate_candidates_dbfs=(-65.0,))
    return model


def _room(seconds, seed):
    """int16 at 16 kHz: the toy stream's negatives (tones, chords, noise) over and over, no keyword."""
    _, negatives = _toy_stream_parts(seed)
    pieces, total = [], 0
    while total < seconds * 16000:
        pieces.append(build_stream(None, negatives, recipe=StreamRecipe(seed=seed + len(pieces))).audio)
        total += pieces[-1].size
    return np.round(np.concatenate(pieces)[:int(seconds * 16000)] * 32767).astype(np.int16)


@pytest.fixture(scope="module")
def room_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("room") / "room.wav"
    write_wav(path, _room(90, seed=2), 16000)
    return path


def _tune(argv):
    out, err = io.StringIO(), io.StringIO()
    status = tune.main(argv, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def _listen_detections(model, wav, threshold):
    out = io.StringIO()
    assert listen.main(["--model", str(model), "--input", str(wav), "--threshold", str(threshold), "--json"],
                       out=out, err=io.StringIO()) == 0
    return len(out.getvalue().splitlines())


def test_the_calibration_keeps_its_curve_and_tune_reads_the_cost_from_it(calibrated):
    calibration = read_sidecar(calibrated)["detector"]["calibration"]
    curve = calibration["measured"]["curve"]
    threshold = read_sidecar(calibrated)["detector"]["threshold"]
    at = curve["thresholds"].index(threshold)
    assert curve["keywords_detected_percent"][at] == calibration["measured"]["keywords_detected_percent"]
    assert curve["false_alarms_per_hour"][at] == calibration["measured"]["false_alarms_per_hour"]
    assert np.all(np.diff(curve["thresholds"]) > 0)
    from pi_runtime.model import load_model
    from pi_runtime.kws_pipeline import DetectorConfig
    spec = load_model(calibrated).spec
    config = DetectorConfig.from_sidecar(spec)
    assert tune.detected_at(tune.validation_curve(spec, config), threshold) == pytest.approx(
        calibration["measured"]["keywords_detected_percent"])
    assert tune.validation_curve(spec, config.replace(smoothing_windows=3)) is None  # not what was calibrated
    grid = (np.array([0.5, 0.9, 0.999]), np.array([80.0, 40.0, 10.0]))
    assert tune.detected_at(grid, 0.7) == pytest.approx(60.0)
    assert tune.detected_at(grid, 0.9999) is None and tune.detected_at(grid, 0.4) is None  # beyond what was kept


def test_tune_counts_what_listen_would_fire_and_recommends_the_lowest_threshold_within_the_target(calibrated,
                                                                                                  room_wav):
    status, out, _ = _tune([str(room_wav), "--model", str(calibrated), "--json",
                            "--target-false-alarms-per-hour", "1e9"])
    rows = json.loads(out)["rows"]
    counts = [row["false_alarms"] for row in rows]
    assert status == 0 and counts[0] > 0 and counts[0] > counts[-1], "the toy room must fire, less at higher thresholds"
    assert rows[0]["threshold"] == read_sidecar(calibrated)["detector"]["threshold"]
    assert all(later["threshold"] > rows[0]["threshold"] for later in rows[1:])  # never below the one in use
    # A target between the rates: the lowest threshold from which on every higher one meets it.
    rates = np.array([row["false_alarms_per_hour"] for row in rows])
    target = float(np.sort(np.unique(rates))[1])
    status, out, _ = _tune([str(room_wav), "--model", str(calibrated), "--json",
                            "--target-false-alarms-per-hour", repr(target)])
    result = json.loads(out)
    recommended = result["recommended_threshold"]
    index = [row["threshold"] for row in rows].index(recommended)
    assert status == 0 and np.all(rates[index:] <= target) and (index == 0 or rates[index - 1] > target)
    assert result["listen_command"].endswith(f"--threshold {recommended:g}")
    # What listen itself fires on the recording, at the threshold in use and at the one recommended.
    assert _listen_detections(calibrated, room_wav, rows[0]["threshold"]) == counts[0]
    assert _listen_detections(calibrated, room_wav, recommended) == counts[index]
    assert result["false_alarms_in_use"] == counts[0] == len(result["detections_in_use"])
    assert result["validation_keywords_detected_percent_in_use"] == pytest.approx(
        read_sidecar(calibrated)["detector"]["calibration"]["measured"]["keywords_detected_percent"], abs=0.05)


def test_a_folder_is_each_of_its_recordings_heard_afresh(calibrated, tmp_path):
    first, second = _room(70, seed=4), _room(65, seed=5)
    write_wav(tmp_path / "a.wav", first, 16000)
    write_wav(tmp_path / "b.wav", second, 8000)  # any rate: resampled as listen does
    (tmp_path / "notes.txt").write_text("not audio")
    both = json.loads(_tune([str(tmp_path), "--model", str(calibrated), "--json"])[1])
    each = [json.loads(_tune([str(tmp_path / name), "--model", str(calibrated), "--json"])[1])
            for name in ("a.wav", "b.wav")]
    assert [r["path"] for r in both["recordings"]] == [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")]
    assert both["seconds"] == pytest.approx(70.0 + 130.0)
    assert [row["false_alarms"] for row in both["rows"]] == [
        a["false_alarms"] + b["false_alarms"] for a, b in zip(each[0]["rows"], each[1]["rows"])]


def test_the_report_says_what_to_run_and_what_it_costs(calibrated, room_wav):
    status, out, err = _tune([str(room_wav), "--model", str(calibrated), "--target-false-alarms-per-hour", "0"])
    assert "listening to 1.5 min of the room" in err and "1/1 " in err
    assert "validation keywords detected" in out and "note: 1.5 min is short" in out
    if status == 0:
        assert ("recommended for at most 0 false alarms an hour" in out and "python -m pi_runtime.listen --model"
                in out) or "already keeps" in out
    else:
        assert status == 1 and "no threshold up to 0.9999" in out


def test_a_subset_without_its_own_calibration_has_no_known_cost(calibrated, room_wav):
    result = json.loads(_tune([str(room_wav), "--model", str(calibrated), "--keywords", "low,high", "--json"])[1])
    assert result["keywords"] == ["low", "high"]
    assert result["validation_keywords_detected_percent_in_use"] is None
    assert all(row["validation_keywords_detected_percent"] is None for row in result["rows"])
    out = _tune([str(room_wav), "--model", str(calibrated), "--keywords", "low,high"])[1]
    assert "cost in keywords is unknown" in out


def test_bad_input_is_refused_with_a_reason(calibrated, room_wav, tmp_path):
    short = tmp_path / "short.wav"
    write_wav(short, _room(20, seed=1), 16000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    empty = tmp_path / "empty"
    empty.mkdir()
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(calibrated.read_bytes()[:100])
    shutil.copy(calibrated.with_suffix(".json"), tmp_path / "truncated.json")
    for argv, message in (([str(short)], "too little"),
                          ([str(corrupt)], str(corrupt)),
                          ([str(empty)], "a folder without WAV files"),
                          ([str(tmp_path / "absent.wav")], "no such file"),
                          ([str(room_wav), "--keywords", "go"], "its own keywords")):
        status, _, err = _tune(argv + ["--model", str(calibrated)])
        assert status == 2 and message in err, (argv, err)
    status, _, err = _tune([str(room_wav), "--model", str(truncated)])
    assert status == 2 and "truncated" in err
    with pytest.raises(SystemExit) as exit_info:
        _tune([str(room_wav), "--model", str(calibrated), "--target-false-alarms-per-hour", "-1"])
    assert exit_info.value.code == 2


def _copy_model(model, folder):
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(model, folder / model.name)
    shutil.copy(model.with_suffix(".json"), folder / model.with_suffix(".json").name)
    return folder / model.name


def test_write_makes_listen_use_the_recommended_threshold_and_undo_puts_the_old_one_back(calibrated, room_wav,
                                                                                          tmp_path):
    model = _copy_model(calibrated, tmp_path / "model")
    before = read_sidecar(model)
    rows = json.loads(_tune([str(room_wav), "--model", str(model), "--json", "--target-false-alarms-per-hour",
                             "1e9"])[1])["rows"]
    target = float(np.sort(np.unique([row["false_alarms_per_hour"] for row in rows]))[1])
    status, out, err = _tune([str(room_wav), "--model", str(model), "--json", "--write",
                              "--target-false-alarms-per-hour", repr(target)])
    result = json.loads(out)
    recommended = result["recommended_threshold"]
    assert status == 0 and recommended > rows[0]["threshold"] and "now uses threshold" in err and "--undo" in err
    after = read_sidecar(model)["detector"]
    assert after["threshold"] == recommended and after["room"]["threshold_replaced"] == rows[0]["threshold"]
    assert after["calibration"] == before["detector"]["calibration"]  # the calibration itself is kept
    assert sorted(p.name for p in model.parent.iterdir()) == sorted([model.name, "toy.json"])  # no partial file left
    verbose = io.StringIO()
    listen.main(["--model", str(model), "--input", str(room_wav), "--verbose"], out=io.StringIO(), err=verbose)
    assert f"threshold {recommended:g} (sidecar)" in verbose.getvalue() and "tuned to a room" in verbose.getvalue()
    assert _listen_detections_default(model, room_wav) == result["rows"][
        [row["threshold"] for row in result["rows"]].index(recommended)]["false_alarms"]
    # Tuned again, the cost is still read from the curve, and undo goes back to the calibrated threshold.
    again = json.loads(_tune([str(room_wav), "--model", str(model), "--json"])[1])
    assert again["validation_keywords_detected_percent_in_use"] == result[
        "validation_keywords_detected_percent_recommended"]
    status, out, _ = _tune(["--undo", "--model", str(model)])
    assert status == 0 and "put back" in out and read_sidecar(model) == before
    status, _, err = _tune(["--undo", "--model", str(model)])
    assert status == 2 and "no room tuning to undo" in err


def test_write_for_a_subset_changes_only_that_subset(calibrated, room_wav, tmp_path):
    model = _copy_model(calibrated, tmp_path / "model")
    before = read_sidecar(model)
    subset = ["--model", str(model), "--keywords", "high,low"]
    rates = [row["false_alarms_per_hour"] for row in json.loads(_tune([str(room_wav), "--json", *subset])[1])["rows"]]
    assert rates[0] > min(rates), "the subset must fire in the toy room, less at higher thresholds"
    status, _, err = _tune([str(room_wav), "--write", "--target-false-alarms-per-hour", repr(min(rates)), *subset])
    detector = read_sidecar(model)["detector"]
    assert status == 0 and "written" in err
    tuned = detector["keyword_subsets"]["low,high"]  # made from the model's own settings, in label order
    assert tuned["room"]["threshold_replaced"] == before["detector"]["threshold"] < tuned["threshold"]
    assert {key: value for key, value in detector.items() if key != "keyword_subsets"} == before["detector"]
    assert _tune(["--undo", "--model", str(model), "--keywords", "low,high"])[0] == 0
    assert read_sidecar(model) == before  # the subset's settings, made by the write, are gone


def test_undo_and_recordings_exclude_each_other(calibrated, room_wav):
    for argv in ([str(room_wav), "--undo"], ["--undo", "--write"], []):
        with pytest.raises(SystemExit) as exit_info:
            _tune(argv + ["--model", str(calibrated)])
        assert exit_info.value.code == 2


def _listen_detections_default(model, wav):
    out = io.StringIO()
    assert listen.main(["--model", str(model), "--input", str(wav), "--json"], out=out, err=io.StringIO()) == 0
    return len(out.getvalue().splitlines())


def _reachable_target(room_wav, flags, highest=False):
    """A target some threshold above the one in use reaches: the lowest rate of the room's rows (or the
    second highest, for a small rise), with the rows' rate at the threshold in use above it."""
    rates = sorted({row["false_alarms_per_hour"] for row in json.loads(_tune([str(room_wav), "--json",
                                                                               *flags])[1])["rows"]})
    assert len(rates) > 1, "the toy room must fire less at higher thresholds"
    return repr(rates[-2] if highest else rates[0])


def test_undo_leaves_the_sidecar_as_it_was_where_write_made_a_section(calibrated, room_wav, tmp_path):
    """A subset without settings of its own after a tuning of the model's, and a sidecar without a detector."""
    model = _copy_model(calibrated, tmp_path / "calibrated")
    before = read_sidecar(model)
    own = ["--model", str(model)]
    status, _, err = _tune([str(room_wav), "--write", "--target-false-alarms-per-hour",
                            _reachable_target(room_wav, own, highest=True), *own])
    assert status == 0 and "now uses threshold" in err  # the model's own threshold raised a little
    tuned_once = read_sidecar(model)
    subset = own + ["--keywords", "low,high"]
    status, _, err = _tune([str(room_wav), "--write", "--target-false-alarms-per-hour",
                            _reachable_target(room_wav, subset), *subset])
    assert status == 0 and "now uses threshold" in err
    assert "low,high" in read_sidecar(model)["detector"]["keyword_subsets"]
    assert _tune(["--undo", *subset])[0] == 0
    assert read_sidecar(model) == tuned_once  # the subset's settings made by the write are gone again
    assert _tune(["--undo", *own])[0] == 0 and read_sidecar(model) == before

    bare = _copy_model(build_toy_model(calibrated.parent.parent / "toy_kws"), tmp_path / "bare")
    assert "detector" not in read_sidecar(bare)
    flags = ["--model", str(bare)]
    status, _, err = _tune([str(room_wav), "--write", "--target-false-alarms-per-hour",
                            _reachable_target(room_wav, flags), *flags])
    assert status == 0 and "now uses threshold" in err
    assert read_sidecar(bare)["detector"]["room"]["threshold_replaced"] is None
    status, out, _ = _tune(["--undo", *flags])
    assert status == 0 and "threshold 0.8 put back" in out and "detector" not in read_sidecar(bare)


def test_a_threshold_in_use_off_the_grid_is_recommended_as_itself(calibrated, room_wav, tmp_path):
    model = _copy_model(calibrated, tmp_path / "model")
    sidecar = read_sidecar(model)
    sidecar["detector"]["threshold"] = 0.97333  # between the grid's points 0.97 and 0.975
    write_sidecar(model, sidecar)
    flags = [str(room_wav), "--model", str(model), "--target-false-alarms-per-hour", "1e9"]  # met where it is
    status, out, _ = _tune(flags + ["--json"])
    result = json.loads(out)
    assert status == 0 and result["rows"][0]["threshold"] == result["recommended_threshold"] == 0.97333
    assert result["recommended_is_in_use"] and result["rows"][1]["threshold"] == 0.975
    status, out, err = _tune(flags + ["--write"])
    assert "already keeps this room within" in out and "recommended for" not in out
    assert "nothing written" in err and read_sidecar(model) == sidecar


def test_each_recording_counts_once_and_hidden_files_are_left_out(calibrated, room_wav, tmp_path):
    folder = tmp_path / "room"
    folder.mkdir()
    shutil.copy(room_wav, folder / "a.wav")
    (folder / "._a.wav").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource fork, no WAV
    once = json.loads(_tune([str(folder / "a.wav"), "--model", str(calibrated), "--json"])[1])
    twice = json.loads(_tune([str(folder), str(folder / "a.wav"), str(folder / "a.wav"), "--model",
                              str(calibrated), "--json"])[1])
    assert twice["seconds"] == once["seconds"] and twice["rows"] == once["rows"]
    recorded = tmp_path / "recorded"
    (recorded / "_background_noise_").mkdir(parents=True)
    status, _, err = _tune([str(recorded), "--model", str(calibrated)])
    assert status == 2 and "recordings of record --background are in" in err
    empty_audio = tmp_path / "empty_audio.wav"
    write_wav(empty_audio, np.zeros(0, np.int16), 16000)
    status, _, err = _tune([str(room_wav), str(empty_audio), "--model", str(calibrated)])
    assert status == 2 and "holds no audio" in err


def test_the_tool_and_its_replay_load_nothing_a_pi_lacks():
    """Checked here, not under emulation, where the emulated Python cannot start another."""
    import subprocess
    import sys

    script = ("import sys\nimport pi_runtime.tune, pi_runtime.replay\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'scipy', "
              "'train', 'benchmarks')))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
