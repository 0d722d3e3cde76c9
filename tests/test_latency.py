"""python -m pi_runtime.latency: the course's output lines, frontend from sidecar or flags, clear errors.

No timing assertions: the numbers depend on the machine; only their presence and form are checked.
"""
import re
import shutil

import numpy as np
import pytest

from kws_toy import TOY_PARAMS, build_toy_model
from native.frontend import Frontend
from native.params import FrontendParams, ModelInput
from native.resample import resample_poly
from pi_runtime import latency

COURSE_LINES = re.compile(r"^Inference Latency \d+\.\d\dms\nTotal Latency \d+\.\d\dms$", re.MULTILINE)


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    return build_toy_model(tmp_path_factory.getbasetemp() / "toy_kws")


@pytest.fixture
def model_without_sidecar(toy_model, tmp_path):
    path = tmp_path / "bare.tflite"
    shutil.copy(toy_model, path)
    return path


def _run(capsys, *argv):
    code = latency.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prints_the_course_lines_with_median_and_p95(toy_model, capsys):
    code, out, err = _run(capsys, "--model", toy_model, "--runs", "3", "--warmup", "1")
    assert code == 0, err
    assert COURSE_LINES.search(out), out
    assert re.search(r"median: inference [\d.]+ ms, total [\d.]+ ms; p95: inference [\d.]+ ms, total [\d.]+ ms", out)


def test_verbose_names_the_interpreter_and_frontend(toy_model, capsys):
    code, out, _ = _run(capsys, "--model", toy_model, "--runs", "2", "--verbose", "--threads", "2")
    assert code == 0
    assert "interpreter: ai_edge_litert" in out and "(2 threads)" in out
    assert "mfcc, 16000 Hz, frames 640/320 samples" in out and "input (49, 10)" in out


def test_streaming_mode_reports_decision_cost_and_ratio(toy_model, capsys):
    code, out, err = _run(capsys, "--model", toy_model, "--runs", "3", "--streaming", "--hop-ms", "60")
    assert code == 0, err
    assert re.search(r"streaming, one decision every 60 ms: decision [\d.]+ ms median .* ratio [\d.]+", out), out


def test_measure_streaming_makes_one_decision_per_hop(toy_model):
    from pi_runtime.model import load_model

    timings = latency.measure_streaming(load_model(toy_model), runs=4, hop_ms=100)
    assert timings.decision_ms.shape == timings.invoke_ms.shape == (4,)
    assert timings.hop_ms == pytest.approx(100) and timings.ratio > 0


def test_reference_runs_the_course_pipeline_side_by_side(toy_model, capsys):
    pytest.importorskip("scipy")
    pytest.importorskip("tensorflow")
    code, out, err = _run(capsys, "--model", toy_model, "--runs", "2", "--warmup", "1", "--reference")
    assert code == 0, err
    assert len(COURSE_LINES.findall(out)) == 2  # native, then reference
    assert re.search(r"Total latency ratio reference/native: [\d.]+x mean, [\d.]+x median", out)


def test_reference_features_agree_with_the_native_frontend():
    pytest.importorskip("scipy")
    pytest.importorskip("tensorflow")
    from pi_runtime.reference import CoursePipeline

    clip = np.random.default_rng(0).normal(scale=0.1, size=48000).astype(np.float32)
    for spec in (ModelInput(frontend=TOY_PARAMS),
                 ModelInput(frontend=FrontendParams(feature_kind="spectrogram"), resize=(32, 32)),
                 ModelInput(frontend=FrontendParams(feature_kind="log_mel", sample_rate_hz=8000,
                                                    frame_length_samples=240, frame_step_samples=120))):
        reference = CoursePipeline(spec, input_rate_hz=48000).features(clip)
        up, down = (1, 3) if spec.frontend.sample_rate_hz == 16000 else (1, 6)
        native = Frontend(spec.frontend).compute(resample_poly(clip, up, down), resize=spec.resize)
        assert reference.shape == native.shape == spec.feature_shape
        np.testing.assert_allclose(native, reference, rtol=2e-3, atol=2e-3 * np.abs(reference).max())


# -- frontend from flags or sidecar ------------------------------------------------------------
def _flags(*argv):
    return latency.build_parser().parse_args(["--model", "m.tflite", *argv])


def test_course_flags_build_the_course_frontends():
    assert latency.input_from_flags(_flags()) == ModelInput(frontend=FrontendParams(feature_kind="spectrogram"),
                                                            resize=(32, 32))
    assert latency.input_from_flags(_flags("--mfcc")) == ModelInput()
    assert latency.input_from_flags(_flags("--resize", "0")) == ModelInput(
        frontend=FrontendParams(feature_kind="spectrogram"))
    params = latency.input_from_flags(_flags("--mfcc", "--rate", "8000", "--length", "240", "--stride", "120",
                                              "--bins", "32", "--coeff", "12", "--lower-frequency", "40",
                                              "--upper-frequency", "3000"))
    assert params == ModelInput(frontend=FrontendParams(sample_rate_hz=8000, frame_length_samples=240,
                                                        frame_step_samples=120, num_mel_bins=32, num_mfccs=12,
                                                        lower_edge_hz=40, upper_edge_hz=3000))


def test_model_without_sidecar_runs_from_flags(model_without_sidecar, capsys):
    code, out, err = _run(capsys, "--model", model_without_sidecar, "--mfcc", "--runs", "2")
    assert code == 0, err
    assert COURSE_LINES.search(out)


def test_without_a_model_only_the_preprocessing_is_timed(capsys):
    code, out, err = _run(capsys, "--mfcc", "--runs", "3", "--verbose")
    assert code == 0, err
    assert "Inference Latency 0.00ms" in out and COURSE_LINES.search(out)
    assert "model: none" in out and "mfcc, 16000 Hz" in out
    with pytest.raises(SystemExit):
        latency.main(["--streaming"])


def test_flags_that_do_not_fit_a_bare_model_are_an_error(model_without_sidecar, capsys):
    # Without --mfcc the course's default is a 32x32 spectrogram: not what this model takes.
    code, out, err = _run(capsys, "--model", model_without_sidecar, "--runs", "2")
    assert code == 2 and out == ""
    assert "error:" in err and "(32, 32)" in err


def test_flags_agreeing_with_the_sidecar_are_accepted(toy_model, capsys):
    code, _, err = _run(capsys, "--model", toy_model, "--runs", "2", "--mfcc", "--rate", "16000", "--coeff", "10")
    assert code == 0, err


@pytest.mark.parametrize("argv, named", [(["--coeff", "13"], "--coeff 13 (sidecar: 10)"),
                                         (["--rate", "8000"], "--rate 8000 (sidecar: 16000)"),
                                         (["--resize", "32"], "--resize (32, 32) (sidecar: none)")])
def test_flags_disagreeing_with_the_sidecar_are_an_error(toy_model, capsys, argv, named):
    code, out, err = _run(capsys, "--model", toy_model, "--runs", "2", *argv)
    assert code == 2 and out == ""
    assert "disagree" in err and named in err


# -- bad input -----------------------------------------------------------------------------------
def test_missing_and_broken_models_are_clear_errors(toy_model, tmp_path, capsys):
    code, _, err = _run(capsys, "--model", tmp_path / "absent.tflite")
    assert code == 2 and "no such model file" in err

    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(toy_model.read_bytes()[:300])
    shutil.copy(toy_model.with_suffix(".json"), tmp_path / "truncated.json")
    code, _, err = _run(capsys, "--model", truncated)
    assert code == 2 and "truncated.tflite" in err

    broken_zlib = tmp_path / "broken.tflite.zlib"
    broken_zlib.write_bytes(b"not zlib at all")
    code, _, err = _run(capsys, "--model", broken_zlib, "--mfcc")
    assert code == 2 and "zlib" in err

    (tmp_path / "forecast.tflite").write_bytes(toy_model.read_bytes())
    (tmp_path / "forecast.json").write_text('{"format": "tinyml-pi-sidecar", "version": 1, "task": "forecast", '
                                            '"forecast": {"features": ["T"], "input_width": 6, "out_steps": 6, '
                                            '"mean": [0], "std": [1]}}')
    code, _, err = _run(capsys, "--model", tmp_path / "forecast.tflite")
    assert code == 2 and "not a keyword-spotting sidecar" in err


@pytest.mark.parametrize("argv", [["--runs", "0"], ["--threads", "0"], ["--warmup", "-1"], ["--input-rate", "0"],
                                  ["--runs", "1000001"], ["--warmup", "1000001"], ["--input-rate", "1000000000"],
                                  ["--input-rate", "999"], ["--rate", "1000000000"], ["--rate", "0"],
                                  ["--hop-ms", "nan"], ["--hop-ms", "0"], ["--hop-ms", "inf"]])
def test_bad_numbers_are_refused(toy_model, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        latency.main(["--model", str(toy_model), *argv])
    assert exit_info.value.code == 2 and argv[0] in capsys.readouterr().err


def test_sizes_beyond_the_clip_or_the_cores_are_refused(toy_model, capsys):
    code, out, err = _run(capsys, "--model", toy_model, "--streaming", "--hop-ms", "1000000000", "--runs", "1")
    assert code == 2 and "--hop-ms 1e+09 is longer than the model's 1000 ms clip" in err
    code, out, err = _run(capsys, "--model", toy_model, "--threads", "33000", "--runs", "1")
    assert code == 2 and "num_threads must be an integer from 1 to" in err
    code, out, err = _run(capsys, "--model", toy_model, "--streaming", "--hop-ms", "50", "--runs", "1")
    assert code == 2 and "hop_ms 50 is not a whole number" in err and "median" not in out  # before any timing


def test_clips_drawn_one_at_a_time_are_the_same_audio():
    np.testing.assert_array_equal(np.stack(list(latency.iter_random_clips(3, 4801, seed=2))),
                                  latency.random_clips(3, 4801, seed=2))


def test_the_sidecar_is_read_once(toy_model, monkeypatch, capsys):
    import pi_runtime.sidecar

    reads = []
    original = pi_runtime.sidecar.parse_sidecar
    monkeypatch.setattr(pi_runtime.sidecar, "parse_sidecar", lambda *a, **k: reads.append(1) or original(*a, **k))
    code, _, err = _run(capsys, "--model", toy_model, "--runs", "1", "--mfcc")
    assert code == 0, err
    assert len(reads) == 1


def test_governor_hint_only_when_not_performance(tmp_path, monkeypatch):
    for cpu, governor in (("cpu0", "performance"), ("cpu1", "performance")):
        (tmp_path / cpu).mkdir()
        (tmp_path / cpu / "scaling_governor").write_text(governor + "\n")
    monkeypatch.setattr(latency, "GOVERNOR_GLOB", str(tmp_path / "cpu*" / "scaling_governor"))
    assert latency.governor_hint() is None
    (tmp_path / "cpu1" / "scaling_governor").write_text("ondemand\n")
    hint = latency.governor_hint()
    assert "ondemand" in hint and "echo performance | sudo tee" in hint
    monkeypatch.setattr(latency, "GOVERNOR_GLOB", str(tmp_path / "absent" / "scaling_governor"))
    assert latency.governor_hint() is None


def test_random_clips_are_the_course_kind_of_audio():
    clips = latency.random_clips(3, 48000, seed=1)
    assert clips.shape == (3, 48000) and clips.dtype == np.float32
    assert 0.0 <= clips.min() and clips.max() < 1.0
    np.testing.assert_array_equal(clips, latency.random_clips(3, 48000, seed=1))


@pytest.mark.parametrize("flag", ["--streaming", "--builtin-kernels"])
def test_flags_about_a_model_need_one(flag, capsys):
    """Without --model the course's pipeline alone runs: a flag about the model would be ignored."""
    with pytest.raises(SystemExit) as exit_info:
        latency.main([flag])
    assert exit_info.value.code == 2 and f"{flag} needs --model" in capsys.readouterr().err
