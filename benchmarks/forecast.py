"""Forecasting: MAE vs file size over model x width x optimisation, with reference lines.

    python -m benchmarks.forecast [--csv PATH] [--out benchmarks/results] [--quick]

For each model kind and width multiplier, one model is trained (training part,
selected on validation), then optimised and exported in every way the toolbox
offers: float32, weights-only int8, full int8 (post-training), magnitude
pruning to 50 % + int8, and quantisation-aware fine-tuning + int8. Every file
is slimmed, zlib-compressed and evaluated through pi_runtime on the test part.
The persistence baseline and an unconstrained float model (>= 100 kB) trained
the same way are the reference lines.

Writes ``forecast.csv``, ``forecast.md`` and ``forecast_pareto.png`` under ``--out``.
It measures and prints; it asserts nothing.
"""
from __future__ import annotations

import argparse
import csv
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from pi_runtime.arguments import run_command

OPTIMISATIONS = ("float", "weights", "int8", "prune50+int8", "qat+int8")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.forecast", description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, default=None, help="Jena-style CSV (default: as train.forecast finds it)")
    parser.add_argument("--every", type=int, default=1, help="keep every N-th row")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="output folder (default %(default)s)")
    parser.add_argument("--kinds", default="linear,mlp,cnn,lstm", help="model kinds (default %(default)s)")
    parser.add_argument("--widths", default="0.25,0.5,1", help="width multipliers (default %(default)s)")
    parser.add_argument("--epochs", type=int, default=15, help="maximum training epochs per model (default %(default)s)")
    parser.add_argument("--seeds", type=int, default=1, help="training runs per point; the median is reported")
    parser.add_argument("--no-time-features", action="store_true", help="readings only, no time of day")
    parser.add_argument("--quick", action="store_true", help="mlp and linear only, widths 0.25 and 0.5, 8 epochs")
    return parser.parse_args(argv)


def print_environment(args):
    import ai_edge_litert
    import tensorflow_model_optimization as tfmot

    from train.keras_env import tf

    print(f"python {platform.python_version()}, numpy {np.__version__}, tensorflow {tf.__version__}, "
          f"tfmot {tfmot.__version__}, ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')}, "
          f"{platform.machine()} {platform.processor() or ''}".strip())
    print(f"configuration: {vars(args)}")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.kinds, args.widths, args.epochs = "linear,mlp", "0.25,0.5", 8
    print_environment(args)
    from pi_runtime.forecast import KNOWN_TIME_FEATURES
    from train.forecast.data import find_jena_csv, read_jena_csv
    from train.forecast.pipeline import (TrainConfig, evaluate_file, export_forecaster, persistence_mae,
                                         prepare_data, train_model)
    from train.forecast.versions import REFERENCE

    data = prepare_data(read_jena_csv(args.csv or find_jena_csv()).every(args.every))
    _DATA.update(data.parts)
    print(data.describe())
    time_features = () if args.no_time_features else KNOWN_TIME_FEATURES
    persistence = persistence_mae(data)
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    widths = [float(width) for width in args.widths.split(",") if width.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    workdir = Path(tempfile.mkdtemp(prefix="forecast_bench_"))

    def evaluate(label, model, spec, config, seed):
        path = workdir / f"{label.replace('+', '_')}_{seed}.tflite"
        exported = export_forecaster(model, spec, config, data, path)
        evaluation = evaluate_file(exported.path, data)
        return evaluation["mae"], exported.tflite_bytes, exported.zlib_bytes, forecast_latency_us(exported.path)

    def median_point(results):
        """Median over seeds of (mae, bytes, zlib bytes, us/forecast, train s)."""
        mae = np.median([r[0] for r in results], axis=0)
        return {"mae_t": float(mae[0]), "mae_rh": float(mae[1]),
                "tflite_bytes": int(statistics.median(r[1] for r in results)),
                "zlib_bytes": int(statistics.median(r[2] for r in results)),
                "us_per_forecast": float(statistics.median(r[3] for r in results)),
                "train_s": float(statistics.median(r[4] for r in results))}

    def measure_family(kind, width):
        """One base model per seed; post-training variants export it, pruning/QAT fine-tune a copy."""
        results = {optimisation: [] for optimisation in OPTIMISATIONS}
        for seed in range(args.seeds):
            base_config = TrainConfig(kind=kind, width=width, quantization="none", int8_io=False, seed=seed,
                                      epochs=args.epochs, time_features=time_features)
            base, spec, history = train_model(base_config, data)
            for optimisation in OPTIMISATIONS:
                if kind == "lstm" and optimisation == "qat+int8":
                    continue  # tfmot's default 8-bit scheme does not quantise LSTM layers
                quantization = {"float": "none", "weights": "weights"}.get(optimisation, "int8")
                config = replace(base_config, quantization=quantization, int8_io=quantization == "int8",
                                 final_sparsity=0.5 if optimisation.startswith("prune") else 0.0, prune_epochs=3,
                                 qat_epochs=3 if optimisation.startswith("qat") else 0)
                model, train_s = base, history["train_seconds"]
                if config.final_sparsity or config.qat_epochs:
                    model, _, extra = train_model(config, data, start_from=base)
                    train_s += extra["train_seconds"]
                label = f"{kind}_{width:g}_{optimisation}"
                results[optimisation].append(evaluate(label, model, spec, config, seed) + (train_s,))
        return {optimisation: median_point(found) for optimisation, found in results.items() if found}

    started = time.perf_counter()
    reference_results = []
    for seed in range(args.seeds):
        config = replace(REFERENCE, seed=seed, epochs=args.epochs, time_features=time_features)
        model, spec, history = train_model(config, data)
        reference_results.append(evaluate("reference", model, spec, config, seed) + (history["train_seconds"],))
    reference = median_point(reference_results)
    print(f"persistence: T {persistence[0]:.3f} degC, RH {persistence[1]:.3f} %; unconstrained reference "
          f"({reference['tflite_bytes']} B): T {reference['mae_t']:.3f}, RH {reference['mae_rh']:.3f}", flush=True)
    for kind in kinds:
        for width in ([1.0] if kind == "linear" else widths):
            for optimisation, point in measure_family(kind, width).items():
                row = {"kind": kind, "width": width, "optimisation": optimisation, **point,
                       "t_vs_persistence": point["mae_t"] / persistence[0],
                       "t_vs_reference": point["mae_t"] / reference["mae_t"]}
                rows.append(row)
                print(f"{kind:6s} x{width:<5g} {optimisation:13s} {point['tflite_bytes']:6d} B "
                      f"(zlib {point['zlib_bytes']:6d} B)  T {point['mae_t']:.3f}  RH {point['mae_rh']:.3f}  "
                      f"{point['us_per_forecast']:.0f} us/forecast", flush=True)
    elapsed = time.perf_counter() - started

    with open(args.out / "forecast.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    write_markdown(args.out / "forecast.md", rows, persistence, reference, data, args, elapsed)
    plot(args.out / "forecast_pareto.png", rows, persistence, reference, data)
    print(f"wrote {args.out / 'forecast.csv'}, {args.out / 'forecast.md'}, {args.out / 'forecast_pareto.png'} "
          f"({elapsed:.0f} s)")
    return 0


LATENCY_WINDOWS = 300
LATENCY_REPEATS = 7


def forecast_latency_us(path) -> float:
    """Median over LATENCY_REPEATS passes of the mean time of one forecast (normalise, invoke, de-normalise)
    over the first LATENCY_WINDOWS windows of the test part; one warm-up pass first."""
    from pi_runtime.forecast import Forecaster, window_rows

    forecaster = Forecaster(path)
    windows = _DATA["test"]
    rows = window_rows(windows.inputs[:LATENCY_WINDOWS], windows.timestamps_s[:LATENCY_WINDOWS], forecaster.spec)
    passes = []
    for repeat in range(LATENCY_REPEATS + 1):
        started = time.perf_counter()
        for window in rows:
            forecaster.predict_rows(window)
        if repeat:  # the first pass is the warm-up
            passes.append((time.perf_counter() - started) / len(rows))
    return 1e6 * statistics.median(passes)


_DATA = {}


def pareto_front(points):
    """Indices of points not beaten in both size and error (smaller is better in both)."""
    front = []
    for i, (size, error) in enumerate(points):
        if not any((s <= size and e <= error) and (s < size or e < error) for s, e in points):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def write_markdown(path, rows, persistence, reference, data, args, elapsed):
    front = set(pareto_front([(row["zlib_bytes"], row["mae_t"] / persistence[0] + row["mae_rh"] / persistence[1])
                              for row in rows]))
    lines = [
        f"# Forecasting benchmark ({data.resolution} record, test part, {args.seeds} seed(s), {elapsed:.0f} s)",
        "",
        f"`python -m benchmarks.forecast` with {vars(args)}.",
        "",
        f"Persistence: T {persistence[0]:.3f} degC, RH {persistence[1]:.3f} %. Unconstrained reference "
        f"(float MLP, {reference['tflite_bytes']} B): T {reference['mae_t']:.3f} degC, RH {reference['mae_rh']:.3f} %.",
        "Sizes are the slimmed flatbuffer and its zlib file; * marks the Pareto front (zlib size vs the sum of "
        "both MAEs relative to persistence). us/forecast: one forecast through pi_runtime (normalise, invoke, "
        f"de-normalise), median of {LATENCY_REPEATS} passes over {LATENCY_WINDOWS} windows, one thread, on the "
        "machine that trained (shared with other work, so only roughly comparable between rows).",
        "",
        "| model | width | optimisation | bytes | zlib bytes | T MAE | RH MAE | T / persistence | T / reference "
        "| us/forecast | train s |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i, row in enumerate(rows):
        lines.append(f"| {row['kind']}{' *' if i in front else ''} | {row['width']:g} | {row['optimisation']} | "
                     f"{row['tflite_bytes']} | {row['zlib_bytes']} | {row['mae_t']:.3f} | {row['mae_rh']:.3f} | "
                     f"{row['t_vs_persistence']:.2f} | {row['t_vs_reference']:.2f} | {row['us_per_forecast']:.0f} | "
                     f"{row['train_s']:.0f} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def plot(path, rows, persistence, reference, data):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {"float": "o", "weights": "s", "int8": "^", "prune50+int8": "v", "qat+int8": "D"}
    kinds = sorted({row["kind"] for row in rows})
    colours = dict(zip(kinds, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    figure, axes = plt.subplots(1, 2, figsize=(13, 5))
    for axis, key, index, unit in ((axes[0], "mae_t", 0, "degC"), (axes[1], "mae_rh", 1, "%")):
        for row in rows:
            axis.scatter(row["zlib_bytes"], row[key], marker=markers[row["optimisation"]], color=colours[row["kind"]],
                         s=40, alpha=0.85)
        front = pareto_front([(row["zlib_bytes"], row[key]) for row in rows])
        axis.plot([rows[i]["zlib_bytes"] for i in front], [rows[i][key] for i in front], "k-", lw=1, label="Pareto front")
        axis.axhline(persistence[index], color="grey", ls="--", label="persistence")
        axis.axhline(reference[key], color="black", ls=":", label=f"unconstrained ({reference['tflite_bytes'] / 1000:.0f} kB)")
        for limit_bytes in (1700, 2000):
            axis.axvline(limit_bytes, color="red", ls="-.", lw=0.8, label="size limits b, a" if limit_bytes == 1700 else None)
        if data.time_step_s == 3600:  # issue 4's bar for the hourly record
            axis.axhline((1.55, 6.5)[index], color="red", ls="--", lw=0.8, label="bar (hourly)")
        axis.set_xscale("log")
        axis.set_xlabel("delivered file size (zlib), bytes")
        axis.set_ylabel(f"test MAE ({unit})")
        axis.set_title(f"{'T' if index == 0 else 'RH'} MAE vs size ({data.resolution} record, 6 steps)")
        axis.grid(True, which="both", alpha=0.3)
    handles = [plt.Line2D([], [], color=colours[kind], marker="o", ls="", label=kind) for kind in kinds]
    handles += [plt.Line2D([], [], color="grey", marker=marker, ls="", label=name) for name, marker in markers.items()]
    axes[1].legend(handles=handles + axes[1].get_legend_handles_labels()[0][:0], loc="upper right", fontsize=8)
    axes[0].legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    run_command(main)
