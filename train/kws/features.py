"""Features of whole clip sets, through the one native frontend the device uses.

``backend="native"`` (the default, and what delivered models use) runs
``native.frontend.Frontend.compute_batch``; ``backend="tf_signal"`` computes
the same features with ``pi_runtime.reference.tf_signal_features`` (the
numerical reference), for comparison and for machines where the extension is
not built yet.
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
        return _tf_signal_features(audio, model_input)
    raise ValueError(f"unknown feature backend {backend!r}; choose from {', '.join(BACKENDS)}")


def _tf_signal_features(audio: np.ndarray, model_input: ModelInput) -> np.ndarray:
    """``pi_runtime.reference.tf_signal_features`` (the one tf.signal pipeline) over batches of clips."""
    from pi_runtime.reference import tf_signal_features
    from train.keras_env import tf

    features = tf_signal_features(model_input)  # refuses what it cannot compute before any work
    params = model_input.frontend
    rows, cols = (model_input.resize if model_input.resize is not None
                  else (params.num_frames(audio.shape[1]), params.num_features))
    out = np.zeros((len(audio), rows, cols), dtype=np.float32)
    for start in range(0, len(audio), _BATCH_CLIPS):
        signal = tf.cast(audio[start:start + _BATCH_CLIPS], tf.float32) / 32768.0
        out[start:start + _BATCH_CLIPS] = features(signal).numpy()
    return out
