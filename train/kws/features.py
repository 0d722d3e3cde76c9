"""Features of whole clip sets, through the one native frontend the device uses.

``backend="native"`` (the default, and what delivered models use) runs
``native.frontend.Frontend.compute_batch``; ``backend="tf_signal"`` computes
the same features with ``tf.signal`` (the numerical reference), for comparison
and for machines where the extension is not built yet.
"""
from __future__ import annotations

import numpy as np

from typing import Union

from native.params import FrontendParams, ModelInput

BACKENDS = ("native", "tf_signal")
_BATCH_CLIPS = 500  # bounds the memory of the tf.signal path


def compute_features(audio: np.ndarray, model_input: Union[ModelInput, FrontendParams], *,
                     backend: str = "native") -> np.ndarray:
    """Features of every clip.

    Parameters
    ----------
    audio : int16[n, samples]
        Clips of equal length at the frontend's rate (of one model input's length).
    model_input : ModelInput or FrontendParams
        The model input the model will be deployed with (its frontend and any
        resize); a FrontendParams alone means its frames, not resized.
    backend : {"native", "tf_signal"}

    Returns
    -------
    float32[n, frames, features]
        The frames of each clip, resized to ``model_input.resize`` when it has one.
    """
    if isinstance(model_input, FrontendParams):
        model_input = ModelInput(frontend=model_input)
    if not isinstance(model_input, ModelInput):
        raise ValueError(f"model_input must be a ModelInput or FrontendParams, got {type(model_input).__name__}")
    params, resize = model_input.frontend, model_input.resize
    audio = np.asarray(audio)
    if audio.ndim != 2:
        raise ValueError(f"audio must be 2-D (clips, samples), got shape {audio.shape}")
    if audio.dtype != np.int16:
        raise ValueError(f"audio must be int16 PCM, got {audio.dtype}")
    if backend == "native":
        from native.frontend import Frontend

        if len(audio) == 0:
            return np.zeros((0,) + tuple(model_input.feature_shape), dtype=np.float32)
        return Frontend(params).compute_batch(audio, resize=resize)
    if backend == "tf_signal":
        if resize is not None:
            raise ValueError("the tf_signal backend does not resize spectrograms; use the native backend")
        return _tf_signal_features(audio, params)
    raise ValueError(f"unknown feature backend {backend!r}; choose from {', '.join(BACKENDS)}")


def _tf_signal_features(audio: np.ndarray, params: FrontendParams) -> np.ndarray:
    from train.keras_env import tf

    if params.feature_kind not in ("spectrogram", "log_mel", "mfcc"):
        raise ValueError(f"the tf_signal backend has no {params.feature_kind!r} features; use the native backend")
    mel_matrix = None
    if params.feature_kind != "spectrogram":
        mel_matrix = tf.signal.linear_to_mel_weight_matrix(
            num_mel_bins=params.num_mel_bins, num_spectrogram_bins=params.num_fft_bins,
            sample_rate=params.sample_rate_hz, lower_edge_hertz=params.lower_edge_hz,
            upper_edge_hertz=params.upper_edge_hz)
    out = np.zeros((len(audio), params.num_frames(audio.shape[1]), params.num_features), dtype=np.float32)
    for start in range(0, len(audio), _BATCH_CLIPS):
        signal = tf.cast(audio[start:start + _BATCH_CLIPS], tf.float32) / 32768.0
        spectrogram = tf.abs(tf.signal.stft(
            signal, frame_length=params.frame_length_samples, frame_step=params.frame_step_samples,
            fft_length=params.fft_length, window_fn=tf.signal.hann_window))
        if mel_matrix is None:
            features = spectrogram
        else:
            features = tf.math.log(tf.matmul(spectrogram, mel_matrix) + params.log_offset)
            if params.feature_kind == "mfcc":
                features = tf.signal.mfccs_from_log_mel_spectrograms(features)[..., :params.num_mfccs]
        out[start:start + _BATCH_CLIPS] = features.numpy()
    return out
