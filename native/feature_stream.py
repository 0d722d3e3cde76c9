"""Live audio to feature windows, one native call per chunk.

:class:`FeatureStream` chains the streaming :class:`~native.resample.Resampler`,
the :class:`~native.frontend.StreamingFrontend` and a
:class:`~native.ring.RowRing` of the last ``window_rows`` frames in C (the same
C code, so the same frames bit for bit), and hands out the window every
``hop_frames`` frames. A hop of live audio then crosses from Python into C
once, plus once per window, instead of once per stage with an array in
between.

Examples
--------
>>> stream = FeatureStream(params, input_rate_hz=48000, window_rows=49, hop_frames=5)
>>> energy = stream.push(chunk)                   # float32 mono at 48 kHz
>>> while (frame := stream.next_window()) >= 0:
...     run_model(stream.window)                  # the window ending with frame `frame`

At the end of a file, :meth:`FeatureStream.flush` pushes what the resampler
still holds through the frontend, so that the last windows (and the window
ending at the file's last frame) are decided too::

>>> stream.flush()                                # frames the tail completed
>>> while (frame := stream.next_window()) >= 0:
...     run_model(stream.window)
>>> stream.reset()                                # before the next file
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from native import _feature_stream
from native.checks import positive_int
from native.frontend import frontend_config
from native.params import FrontendParams, checked_resize
from native.resample import polyphase_phases, ratio_for

__all__ = ["FeatureStream", "SILENCE_DBFS", "energy"]

# Level reported for digital silence (log of zero), low enough to sit below any gate.
SILENCE_DBFS = -150.0

_FLOAT32 = np.dtype(np.float32)


def energy(samples: np.ndarray) -> float:
    """Sum of squares of float32 ``samples`` (1-D), accumulated in double; NaN or inf when a sample is."""
    return _feature_stream.energy(np.ascontiguousarray(samples, dtype=np.float32).reshape(-1))


class FeatureStream:
    """Audio at ``input_rate_hz`` in; every ``hop_frames`` frames, the last ``window_rows`` frames out.

    Parameters
    ----------
    params : FrontendParams
        The frontend: what each frame is.
    input_rate_hz : int
        Rate of the pushed audio; resampled to ``params.sample_rate_hz`` like
        :class:`~native.resample.Resampler` (output aligned with the input, late by
        at most ``latency_samples`` model-rate samples).
    window_rows : int
        Frames in a window (49 for one second of 20 ms frames).
    hop_frames : int
        Frames between two windows; the first window comes once ``window_rows``
        frames exist.
    window : numpy.ndarray, float32, shape :attr:`window_shape`, C-contiguous, optional
        Where each window is written (e.g. a view of a model's input buffer);
        allocated when not given. Available as :attr:`window`.
    level_window_samples : int, optional
        Input samples the level meter (:meth:`level_dbfs`) covers; default the
        span of one window (``(window_rows - 1) * frame_step + frame_length``
        samples at the frontend's rate) at ``input_rate_hz``.
    resize : (int, int), optional
        Each window resized bilinearly to this shape when it is handed out
        (``ModelInput.resize``: a model trained on 32x32 spectrograms), in C,
        with ``native.frontend.resize_bilinear``'s arithmetic. :attr:`window_shape`
        is then ``resize``.

    Not thread-safe: one thread pushes and takes windows.

    The frames are those of ``Frontend.compute`` on ``resample_poly`` of all the
    audio pushed so far, bit for bit, except the last few the resampler still
    owes (at most ``latency_samples`` samples' worth) until :meth:`flush`.
    """

    def __init__(self, params: FrontendParams, input_rate_hz: int, window_rows: int, hop_frames: int,
                 window: Optional[np.ndarray] = None, level_window_samples: Optional[int] = None, *,
                 resize: Optional[Tuple[int, int]] = None) -> None:
        if not isinstance(params, FrontendParams):
            raise ValueError(f"params must be a FrontendParams, got {type(params).__name__}")
        resize = checked_resize(resize)
        input_rate_hz = positive_int(input_rate_hz, "input_rate_hz")
        self.window_rows = positive_int(window_rows, "window_rows")
        self.hop_frames = positive_int(hop_frames, "hop_frames")
        self.params = params
        self.input_rate_hz = input_rate_hz
        up, down = ratio_for(input_rate_hz, params.sample_rate_hz)
        half_len, phases = (0, np.zeros((1, 4), np.float32)) if up == down else polyphase_phases(up, down)
        self.latency_samples = -(-half_len // down)
        num_features = params.num_features
        self.resize = resize
        self.window_shape = resize if resize is not None else (self.window_rows, num_features)
        if window is None:
            window = np.zeros(self.window_shape, np.float32)
        elif (not isinstance(window, np.ndarray) or window.dtype != np.float32 or window.shape != self.window_shape
              or not window.flags.c_contiguous or not window.flags.writeable):
            raise ValueError(f"window must be a writable C-contiguous float32 array of shape {self.window_shape}")
        self.window = window
        if level_window_samples is None:
            span_samples = (self.window_rows - 1) * params.frame_step_samples + params.frame_length_samples
            level_window_samples = max(1, span_samples * input_rate_hz // params.sample_rate_hz)
        self.level_window_samples = positive_int(level_window_samples, "level_window_samples")
        rows, cols = resize if resize is not None else (0, 0)
        self._core = _feature_stream.FeatureStreamCore(
            frontend_config(params), up, down, half_len, phases, self.window_rows, self.hop_frames, window,
            self.level_window_samples, SILENCE_DBFS, rows, cols)
        self.num_features = num_features
        # The per-hop path is two native calls. push_float32 is push() for
        # contiguous 1-D float32 only (unchecked); next_window, the method
        # below, is bound straight to C: one Python frame less per hop.
        self.push_float32 = self._core.push
        self.next_window = self._core.next_window
        self.level_dbfs = self._core.level_dbfs

    @property
    def frames_emitted(self) -> int:
        """Frames moved into the window since creation or :meth:`reset`."""
        return self._core.frames_emitted

    def push(self, chunk: np.ndarray) -> float:
        """Consume float32 mono audio; return its energy (sum of squares, double precision).

        Raises ``ValueError`` (and consumes nothing) for NaN or infinite samples,
        a dtype other than float32, a shape other than (n,), or after
        :meth:`flush` (call :meth:`reset` first).
        """
        if type(chunk) is not np.ndarray or chunk.dtype is not _FLOAT32 or chunk.ndim != 1:
            chunk = np.asarray(chunk)
            if chunk.dtype != np.float32 or chunk.ndim != 1:
                raise ValueError(f"chunk must be 1-D float32 audio, got {chunk.dtype} of shape {chunk.shape}")
        return self._core.push(np.ascontiguousarray(chunk))

    def next_window(self) -> int:  # replaced in __init__ by the same call without this frame
        """Move computed frames into the window up to the next decision point.

        Returns
        -------
        int
            The 0-based index of the last frame of the window now in
            :attr:`window` (oldest frame first), or -1 when no window is due
            yet (push more audio first).
        """
        return self._core.next_window()

    def level_dbfs(self) -> float:  # replaced in __init__ by the same call without this frame
        """RMS level of the last ``level_window_samples`` input samples, in dBFS.

        Kept per pushed chunk (whole chunks leave the window), so exact to
        within one chunk; :data:`SILENCE_DBFS` for digital silence or no input.
        """
        return self._core.level_dbfs()

    def frame_end_time_s(self, frame_index: int) -> float:
        """Input-stream time (s) of the last sample of frame ``frame_index``."""
        p = self.params
        return (frame_index * p.frame_step_samples + p.frame_length_samples) / p.sample_rate_hz

    def flush(self, *, last_window: bool = True) -> int:
        """End of the input: compute the frames the resampler still owes.

        The resampler's tail (``Resampler.flush``: the output samples of the
        input so far, as if silence followed) goes through the streaming
        frontend, so that afterwards the frames are exactly those of
        ``Frontend.compute(resample_poly(all_input, up, down))``. Call
        :meth:`next_window` until it returns -1 to get the remaining windows.

        Parameters
        ----------
        last_window : bool
            When the frames after the last decision point do not reach the next
            one, :meth:`next_window` hands out one more window, ending at the
            stream's last frame (so the end of a file is always decided). Its
            hop is then shorter than ``hop_frames``. A stream of fewer than
            ``window_rows`` frames gives no window either way: to decide a
            short file, push zeros up to a clip's length first (as
            ``fit_to_clip`` pads training clips).

        Returns
        -------
        int
            Frames the resampler's tail completed (0 without resampling and on
            a second call).

        After a flush, :meth:`push` raises ``ValueError`` until :meth:`reset`:
        the resampler has ended its stream and the frontend's partial frame is
        dropped, as the batch frontend drops it.
        """
        return self._core.flush(bool(last_window))

    @property
    def flushed(self) -> bool:
        """Whether :meth:`flush` ran since creation or :meth:`reset` (push is refused then)."""
        return self._core.flushed

    @property
    def latency_s(self) -> float:
        """How long the resampler may hold input back before the frames it feeds appear (s)."""
        return self.latency_samples / self.params.sample_rate_hz

    def reset(self) -> None:
        """Forget all audio, frames and the window (and a flush): the next push starts a new stream."""
        self._core.reset()
