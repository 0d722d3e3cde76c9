"""The course's preprocessing, kept only as a yardstick (``--reference``), and the
one ``tf.signal`` feature pipeline of the project.

``scipy.signal.resample_poly`` followed by eager ``tf.signal`` ops, the way the
course's ``kws_latency.py`` computed features on the Pi. Both libraries are
imported when a :class:`CoursePipeline` (or :func:`tf_signal_features`) is
built, never at module import, so ``pi_runtime`` keeps running on a device that
has neither.

:func:`tf_signal_features` is the numerical reference of the native frontend:
the course's (and MLPerf Tiny's) ``tf.signal`` ops for one model input. The
latency command's ``--reference``, training's ``tf_signal`` backend
(``train.kws.features``), the frontend tests and ``benchmarks/frontend.py`` all
use it.
"""
from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np

from typing import Union

from native.params import FrontendParams, ModelInput
from pi_runtime.quiet import tensorflow_startup_filtered

__all__ = ["CoursePipeline", "reference_available", "tf_signal_features"]


def reference_available() -> str:
    """Return ``""`` when TensorFlow and scipy import, else a sentence saying what is missing."""
    missing = []
    for module in ("scipy.signal", "tensorflow"):
        try:
            _import_quietly(module)
        except ImportError:
            missing.append(module.split(".")[0])
    if missing:
        return (f"the reference pipeline needs {' and '.join(missing)}, not installed here "
                "(pip install 'tinyml-pi[train]' on a machine that can run TensorFlow)")
    return ""


def _import_quietly(module: str):
    """``module``, imported without TensorFlow's start-up lines (see :mod:`pi_runtime.quiet`)."""
    with tensorflow_startup_filtered():
        return __import__(module, fromlist=["_"])


def tf_signal_features(model_input: Union[ModelInput, FrontendParams]):
    """The ``tf.signal`` features of ``model_input`` as a function of float32 tensors.

    Parameters
    ----------
    model_input : ModelInput or FrontendParams
        ``spectrogram`` (resized with ``tf.image.resize`` when the input is),
        ``log_mel``, ``mfcc`` and ``pcen`` (the course had no PCEN: here the
        mel energies of ``tf.signal`` smoothed along time with ``tf.scan``, the
        definition of ``native.frontend.pcen_reference``); a FrontendParams
        alone: its frames, not resized.

    Returns
    -------
    callable
        ``features(signal)``: float32 tensor ``[..., samples]`` at the
        frontend's rate (int16 audio divided by 32768 first, as
        ``tf.audio.decode_wav``) -> tensor ``[..., frames, features]``. The mel
        matrix is built once, here; wrap it in ``tf.function`` to compile it.

    Raises
    ------
    ImportError
        Without TensorFlow.
    """
    tf = _import_quietly("tensorflow")
    if isinstance(model_input, FrontendParams):
        model_input = ModelInput(frontend=model_input)
    p, resize = model_input.frontend, model_input.resize
    if p.feature_kind not in ("spectrogram", "log_mel", "mfcc", "pcen"):
        raise ValueError(f"the tf.signal reference has no {p.feature_kind!r} features")
    mel_matrix = None
    if p.feature_kind != "spectrogram":
        mel_matrix = tf.signal.linear_to_mel_weight_matrix(p.num_mel_bins, p.num_fft_bins, p.sample_rate_hz,
                                                           p.lower_edge_hz, p.upper_edge_hz)

    def features(signal):
        spectrogram = tf.abs(tf.signal.stft(signal, p.frame_length_samples, p.frame_step_samples, p.fft_length,
                                            window_fn=tf.signal.hann_window))
        if p.feature_kind == "spectrogram":
            if resize is None:
                return spectrogram
            return tf.image.resize(spectrogram[..., tf.newaxis], list(resize))[..., 0]
        mel = tf.tensordot(spectrogram, mel_matrix, 1)
        if p.feature_kind == "pcen":
            return _tf_pcen(tf, mel, p)
        log_mel = tf.math.log(mel + p.log_offset)
        if p.feature_kind == "log_mel":
            return log_mel
        return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :p.num_mfccs]

    return features


def _tf_pcen(tf, mel, p: FrontendParams):
    """PCEN of mel energies ``[..., frames, bins]``: a first-order smoother along time from the first frame,
    as one matrix product with :func:`pcen_smoother_weights` (built once per frame count)."""
    frames = mel.shape[-2]
    if frames is None:
        raise ValueError("the tf.signal PCEN needs a known number of frames (a signal of static length)")
    smooth = tf.linalg.matmul(tf.constant(pcen_smoother_weights(int(frames), p.pcen_smoothing)), mel)
    gain = tf.pow(p.pcen_epsilon + smooth, -p.pcen_alpha)
    if p.noise_reduction_time_constant_ms > 0:  # the same smoother with the noise's coefficient; the numerator only
        noise = tf.linalg.matmul(tf.constant(pcen_smoother_weights(int(frames), p.noise_reduction_smoothing)), mel)
        mel = tf.maximum(mel - noise, p.noise_reduction_min_remaining * mel)
    return tf.pow(mel * gain + p.pcen_delta, p.pcen_power) - p.pcen_delta ** p.pcen_power


@lru_cache(maxsize=16)
def pcen_smoother_weights(frames: int, smoothing: float) -> np.ndarray:
    """float32[frames, frames]: PCEN's smoother unrolled, smooth[t] = (1-s)^t E[0] + sum over 1 <= k <= t of
    s (1-s)^(t-k) E[k] (it starts at the first frame's energy)."""
    age = np.arange(frames)[:, np.newaxis] - np.arange(frames)[np.newaxis, :]  # t - k
    weights = np.where(age >= 0, (1.0 - smoothing) ** np.maximum(age, 0), 0.0)
    weights[:, 1:] *= smoothing
    weights = weights.astype(np.float32)
    weights.flags.writeable = False  # shared by every call through the cache
    return weights


class CoursePipeline:
    """Audio at ``input_rate_hz`` to one model input, as the course computed it.

    Parameters
    ----------
    model_input : ModelInput or FrontendParams
        The model's input: its frontend (``spectrogram``, ``log_mel``,
        ``mfcc`` and ``pcen``) and any resize (``tf.image.resize``); a
        FrontendParams alone means no resize.
    input_rate_hz : int
        Rate of the audio given to :meth:`features` (48 kHz in the course).

    Raises
    ------
    ImportError
        When TensorFlow or scipy is not installed (see :func:`reference_available`).
    """

    def __init__(self, model_input: Union[ModelInput, FrontendParams], *, input_rate_hz: int = 48000) -> None:
        self._signal = _import_quietly("scipy.signal")
        self._tf = _import_quietly("tensorflow")
        if isinstance(model_input, FrontendParams):
            model_input = ModelInput(frontend=model_input)
        self.model_input = model_input
        self.params = params = model_input.frontend
        divisor = gcd(int(input_rate_hz), params.sample_rate_hz)
        self.up, self.down = params.sample_rate_hz // divisor, int(input_rate_hz) // divisor
        # Built once (the mel matrix), outside the timed loop, as the course did.
        self._features = tf_signal_features(model_input)

    def resample(self, audio: np.ndarray) -> np.ndarray:
        """``scipy.signal.resample_poly`` to the model's rate."""
        if self.up == self.down:
            return audio
        return self._signal.resample_poly(audio, self.up, self.down)

    def features(self, audio: np.ndarray) -> np.ndarray:
        """One clip at ``input_rate_hz`` -> float32[frames, features] (after any resize)."""
        signal = self._tf.convert_to_tensor(self.resample(audio), dtype=self._tf.float32)
        return self._features(signal).numpy()
