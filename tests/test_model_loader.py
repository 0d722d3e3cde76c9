"""pi_runtime.sidecar and pi_runtime.model: loading, quantisation handling, clear errors."""
import json
import zlib

import numpy as np
import pytest

from native.params import FrontendParams, ModelInput
from pi_runtime.model import ModelError, load_model
from pi_runtime.sidecar import (KwsSpec, SidecarError, new_sidecar, read_kws_spec, read_sidecar, sidecar_path,
                                write_sidecar)

PARAMS = FrontendParams()  # MFCC frames
INPUT = ModelInput().to_dict()  # one second: (49, 10)
SHAPE = ModelInput().feature_shape
LABELS = ["a", "b", "c"]


def _toy_keras_model():
    from train.keras_env import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=SHAPE)
    outputs = keras.layers.Dense(len(LABELS))(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def toy_models(tmp_path_factory):
    """(float .tflite, int8 .tflite, keras model) written in a temp folder, with sidecars."""
    from train.keras_env import tf

    folder = tmp_path_factory.mktemp("models")
    model = _toy_keras_model()
    float_path = folder / "toy_float.tflite"
    float_path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.normal(size=(1,) + SHAPE).astype(np.float32)]
                                                for _ in range(50))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    int8_path = folder / "toy_int8.tflite"
    int8_path.write_bytes(converter.convert())
    for path in (float_path, int8_path):
        write_sidecar(path, new_sidecar("kws", input=INPUT, frontend=PARAMS.to_dict(), labels=LABELS))
    return float_path, int8_path, model


def test_float_model_matches_keras(toy_models):
    float_path, _, model = toy_models
    loaded = load_model(float_path)
    assert loaded.labels == LABELS and loaded.frontend_params == PARAMS
    assert loaded.interpreter_name == "ai_edge_litert"
    x = np.random.default_rng(1).normal(size=SHAPE).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x[None], verbose=0)[0], rtol=1e-4, atol=1e-4)


def test_int8_model_quantises_input_and_dequantises_output(toy_models):
    _, int8_path, model = toy_models
    loaded = load_model(int8_path)
    assert loaded.input_dtype == np.int8
    xs = np.random.default_rng(2).normal(size=(20,) + SHAPE).astype(np.float32)
    got = loaded.predict_many(xs)
    want = model.predict(xs, verbose=0)
    assert got.dtype == np.float32 and got.shape == want.shape
    # int8 activations: error of a few quantisation steps, far below the spread of the outputs.
    assert np.abs(got - want).mean() < 0.1 * want.std()


def test_zlib_model_loads_and_reports_compressed_size(toy_models, tmp_path):
    float_path, _, _ = toy_models
    packed = tmp_path / "toy.tflite.zlib"
    packed.write_bytes(zlib.compress(float_path.read_bytes(), 9))
    sidecar_path(packed).write_text(sidecar_path(float_path).read_text())
    loaded = load_model(packed)
    assert loaded.size_bytes == packed.stat().st_size
    x = np.ones(SHAPE, np.float32)
    np.testing.assert_allclose(loaded.predict(x), load_model(float_path).predict(x), rtol=1e-6)


def test_truncated_corrupt_and_wrong_files(toy_models, tmp_path):
    float_path, _, _ = toy_models
    (tmp_path / "cut.tflite").write_bytes(float_path.read_bytes()[:100])
    with pytest.raises(ModelError, match="cut.tflite"):
        load_model(tmp_path / "cut.tflite")
    (tmp_path / "text.tflite").write_bytes(b"hello world, not a model")
    with pytest.raises(ModelError, match="TFL3"):
        load_model(tmp_path / "text.tflite")
    (tmp_path / "bad.tflite.zlib").write_bytes(zlib.compress(float_path.read_bytes())[:-20])
    with pytest.raises(ModelError, match="zlib"):
        load_model(tmp_path / "bad.tflite.zlib")
    with pytest.raises(ModelError, match="no such model"):
        load_model(tmp_path / "missing.tflite")
    with pytest.raises(ModelError, match="is a folder, not a model file"):
        load_model(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(ValueError, match=".tflite"):
        load_model(tmp_path / "model.onnx")


def test_frontend_flags_must_agree_with_sidecar(toy_models, tmp_path):
    float_path, _, _ = toy_models
    assert load_model(float_path, frontend=PARAMS).frontend_params == PARAMS
    assert load_model(float_path, frontend=ModelInput()).model_input == ModelInput()
    with pytest.raises(ModelError, match="num_mfccs"):
        load_model(float_path, frontend=PARAMS.replace(num_mfccs=13))
    with pytest.raises(ModelError, match="clip_duration_ms: sidecar 1000 vs given 1020"):
        load_model(float_path, frontend=ModelInput(clip_duration_ms=1020))
    # Without a sidecar the flags are used, and checked against the model's input shape.
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(float_path.read_bytes())
    assert load_model(bare).frontend_params is None and load_model(bare).model_input is None
    assert load_model(bare, frontend=PARAMS).frontend_params == PARAMS
    with pytest.raises(ModelError, match="frontend produces"):
        load_model(bare, frontend=PARAMS.replace(num_mfccs=13))
    with pytest.raises(SidecarError, match="no sidecar"):
        load_model(bare, require_sidecar=True)


def test_sidecar_validation(toy_models, tmp_path):
    float_path, _, _ = toy_models
    assert read_sidecar(float_path)["labels"] == LABELS
    with pytest.raises(SidecarError, match="labels"):
        write_sidecar(tmp_path / "x.tflite", new_sidecar("kws", input=INPUT, frontend=PARAMS.to_dict(), labels=[]))
    with pytest.raises(SidecarError, match="forecast"):
        write_sidecar(tmp_path / "x.tflite", new_sidecar("forecast"))
    sidecar_path(tmp_path / "y.tflite").write_text("{not json")
    with pytest.raises(SidecarError, match="unreadable"):
        read_sidecar(tmp_path / "y.tflite")
    sidecar_path(tmp_path / "z.tflite").write_text(json.dumps({"format": "other"}))
    with pytest.raises(SidecarError, match="not a tinyml-pi sidecar"):
        read_sidecar(tmp_path / "z.tflite")
    assert sidecar_path("m/kws_a.tflite.zlib").as_posix() == "m/kws_a.json"


# --- sidecar hardening (issue 15) --------------------------------------------------------------------


def _kws_sidecar(**extra):
    return new_sidecar("kws", input=INPUT, frontend=PARAMS.to_dict(), labels=LABELS, **extra)


def _write_text_sidecar(folder, text):
    model = folder / "m.tflite"
    sidecar_path(model).write_text(text)
    return model


@pytest.mark.parametrize("constant", ["Infinity", "-Infinity", "NaN", "1e400"])
def test_sidecar_refuses_non_finite_numbers(tmp_path, constant):
    text = json.dumps(_kws_sidecar(results={"x": 0.5})).replace("0.5", constant)
    with pytest.raises(SidecarError, match="m.json.*not a number"):
        read_sidecar(_write_text_sidecar(tmp_path, text))
    with pytest.raises(SidecarError, match="not a number"):
        write_sidecar(tmp_path / "w.tflite", _kws_sidecar(results={"x": float(constant)}))


@pytest.mark.parametrize("extra, message", [
    ({"keywords": ["a", "zebra"]}, "keywords.*zebra"),
    ({"keywords": []}, "keywords"),
    ({"keywords": "a"}, "keywords"),
    ({"output": {"kind": "softmax"}}, "output"),
    ({"output": "scores"}, "output"),
    ({"output": ["logits"]}, "output"),
    ({"detector": {"threshold": 1.5}}, "detector.threshold"),
    ({"detector": {"threshold": "high"}}, "detector.threshold"),
    ({"detector": {"smoothing_windows": 1_000_000_000}}, "detector.smoothing_windows"),
    ({"detector": {"smoothing_windows": 2.5}}, "detector.smoothing_windows"),
    ({"detector": {"smoothing_windows": True}}, "detector.smoothing_windows"),
    ({"detector": {"hop_ms": 0}}, "detector.hop_ms"),
    ({"detector": {"refractory_ms": -1}}, "detector.refractory_ms"),
    ({"detector": {"temperature": 0}}, "detector.temperature"),
    ({"detector": {"temperature": "sharp"}}, "detector.temperature"),
    ({"detector": {"min_level_dbfs": "quiet"}}, "detector.min_level_dbfs"),
    ({"detector": [0.8]}, "detector"),
    ({"detector": {"keyword_subsets": {"a,zebra": {}}}}, "keyword_subsets names 'a,zebra'"),
    ({"detector": {"keyword_subsets": {"a,a": {}}}}, "keyword_subsets names 'a,a'"),
    ({"detector": {"keyword_subsets": {"a": {"threshold": 2}}}}, r"keyword_subsets\['a'\].threshold"),
    ({"detector": {"keyword_subsets": {"a": {"keyword_subsets": {}}}}}, "subsets of its own"),
    ({"detector": {"keyword_subsets": ["a"]}}, "keyword_subsets must be an object"),
    ({"labels": ["a", "a"]}, "repeats"),
])
def test_sidecar_optional_keys_are_checked(tmp_path, extra, message):
    with pytest.raises(SidecarError, match=message):
        write_sidecar(tmp_path / "m.tflite", {**_kws_sidecar(), **extra})


def test_sidecar_frontend_is_checked_when_read(tmp_path):
    bad = {**PARAMS.to_dict(), "num_mfccs": 0}
    with pytest.raises(SidecarError, match="m.json: frontend.*num_mfccs"):
        read_sidecar(_write_text_sidecar(tmp_path, json.dumps(new_sidecar("kws", input=INPUT, frontend=bad, labels=LABELS))))
    for bad_input, message in (({"clip_duration_ms": 10}, "shorter than one frame"),
                               ({"clip_duration_ms": 1000, "resize": [32, 32]}, "'spectrogram' only"),
                               ({"clip_duration_ms": 1000, "frames": 3}, "unknown model input key")):
        with pytest.raises(SidecarError, match=f"m.json: input.*{message}"):
            read_sidecar(_write_text_sidecar(tmp_path, json.dumps(
                new_sidecar("kws", input=bad_input, frontend=PARAMS.to_dict(), labels=LABELS))))
    without_input = {key: value for key, value in _kws_sidecar().items() if key != "input"}
    with pytest.raises(SidecarError, match="needs an 'input' object"):
        read_sidecar(_write_text_sidecar(tmp_path, json.dumps(without_input)))


def test_version_1_sidecars_are_read_as_version_2(toy_models, tmp_path):
    """A version-1 file kept clip_duration_ms and resize in its frontend: read, loaded and rewritten as version 2."""
    float_path, _, _ = toy_models
    model = tmp_path / "old.tflite"
    model.write_bytes(float_path.read_bytes())
    version_1 = {"format": "tinyml-pi-sidecar", "version": 1, "task": "kws", "labels": LABELS,
                 "frontend": {**PARAMS.to_dict(), "clip_duration_ms": 1000, "resize": None}, "results": {"x": 1}}
    sidecar_path(model).write_text(json.dumps(version_1))
    read = read_sidecar(model)
    assert read["version"] == 2 and read["frontend"] == PARAMS.to_dict() and read["input"] == INPUT
    assert read["results"] == {"x": 1}
    spec = read_kws_spec(model)
    assert spec.input == ModelInput() and spec.output_kind is None and spec.keywords == tuple(LABELS)
    loaded = load_model(model)
    assert loaded.spec == spec and loaded.model_input == ModelInput() and loaded.output_kind == "logits"  # the graph's
    write_sidecar(model, read)  # rewritten as version 2, read back the same
    assert json.loads(sidecar_path(model).read_text())["version"] == 2 and read_kws_spec(model) == spec
    for version in (0, 3, "1"):
        sidecar_path(model).write_text(json.dumps({**version_1, "version": version}))
        with pytest.raises(SidecarError, match="unsupported sidecar version"):
            read_sidecar(model)


def test_kws_spec_round_trips_through_its_sidecar(tmp_path):
    spec = KwsSpec(input=ModelInput(frontend=FrontendParams(feature_kind="spectrogram"), resize=(32, 32)),
                   labels=("go", "stop", "_silence_", "_unknown_"), output_kind="probabilities",
                   detector={"threshold": 0.7, "min_level_dbfs": None})
    assert spec.keywords == ("go", "stop") and spec.frontend == FrontendParams(feature_kind="spectrogram")
    assert spec.detector_settings() == {"threshold": 0.7, "min_level_dbfs": -np.inf}
    write_sidecar(tmp_path / "m.tflite", spec.to_sidecar(training={"how": "by hand"}))
    assert read_kws_spec(tmp_path / "m.tflite") == spec
    assert read_sidecar(tmp_path / "m.tflite")["training"] == {"how": "by hand"}
    for bad, message in (({"labels": ()}, "labels"), ({"keywords": ("yes",)}, "yes"),
                         ({"output_kind": "scores"}, "output kind")):
        with pytest.raises(SidecarError, match=message):
            KwsSpec(**{"input": ModelInput(), "labels": ("go",), **bad})
    with pytest.raises(SidecarError, match="not a keyword-spotting sidecar"):
        KwsSpec.from_sidecar(new_sidecar("forecast", forecast={"features": ["T"], "input_width": 1, "out_steps": 1,
                                                               "mean": [0.0], "std": [1.0]}))


def test_output_kind_and_detector_settings(tmp_path):
    from pi_runtime.sidecar import detector_settings, output_kind

    good = _kws_sidecar(keywords=["b"], output={"kind": "probabilities"},
                        detector={"threshold": 0.7, "smoothing_windows": 3, "hop_ms": 100.0, "refractory_ms": 0,
                                  "min_level_dbfs": None, "calibration": {"stream": "test"}})
    write_sidecar(tmp_path / "m.tflite", good)
    read = read_sidecar(tmp_path / "m.tflite")
    assert output_kind(read) == "probabilities" and output_kind(_kws_sidecar()) is None
    assert output_kind(_kws_sidecar(output={"kind": "logits"})) == "logits"
    assert output_kind(_kws_sidecar(output="logits")) == "logits"  # the short form
    assert detector_settings(read)["min_level_dbfs"] == -np.inf and detector_settings(read)["threshold"] == 0.7
    assert detector_settings(_kws_sidecar()) == {}
    with pytest.raises(SidecarError, match="output"):
        output_kind({"output": {"kind": "scores"}})


def test_a_keyword_subset_has_its_own_detector_settings(tmp_path):
    """listen --keywords takes the subset's calibration when the sidecar has one, else the model's own."""
    from pi_runtime.kws_pipeline import DetectorConfig
    from pi_runtime.sidecar import detector_settings

    own = {"threshold": 0.7, "smoothing_windows": 3}
    subset = {"threshold": 0.4, "smoothing_windows": 5, "min_level_dbfs": None}
    write_sidecar(tmp_path / "m.tflite", _kws_sidecar(detector={**own, "keyword_subsets": {"b,a": subset}}))
    read = read_sidecar(tmp_path / "m.tflite")
    assert detector_settings(read) == own  # the subsets are not settings of the model's own
    assert detector_settings(read, ["a", "b"]) == {**subset, "min_level_dbfs": -np.inf}  # any order
    assert detector_settings(read, ["a"]) == own  # no calibration for "a" alone
    spec = KwsSpec.from_sidecar(read)
    assert spec.calibrated_for(("a", "b")) and not spec.calibrated_for(("a",))
    assert not spec.calibrated_for(("c", "b", "a"))  # all the keywords: the model's own, which names no calibration
    assert KwsSpec(input=spec.input, labels=spec.labels, detector={"calibration": {}}).calibrated_for(spec.keywords)
    assert DetectorConfig.from_sidecar(spec, keywords=("a", "b")).threshold == 0.4
    assert DetectorConfig.from_sidecar(spec, keywords=("a", "b"), threshold=0.9).threshold == 0.9
    assert DetectorConfig.from_sidecar(spec).threshold == 0.7
    assert spec.listened_keywords(None) == spec.keywords and spec.listened_keywords([" b", "a"]) == ("a", "b")
    for bad in (["zebra"], [], ["a", "_unknown_"]):
        with pytest.raises(ValueError, match="its own keywords"):
            spec.listened_keywords(bad)


def test_forecast_section_types_are_checked(tmp_path):
    section = {"features": ["T (degC)"], "input_width": 6, "out_steps": 6, "mean": [1.0], "std": [2.0]}
    write_sidecar(tmp_path / "f.tflite", new_sidecar("forecast", forecast=section))
    for change in ({"features": "T"}, {"input_width": 0}, {"mean": [1.0, 2.0]}, {"std": [0.0]},
                   {"time_step_s": "600"}, {"time_features": "hour_sin"}):
        with pytest.raises(SidecarError, match="forecast"):
            write_sidecar(tmp_path / "f.tflite", new_sidecar("forecast", forecast={**section, **change}))


# --- model loader hardening (issue 15) ----------------------------------------------------------------


def test_zlib_bomb_is_refused_without_decompressing_it(tmp_path):
    import tracemalloc

    from pi_runtime.model import MAX_MODEL_BYTES

    bomb = tmp_path / "bomb.tflite.zlib"
    bomb.write_bytes(zlib.compress(b"TFL3" * (MAX_MODEL_BYTES // 2), 9))  # 32 MiB inside, ~32 kB outside
    tracemalloc.start()
    try:
        with pytest.raises(ModelError, match="bomb.tflite.zlib: larger than 16 MiB decompressed"):
            load_model(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_MODEL_BYTES  # stopped at the bound, not at 32 MiB (or 4 GB)
    (tmp_path / "big.tflite").write_bytes(b"\0" * (MAX_MODEL_BYTES + 1))
    with pytest.raises(ModelError, match="big.tflite: larger than 16 MiB"):
        load_model(tmp_path / "big.tflite")


def test_truncated_zlib_model_says_so(toy_models, tmp_path):
    float_path, _, _ = toy_models
    cut = tmp_path / "cut.tflite.zlib"
    cut.write_bytes(zlib.compress(float_path.read_bytes())[:200])
    with pytest.raises(ModelError, match="cut.tflite.zlib.*truncated"):
        load_model(cut)


def test_thread_count_is_bounded_before_the_interpreter_sees_it(toy_models):
    import subprocess
    import sys

    from pi_runtime.model import MAX_THREADS, check_num_threads

    float_path, _, _ = toy_models
    assert MAX_THREADS >= 8 and check_num_threads(MAX_THREADS) == MAX_THREADS
    for bad in (0, -1, MAX_THREADS + 1, 2.0, True):
        with pytest.raises(ValueError, match="num_threads must be an integer from 1 to"):
            load_model(float_path, num_threads=bad)
    # 33000 threads crashed inside the interpreter (exit 139); now a clear error, in a process of its own
    result = subprocess.run([sys.executable, "-c", "from pi_runtime.model import load_model; "
                             f"load_model({str(float_path)!r}, num_threads=33000)"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "num_threads must be an integer" in result.stderr, result.stderr[-500:]


def test_frontend_that_does_not_fit_the_model_is_refused_before_allocating(toy_models, tmp_path):
    float_path, _, _ = toy_models
    model = tmp_path / "huge.tflite"
    model.write_bytes(float_path.read_bytes())
    large = PARAMS.replace(feature_kind="spectrogram", fft_length=16384)  # valid, but 8193 bins a frame
    write_sidecar(model, new_sidecar("kws", input=INPUT, frontend=large.to_dict(), labels=LABELS))
    with pytest.raises(ModelError, match=r"huge.tflite: the model takes input \(1, 49, 10\).*8193"):
        load_model(model)
    # beyond FrontendParams' own ranges (2**26 points): refused when the sidecar is read
    sidecar_path(model).write_text(json.dumps(new_sidecar("kws", input=INPUT, frontend={**large.to_dict(), "fft_length": 2 ** 26},
                                                          labels=LABELS)))
    with pytest.raises(SidecarError, match="huge.json: frontend.*fft_length"):
        load_model(model)


def _softmax_model_file(folder):
    from train.keras_env import keras, tf

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=SHAPE)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax")(keras.layers.Flatten()(inputs))
    path = folder / "soft.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs)).convert())
    return path


def test_declared_output_kind_is_checked_against_the_graph(toy_models, tmp_path):
    float_path, int8_path, _ = toy_models
    assert load_model(float_path).output_kind == "logits"  # no "output" key: what the graph shows
    assert load_model(int8_path).output_kind == "logits"
    softmax = _softmax_model_file(tmp_path)
    write_sidecar(softmax, _kws_sidecar())
    assert load_model(softmax).output_kind == "probabilities"
    write_sidecar(softmax, _kws_sidecar(output={"kind": "logits"}))
    with pytest.raises(ModelError, match="says the model outputs logits but its graph ends in a softmax"):
        load_model(softmax)
    liar = tmp_path / "liar.tflite"
    liar.write_bytes(float_path.read_bytes())
    write_sidecar(liar, _kws_sidecar(output={"kind": "probabilities"}))
    with pytest.raises(ModelError, match="says the model outputs probabilities but its graph ends without"):
        load_model(liar)
    write_sidecar(liar, _kws_sidecar(output={"kind": "logits"}))
    assert load_model(liar).output_kind == "logits"


def test_interpreter_info_line_is_hidden_unless_verbose(toy_models):
    import subprocess
    import sys

    float_path, _, _ = toy_models
    script = f"from pi_runtime.model import load_model; load_model({str(float_path)!r}, verbose={{}})"
    quiet = subprocess.run([sys.executable, "-c", script.format(False)], capture_output=True, text=True, timeout=120)
    loud = subprocess.run([sys.executable, "-c", script.format(True)], capture_output=True, text=True, timeout=120)
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    assert quiet.stderr == "" and "XNNPACK" in loud.stderr


def test_filtered_stderr_keeps_other_lines_in_order():
    import os
    import re

    from pi_runtime.quiet import filtered_stderr

    read_end, write_end = os.pipe()
    saved = os.dup(2)
    os.dup2(write_end, 2)
    try:
        with filtered_stderr(re.compile("^noise")):
            os.write(2, b"noise 1\nkept 1\nnoise 2\nkept 2\n")
        os.write(2, b"after\n")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(write_end)
    with os.fdopen(read_end) as reader:
        assert reader.read() == "kept 1\nkept 2\nafter\n"


def test_tensorflow_starts_quietly_unless_asked():
    import os
    import subprocess
    import sys

    script = "from train.keras_env import tf\nprint(float(tf.constant(1.0) + 1))"
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=environment)
    assert quiet.returncode == 0 and quiet.stdout.strip() == "2.0"
    assert quiet.stderr == "", quiet.stderr
    loud = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**environment, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert loud.returncode == 0 and loud.stderr != ""


def test_builtin_kernels_are_the_interpreters_own_without_its_default_delegate(toy_models):
    """load_model(builtin_kernels=True) answers as the interpreter made without XNNPACK, bit for bit,
    and the default as the interpreter's default (what tflite_runtime 2.14 and LiteRT differ in)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    _, int8_path, _ = toy_models
    xs = np.random.default_rng(3).normal(size=(30,) + SHAPE).astype(np.float32)
    for builtin, resolver in ((False, OpResolverType.AUTO),
                              (True, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)):
        loaded = load_model(int8_path, builtin_kernels=builtin)
        assert loaded.builtin_kernels is builtin and ("builtin kernels" in loaded.describe()) is builtin
        interpreter = Interpreter(model_path=str(int8_path), experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
        given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        (in_scale, in_zero), (out_scale, out_zero) = given["quantization"], taken["quantization"]
        for x, got in zip(xs, loaded.predict_many(xs)):
            quantised = np.clip(np.round(x / in_scale + in_zero), -128, 127).astype(np.int8)
            interpreter.set_tensor(given["index"], quantised[None])
            interpreter.invoke()
            want = (interpreter.get_tensor(taken["index"])[0].astype(np.float32) - out_zero) * out_scale
            np.testing.assert_array_equal(got, want)


def test_an_interpreter_that_cannot_leave_out_its_delegate_is_named(toy_models, monkeypatch):
    from pi_runtime import model as model_module

    class OldInterpreter:  # its module has no OpResolverType
        def __init__(self, **kwargs):
            raise AssertionError("never made")

    monkeypatch.setattr(model_module, "_interpreter_classes", lambda: [("old", OldInterpreter)])
    with pytest.raises(model_module.ModelError, match="cannot leave out its default delegate"):
        load_model(toy_models[1], builtin_kernels=True)
