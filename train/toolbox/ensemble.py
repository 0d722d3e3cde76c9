"""Several TFLite classifiers as one file that answers the mean of their outputs.

:func:`average_outputs` joins the graphs of models that read the same input
into one subgraph: each model's operators run on the one input, and a float
ADD and MUL at the end return the mean of their outputs (of their logits, for
the keyword models: an ensemble whose argmax is the models' joint vote). The
file loads and runs like any other; its size is the sum of the members' (with
``train.toolbox.weight_sharing`` two networks fit where one did). Works on the
flatbuffer (``train.toolbox.tflite_slim``), no retraining.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from train.toolbox.tflite_slim import _builtin_code, read_model, schema, slim_tflite, write_model

MIN_MODELS = 2


def _signature(model, tensor_index: int):
    tensor = model.subgraphs[0].tensors[tensor_index]
    return int(tensor.type), tuple(int(size) for size in tensor.shape)


def _check_members(models) -> None:
    for model in models:
        if any(code.customCode for code in model.operatorCodes or []):
            raise ValueError("custom operators cannot be joined (their codes name no builtin kernel)")
        if len(model.subgraphs or []) != 1:
            raise ValueError("each model must have exactly one subgraph")
        subgraph = model.subgraphs[0]
        if len(subgraph.inputs) != 1 or len(subgraph.outputs) != 1:
            raise ValueError("each model must have one input and one output")
    first = models[0]
    for model in models[1:]:
        if _signature(model, int(model.subgraphs[0].inputs[0])) != _signature(first, int(first.subgraphs[0].inputs[0])):
            raise ValueError("the models must read inputs of one type and shape")
        if (_signature(model, int(model.subgraphs[0].outputs[0]))
                != _signature(first, int(first.subgraphs[0].outputs[0]))):
            raise ValueError("the models must answer outputs of one type and shape")
    if _signature(first, int(first.subgraphs[0].outputs[0]))[0] != schema.TensorType.FLOAT32:
        raise ValueError("the outputs must be float32 (a model with int8 outputs has no mean to take here)")


def _opcode_index(model, builtin: int, version: int = 1) -> int:
    """The index of ``builtin``'s operator code in ``model`` (added if absent), at least at ``version``:
    a kernel of a later version runs what an earlier one's did, not the other way round."""
    for index, code in enumerate(model.operatorCodes):
        if max(int(code.builtinCode), int(code.deprecatedBuiltinCode)) == builtin:
            code.version = max(int(code.version), int(version))
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    code.version = int(version)
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _add_tensor(model, shape, *, values: np.ndarray = None) -> int:
    subgraph = model.subgraphs[0]
    tensor = schema.TensorT()
    tensor.shape = np.array(shape, dtype=np.int32)
    tensor.type = schema.TensorType.FLOAT32
    tensor.buffer = 0
    if values is not None:
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(np.asarray(values, np.float32).tobytes(), dtype=np.uint8)
        model.buffers.append(buffer)
        tensor.buffer = len(model.buffers) - 1
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def _add_operator(model, builtin: int, options_type: int, options, inputs: List[int], outputs: List[int]) -> None:
    operator = schema.OperatorT()
    operator.opcodeIndex = _opcode_index(model, builtin)
    operator.inputs = np.array(inputs, dtype=np.int32)
    operator.outputs = np.array(outputs, dtype=np.int32)
    operator.builtinOptionsType = options_type
    operator.builtinOptions = options
    model.subgraphs[0].operators.append(operator)


def average_outputs(members: Sequence[bytes]) -> bytes:
    """One TFLite file answering the mean of the outputs of ``members`` (TFLite files, at least two).

    Every member must have one subgraph, one input and one float32 output, the inputs of one type
    and shape and the outputs too. The first member's input feeds all of them.
    """
    if len(members) < MIN_MODELS:
        raise ValueError(f"need at least {MIN_MODELS} models, got {len(members)}")
    models = [read_model(bytes(data)) for data in members]
    _check_members(models)
    merged = models[0]
    merged.signatureDefs = None  # one signature per member would no longer describe the graph
    subgraph = merged.subgraphs[0]
    input_index = int(subgraph.inputs[0])
    outputs = [int(subgraph.outputs[0])]
    for model in models[1:]:
        member = model.subgraphs[0]
        buffer_of: Dict[int, int] = {0: 0}
        for index, buffer in enumerate(model.buffers[1:], start=1):
            merged.buffers.append(buffer)
            buffer_of[index] = len(merged.buffers) - 1
        offset = len(subgraph.tensors)
        member_input = int(member.inputs[0])
        for tensor in member.tensors:
            tensor.buffer = buffer_of[int(tensor.buffer)]
            subgraph.tensors.append(tensor)

        def mapped(index: int) -> int:
            index = int(index)
            return index if index < 0 else input_index if index == member_input else index + offset

        for operator in member.operators:
            code = model.operatorCodes[operator.opcodeIndex]
            operator.opcodeIndex = _opcode_index(merged, _builtin_code(model, operator), code.version)
            operator.inputs = np.array([mapped(index) for index in operator.inputs], dtype=np.int32)
            operator.outputs = np.array([mapped(index) for index in operator.outputs], dtype=np.int32)
            subgraph.operators.append(operator)
        outputs.append(mapped(member.outputs[0]))
    shape = [int(size) for size in subgraph.tensors[outputs[0]].shape]
    total = outputs[0]
    for output in outputs[1:]:
        summed = _add_tensor(merged, shape)
        _add_operator(merged, schema.BuiltinOperator.ADD, schema.BuiltinOptions.AddOptions, schema.AddOptionsT(),
                      [total, output], [summed])
        total = summed
    weight = _add_tensor(merged, shape, values=np.full(shape, 1.0 / len(models), np.float32))
    mean = _add_tensor(merged, shape)
    _add_operator(merged, schema.BuiltinOperator.MUL, schema.BuiltinOptions.MulOptions, schema.MulOptionsT(),
                  [total, weight], [mean])
    subgraph.outputs = np.array([mean], dtype=np.int32)
    # The members' own input tensors are read by nothing now; slimming drops them and any metadata.
    return slim_tflite(write_model(merged))

