"""Polyphase rational resampling that equals ``scipy.signal.resample_poly``, one-shot and streaming.

The filter is scipy's default design, written here with numpy only: a
Kaiser-windowed (beta 5) sinc low-pass of ``2 * half_len + 1`` taps,
``half_len = 10 * max(up, down)``, cutoff ``1 / max(up, down)`` of Nyquist,
normalised to unit DC gain and scaled by ``up``, after ``up / down`` is reduced
by their gcd. Output sample ``m`` sits at input time ``m * down / up``, so
``resample_poly(x, up, down)`` has ``ceil(len(x) * up / down)`` samples aligned
with scipy's.

The C code computes only the output samples that are kept (no upsampled
signal, no discarded outputs), in float32 with the GIL released: the input is
split by ``down`` so that, for the outputs sharing a filter phase, each tap is
one vectorised multiply-add over many outputs (see ``src/resample.h``).

Examples
--------
>>> up, down = ratio_for(48000, 16000)               # (1, 3)
>>> y = resample_poly(audio_48k, up, down)           # float32, len ceil(len/3)
>>> stream = Resampler(up, down)
>>> parts = [stream.process(chunk) for chunk in chunks] + [stream.flush()]
>>> np.allclose(np.concatenate(parts), y, atol=1e-6)  # same samples, no shift
True
"""
from __future__ import annotations

import functools
import math
from typing import Tuple

import numpy as np

from native.checks import positive_int, raise_for_samples
from native._resample import TAP_BLOCK, ResamplerCore, resample_batch, scan_samples

__all__ = ["resample_poly", "Resampler", "ratio_for", "polyphase_phases"]

KAISER_BETA = 5.0         # scipy.signal.resample_poly's default window ("kaiser", 5.0)
HALF_LEN_PER_RATE = 10    # scipy: half_len = 10 * max(up, down)
# Largest reduced up or down factor: the filter has 20 * max(up, down) + 1 taps,
# so at most 327681 (1.3 MB in float32, ~15 MB while it is designed in float64).
# Every common pair of rates is far below (44.1 kHz -> 16 kHz: 160 / 441); an
# odd rate such as 767999 Hz -> 16 kHz (16000 / 767999) is refused.
MAX_RATE = 1 << 14
_INT16_SCALE = np.float32(1.0 / 32768.0)


def _reduced(up, down) -> Tuple[int, int]:
    """Validated ``(up, down)`` divided by their gcd, small enough to design a filter for."""
    up, down = positive_int(up, "up"), positive_int(down, "down")
    divisor = math.gcd(up, down)
    up, down = up // divisor, down // divisor
    if max(up, down) > MAX_RATE:
        raise ValueError(f"ratio {up}/{down} is too fine to resample: reduced up and down must be <= {MAX_RATE} "
                         f"(its filter would have {20 * max(up, down) + 1} taps)")
    return up, down


def ratio_for(from_hz: int, to_hz: int) -> Tuple[int, int]:
    """The reduced ``(up, down)`` that resamples ``from_hz`` to ``to_hz``.

    >>> ratio_for(48000, 16000), ratio_for(44100, 48000)
    ((1, 3), (160, 147))

    Raises
    ------
    ValueError
        When either rate is not a positive integer, or when the reduced factors
        exceed ``MAX_RATE`` (16384): their filter would be too large (e.g.
        767999 Hz to 16000 Hz, 16000 / 767999).
    """
    from_hz, to_hz = positive_int(from_hz, "from_hz"), positive_int(to_hz, "to_hz")
    divisor = math.gcd(from_hz, to_hz)
    up, down = to_hz // divisor, from_hz // divisor
    if max(up, down) > MAX_RATE:
        raise ValueError(f"cannot resample {from_hz} Hz to {to_hz} Hz: the reduced ratio {up}/{down} needs a "
                         f"filter of {20 * max(up, down) + 1} taps (at most {20 * MAX_RATE + 1}); "
                         "convert the audio to a common rate first")
    return up, down


def _lowpass(up: int, down: int) -> np.ndarray:
    """``scipy.signal.firwin(2 * half_len + 1, 1 / max_rate, window=("kaiser", 5.0))``, in numpy."""
    max_rate = max(up, down)
    half_len = HALF_LEN_PER_RATE * max_rate
    cutoff = 1.0 / max_rate  # relative to Nyquist
    offsets = np.arange(-half_len, half_len + 1, dtype=np.float64)
    taps = cutoff * np.sinc(cutoff * offsets) * np.kaiser(2 * half_len + 1, KAISER_BETA)
    return taps / taps.sum()  # unit gain at DC, as firwin scales a low-pass


def design_filter(up: int, down: int) -> np.ndarray:
    """The prototype low-pass filter of :func:`resample_poly` for ``up / down``, in float64.

    Same as ``scipy.signal.firwin(2 * half_len + 1, 1 / max(up, down),
    window=("kaiser", 5.0)) * up`` with ``half_len = 10 * max(up, down)``,
    after ``up`` and ``down`` are reduced by their gcd.

    Returns
    -------
    numpy.ndarray, float64, shape (2 * half_len + 1,)
    """
    up, down = _reduced(up, down)
    return _lowpass(up, down) * up


@functools.lru_cache(maxsize=16)
def polyphase_phases(up: int, down: int) -> Tuple[int, np.ndarray]:
    """(half_len, phases): the float32 filter split into ``up`` rows for the C kernel
    (of :class:`Resampler` and of ``native.feature_stream``), cached, read-only.

    Output ``m`` has phase ``p = (m * down + half_len) % up`` and meets input
    sample ``base - j`` with tap ``h[p + up * j]``, ``base = (m * down +
    half_len) // up``. Row ``p`` holds those taps reversed (oldest input
    first), padded at the front with zero taps to a multiple of the kernel's
    block, so an output is one dot product with consecutive input samples.
    """
    half_len = HALF_LEN_PER_RATE * max(up, down)
    # Round to float32, then scale in float32: scipy's own steps for float32 input.
    h = _lowpass(up, down).astype(np.float32) * np.float32(up)
    taps_per_phase = -(-h.size // up)
    taps_per_phase = -(-taps_per_phase // TAP_BLOCK) * TAP_BLOCK
    padded = np.zeros(up * taps_per_phase, dtype=np.float32)
    padded[: h.size] = h
    index = np.arange(up)[:, None] + up * np.arange(taps_per_phase - 1, -1, -1)[None, :]
    phases = np.ascontiguousarray(padded[index])
    phases.flags.writeable = False
    return half_len, phases


def _audio(x, name: str = "x") -> np.ndarray:
    """1-D contiguous float32 from int16 (scaled by 1/32768) or float32, checked (see native.checks)."""
    samples = np.asarray(x)
    if samples.ndim != 1:
        raise ValueError(f"{name} must be 1-D mono audio, got shape {samples.shape}")
    if samples.dtype == np.int16:
        return samples.astype(np.float32) * _INT16_SCALE
    if samples.dtype != np.float32:
        raise ValueError(f"{name} must be int16 or float32, got dtype {samples.dtype}")
    samples = np.ascontiguousarray(samples)
    raise_for_samples(scan_samples(samples), name)
    return samples


def resample_poly(x, up: int, down: int) -> np.ndarray:
    """Resample by ``up / down``, equal to ``scipy.signal.resample_poly(x, up, down)``.

    Parameters
    ----------
    x : numpy.ndarray, int16 or float32, shape (n,)
        Mono audio; int16 is scaled by 1/32768 (as ``tf.audio.decode_wav``).
    up, down : int
        Positive integers; only their ratio matters (reduced by their gcd).

    Returns
    -------
    numpy.ndarray, float32, shape (ceil(n * up / down),)
        Output sample ``m`` is the band-limited input at time ``m * down / up``
        (samples before 0 and after ``n - 1`` count as zeros). Equal to scipy's
        result within float32 rounding; a copy of ``x`` when ``up == down``.

    Raises
    ------
    ValueError
        For a non-1-D ``x``, a dtype other than int16/float32, NaN or infinite
        values, or ``up``/``down`` that are not positive integers.
    """
    up, down = _reduced(up, down)
    samples = _audio(x)
    if up == down:
        return samples.copy()
    n_out = -(-samples.size * up // down)
    half_len, phases = polyphase_phases(up, down)
    out = np.empty(n_out, dtype=np.float32)
    resample_batch(samples, up, down, half_len, phases, out)
    return out


class Resampler:
    """Streaming :func:`resample_poly`: push chunks of any size, get the samples that became ready.

    Relation to the one-shot form (the same float32 arithmetic per output, so
    equal bit for bit in practice; tested to 1e-6 of the peak)::

        np.concatenate([r.process(c) for c in chunks] + [r.flush()])
            == resample_poly(np.concatenate(chunks), up, down)

    The stream's output is not shifted: its sample ``m`` *is* the batch
    sample ``m``. It is only late: output ``m`` needs the input up to sample
    ``(m * down + half_len) // up``, so after ``n`` input samples the stream
    has produced between ``ceil(n * up / down) - delay_samples`` and
    ``ceil(n * up / down)`` samples (``half_len = 10 * max(up, down)``).

    Parameters
    ----------
    up, down : int
        Positive integers, reduced by their gcd (see :func:`ratio_for`).
    """

    def __init__(self, up: int, down: int):
        self._up, self._down = _reduced(up, down)
        if self._up == self._down:
            self._core = None  # identity: chunks pass through
            self._half_len = 0
        else:
            self._half_len, phases = polyphase_phases(self._up, self._down)
            self._core = ResamplerCore(self._up, self._down, self._half_len, phases)

    @property
    def up(self) -> int:
        """Reduced upsampling factor."""
        return self._up

    @property
    def down(self) -> int:
        """Reduced downsampling factor."""
        return self._down

    @property
    def delay_samples(self) -> int:
        """Output samples the stream may still owe for the input so far: ``ceil(half_len / down)``.

        The lag of the stream behind the one-shot output of the same input, at
        most (e.g. 10 samples, 0.625 ms, for 48 kHz -> 16 kHz). The alignment
        shift between the two is zero.
        """
        return -(-self._half_len // self._down)

    def process(self, chunk) -> np.ndarray:
        """Consume a chunk, return the output samples that became ready.

        Parameters
        ----------
        chunk : numpy.ndarray, int16 or float32, shape (k,)
            The next ``k`` input samples (``k`` may be 0).

        Returns
        -------
        numpy.ndarray, float32, shape (j,)
            The next ``j`` output samples, possibly none.
        """
        samples = _audio(chunk, "chunk")
        if self._core is None:
            return samples.copy()
        return self._core.process(samples)

    def flush(self) -> np.ndarray:
        """End the stream: the samples still owed, as if silence followed; then :meth:`reset`.

        Returns
        -------
        numpy.ndarray, float32, shape (j,), ``j <= delay_samples``
        """
        if self._core is None:
            return np.zeros(0, dtype=np.float32)
        return self._core.flush()

    def reset(self) -> None:
        """Start a new stream: forget all input (what follows is preceded by silence)."""
        if self._core is not None:
            self._core.reset()

    def __repr__(self) -> str:
        return f"Resampler(up={self._up}, down={self._down})"
