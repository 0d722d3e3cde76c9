"""Native ring buffers for live audio and for sliding windows of feature or sensor rows.

:class:`AudioRing` carries audio from an audio callback thread (the producer)
to a processing thread (the consumer) without locks and without ever blocking
the callback: what does not fit is dropped and counted, never silently lost.

:class:`RowRing` keeps the last ``rows`` rows of a fixed width: the last second
of feature frames in live listening, the last readings of the sensors for the
forecaster. Its snapshot is contiguous and oldest first, ready for a model.

Both copy with ``memcpy`` (at most two pieces) in C with the GIL released.

Examples
--------
>>> ring = AudioRing(4)
>>> ring.write(np.arange(6, dtype=np.float32))   # two samples do not fit
4
>>> ring.overrun_samples, ring.read(3)
(2, array([0., 1., 2.], dtype=float32))
"""
from __future__ import annotations

import operator
from typing import Optional

import numpy as np

from native.checks import positive_int
from native._ring import AudioRingCore, RowRingCore, audio_ring_max_capacity

__all__ = ["AudioRing", "RowRing"]

_INT16_SCALE = np.float32(1.0 / 32768.0)  # as tf.audio.decode_wav scales 16-bit PCM


def _mono_float32(chunk) -> np.ndarray:
    """1-D contiguous float32 view or copy of a mono chunk (int16 is scaled by 1/32768)."""
    samples = np.asarray(chunk)
    if samples.ndim == 2 and samples.shape[1] == 1:  # sounddevice delivers (frames, channels)
        samples = samples[:, 0]
    elif samples.ndim != 1:
        raise ValueError(
            f"audio must be mono: shape (n,) or (n, 1), got shape {samples.shape}"
            + (" (more than one channel)" if samples.ndim == 2 else "")
        )
    if samples.dtype == np.int16:
        return samples.astype(np.float32) * _INT16_SCALE
    if samples.dtype != np.float32:
        raise ValueError(f"audio must be int16 or float32, got dtype {samples.dtype}")
    return np.ascontiguousarray(samples)


class AudioRing:
    """Single-producer/single-consumer ring of float32 audio samples.

    Exactly one thread may call :meth:`write` (the producer, e.g. the audio
    callback) and exactly one other thread :meth:`read`, :meth:`read_into` and
    :meth:`clear` (the consumer); :attr:`available` and the overrun counters
    may be read from either. The two sides synchronise through atomic
    positions (acquire/release) only, so neither ever waits for the other.

    Parameters
    ----------
    capacity_samples : int
        Samples the ring holds, e.g. ``2 * 48000`` for two seconds at 48 kHz.
    """

    def __init__(self, capacity_samples: int):
        capacity = positive_int(capacity_samples, "capacity_samples")
        if capacity > audio_ring_max_capacity():
            raise ValueError(f"capacity_samples {capacity} is too large")
        self._core = AudioRingCore(capacity)
        self._capacity = capacity

    @property
    def capacity(self) -> int:
        """Samples the ring can hold."""
        return self._capacity

    @property
    def available(self) -> int:
        """Samples waiting to be read (a lower bound while the producer runs)."""
        return self._core.available

    @property
    def overrun_samples(self) -> int:
        """Samples dropped by :meth:`write` because the ring was full, since creation."""
        return self._core.overrun_samples

    @property
    def overrun_events(self) -> int:
        """Calls of :meth:`write` that dropped at least one sample, since creation."""
        return self._core.overrun_events

    def write(self, chunk) -> int:
        """Producer: append a chunk without blocking.

        Parameters
        ----------
        chunk : array_like, int16 or float32, shape (n,) or (n, 1)
            Mono audio; int16 is scaled by 1/32768. Values are passed on
            unchanged (NaN included: the resampler and frontend reject them).

        Returns
        -------
        int
            Samples accepted: the first ones of the chunk. The rest did not fit;
            they are dropped and added to :attr:`overrun_samples`.
        """
        return self._core.write(_mono_float32(chunk))

    def read(self, max_samples: int) -> np.ndarray:
        """Consumer: take up to ``max_samples`` of the oldest samples.

        Returns
        -------
        numpy.ndarray, float32, shape (k,)
            ``k = min(max_samples, available)`` samples, oldest first; ``k`` may be 0.
        """
        if isinstance(max_samples, bool):
            raise ValueError(f"max_samples must be a non-negative integer, got {max_samples!r}")
        try:
            limit = operator.index(max_samples)
        except TypeError:
            raise ValueError(f"max_samples must be a non-negative integer, got {max_samples!r}") from None
        if limit < 0:
            raise ValueError(f"max_samples must be a non-negative integer, got {limit}")
        out = np.empty(min(limit, self._core.available), dtype=np.float32)
        taken = self._core.read_into(out)
        return out[:taken]

    def read_into(self, out: np.ndarray) -> int:
        """Consumer: fill ``out`` (float32, 1-D, contiguous, writable) with up to ``len(out)`` samples.

        Returns the number of samples written to ``out[:k]``, oldest first.
        """
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.ndim != 1:
            raise ValueError("out must be a 1-D float32 numpy array")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be contiguous and writable")
        return self._core.read_into(out)

    def clear(self) -> int:
        """Consumer: drop every sample waiting to be read; return how many. Counters are kept."""
        return self._core.discard()

    def __repr__(self) -> str:
        return (
            f"AudioRing(capacity_samples={self._capacity}, available={self.available}, "
            f"overrun_samples={self.overrun_samples})"
        )


class RowRing:
    """The last ``rows`` rows of width ``cols``, as a contiguous float32 window.

    Not thread-safe: one thread pushes and takes snapshots.

    Parameters
    ----------
    rows : int
        Rows kept, e.g. the 49 feature frames of one second, or the 6 readings
        the forecaster looks back on.
    cols : int
        Width of a row, e.g. the number of MFCCs or of sensor channels.
    """

    def __init__(self, rows: int, cols: int):
        self._rows = positive_int(rows, "rows")
        self._cols = positive_int(cols, "cols")
        if self._rows * self._cols > np.iinfo(np.intp).max // 4:
            raise ValueError(f"rows x cols = {self._rows} x {self._cols} is too large")
        self._core = RowRingCore(self._rows, self._cols)

    @property
    def rows(self) -> int:
        """Rows the window keeps."""
        return self._rows

    @property
    def cols(self) -> int:
        """Width of each row."""
        return self._cols

    @property
    def count(self) -> int:
        """Rows held: grows with each push, saturates at :attr:`rows`."""
        return self._core.count

    @property
    def is_full(self) -> bool:
        """True once :attr:`rows` rows have been pushed (since creation or :meth:`clear`)."""
        return self._core.count == self._rows

    @property
    def total_pushed(self) -> int:
        """Rows pushed since creation or the last :meth:`clear`, including those since dropped."""
        return self._core.total_pushed

    def push(self, block) -> None:
        """Append rows; only the newest :attr:`rows` rows are kept.

        Parameters
        ----------
        block : array_like, floating, shape (k, cols) or (cols,)
            ``k`` rows (``k`` may be 0 or larger than :attr:`rows`), or one row.
            Converted to float32.

        Raises
        ------
        ValueError
            Wrong width, shape or dtype; or a NaN or infinite value (a sensor
            window must not silently carry a missing reading into a model).
            Nothing is pushed then.
        """
        values = np.asarray(block)
        if values.dtype.kind != "f":
            raise ValueError(f"rows must be floating point (float32 preferred), got dtype {values.dtype}")
        if values.ndim == 1:
            values = values.reshape(1, -1)
        if values.ndim != 2 or values.shape[1] != self._cols:
            raise ValueError(f"expected a block of shape (k, {self._cols}) or ({self._cols},), got shape {np.shape(block)}")
        with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, refused below
            values = np.ascontiguousarray(values, dtype=np.float32)
        if not self._core.push(values):
            raise ValueError("rows contain NaN or infinite values (after conversion to float32); nothing was pushed")

    def snapshot(self, out: Optional[np.ndarray] = None) -> np.ndarray:
        """The held rows, oldest first.

        Parameters
        ----------
        out : numpy.ndarray, float32, shape (rows, cols), C-contiguous, optional
            Buffer to fill instead of allocating one (no allocation per call).

        Returns
        -------
        numpy.ndarray, float32, shape (count, cols)
            A copy of the window, oldest row first, C-contiguous. While the ring
            is not yet full it holds only the rows pushed so far (check
            :attr:`is_full` before feeding a model that needs ``rows`` rows).
            With ``out`` given, this is the view ``out[:count]``.
        """
        count = self._core.count
        if out is None:
            out = np.empty((count, self._cols), dtype=np.float32)
        elif (
            not isinstance(out, np.ndarray)
            or out.dtype != np.float32
            or out.shape != (self._rows, self._cols)
            or not out.flags.c_contiguous
            or not out.flags.writeable
        ):
            raise ValueError(f"out must be a writable C-contiguous float32 array of shape ({self._rows}, {self._cols})")
        self._core.snapshot_into(out)
        return out[:count]

    def clear(self) -> None:
        """Forget every row (count and total_pushed restart from 0)."""
        self._core.clear()

    def __repr__(self) -> str:
        return f"RowRing(rows={self._rows}, cols={self._cols}, count={self.count})"
