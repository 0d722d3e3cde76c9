"""Knowledge distillation: soft targets from larger, already exported models.

A small student learns from a mix of the true labels and the teachers'
softened answers (Hinton et al., 2015): how much a "go" sounds like "no" is
information a one-hot label does not carry. The teachers are delivered files
run through pi_runtime's loader, so they are exactly the models that were
measured; they must output logits (every model trained here does) and take the
student's features::

    teachers = Teachers(["models/kws/kws_b.tflite.zlib"], labels, frontend)
    targets = distillation_targets(one_hot, teachers.probabilities(features, temperature=2.0), weight=0.5)
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np


class Teachers:
    """Exported models whose mean softened answers serve as targets.

    Parameters
    ----------
    paths : the teachers' model files (each with its sidecar)
    labels : the student's classes; each teacher must have an output for every one
        (a teacher of more words serves a student of fewer: its other outputs are left out)
    frontend : the student's features (FrontendParams); each teacher must take the same
    """

    def __init__(self, paths: Sequence[Union[str, Path]], labels: Sequence[str], frontend) -> None:
        from pi_runtime.model import load_model

        if not paths:
            raise ValueError("distillation needs at least one teacher model")
        self.paths = [Path(path) for path in paths]
        self.models, self.outputs = [], []
        for path in self.paths:
            model = load_model(path, require_sidecar=True)
            if model.frontend_params != frontend:
                raise ValueError(f"teacher {path}: trained on other features than the student's "
                                 f"({model.frontend_params} vs {frontend})")
            self.models.append(model)
            self.outputs.append(model.output_indices(labels))

    def probabilities(self, features: np.ndarray, *, temperature: float) -> np.ndarray:
        """float32[n, labels]: the teachers' mean of softmax(logits / ``temperature``) over the student's labels.

        ``features``: float32[n, frames, features], the student's (augmented) inputs.
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        total: Optional[np.ndarray] = None
        for model, outputs in zip(self.models, self.outputs):
            logits = model.predict_many(features).reshape(len(features), -1)[:, outputs] / temperature
            exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
            probabilities = exponentials / exponentials.sum(axis=1, keepdims=True)
            total = probabilities if total is None else total + probabilities
        return (total / len(self.models)).astype(np.float32)


def distillation_targets(hard_targets: np.ndarray, teacher_probabilities: np.ndarray, *, weight: float) -> np.ndarray:
    """``(1 - weight) * hard_targets + weight * teacher_probabilities`` (rows still sum to 1)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    if hard_targets.shape != teacher_probabilities.shape:
        raise ValueError(f"targets {hard_targets.shape} and teacher answers {teacher_probabilities.shape} differ")
    return ((1.0 - weight) * hard_targets + weight * teacher_probabilities).astype(np.float32)
