"""Shrink tiny TFLite flatbuffers: drop what the interpreter does not read.

A 1-2 kB model is mostly format overhead. The converter writes, besides the
operators, tensors and weights the interpreter needs:

* ``metadata`` entries (``min_runtime_version``, ``CONVERSION_METADATA``) and
  their buffers,
* signature definitions (``serving_default`` with input/output names),
* tensor names such as ``serving_default_input_1:0``, the subgraph name and
  the model description ("MLIR Converted."),
* ``min``/``max`` arrays in the quantisation parameters (only ``scale`` and
  ``zero_point`` are used at run time) and ``shape_signature`` copies of the
  shapes,
* one empty buffer per activation tensor (buffer 0 is the schema's shared
  empty buffer; every tensor without data can point to it).

:func:`slim_tflite` removes all of these and re-packs the model with the
schema's object API; :func:`byte_breakdown` measures how many bytes each of
them took. The slim file loads in LiteRT / tflite_runtime with identical
outputs (tested), but has no signature runner: use ``get_input_details()``.
"""
from __future__ import annotations

from typing import Dict, List

import flatbuffers
import numpy as np

try:  # the schema ships with TensorFlow and with LiteRT
    from tensorflow.lite.python import schema_py_generated as schema
except ImportError:  # pragma: no cover - device without TensorFlow
    from ai_edge_litert import schema_py_generated as schema

from pi_runtime.model import TFLITE_IDENTIFIER

# Alignment of weight buffers in the file: enough for every element type the
# kernels read directly (int64/float64 at most), much less than the converter's 16.
_BUFFER_ALIGNMENT_BYTES = 8


class _AlignedBufferT(schema.BufferT):
    """A Buffer whose data vector is aligned to ``_BUFFER_ALIGNMENT_BYTES``."""

    def Pack(self, builder):  # noqa: N802 - flatbuffers' naming
        data_offset = None
        if self.data is not None and len(self.data) > 0:
            raw = np.asarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(raw), _BUFFER_ALIGNMENT_BYTES)
            builder.head -= len(raw)
            builder.Bytes[builder.head : builder.head + len(raw)] = raw
            data_offset = builder.EndVector()
        schema.BufferStart(builder)
        if data_offset is not None:
            schema.BufferAddData(builder, data_offset)
        return schema.BufferEnd(builder)


def read_model(data: bytes) -> "schema.ModelT":
    """Unpack a TFLite flatbuffer into the schema's mutable object tree."""
    if len(data) < 8 or bytes(data[4:8]) != TFLITE_IDENTIFIER:
        raise ValueError("not a TFLite flatbuffer (file identifier TFL3 missing)")
    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def write_model(model: "schema.ModelT") -> bytes:
    """Pack a model object tree back into TFLite flatbuffer bytes."""
    if model.buffers:
        model.buffers = [_as_aligned(buffer) for buffer in model.buffers]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def _as_aligned(buffer: "schema.BufferT") -> _AlignedBufferT:
    aligned = _AlignedBufferT()
    aligned.__dict__.update(buffer.__dict__)
    return aligned


def _drop_metadata(model) -> None:
    model.metadata = None
    model.metadataBuffer = None


def _drop_signatures(model) -> None:
    model.signatureDefs = None


def _drop_names(model) -> None:
    model.description = None
    for subgraph in model.subgraphs or []:
        subgraph.name = None
        for tensor in subgraph.tensors or []:
            tensor.name = None


def _drop_min_max(model) -> None:
    for subgraph in model.subgraphs or []:
        for tensor in subgraph.tensors or []:
            if tensor.quantization is not None:
                tensor.quantization.min = None
                tensor.quantization.max = None
                if tensor.quantization.scale is None and tensor.quantization.details is None:
                    tensor.quantization = None


def _drop_shape_signatures(model) -> None:
    for subgraph in model.subgraphs or []:
        for tensor in subgraph.tensors or []:
            signature = tensor.shapeSignature
            # -1 entries (dynamic dimensions) are information the shape does not carry: keep those.
            if signature is not None and all(int(size) >= 0 for size in signature):
                tensor.shapeSignature = None


def _drop_unused_buffers(model) -> None:
    """Point every tensor without data at buffer 0 and delete buffers nobody uses."""
    buffers = model.buffers or []
    used = {0}
    for subgraph in model.subgraphs or []:
        for tensor in subgraph.tensors or []:
            buffer = buffers[tensor.buffer] if tensor.buffer < len(buffers) else None
            if buffer is None or buffer.data is None or len(buffer.data) == 0:
                tensor.buffer = 0
            else:
                used.add(tensor.buffer)
    if model.metadata:
        used.update(entry.buffer for entry in model.metadata)
    new_index = {old: new for new, old in enumerate(sorted(used))}
    model.buffers = [buffers[old] if old < len(buffers) else schema.BufferT() for old in sorted(used)]
    if model.buffers[0].data is not None and len(model.buffers[0].data):
        raise ValueError("buffer 0 of a TFLite model must be empty")
    for subgraph in model.subgraphs or []:
        for tensor in subgraph.tensors or []:
            tensor.buffer = new_index[tensor.buffer]
    for entry in model.metadata or []:
        entry.buffer = new_index[entry.buffer]


def _builtin_code(model, operator) -> int:
    code = model.operatorCodes[operator.opcodeIndex]
    # builtinCode holds codes >= 127; deprecatedBuiltinCode the older ones (schema v3a).
    return max(int(code.builtinCode), int(code.deprecatedBuiltinCode))


def _drop_io_reshapes(model) -> None:
    """Remove RESHAPE operators that only reshape a graph input or produce a graph output.

    The data is the same in the same order; only the shape the caller sees changes
    (e.g. a [1, 6, 2] input becomes the [1, 12] tensor the first layer reads). The
    caller must feed and read by size, as ``pi_runtime.model.LoadedModel`` does.
    """
    reshape = schema.BuiltinOperator.RESHAPE
    for subgraph in model.subgraphs or []:
        operators = list(subgraph.operators or [])
        inputs, outputs = list(subgraph.inputs), list(subgraph.outputs)
        readers = {}
        for operator in operators:
            for tensor_index in (operator.inputs if operator.inputs is not None else []):
                readers[int(tensor_index)] = readers.get(int(tensor_index), 0) + 1
        kept = []
        for operator in operators:
            if _builtin_code(model, operator) == reshape:
                source, result = int(operator.inputs[0]), int(operator.outputs[0])
                same_type = subgraph.tensors[source].type == subgraph.tensors[result].type
                if same_type and source in inputs and readers.get(source) == 1 and result not in outputs:
                    inputs[inputs.index(source)] = result
                    continue
                if same_type and result in outputs and readers.get(result, 0) == 0 and source not in inputs:
                    outputs[outputs.index(result)] = source
                    continue
            kept.append(operator)
        subgraph.operators = kept
        subgraph.inputs = np.array(inputs, dtype=np.int32)
        subgraph.outputs = np.array(outputs, dtype=np.int32)
    _drop_unused_tensors(model)


def _drop_unused_tensors(model) -> None:
    """Delete tensors no operator or graph input/output refers to, and unused operator codes."""
    used_codes = set()
    for subgraph in model.subgraphs or []:
        used = set(int(i) for i in subgraph.inputs) | set(int(i) for i in subgraph.outputs)
        for operator in subgraph.operators or []:
            used_codes.add(operator.opcodeIndex)
            for field_name in ("inputs", "outputs", "intermediates"):
                indices = getattr(operator, field_name)
                used.update(int(i) for i in (indices if indices is not None else []) if i >= 0)
        new_index = {old: new for new, old in enumerate(sorted(used))}
        subgraph.tensors = [subgraph.tensors[old] for old in sorted(used)]

        def renumber(indices):
            if indices is None:
                return None
            return np.array([new_index[int(i)] if i >= 0 else -1 for i in indices], dtype=np.int32)

        subgraph.inputs, subgraph.outputs = renumber(subgraph.inputs), renumber(subgraph.outputs)
        for operator in subgraph.operators or []:
            operator.inputs = renumber(operator.inputs)
            operator.outputs = renumber(operator.outputs)
            operator.intermediates = renumber(operator.intermediates)
    if len(model.subgraphs or []) == 1:  # with several subgraphs, control-flow ops refer to codes too
        code_index = {old: new for new, old in enumerate(sorted(used_codes))}
        model.operatorCodes = [model.operatorCodes[old] for old in sorted(used_codes)]
        for operator in model.subgraphs[0].operators or []:
            operator.opcodeIndex = code_index[operator.opcodeIndex]


# Each step removes one kind of overhead; their order is the order of byte_breakdown's rows.
_STEPS = [
    ("metadata (min_runtime_version, conversion metadata)", _drop_metadata),
    ("signature defs", _drop_signatures),
    ("tensor/subgraph names, description", _drop_names),
    ("quantisation min/max", _drop_min_max),
    ("shape signatures", _drop_shape_signatures),
    ("empty per-tensor buffers", _drop_unused_buffers),
]


def slim_tflite(data: bytes, *, drop_io_reshapes: bool = False) -> bytes:
    """Return ``data`` without metadata, signatures, names, min/max and empty buffers.

    Parameters
    ----------
    data : bytes of a ``.tflite`` flatbuffer.
    drop_io_reshapes : also remove RESHAPE operators right after the input or
        right before the output (e.g. Keras ``Flatten`` / ``Reshape`` around a
        dense model): the model then takes and returns the same values in the
        same order with another shape, so callers must feed and read by size.

    Returns
    -------
    bytes of an equivalent, smaller flatbuffer (same operators, tensors, weights,
    shapes and quantisation scales/zero points).
    """
    model = read_model(data)
    if drop_io_reshapes:
        _drop_io_reshapes(model)
    for _, step in _STEPS:
        step(model)
    return write_model(model)


def byte_breakdown(data: bytes) -> Dict[str, int]:
    """Where the bytes of a TFLite file go.

    Returns a dict (insertion-ordered) with ``total``, ``weights`` (bytes of
    constant tensor data), one entry per overhead that :func:`slim_tflite`
    removes (bytes saved by removing it, measured by re-packing after each
    step), ``re-packing / alignment`` (difference between the original file
    and the same model re-packed here) and ``structure (ops, tensors, shapes,
    scales)``: what the interpreter needs besides the weights.
    """
    model = read_model(data)
    breakdown: Dict[str, int] = {"total": len(data), "weights": _weight_bytes(model)}
    previous = len(write_model(model))
    breakdown["re-packing / alignment"] = len(data) - previous
    for name, step in _STEPS:
        step(model)
        size = len(write_model(model))
        breakdown[name] = previous - size
        previous = size
    breakdown["structure (ops, tensors, shapes, scales)"] = previous - breakdown["weights"]
    return breakdown


def format_byte_breakdown(breakdown: Dict[str, int]) -> str:
    """Markdown table of :func:`byte_breakdown`'s result."""
    total = breakdown["total"]
    lines = ["| part | bytes | share |", "| --- | ---: | ---: |"]
    for name, size in breakdown.items():
        lines.append(f"| {name} | {size} | {100.0 * size / total:.1f} % |")
    return "\n".join(lines)


def _weight_bytes(model) -> int:
    buffers = model.buffers or []
    used: List[int] = sorted(
        {tensor.buffer for subgraph in model.subgraphs or [] for tensor in subgraph.tensors or []}
    )
    return sum(len(buffers[index].data) for index in used if index < len(buffers) and buffers[index].data is not None)


def constant_tensors(data: bytes) -> List[Dict]:
    """Constant tensors of a TFLite file: name, TensorType code, shape and the raw values.

    Returns a list of dicts with ``name`` (str, may be empty after slimming),
    ``type`` (``schema.TensorType`` code), ``shape`` (tuple) and ``values``
    (numpy array of the stored dtype, reshaped to ``shape``).
    """
    dtypes = {
        schema.TensorType.FLOAT32: np.float32,
        schema.TensorType.FLOAT16: np.float16,
        schema.TensorType.INT32: np.int32,
        schema.TensorType.INT8: np.int8,
        schema.TensorType.UINT8: np.uint8,
        schema.TensorType.INT16: np.int16,
        schema.TensorType.INT64: np.int64,
    }
    model = read_model(data)
    result = []
    for subgraph in model.subgraphs or []:
        for tensor in subgraph.tensors or []:
            buffer = model.buffers[tensor.buffer]
            if buffer.data is None or len(buffer.data) == 0 or tensor.type not in dtypes:
                continue
            shape = tuple(int(size) for size in (tensor.shape if tensor.shape is not None else []))
            values = np.frombuffer(np.asarray(buffer.data, np.uint8).tobytes(), dtype=dtypes[tensor.type])
            result.append(
                {
                    "name": tensor.name.decode() if isinstance(tensor.name, bytes) else (tensor.name or ""),
                    "type": tensor.type,
                    "shape": shape,
                    "values": values.reshape(shape) if shape else values,
                }
            )
    return result


# Operators whose float kernels have a "hybrid" variant: float input and output,
# int8 weights with a scale, dequantised on the fly by the interpreter. Input 1 is
# the weight tensor in all of them.
_HYBRID_OPERATORS = ("FULLY_CONNECTED", "CONV_2D")


def quantize_small_weights(data: bytes) -> bytes:
    """Store the float32 weights of FULLY_CONNECTED / CONV_2D operators as int8 (weights-only).

    The converter's dynamic-range quantisation leaves weight tensors of fewer
    than 1024 elements in float32, i.e. every weight of a 1-2 kB model. This
    pass quantises them the way the converter does for large tensors:
    symmetric int8 with one scale per tensor (``scale = max|w| / 127``, zero
    point 0). The interpreter then runs the operators' hybrid kernels; inputs,
    outputs and biases stay float32.

    Parameters
    ----------
    data : bytes of a ``.tflite`` file.

    Returns
    -------
    bytes of the model with those weights in int8 (unchanged if there are none).
    """
    model = read_model(data)
    codes = {
        getattr(schema.BuiltinOperator, name): name for name in _HYBRID_OPERATORS
    }
    for subgraph in model.subgraphs or []:
        consumers = {}
        for operator in subgraph.operators or []:
            inputs = [] if operator.inputs is None else list(operator.inputs)
            for position, tensor_index in enumerate(inputs):
                consumers.setdefault(tensor_index, []).append((operator, position))
        for operator in subgraph.operators or []:
            code = model.operatorCodes[operator.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            if builtin not in codes or operator.inputs is None or len(operator.inputs) < 2:
                continue
            input_tensor = subgraph.tensors[operator.inputs[0]]
            weight_index = int(operator.inputs[1])
            weights = subgraph.tensors[weight_index]
            buffer = model.buffers[weights.buffer]
            if (input_tensor.type != schema.TensorType.FLOAT32 or weights.type != schema.TensorType.FLOAT32
                    or buffer.data is None or len(buffer.data) == 0):
                continue
            # A weight shared with another operator (or used elsewhere) keeps its float copy.
            if len(consumers.get(weight_index, [])) != 1:
                continue
            values = np.frombuffer(np.asarray(buffer.data, np.uint8).tobytes(), dtype=np.float32)
            largest = float(np.max(np.abs(values))) if values.size else 0.0
            scale = largest / 127.0 if largest > 0 else 1.0
            quantised = np.clip(np.rint(values / scale), -127, 127).astype(np.int8)
            buffer.data = np.frombuffer(quantised.tobytes(), dtype=np.uint8)
            weights.type = schema.TensorType.INT8
            weights.quantization = schema.QuantizationParametersT()
            weights.quantization.scale = np.array([scale], dtype=np.float32)
            weights.quantization.zeroPoint = np.array([0], dtype=np.int64)
            if builtin == schema.BuiltinOperator.FULLY_CONNECTED and operator.builtinOptions is not None:
                # Like the converter's hybrid FC: quantise each input row with its own offset.
                operator.builtinOptions.asymmetricQuantizeInputs = True
    return write_model(model)
