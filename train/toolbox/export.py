"""Keras model -> ``.tflite`` (optionally ``.tflite.zlib``) with its sidecar.

Quantisation modes (``quantization=``):

``"none"``
    float32 weights and activations.
``"weights"``
    weights-only (dynamic range): int8 weights, float32 inputs, outputs and
    activations. The converter skips weight tensors below 1024 elements, so
    :func:`train.toolbox.tflite_slim.quantize_small_weights` quantises those too.
``"int8"``
    full integer: int8 weights and activations, calibrated on a representative
    set taken from the training split; ``int8_io=True`` makes the input and
    output tensors int8 too (the runtime quantises/dequantises with their scale
    and zero point). A quantisation-aware trained model uses its learned ranges.
    ``per_channel=False`` stores one scale per weight tensor instead of one per
    output channel (12 bytes less per channel: worth it in 1-2 kB models).

Export always converts with a batch dimension of 1: the device runs one example
at a time and a fixed shape lets the converter fold shape arithmetic away.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from train.keras_env import tf
from train.toolbox.tflite_slim import byte_breakdown, quantize_small_weights, slim_tflite

QUANTIZATIONS = ("none", "weights", "int8")
ZLIB_LEVEL = 9
MAX_REPRESENTATIVE_EXAMPLES = 500


@dataclass
class ExportResult:
    """What :func:`export_model` wrote.

    Attributes
    ----------
    path : the delivered file (``.tflite`` or ``.tflite.zlib``).
    tflite_bytes : size of the flatbuffer.
    zlib_bytes : size of the flatbuffer after zlib (level 9), whether or not it was written.
    size_bytes : size of the delivered file (``zlib_bytes`` if compressed, else ``tflite_bytes``).
    sidecar_path : the sidecar written beside it, or None.
    replaced : whether a model was at ``path`` before and is now overwritten.
    details : the options used, ``converter_bytes`` and ``converter_breakdown``
        (:func:`train.toolbox.tflite_slim.byte_breakdown` of the converter's file).
    """

    path: Path
    tflite_bytes: int
    zlib_bytes: int
    sidecar_path: Optional[Path] = None
    replaced: bool = False
    details: Dict[str, Any] = field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        return self.zlib_bytes if self.path.name.endswith(".zlib") else self.tflite_bytes


def convert_to_tflite(
    model,
    *,
    quantization: str = "none",
    representative_data: Optional[np.ndarray] = None,
    int8_io: bool = False,
    per_channel: bool = True,
) -> bytes:
    """Convert a Keras model with one input to TFLite flatbuffer bytes.

    Parameters
    ----------
    model : tf_keras model with a single input of fixed shape (batch axis free).
    quantization : "none" | "weights" | "int8" (see the module docstring).
    representative_data : float32 [examples, *input_shape], training-split inputs;
        required for "int8". A quantisation-aware trained model keeps its learned
        ranges (the converter then ignores this set, but insists on having one).
    int8_io : int8 input and output tensors ("int8" only).
    per_channel : one scale per output channel for int8 weights; False stores one
        scale per tensor, which saves ~12 bytes per channel in tiny models.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if int8_io and quantization != "int8":
        raise ValueError("int8_io needs quantization='int8'")
    if len(model.inputs) != 1:
        raise ValueError(f"export handles models with one input, this one has {len(model.inputs)}")
    input_shape = [1] + [int(size) for size in model.inputs[0].shape[1:]]
    if any(size <= 0 for size in input_shape):
        raise ValueError(f"the model's input shape {model.inputs[0].shape} must be fixed apart from the batch axis")

    @tf.function
    def serve(x):
        return model(x, training=False)

    concrete = serve.get_concrete_function(tf.TensorSpec(input_shape, tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter._experimental_disable_per_channel = not per_channel  # no public switch
    if quantization == "int8":
        if representative_data is not None:
            examples = np.asarray(representative_data, dtype=np.float32)
            if tuple(examples.shape[1:]) != tuple(input_shape[1:]):
                raise ValueError(f"representative_data has examples of shape {examples.shape[1:]}, "
                                 f"the model takes {tuple(input_shape[1:])}")
            if len(examples) == 0:
                raise ValueError("representative_data is empty")
            examples = examples[np.linspace(0, len(examples) - 1, min(len(examples), MAX_REPRESENTATIVE_EXAMPLES)).astype(int)]

            def representative_dataset():
                for example in examples:
                    yield [example[np.newaxis]]

            converter.representative_dataset = representative_dataset
        else:
            raise ValueError("quantization='int8' needs representative_data (training-split inputs)")
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    data = converter.convert()
    if quantization == "weights":
        data = quantize_small_weights(data)
    return data


def keras_output_kind(model) -> str:
    """``"probabilities"`` when the model's output comes out of a softmax (a ``Softmax`` layer,
    or a last layer whose activation is softmax), else ``"logits"``."""
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    return "probabilities" if type(last).__name__ == "Softmax" or activation == "softmax" else "logits"


def _recorded_output_kind(model, sidecar: Dict[str, Any]) -> str:
    from pi_runtime.sidecar import output_kind

    kind = keras_output_kind(model)
    declared = output_kind(sidecar)
    if declared is not None and declared != kind:
        raise ValueError(f"the sidecar declares {declared} but the model outputs {kind}")
    return kind


def write_model_file(path: Path, stored: bytes, *, compressed: bool) -> Tuple[Path, bool]:
    """Write ``stored`` (zlib bytes when ``compressed``) as ``path`` (a ``.tflite`` path; ``.zlib`` is added
    when compressed), removing a file of the other kind beside it; returns (the file, whether one was
    there before)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    delivered = path.with_name(path.name + ".zlib") if compressed else path
    replaced = delivered.exists()
    delivered.write_bytes(stored)
    # A stale file of the other kind beside it would be loaded by mistake.
    other = path if compressed else path.with_name(path.name + ".zlib")
    if other.exists():
        other.unlink()
    return delivered, replaced


def export_model(
    model,
    path: Union[str, Path],
    *,
    quantization: str = "none",
    representative_data: Optional[np.ndarray] = None,
    int8_io: bool = False,
    per_channel: bool = True,
    slim: bool = True,
    drop_io_reshapes: bool = False,
    compress: bool = False,
    sidecar: Optional[Dict[str, Any]] = None,
) -> ExportResult:
    """Convert ``model`` and write it (and its sidecar) to ``path``.

    Parameters
    ----------
    model, quantization, representative_data, int8_io, per_channel : see :func:`convert_to_tflite`.
    path : destination ``.tflite`` file; with ``compress=True`` the file written
        is ``path`` + ``.zlib`` (a path already ending in ``.tflite.zlib`` is taken as is).
    slim : remove metadata, signatures, names etc. (:func:`train.toolbox.tflite_slim.slim_tflite`).
    drop_io_reshapes : with ``slim``, also remove RESHAPE operators at the input/output
        (the file then takes/returns the same values flattened; feed and read by size).
    compress : write the zlib-compressed file instead of the plain one.
    sidecar : sidecar dict (``pi_runtime.sidecar`` schema) written beside the model;
        its ``results`` section is filled by the caller after evaluation. A
        classifier's (one with ``labels``) gets ``"output": {"kind"}`` recorded
        from the model (:func:`keras_output_kind`); a kind the caller declared
        must agree with it.

    Returns
    -------
    ExportResult with the delivered path and the raw and zlib sizes in bytes.
    """
    from pi_runtime.sidecar import write_sidecar

    path = Path(path)
    if path.name.endswith(".tflite.zlib"):
        compress, path = True, path.with_name(path.name[: -len(".zlib")])
    if not path.name.endswith(".tflite"):
        raise ValueError(f"{path}: the model path must end in .tflite (or .tflite.zlib)")
    data = convert_to_tflite(model, quantization=quantization, representative_data=representative_data,
                             int8_io=int8_io, per_channel=per_channel)
    converter_bytes = len(data)
    converter_breakdown = byte_breakdown(data)
    if slim:
        data = slim_tflite(data, drop_io_reshapes=drop_io_reshapes)
    compressed = zlib.compress(data, ZLIB_LEVEL)
    delivered, replaced = write_model_file(path, compressed if compress else data, compressed=compress)
    if sidecar is not None and "labels" in sidecar:
        sidecar = {**sidecar, "output": {"kind": _recorded_output_kind(model, sidecar)}}
    written_sidecar = write_sidecar(delivered, sidecar) if sidecar is not None else None
    return ExportResult(
        path=delivered,
        tflite_bytes=len(data),
        zlib_bytes=len(compressed),
        sidecar_path=written_sidecar,
        replaced=replaced,
        details={"converter_bytes": converter_bytes, "converter_breakdown": converter_breakdown,
                 "quantization": quantization, "int8_io": int8_io,
                 "per_channel": per_channel, "slim": slim,
                 "drop_io_reshapes": drop_io_reshapes},
    )
