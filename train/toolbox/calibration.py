"""Temperature calibration: one scale for the logits, fitted on validation data, folded into the model.

A model distilled at a teacher temperature answers with softened
probabilities; a live detector that compares them with a fixed threshold then
misses words the model classifies right. Multiplying the logits by the scale
that minimises the validation negative log-likelihood (Guo et al., 2017) makes
the probabilities calibrated again without changing any argmax, and folding it
into the last Dense layer costs nothing at inference::

    scale = logit_scale(model.predict(val_x), val_labels)
    fold_logit_scale(model, scale)
"""
from __future__ import annotations

import numpy as np

CANDIDATE_SCALES = np.geomspace(0.1, 10.0, 401)  # steps of about 1.2 %


def mean_negative_log_likelihood(logits: np.ndarray, label_ids: np.ndarray) -> float:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probabilities[np.arange(len(label_ids)), label_ids].mean())


def logit_scale(logits: np.ndarray, label_ids: np.ndarray) -> float:
    """The factor (0.1-10) by which ``logits`` (float[n, classes]) should be multiplied to minimise
    the mean negative log-likelihood of ``label_ids`` (int[n])."""
    logits = np.asarray(logits, dtype=np.float64)
    label_ids = np.asarray(label_ids)
    if logits.ndim != 2 or len(logits) != len(label_ids) or len(logits) == 0:
        raise ValueError(f"need logits [n, classes] and n labels, got {logits.shape} and {label_ids.shape}")
    if not np.isfinite(logits).all():
        raise ValueError("logits contain NaN or infinity")
    losses = [mean_negative_log_likelihood(scale * logits, label_ids) for scale in CANDIDATE_SCALES]
    return float(CANDIDATE_SCALES[int(np.argmin(losses))])


def fold_logit_scale(model, scale: float) -> None:
    """Multiply the output of ``model``'s last layer, a linear Dense layer, by ``scale`` (in place)."""
    from train.keras_env import keras

    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense) or last.get_config().get("activation") != "linear":
        raise ValueError(f"the model must end in a linear Dense layer, got {type(last).__name__}")
    last.set_weights([weights * np.float32(scale) for weights in last.get_weights()])
