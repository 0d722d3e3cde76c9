"""Data preparation, training, export and evaluation shared by the CLI, tests and benchmark.

Inputs are built by ``pi_runtime.forecast`` (``window_rows`` / ``model_input``),
the same functions the device uses, and exported files are evaluated through
``pi_runtime`` (``Forecaster`` over ``load_model``), so the numbers reported are
the numbers the device gets.
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from pi_runtime.forecast import KNOWN_TIME_FEATURES, ForecastSpec, Forecaster, model_input, window_rows
from train.forecast.data import JenaRecord, Normalisation, describe_resolution, split_record
from train.forecast.models import build_model, layout_of
from train.forecast.windows import WindowCounts, make_windows

PARTS = ("train", "val", "test")


@dataclass
class PartWindows:
    """Raw windows of one split part: readings and labels in physical units."""

    inputs: np.ndarray  # [windows, input_width, features]
    labels: np.ndarray  # [windows, out_steps, features]
    timestamps_s: np.ndarray  # [windows, input_width]
    counts: WindowCounts

    def __len__(self) -> int:
        return len(self.inputs)


@dataclass
class PreparedData:
    """The record cut into parts and windows, with the normalisation of the training part."""

    parts: Dict[str, PartWindows]
    normalisation: Normalisation
    features: Tuple[str, ...]
    time_step_s: int
    input_width: int
    out_steps: int
    rows: int
    source: str

    @property
    def resolution(self) -> str:
        return describe_resolution(self.time_step_s)

    def spec(self, *, layout: str, target: str = "delta", time_features: Sequence[str] = KNOWN_TIME_FEATURES
             ) -> ForecastSpec:
        return ForecastSpec(features=self.features, input_width=self.input_width, out_steps=self.out_steps,
                            mean=self.normalisation.mean, std=self.normalisation.std, time_step_s=self.time_step_s,
                            target=target, time_features=tuple(time_features), layout=layout)

    def describe(self) -> str:
        lines = [f"data: {self.source}: {self.rows} rows, time step {self.time_step_s} s ({self.resolution} record), "
                 f"features {', '.join(self.features)}"]
        for name, part in self.parts.items():
            lines.append(f"  {name:5s}: {part.counts.describe()}")
        lines.append("  normalisation (training part): mean " + ", ".join(f"{v:.3f}" for v in self.normalisation.mean)
                     + "; std " + ", ".join(f"{v:.3f}" for v in self.normalisation.std))
        return "\n".join(lines)


def prepare_data(record: JenaRecord, *, input_width: int = 6, out_steps: int = 6) -> PreparedData:
    """Split ``record`` 70/20/10 in time, normalise from the training part, cut clean windows."""
    if len(record) < 3 * (input_width + out_steps):
        raise ValueError(f"{record.source}: {len(record)} rows is too few for a 70/20/10 split of "
                         f"{input_width}+{out_steps}-row windows")
    step = record.time_step_s
    split = split_record(record)
    normalisation = Normalisation.fit(split["train"])
    parts = {}
    for name, part in split.items():
        windows = make_windows(part, None, input_width=input_width, out_steps=out_steps, time_step_s=step)
        offsets = (np.arange(input_width) - (input_width - 1)) * step
        parts[name] = PartWindows(windows.inputs, windows.labels, windows.last_timestamps_s[:, None] + offsets,
                                  windows.counts)
        if len(windows) == 0:
            raise ValueError(f"{record.source}: no clean window in the {name} part{part.invalid_cells()}")
    return PreparedData(parts, normalisation, record.features, step, input_width, out_steps, len(record),
                        record.source)


def training_arrays(part: PartWindows, spec: ForecastSpec) -> Tuple[np.ndarray, np.ndarray]:
    """(model inputs, targets) of one part, in normalised units, built as the device builds them."""
    rows = window_rows(part.inputs, part.timestamps_s, spec)
    targets = (part.labels - spec.mean) / spec.std
    if spec.target == "delta":
        targets = targets - rows[:, -1:, : len(spec.features)]
    return model_input(rows, spec), targets.astype(np.float32)


@dataclass
class TrainConfig:
    """How one model is made. ``width`` multiplies the hidden units (see ``models``)."""

    kind: str = "mlp"
    width: float = 1.0
    target: str = "delta"
    time_features: Tuple[str, ...] = KNOWN_TIME_FEATURES
    epochs: int = 40
    batch_size: int = 256
    learning_rate: float = 3e-3
    patience: int = 6
    final_sparsity: float = 0.0
    prune_epochs: int = 6
    qat_epochs: int = 0
    quantization: str = "int8"  # none | weights | int8
    per_channel: bool = False
    int8_io: bool = True
    compress: bool = False
    seed: int = 0

    def to_dict(self) -> Dict:
        result = asdict(self)
        result["time_features"] = list(self.time_features)
        return result


def train_model(config: TrainConfig, data: PreparedData, *, verbose: int = 0, start_from=None):
    """Train on the training part, select on validation; prune and QAT-fine-tune as configured.

    ``start_from``: a trained model of the same kind and width (e.g. from a
    previous call with no pruning/QAT); its weights are copied and the base
    training is skipped, so only the optimisation steps run.

    Returns
    -------
    (model, spec, history) : the stripped tf_keras model ready for export, its
        ForecastSpec, and a dict of what happened (epochs run, best validation MAE).
    """
    from train.forecast.metrics import MultiStepMAE
    from train.keras_env import keras
    from train.toolbox.pruning import prune_low_magnitude, strip_pruning
    from train.toolbox.quantization import quantization_aware

    spec = data.spec(layout=layout_of(config.kind), target=config.target, time_features=config.time_features)
    x_train, y_train = training_arrays(data.parts["train"], spec)
    x_val, y_val = training_arrays(data.parts["val"], spec)
    model = build_model(config.kind, input_width=data.input_width, features=len(data.features),
                        time_features=len(config.time_features), out_steps=data.out_steps, width=config.width,
                        seed=config.seed)
    steps_per_epoch = int(np.ceil(len(x_train) / config.batch_size))

    def compile_and_fit(current, epochs, learning_rate, callbacks=(), stage="train"):
        current.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mae",
                        metrics=[MultiStepMAE(data.normalisation.std, data.features)])
        progress = [] if verbose else [_EpochProgress(stage, epochs)]
        return current.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs,
                           batch_size=config.batch_size, shuffle=True, verbose=verbose,
                           callbacks=list(callbacks) + progress)

    started = time.perf_counter()
    if start_from is None:
        fit = compile_and_fit(model, config.epochs, config.learning_rate, [
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=max(1, config.patience // 2)),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True),
        ])
        history = {"epochs": len(fit.history["loss"]), "best_val_loss": float(min(fit.history["val_loss"]))}
    else:
        model.set_weights(start_from.get_weights())  # ValueError if the architectures differ
        history = {"epochs": 0, "started_from": start_from.name}
    if config.final_sparsity > 0:
        pruned, callbacks = prune_low_magnitude(model, final_sparsity=config.final_sparsity,
                                                steps_per_epoch=steps_per_epoch, epochs=config.prune_epochs,
                                                end_fraction=0.7)
        compile_and_fit(pruned, config.prune_epochs, config.learning_rate / 3, callbacks, stage="prune")
        model = strip_pruning(pruned)
    if config.qat_epochs > 0:
        qat = quantization_aware(model, preserve_sparsity=config.final_sparsity > 0)
        compile_and_fit(qat, config.qat_epochs, config.learning_rate / 10, stage="QAT")
        model = qat
    history["train_seconds"] = time.perf_counter() - started
    return model, spec, history


def _EpochProgress(stage: str, epochs: int):
    """A one-line progress display on stderr: epoch, validation MAE per feature."""
    from train.keras_env import keras

    class EpochProgress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            mae = np.atleast_1d((logs or {}).get("val_mae", []))
            shown = " / ".join(f"{value:.3f}" for value in mae)
            print(f"\r  {stage} epoch {epoch + 1}/{epochs}: validation MAE {shown}   ", end="", file=sys.stderr,
                  flush=True)

        def on_train_end(self, logs=None):
            print(file=sys.stderr)

    return EpochProgress()


def export_forecaster(model, spec: ForecastSpec, config: TrainConfig, data: PreparedData, path: Path,
                      *, extra_training: Optional[Dict] = None):
    """Export ``model`` to ``path`` with its sidecar (``results`` filled in later by :func:`write_results`)."""
    from pi_runtime.sidecar import new_sidecar
    from train.toolbox.export import export_model

    x_train, _ = training_arrays(data.parts["train"], spec)
    sidecar = new_sidecar("forecast", forecast=spec.to_sidecar(), training={
        **config.to_dict(), "data": Path(data.source).name, "resolution": data.resolution,
        "time_step_s": data.time_step_s, "windows": {name: part.counts.kept for name, part in data.parts.items()},
        **(extra_training or {})})
    quantization = config.quantization
    return export_model(model, path, quantization=quantization, representative_data=x_train,
                        int8_io=config.int8_io and quantization == "int8", per_channel=config.per_channel,
                        drop_io_reshapes=True, compress=config.compress, sidecar=sidecar)


def evaluate_file(path: Path, data: PreparedData, part: str = "test") -> Dict:
    """MAE per feature of the exported file on one part, through pi_runtime's loader (one invoke per window)."""
    from pi_runtime.model import load_model
    from train.forecast.metrics import mae_per_feature  # metrics loads TensorFlow: not at import

    forecaster = Forecaster(load_model(path, require_sidecar=True))
    windows = data.parts[part]
    started = time.perf_counter()
    predictions = forecaster.predict_many(windows.inputs, windows.timestamps_s)
    elapsed = time.perf_counter() - started
    return {
        "mae": mae_per_feature(predictions, windows.labels).tolist(),
        "windows": len(windows),
        "size_bytes": forecaster.model.size_bytes,
        "interpreter": forecaster.model.interpreter_name,
        "us_per_forecast": 1e6 * elapsed / max(1, len(windows)),
    }


def persistence_mae(data: PreparedData, part: str = "test") -> np.ndarray:
    """MAE of repeating the last reading for every step (the baseline every model must beat)."""
    from train.forecast.metrics import mae_per_feature

    windows = data.parts[part]
    return mae_per_feature(np.repeat(windows.inputs[:, -1:, :], data.out_steps, axis=1), windows.labels)


def write_results(path: Path, results: Dict) -> None:
    """Add measured ``results`` to the sidecar beside ``path``."""
    from pi_runtime.sidecar import read_sidecar, write_sidecar

    sidecar = read_sidecar(path)
    sidecar["results"] = results
    write_sidecar(path, sidecar)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
