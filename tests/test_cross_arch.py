"""The Pi-architecture check's own parts (python -m tests.cross_arch), without emulation."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import cross_arch
from tests.cross_arch import (ARCHITECTURES, DEVICE_TEST_FILES, REPO_ROOT, CannotRun, answers, compare_numbers,
                              dump_numbers)


def test_device_test_files_exist_and_import_no_training_code():
    """The emulated Python has numpy, the native extensions and pi_runtime only: a device test
    file that imports TensorFlow or train/ at module level would fail there."""
    for name in DEVICE_TEST_FILES:
        text = (REPO_ROOT / name).read_text()
        heavy = re.findall(r"^(?:import|from)\s+(tensorflow|tf_keras|train|benchmarks)\b", text, re.MULTILINE)
        assert not heavy, f"{name} imports {heavy} at module level"


def test_missing_tools_are_named_with_the_install_line(monkeypatch):
    monkeypatch.setattr(cross_arch.shutil, "which", lambda tool: None)
    with pytest.raises(CannotRun, match=r"(?s)qemu-aarch64, aarch64-linux-gnu-gcc.*not found.*apt-get install qemu-user"):
        cross_arch.check_tools(ARCHITECTURES["arm64"])
    assert cross_arch.main(["--arch", "armhf", "--work-dir", "unused"]) == 2


def _os_release(monkeypatch, tmp_path, text):
    path = tmp_path / "os-release"
    path.write_text(text)
    monkeypatch.setattr(cross_arch, "OS_RELEASE", path)


def test_an_architecture_apt_does_not_list_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(cross_arch.shutil, "which", lambda tool: "/usr/bin/" + tool)
    _os_release(monkeypatch, tmp_path, 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n')

    def dpkg(command, **kwargs):
        printed = "" if command[1] == "--print-foreign-architectures" else "amd64\n"
        return subprocess.CompletedProcess(command, 0, stdout=printed, stderr="")

    monkeypatch.setattr(cross_arch.subprocess, "run", dpkg)
    with pytest.raises(CannotRun, match="dpkg --add-architecture arm64"):
        cross_arch.check_tools(ARCHITECTURES["arm64"])


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_comparison_counts_identical_values_and_differing_answers(tmp_path):
    outputs = np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5]])
    features = np.arange(6.0).reshape(2, 3)
    step = np.float64(0.4)
    ours = _save(tmp_path / "a.npz", **{"m/16k/outputs": outputs, "m/16k/features": features, "m/output_step": step})
    theirs = _save(tmp_path / "b.npz", **{"m/16k/outputs": outputs[:, ::-1], "m/16k/features": features + 1e-6,
                                          "m/output_step": step})
    comparison = compare_numbers(ours, theirs)
    assert comparison.arrays == 2 and comparison.identical_arrays == 0  # the step is no array to compare
    assert comparison.values == 12 and comparison.identical_values == 2  # only the 0.5/0.5 row
    assert comparison.answers_that_differ == 2
    assert comparison.max_abs_output_difference == pytest.approx(0.8)
    assert comparison.max_output_difference_steps == pytest.approx(2.0)
    assert comparison.max_abs_feature_difference == pytest.approx(1e-6)
    assert not comparison.problems

    same = compare_numbers(ours, ours)
    assert same.identical_arrays == same.arrays == 2 and same.answers_that_differ == 0


def test_comparison_reports_missing_arrays_shapes_and_non_finite_values(tmp_path):
    ours = _save(tmp_path / "a.npz", x=np.zeros(3), y=np.zeros(2), z=np.zeros(2))
    theirs = _save(tmp_path / "b.npz", x=np.zeros(4), y=np.array([0.0, np.nan]))
    problems = "\n".join(compare_numbers(ours, theirs).problems)
    assert "different arrays: ['z']" in problems
    assert "x: shape (3,) here, (4,) there" in problems
    assert "y: values that are not finite" in problems


def test_answers_leave_out_timing_and_the_interpreters_name():
    result = subprocess.CompletedProcess([], 0, stdout="     1.30 s  yes      score 0.51\n",
                                         stderr="summary: 10 s in 0.01 s, 1570.2x real time\n"
                                                "  91 decisions every 100 ms: 78 ran the model\n"
                                                "  5 detections; CPU 0.01 s (0.6 ms per second of audio)\n"
                                                "# m.tflite: 1297 bytes, interpreter ai_edge_litert (1 thread)\n")
    assert answers(result) == ["     1.30 s  yes      score 0.51", "  91 decisions every 100 ms: 78 ran the model"]


def test_the_dump_covers_every_delivered_keyword_model_and_matches_itself(tmp_path):
    """What the emulated Python runs, run here: features and outputs for each delivered model."""
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    dump_numbers(REPO_ROOT, first)
    dump_numbers(REPO_ROOT, second)
    with np.load(first) as numbers:
        names = {key.split("/")[0] for key in numbers.files if "/" in key}
        assert names == {path.name.split(".")[0] for path in (REPO_ROOT / "models" / "kws").glob("*.tflite.zlib")}
        outputs = numbers["kws_live_c/16k/outputs"]
        assert outputs.shape[0] == (160000 - 16000) // 1600 + 1 and np.isfinite(outputs).all()
        assert numbers["resampled_48k"].shape == (480000,)
    comparison = compare_numbers(first, second)
    assert comparison.identical_arrays == comparison.arrays > 0


def test_the_output_step_is_the_int8_step_before_the_dequantising_output():
    from pi_runtime.model import load_model

    model = load_model(REPO_ROOT / "models" / "kws" / "kws_a_go_stop.tflite.zlib")
    assert cross_arch.output_step(model) == pytest.approx(0.0837542, rel=1e-5)  # its logits' int8 scale


def test_skip_reasons_are_counted_from_pytests_summary():
    output = ("....s\n"
              "SKIPPED [6] tests/test_frontend.py:114: could not import 'tensorflow': No module named 'tensorflow'\n"
              "SKIPPED [3] tests/test_frontend.py:119: could not import 'tensorflow': No module named 'tensorflow'\n"
              "SKIPPED [1] tests/test_resample.py:92: could not import 'soundfile': No module named 'soundfile'\n"
              "925 passed, 10 skipped in 72.06s\n")
    assert cross_arch.skip_reasons(output) == {
        "could not import 'tensorflow': No module named 'tensorflow'": 9,
        "could not import 'soundfile': No module named 'soundfile'": 1}


def test_the_property_tests_run_first_in_a_process_of_their_own():
    """An interpreter that sets flush-to-zero when imported (tflite_runtime 2.14) must not have
    been loaded when Hypothesis draws subnormal floats."""
    runs = cross_arch.device_test_runs()
    assert set(runs[0]) == {"tests/test_properties.py", "tests/test_native_properties.py"}
    assert sorted(runs[0] + runs[1]) == sorted(DEVICE_TEST_FILES)


def test_the_interpreter_probe_names_this_machines_interpreter():
    probe = cross_arch.interpreter_probe(Path("models/kws/kws_c.tflite.zlib"))
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ai_edge_litert"  # LiteRT leaves subnormal floats alone


def test_the_build_there_is_the_readmes_command_with_the_roots_headers_first(monkeypatch, tmp_path):
    seen = {}

    def run(command, cwd, environment, timeout_s=3600):
        seen.update(command=command, cwd=cwd, environment=environment)
        output = "native/src/fft.c:1:2: warning: something\ncopying build/... -> native\n"
        return subprocess.CompletedProcess(command, seen.get("status", 0), stdout=output, stderr="")

    monkeypatch.setattr(cross_arch, "run", run)
    root = tmp_path / "root"
    warnings = cross_arch.build_there(["qemu-arm", "python3.11"], root, tmp_path, {"PATH": "/usr/bin"})
    assert seen["command"] == ["qemu-arm", "python3.11", "setup.py", "build_ext", "--inplace"]
    assert seen["environment"]["CPPFLAGS"].startswith(f"-I{root}/usr/include/python3.11 -I{root}/usr/include")
    assert seen["environment"]["PATH"] == "/usr/bin"
    assert warnings == ["native/src/fft.c:1:2: warning: something"]
    seen["status"] = 1
    with pytest.raises(RuntimeError, match="build_ext failed there"):
        cross_arch.build_there(["python3.11"], root, tmp_path, {})


def test_a_cache_is_used_only_for_the_same_request(tmp_path):
    product = tmp_path / "root"
    assert not cross_arch.is_cached(tmp_path, {"packages": ["python3.11"]}, product)  # no manifest
    (tmp_path / "manifest.json").write_text('{"request": {"packages": ["python3.11"]}}')
    assert not cross_arch.is_cached(tmp_path, {"packages": ["python3.11"]}, product)  # nothing made
    product.mkdir()
    assert cross_arch.is_cached(tmp_path, {"packages": ["python3.11"]}, product)
    assert not cross_arch.is_cached(tmp_path, {"packages": ["python3.11", "python3-numpy"]}, product)
    (tmp_path / "manifest.json").write_text('{"request": ')  # cut short
    assert not cross_arch.is_cached(tmp_path, {"packages": ["python3.11"]}, product)


def test_a_failed_build_fails_the_check_with_its_output(monkeypatch, capsys):
    def failing(arch, cache_dir, work_dir, say):
        raise RuntimeError("python setup.py build_ext failed there:\nnative/src/fft.c:1: error: oops")

    monkeypatch.setattr(cross_arch, "check_architecture", failing)
    assert cross_arch.main(["--arch", "arm64"]) == 1
    assert "arm64: FAILED: python setup.py build_ext failed there" in capsys.readouterr().err


def test_a_machine_that_is_not_debian_bookworm_is_told_why(monkeypatch, tmp_path):
    monkeypatch.setattr(cross_arch.shutil, "which", lambda tool: "/usr/bin/" + tool)
    _os_release(monkeypatch, tmp_path, 'NAME="Ubuntu"\nVERSION_CODENAME=noble\n')
    with pytest.raises(CannotRun, match="runs on Debian bookworm; this machine is noble"):
        cross_arch.check_tools(ARCHITECTURES["armhf"])
    monkeypatch.setattr(cross_arch, "OS_RELEASE", tmp_path / "absent")
    with pytest.raises(CannotRun, match="this machine is not Debian"):
        cross_arch.check_tools(ARCHITECTURES["armhf"])


def test_a_skip_for_any_reason_but_tensorflow_fails_the_check():
    comparison = cross_arch.Comparison(arrays=1, identical_arrays=1)
    report = cross_arch.Report(arch="armhf", warnings=[], tests_passed=True, comparison=comparison,
                               skipped={"could not import 'tensorflow': No module named 'tensorflow'": 36})
    assert report.passed
    report.skipped["could not import 'scipy.signal': No module named 'scipy'"] = 1  # a whole file unseen
    assert not report.passed


def test_the_delivered_models_are_those_with_a_sidecar_and_some_must_exist(tmp_path):
    names = {path.name for path in cross_arch.delivered_models(REPO_ROOT, "kws")}
    assert "kws_live_c.tflite.zlib" in names and not any("teacher" in name for name in names)
    (tmp_path / "models" / "kws").mkdir(parents=True)
    with pytest.raises(RuntimeError, match="no delivered model"):
        cross_arch.delivered_models(tmp_path, "kws")


def test_relative_folders_are_made_absolute_before_the_emulated_python_sees_them(monkeypatch, tmp_path):
    seen = {}

    def record(arch, cache_dir, work_dir, say):
        seen.update(cache_dir=cache_dir, work_dir=work_dir)
        raise CannotRun("stop here")

    monkeypatch.setattr(cross_arch, "check_architecture", record)
    monkeypatch.chdir(tmp_path)
    assert cross_arch.main(["--arch", "arm64", "--cache-dir", "cache", "--work-dir", "work"]) == 2
    assert seen == {"cache_dir": tmp_path.resolve() / "cache", "work_dir": tmp_path.resolve() / "work"}


def test_the_emulated_pi_describes_its_processor_and_the_armhf_one_does_not(tmp_path):
    cross_arch.describe_processor(tmp_path, ARCHITECTURES["arm64"])
    cpuinfo = (tmp_path / "proc" / "cpuinfo").read_text()
    assert cpuinfo.count("CPU part\t: 0xd08") == 4 and "Raspberry Pi 4" in cpuinfo  # four Cortex-A72 cores
    assert (tmp_path / "sys" / "devices" / "system" / "cpu" / "possible").read_text() == "0-3\n"
    other = tmp_path / "armhf"
    other.mkdir()
    cross_arch.describe_processor(other, ARCHITECTURES["armhf"])
    assert not any(other.iterdir())
