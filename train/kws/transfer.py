"""Transfer from a delivered model: its convolutional body under a new head, for a few takes of new words.

The delivered models keep no Keras checkpoint, only their int8 ``.tflite``
files. :func:`float_model_from_tflite` rebuilds a float Keras model from such a
file: the scalar standardisation (``MUL``/``ADD``), every ``CONV_2D`` and
``DEPTHWISE_CONV_2D`` (batch norm is already folded into their weights and
biases; a fused ReLU is read from the output's quantisation, whose zero point
is -128 exactly when the range starts at 0), the global average pooling
(``MEAN``) and the output layer (``FULLY_CONNECTED``), each weight
dequantised with its per-channel scales. :func:`check_reconstruction`
measures how often the rebuilt model answers like the file.

:func:`transfer_model` keeps that body and puts a new output layer on it: one
row per new label, the open-set rows (``_silence_``, ``_unknown_``) copied
from the body's head when it has them, keyword rows always fresh (so a word
the body happens to know is not handed its old answer).

:func:`fit_classifier` trains any such model, or one built from scratch, with
the same loop: freshly augmented features every epoch
(:func:`train.kws.training.epoch_data`), the epoch with the best balanced
validation accuracy (mean recall over the labels, so a handful of keyword
clips counts as much as hundreds of negatives) kept. A transferred model
first trains its head alone (``head_epochs``, the body frozen), then with
``mode="fine-tune"`` everything at a tenth of the rate.
"""
from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, Tuple

import numpy as np

from pi_runtime.labels import NON_KEYWORD_LABELS

MODES = ("frozen", "fine-tune")
HEAD_LAYER = "new_logits"


@dataclass(frozen=True)
class Body:
    """A delivered model rebuilt in float.

    Attributes
    ----------
    model : keras.Model
        ``(frames, features, 1)`` features in, logits out (the delivered head).
    labels : tuple of str
        The delivered labels, one per output.
    model_input : native.params.ModelInput
        The features it was trained on (a transferred model must use them too).
    path : Path
    """

    model: object
    labels: Tuple[str, ...]
    model_input: object
    path: Path


def read_tflite_bytes(path) -> bytes:
    """The flatbuffer of a ``.tflite`` or ``.tflite.zlib`` file."""
    path = Path(path)
    data = path.read_bytes()
    return zlib.decompress(data) if path.name.endswith(".zlib") else data


def _dequantised(interpreter, details) -> np.ndarray:
    """A constant tensor as float32, with its per-channel (or per-tensor) scales and zero points."""
    values = interpreter.get_tensor(details["index"]).astype(np.float64)
    quantization = details["quantization_parameters"]
    scales, zero_points = quantization["scales"], quantization["zero_points"]
    if details["dtype"] == np.float32 or scales.size == 0:
        return values.astype(np.float32)
    shape = [1] * values.ndim
    if scales.size > 1:
        shape[quantization["quantized_dimension"]] = scales.size
    return ((values - zero_points.reshape(shape)) * scales.reshape(shape)).astype(np.float32)


def _is_relu(details) -> bool:
    """Whether an int8 output tensor's range starts at zero (a fused ReLU: zero point -128)."""
    zero_points = details["quantization_parameters"]["zero_points"]
    return details["dtype"] == np.int8 and zero_points.size == 1 and int(zero_points[0]) == -128


def _stride_and_padding(input_shape, output_shape, kernel: Sequence[int]) -> Tuple[int, str]:
    (in_h, in_w), (out_h, out_w) = input_shape[1:3], output_shape[1:3]
    for stride in (1, 2, 3, 4):
        if math.ceil(in_h / stride) == out_h and math.ceil(in_w / stride) == out_w:
            return stride, "same"
        if (in_h - kernel[0]) // stride + 1 == out_h and (in_w - kernel[1]) // stride + 1 == out_w:
            return stride, "valid"
    raise ValueError(f"cannot tell the stride of a convolution from {list(input_shape)} -> {list(output_shape)}")


def float_model_from_tflite(path) -> Body:
    """Rebuild the float Keras model of an int8 keyword-spotting ``.tflite`` (see the module docstring).

    Raises
    ------
    ValueError
        Naming the file when it has no sidecar labels/frontend, is not int8, or holds an operation
        other than quantise, scalar multiply/add, convolutions, mean, fully connected and dequantise.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from pi_runtime.model import load_model
    from train.keras_env import keras

    path = Path(path)
    loaded = load_model(path, require_sidecar=True)
    if not loaded.labels or loaded.model_input is None:
        raise ValueError(f"{path}: its sidecar needs labels and a frontend to serve as a body")
    interpreter = Interpreter(model_content=read_tflite_bytes(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    tensors = {details["index"]: details for details in interpreter.get_tensor_details()}
    input_details = interpreter.get_input_details()[0]
    frames, features = (int(size) for size in input_details["shape"][1:3])
    inputs = keras.Input(shape=(frames, features, 1), name="features")
    x, scale, offset = inputs, 1.0, 0.0
    convolutions = 0
    for op in interpreter._get_ops_details():  # the public API has no op list; this one is stable since TF 2.5
        name = op["op_name"]
        ins = [tensors[index] for index in op["inputs"] if index >= 0]
        out = tensors[op["outputs"][0]]
        if name in ("QUANTIZE", "DEQUANTIZE"):
            continue
        if name in ("MUL", "ADD") and x is inputs and ins[1]["shape"].size == 0:
            constant = float(_dequantised(interpreter, ins[1]))
            scale, offset = (scale * constant, offset * constant) if name == "MUL" else (scale, offset + constant)
            continue
        if x is inputs:
            x = keras.layers.Rescaling(scale, offset=offset, name="standardise")(inputs)
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            if ins[1]["dtype"] != np.int8:
                raise ValueError(f"{path}: only int8 models can serve as a body (weights are {ins[1]['dtype']})")
            weights = _dequantised(interpreter, ins[1])
            bias = _dequantised(interpreter, ins[2]) if len(ins) > 2 else None
            kernel = weights.shape[1:3]
            stride, padding = _stride_and_padding(ins[0]["shape"], out["shape"], kernel)
            activation = "relu" if _is_relu(out) else None
            convolutions += 1
            if name == "CONV_2D":  # [out, kh, kw, in] -> [kh, kw, in, out]
                layer = keras.layers.Conv2D(weights.shape[0], tuple(kernel), strides=stride, padding=padding,
                                            use_bias=bias is not None, activation=activation,
                                            name=f"conv{convolutions}")
                kernel_weights = weights.transpose(1, 2, 3, 0)
            else:  # [1, kh, kw, channels] -> [kh, kw, channels, 1]
                layer = keras.layers.DepthwiseConv2D(tuple(kernel), strides=stride, padding=padding,
                                                     use_bias=bias is not None, activation=activation,
                                                     name=f"dw{convolutions}")
                kernel_weights = weights[0][..., np.newaxis]
            x = layer(x)
            layer.set_weights([kernel_weights] + ([bias] if bias is not None else []))
        elif name == "MEAN":
            x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        elif name == "FULLY_CONNECTED":
            weights = _dequantised(interpreter, ins[1])
            layer = keras.layers.Dense(weights.shape[0], name="logits")
            x = layer(x)
            layer.set_weights([weights.T, _dequantised(interpreter, ins[2])])
        else:
            raise ValueError(f"{path}: operation {name} cannot be rebuilt (a DS-CNN or CNN body is expected)")
    if x is inputs:
        raise ValueError(f"{path}: no layers found")
    model = keras.Model(inputs, x, name=f"body_{path.name.split('.')[0]}")
    if model.output_shape[-1] != len(loaded.labels) or not isinstance(model.layers[-1], keras.layers.Dense):
        raise ValueError(f"{path}: expected a model ending in a fully connected layer with one output per label")
    return Body(model=model, labels=tuple(loaded.labels), model_input=loaded.model_input, path=path)


def check_reconstruction(body: Body, features: np.ndarray) -> float:
    """Share (0..1) of ``features`` (float32[n, frames, features]) on which the rebuilt float model and the
    delivered file give the same answer."""
    from pi_runtime.model import load_model

    loaded = load_model(body.path)
    from_file = np.array([int(np.argmax(loaded.predict(example))) for example in features])
    rebuilt = np.argmax(body.model.predict(features[..., np.newaxis], batch_size=256, verbose=0), axis=1)
    return float(np.mean(from_file == rebuilt))


def transfer_model(body: Body, labels: Sequence[str], *, seed: int = 0):
    """The body's layers up to its pooling, a new output layer of ``labels`` (see the module docstring)."""
    from train.keras_env import keras

    old_head = body.model.layers[-1]
    new_head = keras.layers.Dense(len(labels), name=HEAD_LAYER,
                                  kernel_initializer=keras.initializers.GlorotUniform(seed=seed))
    model = keras.Model(body.model.input, new_head(old_head.input), name="transferred")
    kernel, bias = new_head.get_weights()
    old_kernel, old_bias = old_head.get_weights()
    for row, label in enumerate(labels):
        if label in NON_KEYWORD_LABELS and label in body.labels:
            kernel[:, row], bias[row] = old_kernel[:, body.labels.index(label)], old_bias[body.labels.index(label)]
    new_head.set_weights([kernel, bias])
    return model


def set_body_trainable(model, trainable: bool) -> None:
    """Freeze or release every layer but the new output layer."""
    for layer in model.layers:
        if layer.name != HEAD_LAYER:
            layer.trainable = trainable


def balanced_accuracy(predicted: np.ndarray, label_ids: np.ndarray) -> float:
    """Mean recall over the labels that have clips (0..1)."""
    recalls = [np.mean(predicted[label_ids == label] == label) for label in np.unique(label_ids)]
    return float(np.mean(recalls)) if recalls else 0.0


def fit_classifier(model, config, splits, train_features: np.ndarray, val_features: np.ndarray, *,
                   epochs: int, learning_rate: float, seed: int, feature_backend: str = "native",
                   name: str = "epoch", start_from_current: bool = False,
                   say: Callable[[str], None] = lambda message: None) -> Tuple[float, int]:
    """Train a Keras classifier on ``splits.train`` for ``epochs`` epochs (Adam, cosine decay from
    ``learning_rate`` to 1 %, cross-entropy on logits with ``config.label_smoothing``), keeping the weights of
    the epoch with the best balanced validation accuracy; returns (that accuracy, its epoch; 0 = the weights
    before training, when ``start_from_current``).

    ``train_features`` / ``val_features``: float32[n, frames, features] of the clean clips; each epoch's
    training input is freshly augmented by ``config.augment``.
    """
    from train.keras_env import keras
    from train.kws.training import epoch_data

    num_labels = len(splits.labels)
    rng = np.random.default_rng(seed)
    steps = int(np.ceil(len(splits.train) / config.batch_size)) * epochs
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps,
                                                                                         alpha=0.01)),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True,
                                                            label_smoothing=config.label_smoothing))
    feature_mean = float(train_features.mean())
    identity = np.eye(num_labels, dtype=np.float32)

    def validate() -> float:
        logits = model.predict(val_features[..., np.newaxis], batch_size=512, verbose=0)
        return balanced_accuracy(np.argmax(logits, axis=1), splits.val.label_ids)

    best_val, best_epoch, best_weights = -1.0, -1, None
    if start_from_current:
        best_val, best_epoch, best_weights = validate(), 0, model.get_weights()
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        x, y = epoch_data(config, splits.train, train_features, rng, feature_mean, feature_backend)
        history = model.fit(x, identity[y], batch_size=config.batch_size, epochs=epoch, initial_epoch=epoch - 1,
                            shuffle=True, verbose=0)
        val_accuracy = validate()
        if val_accuracy > best_val:
            best_val, best_epoch, best_weights = val_accuracy, epoch, model.get_weights()
        say(f"  {name} {epoch:3d}/{epochs}: loss {history.history['loss'][-1]:.3f} balanced val "
            f"{val_accuracy:.4f}{' *' if best_epoch == epoch else ''}  [{time.perf_counter() - started:.0f} s]")
    model.set_weights(best_weights)
    return best_val, best_epoch
