"""Magnitude pruning with tfmot's PolynomialDecay schedule, and sparsity measurement.

Typical use::

    pruned, callbacks = prune_low_magnitude(model, final_sparsity=0.5,
                                            steps_per_epoch=len(train_ds), epochs=10)
    pruned.compile(...); pruned.fit(train_ds, epochs=10, callbacks=callbacks)
    model = strip_pruning(pruned)
    weight_sparsity(model)            # ~0.5
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np
import tensorflow_model_optimization as tfmot

from train.keras_env import keras


@dataclass(frozen=True)
class PruningSchedule:
    """PolynomialDecay parameters in optimizer steps, derived from fractions of training.

    Attributes
    ----------
    initial_sparsity, final_sparsity : fraction of zero weights at ``begin_step`` / from ``end_step`` on.
    begin_step, end_step : first and last step at which the masks are updated.
    frequency_steps : masks are updated every this many steps; ``end_step - begin_step``
        is a multiple of it, so the final update reaches ``final_sparsity`` exactly.
    """

    initial_sparsity: float
    final_sparsity: float
    begin_step: int
    end_step: int
    frequency_steps: int

    def to_tfmot(self):
        return tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=self.initial_sparsity,
            final_sparsity=self.final_sparsity,
            begin_step=self.begin_step,
            end_step=self.end_step,
            frequency=self.frequency_steps,
        )


def polynomial_decay_schedule(
    *,
    final_sparsity: float,
    steps_per_epoch: int,
    epochs: int,
    initial_sparsity: float = 0.0,
    begin_fraction: float = 0.0,
    end_fraction: float = 1.0,
    updates: int = 10,
) -> PruningSchedule:
    """Turn fractions of training into a :class:`PruningSchedule`.

    Parameters
    ----------
    final_sparsity : target fraction of zero weights, in [0, 1).
    steps_per_epoch, epochs : length of the fine-tuning run.
    initial_sparsity : sparsity at the first mask update.
    begin_fraction, end_fraction : where in training (0 = first step, 1 = last step)
        the sparsity ramp starts and ends.
    updates : about how many mask updates over the ramp (sparsity rises in that many stairs).
    """
    if not 0.0 <= initial_sparsity <= final_sparsity < 1.0:
        raise ValueError(f"need 0 <= initial_sparsity <= final_sparsity < 1, got {initial_sparsity}, {final_sparsity}")
    if not 0.0 <= begin_fraction < end_fraction <= 1.0:
        raise ValueError(f"need 0 <= begin_fraction < end_fraction <= 1, got {begin_fraction}, {end_fraction}")
    if steps_per_epoch < 1 or epochs < 1:
        raise ValueError(f"steps_per_epoch and epochs must be >= 1, got {steps_per_epoch}, {epochs}")
    last_step = steps_per_epoch * epochs - 1  # tfmot counts steps from 0
    begin_step = int(round(begin_fraction * last_step))
    end_step = max(begin_step, int(round(end_fraction * last_step)))
    span = end_step - begin_step
    frequency = max(1, span // max(1, updates))
    end_step = begin_step + frequency * (span // frequency) if span else begin_step
    return PruningSchedule(initial_sparsity, final_sparsity, begin_step, end_step, frequency)


def prune_low_magnitude(
    model,
    *,
    final_sparsity: float,
    steps_per_epoch: int,
    epochs: int,
    initial_sparsity: float = 0.0,
    begin_fraction: float = 0.0,
    end_fraction: float = 1.0,
) -> Tuple["keras.Model", List["keras.callbacks.Callback"]]:
    """Wrap every prunable layer of ``model`` for magnitude pruning.

    Layers tfmot cannot prune (no weights, or unsupported types) are kept as they are.

    Returns
    -------
    (pruned_model, callbacks) : compile and fit ``pruned_model`` with ``callbacks``
        (``UpdatePruningStep``), then :func:`strip_pruning` before export.
    """
    schedule = polynomial_decay_schedule(
        final_sparsity=final_sparsity, steps_per_epoch=steps_per_epoch, epochs=epochs,
        initial_sparsity=initial_sparsity, begin_fraction=begin_fraction, end_fraction=end_fraction,
    ).to_tfmot()

    def wrap(layer):
        if not layer.trainable_weights:
            return layer
        try:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        except ValueError:  # a layer type tfmot does not know how to prune
            return layer

    # tfmot wraps the layer objects it is given (sharing their weights): wrap a copy,
    # so that the caller's model is left untouched.
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    pruned = keras.models.clone_model(copy, clone_function=wrap)
    return pruned, [tfmot.sparsity.keras.UpdatePruningStep()]


def _short_name(name: str) -> str:
    """``model/dense/kernel:0`` and ``prune_low_magnitude_dense/kernel:0`` -> ``kernel``."""
    return name.split("/")[-1].split(":")[0]


def strip_pruning(model):
    """Remove the pruning wrappers (keeps the zeroed weights); needed before export."""
    return tfmot.sparsity.keras.strip_pruning(model)


def _is_pruned_weight_name(name: str) -> bool:
    return _short_name(name).endswith("kernel")


def layer_sparsity(model) -> Dict[str, float]:
    """Fraction of exact zeros in each kernel (dense, conv, recurrent) weight of a Keras model."""
    return {
        weight.name: float(np.mean(value == 0))
        for weight, value in zip(model.weights, model.get_weights())
        if _is_pruned_weight_name(weight.name) and value.size
    }


def weight_sparsity(model_or_file: Union["keras.Model", str, Path, bytes]) -> float:
    """Fraction of exact zeros over all kernel weights.

    Parameters
    ----------
    model_or_file : a Keras model (kernels of dense, conv and recurrent layers),
        or a ``.tflite`` / ``.tflite.zlib`` path or flatbuffer bytes (constant
        tensors of rank >= 2, i.e. weights without biases and shape constants;
        int8 weights are symmetric, so a pruned weight is stored as 0).
    """
    if isinstance(model_or_file, (str, Path, bytes, bytearray)):
        from train.toolbox.tflite_slim import constant_tensors

        from pi_runtime.model import read_model_bytes

        data = model_or_file if isinstance(model_or_file, (bytes, bytearray)) else read_model_bytes(model_or_file)
        arrays = [tensor["values"] for tensor in constant_tensors(bytes(data)) if len(tensor["shape"]) >= 2]
    else:
        arrays = [value for weight, value in zip(model_or_file.weights, model_or_file.get_weights())
                  if _is_pruned_weight_name(weight.name)]
    total = sum(array.size for array in arrays)
    if total == 0:
        raise ValueError("the model has no kernel weights to measure")
    return float(sum(np.count_nonzero(array == 0) for array in arrays)) / total


def pruning_summary(model) -> str:
    """One line per kernel: name, shape-free sparsity in percent."""
    return "\n".join(f"{name}: {100 * value:.1f} % zeros" for name, value in layer_sparsity(model).items()) or "(no kernels)"

