"""The native code and the device path on a Raspberry Pi's architectures, without a Pi.

    python -m tests.cross_arch                 # arm64 and armhf, about 12 minutes
    python -m tests.cross_arch --arch armhf    # the 32-bit one only

For each architecture, Debian bookworm's own Python 3.11 for it (the Python of
Raspberry Pi OS bookworm) is unpacked from its packages into a cache folder and
runs under qemu-user (a Cortex-A72, the Pi 4's core, for arm64; an ARMv7
Cortex-A15 for armhf) on a copy of this checkout:

0. the README's build, ``python setup.py build_ext --inplace``, on that Python
   with its own build settings: its compiler is Debian's cross compiler for the
   architecture, which runs here, pointed at the unpacked headers;
1. the device-side tests (:data:`DEVICE_TEST_FILES`, the ones that need no
   TensorFlow), with the Hypothesis property tests among them;
2. every delivered model on the shipped examples: features and outputs over
   ``examples/keywords.wav`` (at 16 kHz, and at 48 kHz through the resampler)
   compared number for number with this machine's (:func:`dump_numbers`), and
   the README's ``listen`` and ``forecast`` commands compared line for line.

The two architectures stand for the two ways a Pi runs Python:

- arm64, a 64-bit Raspberry Pi OS with a virtual environment as the README's
  Pi section makes it: pip's numpy and LiteRT (``ai-edge-litert``). qemu-user
  hands the x86 host's /proc/cpuinfo and /sys/devices/system/cpu through, and
  the cpuinfo library inside LiteRT 2.x crashes on them when an interpreter is
  made (a null pointer in ``cpuinfo_arm_linux_init``), so the root describes a
  Pi 4's four Cortex-A72 cores there instead (:func:`describe_processor`);
- armhf, a 32-bit system: Debian's numpy 1.24 and scipy, and ``tflite-runtime``
  2.14 (LiteRT has no 32-bit ARM build; ``pi_runtime.model`` falls back to it).
  Debian's armhf is ARMv7; 32-bit Raspberry Pi OS is built for ARMv6, which this
  does not emulate.

Emulated timings mean nothing: this checks that the code builds without a
warning and gives the same answers, not how fast. Runs on Debian bookworm (its
apt lists bookworm's packages for the other architectures) and needs::

    sudo dpkg --add-architecture arm64 && sudo dpkg --add-architecture armhf && sudo apt-get update
    sudo apt-get install qemu-user gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf

and the package registries (Debian's archive, PyPI) on first use; later runs
use the cache (``--cache-dir``, with a manifest of every package and wheel).
Exits 0 when everything passed, 1 when a check failed, 2 when it cannot run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from pi_runtime.arguments import run_command
from tests.fuzz import PROPERTY_FILES

REPO_ROOT = Path(__file__).resolve().parent.parent
DEBIAN_RELEASE = "bookworm"  # what Raspberry Pi OS bookworm is built from
OS_RELEASE = Path("/etc/os-release")
PYTHON_VERSION = "3.11"  # Debian bookworm's, as Raspberry Pi OS bookworm's
TFLITE_RUNTIME_ARMHF = "2.14.0"
# Test files that need only numpy, the native extensions and pi_runtime (checked by a test);
# their real-data tests are left out (they read the datasets through train/).
DEVICE_TEST_FILES = (
    "tests/test_arguments.py", "tests/test_feature_stream.py", "tests/test_fft.py", "tests/test_frontend.py",
    "tests/test_kws_pipeline.py", "tests/test_native_properties.py", "tests/test_params.py", "tests/test_pcen.py",
    "tests/test_properties.py", "tests/test_record.py", "tests/test_resample.py", "tests/test_ring.py",
    "tests/test_tune_device.py", "tests/test_wav.py",
)
EXAMPLE_RECORDING = "examples/keywords.wav"
EXAMPLE_READINGS = "examples/readings.csv"
# The native code must give the same bits there. The interpreter's builtin kernels are built
# differently for x86 and ARM, and round differently in rare cases: the models' outputs may
# differ by one step of their int8 output (seen once in 1092 windows), never the top answer.
OUTPUT_TOLERANCE_STEPS = 1.0
# The only reason a device-side test may skip there: it compares with tf.signal. Any other skip
# (scipy or Hypothesis failing to import under emulation) would hide tests: the check fails.
EXPECTED_SKIP = "could not import 'tensorflow'"
WINDOW_HOP_SAMPLES = 1600  # one model window every 100 ms of the example recording, as listen decides
APT_SETUP = ("sudo dpkg --add-architecture arm64 && sudo dpkg --add-architecture armhf && sudo apt-get update\n"
             "  sudo apt-get install qemu-user gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf")


@dataclass(frozen=True)
class Architecture:
    """One of a Pi's architectures: its Debian name, tools and Python packages."""

    name: str                            # Debian's: arm64, armhf
    triplet: str                         # GNU's: aarch64-linux-gnu, arm-linux-gnueabihf
    qemu: str                            # the user-mode emulator
    qemu_cpu: str                        # the processor emulated
    debian_packages: Tuple[str, ...]     # unpacked into the root
    wheels: Tuple[str, ...]              # pip requirements: the architecture's wheels and their dependencies
    wheel_platforms: Tuple[str, ...]
    wheels_without_dependencies: Tuple[str, ...] = ()  # whose dependencies Debian's packages give
    builtin_kernels: bool = False        # its interpreter runs int8 models on its own kernels, not XNNPACK
    cpu_description: str = ""            # /proc/cpuinfo of the Pi emulated (none: the host's shows through)

    @property
    def compiler(self) -> str:
        return f"{self.triplet}-gcc"


# A Raspberry Pi 4's /proc/cpuinfo under a 64-bit kernel: four Cortex-A72 cores (part 0xd08).
PI4_CPUINFO_ARM64 = "".join(
    f"processor\t: {core}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n"
    for core in range(4)) + "Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B\n"
TEST_TOOLS = ("pytest", "hypothesis")
BUILD_TOOLS = ("setuptools>=68", "Cython")  # as the README's Pi section installs them
ARCHITECTURES: Dict[str, Architecture] = {
    "arm64": Architecture(
        name="arm64", triplet="aarch64-linux-gnu", qemu="qemu-aarch64", qemu_cpu="cortex-a72",
        debian_packages=(f"python{PYTHON_VERSION}", f"libpython{PYTHON_VERSION}-dev", "libstdc++6"),
        wheels=("numpy", "scipy", "ai-edge-litert", *BUILD_TOOLS, *TEST_TOOLS), cpu_description=PI4_CPUINFO_ARM64,
        wheel_platforms=("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64",
                         "manylinux2014_aarch64")),
    "armhf": Architecture(
        name="armhf", triplet="arm-linux-gnueabihf", qemu="qemu-arm", qemu_cpu="cortex-a15",
        debian_packages=(f"python{PYTHON_VERSION}", f"libpython{PYTHON_VERSION}-dev", "libstdc++6",
                         "python3-numpy", "python3-scipy"),
        wheels=(*BUILD_TOOLS, *TEST_TOOLS), wheels_without_dependencies=(f"tflite-runtime=={TFLITE_RUNTIME_ARMHF}",),
        wheel_platforms=("manylinux_2_34_armv7l", "manylinux_2_17_armv7l", "manylinux2014_armv7l", "linux_armv7l"),
        builtin_kernels=True),
}


class CannotRun(RuntimeError):
    """A tool, a package or the network is missing: the check cannot run (exit 2)."""


# -- the root: Debian's Python for the architecture ----------------------------------------------
def missing_tools(arch: Architecture) -> List[str]:
    """The commands this check needs that are not on PATH."""
    return [tool for tool in (arch.qemu, arch.compiler, "apt-get", "dpkg", "dpkg-deb")
            if shutil.which(tool) is None]


def debian_release() -> str:
    """This machine's Debian release (``VERSION_CODENAME`` of :data:`OS_RELEASE`), or "" when it says none."""
    try:
        text = OS_RELEASE.read_text()
    except OSError:
        return ""
    match = re.search(r"^VERSION_CODENAME=\"?([^\"\n]*)", text, re.MULTILINE)
    return match.group(1) if match else ""


def check_tools(arch: Architecture) -> None:
    missing = missing_tools(arch)
    if missing:
        raise CannotRun(f"{arch.name}: {', '.join(missing)} not found; on Debian:\n  {APT_SETUP}")
    release = debian_release()
    if release != DEBIAN_RELEASE:
        raise CannotRun(f"this check unpacks Debian {DEBIAN_RELEASE}'s packages for {arch.name} (the base of "
                        f"Raspberry Pi OS {DEBIAN_RELEASE}) through apt, so it runs on Debian {DEBIAN_RELEASE}; "
                        f"this machine is {release or 'not Debian'}")
    foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True).stdout.split()
    native = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    if arch.name not in foreign and arch.name != native:
        raise CannotRun(f"{arch.name}: apt does not list its packages (no foreign architecture {arch.name}); "
                        f"first:\n  {APT_SETUP}")


def is_cached(folder: Path, request: dict, product: Path) -> bool:
    """Whether ``folder`` already holds ``product``, made for the same ``request`` (its manifest says)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("request") == request and product.is_dir()


def debian_root(arch: Architecture, cache_dir: Path, say) -> Path:
    """A folder holding the unpacked Debian packages of ``arch`` (made once, then reused)."""
    folder = cache_dir / arch.name / "debian"
    request = {"architecture": arch.name, "packages": list(arch.debian_packages)}
    if is_cached(folder, request, folder / "root"):
        return folder / "root"
    say(f"{arch.name}: fetching Debian's packages {', '.join(arch.debian_packages)} and what they need")
    shutil.rmtree(folder, ignore_errors=True)
    archives = folder / "archives"
    (archives / "partial").mkdir(parents=True)
    status = folder / "empty-status"  # an empty package database: apt resolves every dependency afresh
    status.write_text("")
    command = ["apt-get", "-q", "-y", "--no-install-recommends", "--download-only",
               "-o", f"Dir::State::status={status}", "-o", f"APT::Architecture={arch.name}",
               "-o", f"APT::Architectures={arch.name}", "-o", f"Dir::Cache::archives={archives}",
               "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root", "install", *arch.debian_packages]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise CannotRun(f"{arch.name}: apt-get could not fetch the packages:\n{result.stdout[-2000:]}"
                        f"{result.stderr[-2000:]}")
    root = folder / "root"
    root.mkdir()
    debs = sorted(archives.glob("*.deb"))
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    link_alternatives(root, arch)
    (folder / "manifest.json").write_text(json.dumps(
        {"request": request, "debs": {deb.name: hashlib.sha256(deb.read_bytes()).hexdigest() for deb in debs}},
        indent=1) + "\n")
    shutil.rmtree(archives)
    return root


def describe_processor(root: Path, arch: Architecture) -> None:
    """Put the emulated Pi's /proc/cpuinfo and CPU list in the root, where qemu-user looks first:
    otherwise the guest reads this x86 machine's, which the cpuinfo library in LiteRT 2.x cannot parse."""
    if not arch.cpu_description:
        return
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc" / "cpuinfo").write_text(arch.cpu_description)
    cores = arch.cpu_description.count("processor\t:")
    cpu_list = root / "sys" / "devices" / "system" / "cpu"
    cpu_list.mkdir(parents=True, exist_ok=True)
    for name in ("possible", "present", "online"):
        (cpu_list / name).write_text(f"0-{cores - 1}\n")


def link_alternatives(root: Path, arch: Architecture) -> None:
    """Make the links that dpkg's alternatives would (BLAS and LAPACK for numpy), which unpacking skips."""
    library_dir = root / "usr" / "lib" / arch.triplet
    for name in ("blas", "lapack"):
        for library in sorted((library_dir / name).glob(f"lib{name}.so.*")):
            link = library_dir / library.name
            if not link.exists():
                link.symlink_to(Path(name) / library.name)


def python_packages(arch: Architecture, cache_dir: Path, say) -> Path:
    """A folder of the architecture's Python packages from PyPI (``pip install --target``), made once."""
    folder = cache_dir / arch.name / "wheels"
    request = {"wheels": list(arch.wheels), "platforms": list(arch.wheel_platforms),
               "without dependencies": list(arch.wheels_without_dependencies)}
    if is_cached(folder, request, folder / "site"):
        return folder / "site"
    say(f"{arch.name}: fetching wheels {', '.join(arch.wheels + arch.wheels_without_dependencies)}")
    shutil.rmtree(folder, ignore_errors=True)
    site = folder / "site"
    platforms = [option for platform in arch.wheel_platforms for option in ("--platform", platform)]
    pip = [sys.executable, "-m", "pip", "install", "-q", "--target", str(site), "--no-compile", "--upgrade",
           "--disable-pip-version-check", "--python-version", PYTHON_VERSION, "--only-binary=:all:", *platforms]
    commands = [pip + list(arch.wheels)]
    if arch.wheels_without_dependencies:
        commands.append(pip + ["--no-deps", *arch.wheels_without_dependencies])
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise CannotRun(f"{arch.name}: pip could not fetch {' '.join(command[command.index('--target') + 2:])}:"
                            f"\n{result.stderr[-2000:]}")
    installed = sorted(path.name for path in site.glob("*.dist-info"))
    (folder / "manifest.json").write_text(json.dumps({"request": request, "installed": installed}, indent=1) + "\n")
    return site


# -- the build -------------------------------------------------------------------------------------
def copy_checkout(destination: Path) -> None:
    """The working tree as git sees it: tracked files and new ones it does not ignore (no build outputs)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def build_there(python: Sequence[str], root: Path, tree: Path, environment: Dict[str, str]) -> List[str]:
    """``python setup.py build_ext --inplace`` in ``tree`` on the emulated Python; returns the
    compiler's warnings. Its build settings name Debian's cross compiler (``aarch64-linux-gnu-gcc``),
    which runs here: the headers and libraries it needs are the unpacked root's, put first."""
    build_environment = {**environment, "CPPFLAGS": f"-I{root}/usr/include/python{PYTHON_VERSION} -I{root}/usr/include",
                         "LDFLAGS": f"--sysroot={root}"}
    result = run([*python, "setup.py", "build_ext", "--inplace"], tree, build_environment)
    if result.returncode != 0:
        raise RuntimeError(f"python setup.py build_ext failed there:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return [line for line in (result.stdout + result.stderr).splitlines() if "warning:" in line]


# -- running under emulation -------------------------------------------------------------------------
def target_python(arch: Architecture, root: Path) -> List[str]:
    return [arch.qemu, "-cpu", arch.qemu_cpu, "-L", str(root), str(root / "usr" / "bin" / f"python{PYTHON_VERSION}")]


def clean_environment(site: Path) -> Dict[str, str]:
    """This machine's environment without what would leak into the other Python, which finds the
    architecture's wheels in ``site``."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TERM")
    environment = {key: os.environ[key] for key in keep if key in os.environ}
    environment.update(PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", PYTHONPATH=str(site))
    return environment


def run(command: Sequence[str], cwd: Path, environment: Dict[str, str], timeout_s: float = 3600
        ) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout_s)


def delivered_models(tree: Path, task: str) -> List[Path]:
    """The delivered models of a task (not the teachers, which no device runs); RuntimeError when none."""
    from train.kws.results import delivered_models as with_sidecars  # light: no TensorFlow

    models = with_sidecars(tree / "models" / task)
    if not models:
        raise RuntimeError(f"no delivered model in {tree / 'models' / task}")
    return models


def dump_numbers(tree: Path, destination: Path, *, builtin_kernels: bool = False) -> None:
    """Features and outputs of every delivered keyword model over the example recording, into an .npz.

    Runs on either machine with only numpy, the native extensions and pi_runtime: each model's
    frontend over one-second windows every 100 ms of the recording (at 16 kHz, and after a
    round trip through the native resampler to 48 kHz and back) and the model's outputs on them
    (``builtin_kernels``: as ``load_model`` takes it).
    """
    from native.frontend import Frontend
    from native.resample import resample_poly
    from pi_runtime.model import load_model
    from pi_runtime.wav import read_wav

    audio, sample_rate_hz = read_wav(tree / EXAMPLE_RECORDING)
    if sample_rate_hz != 16000:
        raise ValueError(f"{EXAMPLE_RECORDING}: expected 16 kHz, got {sample_rate_hz} Hz")
    at_48k = resample_poly(audio, 3, 1)
    recordings = {"16k": audio, "48k": resample_poly(at_48k, 1, 3)}
    numbers = {"resampled_48k": at_48k}
    for path in delivered_models(tree, "kws"):
        model = load_model(path, builtin_kernels=builtin_kernels)
        frontend = Frontend(model.frontend_params)
        window = model.frontend_params.sample_rate_hz * model.model_input.clip_duration_ms // 1000
        name = path.name.split(".")[0]
        for source, samples in recordings.items():
            starts = range(0, len(samples) - window + 1, WINDOW_HOP_SAMPLES)
            windows = np.stack([samples[start:start + window] for start in starts]).astype(np.float32)
            features = frontend.compute_batch(windows, resize=model.model_input.resize)
            numbers[f"{name}/{source}/features"] = features
            numbers[f"{name}/{source}/outputs"] = model.predict_many(features)
        numbers[f"{name}/output_step"] = np.float64(output_step(model))
    np.savez(destination, **numbers)


def output_step(model) -> float:
    """The quantisation step of a model's outputs: of its int8 output or, for a float output (a
    dequantising last operation), of the last int8 tensor of the output's shape (the one it reads
    in every delivered model); 0 for a model without one."""
    output = model.interpreter.get_output_details()[0]
    if output["dtype"] == np.int8:
        return float(output["quantization"][0])
    steps = [float(tensor["quantization"][0]) for tensor in model.interpreter.get_tensor_details()
             if tensor["dtype"] == np.int8 and tuple(tensor["shape"]) == tuple(output["shape"])]
    return steps[-1] if steps else 0.0


@dataclass
class Comparison:
    """How far one machine's numbers lie from the other's."""

    arrays: int = 0
    identical_arrays: int = 0
    values: int = 0
    identical_values: int = 0
    max_abs_feature_difference: float = 0.0
    max_abs_output_difference: float = 0.0
    max_output_difference_steps: float = 0.0  # in quantisation steps of each model's output
    answers_that_differ: int = 0  # windows whose top output differs
    problems: Tuple[str, ...] = ()


def compare_numbers(ours: Path, theirs: Path) -> Comparison:
    comparison, problems = Comparison(), []
    with np.load(ours) as mine, np.load(theirs) as other:
        if sorted(mine.files) != sorted(other.files):
            problems.append(f"different arrays: {sorted(set(mine.files) ^ set(other.files))}")
        for key in sorted(set(mine.files) & set(other.files)):
            if key.endswith("/output_step"):  # a model's constant, read with its outputs
                continue
            a, b = mine[key].astype(np.float64), other[key].astype(np.float64)
            if a.shape != b.shape:
                problems.append(f"{key}: shape {a.shape} here, {b.shape} there")
                continue
            if not (np.isfinite(a).all() and np.isfinite(b).all()):
                problems.append(f"{key}: values that are not finite")
                continue
            difference = float(np.abs(a - b).max()) if a.size else 0.0
            comparison.arrays += 1
            comparison.identical_arrays += int(np.array_equal(a, b))
            comparison.values += a.size
            comparison.identical_values += int((a == b).sum())
            if key.endswith("/outputs"):
                comparison.max_abs_output_difference = max(comparison.max_abs_output_difference, difference)
                step_key = key.split("/")[0] + "/output_step"
                step = float(mine[step_key]) if step_key in mine.files else 0.0
                steps = difference / step if step > 0 else (0.0 if difference == 0 else np.inf)
                comparison.max_output_difference_steps = max(comparison.max_output_difference_steps, steps)
                comparison.answers_that_differ += int((a.reshape(len(a), -1).argmax(1)
                                                       != b.reshape(len(b), -1).argmax(1)).sum())
            else:
                comparison.max_abs_feature_difference = max(comparison.max_abs_feature_difference, difference)
    comparison.problems = tuple(problems)
    return comparison


def answers(result: subprocess.CompletedProcess) -> List[str]:
    """What a command answered: its standard output, and the lines of its standard error that
    neither time it (speed, CPU) nor name the interpreter (which differs between the machines)."""
    varying = re.compile(r"real time|CPU|ms per|interpreter")
    return result.stdout.splitlines() + [line for line in result.stderr.splitlines() if not varying.search(line)]


def device_commands(tree: Path) -> List[List[str]]:
    """The README's device commands over the shipped examples (listen with each delivered keyword
    model, forecast with each delivered forecaster)."""
    commands = [["-m", "pi_runtime.listen", "--input", EXAMPLE_RECORDING]]
    commands += [["-m", "pi_runtime.listen", "--model", str(path.relative_to(tree)), "--input", EXAMPLE_RECORDING]
                 for path in delivered_models(tree, "kws")]
    commands += [["-m", "pi_runtime.forecast", "--model", str(path.relative_to(tree)), "--csv", EXAMPLE_READINGS]
                 for path in delivered_models(tree, "forecast")]
    return commands


def skip_reasons(pytest_output: str) -> Dict[str, int]:
    """How many tests were skipped for each reason, from pytest's ``-ra`` summary lines."""
    reasons: Dict[str, int] = {}
    for count, reason in re.findall(r"^SKIPPED \[(\d+)\] [^:]+:\d+: (.*)$", pytest_output, re.MULTILINE):
        reasons[reason] = reasons.get(reason, 0) + int(count)
    return reasons


def device_test_runs() -> List[List[str]]:
    """The device-side test files in the pytest runs they take: the property tests first, alone.

    tflite_runtime 2.14 (armhf) turns on flush-to-zero for the whole process when it is imported
    (see :func:`interpreter_probe`); Hypothesis then refuses to draw subnormal floats, so the
    property tests run in a process that has not loaded an interpreter."""
    properties = [name for name in DEVICE_TEST_FILES if name in PROPERTY_FILES]
    return [properties, [name for name in DEVICE_TEST_FILES if name not in properties]]


def interpreter_probe(model: Path) -> str:
    """Python code that prints which interpreter runs ``model`` and whether loading it left the
    processor flushing subnormal floats to zero (for the computations after it, the frontend's among them)."""
    return "\n".join([
        "import numpy as np",
        "from pi_runtime.model import load_model",
        f"model = load_model({str(model)!r})",
        "model.predict_many(np.zeros((1,) + model.model_input.feature_shape, np.float32))",
        "subnormal = np.float32(1e-39) * np.float32(1) > 0 and np.float64(2.2250738585072014e-308) / 2 > 0",
        "print(model.interpreter_name + ('' if subnormal else ', subnormal floats flushed to zero once it is loaded'))",
    ])


# -- one architecture ------------------------------------------------------------------------------------
@dataclass
class Report:
    arch: str
    warnings: List[str]
    tests: str = ""
    tests_passed: bool = False
    comparison: Optional[Comparison] = None
    commands_same: int = 0
    commands_differ: Tuple[str, ...] = ()
    interpreter: str = ""
    skipped: Dict[str, int] = field(default_factory=dict)

    @property
    def unexpected_skips(self) -> List[str]:
        return [reason for reason in self.skipped if EXPECTED_SKIP not in reason]

    @property
    def passed(self) -> bool:
        c = self.comparison
        return (self.tests_passed and not self.unexpected_skips and not self.warnings and not self.commands_differ
                and c is not None and not c.problems and c.answers_that_differ == 0 and c.max_abs_feature_difference == 0
                and c.max_output_difference_steps <= OUTPUT_TOLERANCE_STEPS + 1e-3)


def check_architecture(arch: Architecture, cache_dir: Path, work_dir: Path, say) -> Report:
    check_tools(arch)
    root = debian_root(arch, cache_dir, say)
    describe_processor(root, arch)
    site = python_packages(arch, cache_dir, say)
    tree = work_dir / arch.name
    shutil.rmtree(tree, ignore_errors=True)
    copy_checkout(tree)
    python = target_python(arch, root)
    environment = clean_environment(site)
    say(f"{arch.name}: python setup.py build_ext --inplace there (compiler {arch.compiler})")
    report = Report(arch=arch.name, warnings=build_there(python, root, tree, environment))

    say(f"{arch.name}: the device-side tests under {arch.qemu} -cpu {arch.qemu_cpu} (minutes)")
    summaries, report.tests_passed = [], True
    for files in device_test_runs():
        started = time.monotonic()
        result = run([*python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow and not realdata",
                      *files], tree, environment)
        summaries.append((result.stdout.strip().splitlines() or ["(no output)"])[-1]
                         + f" [{time.monotonic() - started:.0f} s]")
        for reason, count in skip_reasons(result.stdout).items():
            report.skipped[reason] = report.skipped.get(reason, 0) + count
        if result.returncode != 0:
            report.tests_passed = False
            say(result.stdout[-6000:] + result.stderr[-3000:])
    report.tests = "; ".join(summaries)

    say(f"{arch.name}: every delivered model on the examples, here and there")
    ours, theirs = work_dir / f"{arch.name}_here.npz", work_dir / f"{arch.name}_there.npz"
    dump_numbers(REPO_ROOT, ours, builtin_kernels=arch.builtin_kernels)  # the same kernels as there
    result = run([*python, "-m", "tests.cross_arch", "--dump", str(theirs)], tree, environment)
    if result.returncode != 0:
        report.comparison = Comparison(problems=(f"the dump failed:\n{result.stderr[-3000:]}",))
    else:
        report.comparison = compare_numbers(ours, theirs)
    model = delivered_models(tree, "kws")[0].relative_to(tree)
    probe = run([*python, "-c", interpreter_probe(model)], tree, environment)
    report.interpreter = probe.stdout.strip() or probe.stderr.strip()[-200:]

    differ = []
    for arguments in device_commands(tree):
        here = run([sys.executable, *arguments, *(["--builtin-kernels"] if arch.builtin_kernels else [])], REPO_ROOT,
                   {**os.environ})
        there = run([*python, *arguments], tree, environment)
        if here.returncode == there.returncode == 0 and answers(here) == answers(there):
            report.commands_same += 1
        else:
            differ.append(" ".join(arguments) + f" (exit {here.returncode} here, {there.returncode} there"
                          + (f": {there.stderr.strip()[-300:]}" if there.returncode else "") + ")")
    report.commands_differ = tuple(differ)
    return report


def print_report(report: Report) -> None:
    c = report.comparison
    print(f"\n== {report.arch}")
    print(f"build: {len(report.warnings)} compiler warning(s)" + "".join(f"\n  {w}" for w in report.warnings[:20]))
    print(f"device-side tests: {report.tests}"
          + "".join(f"\n  skipped {count}: {reason}"
                    + (" (unexpected: fails the check)" if reason in report.unexpected_skips else "")
                    for reason, count in sorted(report.skipped.items())))
    print(f"interpreter there: {report.interpreter}")
    if c is not None:
        for problem in c.problems:
            print(f"numbers: {problem}")
        if c.arrays:
            print(f"numbers: {c.identical_arrays}/{c.arrays} arrays and {c.identical_values}/{c.values} values "
                  f"identical; largest difference {c.max_abs_feature_difference:.3g} in features, "
                  f"{c.max_abs_output_difference:.3g} in model outputs ({c.max_output_difference_steps:.2f} "
                  f"quantisation steps); top answer differs in "
                  f"{c.answers_that_differ} window(s)")
    total = report.commands_same + len(report.commands_differ)
    print(f"README's device commands on the examples: {report.commands_same}/{total} print the same answers"
          + "".join(f"\n  differs: {line}" for line in report.commands_differ))
    print(f"{report.arch}: {'PASSED' if report.passed else 'FAILED'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cross_arch", description=__doc__.split("\n\n")[0],
        epilog="Builds for and runs under emulation of each architecture: its tests, every delivered model "
               "on the examples, compared with this machine. Runs on Debian bookworm with qemu-user and Debian's "
               "cross compilers:\n  " + APT_SETUP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), action="append",
                        help="architecture to check (repeatable; default: all)")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "tinyml-pi" / "cross",
                        help="where Debian's packages and the wheels are kept between runs "
                             "(default ~/.cache/tinyml-pi/cross)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the copies of the checkout are built (default: a temporary folder, removed)")
    parser.add_argument("--dump", type=Path, default=None, metavar="NPZ",
                        help=argparse.SUPPRESS)  # what the emulated Python runs: dump_numbers into NPZ
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.dump is not None:
        dump_numbers(Path.cwd(), args.dump)
        return 0
    say = lambda message: print(message, flush=True)  # noqa: E731
    # Absolute: the emulated Python runs in the copy of the checkout and reads these paths from there.
    cache_dir = args.cache_dir.expanduser().resolve()
    work = (args.work_dir or Path(tempfile.mkdtemp(prefix="tinyml_cross_"))).expanduser().resolve()
    reports = []
    try:
        for name in args.arch or sorted(ARCHITECTURES):
            try:
                reports.append(check_architecture(ARCHITECTURES[name], cache_dir, work, say))
            except CannotRun as error:
                print(f"error: {error}", file=sys.stderr)
                return 1 if any(not report.passed for report in reports) else 2
            except (RuntimeError, subprocess.SubprocessError, OSError) as error:  # a failed build, unpacking, run
                print(f"{name}: FAILED: {error}", file=sys.stderr)
                return 1
            print_report(reports[-1])
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if all(report.passed for report in reports) else 1


if __name__ == "__main__":
    run_command(main)
