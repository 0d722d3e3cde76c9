"""Per-window post-processing of live keyword spotting: softmax and posterior smoothing.

A model gives a handful of outputs per window (8 to 10 labels); numpy's cost
per call would be most of the work, so the loops run natively, with exactly
numpy's float arithmetic: the results are the bits numpy gives.

* :func:`softmax`: ``exp(x - max(x)) / sum`` in float32, the sum in
  ``np.add.reduce``'s order (:func:`sum_like_numpy`), the exponential
  numpy's own ``np.exp``;
* :class:`PosteriorSmoother`: the mean of the last ``windows`` probability
  vectors as a running float64 sum, and the label with the largest mean;
  each vector may first be sharpened (raised to a power and renormalised).

Examples
--------
>>> smoother = PosteriorSmoother(windows=3, num_labels=8)
>>> best = smoother.push(softmax(model_outputs))   # index of the best smoothed label
>>> smoother.mean[best]                             # its smoothed posterior
"""
from __future__ import annotations

import math

import numpy as np

from native import _posteriors
from native.checks import positive_int

__all__ = ["MAX_LABELS", "PosteriorSmoother", "softmax", "sum_like_numpy"]

# numpy sums float32 pairwise in blocks of this many values; up to it the native
# sum reproduces numpy's order (longer vectors go through numpy itself).
MAX_LABELS: int = _posteriors.MAX_LABELS

_FLOAT32 = np.dtype(np.float32)


def sum_like_numpy(values: np.ndarray) -> float:
    """``float(np.add.reduce(values))`` for 1 to :data:`MAX_LABELS` float32 values, in numpy's order.

    Raises
    ------
    ValueError
        For another length or a value that is not 1-D float32.
    """
    values = np.asarray(values)
    if values.dtype != np.float32 or values.ndim != 1:
        raise ValueError(f"values must be 1-D float32, got {values.dtype} of shape {values.shape}")
    return _posteriors.sum_like_numpy(np.ascontiguousarray(values))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from one window's logits, float32[num_labels], a new array.

    Parameters
    ----------
    logits : array, shape (num_labels,) or (1, num_labels)
        Any float or integer dtype (converted to float32 first).

    Returns
    -------
    float32 array, shape (num_labels,)
        ``e = np.exp(x - x.max()); e / e.sum()`` in float32, bit for bit
        (shifted by the maximum: no overflow). NaN in, NaN out.

    Raises
    ------
    ValueError
        For an empty input.
    """
    if type(logits) is np.ndarray and logits.dtype is _FLOAT32:
        values = logits.reshape(-1).copy()  # a new array: the caller's logits stay as they are
    else:
        values = np.array(logits, dtype=np.float32).reshape(-1)
    if values.size == 0:
        raise ValueError("softmax of no values")
    if values.size > MAX_LABELS:  # beyond the native sum's order: numpy's own arithmetic
        np.subtract(values, values.max(), out=values)
        np.exp(values, out=values)
        values /= values.sum()
        return values
    _posteriors.shift_by_max(values, values)
    np.exp(values, out=values)
    _posteriors.normalise(values)
    return values


class PosteriorSmoother:
    """Mean of the last ``windows`` probability vectors, and the label with the largest.

    Parameters
    ----------
    windows : int
        Vectors averaged (1 = no smoothing); the mean is over the vectors held
        until ``windows`` have been pushed.
    num_labels : int
        Length of each vector.
    exponent : float
        Each vector is raised to this power and renormalised before it is
        added: above 1 sharper, below 1 flatter (a softmax at temperature
        ``1 / exponent``), 1 (default) as given. A vector of zeros stays
        zeros; a value under 0 (rounding in stored posteriors) counts as 0.

    The sum is kept in float64 (a running sum: one vector in, the oldest out),
    so long streams do not drift. Not thread-safe.
    """

    def __init__(self, windows: int, num_labels: int, exponent: float = 1.0) -> None:
        self.windows = positive_int(windows, "windows")
        self.num_labels = positive_int(num_labels, "num_labels")
        try:
            self.exponent = float(exponent)
        except (TypeError, ValueError):
            raise ValueError(f"exponent must be a positive number, got {exponent!r}") from None
        if not 0.0 < self.exponent < math.inf:
            raise ValueError(f"exponent must be a positive number, got {exponent!r}")
        self._history = np.zeros((self.windows, self.num_labels), np.float64)
        self._total = np.zeros(self.num_labels, np.float64)
        self._mean = np.zeros(self.num_labels, np.float64)
        self._core = _posteriors.PosteriorSmoother(self._history, self._total, self._mean, self.exponent)

    def push(self, probabilities: np.ndarray) -> int:
        """Add one window's probabilities; return the index of the largest mean (the first on a tie).

        Parameters
        ----------
        probabilities : array, shape (num_labels,)
            float32 or float64 (other dtypes are converted to float64).

        Raises
        ------
        ValueError
            For another shape, or a NaN or infinite value (nothing is added).
        """
        try:  # the live path: contiguous float32 or float64, checked by the native call itself
            return self._core.push(probabilities)
        except (ValueError, TypeError):
            values = np.asarray(probabilities)
            if values.shape != (self.num_labels,):
                raise ValueError(f"{values.size} probabilities (shape {values.shape}) "
                                 f"for {self.num_labels} labels") from None
            return self._core.push(np.ascontiguousarray(values, dtype=np.float64))

    @property
    def mean(self) -> np.ndarray:
        """float64[num_labels]: the mean of the vectors held, updated in place by :meth:`push`
        (copy it to keep it); zeros before the first push."""
        return self._mean

    def clear(self) -> None:
        """Forget every vector pushed (the mean keeps its last values until the next push)."""
        self._core.clear()
