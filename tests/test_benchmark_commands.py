"""The benchmarks' command lines refuse bad input with one `error:` line and exit code 2, never a traceback.

Also the helpers other benchmark test modules use for that: :func:`refusal` and :func:`bad_models`.
"""
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks import (babble_negatives, frontend, kernels, latency, open_set_validation, resample, room_tuning,
                        streaming)

REPO_ROOT = Path(__file__).resolve().parent.parent
KWS_MODELS = REPO_ROOT / "models" / "kws"


def refusal(main, argv, capsys) -> str:
    """The error line ``main(argv)`` writes to stderr as it refuses its input with exit code 2,
    by returning 2 or through argparse (whose usage lines come first)."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and lines and "error: " in lines[-1], (code, lines)
    return lines[-1]


def bad_models(folder: Path) -> dict:
    """Models a keyword-spotting benchmark must refuse: name -> (path, part of the error it must give)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = (KWS_MODELS / "kws_live_c.tflite.zlib").read_bytes()
    truncated = folder / "truncated.tflite.zlib"
    truncated.write_bytes(model[:len(model) // 2])
    shutil.copy(KWS_MODELS / "kws_live_c.json", folder / "truncated.json")
    bad_sidecar = folder / "bad_sidecar.tflite.zlib"
    bad_sidecar.write_bytes(model)
    (folder / "bad_sidecar.json").write_text('{"format": "tinyml-pi-sidecar",')
    return {"absent": (folder / "absent.tflite", "no such model file"),
            "truncated": (truncated, "is the file truncated?"),
            "bad sidecar": (bad_sidecar, "unreadable sidecar"),
            "forecaster": (REPO_ROOT / "models" / "forecast" / "forecast_a.tflite.zlib",
                           "not a keyword-spotting model")}


def test_latency_refuses_bad_models_and_numbers(tmp_path, capsys):
    for path, message in bad_models(tmp_path).values():
        assert message in refusal(latency.main, ["--model", str(path)], capsys)
    for option in ("--hop-ms", "--runs", "--streaming-runs", "--threads"):
        assert option in refusal(latency.main, [option, "0"], capsys)
    assert "--warmup" in refusal(latency.main, ["--warmup", "-1"], capsys)
    line = refusal(latency.main, ["--hop-ms", "50", "--model", str(KWS_MODELS / "kws_a.tflite.zlib")], capsys)
    assert "hop_ms 50 is not a whole number of the frontend's 20 ms frames" in line


def test_open_set_validation_refuses_bad_and_closed_set_models(tmp_path, capsys):
    for path, message in bad_models(tmp_path).values():
        assert message in refusal(open_set_validation.main, [str(path)], capsys)
    closed = str(KWS_MODELS / "kws_c.tflite.zlib")  # eight keywords, no _silence_ or _unknown_
    line = refusal(open_set_validation.main, [str(KWS_MODELS / "kws_live_c.tflite.zlib"), closed], capsys)
    assert line.startswith(f"error: {closed}: not an open-set model")


def test_streaming_refuses_bad_numbers_and_models(tmp_path, capsys):
    for rate in ("0", "-8000", "999"):
        assert "--input-rate" in refusal(streaming.main, ["--input-rate", rate], capsys)
    assert "--seed: expected an integer >= 0, got -1" in refusal(streaming.main, ["--seed", "-1"], capsys)
    line = refusal(streaming.main, ["--hop-ms", "50", "--model", str(KWS_MODELS / "kws_live_c.tflite.zlib")], capsys)
    assert "hop_ms 50 is not a whole number of the frontend's 20 ms frames" in line  # before the stream is built
    line = refusal(streaming.main, ["--model", str(tmp_path / "absent.tflite")], capsys)
    assert line.startswith("error: no such model file")


def test_resample_refuses_bad_numbers(capsys):
    for argv in (["--seconds", "0"], ["--seconds", "-1"], ["--seconds", "nan"], ["--seconds", "0.01"]):
        assert "--seconds" in refusal(resample.main, argv, capsys)
    assert "--iterations" in refusal(resample.main, ["--iterations", "0"], capsys)
    assert "--warmup" in refusal(resample.main, ["--warmup", "-1"], capsys)


def test_resample_runs_on_the_shortest_signal_it_takes(capsys):
    resample.main(["--iterations", "1", "--warmup", "0", "--seconds", "0.04"])
    out = capsys.readouterr().out
    assert out.count("native Resampler, one 20 ms chunk") == len(resample.CASES_HZ)


def test_frontend_refuses_bad_clips_peers_and_numbers(tmp_path, capsys):
    from pi_runtime.wav import write_wav

    assert "no such file" in refusal(frontend.main, ["--clip", str(tmp_path / "absent.wav")], capsys)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFX" + bytes(40))
    assert "not a PCM WAV file" in refusal(frontend.main, ["--clip", str(corrupt)], capsys)
    for rate_hz, samples in ((8000, 8000), (16000, 8000)):
        clip = tmp_path / f"{rate_hz}_{samples}.wav"
        write_wav(clip, np.zeros(samples, np.int16), rate_hz)
        line = refusal(frontend.main, ["--clip", str(clip)], capsys)
        assert f"{samples} samples at {rate_hz} Hz" in line and "one second at 16 kHz" in line
    line = refusal(frontend.main, ["--peers", "numpy,bogus"], capsys)
    assert "no peer matches 'bogus'" in line and "librosa" in line
    assert "--runs" in refusal(frontend.main, ["--runs", "0"], capsys)
    assert "--rounds" in refusal(frontend.main, ["--rounds", "0"], capsys)


def test_frontend_peer_names_are_those_it_times():
    assert frontend.peer_fragments("all") is None and frontend.peer_fragments("none") == []
    assert frontend.peer_fragments(" NumPy, tf.function") == ["numpy", "tf.function"]
    timed = frontend.peers(np.zeros(16000, np.float32))
    assert timed and set(timed) <= set(frontend.PEER_NAMES)


def test_room_tuning_refuses_bad_models_and_numbers(tmp_path, capsys):
    for path, message in bad_models(tmp_path).values():  # before any room is built
        assert message in refusal(room_tuning.main, [str(path)], capsys)
    for option in ("--tuning-minutes", "--check-minutes"):
        assert option in refusal(room_tuning.main, [option, "0"], capsys)
    assert "--target-false-alarms-per-hour" in refusal(room_tuning.main, ["--target-false-alarms-per-hour", "-1"],
                                                       capsys)
    assert "its own keywords" in refusal(room_tuning.main, ["--keywords", "go,marvin"], capsys)


def test_babble_negatives_refuses_bad_models_and_splits(tmp_path, capsys):
    for path, message in bad_models(tmp_path).values():  # before the split is read
        assert message in refusal(babble_negatives.main, [str(path)], capsys)
    assert "--split" in refusal(babble_negatives.main, ["--split", "train"], capsys)


def test_babble_negatives_reads_who_speaks_and_what_each_model_answers(speech_commands_dir, tmp_path, capsys):
    report = tmp_path / "babble.md"
    models = [KWS_MODELS / "kws_live_c.tflite.zlib", KWS_MODELS / "kws_c.tflite.zlib"]
    assert babble_negatives.main([*map(str, models), "--data-dir", str(speech_commands_dir),
                                  "--markdown", str(report)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("75 babble negatives of the val split") and report.read_text().count("babble") > 3
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("kws_")}
    assert set(rows) == {"kws_live_c.tflite.zlib", "kws_c.tflite.zlib"}
    for name, line in rows.items():
        fractions = [tuple(map(int, pair)) for pair in re.findall(r"(\d+)/(\d+)", line)]
        (answered, clips), (loudest, of_answered), (some, _) = fractions[:3]
        bands = fractions[3:]
        assert clips == 75 and of_answered == answered and loudest <= some <= answered
        assert len(bands) == 4 and sum(n for _, n in bands) == 75  # every clip in one band
        assert sum(k for k, _ in bands) == answered
        assert sum(map(int, re.findall(r"(\d+) loudest", line))) == loudest
    assert rows["kws_c.tflite.zlib"].split()[1] == "75/75"  # a closed-set model answers a keyword for anything


@pytest.mark.parametrize("module", [babble_negatives, frontend, latency, resample, room_tuning])
def test_help_names_the_command(module, capsys):
    with pytest.raises(SystemExit) as stop:
        module.main(["--help"])
    name = module.__name__.split(".")[-1]
    assert stop.value.code == 0 and capsys.readouterr().out.startswith(f"usage: python -m benchmarks.{name} ")


def test_kernels_refuses_bad_models_and_numbers(tmp_path, capsys):
    for path, message in bad_models(tmp_path).values():
        assert message in refusal(kernels.main, ["--model", str(path)], capsys)
    assert "--runs" in refusal(kernels.main, ["--runs", "0"], capsys)


def test_kernels_times_each_kernel_set_taking_turns():
    """median_invoke_ms runs every model the same number of times, alternating."""
    calls = []

    class Model:
        def __init__(self, name):
            self.name = name

        def set_input(self, example):
            calls.append((self.name, "set"))

        def invoke_raw(self):
            calls.append((self.name, "invoke"))

    times = kernels.median_invoke_ms([Model("a"), Model("b")], np.zeros(3, np.float32), runs=3)
    assert len(times) == 2 and all(t >= 0 for t in times)
    assert calls[:4] == [("a", "set"), ("a", "invoke"), ("b", "set"), ("b", "invoke")]  # warm-up
    assert [name for name, _ in calls[4:]] == ["a", "b"] * 3
