"""Quantisation-aware training (QAT) with tfmot, for the models of both tasks.

``quantize_model`` of tfmot refuses a whole model when one layer type is not in
its registry (e.g. ``Lambda`` or custom layers). :func:`quantization_aware`
annotates only the layers the registry supports, so the others stay float and
tfmot inserts quantise/dequantise at the boundaries. With
``preserve_sparsity=True`` it uses tfmot's prune-preserving scheme, so a pruned
model stays pruned through QAT (PQAT).

Export a QAT model with ``export_model(..., quantization="int8")``: the converter
takes the learned ranges from the fake-quantisation nodes.
"""
from __future__ import annotations

import tensorflow_model_optimization as tfmot
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
    default_8bit_quantize_registry,
)

from train.keras_env import keras


def quantizable_layers(model) -> list:
    """Names of the layers tfmot's default 8-bit scheme can quantise."""
    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()
    return [layer.name for layer in model.layers if registry.supports(layer)]


def quantization_aware(model, *, preserve_sparsity: bool = False):
    """Return a copy of ``model`` with fake quantisation for QAT fine-tuning.

    Parameters
    ----------
    model : a functional or sequential tf_keras model without nested models
        (strip pruning wrappers first: ``pruning.strip_pruning``).
    preserve_sparsity : keep the zero weights of a pruned model zero during QAT.

    Returns
    -------
    A new model (weights copied) to compile and fine-tune for a few epochs.
    """
    if any(isinstance(layer, keras.Model) for layer in model.layers):
        raise ValueError("QAT needs a flat model: a Keras model nested inside another is not supported by tfmot")
    supported = set(quantizable_layers(model))
    if not supported:
        raise ValueError("no layer of this model can be quantised by tfmot's 8-bit scheme")

    def annotate(layer):
        if layer.name in supported:
            return tfmot.quantization.keras.quantize_annotate_layer(layer)
        return layer

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    scheme = None
    if preserve_sparsity:
        scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    with tfmot.quantization.keras.quantize_scope():
        if scheme is None:
            return tfmot.quantization.keras.quantize_apply(annotated)
        return tfmot.quantization.keras.quantize_apply(annotated, scheme)
