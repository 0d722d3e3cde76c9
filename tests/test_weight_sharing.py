"""Weight sharing of int8 TFLite files (train.toolbox.weight_sharing), files joined into one
(train.toolbox.ensemble), and the command that delivers a version made with them (train.kws.share_weights)."""
import itertools
import zlib

import numpy as np
import pytest

from train import keras_env as tf_env
from train.toolbox.weight_sharing import (_optimal_runs, distinct_weight_values, keep_outputs, per_tensor_weights,
                                          scale_output_logits, share_weight_values, shared_values, weight_sharing)
from train.toolbox.ensemble import average_outputs
from train.toolbox.tflite_slim import read_model, schema

keras = tf_env.keras


@pytest.fixture(scope="module")
def int8_conv_model():
    """A small full-integer model with the delivered models' weighted operators: CONV_2D, DEPTHWISE_CONV_2D,
    FULLY_CONNECTED; a third of the pointwise weights pruned to zero; and inputs to compare answers on."""
    from train.toolbox.export import convert_to_tflite

    keras.utils.set_random_seed(3)
    inputs = keras.Input((12, 8, 1))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    pointwise = keras.layers.Conv2D(24, 1, activation="relu")
    x = pointwise(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5)(x))
    kernel, bias = pointwise.get_weights()
    rng = np.random.default_rng(0)
    kernel[rng.random(kernel.shape) < 1 / 3] = 0.0
    # Channels of very different ranges, as batch norm folding leaves them: per-channel scales differ.
    kernel *= np.geomspace(0.2, 5.0, kernel.shape[-1])
    pointwise.set_weights([kernel, bias])
    x = rng.normal(size=(64, 12, 8, 1)).astype(np.float32)
    return convert_to_tflite(model, quantization="int8", representative_data=x), x


def _answers(data, x, tmp_path, name):
    from pi_runtime.model import load_model

    path = tmp_path / f"{name}.tflite"
    path.write_bytes(data)
    model = load_model(path)
    return np.stack([model.predict(example).ravel() for example in x])


def _weighted(data):
    """(operator, weight tensor, its int8 values, bias tensor or None, input tensor) of each weighted operator."""
    model = read_model(data)
    subgraph = model.subgraphs[0]
    kinds = {getattr(schema.BuiltinOperator, name) for name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")}
    out = []
    for operator in subgraph.operators:
        code = model.operatorCodes[operator.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) in kinds:
            weights = subgraph.tensors[operator.inputs[1]]
            values = np.frombuffer(np.asarray(model.buffers[weights.buffer].data, np.uint8).tobytes(), np.int8)
            has_bias = len(operator.inputs) > 2 and operator.inputs[2] >= 0
            bias = subgraph.tensors[operator.inputs[2]] if has_bias else None
            out.append((operator, weights, values.reshape(tuple(weights.shape)), bias,
                        subgraph.tensors[operator.inputs[0]]))
    return out


def _real_weights(weights, values):
    scale = np.asarray(weights.quantization.scale, np.float64)
    broadcast = [1] * values.ndim
    broadcast[weights.quantization.quantizedDimension] = -1
    return values * scale.reshape(broadcast if scale.size > 1 else [1] * values.ndim)


def _cost(points, weights, zero_index, runs):
    total = 0.0
    for first, last in runs:
        p, w = points[first:last + 1], weights[first:last + 1]
        centre = 0.0 if first <= zero_index <= last or w.sum() == 0 else np.average(p, weights=w)
        total += float(np.sum(w * (p - centre) ** 2))
    return total


@pytest.mark.parametrize("seed", range(6))
def test_the_runs_are_the_least_squares_optimum_of_every_split(seed):
    rng = np.random.default_rng(seed)
    points = np.unique(np.concatenate([rng.integers(-60, 60, size=9), [0]])).astype(np.float64)
    weights = rng.integers(1, 20, size=points.size).astype(np.float64)
    zero_index = int(np.searchsorted(points, 0))
    levels = 4
    runs = _optimal_runs(points, weights, zero_index, levels)
    assert runs[0][0] == 0 and runs[-1][1] == points.size - 1 and len(runs) == levels
    assert all(runs[i][1] + 1 == runs[i + 1][0] for i in range(levels - 1))
    splits = (list(zip((0,) + cuts, tuple(cut - 1 for cut in cuts) + (points.size - 1,)))
              for cuts in itertools.combinations(range(1, points.size), levels - 1))
    best = min(_cost(points, weights, zero_index, split) for split in splits)
    assert _cost(points, weights, zero_index, runs) == pytest.approx(best)


def test_shared_values_keep_zero_and_at_most_levels_values():
    rng = np.random.default_rng(1)
    values = np.clip(np.rint(rng.normal(0, 40, size=2000)), -127, 127).astype(np.int8)
    values[:300] = 0
    for levels in (2, 5, 16):
        centres, index = shared_values(values, levels)
        assert 0 in centres and len(centres) <= levels and index.shape == values.shape
        shared = centres[index]
        assert np.all(shared[values == 0] == 0)  # pruned weights stay pruned
        assert np.all(np.diff(centres) > 0) and centres.min() >= -128 and centres.max() <= 127
        # every value goes to a centre of its own sign (or zero): runs of neighbours
        assert np.all(shared * values >= 0)
    few = np.array([-3, 0, 5, 5, -3], dtype=np.int8)  # already few values: unchanged
    centres, index = shared_values(few, 4)
    np.testing.assert_array_equal(centres[index], few)
    for bad in (1, 0, 2.5, True, "8"):
        with pytest.raises(ValueError, match="levels"):
            shared_values(values, bad)


def test_per_tensor_weights_keep_the_answers_and_shrink_the_file(int8_conv_model, tmp_path):
    data, x = int8_conv_model
    assert any(len(w.quantization.scale) > 1 for _, w, _, _, _ in _weighted(data))  # per-channel scales
    per_tensor = per_tensor_weights(data)
    checked_biases = 0
    for (_, old, old_values, _, _), (_, new, new_values, bias, source) in zip(_weighted(data), _weighted(per_tensor)):
        assert len(new.quantization.scale) == 1 and new.quantization.quantizedDimension == 0
        scale = float(new.quantization.scale[0])
        assert np.abs(new_values.astype(int)).max() <= 127
        # each weight is the nearest step of the one scale: at most half a step away
        assert np.abs(_real_weights(new, new_values) - _real_weights(old, old_values)).max() <= scale / 2 * (1 + 1e-6)
        # the int8 kernels require the bias scale to be the input's scale times the weights' (the converter
        # leaves out a bias of zeros, the Dense layer's here)
        if bias is not None:
            checked_biases += 1
            expected = np.float32(np.float32(source.quantization.scale[0]) * np.float32(scale))
            assert bias.quantization.scale[0] == expected
    assert checked_biases == 3
    assert len(zlib.compress(per_tensor, 9)) < len(zlib.compress(data, 9))
    before, after = _answers(data, x, tmp_path, "a"), _answers(per_tensor, x, tmp_path, "b")
    assert np.mean(np.argmax(before, 1) == np.argmax(after, 1)) >= 0.9
    spread = np.abs(before).max()
    assert np.abs(before - after).max() < 0.25 * spread
    assert per_tensor_weights(per_tensor) == per_tensor  # one scale already: nothing to do


def test_sharing_limits_the_values_keeps_pruned_weights_and_compresses(int8_conv_model, tmp_path):
    data, x = int8_conv_model
    per_tensor = per_tensor_weights(data)
    before = distinct_weight_values(per_tensor)
    assert max(before) > 16
    shared = weight_sharing(data, 16)
    assert shared == share_weight_values(per_tensor, 16)  # deterministic, the two steps in order
    assert all(count <= 16 for count in distinct_weight_values(shared))
    assert len(zlib.compress(shared, 9)) < len(zlib.compress(per_tensor, 9))
    for (_, _, original, _, _), (_, _, new, _, _) in zip(_weighted(per_tensor), _weighted(shared)):
        assert original.shape == new.shape
        np.testing.assert_array_equal(new[original == 0], 0)
        assert np.abs(new.astype(int) - original.astype(int)).max() <= 32
    answers = _answers(shared, x, tmp_path, "c")
    assert np.isfinite(answers).all()
    # many values: close to the per-tensor model
    close = _answers(weight_sharing(data, 128), x, tmp_path, "d")
    assert np.mean(np.argmax(close, 1) == np.argmax(_answers(per_tensor, x, tmp_path, "e"), 1)) >= 0.9


def test_scaled_logits_are_the_logits_times_the_factor_with_the_same_integers(int8_conv_model, tmp_path):
    data, x = int8_conv_model
    shared = weight_sharing(data, 32)
    before = _answers(shared, x, tmp_path, "f")
    after = _answers(scale_output_logits(shared, 2.5), x, tmp_path, "g")
    np.testing.assert_allclose(after, 2.5 * before, rtol=1e-5, atol=1e-6)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="factor"):
            scale_output_logits(shared, bad)


def test_kept_outputs_are_the_old_ones_exactly(int8_conv_model, tmp_path):
    data, x = int8_conv_model
    everything = _answers(data, x, tmp_path, "h")
    for rows in ([3, 1], [4], [0, 1, 2, 3, 4]):
        np.testing.assert_array_equal(_answers(keep_outputs(data, rows), x, tmp_path, "i"), everything[:, rows])
    shared = weight_sharing(data, 16)  # per-tensor weights, then the cut: the same
    np.testing.assert_array_equal(_answers(keep_outputs(shared, [2, 0]), x, tmp_path, "j"),
                                  _answers(shared, x, tmp_path, "k")[:, [2, 0]])
    for bad in ([], [5], [-1], [1, 1]):
        with pytest.raises(ValueError, match="rows"):
            keep_outputs(data, bad)


def test_weights_stored_once_for_two_layers_are_requantised_for_each(tmp_path):
    """The converter stores identical constant bytes once: a layer whose weights are another's times two
    has the same int8 bytes with twice the scales. Each must keep its own values."""
    from train.toolbox.export import convert_to_tflite

    keras.utils.set_random_seed(5)
    inputs = keras.Input((4, 4, 4))
    first, second = keras.layers.Conv2D(4, 1, use_bias=False), keras.layers.Conv2D(4, 1, use_bias=False)
    model = keras.Model(inputs, second(first(inputs)))
    kernel = np.random.default_rng(2).normal(size=(1, 1, 4, 4)).astype(np.float32)
    first.set_weights([kernel])
    second.set_weights([2 * kernel])
    x = np.random.default_rng(3).normal(size=(32, 4, 4, 4)).astype(np.float32)
    data = convert_to_tflite(model, quantization="int8", representative_data=x)
    layers = _weighted(data)
    assert layers[0][1].buffer == layers[1][1].buffer  # stored once
    # the per-tensor rewrite is exact to half a step for both layers, whatever the sharing of their bytes
    for (_, old, old_values, _, _), (_, new, new_values, _, _) in zip(layers, _weighted(per_tensor_weights(data))):
        step = float(new.quantization.scale[0])
        assert np.abs(_real_weights(new, new_values) - _real_weights(old, old_values)).max() <= step / 2 * (1 + 1e-6)
    np.testing.assert_allclose(_answers(per_tensor_weights(data), x[:8], tmp_path, "l"),
                               _answers(data, x[:8], tmp_path, "m"), atol=0.1 * np.abs(_answers(data, x[:8], tmp_path,
                                                                                               "n")).max())


def test_a_dynamic_range_model_has_no_full_integer_weights_to_share(int8_conv_model):
    from train.toolbox.export import convert_to_tflite

    keras.utils.set_random_seed(4)
    inputs = keras.Input((40,))
    model = keras.Model(inputs, keras.layers.Dense(40)(keras.layers.Dense(40)(inputs)))
    hybrid = convert_to_tflite(model, quantization="weights")
    assert distinct_weight_values(hybrid) == []  # float inputs: the hybrid kernels' weights are left alone
    assert per_tensor_weights(hybrid) == read_model_bytes_roundtrip(hybrid)


def read_model_bytes_roundtrip(data):
    from train.toolbox.tflite_slim import write_model

    return write_model(read_model(data))


def test_a_file_that_is_not_a_model_is_refused():
    with pytest.raises(ValueError, match="TFL3"):
        per_tensor_weights(b"not a model at all")
    with pytest.raises(ValueError, match="TFL3"):
        share_weight_values(b"", 8)


# --- several files as one ---------------------------------------------------------


def _small_int8_model(seed, outputs=4, input_shape=(10, 6, 1)):
    from train.toolbox.export import convert_to_tflite

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(outputs, bias_initializer="random_normal")(x)
    data = np.random.default_rng(seed).normal(size=(32,) + input_shape).astype(np.float32)
    return convert_to_tflite(keras.Model(inputs, x), quantization="int8", representative_data=data)


def test_the_file_answers_the_mean_of_its_members(tmp_path):
    members = [_small_int8_model(seed) for seed in (1, 2, 3)]
    x = np.random.default_rng(9).normal(size=(12, 10, 6, 1)).astype(np.float32)
    answers = [_answers(member, x, tmp_path, f"m{index}") for index, member in enumerate(members)]
    for count in (2, 3):
        joined = _answers(average_outputs(members[:count]), x, tmp_path, f"e{count}")
        np.testing.assert_allclose(joined, np.mean(answers[:count], axis=0), rtol=1e-6, atol=1e-6)
    # one model with itself: its own answers
    np.testing.assert_allclose(_answers(average_outputs([members[0]] * 2), x, tmp_path, "same"), answers[0], atol=1e-6)


def test_members_that_do_not_fit_together_are_refused():
    first = _small_int8_model(1)
    with pytest.raises(ValueError, match="at least 2"):
        average_outputs([first])
    with pytest.raises(ValueError, match="outputs"):
        average_outputs([first, _small_int8_model(2, outputs=5)])
    with pytest.raises(ValueError, match="inputs"):
        average_outputs([first, _small_int8_model(2, input_shape=(12, 6, 1))])
    with pytest.raises(ValueError, match="TFL3"):
        average_outputs([first, b"not a model"])


# --- the command --------------------------------------------------------------------


def test_levels_are_parsed_and_bad_ones_refused():
    import argparse

    from train.kws.share_weights import parse_levels

    assert parse_levels("16, 24,32") == [16, 24, 32]
    for bad in ("1", "8,x", "8,8", "", "-4"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_levels(bad)


def test_the_command_refuses_a_broken_source_and_its_own_source(tmp_path, capsys):
    from train.kws import share_weights
    from train.paths import models_dir

    broken = tmp_path / "kws_c.tflite.zlib"
    broken.write_bytes(zlib.compress(b"TFL3" * 10)[:-4])
    assert share_weights.main([str(broken), "--version", "a"]) == 2
    assert "truncated" in capsys.readouterr().err
    delivered = models_dir() / "kws" / "kws_a.tflite.zlib"
    assert share_weights.main([str(delivered), "--version", "a"]) == 2
    assert "is a source itself" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        share_weights.main([str(delivered), "--version", "a", "--levels", "1"])
    with pytest.raises(SystemExit):  # validation only: never over the delivered models
        share_weights.main([str(delivered), "--version", "b", "--validation-only"])
    with pytest.raises(SystemExit):
        share_weights.main([str(delivered), "--version", "b", "--validation-only", "--output-dir",
                            str(models_dir() / "kws")])
    assert share_weights.main([str(delivered), "--version", "b", "--keywords", "go,maybe"]) == 2
    assert "unknown keyword" in capsys.readouterr().err
    open_set = models_dir() / "kws" / "kws_live_b.tflite.zlib"
    assert share_weights.main([str(open_set), "--version", "a", "--keywords", "go,stop"]) == 2
    assert "closed-set" in capsys.readouterr().err


DELIVERED = {"a": 24, "b": 64}  # the delivered versions made from the c of 2026-12-03, and their shared values
C_2026_12_03 = "kws/teachers/kws_c_2026-12-03.tflite.zlib"
C_MEMBERS = (C_2026_12_03, "kws/teachers/kws_c_seed1_2026-12-05.tflite.zlib")  # the delivered c's, at 16 values


@pytest.mark.parametrize("version", sorted(DELIVERED))
def test_the_delivered_versions_are_what_sharing_makes_of_c(version):
    from pi_runtime.model import read_model_bytes
    from pi_runtime.sidecar import read_sidecar
    from train.kws.negatives import file_sha256
    from train.paths import model_file

    delivered = model_file(f"kws/kws_{version}.tflite.zlib")
    training = read_sidecar(delivered)["training"]
    source = model_file(training["derived_from"]["model"])
    assert source == model_file(C_2026_12_03)
    assert training["derived_from"]["sha256"] == file_sha256(source)
    assert training["weight_sharing"]["levels"] == DELIVERED[version]
    made = scale_output_logits(weight_sharing(read_model_bytes(source), DELIVERED[version]), training["logit_scale"])
    assert zlib.compress(made, 9) == delivered.read_bytes()


def test_the_delivered_open_set_b_is_the_open_set_c_shared():
    from pi_runtime.model import read_model_bytes
    from pi_runtime.sidecar import read_sidecar
    from train.paths import model_file

    delivered = model_file("kws/kws_live_b.tflite.zlib")
    sidecar = read_sidecar(delivered)
    training = sidecar["training"]
    assert training["derived_from"]["model"] == "kws/kws_live_c.tflite.zlib" and "logit_scale" not in training
    assert sidecar["labels"] == read_sidecar(model_file("kws/kws_live_c.tflite.zlib"))["labels"]
    assert sidecar["detector"]["threshold"] != read_sidecar(model_file("kws/kws_live_c.tflite.zlib"))["detector"][
        "threshold"]  # calibrated for this file, not the source's
    assert "test_negatives" in sidecar["results"]["open_set"]
    levels = training["weight_sharing"]["levels"]
    made = weight_sharing(read_model_bytes(model_file("kws/kws_live_c.tflite.zlib")), levels)
    assert zlib.compress(made, 9) == delivered.read_bytes()


def test_the_delivered_c_is_the_mean_of_its_members_shared():
    from pi_runtime.model import read_model_bytes
    from pi_runtime.sidecar import read_sidecar
    from train.kws.negatives import file_sha256
    from train.paths import model_file

    delivered = model_file("kws/kws_c.tflite.zlib")
    training = read_sidecar(delivered)["training"]
    assert [source["model"] for source in training["derived_from"]] == list(C_MEMBERS)
    assert [source["sha256"] for source in training["derived_from"]] == [file_sha256(model_file(path))
                                                                          for path in C_MEMBERS]
    made = average_outputs([weight_sharing(read_model_bytes(model_file(path)), 16) for path in C_MEMBERS])
    assert training["weight_sharing"]["levels"] == 16 and zlib.compress(made, 9) == delivered.read_bytes()


def test_the_command_chooses_on_validation_delivers_and_measures(speech_commands_dir, tmp_path, capsys):
    import json

    from pi_runtime.sidecar import read_sidecar
    from train.kws import share_weights
    from train.paths import model_file

    status = share_weights.main([str(model_file(C_2026_12_03)), "--version", "a", "--levels", "32,24",
                                 "--output-dir", str(tmp_path), "--data-dir", str(speech_commands_dir),
                                 "--latency-runs", "3", "--quiet"])
    out = capsys.readouterr().out
    assert status == 0 and "chosen on validation: 24 values" in out and "PASS" in out
    made = tmp_path / "kws_a.tflite.zlib"
    assert made.read_bytes() == model_file("kws/kws_a.tflite.zlib").read_bytes()
    sidecar, delivered = read_sidecar(made), read_sidecar(model_file("kws/kws_a.tflite.zlib"))
    over, chosen = sidecar["training"]["weight_sharing"]["candidates"]
    assert over["levels"] == 32 and over["size_bytes"] >= 25000  # measured, but not a candidate
    assert chosen["levels"] == 24 and chosen["size_bytes"] < 25000
    assert chosen["val_accuracy"] == sidecar["training"]["val_accuracy"] == delivered["training"]["val_accuracy"]
    assert sidecar["training"]["logit_scale"] == delivered["training"]["logit_scale"] > 1
    assert sidecar["results"]["test_accuracy"] == delivered["results"]["test_accuracy"]
    assert sidecar["labels"] == delivered["labels"] and sidecar["frontend"] == delivered["frontend"]
    assert "kws_a.tflite.zlib" in (tmp_path / "results.md").read_text()
    json.dumps(sidecar)  # plain data


def test_a_keyword_subset_on_validation_only_leaves_the_test_split_unread(speech_commands_dir, tmp_path, capsys):
    from pi_runtime.model import load_model
    from pi_runtime.sidecar import read_sidecar
    from train.kws import share_weights
    from train.paths import model_file

    status = share_weights.main([str(model_file(C_2026_12_03)), "--version", "a", "--keywords", "stop,go",
                                 "--levels", "20", "--validation-only", "--output-dir", str(tmp_path),
                                 "--data-dir", str(speech_commands_dir), "--quiet"])
    assert status == 0 and "the test split was not read" in capsys.readouterr().out
    made = tmp_path / "kws_a_go_stop.tflite.zlib"
    sidecar = read_sidecar(made)
    assert sidecar["labels"] == ["go", "stop"] and sidecar["results"] == {}
    assert sidecar["training"]["outputs_kept"] == ["go", "stop"] and "logit_scale" not in sidecar["training"]
    assert 0.9 < sidecar["training"]["val_accuracy"] <= 1.0
    assert load_model(made).output_shape[-1] == 2
    assert not (tmp_path / "results.md").exists()


def test_an_ensemble_of_two_sources_is_their_shared_files_averaged(speech_commands_dir, tmp_path, capsys):
    from pi_runtime.model import read_model_bytes
    from pi_runtime.sidecar import read_sidecar
    from train.kws import share_weights
    from train.kws.results import describe_architecture
    from train.paths import model_file

    c = model_file(C_2026_12_03)
    status = share_weights.main([str(c), str(c), "--version", "c", "--levels", "12", "--validation-only",
                                 "--output-dir", str(tmp_path), "--data-dir", str(speech_commands_dir), "--quiet"])
    assert status == 0, capsys.readouterr()
    made = tmp_path / "kws_c.tflite.zlib"
    shared = weight_sharing(read_model_bytes(c), 12)
    assert read_model_bytes(made) == average_outputs([shared, shared])
    training = read_sidecar(made)["training"]
    assert [source["model"] for source in training["derived_from"]] == [C_2026_12_03] * 2
    assert ("the mean of the logits of kws_c_2026-12-03 and kws_c_2026-12-03, each with one scale and 12"
            in describe_architecture(training))
    other = model_file("kws/kws_live_c.tflite.zlib")  # other labels and features: not a member
    assert share_weights.main([str(c), str(other), "--version", "c", "--validation-only", "--output-dir",
                               str(tmp_path)]) == 2
    assert "must agree" in capsys.readouterr().err
