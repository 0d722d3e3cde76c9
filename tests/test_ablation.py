"""train.kws.ablation: variants, their configurations, the resumable run and its report; one variant trained
end to end on toy clips standing in for the splits (the test split must never be read)."""
from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from train.kws import ablation
from train.kws.robustness import SYNTHETIC


def test_variant_changes_compose_and_later_ones_win():
    config, synthetic = ablation.variant_config("b", "babble+gain", epochs=3, seed=4)
    assert config.augment.babble_probability == 0.3 and config.augment.gain_probability == 0.5
    assert config.augment.gain_to_peak_dbfs and config.augment.min_gain_db == -45.0
    assert config.epochs == 3 and config.seed == 4 and not synthetic
    assert config.augment.time_shift_ms == 100.0  # the baseline parts stay
    config, _ = ablation.variant_config("b", "specaugment+none", epochs=1, seed=0)
    assert config.augment.time_masks == 0 and config.augment.feature_masks == 0
    config, synthetic = ablation.variant_config("b", "pcen_10+synthetic_keywords", epochs=1, seed=0)
    assert config.frontend.feature_kind == "pcen" and config.frontend.num_mel_bins == 10 and synthetic


def test_pcen_settings_change_pcen_only_and_need_pcen_features():
    config, _ = ablation.variant_config("b", "pcen_10+pcen_fast+pcen_power_0.25", epochs=1, seed=0)
    assert config.frontend.pcen_time_constant_ms == 100.0 and config.frontend.pcen_power == 0.25
    assert config.frontend.pcen_alpha == 0.98 and config.frontend.num_mel_bins == 10  # the rest as pcen_10
    with pytest.raises(ValueError, match="changes PCEN's settings but its features are mfcc"):
        ablation.variant_config("b", "pcen_slow", epochs=1, seed=0)
    with pytest.raises(ValueError, match="features are log_mel"):
        ablation.variant_config("b", "log_mel_10+pcen_alpha_0.8", epochs=1, seed=0)


def test_kernel_variants_change_the_model_and_keep_the_recipe():
    config, _ = ablation.variant_config("b", "pcen_10+first_kernel_10x4+kernel_5+first_stride_2x1", epochs=1,
                                        seed=0)
    assert config.first_kernel == (10, 4) and config.kernel_size == 5 and config.first_stride == (2, 1)
    assert config.frontend.feature_kind == "pcen" and config.alpha == 0.25  # b's model of then, otherwise
    config, _ = ablation.variant_config("b", "pcen_10", epochs=1, seed=0)
    assert config.first_kernel is None and config.kernel_size is None and config.first_stride is None


def test_bn_after_depthwise_is_mlperf_tinys_ds_cnn_at_the_same_width():
    config, _ = ablation.variant_config("b", "pcen_10+bn_after_depthwise", epochs=1, seed=0)
    base, _ = ablation.variant_config("b", "pcen_10", epochs=1, seed=0)
    assert (config.model, base.model) == ("ds_cnn_bn", "ds_cnn")
    assert (config.alpha, config.blocks, config.frontend) == (base.alpha, base.blocks, base.frontend)


def test_weight_decay_variants_set_only_the_decay():
    config, _ = ablation.variant_config("b", "pcen_10+weight_decay_0.05", epochs=1, seed=0)
    base, _ = ablation.variant_config("b", "pcen_10", epochs=1, seed=0)
    assert (config.weight_decay, base.weight_decay) == (0.05, 0.0)
    assert config.replace(weight_decay=0.0) == base


def test_speed_wide_widens_only_the_range():
    wide, _ = ablation.variant_config("b", "pcen_10+speed_wide", epochs=1, seed=0)
    narrow, _ = ablation.variant_config("b", "pcen_10+speed", epochs=1, seed=0)
    assert (wide.augment.min_speed, wide.augment.max_speed) == (0.8, 1.2)
    assert wide.augment.replace(min_speed=0.9, max_speed=1.1) == narrow.augment


def test_framing_variants_give_twice_the_frames_and_a_consistent_fft():
    base, _ = ablation.variant_config("b", "pcen_10", epochs=1, seed=0)
    for name, frame_length, fft_length in (("frame_step_10ms", 640, 640), ("frame_25ms_step_10ms", 400, 512)):
        config, _ = ablation.variant_config("b", f"pcen_10+{name}", epochs=1, seed=0)
        frontend = config.frontend
        assert (frontend.frame_length_samples, frontend.fft_length, frontend.frame_step_ms) == (frame_length,
                                                                                               fft_length, 10.0)
        assert frontend.feature_kind == "pcen" and frontend.pcen_time_constant_ms == 395.0  # the rest as pcen_10
        assert frontend.num_frames(16000) >= 2 * base.frontend.num_frames(16000) - 2


def test_version_a_leaves_out_its_teachers():
    config, _ = ablation.variant_config("a", "baseline", epochs=1, seed=0)
    from train.kws.versions import VERSIONS

    assert config.teachers == () and not config.calibrate_temperature
    assert config.final_sparsity == VERSIONS["a"].config.final_sparsity > 0  # the model itself is a's


@pytest.mark.parametrize("name", ["", "babble+", "loud", "babble+loud"])
def test_unknown_variants_are_refused(name):
    with pytest.raises(ValueError, match="unknown variant"):
        ablation.variant_changes(name)


def test_unknown_version_is_refused():
    with pytest.raises(ValueError, match="unknown version"):
        ablation.variant_config("z", "baseline", epochs=1, seed=0)


def fake_row(name, version, epochs, seed, data_dir, output_dir, verbose=False):
    """A variant 'trained' in no time: its accuracies grow with the length of its name."""
    if "vtlp" in name:
        raise RuntimeError("this variant breaks")
    score = min(1.0, 0.5 + len(name) / 100)
    row = {column: score for column in ablation.COLUMNS}
    row.update(variant=name, version=version, epochs=epochs, seed=seed, description=ablation.describe(name),
               best_epoch=epochs, size_bytes=1234, train_seconds=1, **{"worst synthetic word": "go 50.0"})
    return row


def test_run_appends_rows_resumes_and_reports_failures(tmp_path):
    csv_path = tmp_path / "ablation.csv"
    messages = []
    failed = ablation.run_ablation(["baseline", "vtlp", "babble"], csv_path, version="b", epochs=2, seed=0,
                                   data_dir=tmp_path, variant_function=fake_row, say=messages.append)
    assert failed == ["vtlp"]
    assert [row["variant"] for row in ablation.read_rows(csv_path)] == ["baseline", "babble"]
    assert any("vtlp failed: RuntimeError: this variant breaks" in message for message in messages)
    calls = []

    def counting(name, *args, **kwargs):
        calls.append(name)
        return fake_row(name, *args, **kwargs)

    # A rerun trains only what is missing (the failed variant is tried again); another epoch count is new.
    ablation.run_ablation(["baseline", "vtlp", "babble", "gain"], csv_path, version="b", epochs=2, seed=0,
                          data_dir=tmp_path, variant_function=counting)
    assert calls == ["vtlp", "gain"]
    ablation.run_ablation(["baseline"], csv_path, version="b", epochs=3, seed=0, data_dir=tmp_path,
                          variant_function=counting)
    assert calls == ["vtlp", "gain", "baseline"]
    rows = ablation.read_rows(csv_path)
    assert [(row["variant"], row["epochs"]) for row in rows] == [("baseline", "2"), ("babble", "2"),
                                                                ("gain", "2"), ("baseline", "3")]


def test_report_gives_differences_to_the_baseline(tmp_path):
    csv_path = tmp_path / "ablation.csv"
    ablation.run_ablation(["baseline", "babble", "gain+babble"], csv_path, version="b", epochs=2, seed=0,
                          data_dir=tmp_path, variant_function=fake_row)
    report = ablation.format_report(ablation.read_rows(csv_path), command="python -m train.kws.ablation")
    baseline, babble = 0.5 + len("baseline") / 100, 0.5 + len("babble") / 100
    assert f"| babble (b, 2 ep) | {100 * babble:.1f} ({100 * (babble - baseline):+.1f}) |" in report
    ablation.run_ablation(["babble"], csv_path, version="b", epochs=2, seed=1, data_dir=tmp_path,
                          variant_function=fake_row)  # another seed: named, and no baseline of its own
    report = ablation.format_report(ablation.read_rows(csv_path), command="python -m train.kws.ablation")
    assert f"| babble (b, 2 ep, seed 1) | {100 * babble:.1f} |" in report
    assert "| baseline (b, 2 ep) | 58.0 | 58.0 |" in report  # no difference to itself
    assert "`gain+babble`: half the clips scaled to a peak of -45..0 dBFS; babble of 4" in report


def test_a_csv_of_something_else_is_refused(tmp_path):
    path = tmp_path / "ablation.csv"
    path.write_text("model,accuracy\nds_cnn,0.9\n")
    with pytest.raises(ValueError, match="not an ablation CSV"):
        ablation.read_rows(path)


def test_command_line_errors(tmp_path, capsys):
    assert ablation.main(["--variants", "baseline,loud", "--output-dir", str(tmp_path)]) == 2
    assert "unknown variant part(s) 'loud'" in capsys.readouterr().err
    assert ablation.main(["--epochs", "0", "--output-dir", str(tmp_path)]) == 2
    assert ablation.main(["--version", "z", "--output-dir", str(tmp_path)]) == 2
    assert ablation.main(["--report-only", "--output-dir", str(tmp_path)]) == 2
    assert "no results" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ablation.main(["--help"])
    help_text = capsys.readouterr().out
    assert "--variants" in help_text and "--workers" in help_text and "pcen_10" in help_text


def test_report_only_rewrites_the_table(tmp_path, capsys):
    csv_path = tmp_path / "ablation.csv"
    ablation.run_ablation(["baseline", "babble"], csv_path, version="b", epochs=2, seed=0, data_dir=tmp_path,
                          variant_function=fake_row)
    assert ablation.main(["--report-only", "--output-dir", str(tmp_path)]) == 0
    assert "| babble (b, 2 ep) |" in (tmp_path / "ablation.md").read_text()


# -- one variant, end to end, on toy clips -----------------------------------------------------------------------
def toy_split(labels, clips_per_label, seed):
    from tests.kws_toy import tone_word
    from train.kws.data import ClipSet

    rng = np.random.default_rng(seed)
    audio, label_ids = [], []
    tones = ("low", "high", "chirp")
    for label_id in range(len(labels)):
        for _ in range(clips_per_label):
            word = tone_word(tones[label_id % 3], 0.3 + 0.05 * (label_id // 3), 0.3, rng)
            clip = np.zeros(16000, np.float32)
            start = int(rng.integers(0, 16000 - word.size))
            clip[start:start + word.size] = word
            audio.append(np.round(clip * 32767).astype(np.int16))
            label_ids.append(label_id)
    return ClipSet(audio=np.stack(audio), label_ids=np.array(label_ids, np.int32), labels=tuple(labels),
                   paths=[Path(labels[i]) / f"toy_{row}.wav" for row, i in enumerate(label_ids)])


def test_one_variant_trains_exports_and_scores_on_validation_only(tmp_path, monkeypatch):
    import train.kws.data as data
    import train.kws.negatives as negatives
    from train.kws.data import LABELS

    loaded = []

    def fake_load_split(name, **kwargs):
        loaded.append(name)
        return toy_split(LABELS, 8 if name == "train" else 6, seed=len(loaded))

    def fake_synthetic_keywords(split, **kwargs):
        clips = toy_split(LABELS, 2, seed=10 + ("train", "val", "test").index(split))
        classes = tuple(LABELS[i] for i in clips.label_ids)
        return SimpleNamespace(audio=clips.audio, classes=classes, kinds=("tts_keyword",) * len(classes))

    monkeypatch.setattr(data, "load_split", fake_load_split)
    monkeypatch.setattr(negatives, "synthetic_keywords", fake_synthetic_keywords)
    row = ablation.train_variant("synthetic_keywords", "b", 1, 0, tmp_path, tmp_path)
    assert loaded == ["train", "val"]  # never the test split
    assert set(ablation.COLUMNS) <= set(row)
    for column in ("val_accuracy", "peak -40 dBFS", "babble 10 dB SNR", SYNTHETIC):
        assert 0.0 <= row[column] <= 1.0
    assert row["worst synthetic word"].split()[0] in LABELS
    assert (tmp_path / "kws_ablation_synthetic_keywords.tflite.zlib").is_file()
    csv_path = tmp_path / "ablation.csv"
    ablation.run_ablation(["synthetic_keywords"], csv_path, version="b", epochs=1, seed=0, data_dir=tmp_path,
                          variant_function=lambda *args, **kwargs: row)
    with open(csv_path) as handle:
        assert next(csv.DictReader(handle))["variant"] == "synthetic_keywords"


def test_pooling_variants_change_only_the_pooling():
    base, _ = ablation.variant_config("b", "pcen_10", epochs=1, seed=0)
    for variant, pooling in (("pooling_max", "max"), ("pooling_average_max", "average_max")):
        config, _ = ablation.variant_config("b", f"pcen_10+{variant}", epochs=1, seed=0)
        assert (config.global_pooling, base.global_pooling) == (pooling, "average")
        assert config.replace(global_pooling="average") == base
