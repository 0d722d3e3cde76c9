"""``python -m train.kws.robustness``: the conditions, and the command on the toy tone model and a toy split."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from kws_toy import TOY_LABELS, build_toy_model, tone_word
from train.kws import robustness
from train.kws.robustness import (ACCENTED, CONDITIONS, HELD_OUT_CONDITIONS, SYNTHETIC, Condition, apply_condition,
                                  other_clips)

CLIPS_PER_WORD = 4


def toy_clips(seed: int = 0, clips_per_word: int = CLIPS_PER_WORD):
    """(int16[n, 16000] clips of the toy words at different levels and places, their labels)."""
    rng = np.random.default_rng(seed)
    audio, labels = [], []
    for label in TOY_LABELS:
        for _ in range(clips_per_word):
            word = tone_word(label, rng.uniform(0.35, 0.5), rng.uniform(0.1, 0.6), rng)
            clip = np.zeros(16000, np.float32)
            start = int(rng.integers(0, 16000 - word.size))
            clip[start:start + word.size] = word
            clip += rng.normal(scale=1e-3, size=clip.size).astype(np.float32)
            audio.append(np.round(clip * 32767).astype(np.int16))
            labels.append(label)
    return np.stack(audio), labels


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """(data folder, split file, toy model) with the toy clips as WAVs under <data>/toy/<label>/."""
    from pi_runtime.wav import write_wav

    folder = tmp_path_factory.mktemp("robustness")
    audio, labels = toy_clips()
    lines = []
    for row, (clip, label) in enumerate(zip(audio, labels)):
        path = folder / "data" / "toy" / label / f"clip{row}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, clip, 16000)
        lines.append(path.relative_to(folder / "data").as_posix())
    split_file = folder / "toy_split.txt"
    split_file.write_text("\n".join(lines) + "\n")
    return folder / "data", split_file, build_toy_model(folder / "model")


def test_every_condition_keeps_shape_and_level_and_is_seeded():
    audio, _ = toy_clips()
    clean_peaks = np.abs(audio.astype(np.int32)).max(axis=1)
    for condition in CONDITIONS:
        out = apply_condition(audio, condition, seed=3)
        assert out.shape == audio.shape and out.dtype == np.int16, condition.name
        np.testing.assert_array_equal(out, apply_condition(audio, condition, seed=3))
        peaks = np.abs(out.astype(np.int32)).max(axis=1)
        if condition.group == "level":
            target = min(32767, round(10 ** (condition.value / 20) * 32768))
            assert np.all(np.abs(peaks - target) <= 1), condition.name
        else:  # the clean clip's level: no clipping, no level change
            assert np.all(np.abs(peaks - clean_peaks) <= 1), condition.name
        if condition.group in ("reverb", "babble", "pink"):
            assert not np.array_equal(out, audio), condition.name
            assert not np.array_equal(out, apply_condition(audio, condition, seed=4)), condition.name
    assert np.array_equal(apply_condition(audio, Condition("clean")), audio)
    # noisier at lower SNR; more smeared with a longer RT60 (more energy after the word)
    def residual(condition):
        return float(np.sum((apply_condition(audio, condition).astype(np.float64) - audio) ** 2))
    for group in ("babble", "pink"):
        assert residual(Condition(group, 5.0)) > residual(Condition(group, 10.0)) > residual(Condition(group, 20.0))
    assert residual(Condition("reverb", 1.0)) > residual(Condition("reverb", 0.3))


def test_held_out_conditions_keep_shape_and_level_and_do_what_they_say():
    audio, _ = toy_clips()
    clean_peaks = np.abs(audio.astype(np.int32)).max(axis=1)
    names = [condition.name for condition in HELD_OUT_CONDITIONS]
    assert len(set(names)) == len(names) and not set(names) & {condition.name for condition in CONDITIONS}
    for condition in HELD_OUT_CONDITIONS:
        out = apply_condition(audio, condition, seed=3)
        assert out.shape == audio.shape and out.dtype == np.int16, condition.name
        assert not np.array_equal(out, audio), condition.name
        np.testing.assert_array_equal(out, apply_condition(audio, condition, seed=3))
        peaks = np.abs(out.astype(np.int32)).max(axis=1)
        tolerance = 0.05 * clean_peaks if condition.group == "speed" else 1  # resampling moves a peak a little
        assert np.all(np.abs(peaks - clean_peaks) <= tolerance), condition.name
    assert not np.array_equal(apply_condition(audio, Condition("room_babble", 10.0), seed=3),
                              apply_condition(audio, Condition("room_babble", 10.0), seed=4))

    def band_energy(clips, low_hz, high_hz):
        spectrum = np.abs(np.fft.rfft(clips.astype(np.float64), axis=1)) ** 2
        frequency = np.fft.rfftfreq(clips.shape[1], 1 / 16000)
        return spectrum[:, (frequency >= low_hz) & (frequency < high_hz)].sum()

    # a telephone keeps the voice band and drops what lies outside it
    noise = np.random.default_rng(0).normal(scale=3000, size=(6, 16000)).astype(np.int16)
    phone = apply_condition(noise, Condition("telephone"))
    def outside_against_inside(clips, low_hz, high_hz):
        return band_energy(clips, low_hz, high_hz) / band_energy(clips, 1000, 2000)

    for low_hz, high_hz in ((6000, 8000), (0, 100)):
        assert outside_against_inside(phone, low_hz, high_hz) < 0.01 * outside_against_inside(noise, low_hz, high_hz)
    assert outside_against_inside(phone, 500, 3000) > 0.8 * outside_against_inside(noise, 500, 3000)
    # faster speech is higher and shorter: a centred 1 kHz tone burst comes out at 1.15 kHz, 1/1.15 as long
    tone = np.zeros((6, 16000), np.int16)
    time_s = np.arange(8000) / 16000
    tone[:, 4000:12000] = (10000 * np.sin(2 * np.pi * 1000 * time_s)).astype(np.int16)
    fast = apply_condition(tone, Condition("speed", 1.15))
    assert np.argmax(np.abs(np.fft.rfft(fast[0]))) == pytest.approx(1150, abs=3)  # 1 Hz bins
    assert np.count_nonzero(fast[0]) == pytest.approx(8000 / 1.15, rel=0.01)
    # clipping: the loud and the quiet clip are flattened alike, at the clean clip's peak
    clipped = apply_condition(np.stack([tone[0], tone[0] // 100, tone[0], tone[0], tone[0], tone[0]]),
                              Condition("overdrive", 12.0)).astype(np.int32)
    for row in (0, 1):
        peak = np.abs(clipped[row]).max()
        assert np.mean(np.abs(clipped[row, 4000:12000]) >= peak - 1) > 0.5  # most samples sit at the rails


def test_quiet_levels_round_to_int16_as_a_device_would():
    audio, _ = toy_clips()
    out = apply_condition(audio, Condition("level", -50.0))
    expected = np.rint(audio.astype(np.float64) * (10 ** (-50 / 20) * 32768 / np.abs(audio).max(axis=1,
                                                   keepdims=True)))
    assert np.max(np.abs(out - expected)) <= 1
    assert np.abs(out).max() == round(10 ** (-50 / 20) * 32768)  # about 104: few distinct steps left


def test_babble_is_made_of_other_clips_only():
    rng = np.random.default_rng(0)
    choices = other_clips(6, 5, rng)
    assert choices.shape == (6, 5)
    for row, chosen in enumerate(choices):
        assert row not in chosen and len(set(chosen.tolist())) == 5 and set(chosen.tolist()) <= set(range(6))
    with pytest.raises(ValueError, match="needs more than 5 clips"):
        other_clips(5, 5, rng)
    # a lone loud clip among silent ones: its own babble is silent, so mixing it must fail rather than
    # babble the clip with itself
    audio = np.zeros((6, 16000), np.int16)
    audio[0, 1000:3000] = 10000
    with pytest.raises(ValueError, match="noise is silent"):
        apply_condition(audio, Condition("babble", 10.0))


def test_bad_conditions_are_refused():
    audio, _ = toy_clips()
    with pytest.raises(ValueError, match="unknown condition"):
        apply_condition(audio, Condition("thunder", 1.0))
    with pytest.raises(ValueError, match="int16"):
        apply_condition(audio.astype(np.float32), Condition("clean"))


def test_scores_match_the_evaluation_tool_and_repeat_with_the_seed(toy):
    from train.kws.evaluate import evaluate_model

    data_dir, split_file, model_path = toy
    audio, labels = toy_clips()
    paths = [f"{label}/clip{row}.wav" for row, label in enumerate(labels)]
    # synthetic voices: here more toy words, from another seed
    synthetic_audio, synthetic_labels = toy_clips(seed=7, clips_per_word=2)
    synthetic = SimpleNamespace(audio=synthetic_audio, classes=tuple(synthetic_labels))
    first = robustness.score_models([model_path], audio, labels, paths, synthetic=synthetic, seed=1)
    second = robustness.score_models([model_path], audio, labels, paths, synthetic=synthetic, seed=1)
    result = first[0]
    assert list(result.evaluations) == [condition.name for condition in CONDITIONS] + [SYNTHETIC]
    for name, evaluation in result.evaluations.items():
        np.testing.assert_array_equal(evaluation.predicted_ids, second[0].evaluations[name].predicted_ids)
        assert len(evaluation.label_ids) == (len(synthetic_labels) if name == SYNTHETIC else len(labels))
    clean = evaluate_model(model_path, data_dir=data_dir, split_file=split_file)
    assert result.accuracy("clean") == pytest.approx(clean.accuracy)
    np.testing.assert_array_equal(result.evaluations["clean"].predicted_ids, clean.predicted_ids)
    assert result.accuracy("clean") >= 0.9  # the toy model knows its tones; the conditions are measured against that
    table = robustness.format_model_table(result)
    assert "| peak -40 dBFS | 12 |" in table and f"| {SYNTHETIC} | 6 |" in table
    assert table.splitlines()[0] == "| condition | clips | accuracy (%) | low | high | chirp |"
    assert [name for name, *_ in robustness.bar_results(result)] == [name for name, _ in robustness.BARS]


def test_the_command_writes_tables_and_plot(toy, tmp_path, capsys):
    data_dir, split_file, model_path = toy
    output_dir = tmp_path / "results"
    assert robustness.main([str(model_path), "--split-file", str(split_file), "--data-dir", str(data_dir),
                            "--output-dir", str(output_dir), "--no-synthetic", "--seed", "2"]) == 0
    table = (output_dir / "robustness_toy_tones.md").read_text()
    for condition in CONDITIONS:
        assert f"| {condition.name} | 12 |" in table
    assert "--seed 2" in table and SYNTHETIC not in table.split("How the conditions")[0].split("Generated")[1]
    summary = (output_dir / "robustness_summary.md").read_text()
    assert "| toy_tones |" in summary and "babble 10 dB SNR >= 88 %" in summary
    assert (output_dir / "robustness_summary.png").read_bytes()[:4] == b"\x89PNG"
    assert "| toy_tones |" in capsys.readouterr().out


def test_held_out_conditions_come_after_the_ones_the_bars_read(toy, tmp_path):
    data_dir, split_file, model_path = toy
    audio, labels = toy_clips()
    paths = [f"{label}/clip{row}.wav" for row, label in enumerate(labels)]
    synthetic_audio, synthetic_labels = toy_clips(seed=7, clips_per_word=2)
    synthetic = SimpleNamespace(audio=synthetic_audio, classes=tuple(synthetic_labels))
    accented_audio, accented_labels = toy_clips(seed=8, clips_per_word=1)
    accented = SimpleNamespace(audio=accented_audio, classes=tuple(accented_labels))
    result = robustness.score_models([model_path], audio, labels, paths, synthetic=synthetic, accented=accented,
                                     conditions=CONDITIONS + HELD_OUT_CONDITIONS)[0]
    assert list(result.evaluations) == ([condition.name for condition in CONDITIONS] + [SYNTHETIC, ACCENTED]
                                        + [condition.name for condition in HELD_OUT_CONDITIONS])
    assert len(result.evaluations[ACCENTED].label_ids) == len(accented_labels)
    assert result.evaluations[ACCENTED].clip_paths[0].name == "accented_0"
    assert f"{len(accented_labels)} clips of the split's women's voices" in robustness.format_model_report(
        result, split="toy", command="x")
    output_dir = tmp_path / "results"
    assert robustness.main([str(model_path), "--split-file", str(split_file), "--data-dir", str(data_dir),
                            "--output-dir", str(output_dir), "--no-synthetic", "--held-out"]) == 0
    summary = (output_dir / "robustness_summary.md").read_text()
    header = next(line for line in summary.splitlines() if line.startswith("| model | clean"))
    assert header.rstrip(" |").endswith(HELD_OUT_CONDITIONS[-1].name) and "Held out (`--held-out`" in summary
    assert "Held out" not in robustness.format_summary([robustness.score_models(
        [model_path], audio, labels, paths, conditions=CONDITIONS[:2])[0]], command="x")


def test_the_command_refuses_bad_input(toy, tmp_path, capsys):
    from pi_runtime.wav import write_wav

    data_dir, split_file, model_path = toy
    assert robustness.main([str(tmp_path / "missing.tflite"), "--no-synthetic"]) == 2
    assert "no such model file" in capsys.readouterr().err
    stranger = data_dir / "toy" / "whistle" / "a.wav"
    stranger.parent.mkdir(parents=True, exist_ok=True)
    write_wav(stranger, np.zeros(16000, np.int16), 16000)
    mixed = tmp_path / "mixed.txt"
    mixed.write_text(split_file.read_text() + "toy/whistle/a.wav\n")
    assert robustness.main([str(model_path), "--split-file", str(mixed), "--data-dir", str(data_dir),
                            "--output-dir", str(tmp_path), "--no-synthetic"]) == 2
    assert "clips labelled whistle" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        robustness.build_parser().parse_args(["--help"])
    help_text = capsys.readouterr().out
    assert "--seed" in help_text and "--split-file" in help_text and "--no-synthetic" in help_text


def test_the_synthetic_voices_are_the_splits_own():
    parser = robustness.build_parser()
    assert robustness.synthetic_voices_split(parser.parse_args(["m.tflite"])) == "test"
    assert robustness.synthetic_voices_split(parser.parse_args(["m.tflite", "--split", "val"])) == "val"
    assert robustness.synthetic_voices_split(parser.parse_args(["m.tflite", "--split", "val",
                                                                "--split-file", "x.txt"])) == "test"


def test_a_split_file_is_read_as_the_evaluation_tool_reads_it(toy, tmp_path, capsys):
    """Any rate and channel count converted, an empty file refused, too few clips for babble said first."""
    import soundfile

    from pi_runtime.wav import read_wav, write_wav
    from train.kws.evaluate import evaluate_model

    data_dir, split_file, model_path = toy
    lines = split_file.read_text().split()
    samples, _ = read_wav(data_dir / lines[0])
    other = data_dir / "toy" / Path(lines[0]).parent.name / "stereo_8k.wav"
    eight_khz = samples[::2]  # a 16 kHz clip played as 8 kHz: a different but readable clip
    soundfile.write(str(other), np.stack([eight_khz, eight_khz], axis=1), 8000, subtype="PCM_16")
    converted = tmp_path / "converted.txt"
    converted.write_text("\n".join(lines + [other.relative_to(data_dir).as_posix()]) + "\n")
    args = ["--split-file", str(converted), "--data-dir", str(data_dir), "--output-dir", str(tmp_path / "out"),
            "--no-synthetic"]
    assert robustness.main([str(model_path), *args]) == 0
    scored = evaluate_model(model_path, data_dir=data_dir, split_file=converted)
    assert f"| clean | {len(lines) + 1} | {100 * scored.accuracy:.1f} |" in (
        tmp_path / "out" / "robustness_toy_tones.md").read_text()

    empty = data_dir / "toy" / Path(lines[0]).parent.name / "empty.wav"
    write_wav(empty, np.zeros(0, np.int16), 16000)
    with_empty = tmp_path / "with_empty.txt"
    with_empty.write_text("\n".join(lines + [empty.relative_to(data_dir).as_posix()]) + "\n")
    assert robustness.main([str(model_path), *args[:1], str(with_empty), *args[2:]]) == 2
    assert "empty.wav: holds no samples" in capsys.readouterr().err

    few = tmp_path / "few.txt"
    few.write_text("\n".join(lines[:3]) + "\n")
    assert robustness.main([str(model_path), *args[:1], str(few), *args[2:]]) == 2
    assert "lists 3 clip(s); the babble conditions mix 5 other clips into each, so it needs at least 6" in (
        capsys.readouterr().err)


def test_only_validation_hears_the_accented_voice_and_its_absence_is_said(toy, tmp_path, monkeypatch, capsys):
    from train.kws import negatives

    data_dir, split_file, model_path = toy
    asked = []

    def fake_synthetic_keywords(split, *, accented=False, **kwargs):
        asked.append((split, accented))
        audio, labels = toy_clips(seed=9, clips_per_word=1)
        return SimpleNamespace(audio=audio, classes=tuple(labels))

    monkeypatch.setattr(negatives, "synthetic_keywords", fake_synthetic_keywords)
    assert robustness.main([str(model_path), "--split-file", str(split_file), "--data-dir", str(data_dir),
                            "--output-dir", str(tmp_path / "out")]) == 0
    assert asked == [("test", False)]  # a split file is scored on the test voice, and no accented one
    assert robustness.accented_validation_voice(data_dir, print) is not None and asked[-1] == ("val", True)

    def missing_voice(split, **kwargs):
        raise RuntimeError("festival failed: SIOD ERROR")

    monkeypatch.setattr(negatives, "synthetic_keywords", missing_voice)
    capsys.readouterr()
    assert robustness.accented_validation_voice(data_dir, print) is None
    assert "accented voices are left out: festival failed" in capsys.readouterr().out
