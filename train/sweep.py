"""``python -m train.sweep``: the Lab 4 sweep of keyword-spotting optimisations.

Trains every point of model x alpha x feature kind x final sparsity once, exports
each trained model with every requested quantisation (float, full int8), and
measures each exported file through ``pi_runtime`` (test accuracy, size raw and
zlib, inference and total latency). Each measured file is one CSV row, written
as soon as it is measured, so an interrupted sweep continues where it stopped
(points already in the CSV are skipped). With ``--workers N`` (a local Ray) or
``--ray-address`` (a cluster) the points run as Ray tasks, their features
computed once per feature kind and shared through Ray's object store; a point
that fails is recorded with the reason beside the CSV and the sweep goes on.

Then draws the Pareto fronts (accuracy vs zlib size, accuracy vs inference
latency) with the efficient points marked, and writes a markdown that answers
the lab's questions from the measured rows.
"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from native.params import FrontendParams
from pi_runtime.arguments import fraction, non_negative_int, output_folder, positive_float, positive_int, run_command

KEY_COLUMNS = ("model", "alpha", "feature_kind", "final_sparsity", "quantization", "epochs", "seed")
MEASURED_COLUMNS = ("accuracy", "val_accuracy", "tflite_bytes", "zlib_bytes", "weight_sparsity", "parameters",
                    "inference_ms_mean", "inference_ms_median", "total_ms_mean", "total_ms_median",
                    "train_seconds")
COLUMNS = KEY_COLUMNS + MEASURED_COLUMNS
POINT_COLUMNS = tuple(column for column in KEY_COLUMNS if column != "quantization")
FAILED_COLUMNS = POINT_COLUMNS + ("error",)

# The feature configurations by name: the Lab's MFCCs and log-mel on 40 mel bins, and log-mel on 10 mel bins,
# the MFCCs' 49 x 10 input (on 40 bins the DS-CNN's receptive field loses where in frequency a pattern was).
SWEEP_FEATURES: Dict[str, FrontendParams] = {
    "mfcc": FrontendParams(feature_kind="mfcc"),
    "log_mel": FrontendParams(feature_kind="log_mel"),
    "log_mel_10": FrontendParams(feature_kind="log_mel", num_mel_bins=10),
}
FULL_GRID = dict(models=("ds_cnn", "cnn"), alphas=(0.125, 0.25, 0.5), feature_kinds=("mfcc", "log_mel", "log_mel_10"),
                 sparsities=(0.0, 0.5, 0.75), quantizations=("none", "weights", "int8"), epochs=10)
QUICK_GRID = dict(models=("ds_cnn", "cnn"), alphas=(0.125, 0.25), feature_kinds=("mfcc", "log_mel"),
                  sparsities=(0.0, 0.5), quantizations=("none", "int8"), epochs=5)


@dataclass(frozen=True)
class Point:
    """One trained model of the sweep (exported once per quantisation)."""

    model: str
    alpha: float
    feature_kind: str
    final_sparsity: float
    epochs: int
    seed: int

    def key(self, quantization: str) -> Tuple[str, ...]:
        return _key({"model": self.model, "alpha": self.alpha, "feature_kind": self.feature_kind,
                     "final_sparsity": self.final_sparsity, "quantization": quantization,
                     "epochs": self.epochs, "seed": self.seed})

    def stem(self, quantization: str) -> str:
        """File name (without suffix) of the point's model exported with ``quantization``."""
        return (f"{self.model}_alpha{self.alpha:g}_{self.feature_kind}_sparsity{self.final_sparsity:g}"
                f"_{quantization}_epochs{self.epochs}_seed{self.seed}")

    def label(self) -> str:
        return (f"{self.model} alpha={self.alpha:g} {self.feature_kind} "
                f"sparsity={self.final_sparsity:g}")


def _key(row: Dict) -> Tuple[str, ...]:
    """Canonical text of a row's key columns (so 0.5 and '0.5' match)."""
    out = []
    for column in KEY_COLUMNS:
        value = row[column]
        if column in ("alpha", "final_sparsity"):
            value = f"{float(value):g}"
        elif column in ("epochs", "seed"):
            value = str(int(value))
        out.append(str(value))
    return tuple(out)


def grid_points(models: Sequence[str], alphas: Sequence[float], feature_kinds: Sequence[str],
                sparsities: Sequence[float], epochs: int, seed: int = 0) -> List[Point]:
    return [Point(model, float(alpha), kind, float(sparsity), int(epochs), int(seed))
            for model, alpha, kind, sparsity in itertools.product(models, alphas, feature_kinds, sparsities)]


# -- CSV ----------------------------------------------------------------------------------------
# Rows are appended by the driver alone, each point's rows as one os.write() on an O_APPEND
# descriptor, then fsync. A killed process cannot stop a write() to a local file halfway (the
# kernel finishes the copy before the signal is acted on), so a point is in the CSV whole or not
# at all; rewriting the file through a temporary copy and a rename would do the same at O(rows)
# per point. What only a power cut could leave - a last line without its newline - is dropped
# when the file is read (and cut off before the next append).
def _complete_bytes(csv_path: Path) -> bytes:
    """The file's bytes up to its last newline (b'' when absent)."""
    if not Path(csv_path).is_file():
        return b""
    data = Path(csv_path).read_bytes()
    return data[:data.rfind(b"\n") + 1]


def read_csv_rows(csv_path: Path, required: Sequence[str], what: str) -> List[Dict[str, str]]:
    """The complete rows of a CSV appended by :func:`append_rows` ([] when absent); ValueError naming
    ``what`` ("a sweep CSV") when ``required`` columns are missing."""
    reader = csv.DictReader(io.StringIO(_complete_bytes(csv_path).decode(), newline=""))
    missing = [column for column in required if column not in (reader.fieldnames or [])]
    if reader.fieldnames and missing:
        raise ValueError(f"{csv_path}: not {what} (missing columns {', '.join(missing)})")
    return list(reader)


def read_rows(csv_path: Path) -> List[Dict[str, str]]:
    """Rows of an existing sweep CSV ([] when absent; a last line cut short is left out)."""
    return read_csv_rows(csv_path, KEY_COLUMNS, "a sweep CSV")


def append_rows(csv_path: Path, rows: Sequence[Dict], columns: Sequence[str] = COLUMNS) -> None:
    """Append ``rows`` in one atomic write (header first if the file is new), then fsync."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    if csv_path.is_file():
        complete = len(_complete_bytes(csv_path))
        if complete != csv_path.stat().st_size:
            os.truncate(csv_path, complete)  # a line cut short by a power cut
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns))
    descriptor = os.open(csv_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.fstat(descriptor).st_size == 0:
            writer.writeheader()
        for row in rows:
            writer.writerow({column: row[column] for column in columns})
        data = buffer.getvalue().encode()
        if os.write(descriptor, data) != len(data):
            raise OSError(f"{csv_path}: short write")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def append_row(csv_path: Path, row: Dict) -> None:
    """Append one row (see :func:`append_rows`)."""
    append_rows(csv_path, [row])


def failed_csv_path(csv_path: Path) -> Path:
    """Where the points that failed are recorded: ``<name>_failed.csv`` beside the sweep CSV."""
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.stem + "_failed.csv")


def read_failures(csv_path: Path) -> List[Dict[str, str]]:
    """The failed points recorded for the sweep CSV ``csv_path`` (point columns and ``error``)."""
    path = failed_csv_path(csv_path)
    return read_csv_rows(path, FAILED_COLUMNS, "a sweep failure CSV")


def numeric_rows(rows: Iterable[Dict[str, str]]) -> List[Dict]:
    """Rows with the measured columns and alpha/sparsity as floats."""
    out = []
    for row in rows:
        parsed = dict(row)
        for column in MEASURED_COLUMNS + ("alpha", "final_sparsity"):
            parsed[column] = float(row[column])
        out.append(parsed)
    return out


# -- one point -----------------------------------------------------------------------------------
def train_point(point: Point, quantizations: Sequence[str], splits, features: Tuple, *,
                batch_size: int = 64, latency_runs: int = 100, feature_backend: str = "native",
                artifacts_dir: Optional[Path] = None, return_models: bool = False) -> Dict:
    """Train ``point`` once and export and measure it for each of ``quantizations``.

    Parameters
    ----------
    splits : ``train.kws.training.Splits``
    features : (train, val, test) float32[n, frames, features] of ``point.feature_kind``
    artifacts_dir : write each exported model (and its sidecar) there
    return_models : put each exported model's bytes in the result instead

    Returns
    -------
    {"rows": one CSV row per quantisation, "models": {file name: bytes}} (``models`` empty
    unless ``return_models``).
    """
    from train.kws.training import RunConfig, export_and_evaluate, fit

    train_features, val_features, test_features = features
    config = RunConfig(model=point.model, alpha=point.alpha, frontend=SWEEP_FEATURES[point.feature_kind],
                       epochs=point.epochs, final_sparsity=point.final_sparsity, seed=point.seed,
                       batch_size=batch_size)
    started = time.perf_counter()
    model, val_accuracy, _ = fit(config, splits, train_features, val_features, feature_backend=feature_backend,
                                 say=lambda message: None)
    train_seconds = time.perf_counter() - started
    rows, models = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for quantization in quantizations:
            folder = Path(artifacts_dir) if artifacts_dir is not None else Path(scratch)
            result = export_and_evaluate(
                model, config.replace(quantization=quantization), splits.labels,
                folder / f"{point.stem(quantization)}.tflite", representative=train_features,
                test_features=test_features, test_label_ids=splits.test.label_ids,
                latency_runs=latency_runs, say=lambda message: None)
            if return_models:
                for path in (result.path, result.path.parent / f"{point.stem(quantization)}.json"):
                    models[path.name] = path.read_bytes()
            rows.append({
                "model": point.model, "alpha": point.alpha, "feature_kind": point.feature_kind,
                "final_sparsity": point.final_sparsity, "quantization": quantization,
                "epochs": point.epochs, "seed": point.seed,
                "accuracy": round(result.accuracy, 5), "val_accuracy": round(val_accuracy, 5),
                "tflite_bytes": result.tflite_bytes, "zlib_bytes": result.zlib_bytes,
                "weight_sparsity": round(result.sparsity, 4), "parameters": result.parameters,
                "inference_ms_mean": round(result.inference_ms["mean"], 4),
                "inference_ms_median": round(result.inference_ms["median"], 4),
                "total_ms_mean": round(result.total_ms["mean"], 3),
                "total_ms_median": round(result.total_ms["median"], 3),
                "train_seconds": round(train_seconds, 1)})
    return {"rows": rows, "models": models}


def limit_tensorflow_threads(cpus: float) -> None:
    """Hold TensorFlow in this (Ray worker) process to the CPUs its task asked for."""
    threads = max(1, int(cpus))
    try:
        from train.keras_env import tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # a reused worker whose TensorFlow already started keeps its pools
        pass


def run_in_worker(point_function: Callable, cpus: float, *args, **kwargs) -> Dict:
    """A Ray task: ``point_function`` (a sweep point, an ablation variant) with TensorFlow held to the CPUs the task asked for."""
    limit_tensorflow_threads(cpus)
    return point_function(*args, **kwargs)


# -- running -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RayCluster:
    """Where the points run as Ray tasks.

    Attributes
    ----------
    workers : start a local Ray running this many points at once (None: join ``address``)
    address : an existing cluster ("auto", "ray://host:10001", "host:6379"); None with
        ``workers`` None: whatever ``ray.init()`` finds (``RAY_ADDRESS``), else a local Ray
    cpus_per_point, gpus_per_point : what each point's task asks for (a GPU only where the
        cluster has one)
    object_store_bytes : object store of a local Ray (None: Ray's default)
    """

    workers: Optional[int] = None
    address: Optional[str] = None
    cpus_per_point: float = 1.0
    gpus_per_point: float = 0.0
    object_store_bytes: Optional[int] = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.workers is not None and self.address is not None:
            raise ValueError("give either --workers (a local Ray) or --ray-address (a cluster), not both")
        if not self.cpus_per_point > 0 or self.gpus_per_point < 0:
            raise ValueError(f"--cpus-per-point must be > 0 and --gpus-per-point >= 0, got "
                             f"{self.cpus_per_point}, {self.gpus_per_point}")


def connect_ray(cluster: RayCluster) -> bool:
    """Start or join Ray as ``cluster`` says; returns whether this call started it (then shut it down).

    A Ray already initialised in this process is used as it is. Worker output stays in Ray's
    session logs (``/tmp/ray/session_latest/logs``) so the progress line stays one line. The
    workers of a local Ray run at the driver's niceness (Ray's default is 15 steps lower).
    """
    import ray

    if ray.is_initialized():
        return False
    options = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if cluster.workers is not None:
        # Ray runs its workers 15 niceness steps below the driver; here they do all the training,
        # so they keep the driver's priority (run the command under `nice` to lower both).
        ray.init(address="local", num_cpus=int(math.ceil(cluster.workers * cluster.cpus_per_point)),
                 object_store_memory=cluster.object_store_bytes, _system_config={"worker_niceness": 0}, **options)
    else:
        ray.init(address=cluster.address, **options)
    return True


@dataclass
class SweepProgress:
    """Counts of points; ``running`` is what the cluster's CPUs can hold at once of those not finished."""

    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    @property
    def eta_s(self) -> Optional[float]:
        finished = self.done + self.failed
        return self.elapsed_s / finished * (self.total - finished) if finished else None

    def line(self) -> str:
        eta = "?" if self.eta_s is None else _duration(self.eta_s)
        return (f"sweep: {self.done}/{self.total} done, {self.running} running, {self.failed} failed, "
                f"elapsed {_duration(self.elapsed_s)}, ETA {eta}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _progress_printer(verbose: bool) -> Callable[[SweepProgress], None]:
    """One line on a terminal, rewritten in place; into a file or pipe, a line when the counts change."""
    if not verbose:
        return lambda progress: None
    if sys.stderr.isatty():
        return lambda progress: print(progress.line(), end="\r", file=sys.stderr, flush=True)
    last_counts = []

    def print_changes(progress: SweepProgress) -> None:
        counts = (progress.done, progress.running, progress.failed)
        if counts != (last_counts[-1] if last_counts else None):
            last_counts.append(counts)
            print(progress.line(), file=sys.stderr, flush=True)

    return print_changes


def _error_reason(error: BaseException) -> str:
    """One line saying why a point failed (the task's own exception where Ray wraps one)."""
    if isinstance(getattr(error, "cause", None), BaseException):
        error = error.cause
    text = " ".join(str(error).split())[:300]
    if "ray" in sys.modules:
        from ray.exceptions import WorkerCrashedError

        if isinstance(error, WorkerCrashedError):
            return "worker died twice (tried again once): " + text
    return f"{type(error).__name__}: {text}"


def run_sweep(points: Sequence[Point], quantizations: Sequence[str], csv_path: Path, splits, *,
              cluster: Optional[RayCluster] = None, artifacts_dir: Optional[Path] = None,
              artifacts_shared: bool = False, feature_backend: str = "native", latency_runs: int = 100,
              batch_size: int = 64, verbose: bool = True,
              progress: Optional[Callable[[SweepProgress], None]] = None,
              point_function: Callable[..., Dict] = train_point) -> SweepProgress:
    """Train and measure every point not yet in ``csv_path``, one after another or as Ray tasks.

    Parameters
    ----------
    cluster : None runs the points in this process; a :class:`RayCluster` runs each as a Ray
        task (the features of each feature kind computed once here and shared through Ray's
        object store), retried once if its worker dies
    artifacts_dir : exported models and sidecars go there; they travel back to this process as
        bytes, or with ``artifacts_shared`` (a folder every node sees) the workers write them
    progress : called with the counts after every change (default: one line on stderr)
    point_function : what trains one point (:func:`train_point`'s signature)

    A point whose task raises, or whose worker dies twice, is recorded in
    :func:`failed_csv_path` with the reason and the sweep goes on; it is tried again by the
    next run. Returns the final counts.
    """
    from train.kws.features import compute_features

    say = _progress_printer(verbose) if progress is None else progress
    done_keys = {_key(row) for row in read_rows(csv_path)}
    todo = [point for point in points if any(point.key(q) not in done_keys for q in quantizations)]
    if verbose:
        print(f"sweep: {len(points)} points, {len(points) - len(todo)} already in {csv_path}, "
              f"{len(todo)} to train" + (f" on Ray ({cluster})" if cluster else ""), file=sys.stderr)
    state = SweepProgress(total=len(todo))
    if not todo:
        return state
    features_by_kind = {kind: tuple(compute_features(clips.audio, SWEEP_FEATURES[kind],
                                                     backend=feature_backend)
                                    for clips in (splits.train, splits.val, splits.test))
                        for kind in dict.fromkeys(point.feature_kind for point in todo)}
    options = dict(batch_size=batch_size, latency_runs=latency_runs, feature_backend=feature_backend,
                   artifacts_dir=artifacts_dir if artifacts_shared else None,
                   return_models=artifacts_dir is not None and not artifacts_shared)

    def record(point: Point, outcome) -> None:
        if isinstance(outcome, BaseException):
            state.failed += 1
            append_rows(failed_csv_path(csv_path), [{**_point_columns(point), "error": _error_reason(outcome)}],
                        FAILED_COLUMNS)
            return
        rows = [row for row in outcome["rows"] if point.key(row["quantization"]) not in done_keys]
        append_rows(csv_path, rows)
        for name, data in outcome["models"].items():
            Path(artifacts_dir).mkdir(parents=True, exist_ok=True)
            _write_atomically(Path(artifacts_dir) / name, data)
        state.done += 1

    if cluster is None:
        for point in todo:
            state.running = 1
            say(state)
            try:
                outcome = point_function(point, quantizations, splits, features_by_kind[point.feature_kind], **options)
            except Exception as error:  # recorded; the sweep goes on
                outcome = error
            state.running = 0
            record(point, outcome)
            say(state)
        return state
    return _run_on_ray(todo, quantizations, splits, features_by_kind, cluster, options, point_function,
                       record, state, say)


def _run_on_ray(todo, quantizations, splits, features_by_kind, cluster: RayCluster, options, point_function,
                record, state: SweepProgress, say) -> SweepProgress:
    import ray

    started_here = connect_ray(cluster)
    pending: Dict = {}
    try:
        gpus = cluster.gpus_per_point if ray.cluster_resources().get("GPU", 0) > 0 else 0
        if cluster.gpus_per_point and not gpus:
            print("sweep: no GPU in the cluster; the points run on CPUs", file=sys.stderr)
        task = ray.remote(run_in_worker).options(
            num_cpus=cluster.cpus_per_point, num_gpus=gpus, max_retries=1, retry_exceptions=False)
        splits_ref = ray.put(splits)
        features_refs = {kind: ray.put(features) for kind, features in features_by_kind.items()}
        for point in todo:
            ref = task.remote(point_function, cluster.cpus_per_point, point, tuple(quantizations), splits_ref,
                              features_refs[point.feature_kind], **options)
            pending[ref] = point
        slots = max(1, int(ray.cluster_resources().get("CPU", 1) // cluster.cpus_per_point))

        def show_running() -> None:
            state.running = min(len(pending), slots)
            say(state)

        record_as_done(pending, record, timeout_s=10.0, before_wait=show_running)
        state.running = 0
        say(state)
        return state
    finally:
        for ref in pending:  # interrupted: nothing keeps running for a driver that is gone
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


def record_as_done(pending: Dict, record: Callable[[Any, Any], None], *, timeout_s: float,
                   before_wait: Callable[[], None] = lambda: None) -> None:
    """Hand each Ray task's outcome (its return value, or the ``RayError`` it ended with) to
    ``record(key, outcome)`` as it finishes; ``pending`` maps object refs to their keys and is
    emptied as they finish (what is left after an interruption is the caller's to cancel)."""
    import ray
    from ray.exceptions import RayError

    while pending:
        before_wait()
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout_s)
        for ref in ready:
            key = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except RayError as error:
                outcome = error
            record(key, outcome)


def _point_columns(point: Point) -> Dict:
    return {"model": point.model, "alpha": point.alpha, "feature_kind": point.feature_kind,
            "final_sparsity": point.final_sparsity, "epochs": point.epochs, "seed": point.seed}


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".part")
    temporary.write_bytes(data)
    os.replace(temporary, path)


# -- analysis ----------------------------------------------------------------------------------
def pareto_front(rows: Sequence[Dict], cost: str, gain: str = "accuracy") -> List[int]:
    """Indices of the efficient rows: no other row has >= ``gain`` and <= ``cost`` with one strict."""
    efficient = []
    for i, row in enumerate(rows):
        dominated = any(
            other[gain] >= row[gain] and other[cost] <= row[cost]
            and (other[gain] > row[gain] or other[cost] < row[cost])
            for j, other in enumerate(rows) if j != i)
        if not dominated:
            efficient.append(i)
    return sorted(efficient, key=lambda i: rows[i][cost])


def plot_fronts(rows: Sequence[Dict], png_path: Path) -> Path:
    """Accuracy vs zlib size and accuracy vs inference latency, efficient points marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    panels = (("zlib_bytes", "size after zlib (bytes)"), ("inference_ms_median", "inference latency, median (ms)"))
    markers = {"ds_cnn": "o", "cnn": "s", "ds_cnn_bn": "^"}
    colours = {("mfcc", "int8"): "tab:blue", ("mfcc", "weights"): "tab:green", ("mfcc", "none"): "tab:cyan",
               ("log_mel", "int8"): "tab:red", ("log_mel", "weights"): "tab:olive", ("log_mel", "none"): "tab:orange",
               ("log_mel_10", "int8"): "tab:purple", ("log_mel_10", "weights"): "tab:pink",
               ("log_mel_10", "none"): "tab:brown"}
    for axis, (cost, title) in zip(axes, panels):
        for row in rows:
            axis.scatter(row[cost], 100 * row["accuracy"], marker=markers.get(row["model"], "x"),
                         color=colours.get((row["feature_kind"], row["quantization"]), "grey"),
                         s=18 + 60 * row["final_sparsity"], alpha=0.75)
        front = [rows[i] for i in pareto_front(rows, cost)]
        axis.plot([r[cost] for r in front], [100 * r["accuracy"] for r in front], "k--", linewidth=1)
        axis.scatter([r[cost] for r in front], [100 * r["accuracy"] for r in front], s=140,
                     facecolors="none", edgecolors="k", linewidths=1.5, label="efficient (Pareto)")
        axis.set_xscale("log")
        axis.set_xlabel(title)
        axis.set_ylabel("test accuracy (%)")
        axis.grid(True, which="both", alpha=0.3)
    handles = [plt.Line2D([], [], marker=m, linestyle="", color="k", label=name) for name, m in markers.items()]
    handles += [plt.Line2D([], [], marker="o", linestyle="", color=c, label=f"{kind}, {q}")
                for (kind, q), c in colours.items()]
    handles += [plt.Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="k",
                           markersize=10, label="efficient (Pareto)")]
    axes[1].legend(handles=handles, fontsize=8, loc="lower right")
    figure.suptitle("KWS sweep: marker size grows with final sparsity")
    figure.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png_path, dpi=120)
    plt.close(figure)
    return png_path


def _pairs(rows: Sequence[Dict], factor: str, base, changed) -> List[Tuple[Dict, Dict]]:
    """(base row, changed row) pairs that differ only in ``factor``."""
    def key_without(row):
        return tuple(str(row[c]) if c not in ("alpha", "final_sparsity") else f"{float(row[c]):g}"
                     for c in KEY_COLUMNS if c != factor)

    by_key = {}
    for row in rows:
        by_key.setdefault(key_without(row), {})[str(row[factor]) if factor not in ("alpha", "final_sparsity")
                                                else f"{float(row[factor]):g}"] = row
    out = []
    for group in by_key.values():
        if base in group and changed in group:
            out.append((group[base], group[changed]))
    return out


def strategy_effects(rows: Sequence[Dict]) -> List[Dict]:
    """Mean effect of each strategy over the pairs of rows that differ only in it.

    Returns dicts with ``strategy``, ``pairs``, ``accuracy_change_pp`` (changed - base, percentage
    points), ``size_ratio`` (zlib bytes changed / base) and ``latency_ratio`` (inference).
    """
    alphas = sorted({float(row["alpha"]) for row in rows})
    sparsities = sorted({float(row["final_sparsity"]) for row in rows})
    comparisons = [("full int8 quantisation (vs float)", "quantization", "none", "int8"),
                   ("weights-only int8 quantisation (vs float)", "quantization", "none", "weights")]
    comparisons += [(f"magnitude pruning to {s:.0%} (vs dense)", "final_sparsity", "0", f"{s:g}")
                    for s in sparsities if s > 0]
    comparisons += [(f"width alpha {a:g} (vs {alphas[-1]:g})", "alpha", f"{alphas[-1]:g}", f"{a:g}")
                    for a in alphas[:-1]]
    comparisons += [("log-mel features (vs MFCC)", "feature_kind", "mfcc", "log_mel"),
                    ("log-mel on 10 mel bins (vs MFCC)", "feature_kind", "mfcc", "log_mel_10"),
                    ("Lab 3 CNN (vs DS-CNN)", "model", "ds_cnn", "cnn")]
    effects = []
    for name, factor, base, changed in comparisons:
        pairs = _pairs(rows, factor, base, changed)
        if not pairs:
            continue
        effects.append({
            "strategy": name, "pairs": len(pairs),
            "accuracy_change_pp": _mean(100 * (b["accuracy"] - a["accuracy"]) for a, b in pairs),
            "size_ratio": _mean(b["zlib_bytes"] / a["zlib_bytes"] for a, b in pairs),
            "raw_size_ratio": _mean(b["tflite_bytes"] / a["tflite_bytes"] for a, b in pairs),
            # medians: means on a shared machine carry other processes' bursts
            "latency_ratio": _mean(b["inference_ms_median"] / a["inference_ms_median"] for a, b in pairs),
        })
    return effects


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else math.nan


def answers_markdown(rows: Sequence[Dict], *, csv_name: str, png_name: str, command: str) -> str:
    """The lab's questions answered from the measured rows."""
    effects = strategy_effects(rows)
    compressing = [e for e in effects if e["strategy"].startswith(("full int8", "weights-only", "magnitude", "width"))]
    lines = [
        "# Keyword-spotting sweep: what each optimisation buys",
        "",
        f"Generated by `{command}` from `{csv_name}` ({len(rows)} exported models). Accuracy: 800-clip test",
        "split through the exported file and `pi_runtime`; size: bytes of the .tflite and after zlib;",
        "latency: `invoke()` alone, median of runs, one thread, on the training machine (not a Pi).",
        f"Short training runs ({', '.join(sorted({str(r['epochs']) for r in rows}))} epochs, no selection "
        "beyond the best validation epoch): compare the points with each other, not with the delivered models; "
        "what slows convergence (pruning during a short run, features the model learns from more slowly) "
        "looks worse here than it would after full training.",
        "",
        f"![Pareto fronts]({png_name})",
        "",
        "## Effect of each strategy (mean over pairs of models that differ only in it)",
        "",
        "| strategy | pairs | accuracy change (pp) | zlib size ratio | .tflite size ratio | inference latency ratio |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for e in effects:
        lines.append(f"| {e['strategy']} | {e['pairs']} | {e['accuracy_change_pp']:+.2f} | {e['size_ratio']:.2f} "
                     f"| {e['raw_size_ratio']:.2f} | {e['latency_ratio']:.2f} |")
    lines += ["", "## Answers", ""]
    if compressing:
        least_loss = max(compressing, key=lambda e: e["accuracy_change_pp"])
        most_memory = min(compressing, key=lambda e: e["size_ratio"])
        most_latency = min(compressing, key=lambda e: e["latency_ratio"])
        lines += [
            f"- **Loses the least accuracy:** {least_loss['strategy']} "
            f"({least_loss['accuracy_change_pp']:+.2f} pp on average).",
            f"- **Saves the most memory:** {most_memory['strategy']} (zlib size x{most_memory['size_ratio']:.2f}, "
            f".tflite x{most_memory['raw_size_ratio']:.2f}).",
            f"- **Saves the most latency:** {most_latency['strategy']} "
            f"(inference x{most_latency['latency_ratio']:.2f}).",
        ]
        pruning = [e for e in effects if e["strategy"].startswith("magnitude")]
        if pruning:
            p = pruning[-1]
            lines.append(f"- Pruning shrinks the file only once compressed (zlib x{p['size_ratio']:.2f} but .tflite "
                         f"x{p['raw_size_ratio']:.2f}) and does not speed up the dense int8 kernels "
                         f"(latency x{p['latency_ratio']:.2f}): zeros are still multiplied.")
    size_front = [rows[i] for i in pareto_front(rows, "zlib_bytes")]
    lines += ["", "## Efficient points (accuracy vs zlib size)", "",
              "| model | alpha | features | sparsity | quantisation | accuracy | .tflite B | zlib B | inference ms (median) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in size_front:
        lines.append(f"| {r['model']} | {r['alpha']:g} | {r['feature_kind']} | {r['final_sparsity']:g} "
                     f"| {r['quantization']} | {100 * r['accuracy']:.2f} % | {int(r['tflite_bytes'])} "
                     f"| {int(r['zlib_bytes'])} | {r['inference_ms_median']:.3f} |")
    lines += ["", "## How to combine them", ""]
    if size_front:
        lines.append("The efficient points above are the combinations worth using: "
                     + _combination_summary(size_front))
    lines.append(_recipe(effects))
    return "\n".join(lines) + "\n"


def _recipe(effects: Sequence[Dict]) -> str:
    """The order to apply the strategies in, with what each bought in this sweep."""
    def last(prefix: str) -> Optional[Dict]:
        matches = [e for e in effects if e["strategy"].startswith(prefix)]
        return matches[-1] if matches else None

    steps = [(last("width"), "choose the width (alpha) for the latency budget"),
             (last("full int8"), "quantise to full int8"),
             (last("magnitude"), "prune, and deliver the zlib file")]
    parts = [f"{what} ({e['strategy']}: zlib x{e['size_ratio']:.2f}, .tflite x{e['raw_size_ratio']:.2f}, "
             f"inference x{e['latency_ratio']:.2f}, {e['accuracy_change_pp']:+.2f} pp)"
             for e, what in steps if e is not None]
    if not parts:
        return ""
    faster = [e["strategy"] for e in effects if e["latency_ratio"] < 0.9]
    return ("In practice: " + "; then ".join(parts) + ". Inference got at least 10 % faster only with: "
            + (", ".join(faster) if faster else "none of them") + ". The delivered versions "
            "(models/kws/results.md) follow this order with longer training and augmentation.")


def _combination_summary(front: Sequence[Dict]) -> str:
    int8 = sum(r["quantization"] == "int8" for r in front)
    pruned = sum(r["final_sparsity"] > 0 for r in front)
    widths = sorted({f"{r['alpha']:g}" for r in front}, key=float)
    return (f"{int8} of {len(front)} are int8, {pruned} of {len(front)} are pruned, and they span the widths "
            f"{', '.join(widths)}.")


# -- CLI ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.sweep", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Default grid: " + _describe(FULL_GRID) + "\n--quick grid: "
                                            + _describe(QUICK_GRID))
    parser.add_argument("--quick", action="store_true", help="small grid, few epochs (about 25 minutes)")
    parser.add_argument("--models", type=comma_separated(str), help="comma-separated models (ds_cnn, cnn, ds_cnn_bn)")
    parser.add_argument("--alphas", type=comma_separated(positive_float), help="comma-separated width multipliers")
    parser.add_argument("--features", type=comma_separated(str),
                        help=f"comma-separated feature kinds ({', '.join(SWEEP_FEATURES)}; log_mel: 40 mel bins, "
                             "log_mel_10: 10)")
    parser.add_argument("--sparsities", type=comma_separated(fraction),
                        help="comma-separated final sparsities in [0, 1), e.g. 0,0.5,0.75")
    parser.add_argument("--quantizations", type=comma_separated(str), help="comma-separated: none, weights, int8")
    parser.add_argument("--epochs", type=positive_int, help="epochs per point")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="training batch size (default 64)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed of every point")
    parser.add_argument("--output-dir", type=output_folder, default=None,
                        help="where the CSV, PNG and markdown go (default: models/kws/sweep)")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding mini_speech_commands/")
    parser.add_argument("--splits-dir", type=Path, default=None, help="folder with kws_{train,val,test}_split.txt")
    parser.add_argument("--latency-runs", type=positive_int, default=100,
                        help="runs for each latency mean (default 100)")
    parser.add_argument("--report-only", action="store_true", help="only redraw the plot and markdown from the CSV")
    ray_group = parser.add_argument_group(
        "Ray (pip install -e '.[cluster]')",
        "Without these flags the points run one after another in this process (RAY_ADDRESS set in the "
        "environment joins that cluster instead). On a cluster every node needs this package installed.")
    ray_group.add_argument("--workers", type=int, default=None,
                           help="start a local Ray that trains this many points at once")
    ray_group.add_argument("--ray-address", default=None,
                           help="join an existing Ray cluster: 'auto' (a node started on this machine), "
                                "'HOST:6379' or 'ray://HOST:10001' (default: $RAY_ADDRESS)")
    ray_group.add_argument("--cpus-per-point", type=float, default=1.0,
                           help="CPUs each point's task asks for; TensorFlow uses that many threads (default 1)")
    ray_group.add_argument("--gpus-per-point", type=float, default=0.0,
                           help="GPUs each point's task asks for, where the cluster has any (default 0)")
    ray_group.add_argument("--artifacts", type=output_folder, default=None,
                           help="keep every exported model and its sidecar in this folder (they travel back "
                                "from the workers as bytes; default: not kept)")
    ray_group.add_argument("--artifacts-shared", action="store_true",
                           help="with --artifacts: the folder is on storage every node sees, so the workers "
                                "write the models there themselves")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _describe(grid: Dict) -> str:
    return ", ".join(f"{name}={','.join(map(str, value)) if isinstance(value, tuple) else value}"
                     for name, value in grid.items())


def comma_separated(item_type: Callable[[str], Any]) -> Callable[[str], Tuple]:
    """An argparse type: a comma-separated list, each item read by ``item_type`` (whose error argparse prints)."""
    def parse(text: str) -> Tuple:
        items = tuple(item_type(item.strip()) for item in text.split(",") if item.strip())
        if not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        return items

    return parse


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from train.paths import models_dir

    grid = QUICK_GRID if args.quick else FULL_GRID
    models = args.models or grid["models"]
    alphas = args.alphas or grid["alphas"]
    kinds = args.features or grid["feature_kinds"]
    sparsities = args.sparsities or grid["sparsities"]
    quantizations = args.quantizations or grid["quantizations"]
    epochs = grid["epochs"] if args.epochs is None else args.epochs
    output_dir = args.output_dir or models_dir() / "kws" / "sweep"
    name = "sweep_quick" if args.quick else "sweep"
    csv_path = output_dir / f"{name}.csv"
    command = "python -m train.sweep " + " ".join(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    try:
        _validate(models, kinds, quantizations)
        if args.artifacts_shared and args.artifacts is None:
            raise ValueError("--artifacts-shared needs --artifacts DIR")
        if args.workers is not None and args.ray_address:
            raise ValueError("give either --workers (a local Ray) or --ray-address (a cluster), not both")
        address = None if args.workers is not None else args.ray_address or os.environ.get("RAY_ADDRESS") or None
        cluster = None
        if args.workers is not None or address is not None:
            cluster = RayCluster(workers=args.workers, address=address, cpus_per_point=args.cpus_per_point,
                                 gpus_per_point=args.gpus_per_point)
            require_ray()
        if not args.report_only:
            from train.kws.data import ensure_dataset, load_split, split_file
            from train.kws.training import Splits

            data_dir = ensure_dataset(args.data_dir)
            splits = Splits(*(load_split(split, data_dir=data_dir, progress=not args.quiet,
                                         split_path=args.splits_dir / split_file(split).name if args.splits_dir else None)
                              for split in ("train", "val", "test")))
            points = grid_points(models, alphas, kinds, sparsities, epochs, args.seed)
            state = run_sweep(points, quantizations, csv_path, splits, cluster=cluster,
                              artifacts_dir=args.artifacts, artifacts_shared=args.artifacts_shared,
                              latency_runs=args.latency_runs, batch_size=args.batch_size, verbose=not args.quiet)
            if not args.quiet and sys.stderr.isatty():
                print(file=sys.stderr)  # past the progress line
            if state.failed:
                print(f"{state.failed} point(s) failed: see {failed_csv_path(csv_path)} "
                      "(tried again by the next run)", file=sys.stderr)
        rows = numeric_rows(read_rows(csv_path))
    except (ValueError, RuntimeError, FileNotFoundError, ConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not rows:
        print(f"error: no rows in {csv_path}", file=sys.stderr)
        return 2
    png = plot_fronts(rows, output_dir / f"{name}_pareto.png")
    markdown = output_dir / f"{name}.md"
    markdown.write_text(answers_markdown(rows, csv_name=csv_path.name, png_name=png.name, command=command))
    print(f"{len(rows)} rows in {csv_path}\nplot: {png}\nanswers: {markdown}\n"
          f"took {time.perf_counter() - started:.0f} s")
    return 0


def require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ValueError("--workers and --ray-address need Ray: pip install -e '.[cluster]'") from None


def _validate(models, kinds, quantizations) -> None:
    from train.kws.models import MODELS

    for model in models:
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    for kind in kinds:
        if kind not in SWEEP_FEATURES:
            raise ValueError(f"feature kind must be one of {', '.join(SWEEP_FEATURES)}, got {kind!r}")
    for quantization in quantizations:
        if quantization not in ("none", "weights", "int8"):
            raise ValueError(f"quantization must be none, weights or int8, got {quantization!r}")


if __name__ == "__main__":
    run_command(main)
