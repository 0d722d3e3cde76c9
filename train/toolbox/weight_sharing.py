"""Post-training weight sharing for int8 TFLite files: one scale per tensor, few distinct weights.

The converter quantises every output channel of a convolution with its own
scale. In a model of tens of kilobytes those scales are a large part of the
file: a float32 per channel for the weights and another for the biases, with
an int64 zero point beside each, and the float32 values compress poorly.
:func:`per_tensor_weights` requantises such weights to one scale per tensor
(the largest magnitude over 127, the biases to the input's scale times it).

:func:`share_weight_values` then lets each weight tensor keep only ``levels``
distinct int8 values (weight sharing, or clustering, Han et al. 2016): the
values are replaced by ``levels`` centres found by an exact 1-D k-means
over them, with zero always one of the centres so that pruned weights
stay pruned. A file whose weight bytes take 16-32 distinct values is coded by
zlib in about 4-5 bits per weight instead of 7-8. Nothing changes at run
time: the interpreter reads ordinary int8 tensors, on a Pi as here.

Both passes work on the flatbuffer (``train.toolbox.tflite_slim``) and need
no retraining; what they cost in accuracy is for the validation split to
say (``python -m train.kws.share_weights`` chooses ``levels`` there).
"""
from __future__ import annotations

import numbers
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np

from train.toolbox.tflite_slim import _builtin_code, read_model, schema, write_model

# Operators whose input 1 is a weight tensor (and input 2, where present, its bias).
WEIGHTED_OPERATORS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
MIN_LEVELS = 2  # zero and one other value
_INT8_MAX = 127


def _values(buffer, dtype) -> np.ndarray:
    return np.frombuffer(np.asarray(buffer.data, np.uint8).tobytes(), dtype=dtype)


def _write_values(model, tensor, values: np.ndarray) -> None:
    """Store ``values`` as ``tensor``'s data. The converter stores identical constants once, so a
    buffer can hold several tensors' data: a tensor whose new data differ then gets a buffer of its own."""
    data = np.frombuffer(values.tobytes(), dtype=np.uint8)
    buffer = model.buffers[tensor.buffer]
    old = np.asarray(buffer.data if buffer.data is not None else [], dtype=np.uint8)
    if np.array_equal(old, data):
        return
    shared = sum(other.buffer == tensor.buffer for subgraph in model.subgraphs or []
                 for other in subgraph.tensors or []) > 1
    if shared:
        buffer = schema.BufferT()
        model.buffers.append(buffer)
        tensor.buffer = len(model.buffers) - 1
    buffer.data = data


def _weighted_operators(model) -> Iterator[Tuple[object, object, object]]:
    """(subgraph, operator, weight tensor) of every full-integer weighted operator (int8 input, constant
    int8 weights quantised symmetrically, zero point 0) that is the only reader of its weights."""
    codes = {getattr(schema.BuiltinOperator, name) for name in WEIGHTED_OPERATORS}
    for subgraph in model.subgraphs or []:
        readers: Dict[int, int] = {}
        for operator in subgraph.operators or []:
            for index in (operator.inputs if operator.inputs is not None else []):
                readers[int(index)] = readers.get(int(index), 0) + 1
        for operator in subgraph.operators or []:
            if _builtin_code(model, operator) not in codes or len(operator.inputs) < 2:
                continue
            weights = subgraph.tensors[int(operator.inputs[1])]
            buffer = model.buffers[weights.buffer]
            quantization = weights.quantization
            if (weights.type != schema.TensorType.INT8 or buffer.data is None or len(buffer.data) == 0
                    or subgraph.tensors[int(operator.inputs[0])].type != schema.TensorType.INT8
                    or quantization is None or quantization.scale is None or len(quantization.scale) == 0
                    or readers[int(operator.inputs[1])] != 1):
                continue
            zero_points = quantization.zeroPoint
            if zero_points is not None and np.any(np.asarray(zero_points) != 0):
                continue
            yield subgraph, operator, weights


def per_tensor_weights(data: bytes) -> bytes:
    """Requantise per-channel int8 weights (and their int32 biases) to one scale per tensor.

    Parameters
    ----------
    data : bytes of a full-integer ``.tflite`` file.

    Returns
    -------
    bytes of the equivalent model with one weight scale per tensor: ``max|w| / 127`` over the whole
    tensor, each weight rounded to it (a channel of small weights loses resolution: the cost to
    measure); the bias scale is then the input's scale times it, as the int8 kernels require.
    Tensors that have one scale already, and weights several operators read, are left as they are.
    """
    model = read_model(data)
    for subgraph, operator, weights in _weighted_operators(model):
        quantization = weights.quantization
        scales = np.asarray(quantization.scale, dtype=np.float64)
        if scales.size == 1:
            continue
        shape = tuple(int(size) for size in weights.shape)
        axis = int(quantization.quantizedDimension)
        broadcast = [1] * len(shape)
        broadcast[axis] = -1
        stored = _values(model.buffers[weights.buffer], np.int8).reshape(shape).astype(np.float64)
        real = stored * scales.reshape(broadcast)
        largest = float(np.max(np.abs(real)))
        scale = largest / _INT8_MAX if largest > 0 else float(scales.max())
        _write_values(model, weights, np.clip(np.rint(real / scale), -_INT8_MAX, _INT8_MAX).astype(np.int8))
        _set_per_tensor(quantization, scale)
        if len(operator.inputs) > 2 and operator.inputs[2] >= 0:
            _requantise_bias(model, subgraph, operator, scale)
    return write_model(model)


def _set_per_tensor(quantization, scale: float) -> None:
    quantization.scale = np.array([scale], dtype=np.float32)
    quantization.zeroPoint = np.array([0], dtype=np.int64)
    quantization.quantizedDimension = 0


def _requantise_bias(model, subgraph, operator, weight_scale: float) -> None:
    bias = subgraph.tensors[int(operator.inputs[2])]
    input_quantization = subgraph.tensors[int(operator.inputs[0])].quantization
    if (bias.type != schema.TensorType.INT32 or bias.quantization is None or bias.quantization.scale is None
            or input_quantization is None or input_quantization.scale is None or not len(input_quantization.scale)):
        raise ValueError("an int8 operator with per-channel weights must have quantised int32 biases and a "
                         "quantised input (int16 activations are not supported)")
    # The kernels take the bias scale to be exactly input scale x weight scale (float32 products).
    bias_scale = float(np.float32(input_quantization.scale[0]) * np.float32(weight_scale))
    real = _values(model.buffers[bias.buffer], np.int32).astype(np.float64) * np.asarray(bias.quantization.scale,
                                                                                          np.float64)
    limit = np.iinfo(np.int32).max
    _write_values(model, bias, np.clip(np.rint(real / bias_scale), -limit, limit).astype(np.int32))
    _set_per_tensor(bias.quantization, bias_scale)


def shared_values(values: np.ndarray, levels: int) -> Tuple[np.ndarray, np.ndarray]:
    """The ``levels`` int8 values that stand in for ``values``, zero among them, and which stands for which.

    Optimal 1-D k-means (the least total squared change, before the centres are rounded to
    integers) by dynamic programming over the sorted distinct values (at most 256, so exact and
    fast; Wang and Song, Ckmeans.1d.dp, 2011): in one dimension every cluster of an optimum is a
    run of neighbouring values, so the best split of the first ``j`` values into ``m`` runs follows
    from the best splits into ``m - 1``. The run that holds zero keeps zero as its value, so that
    pruned weights stay pruned. Deterministic.

    Returns
    -------
    (centres, index): the int8 centres (sorted; fewer than ``levels`` when ``values`` has fewer
    distinct values, or two centres round to one) and, for each element of ``values``, the index
    of the centre that replaces it.
    """
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < MIN_LEVELS:
        raise ValueError(f"levels must be an integer >= {MIN_LEVELS}, got {levels!r}")
    values = np.asarray(values).astype(np.int64).ravel()
    points, inverse, counts = np.unique(np.concatenate([values, [0]]), return_inverse=True, return_counts=True)
    inverse = inverse[:-1]
    zero_index = int(np.searchsorted(points, 0))
    weights = counts.astype(np.float64)
    weights[zero_index] -= 1  # the zero added above weighs nothing
    if points.size <= levels:
        return points, inverse
    runs = _optimal_runs(points.astype(np.float64), weights, zero_index, levels)
    centres = np.empty(len(runs))
    run_of_point = np.empty(points.size, dtype=np.int64)
    for index, (first, last) in enumerate(runs):
        run_of_point[first:last + 1] = index
        if first <= zero_index <= last:  # every other run holds values of weight >= 1
            centres[index] = 0.0
        else:
            centres[index] = np.average(points[first:last + 1], weights=weights[first:last + 1])
    rounded = np.clip(np.rint(centres), -128, _INT8_MAX).astype(np.int64)
    distinct, centre_index = np.unique(rounded, return_inverse=True)
    return distinct, centre_index[run_of_point[inverse]]


def _optimal_runs(points: np.ndarray, weights: np.ndarray, zero_index: int, levels: int) -> List[Tuple[int, int]]:
    """Split sorted ``points`` into ``levels`` runs of least total weighted squared distance to their
    centres (the weighted mean; zero for the run holding ``zero_index``); returns (first, last) pairs."""
    n = points.size
    cumulative_weight = np.concatenate([[0.0], np.cumsum(weights)])
    cumulative_sum = np.concatenate([[0.0], np.cumsum(weights * points)])
    cumulative_square = np.concatenate([[0.0], np.cumsum(weights * points ** 2)])

    def run_costs(last: int) -> np.ndarray:
        """Cost of each run first..last, for every first in 0..last."""
        first = np.arange(last + 1)
        weight = cumulative_weight[last + 1] - cumulative_weight[first]
        total = cumulative_sum[last + 1] - cumulative_sum[first]
        square = cumulative_square[last + 1] - cumulative_square[first]
        spread = square - np.divide(total ** 2, weight, out=np.zeros_like(total), where=weight > 0)
        return np.where((first <= zero_index) & (zero_index <= last), square, np.maximum(spread, 0.0))

    costs = [run_costs(last) for last in range(n)]
    best = np.array([costs[last][0] for last in range(n)])  # one run covering points 0..last
    starts = [np.zeros(n, dtype=np.int64)]
    for runs in range(2, levels + 1):
        current = np.full(n, np.inf)
        start = np.zeros(n, dtype=np.int64)
        for last in range(runs - 1, n):
            # The last run starts at first (>= runs - 1); points before it form runs - 1 runs.
            candidates = best[runs - 2:last] + costs[last][runs - 1:last + 1]
            choice = int(np.argmin(candidates))
            current[last], start[last] = candidates[choice], choice + runs - 1
        best = current
        starts.append(start)
    bounds, last = [], n - 1
    for runs in range(levels, 0, -1):
        first = int(starts[runs - 1][last]) if runs > 1 else 0
        bounds.append((first, last))
        last = first - 1
    return bounds[::-1]


def share_weight_values(data: bytes, levels: int) -> bytes:
    """Replace each int8 weight tensor's values by its :func:`shared_values` (each value by its run's centre).

    Parameters
    ----------
    data : bytes of a full-integer ``.tflite`` file (with per-tensor weights, as
        :func:`per_tensor_weights` leaves them, the values are shared across the whole tensor;
        with per-channel scales the same int8 values mean different weights in each channel).
    levels : distinct values per weight tensor, >= 2 (zero is one of them).

    Returns
    -------
    bytes of the model with at most ``levels`` distinct values in each weight tensor.
    """
    model = read_model(data)
    for _, _, weights in _weighted_operators(model):
        centres, index = shared_values(_values(model.buffers[weights.buffer], np.int8), levels)
        _write_values(model, weights, centres[index].astype(np.int8))
    return write_model(model)


def weight_sharing(data: bytes, levels: int) -> bytes:
    """:func:`per_tensor_weights`, then :func:`share_weight_values` with ``levels``."""
    return share_weight_values(per_tensor_weights(data), levels)


def scale_output_logits(data: bytes, factor: float) -> bytes:
    """Multiply the logits an int8 classifier file answers by ``factor`` > 0, its int8 arithmetic unchanged.

    The output must come from a FULLY_CONNECTED operator with int8 weights (through a DEQUANTIZE or
    not): its weight, bias and output scales are multiplied by ``factor``, so every integer it
    computes stays the same and only what they stand for grows (the file counterpart of
    ``train.toolbox.calibration.fold_logit_scale``; no argmax changes).
    """
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not (np.isfinite(factor) and factor > 0):
        raise ValueError(f"factor must be a finite number > 0, got {factor!r}")
    model = read_model(data)
    subgraph, operator, _ = _output_layer(model)
    tensors = [subgraph.tensors[int(index)] for index in list(operator.inputs)[1:] + list(operator.outputs)
               if int(index) >= 0]
    if any(tensor.quantization is None or tensor.quantization.scale is None for tensor in tensors):
        raise ValueError("the output layer is not quantised: scale a float model's Dense layer instead")
    for tensor in tensors:
        tensor.quantization.scale = (np.asarray(tensor.quantization.scale, np.float64) * factor).astype(np.float32)
    return write_model(model)


def keep_outputs(data: bytes, rows: Sequence[int]) -> bytes:
    """A classifier file that answers only the outputs ``rows`` (in that order) of ``data``'s.

    The output must come from an int8 FULLY_CONNECTED operator (through a DEQUANTIZE or not):
    its weight rows, biases and per-channel scales are cut to ``rows`` and the output shapes
    follow, so each kept output is computed exactly as before and the argmax among them is the
    old model's choice among those labels (a keyword subset of a model of more words).
    """
    model = read_model(data)
    subgraph, operator, dequantize = _output_layer(model)
    weights_tensor = subgraph.tensors[int(operator.inputs[1])]
    num_outputs = int(weights_tensor.shape[0])
    rows = [int(row) for row in rows]
    if not rows or len(set(rows)) != len(rows) or not all(0 <= row < num_outputs for row in rows):
        raise ValueError(f"rows must be distinct output indices from 0 to {num_outputs - 1}, got {rows}")
    kept = [subgraph.tensors[int(operator.inputs[1])]]
    if len(operator.inputs) > 2 and operator.inputs[2] >= 0:
        kept.append(subgraph.tensors[int(operator.inputs[2])])
    dtypes = {schema.TensorType.INT8: np.int8, schema.TensorType.INT32: np.int32}
    for tensor in kept:
        if tensor.type not in dtypes:
            raise ValueError("the output layer is not quantised")
        dtype = dtypes[tensor.type]
        values = _values(model.buffers[tensor.buffer], dtype).reshape([int(size) for size in tensor.shape])
        _write_values(model, tensor, np.ascontiguousarray(values[rows]))
        tensor.shape = np.array([len(rows)] + [int(size) for size in tensor.shape[1:]], dtype=np.int32)
        quantization = tensor.quantization
        if quantization is not None and quantization.scale is not None and len(quantization.scale) == num_outputs:
            quantization.scale = np.asarray(quantization.scale)[rows]
            if quantization.zeroPoint is not None and len(quantization.zeroPoint) == num_outputs:
                quantization.zeroPoint = np.asarray(quantization.zeroPoint)[rows]
    outputs = [subgraph.tensors[int(operator.outputs[0])]]
    if dequantize is not None:
        outputs.append(subgraph.tensors[int(dequantize.outputs[0])])
    for tensor in outputs:
        tensor.shape = np.array(list(tensor.shape[:-1]) + [len(rows)], dtype=np.int32)
        tensor.shapeSignature = None
    return write_model(model)


def _output_layer(model):
    """(subgraph, the FULLY_CONNECTED operator computing the output, the DEQUANTIZE after it or None)."""
    subgraph = model.subgraphs[0]
    producers = {int(output): operator for operator in subgraph.operators or [] for output in operator.outputs}
    codes = {getattr(schema.BuiltinOperator, name): name for name in ("FULLY_CONNECTED", "DEQUANTIZE")}

    def kind(operator) -> str:
        return codes.get(_builtin_code(model, operator), "other")

    if subgraph.outputs is None or len(subgraph.outputs) != 1:
        raise ValueError("the model must have one output")
    operator, dequantize = producers.get(int(subgraph.outputs[0])), None
    if operator is not None and kind(operator) == "DEQUANTIZE":
        dequantize, operator = operator, producers.get(int(operator.inputs[0]))
    if operator is None or kind(operator) != "FULLY_CONNECTED":
        raise ValueError("the model's output does not come from a fully connected layer")
    return subgraph, operator, dequantize


def distinct_weight_values(data: bytes) -> List[int]:
    """How many distinct values each weight tensor of the weighted operators holds, in operator order."""
    model = read_model(data)
    return [int(np.unique(_values(model.buffers[weights.buffer], np.int8)).size)
            for _, _, weights in _weighted_operators(model)]
