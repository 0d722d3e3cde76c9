"""The interpreter's kernels under the delivered keyword models: its default against the builtin ones.

LiteRT (``ai-edge-litert``, what the README installs) runs integer models through
its default delegate, XNNPACK; ``tflite_runtime`` 2.14, which older Pi images
have and ``pi_runtime`` falls back to, runs them on the interpreter's builtin
kernels (``python -m tests.cross_arch`` found its outputs on ARM equal to
LiteRT's with ``builtin_kernels=True`` to within one quantisation step). The
two round differently inside, so their outputs differ by quantisation steps.
Under tflite_runtime itself both columns run the builtin kernels. For each model this measures, on
the same clips and in the same run, what that does:

- accuracy on a split (the course's test split by default; an answer
  ``_silence_`` or ``_unknown_`` counts as wrong) with each, and the clips
  answered differently;
- the largest difference between their outputs;
- inference latency (``invoke()`` alone, median of ``--runs``, the two
  alternating on one input), and the ratio.

    python -m benchmarks.kernels [--split val] [--runs 500] [--model M ...] [--markdown F]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from benchmarks.reporting import (Report, add_data_dir_argument, add_markdown_argument, load_kws_models, models_to_run,
                                  package_version)
from pi_runtime.arguments import positive_int, run_command

KERNELS = {"default": False, "builtin": True}  # name -> load_model(builtin_kernels=...)


def median_invoke_ms(models: Sequence, example: np.ndarray, runs: int) -> list:
    """Median ``invoke()`` time of each model on ``example``, the models taking turns run by run."""
    for model in models:
        model.set_input(example)
        model.invoke_raw()  # warm-up: the first call allocates
    times = np.zeros((len(models), runs))
    for run in range(runs):
        for row, model in enumerate(models):
            started = time.perf_counter()
            model.invoke_raw()
            times[row, run] = time.perf_counter() - started
    return [1000 * float(np.median(row)) for row in times]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kernels",
                                     description=__doc__.split("\n\n")[0],
                                     epilog="Example: python -m benchmarks.kernels --markdown "
                                            "benchmarks/results/kws_kernels.md")
    parser.add_argument("--model", type=Path, action="append",
                        help="model(s) to run (default: every model delivered in models/kws/)")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test",
                        help="the course's split to score (default test)")
    add_data_dir_argument(parser, holds="mini_speech_commands/")
    parser.add_argument("--runs", type=positive_int, default=500,
                        help="timed invoke() calls per model and kernel set (default 500)")
    add_markdown_argument(parser)
    args = parser.parse_args(argv)
    from pi_runtime.model import load_model
    from train.kws.evaluate import evaluate_model

    try:
        paths = models_to_run(args.model)
        interpreter = load_kws_models(paths)[0].interpreter_name  # a bad model is refused before the clips are read
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    report = Report()
    report(f"python {platform.python_version()}, numpy {np.__version__}, "
           f"ai-edge-litert {package_version('ai_edge_litert')}, "
           f"tflite-runtime {package_version('tflite_runtime')}, {platform.machine()} {platform.system()}, "
           f"{os.cpu_count()} CPUs")
    report(f"interpreter {interpreter}; default: its default delegate (XNNPACK in ai-edge-litert), builtin: its own "
           f"kernels without it")
    report(f"{args.split} split; latency: invoke() alone, 1 thread, median of {args.runs} runs per kernel set, "
           f"the two alternating")
    report()
    header = (f"{'model':28s} {'accuracy default':>17s} {'builtin':>8s} {'clips answered differently':>27s} "
              f"{'max output difference':>22s} {'ms default':>11s} {'builtin':>8s} {'builtin/default':>16s}")
    report(header)
    report("-" * len(header))
    cache: dict = {}
    for path in paths:
        try:
            evaluations = {name: evaluate_model(path, args.split, data_dir=args.data_dir, clip_cache=cache,
                                                builtin_kernels=builtin) for name, builtin in KERNELS.items()}
        except (ValueError, OSError) as error:
            print(f"error: {path}: {error}", file=sys.stderr)
            return 2
        first, second = evaluations.values()
        differing = int(np.sum(first.predicted_ids != second.predicted_ids))
        difference = float(np.abs(first.scores - second.scores).max())
        models = [load_model(path, builtin_kernels=builtin) for builtin in KERNELS.values()]
        example = np.random.default_rng(0).normal(size=models[0].model_input.feature_shape).astype(np.float32)
        times = median_invoke_ms(models, example, args.runs)
        report(f"{path.name:28s} {100 * first.accuracy:16.2f}% {100 * second.accuracy:7.2f}% "
               f"{differing:>12d} of {len(first.label_ids):<11d} {difference:22.3f} {times[0]:11.3f} "
               f"{times[1]:8.3f} {times[1] / times[0]:15.2f}x")
    if args.markdown:
        report.write_markdown(args.markdown, title="The interpreter's kernels under the delivered keyword models",
                              command=" ".join(["python -m benchmarks.kernels",
                                                *(sys.argv[1:] if argv is None else argv)]),
                              note="see the module docstring for what is measured",
                              remark="Accuracy does not depend on the machine; latency does.")
    return 0


if __name__ == "__main__":
    run_command(main)
