"""Latency of a keyword-spotting model on this machine, measured like the course.

``python -m pi_runtime.latency --model models/kws/kws_a.tflite`` does what the
course's ``kws_latency.py`` did, with the native path instead of scipy and
eager ``tf.signal``: for each of ``--runs`` runs (100), one second of random
48 kHz audio is resampled to the model's rate, turned into features and fed to
``invoke()``. It prints the course's two lines (means, as the course printed
them) and the median and 95th percentile.

``--reference`` runs the same audio through the course's own pipeline as well
(TensorFlow and scipy needed) and prints the ratio of the totals.
``--streaming`` measures one decision of the live pipeline instead: one hop
of audio in, only the new frames computed, the window written into the
model's input, the model run, softmax and smoothing; compared with
``invoke()`` alone.

The frontend comes from the model's sidecar. A model without one takes the
course's flags (``--rate --mfcc --resize --length --stride --bins --coeff
--lower-frequency --upper-frequency``); flags that disagree with a sidecar are
an error.

Every size from the command line is bounded before use: rates from
:data:`~pi_runtime.kws_pipeline.MIN_INPUT_RATE_HZ` to ``MAX_INPUT_RATE_HZ``
(1000 to 768000 Hz), at most :data:`MAX_RUNS` runs, a hop no longer than the
clip; the clips are drawn one run at a time, so memory does not grow with
``--runs``.
"""
from __future__ import annotations

import argparse
import glob
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from native.frontend import Frontend
from native.params import FrontendParams, ModelInput
from native.resample import ratio_for, resample_poly
from native.feature_stream import FeatureStream
from pi_runtime.arguments import add_builtin_kernels_argument, non_negative_int, run_command
from pi_runtime.kws_pipeline import (MAX_INPUT_RATE_HZ, MIN_INPUT_RATE_HZ, DetectorConfig, KeywordSpotter,
                                     frames_per_hop)
from pi_runtime.model import LoadedModel, load_model
from pi_runtime.sidecar import sidecar_path

GOVERNOR_GLOB = "/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor"
GOVERNOR_COMMAND = "echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor"
# The course's defaults for a model without a sidecar (its kws_latency.py flags).
COURSE_DEFAULTS = dict(rate=16000, length=640, stride=320, resize=32, bins=40, coeff=10,
                       lower_frequency=20.0, upper_frequency=4000.0)
# A million runs of the fastest model take minutes; more is a typo.
MAX_RUNS = 1_000_000


@dataclass
class Timings:
    """Per-run latencies in milliseconds."""

    inference_ms: np.ndarray
    total_ms: np.ndarray

    @staticmethod
    def _stats(values: np.ndarray) -> dict:
        return {"mean": float(np.mean(values)), "median": float(np.median(values)),
                "p95": float(np.percentile(values, 95))}

    @property
    def inference(self) -> dict:
        return self._stats(self.inference_ms)

    @property
    def total(self) -> dict:
        return self._stats(self.total_ms)


# -- measurements -------------------------------------------------------------------------
def random_clips(runs: int, num_samples: int, seed: int) -> np.ndarray:
    """``runs`` clips of uniform random audio in [0, 1), as the course generated them."""
    return np.random.default_rng(seed).random((runs, num_samples), dtype=np.float32)


def iter_random_clips(runs: int, num_samples: int, seed: int) -> Iterator[np.ndarray]:
    """The rows of :func:`random_clips`, drawn one at a time (memory of one clip)."""
    rng = np.random.default_rng(seed)
    for _ in range(runs):
        yield rng.random(num_samples, dtype=np.float32)


def _clip_samples(model_input: ModelInput, input_rate_hz: int) -> int:
    return model_input.clip_duration_ms * input_rate_hz // 1000


def _time_runs(compute_features, model: Optional[LoadedModel], model_input: ModelInput, *, runs: int,
               input_rate_hz: int, warmup: int, seed: int) -> Timings:
    """Time ``compute_features(clip)`` and the model on it for each random clip.

    Total latency covers everything from the raw clip to the output; inference
    latency covers ``invoke()`` and reading the output, as the course timed it.
    Without a model (the course's script allowed that) only the features are
    timed and inference latency is zero.
    """
    inference, total = [], []
    for clip in iter_random_clips(warmup + runs, _clip_samples(model_input, input_rate_hz), seed):
        start = time.perf_counter()
        features = compute_features(clip)
        start_inference = time.perf_counter()
        if model is not None:
            model.set_input(features)
            start_inference = time.perf_counter()
            model.invoke_raw()
            model.get_output()
        end = time.perf_counter()
        inference.append(end - start_inference)
        total.append(end - start)
    return Timings(1e3 * np.array(inference[warmup:]), 1e3 * np.array(total[warmup:]))


def measure_native(model: Optional[LoadedModel], *, model_input: Optional[ModelInput] = None, runs: int = 100,
                   input_rate_hz: int = 48000, warmup: int = 5, seed: int = 0) -> Timings:
    """Resample (native) -> features (native, resized when the model input is) -> ``invoke()``, timed per run.

    ``model_input`` defaults to the model's; with ``model=None`` only the
    preprocessing is timed.
    """
    model_input = model_input or model.model_input
    params = model_input.frontend
    frontend = Frontend(params)
    up, down = ratio_for(input_rate_hz, params.sample_rate_hz)

    def features(clip: np.ndarray) -> np.ndarray:
        return frontend.compute(resample_poly(clip, up, down) if up != down else clip, resize=model_input.resize)

    return _time_runs(features, model, model_input, runs=runs, input_rate_hz=input_rate_hz, warmup=warmup, seed=seed)


def measure_reference(model: Optional[LoadedModel], *, model_input: Optional[ModelInput] = None, runs: int = 100,
                      input_rate_hz: int = 48000, warmup: int = 5, seed: int = 0) -> Timings:
    """The course's pipeline (scipy + eager tf.signal) on the same clips and interpreter."""
    from pi_runtime.reference import CoursePipeline

    model_input = model_input or model.model_input
    pipeline = CoursePipeline(model_input, input_rate_hz=input_rate_hz)
    return _time_runs(pipeline.features, model, model_input, runs=runs, input_rate_hz=input_rate_hz,
                      warmup=warmup, seed=seed)


@dataclass
class StreamingTimings:
    """Cost of one live decision vs ``invoke()`` alone, in milliseconds per run.

    ``features_ms`` is the part of a decision spent in the native feature
    stream (resampling the hop, its new frames, the window), measured
    separately on the same audio.
    """

    decision_ms: np.ndarray
    invoke_ms: np.ndarray
    features_ms: np.ndarray
    hop_ms: float

    @property
    def ratio(self) -> float:
        """Median decision cost over median ``invoke()``: 1.0 means preprocessing is free."""
        return float(np.median(self.decision_ms) / np.median(self.invoke_ms))


def measure_streaming(model: LoadedModel, *, runs: int = 100, input_rate_hz: int = 48000,
                      hop_ms: float = 100.0, warmup: int = 5, seed: int = 0) -> StreamingTimings:
    """Time ``KeywordSpotter.push`` of one hop of audio (exactly one decision each)
    against ``invoke()`` alone on the same model."""
    config = DetectorConfig(hop_ms=hop_ms, min_level_dbfs=-np.inf, threshold=1.0)
    spotter = KeywordSpotter(model, input_rate_hz=input_rate_hz, config=config)
    hop_samples = int(round(spotter.hop_s * input_rate_hz))
    model_input = model.model_input
    rng = np.random.default_rng(seed)
    # Fill the feature window first so every timed push ends in a decision.
    spotter.push(rng.random(_clip_samples(model_input, input_rate_hz) + hop_samples, dtype=np.float32))
    features = FeatureStream(model_input.frontend, input_rate_hz, model_input.frame_shape[0], spotter.hop_frames,
                             resize=model_input.resize)
    features.push(rng.random(_clip_samples(model_input, input_rate_hz), dtype=np.float32))
    while features.next_window() >= 0:
        pass
    # The three timings of a run are taken back to back, so on a busy machine
    # the decision and invoke() alone see the same conditions.
    decision, features_s, invoke = [], [], []
    clock = time.perf_counter
    for _ in range(warmup + runs):
        hop = rng.random(hop_samples, dtype=np.float32)
        before = spotter.decisions
        start = clock()
        spotter.push(hop)
        decision.append(clock() - start)
        if spotter.decisions != before + 1:  # cannot happen for a whole hop, but never report a wrong cost
            raise RuntimeError(f"one hop gave {spotter.decisions - before} decisions")
        start = clock()
        model.invoke_raw()
        invoke.append(clock() - start)
        start = clock()
        features.push(hop)
        while features.next_window() >= 0:
            pass
        features_s.append(clock() - start)
    return StreamingTimings(1e3 * np.array(decision[warmup:]), 1e3 * np.array(invoke[warmup:]),
                            1e3 * np.array(features_s[warmup:]), hop_ms=1e3 * spotter.hop_s)


# -- frontend from flags --------------------------------------------------------------------
def input_from_flags(args: argparse.Namespace) -> ModelInput:
    """The model input (frontend, 1 s clip, resize) of a model without a sidecar, from the course's
    flags and defaults."""
    value = lambda name: COURSE_DEFAULTS[name] if getattr(args, name) is None else getattr(args, name)  # noqa: E731
    common = dict(sample_rate_hz=value("rate"), frame_length_samples=value("length"),
                  frame_step_samples=value("stride"))
    if args.mfcc:
        return ModelInput(frontend=FrontendParams(
            feature_kind="mfcc", num_mel_bins=value("bins"), num_mfccs=value("coeff"),
            lower_edge_hz=value("lower_frequency"), upper_edge_hz=value("upper_frequency"), **common))
    resize = value("resize")
    return ModelInput(frontend=FrontendParams(feature_kind="spectrogram", **common),
                      resize=(resize, resize) if resize else None)


def check_flags_against(model_input: ModelInput, args: argparse.Namespace, source: str) -> None:
    """Raise ValueError naming every course flag given that disagrees with ``model_input``."""
    params = model_input.frontend
    resize = None if args.resize is None else ((args.resize, args.resize) if args.resize else "none")
    given = [  # (flag, value given or None, what the frontend has)
        ("--rate", args.rate, params.sample_rate_hz),
        ("--length", args.length, params.frame_length_samples),
        ("--stride", args.stride, params.frame_step_samples),
        ("--mfcc", args.mfcc, params.feature_kind == "mfcc"),
        ("--resize", resize, model_input.resize or "none"),
        ("--bins", args.bins, params.num_mel_bins),
        ("--coeff", args.coeff, params.num_mfccs),
        ("--lower-frequency", args.lower_frequency, params.lower_edge_hz),
        ("--upper-frequency", args.upper_frequency, params.upper_edge_hz),
    ]
    conflicts = [f"{flag} {value} (sidecar: {actual})" for flag, value, actual in given
                 if value is not None and value != actual]
    if conflicts:
        raise ValueError(f"the flags disagree with {source}: " + "; ".join(conflicts)
                         + ". Drop the flags (the sidecar is authoritative) or fix the sidecar.")


def load_for_latency(args: argparse.Namespace) -> LoadedModel:
    """Load ``args.model`` with its frontend from the sidecar (read once, by the
    loader), or from the flags when it has none."""
    model_path = Path(args.model)
    if not model_path.is_file():
        raise ValueError(f"{model_path}: no such model file")
    has_sidecar = sidecar_path(model_path).is_file()
    model = load_model(model_path, num_threads=args.threads, frontend=None if has_sidecar else input_from_flags(args),
                       verbose=args.verbose, builtin_kernels=args.builtin_kernels)
    if has_sidecar:
        if model.model_input is None:
            raise ValueError(f"{sidecar_path(model_path)}: not a keyword-spotting sidecar (no 'frontend')")
        check_flags_against(model.model_input, args, str(sidecar_path(model_path)))
    return model


# -- reporting -------------------------------------------------------------------------------
def governor_hint() -> Optional[str]:
    """A hint when some CPU's frequency governor is not ``performance`` (None otherwise)."""
    governors = set()
    for path in glob.glob(GOVERNOR_GLOB):
        try:
            governors.add(Path(path).read_text().strip())
        except OSError:
            continue
    others = sorted(governors - {"performance"})
    if not others:
        return None
    return (f"note: CPU frequency governor is {'/'.join(others)}; for stable numbers, as the course measured, run\n"
            f"  {GOVERNOR_COMMAND}")


def describe_frontend(model_input: ModelInput) -> str:
    params = model_input.frontend
    text = (f"{params.feature_kind}, {params.sample_rate_hz} Hz, frames {params.frame_length_samples}/"
            f"{params.frame_step_samples} samples, fft {params.fft_length}")
    if params.feature_kind in ("log_mel", "mfcc"):
        text += f", {params.num_mel_bins} mel bins {params.lower_edge_hz:g}-{params.upper_edge_hz:g} Hz"
    if params.feature_kind == "mfcc":
        text += f", {params.num_mfccs} MFCCs"
    if model_input.resize is not None:
        text += f", resized to {model_input.resize[0]}x{model_input.resize[1]}"
    return text + f" -> input {model_input.feature_shape}"


def print_course_lines(timings: Timings, out=None) -> None:
    out = out or sys.stdout
    print("Inference Latency {:.2f}ms".format(timings.inference["mean"]), file=out)
    print("Total Latency {:.2f}ms".format(timings.total["mean"]), file=out)
    print("  median: inference {:.3f} ms, total {:.3f} ms; p95: inference {:.3f} ms, total {:.3f} ms".format(
        timings.inference["median"], timings.total["median"], timings.inference["p95"], timings.total["p95"]),
        file=out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pi_runtime.latency",
        description="Inference and total latency of a keyword-spotting model, measured like the course's "
                    "kws_latency.py (random 48 kHz audio -> resample -> features -> invoke), native path.")
    parser.add_argument("--model", help="model file (.tflite or .tflite.zlib) with its sidecar; without it, as with "
                                        "the course's script, only the preprocessing given by the flags is timed")
    parser.add_argument("--runs", type=int, default=100, help=f"timed runs (default 100, as the course; at most {MAX_RUNS})")
    parser.add_argument("--warmup", type=int, default=5, help=f"untimed runs first (default 5; at most {MAX_RUNS})")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1, as the course)")
    parser.add_argument("--input-rate", type=int, default=48000,
                        help=f"rate of the random audio in Hz (default 48000, a USB microphone's; "
                             f"{MIN_INPUT_RATE_HZ} to {MAX_INPUT_RATE_HZ})")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random audio")
    parser.add_argument("--reference", action="store_true",
                        help="also run the course's pipeline (scipy.signal.resample_poly + eager tf.signal) "
                             "on the same audio and print the ratio; needs TensorFlow and scipy")
    parser.add_argument("--streaming", action="store_true",
                        help="also time one decision of the live pipeline (one hop of audio in, new frames only, "
                             "feature ring, invoke) against invoke() alone")
    parser.add_argument("--hop-ms", type=float, default=100.0,
                        help="hop of the streaming mode (default 100 ms; more than 0, at most one clip)")
    add_builtin_kernels_argument(parser)
    parser.add_argument("--verbose", action="store_true",
                        help="print the model, interpreter and frontend used, and the interpreter's own start-up lines")
    course = parser.add_argument_group(
        "course flags", "for a model without a sidecar (defaults: the course's); with a sidecar they must agree")
    course.add_argument("--rate", type=int, help=f"sample rate after resampling, Hz (course default 16000; "
                                                 f"{MIN_INPUT_RATE_HZ} to {MAX_INPUT_RATE_HZ})")
    course.add_argument("--mfcc", action="store_true", default=None, help="MFCC features (else spectrogram)")
    course.add_argument("--resize", type=int, help="spectrogram resized to NxN (course default 32; 0: no resize)")
    course.add_argument("--length", type=int, help="STFT frame length in samples (course default 640)")
    course.add_argument("--stride", type=int, help="STFT frame step in samples (course default 320)")
    course.add_argument("--bins", type=int, help="mel bins (course default 40)")
    course.add_argument("--coeff", type=int, help="MFCCs kept (course default 10)")
    course.add_argument("--lower-frequency", type=float, help="lowest mel edge, Hz (course default 20)")
    course.add_argument("--upper-frequency", type=float, help="highest mel edge, Hz (course default 4000)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= MAX_RUNS:
        parser.error(f"--runs must be from 1 to {MAX_RUNS}")
    if not 0 <= args.warmup <= MAX_RUNS:
        parser.error(f"--warmup must be from 0 to {MAX_RUNS}")
    if args.threads < 1:  # the upper bound is the loader's (pi_runtime.model.MAX_THREADS)
        parser.error("--threads must be >= 1")
    for name in ("input_rate", "rate"):
        value = getattr(args, name)
        if value is not None and not MIN_INPUT_RATE_HZ <= value <= MAX_INPUT_RATE_HZ:
            parser.error(f"--{name.replace('_', '-')} must be from {MIN_INPUT_RATE_HZ} to {MAX_INPUT_RATE_HZ} Hz")
    if not (math.isfinite(args.hop_ms) and args.hop_ms > 0):
        parser.error("--hop-ms must be a positive number")
    if args.streaming and args.model is None:
        parser.error("--streaming needs --model")
    if args.builtin_kernels and args.model is None:
        parser.error("--builtin-kernels needs --model")
    try:
        return _run(args)
    except BrokenPipeError:  # the reader of the output went away: run_command ends quietly
        raise
    except (ValueError, OSError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.reference:
        from pi_runtime.reference import reference_available

        missing = reference_available()
        if missing:
            raise ValueError(f"--reference: {missing}")
    if args.model is None:  # as the course's script without --model: preprocessing only
        model, model_input = None, input_from_flags(args)
    else:
        model = load_for_latency(args)
        model_input = model.model_input
    if args.streaming and args.hop_ms > model_input.clip_duration_ms:
        raise ValueError(f"--hop-ms {args.hop_ms:g} is longer than the model's {model_input.clip_duration_ms} ms clip")
    if args.streaming:
        frames_per_hop(args.hop_ms, model_input)  # before the timings, not after them
    if args.verbose:
        if model is None:
            print("model: none (preprocessing only; inference latency is zero)")
        else:
            print(f"model: {model.describe()}")
            print(f"interpreter: {model.interpreter_name}")
        print(f"frontend: {describe_frontend(model_input)}")
        print(f"runs: {args.runs} (+{args.warmup} warm-up), random audio at {args.input_rate} Hz, "
              f"{model_input.clip_duration_ms} ms each")
    hint = governor_hint()
    if hint:
        print(hint, file=sys.stderr)

    native = measure_native(model, model_input=model_input, runs=args.runs, input_rate_hz=args.input_rate,
                            warmup=args.warmup, seed=args.seed)
    if args.reference:
        print("native (Resampler + frontend in C, LiteRT):")
    print_course_lines(native)
    if args.reference:
        reference = measure_reference(model, model_input=model_input, runs=args.runs, input_rate_hz=args.input_rate,
                                      warmup=args.warmup, seed=args.seed)
        print("reference (course pipeline: scipy.signal.resample_poly + eager tf.signal"
              + (", same interpreter):" if model is not None else "):"))
        print_course_lines(reference)
        print("Total latency ratio reference/native: {:.1f}x mean, {:.1f}x median".format(
            reference.total["mean"] / native.total["mean"], reference.total["median"] / native.total["median"]))
    if args.streaming:
        streaming = measure_streaming(model, runs=args.runs, input_rate_hz=args.input_rate, hop_ms=args.hop_ms,
                                      warmup=args.warmup, seed=args.seed)
        print("streaming, one decision every {:.0f} ms: decision {:.3f} ms median (p95 {:.3f}), "
              "invoke() alone {:.3f} ms median; ratio {:.2f}".format(
                  streaming.hop_ms, np.median(streaming.decision_ms), np.percentile(streaming.decision_ms, 95),
                  np.median(streaming.invoke_ms), streaming.ratio))
        print("  of a decision: resampling the hop, its new frames and the window {:.3f} ms median (native)".format(
            np.median(streaming.features_ms)))
    return 0


if __name__ == "__main__":
    run_command(main)
