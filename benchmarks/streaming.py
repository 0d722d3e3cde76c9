"""Keyword spotting on a long labelled stream through the live pipeline: what a listener would hear.

Two streams (``--stream``):

* ``realistic`` (default): built by :func:`train.kws.streams.realistic_stream`
  from the TEST split and the held-out test negatives: the 800 test keyword
  clips, the test split's synthetic non-keyword words (voices and words that
  training never saw), reversed, halved and spliced speech, babble, clipped
  audio, noise, hum and room tone; half the items over babble or white, pink or
  brown noise at 20, 10 or 5 dB SNR; every item at a peak level from -40 to
  0 dBFS; half an hour of babble and coloured noise on their own (events of
  kind ``babble_stretch``, ``noise_pink_stretch``, ...); gaps of
  1-2 s, half of them with faint white noise. Needs the generated negatives
  (``python -m train.kws.negatives``, cached under the data folder).
* ``clean``: the 800 test keyword clips alone, as recorded, with the same kind
  of gaps (the stream of earlier versions of this benchmark, for comparison).

The stream is resampled to 48 kHz (a USB microphone) on the fly and goes
through the listen pipeline: 10 ms blocks into the native AudioRing, read back
one hop at a time into :class:`pi_runtime.kws_pipeline.KeywordSpotter`,
flushed at the end.

Per model, at its operating point (the sidecar's calibrated ``"detector"``
settings when it has them, else the defaults; flags override):
keywords detected (%), substitutions, false alarms per hour of the stream and
per hour of each kind of negative audio, the share of non-keyword words that
fired, detection delay, real-time factor and CPU time. Detection by background
and by level band, and why the keywords not detected were missed (the right
word too unsure, taken for ``_unknown_``/``_silence_`` or another word, gated,
held back). Then the DET curve: the stored posteriors replayed at
thresholds from 0.1 to 0.9999 (no model runs), miss rate against false alarms
per hour, drawn with the operating point marked (``--plot``), and the most
keywords any of those thresholds detects, whatever the false alarms.

``--keywords go,stop`` listens for those words only (``listen --keywords``):
the other keywords' clips become non-keyword words, and each model's operating
point is its sidecar's calibration for that subset when it has one.

    TINYML_DATA_DIR=/path nice -n 15 python -m benchmarks.streaming [--model M ...] [--stream clean]
        [--markdown benchmarks/results/kws_streaming.md --plot benchmarks/results/kws_streaming_det.png]
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from benchmarks.reporting import Report, add_data_dir_argument, add_markdown_argument, models_to_run, package_version
from pi_runtime.arguments import add_builtin_kernels_argument, non_negative_int, run_command
from pi_runtime.kws_pipeline import MAX_INPUT_RATE_HZ, MIN_INPUT_RATE_HZ, DetectorConfig, frames_per_hop
from pi_runtime.labels import keyword_list
from pi_runtime.model import load_model
from pi_runtime.replay import replay
from pi_runtime.sidecar import detector_settings
from train.kws.streams import (MISS_REASONS, DetCurve, LabelledStream, PipelineRun, StreamRecipe,
                               StreamScore, build_stream, det_curve, miss_reasons, realistic_stream,
                               run_pipeline, score)

BARS = {"detected_percent": 95.0, "words_fired_percent": 3.0, "noise_and_babble_per_hour": 2.0}


def build_test_stream(kind: str, *, data_dir: Optional[Path], seed: int) -> LabelledStream:
    if kind == "realistic":
        return realistic_stream("test", data_dir=data_dir, seed=seed, progress=True)
    from train.kws.data import load_split

    clips = load_split("test", data_dir=data_dir)
    return build_stream(clips, None, recipe=StreamRecipe(seed=seed), name="clean test stream (test split only)")


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def operating_point(model, overrides: Dict[str, Optional[float]],
                    keywords: Optional[Sequence[str]] = None) -> Tuple[DetectorConfig, str]:
    config = DetectorConfig.from_sidecar(model.sidecar, keywords=keywords, **overrides)
    origin = "calibrated (sidecar)" if detector_settings(model.sidecar, keywords) else "defaults"
    if keywords is not None and model.spec is not None:
        model.spec.listened_keywords(keywords)  # a word the model lacks: an error before the long part
        if not model.spec.calibrated_for(keywords):
            origin = origin.replace("calibrated", "calibrated for all words")
    if any(value is not None for value in overrides.values()):
        origin += " + flags"
    frames_per_hop(config.hop_ms, model.model_input)  # a hop the model cannot run: an error before the long part
    return config, origin


def plot_det(curves: Dict[str, Tuple[DetCurve, StreamScore, DetectorConfig]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_noise = any(point.noise_and_babble_kinds for _, point, _ in curves.values())
    figure, axes = plt.subplots(1, 2 if with_noise else 1, figsize=(12 if with_noise else 7, 5), sharey=True,
                                squeeze=False)
    axes = axes[0]
    for (name, (curve, point, config)), colour in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        noise_kinds = point.noise_and_babble_kinds
        panels = (curve.false_alarms_per_hour,
                  np.array([s.false_alarms_per_hour_of(noise_kinds) for s in curve.scores]))
        marks = (point.false_alarms_per_hour, point.false_alarms_per_hour_of(noise_kinds))
        for axis, x, mark in zip(axes, panels, marks):
            axis.plot(x, 100 * curve.miss_rate, ".-", markersize=3, color=colour,
                      label=f"{name} ({config.summary()})")
            axis.plot([mark], [100 * point.miss_rate], "o", color=colour, markersize=8, markeredgecolor="black",
                      label=f"{name} at threshold {config.threshold:g}")
    for axis, xlabel in zip(axes, ("false alarms per hour of the whole stream",
                                   "false alarms per hour of noise and babble audio")):
        axis.set_xscale("symlog", linthresh=1.0)
        axis.set_xlim(left=0)
        axis.set_xlabel(xlabel)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("keywords missed (%)")
    axes[0].axhline(100 - BARS["detected_percent"], color="grey", linestyle=":", label="bar: 5 % missed")
    if with_noise:
        axes[1].axvline(BARS["noise_and_babble_per_hour"], color="grey", linestyle=":", label="bar: 2 per hour")
    for axis in axes:
        axis.legend(fontsize=7)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.streaming",
        description="Keywords detected, substitutions, false alarms per hour (in total and per kind of negative), "
                    "share of non-keyword words that fired, delay and speed of live keyword spotting on a long "
                    "labelled test stream, and the DET curve over thresholds.")
    parser.add_argument("--model", action="append", type=Path,
                        help="model(s) to run (default: every model in models/kws/)")
    parser.add_argument("--stream", choices=("realistic", "clean"), default="realistic",
                        help="realistic: test keywords, held-out negatives, babble and noise at 20/10/5 dB SNR, "
                             "levels -40..0 dBFS; clean: the test keywords alone (default realistic)")
    add_data_dir_argument(parser)
    parser.add_argument("--input-rate", type=int, default=48000,
                        help=f"rate of the stream, Hz, from {MIN_INPUT_RATE_HZ} to {MAX_INPUT_RATE_HZ} (default 48000)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the stream (default 0)")
    parser.add_argument("--hop-ms", type=float, help="override the operating point's hop (ms)")
    parser.add_argument("--threshold", type=float, help="override the operating point's threshold")
    parser.add_argument("--smoothing-windows", type=int, help="override the operating point's smoothing")
    parser.add_argument("--refractory-ms", type=float, help="override the operating point's refractory period (ms)")
    parser.add_argument("--min-level-dbfs", type=float, help="override the operating point's energy gate (dBFS)")
    parser.add_argument("--temperature", type=float, help="override the operating point's temperature")
    parser.add_argument("--keywords", type=keyword_list,
                        help="listen for these keywords only, comma-separated (e.g. go,stop; the other keywords' "
                             "clips are then non-keyword words); default: each model's own keywords")
    add_builtin_kernels_argument(parser)
    add_markdown_argument(parser)
    parser.add_argument("--plot", type=Path, help="draw the DET curves into this PNG")
    args = parser.parse_args(argv)
    if not MIN_INPUT_RATE_HZ <= args.input_rate <= MAX_INPUT_RATE_HZ:
        parser.error(f"--input-rate must be from {MIN_INPUT_RATE_HZ} to {MAX_INPUT_RATE_HZ} Hz, got {args.input_rate}")

    try:
        models = models_to_run(args.model)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    overrides = {"hop_ms": args.hop_ms, "threshold": args.threshold, "smoothing_windows": args.smoothing_windows,
                 "refractory_ms": args.refractory_ms, "min_level_dbfs": args.min_level_dbfs,
                 "temperature": args.temperature}
    try:
        for path in models:
            operating_point(load_model(path, builtin_kernels=args.builtin_kernels), overrides,
                            args.keywords)  # bad flags or sidecars first
        print(f"building the {args.stream} test stream ...", file=sys.stderr, flush=True)
        stream = build_test_stream(args.stream, data_dir=args.data_dir, seed=args.seed)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    report = Report()
    report(f"python {platform.python_version()}, numpy {np.__version__}, "
           f"ai-edge-litert {package_version('ai_edge_litert')}, "
           f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs")
    report(f"stream: {stream.description}; fed at {args.input_rate} Hz"
           + ("; the interpreter's builtin kernels (--builtin-kernels)" if args.builtin_kernels else ""))
    if args.keywords:
        report(f"listening for {', '.join(args.keywords)} only: the other keywords' clips are non-keyword words")
    report("matching: a keyword is detected when a detection with its label has its window end within "
           "[clip start + 0.1 s, clip end + 0.8 s]; any other detection is a false alarm, charged to the kind of "
           "audio its window overlaps most ('gap' when none)")
    report()

    results: Dict[str, Tuple[PipelineRun, StreamScore, DetectorConfig, str, DetCurve]] = {}
    reasons: Dict[str, Dict[str, int]] = {}
    for model_path in models:
        model = load_model(model_path, builtin_kernels=args.builtin_kernels)
        config, origin = operating_point(model, overrides, args.keywords)
        print(f"{model_path.name}: running ...", file=sys.stderr, flush=True)
        live = run_pipeline(model, stream, config=config, input_rate_hz=args.input_rate, keywords=args.keywords)
        posteriors = run_pipeline(model, stream, config=config.replace(min_level_dbfs=-math.inf),
                                  input_rate_hz=args.input_rate, keywords=args.keywords)
        same = replay(posteriors.decisions, posteriors.labels, config, keywords=posteriors.keywords,
                      window_duration_s=posteriors.window_duration_s) == live.detections
        point = score(live.detections, stream, keywords=live.keywords)
        print(f"{model_path.name}: DET ...", file=sys.stderr, flush=True)
        curve = det_curve(posteriors.decisions, posteriors.labels, stream, config=config, keywords=live.keywords,
                          window_duration_s=posteriors.window_duration_s)
        results[model_path.name] = (live, point, config, origin + ("" if same else "; REPLAY DIFFERS"), curve)
        reasons[model_path.name] = miss_reasons(posteriors.decisions, posteriors.labels, stream, point.missed,
                                                config=config, keywords=live.keywords,
                                                window_duration_s=posteriors.window_duration_s)

    header = (f"{'model':<24} {'operating point':<58} {'detected':>8} {'subst.':>6} {'FA/h':>6} {'FA/h n+b':>8} "
              f"{'words fired':>11} {'delay med/p90 (s)':>17} {'RTF':>8} {'CPU ms/s':>8}")
    report(header)
    report("-" * len(header))
    for name, (live, point, config, origin, _) in results.items():
        noise = point.false_alarms_per_hour_of(point.noise_and_babble_kinds)
        delay = (f"{np.median(point.delays_s):+.2f}/{np.percentile(point.delays_s, 90):+.2f}"
                 if point.delays_s.size else "-")
        words = f"{point.words_fired}/{point.words} {_fmt(point.words_fired_percent)}%"
        report(f"{name:<24} {f'{config.summary()}, {origin}':<58} "
               f"{_fmt(point.detected_percent):>7}% {point.substitutions:6d} {point.false_alarms_per_hour:6.1f} "
               f"{_fmt(noise):>8} {words:>11} {delay:>17} {live.wall_s / stream.duration_s:8.5f} "
               f"{1000 * live.cpu_s / stream.duration_s:8.2f}")
    report()
    report(f"bars (issue 10, at the calibrated threshold): detected >= {BARS['detected_percent']:g} %, non-keyword "
           f"words fired <= {BARS['words_fired_percent']:g} %, false alarms on noise and babble (n+b) <= "
           f"{BARS['noise_and_babble_per_hour']:g} per hour of that audio")
    report()

    kinds = sorted({kind for _, point, *_ in results.values() for kind in point.seconds_by_kind})
    report("false alarms by kind of audio: count (per hour of that audio); hours: how much audio of that kind; "
           "babble: one-second clips of three to six of the split's keywords overlapped; *_stretch: babble of "
           "other words or noise alone for 30 s")
    first = next(iter(results.values()))[1]
    width = max(len(name) for name in results) + 2
    report(f"{'kind':<20} {'hours':>6} " + " ".join(f"{name:>{width}}" for name in results))
    for kind in kinds:
        cells = []
        for _, point, *_ in results.values():
            count = point.false_alarms_by_kind.get(kind, 0)
            cells.append(f"{count:d} ({_fmt(point.false_alarms_per_hour_of([kind]))})")
        report(f"{kind:<20} {first.seconds_by_kind.get(kind, 0) / 3600:6.3f} "
               + " ".join(f"{cell:>{width}}" for cell in cells))
    report()

    report("keywords detected by background and by level (detected / keywords)")
    keys = sorted({key for _, point, *_ in results.values() for key in point.detected_by})
    report(f"{'':<34} " + " ".join(f"{name:>{width}}" for name in results))
    for key in keys:
        cells = []
        for _, point, *_ in results.values():
            hits, total = point.detected_by.get(key, (0, 0))
            cells.append(f"{hits}/{total} {_fmt(100 * hits / total if total else math.nan)}%")
        report(f"{key:<34} " + " ".join(f"{cell:>{width}}" for cell in cells))
    report()

    report("why keywords were missed, over the windows that end in a keyword's matching interval: count "
           "(share of the keywords)")
    report(f"{'':<42} " + " ".join(f"{name:>{width}}" for name in results))
    for reason in MISS_REASONS:
        cells = [f"{reasons[name][reason]} ({_fmt(100 * reasons[name][reason] / point.keywords)}%)"
                 for name, (_, point, *_) in results.items()]
        report(f"{reason:<42} " + " ".join(f"{cell:>{width}}" for cell in cells))
    report()

    report("DET (same posteriors replayed at other thresholds, the operating point's smoothing and temperature): "
           "missed % / false alarms per hour of stream / per hour of noise and babble")
    shown = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)
    report(f"{'threshold':<24} " + " ".join(f"{t:>16g}" for t in shown))
    for name, (_, point, _, _, curve) in results.items():
        cells = []
        for threshold in shown:
            k = int(np.argmin(np.abs(curve.thresholds - threshold)))
            s = curve.scores[k]
            cells.append(f"{100 * s.miss_rate:.1f}/{s.false_alarms_per_hour:.1f}/"
                         f"{_fmt(s.false_alarms_per_hour_of(point.noise_and_babble_kinds))}")
        report(f"{name:<24} " + " ".join(f"{cell:>16}" for cell in cells))
    report()
    grid = next(iter(results.values()))[4].thresholds
    report(f"the most keywords any threshold detects ({grid.min():g} to {grid.max():g}; "
           "fewer below, where an early window of another word fires first)")
    for name, (_, point, _, _, curve) in results.items():
        # Of the thresholds that detect the most, the highest: the fewest false alarms for them.
        best = int(max(np.flatnonzero(curve.miss_rate == curve.miss_rate.min()), key=lambda k: curve.thresholds[k]))
        most = curve.scores[best]
        report(f"{name:<24} {100 * (1 - most.miss_rate):.1f} % at threshold {curve.thresholds[best]:g}, "
               f"{most.false_alarms_per_hour:.1f} false alarms an hour "
               f"({_fmt(most.false_alarms_per_hour_of(point.noise_and_babble_kinds))} on noise and babble)")

    if args.plot:
        plot_det({name: (curve, point, config) for name, (_, point, config, _, curve) in results.items()},
                 args.plot, f"DET on the {args.stream} test stream ({stream.duration_s / 3600:.2f} h, seed {args.seed})")
        report()
        report(f"DET curves drawn in {args.plot}")
    if args.markdown:
        command = "python -m benchmarks.streaming " + " ".join(argv if argv is not None else sys.argv[1:])
        title = f"Keyword spotting on a long {args.stream} stream (`python -m benchmarks.streaming`)"
        report.write_markdown(args.markdown, title=title,
                              command=command.strip(), note="see the module docstring for what is measured",
                              remark="Detection numbers do not depend on the machine; RTF and CPU ms per second of "
                                     "audio do.",
                              image=("DET curves", args.plot) if args.plot else None)
    return 0


if __name__ == "__main__":
    run_command(main)
