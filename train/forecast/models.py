"""Multi-step, multi-output forecasting models: output [batch, out_steps, features].

Every kind has a width multiplier (``width``) that scales its hidden units:

* ``linear``: one Dense layer from the flat input to all outputs (no width).
* ``mlp``: Dense(``round(32 * width)``, ReLU) -> Dense(out_steps * features).
* ``cnn``: Conv1D(``round(16 * width)`` filters, kernel 3, ReLU) over the rows -> Dense.
* ``lstm``: LSTM(``round(16 * width)``) over the rows -> Dense.

``linear`` and ``mlp`` take the ``flat`` layout of ``pi_runtime.forecast``
(normalised readings flattened plus the last reading's time features), ``cnn``
and ``lstm`` the ``rows`` layout [input_width, features + time features].
Predicting the change from the last reading (``target="delta"``) is done by the
runtime adding it back, which costs no operator in the file.
"""
from __future__ import annotations

MODEL_KINDS = ("linear", "mlp", "cnn", "lstm")
BASE_UNITS = {"mlp": 32, "cnn": 16, "lstm": 16}


def layout_of(kind: str) -> str:
    """Input layout a model kind takes ("flat" or "rows")."""
    _check_kind(kind)
    return "flat" if kind in ("linear", "mlp") else "rows"


def hidden_units(kind: str, width: float) -> int:
    """Hidden units (or filters) of ``kind`` at width multiplier ``width`` (at least 1)."""
    _check_kind(kind)
    if width <= 0:
        raise ValueError(f"width multiplier must be > 0, got {width}")
    return max(1, int(round(BASE_UNITS.get(kind, 0) * width)))


def _check_kind(kind: str) -> None:
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")


def build_model(kind: str, *, input_width: int = 6, features: int = 2, time_features: int = 0,
                out_steps: int = 6, width: float = 1.0, seed: int = 0):
    """Build an uncompiled tf_keras model.

    Parameters
    ----------
    kind : one of ``MODEL_KINDS``.
    input_width : readings in.
    features : forecast variables per reading (e.g. 2: T and RH).
    time_features : time-of-day inputs per reading (0 or 2).
    out_steps : steps forecast.
    width : width multiplier of the hidden layer.

    Returns
    -------
    model with input [batch, input_width * features + time_features] (flat kinds)
    or [batch, input_width, features + time_features] (row kinds), output
    [batch, out_steps, features].
    """
    from train.keras_env import keras  # here, so that the CLI's --help does not wait for TensorFlow

    keras.utils.set_random_seed(seed)
    outputs = out_steps * features
    if layout_of(kind) == "flat":
        inputs = keras.Input((input_width * features + time_features,), name="window")
        x = inputs
    else:
        inputs = keras.Input((input_width, features + time_features), name="window")
    units = hidden_units(kind, width) if kind != "linear" else 0
    if kind == "mlp":
        x = keras.layers.Dense(units, activation="relu", name="hidden")(x)
    elif kind == "cnn":
        x = keras.layers.Conv1D(units, kernel_size=min(3, input_width), activation="relu", name="conv")(inputs)
        x = keras.layers.Flatten()(x)
    elif kind == "lstm":
        x = keras.layers.LSTM(units, name="lstm")(inputs)
    x = keras.layers.Dense(outputs, name="out")(x)
    model = keras.Model(inputs, keras.layers.Reshape((out_steps, features), name="steps")(x),
                        name=f"{kind}_w{width:g}")
    return model
