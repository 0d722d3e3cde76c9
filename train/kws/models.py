"""Keyword-spotting models, each with a width multiplier ``alpha``.

``alpha`` scales every layer's channel count (structured pruning: a model with
``alpha = 0.5`` is the full model with half its filters removed). All models
take ``(frames, features, 1)`` features and return logits.

* ``ds_cnn`` - the Lab 4 DS-CNN: Conv2D 3x3 stride 2 -> BN ReLU ->
  2 x (DepthwiseConv2D 3x3 -> Conv2D 1x1 -> BN ReLU) -> GAP -> Dense.
* ``cnn`` - the Lab 3 CNN: 3 x (Conv2D 3x3 -> BN ReLU), the first with stride 2,
  -> GAP -> Dense.
* ``ds_cnn_bn`` - the DS-CNN of MLPerf Tiny's reference, which serves the
  limits better: BN ReLU after every depthwise convolution too, and a
  configurable number of blocks (4 by default).

Each ends in a global pooling over time and frequency (``train.kws.training.GLOBAL_POOLINGS``):
the average by default; the maximum keeps each channel's strongest evidence
wherever in the second it lies, instead of diluting it with the frames around
the word.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Tuple

from train.keras_env import keras
from train.kws.training import check_global_pooling

BASE_FILTERS = {"ds_cnn": 256, "cnn": 128, "ds_cnn_bn": 256}


def scaled_filters(base: int, alpha: float) -> int:
    """Channels of a layer with ``base`` channels at width multiplier ``alpha`` (at least 1)."""
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    return max(1, int(round(base * alpha)))


def _input_layers(input_shape: Tuple[int, int], feature_mean: float, feature_std: float):
    frames, features = input_shape
    inputs = keras.Input(shape=(frames, features, 1), name="features")
    # One scalar affine for all features: leaves the int8 input quantisation
    # (one scale for the whole tensor) as informative as the raw features.
    x = keras.layers.Rescaling(1.0 / feature_std, offset=-feature_mean / feature_std, name="standardise")(inputs)
    return inputs, x


def _global_pooling(x, kind: str):
    if check_global_pooling(kind) == "average":
        return keras.layers.GlobalAveragePooling2D(name="gap")(x)
    if kind == "max":
        return keras.layers.GlobalMaxPooling2D(name="gmp")(x)
    return keras.layers.Concatenate(name="gap_gmp")([keras.layers.GlobalAveragePooling2D(name="gap")(x),
                                                     keras.layers.GlobalMaxPooling2D(name="gmp")(x)])


def _bn_relu(x, name: str):
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def build_ds_cnn(input_shape: Tuple[int, int], num_labels: int, *, alpha: float = 0.25,
                 feature_mean: float = 0.0, feature_std: float = 1.0, blocks: int = 2,
                 bn_after_depthwise: bool = False, first_kernel: Sequence[int] = (3, 3),
                 channels: Optional[Sequence[int]] = None, kernel_size: int = 3,
                 first_stride: Sequence[int] = (2, 2), global_pooling: str = "average",
                 name: str = "ds_cnn") -> keras.Model:
    """Depthwise-separable CNN.

    Parameters
    ----------
    input_shape : (frames, features)
    num_labels : int
    alpha : float
        Width multiplier on 256 channels.
    feature_mean, feature_std : float
        Scalar statistics of the training features, folded into the model.
    blocks : int
        Depthwise-separable blocks after the first convolution.
    bn_after_depthwise : bool
        Batch norm and ReLU after each depthwise convolution too (MLPerf Tiny).
    channels : sequence of ``blocks + 1`` ints, optional
        Channels of the first convolution and of each block's pointwise convolution
        (the architecture search's per-block widths); None: 256 x ``alpha`` everywhere.
    kernel_size : int
        Of the depthwise convolutions (square).
    first_stride : (time, frequency)
        Stride of the first convolution.
    global_pooling : one of ``train.kws.training.GLOBAL_POOLINGS``
    """
    if channels is None:
        channels = [scaled_filters(BASE_FILTERS["ds_cnn"], alpha)] * (blocks + 1)
    if len(channels) != blocks + 1 or min(channels) < 1:
        raise ValueError(f"channels must be {blocks + 1} positive ints (first layer and {blocks} blocks), "
                         f"got {list(channels)}")
    inputs, x = _input_layers(input_shape, feature_mean, feature_std)
    x = keras.layers.Conv2D(int(channels[0]), tuple(first_kernel), strides=tuple(first_stride), padding="same",
                            use_bias=False, name="conv1")(x)
    x = _bn_relu(x, "conv1")
    for block in range(1, blocks + 1):
        x = keras.layers.DepthwiseConv2D(kernel_size, padding="same", use_bias=False, name=f"dw{block}")(x)
        if bn_after_depthwise:
            x = _bn_relu(x, f"dw{block}")
        x = keras.layers.Conv2D(int(channels[block]), 1, use_bias=False, name=f"pw{block}")(x)
        x = _bn_relu(x, f"pw{block}")
    x = _global_pooling(x, global_pooling)
    outputs = keras.layers.Dense(num_labels, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def build_ds_cnn_bn(input_shape: Tuple[int, int], num_labels: int, *, alpha: float = 0.25,
                    feature_mean: float = 0.0, feature_std: float = 1.0, blocks: int = 4,
                    global_pooling: str = "average") -> keras.Model:
    """MLPerf-Tiny-style DS-CNN: BN ReLU after depthwise and pointwise, ``blocks`` blocks."""
    return build_ds_cnn(input_shape, num_labels, alpha=alpha, feature_mean=feature_mean, feature_std=feature_std,
                        blocks=blocks, bn_after_depthwise=True, global_pooling=global_pooling, name="ds_cnn_bn")


def build_cnn(input_shape: Tuple[int, int], num_labels: int, *, alpha: float = 0.5,
              feature_mean: float = 0.0, feature_std: float = 1.0, global_pooling: str = "average") -> keras.Model:
    """The Lab 3 CNN: three 3x3 convolutions (first stride 2) on 128 x ``alpha`` channels."""
    filters = scaled_filters(BASE_FILTERS["cnn"], alpha)
    inputs, x = _input_layers(input_shape, feature_mean, feature_std)
    for layer, strides in enumerate((2, 1, 1), start=1):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"conv{layer}")(x)
        x = _bn_relu(x, f"conv{layer}")
    x = _global_pooling(x, global_pooling)
    outputs = keras.layers.Dense(num_labels, name="logits")(x)
    return keras.Model(inputs, outputs, name="cnn")


MODELS: Dict[str, Callable[..., keras.Model]] = {
    "ds_cnn": build_ds_cnn,
    "ds_cnn_bn": build_ds_cnn_bn,
    "cnn": build_cnn,
}


def build_model(name: str, input_shape: Tuple[int, int], num_labels: int, *, alpha: float,
                feature_mean: float = 0.0, feature_std: float = 1.0,
                blocks: Optional[int] = None, first_kernel: Optional[Sequence[int]] = None,
                kernel_size: Optional[int] = None, first_stride: Optional[Sequence[int]] = None,
                global_pooling: str = "average") -> keras.Model:
    """Build model ``name`` (a key of ``MODELS``); ``first_kernel`` and ``first_stride`` (time,
    frequency) and ``kernel_size`` (the depthwise convolutions') apply to the plain DS-CNN, None
    keeps its 3 x 3 kernels and stride 2 x 2; ``global_pooling`` (``train.kws.training.GLOBAL_POOLINGS``) to every
    model."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    if num_labels < 2:
        raise ValueError(f"need at least two labels, got {num_labels}")
    kwargs = dict(alpha=alpha, feature_mean=feature_mean, feature_std=feature_std, global_pooling=global_pooling)
    if blocks is not None:
        if name == "cnn":
            raise ValueError("the Lab 3 CNN has a fixed depth; 'blocks' applies to the DS-CNNs")
        kwargs["blocks"] = blocks
    for option, value in (("first_kernel", first_kernel), ("kernel_size", kernel_size),
                          ("first_stride", first_stride)):
        if value is not None:
            if name != "ds_cnn":
                raise ValueError(f"{option!r} applies to the plain DS-CNN ('ds_cnn'), not {name!r}")
            kwargs[option] = value
    return MODELS[name](tuple(input_shape), num_labels, **kwargs)
