"""Multi-step, multi-output MAE in physical units, exact over a whole dataset."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from train.keras_env import keras, tf


class MultiStepMAE(keras.metrics.Metric):
    """Mean absolute error per feature, averaged over batch and steps, de-normalised.

    The model works in normalised units (``(x - mean) / std``); an error of ``e``
    there is ``e * std`` in degrees C or % RH. The mean cancels in a
    difference, so only ``std`` is needed, and the same holds when the model
    predicts the change from the last reading (``target="delta"``): the error of
    the change is the error of the value.

    The state is the per-feature sum of absolute errors and the number of
    (example, step) pairs, so the result is exact over the whole dataset, with
    any batch sizes (not a mean of batch means).

    Parameters
    ----------
    std : per-feature standard deviation used for normalisation, shape [features].
    feature_names : optional names, only for display.

    ``result()`` has shape [features], e.g. [T MAE in degC, RH MAE in %].
    """

    def __init__(self, std: Sequence[float], feature_names: Sequence[str] = (), name: str = "mae", **kwargs):
        super().__init__(name=name, **kwargs)
        self.std_values = [float(s) for s in np.asarray(std, dtype=np.float64).reshape(-1)]
        self.feature_names = list(feature_names)
        features = len(self.std_values)
        self.std = tf.constant(self.std_values, dtype=tf.float32)
        self.error_sum = self.add_weight(name="error_sum", shape=(features,), initializer="zeros", dtype=tf.float64)
        self.count = self.add_weight(name="count", shape=(), initializer="zeros", dtype=tf.float64)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """``y_true``, ``y_pred``: [batch, steps, features] (normalised units)."""
        if sample_weight is not None:
            raise ValueError("MultiStepMAE does not support sample weights")
        y_true = tf.convert_to_tensor(y_true, tf.float32)
        y_pred = tf.cast(y_pred, tf.float32)
        y_true.shape.assert_has_rank(3)
        errors = tf.abs(y_pred - y_true) * self.std  # [batch, steps, features]
        self.error_sum.assign_add(tf.cast(tf.reduce_sum(errors, axis=[0, 1]), tf.float64))
        pairs = tf.shape(errors)[0] * tf.shape(errors)[1]
        self.count.assign_add(tf.cast(pairs, tf.float64))

    def result(self):
        return tf.cast(tf.math.divide_no_nan(self.error_sum, self.count), tf.float32)

    def reset_state(self):
        self.error_sum.assign(tf.zeros_like(self.error_sum))
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "std": self.std_values, "feature_names": self.feature_names}


def mae_per_feature(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """NumPy reference: mean |predictions - labels| over all axes but the last -> [features]."""
    predictions, labels = np.asarray(predictions, np.float64), np.asarray(labels, np.float64)
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {predictions.shape} and labels {labels.shape} differ in shape")
    if predictions.size == 0:
        raise ValueError("no predictions to score")
    return np.abs(predictions - labels).reshape(-1, labels.shape[-1]).mean(axis=0)
