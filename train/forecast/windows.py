"""Windows for multi-step forecasting: ``input_width`` past rows in, ``out_steps`` next rows out.

A window is the ``input_width + out_steps`` consecutive rows starting at some
row. It is kept only if every step inside it is exactly one time step (so no
clock jump back, duplicated block, or gap) and every row in it is valid; the
others are dropped and counted by reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from train.forecast.data import JenaRecord, Normalisation


@dataclass(frozen=True)
class WindowCounts:
    """How many windows a part of the record yielded and why others were dropped.

    ``dropped_time`` counts windows with an irregular step (gap, jump back,
    duplicate); ``dropped_invalid`` those with a regular time axis but an invalid row.
    """

    kept: int
    dropped_time: int
    dropped_invalid: int

    @property
    def total(self) -> int:
        return self.kept + self.dropped_time + self.dropped_invalid

    def describe(self) -> str:
        return (f"{self.kept} windows kept, {self.dropped_time} dropped across clock jumps/gaps, "
                f"{self.dropped_invalid} dropped for invalid values")


def _windows_with_all(flags: np.ndarray, length: int) -> np.ndarray:
    """For each start i, whether flags[i : i + length] are all True (bool [len(flags) - length + 1])."""
    bad = np.concatenate([[0], np.cumsum(~flags)])
    return (bad[length:] - bad[:-length]) == 0


def window_starts(
    timestamps_s: np.ndarray, valid: np.ndarray, *, window_length: int, time_step_s: int
) -> Tuple[np.ndarray, WindowCounts]:
    """Row indices where a clean window of ``window_length`` rows starts.

    Returns
    -------
    starts : int64 [kept]
    counts : WindowCounts
    """
    n = len(timestamps_s)
    if window_length < 1:
        raise ValueError(f"window_length must be >= 1, got {window_length}")
    if n < window_length:
        return np.zeros(0, np.int64), WindowCounts(0, 0, 0)
    regular_steps = np.diff(np.asarray(timestamps_s, np.int64)) == time_step_s  # [n - 1]
    time_ok = _windows_with_all(regular_steps, window_length - 1) if window_length > 1 else np.ones(n, bool)
    values_ok = _windows_with_all(np.asarray(valid, bool), window_length)
    keep = time_ok & values_ok
    counts = WindowCounts(int(keep.sum()), int((~time_ok).sum()), int((time_ok & ~values_ok).sum()))
    return np.flatnonzero(keep).astype(np.int64), counts


@dataclass
class Windows:
    """Inputs and labels cut from one part of the record (normalised units).

    Attributes
    ----------
    inputs : float32 [windows, input_width, features]
    labels : float32 [windows, out_steps, features], the true next values
    counts : WindowCounts
    last_timestamps_s : int64 [windows], time of each window's last input row
    """

    inputs: np.ndarray
    labels: np.ndarray
    counts: WindowCounts
    last_timestamps_s: np.ndarray

    def __len__(self) -> int:
        return len(self.inputs)

    def targets(self, target: str) -> np.ndarray:
        """Labels for training: the values, or for ``"delta"`` their change from the last input."""
        if target == "value":
            return self.labels
        if target == "delta":
            return self.labels - self.inputs[:, -1:, :]
        raise ValueError(f"target must be 'value' or 'delta', got {target!r}")


def make_windows(
    record: JenaRecord,
    normalisation: Optional[Normalisation],
    *,
    input_width: int = 6,
    out_steps: int = 6,
    time_step_s: Optional[int] = None,
) -> Windows:
    """Cut all clean windows of ``record``.

    Parameters
    ----------
    record : one part of the record (e.g. the training split).
    normalisation : statistics applied to inputs and labels; None keeps raw units.
    input_width, out_steps : rows in and rows out.
    time_step_s : the regular step; by default the record's own.
    """
    if input_width < 1 or out_steps < 1:
        raise ValueError(f"input_width and out_steps must be >= 1, got {input_width}, {out_steps}")
    step = time_step_s if time_step_s is not None else record.time_step_s
    length = input_width + out_steps
    starts, counts = window_starts(record.timestamps_s, record.valid, window_length=length, time_step_s=step)
    values = record.values if normalisation is None else normalisation.apply(record.values)
    rows = starts[:, None] + np.arange(length)[None, :]  # [windows, length]
    cut = values[rows] if len(starts) else np.zeros((0, length, values.shape[1]), np.float32)
    return Windows(
        inputs=np.ascontiguousarray(cut[:, :input_width], dtype=np.float32),
        labels=np.ascontiguousarray(cut[:, input_width:], dtype=np.float32),
        counts=counts,
        last_timestamps_s=record.timestamps_s[starts + input_width - 1] if len(starts) else np.zeros(0, np.int64),
    )


def to_dataset(inputs: np.ndarray, targets: np.ndarray, *, batch_size: int = 32, shuffle: bool = False,
               seed: int = 0):
    """A batched ``tf.data.Dataset`` of (inputs, targets), e.g. labels [32, 6, 2]."""
    from train.keras_env import tf

    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
    if shuffle:
        dataset = dataset.shuffle(len(inputs), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
