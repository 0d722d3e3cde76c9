"""The live pipeline's energy gate compared on the VALIDATION split: what each gate lets through, what it costs.

    python -m benchmarks.energy_gate [MODEL ...] [--gates -55,-60,-65,-70,off] [--peak-dbfs -40] [--markdown FILE]

A window whose RMS level is under the gate (``DetectorConfig.min_level_dbfs``)
never reaches the model. A word's level over its one-second window lies far
under its peak, so a gate can shut out words that the models hear well as
clips. Two measurements, neither reading the test split:

* clips: the validation clips brought to a peak of ``--peak-dbfs`` (the
  robustness bar's -40 dBFS), their one-second RMS level (percentiles) and the
  share at or over each gate, i.e. that would reach the model;
* stream: each model (default: every delivered one) runs once over the
  validation stream (``train.kws.streams.realistic_stream("val")``) with the gate
  open, every window's posteriors kept; the policy then replays them at the
  model's operating point (its sidecar's, else the defaults) with each gate:
  keywords detected, in all and by peak level, false alarms an hour,
  non-keyword words fired, windows gated.

It measures and prints; it asserts nothing.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from benchmarks.reporting import Report, add_data_dir_argument, add_markdown_argument, models_to_run
from pi_runtime.arguments import run_command
from train.kws.calibrate import join_list_values, parse_gates

DEFAULT_GATES_DBFS = (-55.0, -60.0, -65.0, -70.0, -math.inf)
PERCENTILES = (1, 5, 50, 95)


def window_levels_at_peak(clips: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """RMS level (dBFS) of each one-second clip (int16 or float rows) once scaled to a peak of
    ``peak_dbfs``; clips of digital silence are left out."""
    audio = np.asarray(clips, dtype=np.float64)
    if np.asarray(clips).dtype == np.int16:
        audio = audio / 32768.0
    peaks = np.abs(audio).max(axis=1)
    audio = audio[peaks > 0] / peaks[peaks > 0, None] * 10.0 ** (peak_dbfs / 20.0)
    return 10.0 * np.log10(np.mean(audio ** 2, axis=1))


def _gate_name(gate: float) -> str:
    return "off" if gate == -math.inf else f"{gate:g} dBFS"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.energy_gate", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", type=Path, metavar="MODEL",
                        help="keyword-spotting models (default: every model delivered in models/kws/)")
    parser.add_argument("--gates", type=parse_gates, default=DEFAULT_GATES_DBFS,
                        help="energy gates to compare, dBFS, comma-separated; 'off' for none "
                             "(default -55,-60,-65,-70,off)")
    parser.add_argument("--peak-dbfs", type=float, default=-40.0,
                        help="peak level the validation clips are brought to for the clip measurement "
                             "(default -40, the robustness bar's)")
    add_markdown_argument(parser)
    add_data_dir_argument(parser)
    return parser


def measure(args: argparse.Namespace, models: Sequence[Path], report: Callable[[str], None]) -> None:
    """The clip and stream measurements of the module docstring, line by line into ``report``."""
    from pi_runtime.kws_pipeline import DetectorConfig
    from pi_runtime.model import load_model
    from pi_runtime.replay import replay
    from train.kws.data import load_split
    from train.kws.streams import realistic_stream, run_pipeline, score

    loaded = [load_model(path, require_sidecar=True) for path in models]  # a bad file is said before the long work
    levels = window_levels_at_peak(load_split("val", data_dir=args.data_dir).audio, args.peak_dbfs)
    report(f"validation clips at a peak of {args.peak_dbfs:g} dBFS ({levels.size}): one-second RMS level, "
           f"percentiles {'/'.join(map(str, PERCENTILES))}: "
           + " / ".join(f"{np.percentile(levels, p):.1f}" for p in PERCENTILES) + " dBFS")
    report("  reaching the model: " + ", ".join(f"gate {_gate_name(gate)} {100 * np.mean(levels >= gate):.1f} %"
                                              for gate in args.gates))

    print("building the validation stream ...", file=sys.stderr, flush=True)
    stream = realistic_stream("val", data_dir=args.data_dir)
    report(f"stream: {stream.description}")
    for path, model in zip(models, loaded):
        config = DetectorConfig.from_sidecar(model.spec)
        run = run_pipeline(model, stream, config=config.replace(min_level_dbfs=-math.inf))
        window_levels_dbfs = np.array([decision.level_dbfs for decision in run.decisions])
        report("")
        report(f"{path.name}: {config.summary()} (its operating point: sidecar, else the defaults)")
        for gate in args.gates:
            detections = replay(run.decisions, run.labels, config.replace(min_level_dbfs=gate),
                                keywords=run.keywords, window_duration_s=run.window_duration_s)
            measured = score(detections, stream, keywords=run.keywords)
            gated = np.mean(window_levels_dbfs < gate)
            bands = ", ".join(f"{key.removeprefix('level: peak ')} {100 * hits / total:.1f} %"
                              for key, (hits, total) in measured.detected_by.items() if key.startswith("level"))
            report(f"  gate {_gate_name(gate):>10}: {measured.detected_percent:5.1f} % detected ({bands}), "
                   f"{measured.false_alarms_per_hour:6.1f} false alarms an hour, "
                   f"{measured.words_fired_percent:4.1f} % of other words fired, {100 * gated:4.1f} % of windows gated")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(join_list_values(sys.argv[1:] if argv is None else argv))
    if not args.peak_dbfs <= 0:
        parser.error(f"--peak-dbfs must be at or under 0 dBFS, got {args.peak_dbfs:g}")
    report = Report()
    try:
        measure(args, models_to_run(args.models), report)
    except BrokenPipeError:  # the reader of the output went away: run_command ends quietly
        raise
    except (ValueError, OSError) as error:  # a missing or corrupt model or sidecar, missing data
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.markdown is not None:
        report.write_markdown(args.markdown, title="The energy gate on the validation stream "
                              "(`python -m benchmarks.energy_gate`)",
                              command=" ".join(["python -m benchmarks.energy_gate",
                                                *(sys.argv[1:] if argv is None else argv)]),
                              note="see the module docstring for what is measured; the test split is not read")
    return 0


if __name__ == "__main__":
    run_command(main)
