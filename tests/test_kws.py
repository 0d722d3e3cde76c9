"""Keyword spotting: splits, clips, features, augmentation, models, and the whole toy path.

The toy dataset is a few synthetic clips per word (a word is a tone of its own
pitch), so the full path - data, features, training, pruning, quantisation,
export, sidecar, evaluation through pi_runtime - runs in seconds.
"""
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from native.params import FrontendParams, ModelInput
from pi_runtime.wav import write_wav
from train.kws import data as kws_data
from train.kws.augment import NO_AUGMENTATION, AugmentConfig, augment_audio, mask_features
from train.kws.data import LABELS, load_clips, load_split, parse_keywords, read_clip, read_split

REPO_ROOT = Path(__file__).resolve().parent.parent
TOY_WORDS = ("go", "stop", "yes")
TOY_FRONTEND = FrontendParams(feature_kind="mfcc")


def tone_clip(word: str, rng: np.random.Generator, num_samples: int = 16000) -> np.ndarray:
    """int16 audio of ``word``: a tone of the word's own pitch, with noise."""
    pitch_hz = 300.0 + 400.0 * LABELS.index(word)
    t = np.arange(num_samples) / 16000.0
    audio = 0.3 * np.sin(2 * np.pi * pitch_hz * t) + 0.02 * rng.standard_normal(num_samples)
    return np.round(audio * 32767).astype(np.int16)


def write_toy_dataset(folder: Path, words=TOY_WORDS, clips_per_word=(6, 2, 2), seed=0) -> Path:
    """``folder/mini_speech_commands/<word>/*.wav`` and split files; returns the splits folder."""
    rng = np.random.default_rng(seed)
    splits = {name: [] for name in ("train", "val", "test")}
    for word in words:
        (folder / "mini_speech_commands" / word).mkdir(parents=True, exist_ok=True)
        for split, count in zip(splits, clips_per_word):
            for index in range(count):
                name = f"{split}{index}_nohash_0.wav"
                length = int(rng.integers(9000, 16001))  # some shorter than one second
                write_wav(folder / "mini_speech_commands" / word / name, tone_clip(word, rng, length), 16000)
                splits[split].append(f"./data/mini_speech_commands/{word}/{name}")
    splits_dir = folder / "splits"
    splits_dir.mkdir(exist_ok=True)
    for split, lines in splits.items():
        (splits_dir / f"kws_{split}_split.txt").write_text("\n".join(lines) + "\n")
    return splits_dir


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy_kws")
    return folder, write_toy_dataset(folder)


# -- keywords ------------------------------------------------------------------------------
def test_parse_keywords_sorts_and_defaults_to_all_labels():
    assert parse_keywords(None) == LABELS
    assert parse_keywords("stop, go") == ("go", "stop")
    assert LABELS == tuple(sorted(LABELS))


@pytest.mark.parametrize("text, message", [("go,maybe", "unknown"), ("go,go", "repeat"), ("go", "at least two")])
def test_parse_keywords_rejects_bad_lists(text, message):
    with pytest.raises(ValueError, match=message):
        parse_keywords(text)


# -- splits --------------------------------------------------------------------------------
def test_read_split_resolves_the_data_prefix_and_plain_relative_paths(toy_data, tmp_path):
    folder, splits_dir = toy_data
    paths = read_split(splits_dir / "kws_train_split.txt", folder)
    assert len(paths) == 6 * len(TOY_WORDS)
    assert all(path.is_file() and path.parent.parent == folder / "mini_speech_commands" for path in paths)
    split = tmp_path / "split.txt"
    split.write_text("\nmini_speech_commands/go/train0_nohash_0.wav\n\n")
    assert read_split(split, folder) == [folder / "mini_speech_commands" / "go" / "train0_nohash_0.wav"]


@pytest.mark.parametrize("line, message", [
    ("./data/mini_speech_commands/go/missing.wav", "line 2.*does not exist"),
    ("./data/mini_speech_commands/maybe/train0_nohash_0.wav", "line 2.*not one of the labels"),
    ("./data/mini_speech_commands/go/notes.txt", "line 2.*expected a .wav"),
    ("/etc/passwd.wav", "line 2.*relative"),
    ("./data/../mini_speech_commands/go/train0_nohash_0.wav", "line 2.*relative"),
])
def test_read_split_names_the_file_and_line_of_a_bad_entry(toy_data, tmp_path, line, message):
    folder, _ = toy_data
    split = tmp_path / "bad_split.txt"
    split.write_text("./data/mini_speech_commands/go/train0_nohash_0.wav\n" + line + "\n")
    with pytest.raises(ValueError, match=message) as raised:
        read_split(split, folder)
    assert str(split) in str(raised.value)


def test_read_split_rejects_missing_and_empty_split_files(toy_data, tmp_path):
    folder, _ = toy_data
    with pytest.raises(FileNotFoundError, match="split file not found"):
        read_split(tmp_path / "nope.txt", folder)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="lists no clips"):
        read_split(empty, folder)


def test_course_splits_cover_every_clip_once():
    lines = {name: (REPO_ROOT / "train" / "splits" / f"kws_{name}_split.txt").read_text().split()
             for name in ("train", "val", "test")}
    assert [len(lines[name]) for name in ("train", "val", "test")] == [6400, 800, 800]
    assert len(set(sum(lines.values(), []))) == 8000
    counts = {label: sum(f"/{label}/" in line for line in sum(lines.values(), [])) for label in LABELS}
    assert set(counts.values()) == {1000}


@pytest.mark.realdata
def test_real_splits_resolve_against_the_data_folder(speech_commands_dir):
    paths = read_split(kws_data.split_file("test"), speech_commands_dir)
    assert len(paths) == 800 and all(path.is_file() for path in paths)


# -- clips and WAV edge cases ----------------------------------------------------------------
def test_short_clips_are_zero_padded_to_one_second(tmp_path):
    samples = np.arange(1, 9001, dtype=np.int16)
    write_wav(tmp_path / "short.wav", samples, 16000)
    clip = read_clip(tmp_path / "short.wav")
    assert clip.shape == (16000,) and clip.dtype == np.int16
    np.testing.assert_array_equal(clip[:9000], samples)
    assert not clip[9000:].any()


def _write_raw_wav(path, channels=1, sample_width=2, rate=16000, frames=1600):
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(sample_width)
        writer.setframerate(rate)
        writer.writeframes(b"\x01" * (frames * channels * sample_width))


@pytest.mark.parametrize("kind, message", [
    ("stereo", "channels"), ("8bit", "8-bit"), ("rate", "8000 Hz"), ("long", "longer than one clip"),
    ("truncated", "truncated"), ("garbage", "not a PCM WAV"),
])
def test_bad_wav_files_are_clear_errors_naming_the_file(tmp_path, kind, message):
    path = tmp_path / f"{kind}.wav"
    if kind == "stereo":
        _write_raw_wav(path, channels=2)
    elif kind == "8bit":
        _write_raw_wav(path, sample_width=1)
    elif kind == "rate":
        _write_raw_wav(path, rate=8000)
    elif kind == "long":
        _write_raw_wav(path, frames=16001)
    elif kind == "truncated":
        _write_raw_wav(path)
        path.write_bytes(path.read_bytes()[:-100])
    else:
        path.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(ValueError, match=message) as raised:
        read_clip(path)
    assert str(path) in str(raised.value)


def test_keyword_subset_keeps_only_its_clips_with_label_ids_in_sorted_order(toy_data):
    folder, splits_dir = toy_data
    clips = load_split("train", data_dir=folder, labels=("go", "yes"),
                       split_path=splits_dir / "kws_train_split.txt")
    assert clips.labels == ("go", "yes")
    assert len(clips) == 12 and clips.audio.shape == (12, 16000)
    for path, label_id in zip(clips.paths, clips.label_ids):
        assert clips.labels[label_id] == path.parent.name
    with pytest.raises(ValueError, match="no clips of the labels"):
        load_split("train", data_dir=folder, labels=("down", "up"), split_path=splits_dir / "kws_train_split.txt")


def test_missing_dataset_without_network_says_what_to_do(tmp_path):
    with pytest.raises(RuntimeError, match="TINYML_DATA_DIR"):
        kws_data.ensure_dataset(tmp_path / "empty", url="http://127.0.0.1:9/mini_speech_commands.zip")


def test_dataset_checksum_changes_when_a_clip_changes(toy_data, tmp_path):
    folder, _ = toy_data
    digest = kws_data.dataset_checksum(folder)
    assert len(digest) == 64 and digest == kws_data.dataset_checksum(folder)
    copy = tmp_path / "copy"
    (copy / "mini_speech_commands" / "go").mkdir(parents=True)
    for path in (folder / "mini_speech_commands").glob("*/*.wav"):
        target = copy / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    assert kws_data.dataset_checksum(copy) == digest
    victim = next((copy / "mini_speech_commands" / "go").glob("*.wav"))
    victim.write_bytes(victim.read_bytes()[:-2] + b"\x00\x01")
    assert kws_data.dataset_checksum(copy) != digest


# -- features and augmentation ---------------------------------------------------------------
def test_native_features_match_the_tf_signal_reference():
    from train.kws.features import compute_features

    rng = np.random.default_rng(1)
    audio = np.stack([tone_clip(word, rng) for word in TOY_WORDS])
    for params in (TOY_FRONTEND, FrontendParams(feature_kind="log_mel")):
        native = compute_features(audio, params)
        reference = compute_features(audio, params, backend="tf_signal")
        assert native.shape == reference.shape == (3,) + ModelInput(frontend=params).feature_shape
        np.testing.assert_allclose(native, reference, atol=2e-3 * np.abs(reference).max())


def test_compute_features_rejects_bad_input():
    from train.kws.features import compute_features

    with pytest.raises(ValueError, match="int16"):
        compute_features(np.zeros((2, 16000), np.float32), TOY_FRONTEND)
    with pytest.raises(ValueError, match="2-D"):
        compute_features(np.zeros(16000, np.int16), TOY_FRONTEND)
    with pytest.raises(ValueError, match="backend"):
        compute_features(np.zeros((1, 16000), np.int16), TOY_FRONTEND, backend="librosa")
    # the tf.signal backend computes PCEN too (the delivered versions' features), not silently log-mel
    pcen = TOY_FRONTEND.replace(feature_kind="pcen", num_mel_bins=10)
    clips = (np.random.default_rng(3).standard_normal((2, 16000)) * 3000).astype(np.int16)
    np.testing.assert_allclose(compute_features(clips, pcen, backend="tf_signal"),
                               compute_features(clips, pcen, backend="native"), atol=1e-4)


def test_time_shift_moves_audio_and_zero_fills():
    audio = np.arange(1, 16001, dtype=np.int16)[np.newaxis].repeat(20, axis=0)
    config = AugmentConfig(time_shift_ms=100, noise_probability=0.0)
    shifted = augment_audio(audio, config, 16000, np.random.default_rng(0))
    for row in shifted:
        nonzero = np.flatnonzero(row)
        start = row[nonzero[0]]
        shift = nonzero[0] - (start - 1)  # where sample value v (index v-1) landed
        assert abs(shift) <= 1600
        np.testing.assert_array_equal(row[nonzero], np.arange(start, start + len(nonzero), dtype=np.int16))
    assert len({int(np.flatnonzero(row)[0]) for row in shifted}) > 1
    np.testing.assert_array_equal(augment_audio(audio, NO_AUGMENTATION, 16000, np.random.default_rng(0)), audio)


def test_noise_is_added_to_the_requested_fraction_of_clips():
    audio = np.zeros((400, 1000), dtype=np.int16)
    config = AugmentConfig(time_shift_ms=0, noise_probability=0.5, noise_max_amplitude=0.01)
    noisy = augment_audio(audio, config, 16000, np.random.default_rng(0))
    fraction = np.mean(np.abs(noisy).max(axis=1) > 0)
    assert 0.4 < fraction < 0.6
    assert np.abs(noisy).max() < 0.01 * 32768 * 6


def test_random_gain_scales_whole_clips_within_the_range():
    audio = np.full((300, 100), 10000, dtype=np.int16)
    config = AugmentConfig(time_shift_ms=0, noise_probability=0, gain_probability=0.5, min_gain_db=-20, max_gain_db=0)
    scaled = augment_audio(audio, config, 16000, np.random.default_rng(0))
    assert (scaled == scaled[:, :1]).all()  # one gain per clip
    levels = scaled[:, 0].astype(float)
    assert levels.min() >= 999 and levels.max() == 10000
    assert 0.4 < np.mean(levels < 10000) < 0.6


def test_spec_masks_fill_whole_frames_and_bins():
    features = np.random.default_rng(0).standard_normal((50, 49, 40)).astype(np.float32) + 10
    config = AugmentConfig(time_masks=1, time_mask_max_frames=5, feature_masks=1, feature_mask_max_bins=4)
    masked = mask_features(features, config, np.random.default_rng(0), fill_value=-7.0)
    assert masked.shape == features.shape and not np.shares_memory(masked, features)
    is_fill = masked == -7.0
    frames_masked = is_fill.all(axis=2).sum(axis=1)
    bins_masked = is_fill.all(axis=1).sum(axis=1)
    assert frames_masked.max() <= 5 and bins_masked.max() <= 4
    assert frames_masked.sum() > 0 and bins_masked.sum() > 0
    np.testing.assert_array_equal(masked[~is_fill], features[~is_fill])


def test_mix_up_blends_each_example_with_one_partner_by_the_same_weight_in_features_and_targets():
    from train.kws.augment import mix_up

    count = 12
    features = np.random.default_rng(1).standard_normal((count, 49, 10, 1)).astype(np.float32)
    targets = np.eye(count, dtype=np.float32)  # one label per example: the targets tell who was mixed
    mixed, mixed_targets = mix_up(features, targets, 0.4, np.random.default_rng(0))
    assert mixed.shape == features.shape and mixed_targets.shape == targets.shape
    np.testing.assert_allclose(mixed_targets.sum(axis=1), 1.0, rtol=1e-6)
    for row, target in enumerate(mixed_targets):
        weight = target[row]
        partner = row if np.isclose(weight, 1.0) else int(np.argmax(np.where(np.arange(count) == row, -1, target)))
        expected = weight * features[row] + (1 - weight) * features[partner]
        np.testing.assert_allclose(mixed[row], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(mixed, features)  # some example really was blended
    again, _ = mix_up(features, targets, 0.4, np.random.default_rng(0))
    np.testing.assert_array_equal(again, mixed)  # seeded
    with pytest.raises(ValueError, match="alpha"):
        mix_up(features, targets, 0.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="target rows"):
        mix_up(features, targets[:-1], 0.4, np.random.default_rng(0))


# -- models ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ds_cnn", "ds_cnn_bn", "cnn"])
def test_models_build_with_width_multiplier(name):
    from train.kws.models import build_model

    small = build_model(name, (49, 10), 8, alpha=0.0625)
    large = build_model(name, (49, 10), 8, alpha=0.125)
    assert small.output_shape == (None, 8)
    assert large.count_params() > 1.5 * small.count_params()
    out = small(np.zeros((2, 49, 10, 1), np.float32))
    assert out.shape == (2, 8)


def test_lab4_ds_cnn_has_the_course_layout():
    from train.kws.models import build_model

    model = build_model("ds_cnn", (49, 10), 8, alpha=0.25)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("DepthwiseConv2D") == 2 and kinds.count("Conv2D") == 3
    assert model.get_layer("conv1").strides == (2, 2) and model.get_layer("conv1").filters == 64


def test_ds_cnn_kernels_are_configurable_and_checked():
    from train.kws.models import build_model
    from train.kws.training import RunConfig

    model = build_model("ds_cnn", (49, 10), 8, alpha=0.25, blocks=2, first_kernel=(10, 4), kernel_size=5,
                        first_stride=(2, 1))
    assert model.get_layer("conv1").kernel_size == (10, 4) and model.get_layer("conv1").strides == (2, 1)
    assert model.get_layer("conv1").output_shape == (None, 25, 10, 64)  # every mel band kept
    assert model.get_layer("dw1").kernel_size == model.get_layer("dw2").kernel_size == (5, 5)
    assert model.output_shape == (None, 8)
    plain = build_model("ds_cnn", (49, 10), 8, alpha=0.25, blocks=2)
    assert plain.get_layer("conv1").output_shape == (None, 25, 5, 64)
    # 64 filters x (40 - 9) more in the first convolution, 64 channels x (25 - 9) in each depthwise one
    assert model.count_params() - plain.count_params() == 64 * 31 + 2 * 64 * 16
    for name in ("ds_cnn_bn", "cnn"):
        with pytest.raises(ValueError, match="plain DS-CNN"):
            build_model(name, (49, 10), 8, alpha=0.25, kernel_size=5)
    assert RunConfig(first_kernel=[10, 4]).first_kernel == (10, 4)  # as a sidecar's JSON gives it back
    for bad in ((0, 3), (3,), (2.5, 3), ("3", 3), (None, 3), 3, True):
        for option in ("first_kernel", "first_stride"):
            with pytest.raises(ValueError, match=option):
                RunConfig(**{option: bad})
    for bad in (0, 1.5, "5", True, (5, 5)):
        with pytest.raises(ValueError, match="kernel_size"):
            RunConfig(kernel_size=bad)


def test_build_model_rejects_bad_arguments():
    from train.kws.models import build_model

    with pytest.raises(ValueError, match="unknown model"):
        build_model("transformer", (49, 10), 8, alpha=0.25)
    with pytest.raises(ValueError, match="alpha"):
        build_model("ds_cnn", (49, 10), 8, alpha=0)
    with pytest.raises(ValueError, match="fixed depth"):
        build_model("cnn", (49, 10), 8, alpha=0.25, blocks=3)


# -- the whole path ---------------------------------------------------------------------------
def toy_splits(folder, splits_dir, labels=TOY_WORDS):
    from train.kws.training import Splits

    return Splits(*(load_split(name, data_dir=folder, labels=labels, split_path=splits_dir / f"kws_{name}_split.txt")
                    for name in ("train", "val", "test")))


def toy_config(**changes):
    from train.kws.training import RunConfig

    base = RunConfig(model="ds_cnn", alpha=0.0625, blocks=1, frontend=TOY_FRONTEND, epochs=2, batch_size=8,
                     final_sparsity=0.5, pruning_begin_fraction=0.0, pruning_end_fraction=0.5,
                     quantization="int8", compress=True,
                     augment=AugmentConfig(time_shift_ms=50, time_masks=1, feature_masks=1))
    return base.replace(**changes)


def test_toy_run_trains_prunes_quantises_exports_and_evaluates_through_pi_runtime(toy_data, tmp_path):
    from pi_runtime.model import load_model
    from pi_runtime.sidecar import read_sidecar
    from train.kws.features import compute_features
    from train.kws.training import train_export_evaluate
    from train.toolbox.pruning import weight_sparsity

    folder, splits_dir = toy_data
    splits = toy_splits(folder, splits_dir)
    result = train_export_evaluate(toy_config(), splits, tmp_path / "toy.tflite", latency_runs=3, verbose=False)

    assert result.path == tmp_path / "toy.tflite.zlib" and result.path.is_file()
    assert not (tmp_path / "toy.tflite").exists()
    assert result.size_bytes == result.path.stat().st_size == result.zlib_bytes < result.tflite_bytes
    assert result.sparsity == pytest.approx(weight_sparsity(result.path))
    # tfmot prunes conv and dense kernels to the target, each on its own; depthwise kernels stay dense
    import zlib

    from train.toolbox.tflite_slim import constant_tensors

    tensors = constant_tensors(zlib.decompress(result.path.read_bytes()))
    fractions = sorted(float(np.mean(t["values"] == 0)) for t in tensors if len(t["shape"]) >= 2)
    assert sum(0.45 <= fraction <= 0.55 for fraction in fractions) >= 3
    assert 0.25 < result.sparsity < 0.55

    sidecar = read_sidecar(result.path)
    assert sidecar["labels"] == list(TOY_WORDS)
    assert FrontendParams.from_dict(sidecar["frontend"]) == TOY_FRONTEND
    assert sidecar["version"] == 2 and sidecar["input"] == {"clip_duration_ms": 1000, "resize": None}
    assert sidecar["output"] == {"kind": "logits"}  # recorded by the exporter, from the model
    assert sidecar["results"]["test_accuracy"] == pytest.approx(result.accuracy, abs=1e-5)
    assert sidecar["results"]["size_bytes"] == result.size_bytes
    assert sidecar["training"]["config"]["final_sparsity"] == 0.5

    loaded = load_model(result.path)
    assert loaded.labels == list(TOY_WORDS) and loaded.frontend_params == TOY_FRONTEND
    details = loaded.interpreter.get_tensor_details()
    kernels = [d for d in details if len(d["shape"]) == 4 and d["shape"][0] > 1]  # conv weights (out, h, w, in)
    assert kernels and all(np.dtype(d["dtype"]) == np.int8 for d in kernels)
    features = compute_features(splits.test.audio, TOY_FRONTEND)
    predictions = [int(np.argmax(loaded.predict(x))) for x in features]
    assert result.accuracy == pytest.approx(np.mean(np.array(predictions) == splits.test.label_ids))
    assert result.inference_ms["mean"] > 0 and result.total_ms["mean"] >= result.inference_ms["mean"]


def test_toy_run_without_pruning_exports_a_float_model(toy_data, tmp_path):
    from train.kws.training import train_export_evaluate

    folder, splits_dir = toy_data
    config = toy_config(final_sparsity=0.0, quantization="none", compress=False, augment=None, epochs=1)
    result = train_export_evaluate(config, toy_splits(folder, splits_dir), tmp_path / "float.tflite",
                                   latency_runs=2, verbose=False)
    assert result.path.name == "float.tflite" and result.sparsity < 0.05
    # float32 weights: about 4 bytes a parameter
    assert result.tflite_bytes > 3 * result.parameters


def test_toy_run_with_quantisation_aware_training_exports_int8(toy_data, tmp_path):
    from pi_runtime.model import load_model
    from train.kws.training import train_export_evaluate

    folder, splits_dir = toy_data
    config = toy_config(final_sparsity=0.0, qat_epochs=1, epochs=1, compress=False)
    result = train_export_evaluate(config, toy_splits(folder, splits_dir), tmp_path / "qat.tflite",
                                   latency_runs=2, verbose=False)
    details = load_model(result.path).interpreter.get_tensor_details()
    assert any(np.dtype(d["dtype"]) == np.int8 and len(d["shape"]) == 4 and d["shape"][0] > 1 for d in details)


@pytest.mark.parametrize("changes, message", [
    (dict(final_sparsity=1.0), "final_sparsity"), (dict(epochs=0), "epochs"), (dict(quantization="int4"), "quantization"),
    (dict(qat_epochs=2, final_sparsity=0.5), "pruned"), (dict(qat_epochs=2, quantization="none"), "int8"),
    (dict(train_on_all_words=True, qat_epochs=1, final_sparsity=0.0), "float head"),
    (dict(head_epochs=-1), "head_epochs"),
    (dict(distillation_weight=0.0), "distillation_weight"), (dict(distillation_temperature=0.0), "temperature"),
    (dict(calibrate_temperature=True, qat_epochs=1, final_sparsity=0.0), "calibrate_temperature"),
    (dict(weight_average_decay=1.0), "weight_average_decay"), (dict(weight_average_decay=-0.1), "weight_average"),
    (dict(mixup_alpha=-0.2), "mixup_alpha"), (dict(mixup_alpha=float("nan")), "mixup_alpha"),
    (dict(weight_decay=-0.1), "weight_decay"), (dict(weight_decay=1.0), "weight_decay"),
    (dict(weight_decay=float("nan")), "weight_decay"),
])
def test_run_config_rejects_impossible_combinations(changes, message):
    with pytest.raises(ValueError, match=message):
        toy_config(**changes)


def test_weight_decay_shrinks_the_kernels_and_leaves_batch_norm_and_biases():
    from train.keras_env import keras
    from train.kws.models import build_model
    from train.kws.training import _optimizer

    model = build_model("ds_cnn", (9, 4), 3, alpha=0.05, blocks=1)
    before = {v.name: v.numpy().copy() for v in model.trainable_variables}
    model.compile(optimizer=_optimizer(0.1, 0.5), loss=lambda y, p: 0.0 * keras.backend.sum(p))  # no gradient
    model.train_on_batch(np.ones((2, 9, 4, 1), np.float32), np.zeros((2, 3), np.float32))
    for v in model.trainable_variables:
        shrunk = "kernel" in v.name
        np.testing.assert_allclose(v.numpy(), before[v.name] * (1 - 0.1 * 0.5 if shrunk else 1.0), rtol=1e-5,
                                   err_msg=v.name)
    assert isinstance(_optimizer(0.1, 0.0), keras.optimizers.Adam)


def test_toy_run_selects_and_delivers_the_averaged_weights_of_a_pruned_model(toy_data, tmp_path, monkeypatch):
    from pi_runtime.sidecar import read_sidecar
    from train.kws import training
    from train.toolbox import weight_averaging

    resets, swaps = [], []
    reset, swapped_in = weight_averaging.WeightAverage.reset, weight_averaging.WeightAverage.swapped_in
    monkeypatch.setattr(weight_averaging.WeightAverage, "reset", lambda self: resets.append(self.steps) or reset(self))
    monkeypatch.setattr(weight_averaging.WeightAverage, "swapped_in",
                        lambda self: swaps.append(self.steps) or swapped_in(self))
    folder, splits_dir = toy_data
    lines = []
    monkeypatch.setattr(training, "log", lines.append)
    config = toy_config(epochs=4, weight_average_decay=0.9)  # masks final after epoch 2 of 4
    result = training.train_export_evaluate(config, toy_splits(folder, splits_dir), tmp_path / "avg.tflite",
                                            latency_runs=2)
    steps_per_epoch = int(np.ceil(len(toy_splits(folder, splits_dir).train) / config.batch_size))
    assert resets[-1] == 2 * steps_per_epoch  # restarted once the masks were final
    assert swaps == [steps_per_epoch * k for k in (1, 2, 1, 2)]  # each epoch's average competes
    assert any("moving average" in line for line in lines)
    assert sum("the step's weights" in line for line in lines) == 4
    assert read_sidecar(result.path)["training"]["config"]["weight_average_decay"] == 0.9
    assert 0.25 < result.sparsity < 0.55  # averaging pruned kernels keeps their zeros
    from train.kws.results import results_markdown

    assert "weights averaged (decay 0.9)" in results_markdown(tmp_path)


def test_toy_run_mixes_up_each_epoch_of_the_main_phase_and_records_it(toy_data, tmp_path, monkeypatch):
    from pi_runtime.sidecar import read_sidecar
    from train.kws import training

    calls, mix_up = [], training.mix_up
    monkeypatch.setattr(training, "mix_up", lambda x, targets, alpha, rng: calls.append(alpha) or mix_up(
        x, targets, alpha, rng))
    folder, splits_dir = toy_data
    config = toy_config(epochs=2, final_sparsity=0.0, mixup_alpha=0.3, compress=False)
    result = training.train_export_evaluate(config, toy_splits(folder, splits_dir), tmp_path / "mixup.tflite",
                                            latency_runs=2, verbose=False)
    assert calls == [0.3, 0.3]
    assert read_sidecar(result.path)["training"]["config"]["mixup_alpha"] == 0.3


def test_distillation_targets_mix_the_labels_and_the_teachers_answers():
    from train.toolbox.distillation import distillation_targets

    hard = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    soft = np.array([[0.2, 0.8], [0.5, 0.5]], np.float32)
    np.testing.assert_allclose(distillation_targets(hard, soft, weight=0.5), [[0.6, 0.4], [0.25, 0.75]])
    np.testing.assert_allclose(distillation_targets(hard, soft, weight=1.0), soft)
    with pytest.raises(ValueError, match="weight"):
        distillation_targets(hard, soft, weight=1.5)
    with pytest.raises(ValueError, match="differ"):
        distillation_targets(hard, soft[:1], weight=0.5)


@pytest.fixture(scope="module")
def toy_teacher(toy_data, tmp_path_factory):
    """A three-word toy model, exported with its sidecar, to distil from."""
    from train.kws.training import train_export_evaluate

    folder, splits_dir = toy_data
    return train_export_evaluate(toy_config(epochs=1), toy_splits(folder, splits_dir),
                                 tmp_path_factory.mktemp("teacher") / "teacher.tflite", latency_runs=2,
                                 verbose=False).path


def test_teachers_answer_the_softmax_of_their_logits_over_the_students_words(toy_data, toy_teacher):
    from pi_runtime.model import load_model
    from train.kws.features import compute_features
    from train.toolbox.distillation import Teachers

    folder, splits_dir = toy_data
    features = compute_features(toy_splits(folder, splits_dir).test.audio, TOY_FRONTEND)
    logits = np.stack([load_model(toy_teacher).predict(x) for x in features])[:, [1, 0]] / 2.0  # stop, go
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    answers = Teachers([toy_teacher, toy_teacher], ("stop", "go"), TOY_FRONTEND).probabilities(features, temperature=2.0)
    np.testing.assert_allclose(answers, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no output for left"):
        Teachers([toy_teacher], ("go", "left"), TOY_FRONTEND)
    with pytest.raises(ValueError, match="other features"):
        Teachers([toy_teacher], ("go", "stop"), FrontendParams(feature_kind="log_mel"))
    with pytest.raises(ValueError, match="at least one"):
        Teachers([], ("go", "stop"), TOY_FRONTEND)


def test_toy_run_distils_from_its_teachers(toy_data, toy_teacher, tmp_path, monkeypatch):
    from pi_runtime.sidecar import read_sidecar
    from train.kws.training import train_export_evaluate
    from train.toolbox import distillation

    weights = []
    mix = distillation.distillation_targets
    monkeypatch.setattr(distillation, "distillation_targets",
                        lambda hard, soft, *, weight: weights.append(weight) or mix(hard, soft, weight=weight))
    folder, splits_dir = toy_data
    config = toy_config(epochs=2, teachers=(toy_teacher,), distillation_weight=0.7)
    result = train_export_evaluate(config, toy_splits(folder, splits_dir), tmp_path / "student.tflite",
                                   latency_runs=2, verbose=False)
    assert weights == [0.7, 0.7]  # every epoch's targets
    assert read_sidecar(result.path)["training"]["config"]["teachers"] == [str(toy_teacher)]
    from train.kws.results import results_markdown

    assert "distilled from teacher" in results_markdown(tmp_path)


def test_teachers_hearing_clean_clips_answer_once_for_the_clean_features(toy_data, toy_teacher, tmp_path,
                                                                        monkeypatch):
    from train.kws.augment import AugmentConfig
    from train.kws.features import compute_features
    from train.kws.training import train_export_evaluate
    from train.toolbox import distillation

    heard = []
    answer = distillation.Teachers.probabilities
    monkeypatch.setattr(distillation.Teachers, "probabilities", lambda self, features, *, temperature: heard.append(
        np.array(features)) or answer(self, features, temperature=temperature))
    folder, splits_dir = toy_data
    splits = toy_splits(folder, splits_dir)
    noisy = AugmentConfig(noise_probability=1.0, noise_max_amplitude=0.2, time_shift_ms=100.0)
    config = toy_config(epochs=3, teachers=(toy_teacher,), distillation_input="clean", augment=noisy)
    train_export_evaluate(config, splits, tmp_path / "student.tflite", latency_runs=2, verbose=False)
    assert len(heard) == 1  # three epochs, one hearing
    np.testing.assert_allclose(heard[0], compute_features(splits.train.audio, TOY_FRONTEND), rtol=1e-5, atol=1e-5)
    heard.clear()
    train_export_evaluate(config.replace(distillation_input="augmented"), splits, tmp_path / "other.tflite",
                          latency_runs=2, verbose=False)
    assert len(heard) == 3 and not np.allclose(heard[0], heard[1])  # each epoch's own noisy inputs
    with pytest.raises(ValueError, match="distillation_input"):
        toy_config(distillation_input="noisy")


def test_toy_run_with_calibration_folds_the_validation_scale_into_the_exported_model(toy_data, tmp_path,
                                                                                   monkeypatch):
    from pi_runtime.sidecar import read_sidecar
    from train.kws.training import train_export_evaluate
    from train.toolbox import calibration

    scales = []
    fit_scale = calibration.logit_scale
    monkeypatch.setattr(calibration, "logit_scale", lambda logits, labels: scales.append(
        (logits.shape, fit_scale(logits, labels))) or scales[-1][1])
    folder, splits_dir = toy_data
    splits = toy_splits(folder, splits_dir)
    result = train_export_evaluate(toy_config(epochs=1, calibrate_temperature=True), splits,
                                   tmp_path / "calibrated.tflite", latency_runs=2, verbose=False)
    assert len(scales) == 1 and scales[0][0] == (len(splits.val), 3)  # fitted on the validation clips
    assert read_sidecar(result.path)["training"]["logit_scale"] == pytest.approx(scales[0][1])
    from train.kws.results import results_markdown

    assert f"logits x{scales[0][1]:.2f}" in results_markdown(tmp_path)


def test_cli_names_a_missing_teacher_before_reading_the_data(capsys):
    from train.kws import __main__ as cli

    assert cli.main(["--version", "a", "--teachers", "kws/no_such_teacher.tflite.zlib"]) == 2
    assert "no_such_teacher.tflite.zlib" in capsys.readouterr().err


def test_cli_refuses_teachers_hear_without_teachers(capsys):
    from train.kws import __main__ as cli

    assert cli.main(["--version", "b", "--teachers", "", "--teachers-hear", "clean"]) == 2
    assert "--teachers-hear needs teachers" in capsys.readouterr().err


def test_cli_refuses_a_weight_average_decay_outside_0_to_1(capsys):
    from train.kws import __main__ as cli

    assert cli.main(["--version", "b", "--weight-average", "1.5"]) == 2
    assert "weight_average_decay must be in [0, 1)" in capsys.readouterr().err


def run_toy_go_stop_cli(toy_data, tmp_path, monkeypatch, *extra_args, **config_changes):
    """``python -m train.kws --version a --keywords go,stop`` on the toy data, with a toy version a;
    returns the exit status."""
    from train.kws import __main__ as cli
    from train.kws import versions

    folder, splits_dir = toy_data
    monkeypatch.setitem(versions.VERSIONS, "a", versions.Version(
        "a", toy_config(epochs=1, **config_changes), max_size_kb=25, summary="toy"))
    monkeypatch.setattr(versions, "SUBSET_CONFIG_CHANGES", {})
    return cli.main(["--version", "a", "--keywords", "go,stop", *extra_args, "--data-dir", str(folder),
                     "--splits-dir", str(splits_dir), "--output-dir", str(tmp_path), "--latency-runs", "2",
                     "--quiet"])


def test_cli_trains_a_keyword_subset_and_reports_limits(toy_data, tmp_path, capsys, monkeypatch):
    status = run_toy_go_stop_cli(toy_data, tmp_path, monkeypatch)
    out = capsys.readouterr().out
    assert (tmp_path / "kws_a_go_stop.tflite.zlib").is_file() and (tmp_path / "kws_a_go_stop.json").is_file()
    assert "| test accuracy" in out and ">= 99" in out and "| file size" in out
    assert status == (0 if "PASS: all" in out else 1)
    assert "replacing" not in out
    run_toy_go_stop_cli(toy_data, tmp_path, monkeypatch)  # again: the model there is replaced, and it says so
    assert f"replacing {tmp_path / 'kws_a_go_stop.tflite.zlib'} and its sidecar" in capsys.readouterr().err
    sidecar = json.loads((tmp_path / "kws_a_go_stop.json").read_text())
    assert sidecar["labels"] == ["go", "stop"]
    # 2 of the 3 toy words: 1.5x the epochs keeps the full-label run's number of optimiser steps
    assert sidecar["training"]["config"]["epochs"] == 2
    assert "kws_a_go_stop.tflite.zlib" in (tmp_path / "results.md").read_text()


def test_clip_subset_keeps_the_keywords_clips_and_renumbers_them(toy_data):
    folder, splits_dir = toy_data
    clips = load_split("train", data_dir=folder, labels=TOY_WORDS, split_path=splits_dir / "kws_train_split.txt")
    subset = clips.subset(("stop", "go"))
    assert subset.labels == ("stop", "go") and len(subset) == 12
    for row, path in enumerate(subset.paths):
        assert subset.labels[subset.label_ids[row]] == path.parent.name
        assert np.array_equal(subset.audio[row], clips.audio[clips.paths.index(path)])
    with pytest.raises(ValueError, match="not among"):
        clips.subset(("go", "left"))


def test_keyword_head_starts_as_the_keywords_rows_of_the_full_head(toy_data):
    from train.kws.features import compute_features
    from train.kws.training import Splits, fit, fit_keyword_head

    folder, splits_dir = toy_data
    splits = toy_splits(folder, splits_dir)
    config = toy_config(epochs=1, final_sparsity=0.0, train_on_all_words=True, head_epochs=0)
    train_features = compute_features(splits.train.audio, TOY_FRONTEND)
    val_features = compute_features(splits.val.audio, TOY_FRONTEND)
    model, _, _ = fit(config, splits, train_features, val_features, say=lambda message: None)
    keywords = ("stop", "go")
    subset = Splits(*(clips.subset(keywords) for clips in (splits.train, splits.val, splits.test)))
    head_model, val_accuracy = fit_keyword_head(config, model, TOY_WORDS, keywords, subset,
                                                compute_features(subset.train.audio, TOY_FRONTEND),
                                                compute_features(subset.val.audio, TOY_FRONTEND),
                                                say=lambda message: None)
    features = compute_features(subset.test.audio, TOY_FRONTEND)[..., np.newaxis]
    full_logits = model.predict(features, verbose=0)
    np.testing.assert_allclose(head_model.predict(features, verbose=0), full_logits[:, [1, 0]], rtol=1e-5, atol=1e-5)
    expected = np.mean(np.argmax(model.predict(compute_features(subset.val.audio, TOY_FRONTEND)[..., np.newaxis],
                                               verbose=0)[:, [1, 0]], axis=1) == subset.val.label_ids)
    assert val_accuracy == pytest.approx(expected)


def test_keyword_model_trained_on_all_words_is_delivered_for_the_keywords(toy_data, tmp_path):
    from pi_runtime.model import load_model
    from pi_runtime.sidecar import read_sidecar
    from train.kws.training import train_export_evaluate

    folder, splits_dir = toy_data
    splits = toy_splits(folder, splits_dir)
    config = toy_config(epochs=1, train_on_all_words=True, head_epochs=1)
    with pytest.raises(ValueError, match="train_on_all_words"):
        train_export_evaluate(config.replace(train_on_all_words=False), splits, tmp_path / "x.tflite",
                              keywords=("go", "stop"), verbose=False)
    result = train_export_evaluate(config, splits, tmp_path / "gs.tflite", keywords=("go", "stop"),
                                   latency_runs=2, verbose=False)
    sidecar = read_sidecar(result.path)
    assert sidecar["labels"] == ["go", "stop"] and result.num_test_clips == 4
    assert sidecar["training"]["train_clips"] == 18 and sidecar["training"]["config"]["train_on_all_words"]
    assert load_model(result.path).interpreter.get_output_details()[0]["shape"][-1] == 2


def test_cli_keyword_subset_with_an_unknown_class(toy_data, tmp_path, capsys, monkeypatch):
    status = run_toy_go_stop_cli(toy_data, tmp_path, monkeypatch, "--unknown")
    out = capsys.readouterr().out
    sidecar = json.loads((tmp_path / "kws_a_go_stop.json").read_text())
    assert sidecar["labels"] == ["go", "stop", "_unknown_"]
    assert sidecar["results"]["test_clips"] == 6 and sidecar["results"]["keyword_clips"] == 4
    assert "test accuracy (go/stop clips)" in out and ">= 99" in out
    assert status == (0 if "PASS: all" in out else 1)


def test_unknown_class_collects_the_other_words(toy_data):
    folder, splits_dir = toy_data
    clips = load_split("val", data_dir=folder, labels=("go",), unknown_label="_unknown_",
                       split_path=splits_dir / "kws_val_split.txt")
    assert clips.labels == ("go", "_unknown_") and len(clips) == 6
    assert sorted(clips.label_ids.tolist()) == [0, 0, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="already one of the labels"):
        load_clips(clips.paths, ("go", "stop"), unknown_label="stop")


def test_cli_refuses_bad_folders_and_numbers_before_any_work(tmp_path, capsys):
    from train.kws import __main__ as cli

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for argv, message in ((["--version", "b", "--output-dir", str(a_file)], "a_file exists and is not a folder"),
                          (["--version", "b", "--open-set", "--target-false-alarms-per-hour", "-5"],
                           "--target-false-alarms-per-hour: expected a finite number >= 0"),
                          (["--version", "b", "--epochs", "0"], "--epochs: expected an integer >= 1"),
                          (["--version", "b", "--latency-runs", "0"], "--latency-runs: expected an integer >= 1"),
                          (["--data-dir", "x", "--negatives-scale", "0"], "--negatives-scale: expected")):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    # a mistyped data folder is not made and downloaded into
    assert cli.main(["--version", "b", "--data-dir", str(tmp_path / "typo")]) == 2
    assert "typo is not a folder" in capsys.readouterr().err and not (tmp_path / "typo").exists()


def test_cli_reports_bad_keywords_without_a_traceback(capsys):
    from train.kws import __main__ as cli

    assert cli.main(["--version", "a", "--keywords", "go,maybe"]) == 2
    assert "unknown keyword" in capsys.readouterr().err
    assert cli.main(["--version", "a", "--unknown"]) == 2
    assert "--unknown needs --keywords" in capsys.readouterr().err
    assert cli.main(["--version", "a", "--train-on-all-words"]) == 2
    assert "needs --keywords" in capsys.readouterr().err
    assert cli.main(["--version", "a", "--keywords", "go,stop", "--unknown", "--train-on-all-words"]) == 2
    assert "without --unknown" in capsys.readouterr().err


def test_cli_keyword_subset_trained_on_all_words(toy_data, tmp_path, capsys, monkeypatch):
    status = run_toy_go_stop_cli(toy_data, tmp_path, monkeypatch, "--train-on-all-words", head_epochs=1)
    out = capsys.readouterr().out
    sidecar = json.loads((tmp_path / "kws_a_go_stop.json").read_text())
    assert sidecar["labels"] == ["go", "stop"] and sidecar["results"]["test_clips"] == 4
    # all three words' training clips were used, for the number of epochs of the full-label run
    assert sidecar["training"]["config"]["train_on_all_words"] and sidecar["training"]["config"]["epochs"] == 1
    assert "learnt on all words (18 clips)" in (tmp_path / "results.md").read_text()
    assert "| test accuracy" in out and ">= 99" in out
    assert status == (0 if "PASS: all" in out else 1)


def test_subset_changes_apply_to_their_keywords_only():
    from train.kws.versions import LIVE_AUGMENT, SUBSET_CONFIG_CHANGES, VERSIONS, config_for

    version = VERSIONS["a"]
    assert config_for(version, LABELS) == version.config
    assert config_for(version, ("go", "yes")) == version.config
    go_stop = config_for(version, ("stop", "go"))
    assert go_stop == version.config.replace(**SUBSET_CONFIG_CHANGES[("go", "stop")]) != version.config
    # a subset keeps its version's width; go/stop did not take the weight average a did
    assert (go_stop.alpha, go_stop.final_sparsity) == (version.config.alpha, version.config.final_sparsity)
    assert go_stop.weight_average_decay == 0.0 < version.config.weight_average_decay
    # an open-set go/stop keeps the subset's changes but listens with the live recipe's augmentation
    live_go_stop = config_for(version, ("go", "stop"), open_set=True)
    assert live_go_stop.augment == LIVE_AUGMENT != go_stop.augment
    assert live_go_stop.replace(augment=go_stop.augment, frontend=go_stop.frontend) == go_stop


def test_open_set_runs_keep_the_features_their_recipe_was_chosen_on():
    from pi_runtime.model import load_model
    from train.kws.training import teacher_paths
    from train.kws.versions import (A_TEACHERS, B_TEACHERS, LIVE_AUGMENT, OPEN_SET_A_TEACHERS, OPEN_SET_C_TEACHERS,
                                    OPEN_SET_FRONTEND, OPEN_SET_WEIGHT_AVERAGE_DECAY, VERSIONS,
                                    WEIGHT_AVERAGE_DECAY, config_for)

    live_labels = tuple(LABELS) + ("_silence_", "_unknown_")

    for name, version in VERSIONS.items():
        closed, live = config_for(version, LABELS), config_for(version, LABELS, open_set=True)
        assert live.frontend == OPEN_SET_FRONTEND and live.augment == LIVE_AUGMENT
        assert closed.frontend == version.config.frontend
        # the weight average was taken for the three versions, and not for the open-set recipes
        assert closed.weight_average_decay == WEIGHT_AVERAGE_DECAY
        assert live.weight_average_decay == OPEN_SET_WEIGHT_AVERAGE_DECAY == 0.0
        # a teacher must take the student's features: the closed-set b and c for a, c for b, the open-set ones for
        # live a and c (c's own recipe has none closed)
        assert closed.teachers == {"a": A_TEACHERS, "b": B_TEACHERS}.get(name, ())
        assert live.teachers == {"a": OPEN_SET_A_TEACHERS, "c": OPEN_SET_C_TEACHERS}.get(name, ())
        for path in teacher_paths(live):  # delivered, with the live features and every open-set label
            teacher = load_model(path, require_sidecar=True)
            assert teacher.frontend_params == OPEN_SET_FRONTEND and len(teacher.output_indices(live_labels)) == 10
    assert config_for(VERSIONS["c"], ("go", "stop"), open_set=True).teachers == ()  # a subset trains on its own
    assert len({VERSIONS[name].config.frontend for name in "abc"}) == 1


def test_b_open_set_folder_and_ablation_runs_start_from_the_model_they_were_chosen_on():
    from pi_runtime.sidecar import read_sidecar
    from train.kws.ablation import variant_config
    from train.kws.versions import B_BASE, LIVE_AUGMENT, OPEN_SET_FRONTEND, VERSIONS, config_for

    b = VERSIONS["b"]
    assert b.base_config == B_BASE != b.config and VERSIONS["c"].base_config == VERSIONS["c"].config
    assert (b.config.alpha, B_BASE.alpha) == (0.3125, 0.25)
    live = config_for(b, LABELS, open_set=True)
    assert live == B_BASE.replace(augment=LIVE_AUGMENT, frontend=OPEN_SET_FRONTEND)
    # the kws_live_b trained by that recipe (delivered 2026-12-04 to 2026-12-05, kept as a teacher; the one
    # delivered since is kws_live_c's file with shared weights) was trained on that run
    trained = read_sidecar(REPO_ROOT / "models" / "kws" / "teachers" / "kws_live_b_2026-12-04.tflite.zlib")[
        "training"]["config"]
    for field in ("model", "alpha", "blocks", "epochs", "final_sparsity", "label_smoothing", "teachers",
                  "weight_average_decay"):
        value = getattr(live, field)
        assert trained.get(field, 0.0) == (list(value) if isinstance(value, tuple) else value), field
    assert variant_config("b", "baseline", epochs=20, seed=0)[0].alpha == 0.25


def test_limits_follow_the_version_and_the_keyword_bar():
    from train.kws.training import RunResult
    from train.kws.versions import VERSIONS, limits_for

    result = RunResult(path=Path("x.tflite"), accuracy=0.95, val_accuracy=0.95, size_bytes=30000, tflite_bytes=30000,
                       zlib_bytes=20000, sparsity=0.0, inference_ms={"mean": 1.0, "median": 1.0, "p95": 1.0},
                       total_ms={"mean": 10.0, "median": 10.0, "p95": 10.0}, train_seconds=1, run_seconds=1,
                       num_test_clips=800, best_epoch=1, parameters=1)
    passed = {name: [limit.passed for limit in limits_for(version, result, LABELS)] for name, version in VERSIONS.items()}
    assert passed == {"a": [True, False], "b": [True, True, True], "c": [True, True, True]}
    go_stop = limits_for(VERSIONS["a"], result, ("go", "stop"))
    assert go_stop[0].bound == 99.0 and not go_stop[0].passed


@pytest.mark.slow
@pytest.mark.parametrize("version", ["a", "b", "c"])
def test_real_training_meets_the_version_limits(speech_commands_dir, tmp_path, version):
    from train.kws import __main__ as cli

    assert cli.main(["--version", version, "--data-dir", str(speech_commands_dir),
                     "--output-dir", str(tmp_path), "--quiet"]) == 0


def test_latency_is_measured_again_into_the_sidecar(tmp_path, capsys):
    from pi_runtime.sidecar import read_sidecar, write_sidecar
    from tests.kws_toy import build_toy_model
    from train.kws import results

    model_path = build_toy_model(tmp_path / "model")
    table = tmp_path / "table"  # results.md of another folder: the toy sidecar holds only the latency
    table.mkdir()
    assert results.main(["--remeasure-latency", str(model_path), "--folder", str(table)]) == 2
    assert "records no results" in capsys.readouterr().err  # a toy model was never measured by training
    sidecar = read_sidecar(model_path)
    sidecar["results"] = {"inference_ms": {"mean": -1.0}, "total_ms": {"mean": -1.0}, "test_accuracy": 0.5}
    write_sidecar(model_path, sidecar)
    assert results.main(["--remeasure-latency", str(model_path), "--runs", "3", "--folder", str(table)]) == 0
    measured = read_sidecar(model_path)["results"]
    assert measured["test_accuracy"] == 0.5  # only the latency changes
    assert measured["inference_ms"]["mean"] > 0 and measured["total_ms"]["mean"] > measured["inference_ms"]["mean"]
    assert set(measured["inference_ms"]) == {"mean", "median", "p95"}
    assert results.main(["--remeasure-latency", str(tmp_path / "missing.tflite")]) == 2


def test_results_table_names_the_layers_that_differ_from_the_ds_cnn_defaults():
    from train.kws.results import describe_architecture
    from train.kws.training import RunConfig

    plain = RunConfig(alpha=0.3125, blocks=4).to_dict()
    assert describe_architecture({"config": plain}) == "ds_cnn alpha=0.3125 blocks=4, int8"
    changed = RunConfig(alpha=0.3125, blocks=4, first_kernel=(10, 4), first_stride=(2, 1), kernel_size=5,
                        final_sparsity=0.4).to_dict()
    assert describe_architecture({"config": changed, "logit_scale": 2.5}) == (
        "ds_cnn alpha=0.3125 blocks=4 first conv 10x4 first stride 2x1 depthwise 5x5, pruned 40%, int8, logits x2.50")
    pooled = RunConfig(alpha=0.3125, blocks=4, global_pooling="average_max").to_dict()
    assert describe_architecture({"config": pooled}) == "ds_cnn alpha=0.3125 blocks=4 average+max pooling, int8"


def test_results_table_prints_the_percentage_of_the_clips_not_of_the_rounded_fraction():
    from train.kws.results import percent_of

    assert percent_of(0.97115, 208) == "97.12"  # 202 of 208, kept to five digits in the sidecar
    assert percent_of(0.95125, 800) == "95.12"  # 761 of 800 is exactly 95.125 %
    assert percent_of(0.5, 0) == "50.00"       # no clip count: the fraction as it is
    assert percent_of(0.123456, 800) == "12.35"  # no whole count of clips: the fraction as it is


def test_global_pooling_is_configurable_and_checked():
    from train.kws.models import build_model
    from train.kws.training import RunConfig

    for name in ("ds_cnn", "ds_cnn_bn", "cnn"):
        average = build_model(name, (49, 10), 8, alpha=0.25)
        maximum = build_model(name, (49, 10), 8, alpha=0.25, global_pooling="max")
        both = build_model(name, (49, 10), 8, alpha=0.25, global_pooling="average_max")
        channels = average.get_layer("logits").input_shape[-1]
        assert maximum.get_layer("logits").input_shape[-1] == channels
        assert both.get_layer("logits").input_shape[-1] == 2 * channels
        assert both.count_params() - average.count_params() == channels * 8  # the output layer's new inputs
        assert "gmp" in [layer.name for layer in maximum.layers] and "gmp" not in [l.name for l in average.layers]
    # The maximum answers to the strongest frame alone: a second frame as strong changes nothing.
    model = build_model("cnn", (49, 10), 8, alpha=0.25, global_pooling="max")
    features = np.zeros((1, 49, 10, 1), np.float32)
    features[0, 10:14, 3:6, 0] = 5.0
    once = model.predict(features, verbose=0)
    features[0, 30:34, 3:6, 0] = 5.0
    np.testing.assert_allclose(model.predict(features, verbose=0), once, rtol=1e-5, atol=1e-5)
    for bad in ("mean", "", None, "MAX"):
        with pytest.raises(ValueError, match="global_pooling"):
            build_model("ds_cnn", (49, 10), 8, alpha=0.25, global_pooling=bad)
        with pytest.raises(ValueError, match="global_pooling"):
            RunConfig(global_pooling=bad)
    assert RunConfig(global_pooling="max").to_dict()["global_pooling"] == "max"
