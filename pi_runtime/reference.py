"""The course's preprocessing, kept only as a yardstick (``--reference``).

``scipy.signal.resample_poly`` followed by eager ``tf.signal`` ops, the way the
course's ``kws_latency.py`` computed features on the Pi. Both libraries are
imported when a :class:`CoursePipeline` is built, never at module import, so
``pi_runtime`` keeps running on a device that has neither.
"""
from __future__ import annotations

from math import gcd

import numpy as np

from typing import Union

from native.params import FrontendParams, ModelInput
from pi_runtime.quiet import tensorflow_startup_filtered

__all__ = ["CoursePipeline", "reference_available"]


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


class CoursePipeline:
    """Audio at ``input_rate_hz`` to one model input, as the course computed it.

    Parameters
    ----------
    model_input : ModelInput or FrontendParams
        The model's input: its frontend (``spectrogram``, ``log_mel`` and
        ``mfcc`` are supported) and any resize (``tf.image.resize``); a
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
        self._tf = tf = _import_quietly("tensorflow")
        if isinstance(model_input, FrontendParams):
            model_input = ModelInput(frontend=model_input)
        self.model_input = model_input
        self.params = params = model_input.frontend
        divisor = gcd(int(input_rate_hz), params.sample_rate_hz)
        self.up, self.down = params.sample_rate_hz // divisor, int(input_rate_hz) // divisor
        # Built once, outside the timed loop, as the course did.
        self._mel_matrix = None
        if params.feature_kind in ("log_mel", "mfcc"):
            self._mel_matrix = tf.signal.linear_to_mel_weight_matrix(
                params.num_mel_bins, params.num_fft_bins, params.sample_rate_hz,
                params.lower_edge_hz, params.upper_edge_hz)

    def resample(self, audio: np.ndarray) -> np.ndarray:
        """``scipy.signal.resample_poly`` to the model's rate."""
        if self.up == self.down:
            return audio
        return self._signal.resample_poly(audio, self.up, self.down)

    def features(self, audio: np.ndarray) -> np.ndarray:
        """One clip at ``input_rate_hz`` -> float32[frames, features] (after any resize)."""
        tf, p = self._tf, self.params
        signal = tf.convert_to_tensor(self.resample(audio), dtype=tf.float32)
        stft = tf.signal.stft(signal, frame_length=p.frame_length_samples,
                              frame_step=p.frame_step_samples, fft_length=p.fft_length)
        spectrogram = tf.abs(stft)
        if p.feature_kind == "spectrogram":
            resize = self.model_input.resize
            if resize is None:
                return spectrogram.numpy()
            image = tf.image.resize(spectrogram[tf.newaxis, :, :, tf.newaxis], list(resize))
            return image[0, :, :, 0].numpy()
        mel = tf.tensordot(spectrogram, self._mel_matrix, 1)
        log_mel = tf.math.log(mel + p.log_offset)
        if p.feature_kind == "log_mel":
            return log_mel.numpy()
        mfccs = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)
        return mfccs[..., :p.num_mfccs].numpy()
