"""The shared optimisation toolbox: pruning, QAT, export, byte shaving, limits."""
import io
import zlib

import numpy as np
import pytest

from train.toolbox.limits import Limit, check_limits, format_limits_table

# --- limits (no TensorFlow needed) -------------------------------------------------


@pytest.mark.parametrize(
    "measured, op, bound, passed",
    [
        (1.0, "<", 2.0, True), (2.0, "<", 2.0, False), (2.0, "<=", 2.0, True), (2.1, "<=", 2.0, False),
        (95.0, ">", 90.0, True), (90.0, ">", 90.0, False), (90.0, ">=", 90.0, True), (89.9, ">=", 90.0, False),
        (float("nan"), "<", 2.0, False), (float("nan"), ">", 2.0, False),
    ],
)
def test_limit_comparisons(measured, op, bound, passed):
    assert Limit("x", measured, bound, "u", op).passed is passed


def test_check_limits_prints_table_and_returns_verdict():
    out = io.StringIO()
    ok = check_limits([Limit("size", 1.5, 2.0, "kB", "<"), Limit("T MAE", 0.4, 0.5, "degC", "<")], stream=out)
    assert ok is True
    assert out.getvalue().count("PASS") == 3  # two rows and the verdict
    out = io.StringIO()
    ok = check_limits([Limit("size", 1.5, 2.0, "kB", "<"), Limit("accuracy", 89.0, 90.0, "%", ">")], stream=out)
    assert ok is False
    text = out.getvalue()
    assert "| accuracy" in text and "FAIL" in text and "1 of 2 limits missed (accuracy)" in text


def test_limits_table_rows_and_bad_input():
    table = format_limits_table([Limit("size", 1234.0, 1700.0, "B", "<")])
    lines = table.splitlines()
    assert len(lines) == 3 and "1234" in lines[2] and "< 1700" in lines[2] and lines[2].split("|")[-2].strip() == "PASS"
    with pytest.raises(ValueError, match="op must be one of"):
        Limit("x", 1, 2, "", "=<")
    with pytest.raises(ValueError, match="at least one limit"):
        check_limits([])


# --- models and data for the TensorFlow parts ---------------------------------------

tf_env = pytest.importorskip("train.keras_env", reason="TensorFlow (train extra) not installed")
keras = tf_env.keras


def _toy_data(examples=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(examples, 6, 2)).astype(np.float32)
    y = (x[:, ::-1, :] * 0.5 + 0.1 * x[:, -1:, :]).astype(np.float32)  # learnable, output [6, 2]
    return x, y


def _toy_model(units=16, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 2))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(units, activation="relu")(x)
    x = keras.layers.Dense(12)(x)
    return keras.Model(inputs, keras.layers.Reshape((6, 2))(x))


@pytest.fixture(scope="module")
def trained():
    x, y = _toy_data()
    model = _toy_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    return model, x, y


def _interpreter_tensors(path):
    from pi_runtime.model import load_model

    loaded = load_model(path)
    return loaded, loaded.interpreter.get_tensor_details()


# --- pruning ------------------------------------------------------------------------


def test_schedule_from_fractions():
    from train.toolbox.pruning import polynomial_decay_schedule

    schedule = polynomial_decay_schedule(final_sparsity=0.6, steps_per_epoch=10, epochs=5,
                                         begin_fraction=0.2, end_fraction=0.8, updates=4)
    assert schedule.begin_step == round(0.2 * 49)
    assert schedule.end_step <= round(0.8 * 49)
    assert (schedule.end_step - schedule.begin_step) % schedule.frequency_steps == 0
    with pytest.raises(ValueError, match="final_sparsity"):
        polynomial_decay_schedule(final_sparsity=1.0, steps_per_epoch=10, epochs=1)
    with pytest.raises(ValueError, match="begin_fraction"):
        polynomial_decay_schedule(final_sparsity=0.5, steps_per_epoch=10, epochs=1, begin_fraction=0.9, end_fraction=0.5)


@pytest.mark.parametrize("final_sparsity", [0.5, 0.8])
def test_pruning_reaches_requested_sparsity(trained, tmp_path, final_sparsity):
    from train.toolbox.export import export_model
    from train.toolbox.pruning import prune_low_magnitude, strip_pruning, weight_sparsity

    model, x, y = trained
    assert weight_sparsity(model) < 0.05
    epochs, batch = 2, 32
    pruned, callbacks = prune_low_magnitude(model, final_sparsity=final_sparsity, steps_per_epoch=len(x) // batch,
                                            epochs=epochs, begin_fraction=0.0, end_fraction=0.5)
    pruned.compile(optimizer=keras.optimizers.Adam(0.001), loss="mse")
    pruned.fit(x, y, epochs=epochs, batch_size=batch, verbose=0, callbacks=callbacks)
    stripped = strip_pruning(pruned)
    assert weight_sparsity(stripped) == pytest.approx(final_sparsity, abs=0.02)
    # and the zeros survive export, float and int8
    for quantization in ("none", "int8"):
        result = export_model(stripped, tmp_path / f"p_{quantization}.tflite", quantization=quantization,
                              representative_data=x)
        assert weight_sparsity(result.path) == pytest.approx(final_sparsity, abs=0.02)


# --- export, quantisation -------------------------------------------------------------


def test_float_export_matches_keras(trained, tmp_path):
    from pi_runtime.model import load_model
    from train.toolbox.export import export_model

    model, x, _ = trained
    result = export_model(model, tmp_path / "f.tflite")
    loaded = load_model(result.path)
    expected = model.predict(x[:8], verbose=0)
    got = np.stack([loaded.predict(example).reshape(6, 2) for example in x[:8]])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert result.size_bytes == result.tflite_bytes == result.path.stat().st_size


def test_int8_export_has_int8_tensors(trained, tmp_path):
    from train.toolbox.export import export_model

    model, x, y = trained
    result = export_model(model, tmp_path / "q.tflite", quantization="int8", representative_data=x, int8_io=True)
    loaded, tensors = _interpreter_tensors(result.path)
    assert loaded.input_dtype == np.int8
    kinds = {np.dtype(t["dtype"]) for t in tensors}
    assert kinds <= {np.dtype(np.int8), np.dtype(np.int32)}, kinds  # int32: biases only
    weights = [t for t in tensors if len(t["shape"]) == 2 and t["shape"][0] > 1]
    assert weights and all(np.dtype(t["dtype"]) == np.int8 for t in weights)
    # quantised, but still the same function: error small next to the outputs' spread
    expected = model.predict(x[:32], verbose=0)
    got = np.stack([loaded.predict(example).reshape(6, 2) for example in x[:32]])
    assert np.mean(np.abs(got - expected)) < 0.1 * np.std(expected)


def test_int8_needs_representative_data(trained, tmp_path):
    from train.toolbox.export import export_model

    model, _, _ = trained
    with pytest.raises(ValueError, match="representative_data"):
        export_model(model, tmp_path / "q.tflite", quantization="int8")
    with pytest.raises(ValueError, match="quantization must be one of"):
        export_model(model, tmp_path / "q.tflite", quantization="int4")
    with pytest.raises(ValueError, match="int8_io"):
        export_model(model, tmp_path / "q.tflite", quantization="weights", int8_io=True)


def test_weights_only_export_has_int8_weights_and_float_io(trained, tmp_path):
    from pi_runtime.model import load_model
    from train.toolbox.export import export_model

    model, x, _ = trained
    result = export_model(model, tmp_path / "w.tflite", quantization="weights")
    loaded, tensors = _interpreter_tensors(result.path)
    assert loaded.input_dtype == np.float32
    assert np.dtype(loaded.interpreter.get_output_details()[0]["dtype"]) == np.float32
    weights = [t for t in tensors if len(t["shape"]) == 2 and t["shape"][0] > 1]
    assert len(weights) == 2 and all(np.dtype(t["dtype"]) == np.int8 for t in weights)
    float_size = export_model(model, tmp_path / "f.tflite").tflite_bytes
    # 4 bytes -> 1 byte per weight, less a few bytes for the scales
    assert result.tflite_bytes < float_size - 2.5 * (12 * 16 + 16 * 12)
    expected = model.predict(x[:32], verbose=0)
    got = np.stack([load_model(result.path).predict(example).reshape(6, 2) for example in x[:32]])
    assert np.mean(np.abs(got - expected)) < 0.05 * np.std(expected)


def test_zlib_round_trip_and_sidecar(trained, tmp_path):
    from pi_runtime.model import load_model
    from pi_runtime.sidecar import new_sidecar, read_sidecar
    from train.toolbox.export import export_model

    model, x, _ = trained
    sidecar = new_sidecar("forecast", forecast={"features": ["T (degC)", "rh (%)"], "input_width": 6, "out_steps": 6,
                                                 "mean": [9.0, 76.0], "std": [8.0, 16.0], "time_step_s": 600,
                                                 "target": "value"}, training={"epochs": 3})
    plain = export_model(model, tmp_path / "m.tflite", sidecar=sidecar)
    packed = export_model(model, tmp_path / "z.tflite", compress=True, sidecar=sidecar)
    assert packed.path.name == "z.tflite.zlib" and not (tmp_path / "z.tflite").exists()
    assert packed.size_bytes == packed.zlib_bytes == packed.path.stat().st_size < plain.size_bytes
    assert zlib.decompress(packed.path.read_bytes()) == plain.path.read_bytes()
    assert read_sidecar(packed.path) == sidecar == read_sidecar(plain.path)
    a, b = load_model(plain.path), load_model(packed.path)
    assert b.sidecar == sidecar
    np.testing.assert_array_equal(a.predict(x[0]), b.predict(x[0]))


def test_quantization_aware_training_exports_int8(trained, tmp_path):
    from train.toolbox.export import export_model
    from train.toolbox.quantization import quantization_aware

    model, x, y = trained
    qat = quantization_aware(model)
    assert any("quant" in layer.name for layer in qat.layers)
    qat.compile(optimizer=keras.optimizers.Adam(0.001), loss="mse")
    qat.fit(x, y, epochs=1, batch_size=32, verbose=0)
    result = export_model(qat, tmp_path / "qat.tflite", quantization="int8", representative_data=x, int8_io=True)
    loaded, tensors = _interpreter_tensors(result.path)
    assert loaded.input_dtype == np.int8
    assert all(np.dtype(t["dtype"]) in (np.int8, np.int32) for t in tensors)
    # the ranges are the ones learned in training, not calibrated on the representative set
    rescaled = export_model(qat, tmp_path / "qat2.tflite", quantization="int8", representative_data=100 * x,
                            int8_io=True)
    assert rescaled.path.read_bytes() == result.path.read_bytes()


# --- byte shaving -------------------------------------------------------------------


@pytest.mark.parametrize("quantization", ["none", "weights", "int8"])
def test_slim_file_loads_and_gives_identical_outputs(trained, quantization, tmp_path):
    from pi_runtime.model import load_model
    from train.toolbox.export import convert_to_tflite
    from train.toolbox.tflite_slim import byte_breakdown, slim_tflite

    model, x, _ = trained
    original = convert_to_tflite(model, quantization=quantization, representative_data=x,
                                 int8_io=quantization == "int8")
    breakdown = byte_breakdown(original)
    assert sum(size for name, size in breakdown.items() if name != "total") == breakdown["total"] == len(original)
    assert breakdown["signature defs"] > 0 and breakdown["metadata (min_runtime_version, conversion metadata)"] > 0
    for drop_io_reshapes in (False, True):
        slim = slim_tflite(original, drop_io_reshapes=drop_io_reshapes)
        assert len(slim) < 0.75 * len(original)
        (tmp_path / "a.tflite").write_bytes(original)
        (tmp_path / "b.tflite").write_bytes(slim)
        a, b = load_model(tmp_path / "a.tflite"), load_model(tmp_path / "b.tflite")
        if drop_io_reshapes:
            assert b.input_shape == (1, 12) and b.output_shape == (1, 12)
        for example in x[:16]:
            np.testing.assert_array_equal(a.predict(example).ravel(), b.predict(example).ravel())
        # TensorFlow's own interpreter (the code base of tflite_runtime) reads it too
        interpreter = tf_env.tf.lite.Interpreter(model_content=slim)
        interpreter.allocate_tensors()
        source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        b.set_input(x[0])
        interpreter.set_tensor(source["index"], b.interpreter.get_tensor(b.interpreter.get_input_details()[0]["index"]))
        interpreter.invoke()
        b.invoke_raw()
        np.testing.assert_array_equal(interpreter.get_tensor(target["index"]),
                                      b.interpreter.get_tensor(b.interpreter.get_output_details()[0]["index"]))


def test_small_weights_quantised_like_numpy(trained):
    from train.toolbox.export import convert_to_tflite
    from train.toolbox.tflite_slim import constant_tensors, quantize_small_weights

    model, _, _ = trained
    float_file = convert_to_tflite(model)
    kernels = [w for w in model.get_weights() if w.ndim == 2]
    quantised = [t for t in constant_tensors(quantize_small_weights(float_file)) if len(t["shape"]) == 2]
    assert len(quantised) == 2
    for kernel in kernels:
        # TFLite stores FULLY_CONNECTED weights as [out, in]
        match = [t for t in quantised if t["shape"] == kernel.T.shape]
        assert match
        scale = np.abs(kernel).max() / 127
        np.testing.assert_array_equal(match[0]["values"], np.clip(np.rint(kernel.T / scale), -127, 127))


# --- temperature calibration ----------------------------------------------------------


def test_logit_scale_recovers_the_temperature_that_softened_calibrated_logits():
    from train.toolbox.calibration import logit_scale, mean_negative_log_likelihood

    rng = np.random.default_rng(0)
    true_logits = rng.normal(scale=3.0, size=(20000, 4))
    probabilities = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(4, p=row) for row in probabilities])  # the logits are calibrated
    scale = logit_scale(true_logits / 2.0, labels)  # softened by a temperature of 2
    assert scale == pytest.approx(2.0, rel=0.05)
    assert mean_negative_log_likelihood(scale * true_logits / 2.0, labels) < mean_negative_log_likelihood(
        true_logits / 2.0, labels)
    with pytest.raises(ValueError, match="NaN"):
        logit_scale(np.array([[np.nan, 0.0]]), np.array([0]))
    with pytest.raises(ValueError, match="need logits"):
        logit_scale(np.zeros((3, 2)), np.zeros(2, int))


def test_folding_the_scale_multiplies_the_outputs_and_keeps_every_answer():
    from train.toolbox.calibration import fold_logit_scale

    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(inputs)))
    x = np.random.default_rng(1).normal(size=(32, 5)).astype(np.float32)
    before = model.predict(x, verbose=0)
    fold_logit_scale(model, 2.5)
    after = model.predict(x, verbose=0)
    np.testing.assert_allclose(after, 2.5 * before, rtol=1e-5, atol=1e-6)
    assert np.array_equal(after.argmax(axis=1), before.argmax(axis=1))
    with pytest.raises(ValueError, match="scale"):
        fold_logit_scale(model, 0.0)
    softmax_head = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    with pytest.raises(ValueError, match="linear Dense"):
        fold_logit_scale(softmax_head, 2.0)


def test_the_exporter_records_a_classifiers_output_kind(tmp_path):
    from native.params import ModelInput
    from pi_runtime.model import load_model
    from pi_runtime.sidecar import KwsSpec, read_kws_spec
    from train.keras_env import keras
    from train.toolbox.export import export_model, keras_output_kind

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=ModelInput().feature_shape)
    flat = keras.layers.Flatten()(inputs)
    logits = keras.Model(inputs, keras.layers.Dense(3)(flat))
    softmax = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(3)(flat)))
    assert keras_output_kind(logits) == "logits" and keras_output_kind(softmax) == "probabilities"
    spec = KwsSpec(input=ModelInput(), labels=("a", "b", "c"))  # the kind left to the exporter
    for model, kind in ((logits, "logits"), (softmax, "probabilities")):
        path = export_model(model, tmp_path / f"{kind}.tflite", sidecar=spec.to_sidecar()).path
        assert read_kws_spec(path).output_kind == kind == load_model(path).output_kind  # the graph agrees
    declared = KwsSpec(input=ModelInput(), labels=("a", "b", "c"), output_kind="probabilities")
    with pytest.raises(ValueError, match="declares probabilities but the model outputs logits"):
        export_model(logits, tmp_path / "wrong.tflite", sidecar=declared.to_sidecar())


# --- weight averaging -------------------------------------------------------------------


class _WeightRecorder(keras.callbacks.Callback):
    """Every variable's value after every training batch."""

    def __init__(self, variables):
        super().__init__()
        self.variables, self.values = variables, []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append([variable.numpy().copy() for variable in self.variables])


def test_weight_average_is_the_exponential_moving_average_of_every_steps_weights():
    from train.toolbox.weight_averaging import WeightAverage, averaged_variables

    x, y = _toy_data(examples=64)
    keras.utils.set_random_seed(1)
    inputs = keras.Input((6, 2))
    hidden = keras.layers.BatchNormalization()(keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(inputs)))
    model = keras.Model(inputs, keras.layers.Reshape((6, 2))(keras.layers.Dense(12)(hidden)))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    variables = averaged_variables(model)
    names = [variable.name for variable in variables]
    assert any("moving_mean" in name for name in names) and any("moving_variance" in name for name in names)
    assert len(variables) == len(model.weights)  # nothing else in this model is left out

    recorder, average = _WeightRecorder(variables), WeightAverage(decay=0.9)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False, callbacks=[recorder, average])
    assert average.steps == len(recorder.values) == 8
    expected = [value.astype(np.float64) for value in recorder.values[0]]
    for n, step in enumerate(recorder.values[1:], start=1):
        decay = min(0.9, (1 + n) / (10 + n))  # the warm-up: 2/11, 3/12, ... until 0.9
        expected = [decay * mean + (1 - decay) * value for mean, value in zip(expected, step)]
    assert average.decay_at(1) == pytest.approx(2 / 11) and average.decay_at(1000) == 0.9
    for got, want in zip(average.averages, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert not np.allclose(expected[0], recorder.values[-1][0])  # the average is not the last step

    own = [variable.numpy().copy() for variable in variables]
    with average.swapped_in():
        for variable, want in zip(variables, expected):
            np.testing.assert_allclose(variable.numpy(), want, rtol=1e-6, atol=1e-6)
        averaged_output = model.predict(x, verbose=0)
    for variable, value in zip(variables, own):  # the model's own weights come back
        np.testing.assert_array_equal(variable.numpy(), value)
    assert not np.allclose(averaged_output, model.predict(x, verbose=0))

    average.reset()
    assert average.steps == 0 and not average.averages
    with pytest.raises(RuntimeError, match="no average yet"):
        with average.swapped_in():
            pass
    for decay in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="decay"):
            WeightAverage(decay)


def test_weight_average_leaves_pruning_masks_and_steps_alone(trained):
    from train.toolbox.pruning import prune_low_magnitude
    from train.toolbox.weight_averaging import averaged_variables

    model, x, _ = trained
    pruned, _ = prune_low_magnitude(model, final_sparsity=0.5, steps_per_epoch=4, epochs=2,
                                    begin_fraction=0.0, end_fraction=0.5)
    names = [variable.name for variable in averaged_variables(pruned)]
    assert any("kernel" in name for name in names)
    assert not any("mask" in name or "threshold" in name or "pruning_step" in name for name in names)
