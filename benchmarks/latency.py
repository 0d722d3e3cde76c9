"""The latency tool on every delivered keyword-spotting model: native vs the course's pipeline.

For each model in ``models/kws/`` (or ``--model``), the same runs as
``python -m pi_runtime.latency --reference --streaming``: 1 s of random 48 kHz
audio -> resample -> features -> ``invoke()``, natively and through the
course's ``scipy.signal.resample_poly`` + eager ``tf.signal``, on the same
clips and the same interpreter; then one live decision (one 100 ms hop pushed
through the streaming pipeline) against ``invoke()`` alone, timed back to back
over ``--streaming-runs`` hops (2000: a decision is cheap, and medians of many
runs hold still on a busy machine). One table.

    python -m benchmarks.latency [--runs 100] [--streaming-runs 2000] [--model M ...]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from benchmarks.reporting import load_kws_models, models_to_run, package_version
from pi_runtime.arguments import non_negative_int, positive_float, positive_int, run_command
from pi_runtime.kws_pipeline import frames_per_hop
from pi_runtime.latency import governor_hint, measure_native, measure_reference, measure_streaming
from pi_runtime.reference import reference_available


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency",
                                     description="Latency of every delivered KWS model, native vs the course's "
                                                 "pipeline, and the cost of one live decision.")
    parser.add_argument("--model", action="append", type=Path,
                        help="model(s), sidecar beside; repeat for several (default: every model in models/kws/)")
    parser.add_argument("--runs", type=positive_int, default=100, help="timed runs per measurement (default 100)")
    parser.add_argument("--warmup", type=non_negative_int, default=5, help="untimed runs first (default 5)")
    parser.add_argument("--threads", type=positive_int, default=1, help="interpreter threads (default 1)")
    parser.add_argument("--hop-ms", type=positive_float, default=100.0,
                        help="hop of the streaming decision in ms, whole frames of each model's frontend "
                             "(default 100)")
    parser.add_argument("--streaming-runs", type=positive_int, default=2000,
                        help="timed hops of the streaming decision (default 2000)")
    args = parser.parse_args(argv)

    try:  # a missing, truncated or other task's model or sidecar, too many threads, a hop a model cannot run
        models = models_to_run(args.model)
        loaded = load_kws_models(models, num_threads=args.threads)
        for model in loaded:
            frames_per_hop(args.hop_ms, model.model_input)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    missing_reference = reference_available()
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"ai-edge-litert {package_version('ai_edge_litert')}, "
          f"tensorflow {package_version('tensorflow') if not missing_reference else '-'}, "
          f"scipy {package_version('scipy') if not missing_reference else '-'}")
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs; "
          f"{governor_hint() or 'CPU governor: performance or not exposed'}")
    print(f"config: {args.runs} runs + {args.warmup} warm-up, 1 s of random audio at 48 kHz per run, "
          f"{args.threads} interpreter thread(s), streaming hop {args.hop_ms:g} ms over {args.streaming_runs} hops; "
          f"times in ms")
    if missing_reference:
        print(f"reference columns empty: {missing_reference}")
    print()
    name_width = max(20, *(len(path.name) for path in models))
    header = (f"{'model':<{name_width}} {'bytes':>6} {'invoke':>7} {'native total':>14} {'course total':>14} "
              f"{'course/native':>14} {'decision':>9} {'of which':>9} {'and':>7} {'decision/invoke':>16}")
    print(header)
    print(f"{'':<{name_width}} {'':>6} {'median':>7} {'mean / median':>14} {'mean / median':>14} {'mean / median':>14} "
          f"{'median':>9} {'features':>9} {'glue':>7} {'(median)':>16}")
    print("-" * len(header))
    for path, model in zip(models, loaded):
        native = measure_native(model, runs=args.runs, warmup=args.warmup)
        course_cells = (f"{'-':>14}", f"{'-':>14}")
        if not missing_reference:
            reference = measure_reference(model, runs=args.runs, warmup=args.warmup)
            course_cells = (
                f"{reference.total['mean']:6.2f} / {reference.total['median']:5.2f}",
                f"{reference.total['mean'] / native.total['mean']:5.0f}x / "
                f"{reference.total['median'] / native.total['median']:4.0f}x")
        streaming = measure_streaming(model, runs=args.streaming_runs, hop_ms=args.hop_ms, warmup=args.warmup)
        decision, features = np.median(streaming.decision_ms), np.median(streaming.features_ms)
        glue = decision - np.median(streaming.invoke_ms) - features
        print(f"{path.name:<{name_width}} {model.size_bytes:6d} {native.inference['median']:7.3f} "
              f"{native.total['mean']:6.3f} / {native.total['median']:5.3f} {course_cells[0]:>14} {course_cells[1]:>14} "
              f"{decision:9.3f} {features:9.3f} {glue:7.3f} {streaming.ratio:15.2f}x")
    print()
    print("invoke: invoke() and reading the output (the course's inference latency); totals: from the raw 48 kHz clip "
          "to the output;\ndecision: one hop pushed through the native feature stream (resampler, streaming frontend, "
          "window ring), the model, softmax and smoothing;\nof which features: the native feature stream alone on that "
          "hop; glue: the rest besides invoke() (Python, interpreter input/output, softmax, smoothing, level)")
    return 0


if __name__ == "__main__":
    run_command(main)
