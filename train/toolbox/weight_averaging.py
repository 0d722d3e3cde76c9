"""An exponential moving average of a model's weights during training (Polyak averaging).

The weights of one step carry that step's noise; their running average sits
nearer the middle of the region training wanders in, and is often the better
model on unseen conditions (Polyak and Juditsky, 1992; Izmailov et al., 2018,
for the averaged weights of stochastic weight averaging). The trainable
weights and the batch-normalisation statistics are averaged; a pruning
wrapper's masks, thresholds and step counter are not (the pruned kernels stay
zero where their final mask is, once it is final)::

    average = WeightAverage(decay=0.999)
    model.fit(x, y, callbacks=[average])
    with average.swapped_in():          # evaluate or save the averaged model
        accuracy = evaluate(model)
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, List

import numpy as np

from train.keras_env import keras

# Batch normalisation's running statistics: not trainable, but part of what the model computes.
_AVERAGED_STATISTICS = ("moving_mean", "moving_variance")


def averaged_variables(model) -> List:
    """The variables an average covers: the trainable ones and the batch-norm statistics."""
    return [variable for variable in model.weights
            if variable.trainable or any(name in variable.name for name in _AVERAGED_STATISTICS)]


class WeightAverage(keras.callbacks.Callback):
    """After every training batch, ``average = d * average + (1 - d) * weights``.

    ``d = min(decay, (1 + n) / (10 + n))`` at the n-th step averaged (the
    warm-up of TensorFlow's ``ExponentialMovingAverage``): early on the
    average follows the weights closely instead of dragging the random
    initial ones along for thousands of steps. It starts from the weights at
    the first batch it sees and can be restarted with :meth:`reset`, e.g. once
    pruning masks are final. ``decay`` 0.999 averages over about the last
    thousand steps.
    """

    def __init__(self, decay: float) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.averages: List[np.ndarray] = []
        self.steps = 0
        self.variables: List = []

    def set_model(self, model) -> None:
        super().set_model(model)
        self.variables = averaged_variables(model)  # found once, not on every batch

    def reset(self) -> None:
        """Forget the average; the next batch starts a new one."""
        self.averages, self.steps = [], 0

    def on_train_batch_end(self, batch, logs=None) -> None:
        values = keras.backend.batch_get_value(self.variables)
        if not self.averages:
            self.averages = [np.array(value, dtype=np.float64) for value in values]
        else:
            decay = self.decay_at(self.steps)
            for average, value in zip(self.averages, values):
                average *= decay
                average += (1.0 - decay) * value
        self.steps += 1

    def decay_at(self, step: int) -> float:
        """The decay applied at the ``step``-th averaged step (0 is the first)."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Within the block the model holds the averaged weights; its own come back after."""
        if not self.averages:
            raise RuntimeError("no average yet: train at least one batch with this callback")
        own = keras.backend.batch_get_value(self.variables)
        keras.backend.batch_set_value([(variable, average.astype(variable.dtype.as_numpy_dtype))
                                       for variable, average in zip(self.variables, self.averages)])
        try:
            yield
        finally:
            keras.backend.batch_set_value(list(zip(self.variables, own)))
