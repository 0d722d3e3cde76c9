"""``python -m train.search --version a|b|c``: DS-CNN architecture search under the version's limits, on Ray Tune.

An Optuna sampler proposes a DS-CNN (depth, channels of the first layer and of
each block, depthwise kernel size, first-layer stride), its features (frame
length and step, mel bins, MFCCs or log-mel), a pruning sparsity and whether to
distil from the delivered b and c (only for their features). Before any
training the untrained model is pruned to that sparsity, exported as int8 and
zlib-compressed, and the trial is rejected when that file would not fit the
version's size limit (b: also when ``invoke()`` is over its latency limit, c:
the whole frontend + model pipeline). Random weights compress a little better
than trained ones (four trials of the first search: the trained file 12-21 %
larger), so the untrained size times ``UNTRAINED_SIZE_GROWTH`` must fit, and the
trained files are held to the limit again before retraining and delivery. ASHA stops trials whose validation
accuracy trails at its rungs. Candidates learn with the version's augmentation (rooms and
babble; ``--recipe course``: the course's), as the delivered model did, so that the comparison is
on the same footing. The best few trials are trained again with three seeds;
the best of them replaces the delivered version only if its mean validation
accuracy is higher, and only then is it measured on the test split (once).

Writes ``trials.csv``, ``search.md`` (tables and the decision) and
``val_accuracy_vs_size.png`` (limit drawn) to ``models/kws/search/``.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from pi_runtime.arguments import non_negative_int, output_folder, positive_int, run_command

# The space. Frames as (length, step) in samples at 16 kHz: 40/20 ms (the course's), 32/16 ms, 30/10 ms.
BLOCKS = (2, 3, 4, 5)
CHANNELS = (16, 24, 32, 48, 64, 80)
KERNEL_SIZES = (3, 5)
FIRST_STRIDES = ("2x2", "2x1", "1x2")  # time x frequency
FRAMES = ("640/320", "512/256", "480/160")
# 40 mel bins of log-mel lose to MFCCs in this DS-CNN (its receptive field spans few bins), 10 reach them.
MEL_BINS = (10, 16, 40)
FEATURE_KINDS = ("mfcc", "log_mel", "pcen")
NUM_MFCCS = (10, 13)
SPARSITIES = (0.0, 0.3, 0.5, 0.6, 0.7)
SAMPLE_RATE_HZ = 16000
# Trained int8 zlib file / untrained one (measured 1.12-1.21 on version a's search, 2 epochs).
UNTRAINED_SIZE_GROWTH = 1.25
TRIAL_COLUMNS = ("trial", "status", "reason", "blocks", "channels", "kernel_size", "first_stride", "frames",
                 "feature_kind", "num_mel_bins", "num_mfccs", "final_sparsity", "distil", "untrained_bytes",
                 "untrained_inference_ms", "epochs_trained", "val_accuracy", "file_val_accuracy", "bytes")


@dataclass(frozen=True)
class Candidate:
    """One point of the space.

    Attributes
    ----------
    channels : first convolution, then each block's pointwise convolution (``blocks + 1`` ints)
    first_stride : "TxF", the first convolution's stride in time and frequency
    frames : "LENGTH/STEP" in samples at 16 kHz
    num_mfccs : 0 for log-mel
    distil : learn from the delivered b and c too (only with their features)
    """

    channels: Tuple[int, ...]
    kernel_size: int
    first_stride: str
    frames: str
    feature_kind: str
    num_mel_bins: int
    num_mfccs: int
    final_sparsity: float
    distil: bool = False

    @property
    def blocks(self) -> int:
        return len(self.channels) - 1

    @classmethod
    def from_config(cls, config: Dict) -> "Candidate":
        """From Tune's flat config (``channels_0`` ... ``channels_<blocks>``)."""
        channels = tuple(int(config[f"channels_{i}"]) for i in range(int(config["blocks"]) + 1))
        kind = config["feature_kind"]
        mfccs = min(int(config.get("num_mfccs", 0)), int(config["num_mel_bins"])) if kind == "mfcc" else 0
        return cls(channels, int(config["kernel_size"]), config["first_stride"], config["frames"], kind,
                   int(config["num_mel_bins"]), mfccs, float(config["final_sparsity"]),
                   bool(config.get("distil", False)))

    def to_config(self) -> Dict:
        """Tune's flat config of this candidate (for ``points_to_evaluate``)."""
        config = {"blocks": self.blocks, **{f"channels_{i}": c for i, c in enumerate(self.channels)},
                  "kernel_size": self.kernel_size, "first_stride": self.first_stride, "frames": self.frames,
                  "feature_kind": self.feature_kind, "num_mel_bins": self.num_mel_bins,
                  "final_sparsity": self.final_sparsity}
        if self.feature_kind == "mfcc":
            config["num_mfccs"] = self.num_mfccs
        if distillable(self.frontend()):
            config["distil"] = self.distil
        return config

    def frontend(self):
        return frontend_of(self.frames, self.feature_kind, self.num_mel_bins, self.num_mfccs)

    def build(self, input_shape: Tuple[int, int], num_labels: int, *, feature_mean: float = 0.0,
              feature_std: float = 1.0):
        """The Keras model for features of ``input_shape`` (frames, features)."""
        from train.kws.models import build_ds_cnn

        return build_ds_cnn(tuple(input_shape), num_labels, blocks=self.blocks, channels=self.channels,
                            kernel_size=self.kernel_size,
                            first_stride=tuple(int(s) for s in self.first_stride.split("x")),
                            feature_mean=feature_mean, feature_std=feature_std, name="ds_cnn_search")

    def describe(self) -> Dict:
        out = asdict(self)
        out["channels"] = "-".join(map(str, self.channels))
        out["blocks"] = self.blocks
        return out


def delivered_candidate(version: str) -> Candidate:
    """The delivered version's own architecture, the search's first trial."""
    from train.kws.models import BASE_FILTERS, scaled_filters
    from train.kws.versions import VERSIONS

    config = VERSIONS[version].config
    frontend = config.frontend
    width = scaled_filters(BASE_FILTERS["ds_cnn"], config.alpha)
    return Candidate((width,) * ((config.blocks or 2) + 1), 3, "2x2",
                     f"{frontend.frame_length_samples}/{frontend.frame_step_samples}", frontend.feature_kind,
                     frontend.num_mel_bins, frontend.num_mfccs if frontend.feature_kind == "mfcc" else 0,
                     config.final_sparsity, bool(config.teachers))


def frontend_of(frames: str, feature_kind: str, num_mel_bins: int, num_mfccs: int):
    """The FrontendParams of a point of the space (``frames`` "LENGTH/STEP" in samples at 16 kHz)."""
    from native.params import FrontendParams

    length, step = (int(part) for part in frames.split("/"))
    options = dict(num_mfccs=num_mfccs) if feature_kind == "mfcc" else {}
    return FrontendParams(sample_rate_hz=SAMPLE_RATE_HZ, frame_length_samples=length, frame_step_samples=step,
                          fft_length=length, feature_kind=feature_kind, num_mel_bins=num_mel_bins,
                          lower_edge_hz=20.0, upper_edge_hz=4000.0, **options)


def distillable(frontend) -> bool:
    """Whether the delivered teachers (b and c) take these features."""
    from train.kws.versions import VERSIONS

    return all(frontend == VERSIONS[teacher].config.frontend for teacher in ("b", "c"))


def define_space(trial) -> None:
    """Optuna define-by-run space: one ``channels_<i>`` per layer of the sampled depth; distil only
    where the teachers' features are sampled."""
    blocks = trial.suggest_int("blocks", BLOCKS[0], BLOCKS[-1])
    for i in range(blocks + 1):
        trial.suggest_categorical(f"channels_{i}", CHANNELS)
    trial.suggest_categorical("kernel_size", KERNEL_SIZES)
    trial.suggest_categorical("first_stride", FIRST_STRIDES)
    frames = trial.suggest_categorical("frames", FRAMES)
    kind = trial.suggest_categorical("feature_kind", FEATURE_KINDS)
    mel_bins = trial.suggest_categorical("num_mel_bins", MEL_BINS)
    mfccs = trial.suggest_categorical("num_mfccs", NUM_MFCCS) if kind == "mfcc" else 0
    trial.suggest_categorical("final_sparsity", SPARSITIES)
    if distillable(frontend_of(frames, kind, mel_bins, min(mfccs, mel_bins))):  # as Candidate.from_config clips
        trial.suggest_categorical("distil", (False, True))


# -- limits checked before training ------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """A version's limits: file bytes (<), ``invoke()`` mean ms and frontend + model mean ms (<)."""

    max_bytes: int
    max_inference_ms: Optional[float] = None
    max_total_ms: Optional[float] = None

    @classmethod
    def of_version(cls, version: str) -> "Limits":
        from train.kws.versions import KB, VERSIONS

        v = VERSIONS[version]
        return cls(int(v.max_size_kb * KB), v.max_inference_ms, v.max_total_ms)


@dataclass(frozen=True)
class PreCheck:
    """The untrained model's int8 zlib file, measured; ``reason`` says why it is rejected ('' if not)."""

    bytes: int
    inference_ms: float
    total_ms: float
    reason: str


def prune_by_magnitude(model, sparsity: float) -> None:
    """Zero the ``sparsity`` share of smallest-magnitude weights of every kernel, layer by layer (as
    magnitude pruning ends), in place."""
    if sparsity <= 0:
        return
    for layer in model.layers:
        kernels = [i for i, weight in enumerate(layer.weights) if weight.name.split("/")[-1].split(":")[0]
                   .endswith("kernel")]
        if not kernels:
            continue
        values = layer.get_weights()
        for i in kernels:
            magnitudes = np.abs(values[i]).ravel()
            cut = int(round(sparsity * magnitudes.size))
            if cut:
                threshold = np.partition(magnitudes, cut - 1)[cut - 1]
                values[i] = np.where(np.abs(values[i]) <= threshold, 0.0, values[i]).astype(values[i].dtype)
        layer.set_weights(values)


def precheck(candidate: Candidate, num_labels: int, train_features: np.ndarray, limits: Limits, *,
             latency_runs: int = 30) -> PreCheck:
    """Export the untrained (pruned, int8, zlib) model and hold it to ``limits``.

    ``train_features``: float32[n, frames, features], a few training examples (the int8 ranges
    and the standardisation). Latency is measured only where a latency limit exists.
    """
    from train.kws.training import measure_latency, standardisation
    from train.toolbox.export import export_model

    model = candidate.build(train_features.shape[1:], num_labels, **standardisation(train_features))
    prune_by_magnitude(model, candidate.final_sparsity)
    with tempfile.TemporaryDirectory() as scratch:
        exported = export_model(model, Path(scratch) / "untrained.tflite", quantization="int8",
                                representative_data=train_features[:64, ..., np.newaxis], compress=True)
        inference_ms = total_ms = math.nan
        if limits.max_inference_ms is not None or limits.max_total_ms is not None:
            inference, total = measure_latency(exported.path, runs=latency_runs)
            inference_ms, total_ms = inference["mean"], total["mean"]
    reasons = []
    if exported.size_bytes * UNTRAINED_SIZE_GROWTH >= limits.max_bytes:
        reasons.append(f"size {exported.size_bytes} B untrained, x{UNTRAINED_SIZE_GROWTH} >= {limits.max_bytes} B")
    if limits.max_inference_ms is not None and not inference_ms < limits.max_inference_ms:
        reasons.append(f"inference {inference_ms:.3f} ms >= {limits.max_inference_ms} ms")
    if limits.max_total_ms is not None and not total_ms < limits.max_total_ms:
        reasons.append(f"total {total_ms:.2f} ms >= {limits.max_total_ms} ms")
    return PreCheck(exported.size_bytes, inference_ms, total_ms, "; ".join(reasons))


# -- training ----------------------------------------------------------------------------------------
def train_candidate(candidate: Candidate, splits, train_features: np.ndarray, val_features: np.ndarray, *,
                    epochs: int, seed: int = 0, batch_size: int = 64, learning_rate: float = 0.01,
                    recipe=None, on_epoch: Optional[Callable[[int, float], None]] = None):
    """Train with ``train.kws.training.fit`` (augmentation, pruning schedule, selection once the
    masks are final), calling ``on_epoch(epoch, val_accuracy)`` after each epoch.

    ``recipe``: a ``RunConfig`` whose augmentation and label smoothing the candidate trains with (the
    version's, so that a candidate is compared with the delivered model on the same footing); None:
    ``RunConfig``'s defaults (the course's augmentation).

    Returns (model stripped of pruning wrappers, best validation accuracy, its epoch). A distilled
    model's logits are rescaled on validation afterwards, as the delivered a's are.
    """
    from train.keras_env import tf
    from train.kws.training import RunConfig, fit
    from train.kws.versions import A_TEACHERS

    tf.keras.utils.set_random_seed(seed)
    recipe = recipe or RunConfig()
    config = RunConfig(model="ds_cnn", frontend=candidate.frontend(), epochs=epochs, batch_size=batch_size,
                       learning_rate=learning_rate, final_sparsity=candidate.final_sparsity, seed=seed,
                       teachers=A_TEACHERS if candidate.distil else (), augment=recipe.augment,
                       label_smoothing=recipe.label_smoothing)
    model, best_val, best_epoch = fit(config, splits, train_features, val_features, say=lambda *_: None,
                                      build=candidate.build, on_epoch=on_epoch)
    if candidate.distil:
        from train.toolbox.calibration import fold_logit_scale, logit_scale

        fold_logit_scale(model, logit_scale(model.predict(val_features[..., np.newaxis], batch_size=512, verbose=0),
                                            splits.val.label_ids))
    return model, best_val, best_epoch


def candidate_features(candidate: Candidate, clip_sets) -> List[np.ndarray]:
    from train.kws.features import compute_features

    return [compute_features(clips.audio, candidate.frontend()) for clips in clip_sets]


def export_bytes(model, train_features: np.ndarray) -> bytes:
    """The int8, zlib-compressed file of a trained model (what a version delivers)."""
    from train.toolbox.export import export_model

    with tempfile.TemporaryDirectory() as scratch:
        exported = export_model(model, Path(scratch) / "model.tflite", quantization="int8",
                                representative_data=train_features[..., np.newaxis], compress=True)
        return exported.path.read_bytes()


def file_accuracy(model_bytes: bytes, features: np.ndarray, label_ids: np.ndarray) -> float:
    """Accuracy of an exported file (bytes) through ``pi_runtime``."""
    from train.kws.training import evaluate_file

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.tflite.zlib"
        path.write_bytes(model_bytes)
        return evaluate_file(path, features, label_ids)


# -- the Tune trial ------------------------------------------------------------------------------------
def tune_trial(config: Dict, *, splits, limits: Limits, epochs: int, batch_size: int, cpus: float,
               recipe=None) -> None:
    """One trial: reject before training when the limits are missed, else train reporting each epoch."""
    from ray import tune
    from train.sweep import limit_tensorflow_threads

    limit_tensorflow_threads(cpus)
    candidate = Candidate.from_config(config)
    train_features, val_features = candidate_features(candidate, (splits.train, splits.val))
    check = precheck(candidate, len(splits.labels), train_features, limits)
    common = {"untrained_bytes": check.bytes, "untrained_inference_ms": check.inference_ms,
              "untrained_total_ms": check.total_ms}
    if check.reason:
        tune.report({"val_accuracy": 0.0, "rejected": check.reason, "epochs_trained": 0, **common})
        return
    model_holder = {}

    def report(epoch: int, val_accuracy: float) -> None:
        metrics = {"val_accuracy": val_accuracy, "rejected": "", "epochs_trained": epoch + 1, **common}
        if epoch == epochs - 1:  # the last epoch: the model is final once train_candidate returns
            model_holder["metrics"] = metrics
            return
        tune.report(metrics)

    model, best_val, _ = train_candidate(candidate, splits, train_features, val_features, epochs=epochs,
                                         batch_size=batch_size, recipe=recipe, on_epoch=report)
    model_bytes = export_bytes(model, train_features)
    tune.report({**model_holder["metrics"], "best_val_accuracy": best_val, "bytes": len(model_bytes),
                 "file_val_accuracy": file_accuracy(model_bytes, val_features, splits.val.label_ids)})


def retrain(candidate: Candidate, splits, *, epochs: int, seed: int, batch_size: int, cpus: float,
            recipe=None) -> Dict:
    """A Ray task: train ``candidate`` with ``seed``; its validation accuracy, file and the file's size."""
    from train.sweep import limit_tensorflow_threads

    limit_tensorflow_threads(cpus)
    started = time.perf_counter()
    train_features, val_features = candidate_features(candidate, (splits.train, splits.val))
    model, best_val, best_epoch = train_candidate(candidate, splits, train_features, val_features, epochs=epochs,
                                                  seed=seed, batch_size=batch_size, recipe=recipe)
    model_bytes = export_bytes(model, train_features)
    return {"seed": seed, "val_accuracy": best_val, "best_epoch": best_epoch, "bytes": len(model_bytes),
            "file_val_accuracy": file_accuracy(model_bytes, val_features, splits.val.label_ids),
            "parameters": int(model.count_params()), "model": model_bytes,
            "train_seconds": round(time.perf_counter() - started, 1)}


# -- the search ------------------------------------------------------------------------------------------
@dataclass
class SearchOutcome:
    trials: List[Dict]
    retrained: List[Dict]
    seconds: float


def run_search(splits, limits: Limits, *, trials: int, epochs: int, cluster, batch_size: int = 64,
               first: Sequence[Candidate] = (), seed: int = 0, retrain_top: int = 3,
               retrain_seeds: Sequence[int] = (0, 1, 2), retrain_epochs: Optional[int] = None,
               recipe=None, verbose: bool = True) -> SearchOutcome:
    """Search ``trials`` candidates (``first`` ones first) with ASHA over ``epochs``, then train the
    ``retrain_top`` best that fit again with each of ``retrain_seeds``, all with the augmentation and
    label smoothing of ``recipe`` (a ``RunConfig``; None: the course's augmentation).

    Returns the trials (rows of ``TRIAL_COLUMNS``) and the retrained runs (candidate, per-seed
    results and mean validation accuracy, best first).
    """
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch
    from optuna.samplers import TPESampler
    from train.sweep import connect_ray

    started = time.perf_counter()
    started_here = connect_ray(cluster)
    try:
        slots = max(1, int(ray.cluster_resources().get("CPU", 1) // cluster.cpus_per_point))
        search = OptunaSearch(space=define_space, metric="val_accuracy", mode="max",
                              points_to_evaluate=[c.to_config() for c in first] or None,
                              sampler=TPESampler(seed=seed, n_startup_trials=min(10, trials)))
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=epochs,
                                  grace_period=max(1, epochs // 4), reduction_factor=2)
        trainable = tune.with_resources(
            tune.with_parameters(tune_trial, splits=splits, limits=limits, epochs=epochs, batch_size=batch_size,
                                 cpus=cluster.cpus_per_point, recipe=recipe),
            {"cpu": cluster.cpus_per_point, "gpu": cluster.gpus_per_point})
        with tempfile.TemporaryDirectory() as scratch:
            tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(
                metric="val_accuracy", mode="max", search_alg=search, scheduler=scheduler, num_samples=trials,
                max_concurrent_trials=slots), run_config=tune.RunConfig(
                storage_path=scratch, name="search", verbose=1 if verbose else 0))
            results = tuner.fit()
            rows = [_trial_row(index, result) for index, result in enumerate(results)]
        retrained = _retrain_best(rows, splits, limits, top=retrain_top, seeds=retrain_seeds,
                                  epochs=retrain_epochs or epochs, batch_size=batch_size, cluster=cluster,
                                  recipe=recipe, verbose=verbose)
    finally:
        if started_here:
            ray.shutdown()
    return SearchOutcome(rows, retrained, time.perf_counter() - started)


def _trial_row(index: int, result) -> Dict:
    metrics = result.metrics or {}
    candidate = Candidate.from_config(result.config)
    epochs_trained = int(metrics.get("epochs_trained", 0))
    if result.error is not None:
        status, reason = "error", " ".join(str(result.error).split())[:200]
    elif metrics.get("rejected"):
        status, reason = "rejected", metrics["rejected"]
    elif "bytes" in metrics:
        status, reason = "completed", ""
    else:
        status, reason = "stopped", f"ASHA after {epochs_trained} epochs"
    return {"trial": index, "status": status, "reason": reason, **candidate.describe(),
            "untrained_bytes": metrics.get("untrained_bytes", ""),
            "untrained_inference_ms": _rounded(metrics.get("untrained_inference_ms"), 4),
            "epochs_trained": epochs_trained,
            "val_accuracy": _rounded(metrics.get("best_val_accuracy", metrics.get("val_accuracy")), 5),
            "file_val_accuracy": _rounded(metrics.get("file_val_accuracy"), 5), "bytes": metrics.get("bytes", "")}


def _rounded(value, digits: int):
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), digits)


def _retrain_best(rows, splits, limits: Limits, *, top: int, seeds, epochs: int, batch_size: int, cluster,
                  recipe=None, verbose: bool = True) -> List[Dict]:
    import ray

    fitting = [row for row in rows if row["status"] == "completed" and int(row["bytes"]) < limits.max_bytes]
    best = sorted(fitting, key=lambda row: -float(row["val_accuracy"]))[:top]
    if not best or not seeds:
        return []
    task = ray.remote(retrain).options(num_cpus=cluster.cpus_per_point, num_gpus=cluster.gpus_per_point,
                                       max_retries=1)
    splits_ref = ray.put(splits)
    candidates = [_candidate_of_row(row) for row in best]
    refs = {(i, seed): task.remote(candidate, splits_ref, epochs=epochs, seed=seed, batch_size=batch_size,
                                   cpus=cluster.cpus_per_point, recipe=recipe)
            for i, candidate in enumerate(candidates) for seed in seeds}
    if verbose:
        print(f"search: training the best {len(candidates)} again with seeds {list(seeds)} "
              f"({len(refs)} runs of {epochs} epochs)", file=sys.stderr)
    runs = {key: ray.get(ref) for key, ref in refs.items()}
    out = []
    for i, (candidate, row) in enumerate(zip(candidates, best)):
        seed_runs = [runs[(i, seed)] for seed in seeds]
        out.append({"trial": row["trial"], "candidate": candidate, "runs": seed_runs,
                    "mean_val_accuracy": float(np.mean([run["val_accuracy"] for run in seed_runs])),
                    "max_bytes": max(run["bytes"] for run in seed_runs)})
    return sorted(out, key=lambda entry: -entry["mean_val_accuracy"])


def _candidate_of_row(row: Dict) -> Candidate:
    return Candidate(tuple(int(c) for c in str(row["channels"]).split("-")), int(row["kernel_size"]),
                     row["first_stride"], row["frames"], row["feature_kind"], int(row["num_mel_bins"]),
                     int(row["num_mfccs"]), float(row["final_sparsity"]), row["distil"] in (True, "True"))


# -- delivery and reports ------------------------------------------------------------------------------
def delivered_val_accuracy(model_path: Path) -> Optional[float]:
    """The validation accuracy the delivered model's sidecar records (None when absent)."""
    from pi_runtime.sidecar import read_sidecar

    if not Path(model_path).is_file():
        return None
    value = (read_sidecar(model_path).get("results") or {}).get("val_accuracy")
    return None if value is None else float(value)


def deliver(entry: Dict, version: str, splits, model_path: Path, *, recipe_name: str = "version",
            latency_runs: int = 100) -> Dict:
    """Write the best seed's file of ``entry`` as the version's model with its sidecar, then measure
    it on the test split (the one time the search looks at test clips)."""
    from native.params import ModelInput
    from pi_runtime.sidecar import KwsSpec, write_sidecar
    from train.kws.training import RunResult, update_results, measure_latency, predict_file
    from train.toolbox.pruning import weight_sparsity

    candidate: Candidate = entry["candidate"]
    run = max(entry["runs"], key=lambda r: r["val_accuracy"])
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_bytes(run["model"])
    write_sidecar(model_path, KwsSpec(input=ModelInput(frontend=candidate.frontend()), labels=tuple(splits.labels),
                                      output_kind="logits").to_sidecar(
        results={}, training={"version": version, "command": f"python -m train.search --version {version}",
                              "search_candidate": candidate.describe(), "recipe": recipe_name, "seed": run["seed"],
                              "selected_epoch": run["best_epoch"],
                              "mean_val_accuracy_of_seeds": round(entry["mean_val_accuracy"], 5)}))
    test_features = candidate_features(candidate, (splits.test,))[0]
    accuracy = float(np.mean(predict_file(model_path, test_features) == splits.test.label_ids))
    inference_ms, total_ms = measure_latency(model_path, runs=latency_runs)
    from pi_runtime.model import read_model_bytes

    result = RunResult(path=model_path, accuracy=accuracy, val_accuracy=run["val_accuracy"],
                       size_bytes=len(run["model"]), tflite_bytes=len(read_model_bytes(model_path)),
                       zlib_bytes=len(run["model"]), sparsity=weight_sparsity(model_path), inference_ms=inference_ms,
                       total_ms=total_ms, train_seconds=run["train_seconds"], run_seconds=0.0,
                       num_test_clips=len(splits.test), best_epoch=run["best_epoch"], parameters=run["parameters"],
                       keyword_accuracy=accuracy, num_keyword_clips=len(splits.test))
    update_results(result)
    return {"path": str(model_path), "test_accuracy": accuracy, "bytes": len(run["model"]),
            "inference_ms": inference_ms["mean"], "total_ms": total_ms["mean"]}


def write_trials_csv(rows: Sequence[Dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TRIAL_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def plot_trials(rows: Sequence[Dict], limits: Limits, png_path: Path, *,
                delivered: Optional[Tuple[int, float]] = None) -> Path:
    """Validation accuracy against file size (trained file, else the untrained estimate), limit drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5))
    styles = {"completed": ("o", "tab:blue", "trained to the end"), "stopped": ("s", "tab:orange", "stopped by ASHA"),
              "rejected": ("x", "tab:red", "rejected before training (untrained size)")}
    for status, (marker, colour, label) in styles.items():
        chosen = [r for r in rows if r["status"] == status]
        if not chosen:
            continue
        sizes = [float(r["bytes"] or r["untrained_bytes"]) / 1000 for r in chosen]
        accuracies = [100 * float(r["val_accuracy"] or 0) for r in chosen]
        axis.scatter(sizes, accuracies, marker=marker, color=colour, label=label)
    axis.axvline(limits.max_bytes / 1000, color="k", linestyle="--", label=f"size limit {limits.max_bytes / 1000:g} kB")
    if delivered is not None:
        axis.scatter([delivered[0] / 1000], [100 * delivered[1]], marker="*", s=200, color="tab:green",
                     label="delivered")
    axis.set_xlabel("int8 zlib file (kB)")
    axis.set_ylabel("validation accuracy (%)")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png_path, dpi=120)
    plt.close(figure)
    return png_path


def report_markdown(outcome: SearchOutcome, *, version: str, limits: Limits, command: str, epochs: int,
                    retrain_epochs: int, delivered_val: Optional[float], decision: str,
                    delivery: Optional[Dict], recipe_name: str = "version") -> str:
    rows = outcome.trials
    counts = {status: sum(r["status"] == status for r in rows) for status in ("completed", "stopped", "rejected", "error")}
    lines = [f"# Architecture search for version {version}", "",
             f"`{command}`: {len(rows)} trials in {outcome.seconds / 60:.1f} min "
             f"({counts['completed']} trained to the end, {counts['stopped']} stopped by ASHA, "
             f"{counts['rejected']} rejected before training, {counts['error']} failed); {epochs} epochs a trial, "
             f"size limit {limits.max_bytes} B" + (f", inference < {limits.max_inference_ms} ms"
                                                   if limits.max_inference_ms else "")
             + (f", total < {limits.max_total_ms} ms" if limits.max_total_ms else "") + ".", "",
             f"Every trial and retraining learns with {RECIPES[recipe_name].format(version=version)}.", "",
             "![validation accuracy against size](val_accuracy_vs_size.png)", "",
             "## Best trials (validation accuracy, Keras float; size of the trained int8 zlib file)", "",
             "| trial | channels | kernel | stride | frames | features | sparsity | distil | epochs | val acc | "
             "file val acc | bytes (untrained) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    ranked = sorted((r for r in rows if r["status"] in ("completed", "stopped")),
                    key=lambda r: -float(r["val_accuracy"] or 0))
    for r in ranked[:10]:
        features = (f"{r['feature_kind']} {r['num_mel_bins']} mel" + (f" {r['num_mfccs']} mfcc" if r["num_mfccs"] else ""))
        lines.append(f"| {r['trial']} | {r['channels']} | {r['kernel_size']} | {r['first_stride']} | {r['frames']} "
                     f"| {features} | {r['final_sparsity']:g} | {'yes' if r['distil'] else 'no'} "
                     f"| {r['epochs_trained']} | {100 * float(r['val_accuracy']):.2f} % "
                     f"| {_percent(r['file_val_accuracy'])} | {r['bytes'] or '-'} ({r['untrained_bytes']}) |")
    if outcome.retrained:
        lines += ["", f"## Trained again, {retrain_epochs} epochs, seeds "
                  f"{', '.join(str(run['seed']) for run in outcome.retrained[0]['runs'])}", "",
                  "| trial | channels | features | sparsity | distil | val acc per seed | mean | bytes (max) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for entry in outcome.retrained:
            c = entry["candidate"].describe()
            lines.append(f"| {entry['trial']} | {c['channels']} | {c['feature_kind']} {c['frames']} "
                         f"{c['num_mel_bins']} mel | {c['final_sparsity']:g} | {'yes' if c['distil'] else 'no'} | "
                         + " / ".join(f"{100 * run['val_accuracy']:.2f}" for run in entry["runs"])
                         + f" | {100 * entry['mean_val_accuracy']:.2f} % | {entry['max_bytes']} |")
    lines += ["", "## Decision", "",
              f"Delivered kws_{version}: validation accuracy "
              + (f"{100 * delivered_val:.2f} %." if delivered_val is not None else "unknown (no delivered model)."),
              decision]
    if delivery:
        lines.append(f"Delivered {delivery['path']}: {delivery['bytes']} B, test accuracy "
                     f"{100 * delivery['test_accuracy']:.2f} % (800 clips, measured once), inference "
                     f"{delivery['inference_ms']:.3f} ms, total {delivery['total_ms']:.2f} ms.")
    return "\n".join(lines) + "\n"


def _percent(value) -> str:
    return f"{100 * float(value):.2f} %" if value not in ("", None) else "-"


# -- CLI -------------------------------------------------------------------------------------------------
# What the candidates learn with (``--recipe``): the version's augmentation, so that they are compared with
# the delivered model on the same footing, or the course's (the search's first runs used that).
RECIPES = {"version": "version {version}'s augmentation and label smoothing (`train/kws/versions.py`)",
           "course": "the course's augmentation (time shift, white noise, one time mask)"}


def recipe_config(version: str, recipe_name: str):
    """The ``RunConfig`` whose augmentation and label smoothing the candidates take (None: the course's)."""
    from train.kws.versions import VERSIONS

    return VERSIONS[version].config if recipe_name == "version" else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.search", description=__doc__.split("\n\n")[0],
                                     epilog="Needs the cluster extra: pip install -e '.[cluster]'.")
    parser.add_argument("--version", required=True, choices=("a", "b", "c"), help="whose limits to search under")
    parser.add_argument("--trials", type=positive_int, default=32, help="trials to sample (default 32)")
    parser.add_argument("--epochs", type=positive_int, default=10,
                        help="epochs of a trial, ASHA's maximum (default 10)")
    parser.add_argument("--retrain-top", type=non_negative_int, default=3,
                        help="best trials trained again (default 3)")
    parser.add_argument("--retrain-epochs", type=positive_int, default=40,
                        help="epochs of each retraining, seeds 0, 1 and 2 (default 40, as delivered)")
    parser.add_argument("--workers", type=int, default=None, help="start a local Ray running this many trials at once")
    parser.add_argument("--ray-address", default=None,
                        help="join an existing Ray cluster ('auto', 'HOST:6379', 'ray://HOST:10001'; "
                             "default: $RAY_ADDRESS, else a local Ray of one worker)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs each trial asks for (default 1)")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs each trial asks for (default 0)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="training batch size (default 64)")
    parser.add_argument("--recipe", choices=tuple(RECIPES), default="version",
                        help="augmentation the candidates learn with: the version's (default; rooms, babble) "
                             "or the course's (shift, white noise, a time mask)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="the sampler's seed")
    parser.add_argument("--output-dir", type=output_folder, default=None,
                        help="trials CSV, results and plot (default: models/kws/search)")
    parser.add_argument("--deliver-dir", type=output_folder, default=None,
                        help="where a better candidate replaces kws_<version>.tflite.zlib (default: models/kws); the bar "
                             "is the model already there, else the one in models/kws")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding mini_speech_commands/")
    parser.add_argument("--splits-dir", type=Path, default=None, help="folder with kws_{train,val,test}_split.txt")
    parser.add_argument("--quiet", action="store_true", help="no progress")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from train.paths import models_dir

    args = build_parser().parse_args(argv)
    command = "python -m train.search " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        if args.workers is not None and args.ray_address:
            raise ValueError("give either --workers (a local Ray) or --ray-address (a cluster), not both")
        try:
            import optuna  # noqa: F401
            import ray  # noqa: F401
        except ImportError:
            raise ValueError("the search needs Ray Tune and Optuna: pip install -e '.[cluster]'") from None
        from train.kws.data import ensure_dataset, load_split, split_file
        from train.kws.training import Splits
        from train.sweep import RayCluster

        address = None if args.workers is not None else args.ray_address or os.environ.get("RAY_ADDRESS") or None
        workers = args.workers if args.workers is not None else None if address else 1
        cluster = RayCluster(workers=workers, address=address, cpus_per_point=args.cpus_per_trial,
                             gpus_per_point=args.gpus_per_trial)
        data_dir = ensure_dataset(args.data_dir)
        splits = Splits(*(load_split(split, data_dir=data_dir, progress=not args.quiet,
                                     split_path=args.splits_dir / split_file(split).name if args.splits_dir else None)
                          for split in ("train", "val", "test")))
        limits = Limits.of_version(args.version)
        output_dir = args.output_dir or models_dir() / "kws" / "search"
        model_path = (args.deliver_dir or models_dir() / "kws") / f"kws_{args.version}.tflite.zlib"
        outcome = run_search(splits, limits, trials=args.trials, epochs=args.epochs, cluster=cluster,
                             batch_size=args.batch_size, first=[delivered_candidate(args.version)], seed=args.seed,
                             retrain_top=args.retrain_top, retrain_epochs=args.retrain_epochs,
                             recipe=recipe_config(args.version, args.recipe), verbose=not args.quiet)
    except (ValueError, RuntimeError, FileNotFoundError, ConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # The bar: the model at the delivery path, else the delivered one in models/kws.
    baseline = model_path if model_path.is_file() else models_dir() / "kws" / model_path.name
    delivered_val = delivered_val_accuracy(baseline)
    decision, delivery = "No trial was trained again (none completed within the limits).", None
    if outcome.retrained:
        best = outcome.retrained[0]
        if best["max_bytes"] >= limits.max_bytes:
            decision = (f"The best candidate (trial {best['trial']}) came out at {best['max_bytes']} B after "
                        f"retraining, over the limit: kws_{args.version} stays.")
        elif delivered_val is None or best["mean_val_accuracy"] > delivered_val:
            delivery = deliver(best, args.version, splits, model_path, recipe_name=args.recipe)
            decision = (f"Trial {best['trial']}'s mean validation accuracy {100 * best['mean_val_accuracy']:.2f} % "
                        f"is higher: its best seed replaces kws_{args.version}.")
        else:
            decision = (f"The best candidate (trial {best['trial']}, mean {100 * best['mean_val_accuracy']:.2f} % "
                        f"over {len(best['runs'])} seeds) is not better: kws_{args.version} stays; the test split "
                        "was not used.")
    write_trials_csv(outcome.trials, output_dir / "trials.csv")
    delivered_point = None
    if delivered_val is not None:
        delivered_point = (baseline.stat().st_size, delivered_val)
    plot_trials(outcome.trials, limits, output_dir / "val_accuracy_vs_size.png", delivered=delivered_point)
    (output_dir / "search.md").write_text(report_markdown(
        outcome, version=args.version, limits=limits, command=command, epochs=args.epochs,
        retrain_epochs=args.retrain_epochs, delivered_val=delivered_val, decision=decision, delivery=delivery,
        recipe_name=args.recipe))
    print(f"{len(outcome.trials)} trials in {outcome.seconds / 60:.1f} min; {decision}\n"
          f"results: {output_dir / 'search.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_command(main)
