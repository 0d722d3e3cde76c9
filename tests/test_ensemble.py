"""Several classifiers as one file answering the mean of their outputs (train.toolbox.ensemble)."""
import numpy as np
import pytest

from train import keras_env as tf_env
from train.toolbox.ensemble import average_outputs

keras = tf_env.keras


def _int8_model(seed, outputs=4, input_shape=(10, 6, 1)):
    from train.toolbox.export import convert_to_tflite

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(outputs, bias_initializer="random_normal")(x)
    data = np.random.default_rng(seed).normal(size=(32,) + input_shape).astype(np.float32)
    return convert_to_tflite(keras.Model(inputs, x), quantization="int8", representative_data=data)


def _run(data, x, tmp_path, name):
    from pi_runtime.model import load_model

    path = tmp_path / f"{name}.tflite"
    path.write_bytes(data)
    model = load_model(path)
    return np.stack([model.predict(example).ravel() for example in x])


def test_the_file_answers_the_mean_of_its_members(tmp_path):
    members = [_int8_model(seed) for seed in (1, 2, 3)]
    x = np.random.default_rng(9).normal(size=(12, 10, 6, 1)).astype(np.float32)
    answers = [_run(member, x, tmp_path, f"m{index}") for index, member in enumerate(members)]
    for count in (2, 3):
        joined = _run(average_outputs(members[:count]), x, tmp_path, f"e{count}")
        np.testing.assert_allclose(joined, np.mean(answers[:count], axis=0), rtol=1e-6, atol=1e-6)
    # one model with itself: its own answers
    np.testing.assert_allclose(_run(average_outputs([members[0]] * 2), x, tmp_path, "same"), answers[0], atol=1e-6)


def test_members_that_do_not_fit_together_are_refused():
    first = _int8_model(1)
    with pytest.raises(ValueError, match="at least 2"):
        average_outputs([first])
    with pytest.raises(ValueError, match="outputs"):
        average_outputs([first, _int8_model(2, outputs=5)])
    with pytest.raises(ValueError, match="inputs"):
        average_outputs([first, _int8_model(2, input_shape=(12, 6, 1))])
    with pytest.raises(ValueError, match="TFL3"):
        average_outputs([first, b"not a model"])
