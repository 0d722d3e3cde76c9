"""Audio features computed natively, equal to the ``tf.signal`` pipeline.

For every frame (``tf.signal.stft`` framing: no padding, the last partial frame
dropped): periodic Hann window, real FFT of ``fft_length`` points, magnitude;
then, by ``FrontendParams.feature_kind``:

* ``"spectrogram"``: the magnitude, ``fft_length // 2 + 1`` values per frame;
* ``"log_mel"``: ``log(magnitude @ linear_to_mel_weight_matrix + log_offset)``;
* ``"mfcc"``: ``tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :num_mfccs]``;
* ``"pcen"``: per-channel energy normalisation of ``magnitude @ linear_to_mel_weight_matrix``
  (see ``FrontendParams`` and :func:`pcen_reference`), a smoother carried
  from frame to frame: from each clip's first frame in batch, from the
  stream's start in streaming.

Input audio is 1-D (one clip) or 2-D (clips x samples):

* ``int16`` is scaled by 1/32768, as ``tf.audio.decode_wav`` does;
* ``float32`` is used as is (no scaling);
* ``float64`` is rounded to ``float32`` first (``soundfile`` reads float64);
* any other dtype (int32, int64, bool, object, ...) is refused with a
  ``ValueError``: its scale is ambiguous.

Non-contiguous or byte-swapped arrays and lists are copied; NaN or Inf
anywhere in the input, samples beyond ``+-native.checks.MAX_ABS_SAMPLE``
(1e6: they would overflow the float32 arithmetic), stereo / wrong rank, and
audio shorter than one frame raise ``ValueError``. Samples with
``|x| < native.checks.MIN_ABS_SAMPLE`` (2**-64) are read as 0, so subnormal
input costs no more than silence.

A model input may be resized (``ModelInput.resize``, the course's 32x32
spectrograms): ``compute(audio, resize=...)`` and ``compute_batch`` resize each
clip's frames in C, with :func:`resize_bilinear`'s arithmetic (``tf.image.resize``,
bilinear, half-pixel centres).

The C code (``native/src``) runs with the GIL released; this module builds the
window, the sparse mel filterbank and the DCT once per ``FrontendParams`` into
one typed :func:`frontend_config`, and does all validation.  ``compute_batch`` splits the clips over threads; the
streaming frames equal the batch frames bit for bit (same per-frame float
operations whatever the chunking).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from native import _frontend
from native.checks import raise_for_samples
from native.params import FrontendParams, checked_resize

__all__ = ["Frontend", "StreamingFrontend", "fit_to_clip", "frontend_config", "hann_window", "max_threads",
           "mel_weight_matrix", "mfcc_dct_matrix", "pcen_reference", "resize_bilinear"]


def max_threads() -> int:
    """Most worker threads ``compute_batch`` accepts: 4 per core, at least 64.

    More only cost memory (tens of thousands of threads crashed the interpreter).
    """
    return max(64, 4 * (os.cpu_count() or 1))
_OK, _ERR_NO_MEMORY, _ERR_TOO_SHORT = _frontend.STATUS_OK, _frontend.STATUS_NO_MEMORY, _frontend.STATUS_TOO_SHORT

ArrayLike = Union[np.ndarray, Sequence[float]]


# ---- constant tables, built once per FrontendParams ------------------------------

def hann_window(frame_length_samples: int) -> np.ndarray:
    """``tf.signal.hann_window(frame_length_samples, periodic=True)`` as float32[frame_length].

    Like TF, an odd length uses ``length - 1`` as the period and length 1 gives ``[1]``.
    """
    if frame_length_samples == 1:
        return np.ones(1, np.float32)
    period = frame_length_samples if frame_length_samples % 2 == 0 else frame_length_samples - 1
    n = np.arange(frame_length_samples, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / period)).astype(np.float32)


def _hz_to_mel(frequency_hz):
    return 1127.0 * np.log1p(np.asarray(frequency_hz, np.float64) / 700.0)  # HTK, as TF


def mel_weight_matrix(params: FrontendParams) -> np.ndarray:
    """``tf.signal.linear_to_mel_weight_matrix`` for ``params`` as float32[num_fft_bins, num_mel_bins].

    Triangles are linear in HTK mel; the DC bin gets no weight (TF zeroes it).
    Computed in float64 and rounded, so weights may differ from TF's float32
    arithmetic in the last bits.
    """
    nyquist_hz = params.sample_rate_hz / 2.0
    bin_mel = _hz_to_mel(np.linspace(0.0, nyquist_hz, params.num_fft_bins)[1:])[:, None]
    edges_mel = np.linspace(_hz_to_mel(params.lower_edge_hz), _hz_to_mel(params.upper_edge_hz),
                            params.num_mel_bins + 2)
    lower, center, upper = edges_mel[:-2], edges_mel[1:-1], edges_mel[2:]
    rising = (bin_mel - lower) / (center - lower)
    falling = (upper - bin_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.vstack([np.zeros((1, params.num_mel_bins)), weights]).astype(np.float32)


def mfcc_dct_matrix(num_mfccs: int, num_mel_bins: int) -> np.ndarray:
    """float32[num_mfccs, num_mel_bins] with ``mfcc = matrix @ log_mel``.

    ``tf.signal.mfccs_from_log_mel_spectrograms`` is the unnormalised DCT-II
    (``2 * sum x[n] cos(pi k (2n + 1) / 2N)``) times ``1 / sqrt(2 N)``, i.e.
    ``sqrt(2 / N) * sum x[n] cos(...)`` for every k, k = 0 included.
    """
    k = np.arange(num_mfccs, dtype=np.float64)[:, None]
    n = np.arange(num_mel_bins, dtype=np.float64)[None, :]
    basis = np.cos(np.pi * k * (2.0 * n + 1.0) / (2.0 * num_mel_bins))
    return (np.sqrt(2.0 / num_mel_bins) * basis).astype(np.float32)


def pcen_reference(mel_energies: np.ndarray, params: FrontendParams) -> np.ndarray:
    """PCEN of mel energies in float64, the definition the native ``"pcen"`` kind computes.

    Parameters
    ----------
    mel_energies : array, shape (frames, num_mel_bins)
        Non-negative mel energies (``magnitude @ mel_weight_matrix(params)``), oldest frame first.
    params : FrontendParams
        Supplies ``pcen_smoothing``, ``pcen_alpha``, ``pcen_delta``, ``pcen_power``, ``pcen_epsilon``
        and the noise reduction's ``noise_reduction_smoothing`` and ``noise_reduction_min_remaining``.

    Returns
    -------
    float64 array, shape (frames, num_mel_bins)
        The smoother (and the noise estimate) starts at the first frame's
        energy. (The native code also sets either below ``FLT_MIN`` to 0,
        which changes no output.)
    """
    energies = np.asarray(mel_energies, np.float64)
    gain = (params.pcen_epsilon + first_order_smoother(energies, params.pcen_smoothing)) ** -params.pcen_alpha
    if params.noise_reduction_time_constant_ms > 0:  # the numerator only
        noise = first_order_smoother(energies, params.noise_reduction_smoothing)
        energies = np.maximum(energies - noise, params.noise_reduction_min_remaining * energies)
    return (energies * gain + params.pcen_delta) ** params.pcen_power - params.pcen_delta ** params.pcen_power


def first_order_smoother(energies: np.ndarray, s: float) -> np.ndarray:
    """float64 ``y[0] = x[0]``, ``y[t] = (1 - s) y[t-1] + s x[t]`` along the first axis."""
    smooth = np.empty_like(energies)
    for t in range(energies.shape[0]):
        smooth[t] = energies[0] if t == 0 else (1.0 - s) * smooth[t - 1] + s * energies[t]
    return smooth


def _sparse_filters(weights: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each mel filter as (first bin, bin count, weights of its consecutive bins)."""
    first_bin = np.zeros(weights.shape[1], np.intc)
    bin_count = np.zeros(weights.shape[1], np.intc)
    runs = []
    for m in range(weights.shape[1]):
        nonzero = np.flatnonzero(weights[:, m])
        if nonzero.size:
            first, last = int(nonzero[0]), int(nonzero[-1])
            first_bin[m], bin_count[m] = first, last - first + 1
            runs.append(weights[first:last + 1, m])
    touched = (weights != 0).sum(axis=1)
    if touched.max(initial=0) > 2:  # a triangular filterbank never does this
        raise AssertionError("mel filters overlap by more than two")
    flat = np.concatenate(runs).astype(np.float32) if runs else np.zeros(0, np.float32)
    return first_bin, bin_count, np.ascontiguousarray(flat)


# ---- input checks ------------------------------------------------------------------

_FLOAT32, _INT16 = np.dtype(np.float32), np.dtype(np.int16)


def _as_audio(audio: ArrayLike, ndim: int, what: str) -> np.ndarray:
    """Contiguous int16 or float32 array of rank ``ndim`` (see the module docstring)."""
    if (type(audio) is np.ndarray and audio.ndim == ndim and (audio.dtype is _FLOAT32 or audio.dtype is _INT16)
            and audio.flags.c_contiguous):
        return audio  # the common case, kept cheap for streaming
    if type(audio) is not np.ndarray:
        audio = np.asarray(audio)
    dtype = audio.dtype
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        audio = audio.astype(np.float32)  # also native byte order
    elif dtype.kind == "i" and dtype.itemsize == 2:
        audio = audio.astype(np.int16)
    else:
        raise ValueError(f"{what} must be int16 (PCM, scaled by 1/32768) or float32/float64 samples, "
                         f"got dtype {dtype}")
    if audio.ndim != ndim:
        shape = "1-D (samples,)" if ndim == 1 else "2-D (clips, samples)"
        hint = " (stereo? mix down or pick a channel first)" if audio.ndim == ndim + 1 else ""
        raise ValueError(f"{what} must be {shape}, got shape {audio.shape}{hint}")
    return np.ascontiguousarray(audio)


def fit_to_clip(audio: ArrayLike, num_samples: int) -> np.ndarray:
    """Pad 1-D ``audio`` with zeros at the end to ``num_samples`` (as the course pads short clips).

    Parameters
    ----------
    audio : array, shape (samples,)
        Any dtype; returned with the same dtype.
    num_samples : int
        Target length, e.g. ``ModelInput.clip_length_samples``.

    Returns
    -------
    array, shape (num_samples,)
        ``audio`` itself when it already has that length.

    Raises
    ------
    ValueError
        When ``audio`` is not 1-D or is longer than ``num_samples``.
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D (samples,), got shape {audio.shape}")
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    if audio.shape[0] > num_samples:
        raise ValueError(f"audio has {audio.shape[0]} samples, more than the clip's {num_samples}; "
                         "trim or split it explicitly")
    if audio.shape[0] == num_samples:
        return audio
    out = np.zeros(num_samples, audio.dtype)
    out[:audio.shape[0]] = audio
    return out


def _raise_for(status: int, what: str) -> None:
    raise_for_samples(status, what)
    if status == _ERR_NO_MEMORY:
        raise MemoryError("out of memory in the native frontend")
    if status == _ERR_TOO_SHORT:
        raise ValueError(f"{what} is shorter than one frame")
    raise RuntimeError(f"native frontend failed with status {status}")


def frontend_config(params: FrontendParams) -> "_frontend.FrontendConfig":
    """The native frontend's typed config for ``params``: the C config and its tables.

    The window, the sparse mel filterbank, the DCT matrix and the PCEN
    coefficients, built once; ``Frontend``, ``StreamingFrontend`` and
    ``native.feature_stream`` create their C frontends from it.
    """
    if not isinstance(params, FrontendParams):
        raise ValueError(f"params must be a FrontendParams, got {type(params).__name__}")
    kind = params.feature_kind
    if kind == "spectrogram":
        first_bin = bin_count = np.zeros(0, np.intc)
        weights = np.zeros(0, np.float32)
    else:
        first_bin, bin_count, weights = _sparse_filters(mel_weight_matrix(params))
    dct = (mfcc_dct_matrix(params.num_mfccs, params.num_mel_bins).ravel() if kind == "mfcc"
           else np.zeros(0, np.float32))
    return _frontend.FrontendConfig(
        frame_length_samples=params.frame_length_samples, frame_step_samples=params.frame_step_samples,
        fft_length=params.fft_length, feature_kind=_frontend.FEATURE_KIND_CODES[kind],
        num_mel_bins=params.num_mel_bins, num_mfccs=params.num_mfccs, log_offset=params.log_offset,
        pcen_smoothing=params.pcen_smoothing, pcen_alpha=params.pcen_alpha, pcen_delta=params.pcen_delta,
        pcen_power=params.pcen_power, pcen_epsilon=params.pcen_epsilon,
        noise_smoothing=params.noise_reduction_smoothing,
        noise_min_remaining=params.noise_reduction_min_remaining,
        window=hann_window(params.frame_length_samples), mel_first_bin=first_bin, mel_bin_count=bin_count,
        mel_weights=weights, dct=dct)


def resize_bilinear(image: ArrayLike, shape: Tuple[int, int]) -> np.ndarray:
    """``tf.image.resize(image[..., None], shape)[..., 0]`` (bilinear, half-pixel centres, no
    antialiasing), float for float.

    Parameters
    ----------
    image : array, shape (rows, cols)
        Converted to float32; at least 1 x 1, finite or not (NaN propagates).
    shape : (int, int)
        Output (rows, cols), positive, at most 2**24 values.

    Returns
    -------
    float32 array, shape ``shape``
        The same C code the frontend and the feature stream resize with.
    """
    rows, cols = checked_resize(shape)
    image = np.ascontiguousarray(image, dtype=np.float32)
    if image.ndim != 2 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must be 2-D (rows, cols) with at least one value, got shape {image.shape}")
    out = np.empty((rows, cols), np.float32)
    if _frontend.resize_bilinear(image, out) != _OK:
        raise MemoryError("out of memory in the native resize")
    return out


# ---- public classes -------------------------------------------------------------------

class Frontend:
    """Features of whole clips.

    Parameters
    ----------
    params : FrontendParams
        What to compute; the native tables are built once here.

    Examples
    --------
    >>> frontend = Frontend(FrontendParams())          # the course's MFCCs
    >>> frontend.compute(np.zeros(16000, np.int16)).shape
    (49, 10)
    >>> spectrogram = Frontend(FrontendParams(feature_kind="spectrogram"))
    >>> spectrogram.compute(np.zeros(16000, np.int16), resize=(32, 32)).shape   # a course model's input
    (32, 32)
    """

    def __init__(self, params: FrontendParams) -> None:
        self._core = _frontend.FrontendCore(frontend_config(params))
        self.params = params

    def output_shape(self, num_samples: int, *, resize: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
        """(frames, features) for a clip of ``num_samples`` samples (``resize`` when given)."""
        if resize is not None:
            return checked_resize(resize)
        return (self._core.num_frames(num_samples), self._core.num_features)

    def _check_length(self, num_samples: int, what: str) -> None:
        if num_samples < self.params.frame_length_samples:
            raise ValueError(f"{what} has {num_samples} samples, fewer than one frame "
                             f"({self.params.frame_length_samples}); pad it, e.g. with fit_to_clip")

    def compute(self, audio: ArrayLike, *, resize: Optional[Tuple[int, int]] = None) -> np.ndarray:
        """Features of one clip.

        Parameters
        ----------
        audio : array, shape (samples,)
            int16, float32 or float64 (see the module docstring); at least one frame long.
        resize : (int, int), optional
            Resize the clip's (frames, features) bilinearly to this shape
            (a model input's ``ModelInput.resize``).

        Returns
        -------
        float32 array, shape (frames, features)
            ``frames = 1 + (samples - frame_length) // frame_step``; with a resize,
            ``resize``.
        """
        audio = _as_audio(audio, 1, "audio")
        num_samples = audio.shape[0]
        self._check_length(num_samples, "audio")
        return self._compute_rows(audio.reshape(1, num_samples), resize=checked_resize(resize))[0]

    def compute_batch(self, clips: ArrayLike, num_threads: Optional[int] = None, *,
                      resize: Optional[Tuple[int, int]] = None) -> np.ndarray:
        """Features of many clips of equal length, on several threads.

        Parameters
        ----------
        clips : array, shape (clips, samples)
            A 2-D array (or a sequence of equal-length 1-D arrays); dtypes as ``compute``.
        num_threads : int, optional
            Worker threads (the GIL is released while they compute), from 1 to
            :func:`max_threads`; default ``os.cpu_count()``, never more than
            there are clips.
        resize : (int, int), optional
            As in :meth:`compute`.

        Returns
        -------
        float32 array, shape (clips, frames, features)
            Equal to ``compute`` on each clip.
        """
        try:
            clips = _as_audio(clips, 2, "clips")
        except ValueError as error:
            if "inhomogeneous" in str(error):
                raise ValueError("clips must all have the same length; pad them with fit_to_clip") from None
            raise
        self._check_length(clips.shape[1], "each clip")
        resize = checked_resize(resize)
        if num_threads is None:
            num_threads = os.cpu_count() or 1
        if (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                or not 1 <= num_threads <= max_threads()):
            raise ValueError(f"num_threads must be a positive integer of at most {max_threads()} "
                             f"(4 per core), got {num_threads!r}")
        num_threads = min(num_threads, max(1, clips.shape[0]))
        if num_threads == 1:
            return self._compute_rows(clips, resize=resize)
        out = np.empty((clips.shape[0],) + self.output_shape(clips.shape[1], resize=resize), np.float32)
        bounds = np.linspace(0, clips.shape[0], num_threads + 1).astype(int)
        with ThreadPoolExecutor(max_workers=num_threads) as pool:
            jobs = [pool.submit(self._compute_rows, clips[a:b], out[a:b], resize=resize)
                    for a, b in zip(bounds[:-1], bounds[1:])]
            for job in jobs:
                job.result()  # re-raises a worker's ValueError
        return out

    def _compute_rows(self, clips: np.ndarray, out: Optional[np.ndarray] = None, *,
                      resize: Optional[Tuple[int, int]]) -> np.ndarray:
        if out is None:
            out = np.empty((clips.shape[0],) + self.output_shape(clips.shape[1], resize=resize), np.float32)
        rows, cols = resize if resize is not None else (0, 0)
        status = self._core.compute(clips, rows, cols, out)  # one method for int16 and float32 clips
        if status != _OK:
            _raise_for(status, "audio")
        return out


class StreamingFrontend:
    """Features of a stream, pushed in chunks of any size.

    The frames equal ``Frontend.compute`` on the concatenated stream (same
    float operations, so bit for bit). A resized model input is made from a
    window of frames: ``native.feature_stream.FeatureStream(..., resize=...)``.

    Parameters
    ----------
    params : FrontendParams
    """

    def __init__(self, params: FrontendParams) -> None:
        self._core = _frontend.FrontendCore(frontend_config(params))
        self._stream = _frontend.StreamCore(self._core)
        self._num_features = self._core.num_features
        self.params = params

    def push(self, chunk: ArrayLike) -> np.ndarray:
        """Consume ``chunk`` and return the frames that became complete.

        Parameters
        ----------
        chunk : array, shape (samples,)
            int16, float32 or float64 (see the module docstring); may be empty.
            A chunk with NaN, Inf or samples beyond +-1e6 raises ``ValueError``
            and is not consumed.

        Returns
        -------
        float32 array, shape (new_frames, features)
            ``(0, features)`` when no frame completed.
        """
        out = self._stream.push(chunk)  # contiguous int16 / float32 arrays: one native call
        if out is None:
            out = self._push_converted(chunk)
        return out

    def _push_converted(self, chunk: ArrayLike) -> np.ndarray:
        if self._stream.last_status < 0:
            _raise_for(self._stream.last_status, "chunk")
        out = self._stream.push(_as_audio(chunk, 1, "chunk"))
        if out is None:
            _raise_for(self._stream.last_status, "chunk")
        return out

    def reset(self) -> None:
        """Forget the buffered samples: the next push starts a new stream."""
        self._stream.reset()
