"""Open-set keyword spotting: relabelled splits, generated clips joined in, the toy path end to end.

The generated negatives are stood in for by toy clips (noise as ``_silence_``,
a tone of no keyword's pitch as ``_unknown_``), so the mechanics run in seconds
without the speech synthesisers; the generator itself is tested in
``tests/test_negatives.py``.
"""
import json

import numpy as np
import pytest

from pi_runtime.labels import SILENCE_LABEL, UNKNOWN_LABEL
from train.kws.data import load_split
from train.kws.negatives import GeneratedClips
from train.kws.open_set import generated_clip_set, open_set_labels, rejection_report, share_of

from test_kws import TOY_WORDS, run_toy_go_stop_cli, toy_config, toy_data  # noqa: F401 (fixture)


def toy_generated(count: int = 6, seed: int = 0, keyword: str = "") -> GeneratedClips:
    """Half noise (silence), half a 5 kHz tone (unknown); with ``keyword``, one clip of that class too."""
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000.0
    audio, classes, kinds = [], [], []
    for index in range(count):
        if index % 2:
            clip = 0.3 * np.sin(2 * np.pi * 5000 * t) + 0.01 * rng.standard_normal(16000)
            classes.append(UNKNOWN_LABEL), kinds.append("tts_word")
        else:
            clip = 0.003 * rng.standard_normal(16000)
            classes.append(SILENCE_LABEL), kinds.append("noise_white")
        audio.append(np.round(clip * 32767).astype(np.int16))
    if keyword:
        audio.append(audio[-1].copy()), classes.append(keyword), kinds.append("tts_keyword")
    return GeneratedClips(np.stack(audio), tuple(classes), tuple(kinds), tuple(f"toy {i}" for i in range(len(classes))))


def test_open_set_labels_append_silence_and_unknown():
    assert open_set_labels(("go", "stop")) == ("go", "stop", "_silence_", "_unknown_")
    with pytest.raises(ValueError, match="cannot be a keyword"):
        open_set_labels(("go", "_unknown_"))


def test_a_share_of_the_negatives_keeps_each_kind_alike_and_is_seeded():
    generated = toy_generated(20)
    half = share_of(generated, 0.5)
    assert len(half) == 10 and half.kinds.count("noise_white") == half.kinds.count("tts_word") == 5
    assert share_of(generated, 0.5).sources == half.sources  # seeded: the same clips every time
    rows = [generated.sources.index(source) for source in half.sources]
    assert rows == sorted(rows)  # the order of the clips is kept
    np.testing.assert_array_equal(half.audio, generated.audio[rows])
    assert share_of(generated, 1.0) is generated and len(share_of(generated, 0.01)) == 2  # one of each kind at least
    with pytest.raises(ValueError, match="share"):
        share_of(generated, 0.0)


def test_relabel_turns_other_words_into_unknown_or_leaves_them_out(toy_data):
    folder, splits_dir = toy_data
    clips = load_split("val", data_dir=folder, labels=TOY_WORDS, split_path=splits_dir / "kws_val_split.txt")
    open_set = clips.relabel(("go", "_silence_", "_unknown_"))
    assert len(open_set) == len(clips) == 6
    assert [open_set.labels[i] for i in open_set.label_ids] == [
        "go" if path.parent.name == "go" else "_unknown_" for path in clips.paths]
    closed = clips.relabel(("yes", "go"))  # no unknown class: the other word is left out
    assert len(closed) == 4 and [closed.labels[i] for i in closed.label_ids] == [p.parent.name for p in closed.paths]
    rows, ids = clips.relabel_rows(("stop",))
    assert [clips.paths[row].parent.name for row in rows] == ["stop", "stop"] and ids.tolist() == [0, 0]


def test_generated_clips_join_a_split_with_their_classes(toy_data):
    folder, splits_dir = toy_data
    labels = open_set_labels(TOY_WORDS)
    clips = load_split("train", data_dir=folder, labels=TOY_WORDS, split_path=splits_dir / "kws_train_split.txt")
    generated = generated_clip_set(toy_generated(keyword="yes"), labels, split="train")
    assert [labels[i] for i in generated.label_ids] == ["_silence_", "_unknown_"] * 3 + ["yes"]
    assert generated.paths[0].as_posix() == "generated/train/noise_white/0"
    joined = clips.relabel(labels).concat(generated)
    assert len(joined) == 18 + 7 and joined.labels == labels
    np.testing.assert_array_equal(joined.audio[18:], toy_generated(keyword="yes").audio)
    # a keyword the model does not have is unknown to it; without an unknown class it is left out
    go_stop = generated_clip_set(toy_generated(keyword="yes"), open_set_labels(("go", "stop")), split="val")
    assert go_stop.label_ids[-1] == 3
    assert len(generated_clip_set(toy_generated(keyword="yes"), ("go", "stop"), split="val")) == 0
    with pytest.raises(ValueError, match="cannot join"):
        clips.concat(generated)


def test_toy_open_set_run_reports_keyword_accuracy_and_rejection(toy_data, tmp_path):
    from pi_runtime.sidecar import read_sidecar
    from train.kws.training import Splits, train_export_evaluate

    folder, splits_dir = toy_data
    labels = open_set_labels(TOY_WORDS)
    sets = []
    for seed, name in enumerate(("train", "val", "test")):
        clips = load_split(name, data_dir=folder, labels=TOY_WORDS, split_path=splits_dir / f"kws_{name}_split.txt")
        clips = clips.relabel(labels)
        if name != "test":
            clips = clips.concat(generated_clip_set(toy_generated(12, seed), labels, split=name))
        sets.append(clips)
    splits = Splits(*sets)
    config = toy_config(epochs=10, alpha=0.125, final_sparsity=0.0, augment=None)
    result = train_export_evaluate(config, splits, tmp_path / "live.tflite", latency_runs=2, verbose=False)
    sidecar = read_sidecar(result.path)
    assert sidecar["labels"] == list(labels) and sidecar["keywords"] == list(TOY_WORDS)
    assert sidecar["output"] == {"kind": "logits"}
    # the test split holds keyword clips only: accuracy is the keyword accuracy
    assert result.num_test_clips == result.num_keyword_clips == 6 and result.accuracy == result.keyword_accuracy
    assert result.num_unknown_clips == 0 and "unknown_accuracy" not in sidecar["results"]

    report = rejection_report(result.path, toy_generated(8, seed=5, keyword="yes"))
    assert set(report) == {"noise_white", "tts_word", "tts_keyword", "all negatives"}
    assert report["noise_white"]["clips"] == 4 and report["all negatives"]["clips"] == 8
    for kind in ("noise_white", "tts_word"):
        assert 0.0 <= report[kind]["exact_class"] <= report[kind]["rejected"] <= 1.0
    assert report["tts_keyword"]["correct"] in (0.0, 1.0) and "rejected" not in report["tts_keyword"]
    # the toy negatives are easy: a model that learnt anything rejects most of them
    assert report["all negatives"]["rejected"] >= 0.75


def test_cli_open_set_go_stop_learns_the_other_words_as_unknown(toy_data, tmp_path, capsys, monkeypatch):
    from train.kws import negatives, streams

    calls = []

    def fake_negatives(split, *, split_clips, data_dir=None, seed=0, scale=1.0, progress=False):
        calls.append((split, len(split_clips), scale))
        return toy_generated(6, seed=len(calls))

    def fake_validation_stream(split, *, data_dir=None, seed=0, **kw):
        assert split == "val"  # calibration never sees the test split
        folder, splits_dir = toy_data
        clips = load_split("val", data_dir=folder, labels=TOY_WORDS, split_path=splits_dir / "kws_val_split.txt")
        return streams.build_stream(clips, toy_generated(6, seed=9), name="toy validation stream")

    monkeypatch.setattr(negatives, "build_negatives", fake_negatives)
    monkeypatch.setattr(negatives, "synthetic_keywords", lambda split, **kw: toy_generated(2, keyword="go"))
    monkeypatch.setattr(streams, "realistic_stream", fake_validation_stream)
    status = run_toy_go_stop_cli(toy_data, tmp_path, monkeypatch, "--open-set", "--negatives-share", "0.5")
    out = capsys.readouterr().out
    assert [call[0] for call in calls] == ["train", "val", "test"] and all(call[2] == 1.0 for call in calls)
    assert [call[1] for call in calls] == [18, 6, 6]  # negatives are derived from every word of the split
    sidecar = json.loads((tmp_path / "kws_live_a_go_stop.json").read_text())
    assert sidecar["labels"] == ["go", "stop", "_silence_", "_unknown_"] and sidecar["keywords"] == ["go", "stop"]
    results = sidecar["results"]
    assert results["test_clips"] == 6 and results["keyword_clips"] == 4 and results["unknown_clips"] == 2
    assert set(results["open_set"]) == {"test_negatives", "test_synthetic_keywords"}
    detector = sidecar["detector"]  # calibrated on the (toy) validation stream, for listen's defaults
    assert 0.0 <= detector["threshold"] <= 1.0 and detector["calibration"]["stream"].startswith("toy validation")
    assert "other words answered _unknown_" in out and ">= 97" in out
    assert status == (0 if "PASS: all" in out else 1)


def test_cli_open_set_flags_are_checked_before_the_data_is_read(capsys):
    from train.kws import __main__ as cli

    assert cli.main(["--version", "a", "--keywords", "go,stop", "--open-set", "--unknown"]) == 2
    assert "leave out --unknown" in capsys.readouterr().err
    assert cli.main(["--version", "a", "--negatives-share", "0.5"]) == 2
    assert "need --open-set" in capsys.readouterr().err
    assert cli.main(["--version", "a", "--open-set", "--negatives-share", "0"]) == 2
    assert "--negatives-share" in capsys.readouterr().err
    assert cli.main(["--version", "a", "--tonal-negatives"]) == 2
    assert "need --open-set" in capsys.readouterr().err
    assert cli.main(["--version", "a", "--babble-words-negatives"]) == 2
    assert "need --open-set" in capsys.readouterr().err
    assert cli.main(["--version", "a", "--babble-from-other-words"]) == 2
    assert "need --open-set" in capsys.readouterr().err
    assert cli.main(["--version", "a", "--hard-negatives-from", "kws/kws_live_b.tflite.zlib"]) == 2
    assert "need --open-set" in capsys.readouterr().err
    assert cli.main(["--version", "b", "--open-set", "--hard-negatives-from", "kws/no_such_model.tflite"]) == 2
    assert "no model file" in capsys.readouterr().err


@pytest.mark.parametrize("kind, flag", [("tonal", "tonal_negatives"), ("babble_words", "babble_words_negatives")])
def test_opt_in_negatives_join_training_only_and_only_when_asked(toy_data, monkeypatch, kind, flag):
    from train.kws import negatives
    from train.kws.open_set import load_open_set_splits

    def with_opt_in_kinds(split, *, split_clips, data_dir=None, seed=0, scale=1.0, progress=False):
        plain = toy_generated(6, seed=1)
        if split != "train":  # as build_negatives makes them: the opt-in kinds for training only
            return plain
        tonal = GeneratedClips(plain.audio[:4], (SILENCE_LABEL,) * 4, ("tonal",) * 4, ("toy tonal",) * 4)
        words = GeneratedClips(plain.audio[:3], (UNKNOWN_LABEL,) * 3, ("babble_words",) * 3, ("toy babble",) * 3)
        return negatives.concatenate([plain, tonal, words])

    monkeypatch.setattr(negatives, "build_negatives", with_opt_in_kinds)
    folder, splits_dir = toy_data
    sizes = {}
    for asked in (False, True):
        splits, _ = load_open_set_splits(TOY_WORDS, train_labels=open_set_labels(TOY_WORDS), data_dir=folder,
                                         splits_dir=splits_dir, **{flag: asked})
        sizes[asked] = (len(splits.train), len(splits.val), len(splits.test))
    assert sizes[True][0] == sizes[False][0] + {"tonal": 4, "babble_words": 3}[kind]
    assert sizes[True][1:] == sizes[False][1:]


def test_hard_negatives_join_training_wholly_mined_from_every_negative_and_leave_the_share_alone(
        toy_data, monkeypatch, tmp_path):
    from train.kws import negatives, stream_windows
    from train.kws.open_set import load_open_set_splits

    monkeypatch.setattr(negatives, "build_negatives",
                        lambda split, *, split_clips, data_dir=None, seed=0, scale=1.0, progress=False:
                        toy_generated(10, seed=1))
    asked = []

    def mined(split, *, negatives, miner_path, data_dir=None, seed=0, progress=False):
        asked.append((split, len(negatives), miner_path))
        hard = toy_generated(3, seed=2)
        return GeneratedClips(hard.audio, hard.classes, ("stream_hard",) * 3, hard.sources)

    monkeypatch.setattr(stream_windows, "mined_hard_windows", mined)
    folder, splits_dir = toy_data
    miner = tmp_path / "miner.tflite"
    plain, _ = load_open_set_splits(TOY_WORDS, train_labels=open_set_labels(TOY_WORDS), data_dir=folder,
                                    splits_dir=splits_dir, negatives_share=0.4)
    with_hard, _ = load_open_set_splits(TOY_WORDS, train_labels=open_set_labels(TOY_WORDS), data_dir=folder,
                                        splits_dir=splits_dir, negatives_share=0.4, hard_negatives_from=miner)
    assert asked == [("train", 10, miner)]  # training only, from all ten negatives, not the share of four
    assert len(with_hard.train) == len(plain.train) + 3 and len(with_hard.val) == len(plain.val)
    np.testing.assert_array_equal(with_hard.train.audio[:len(plain.train)], plain.train.audio)
    assert [path.parts[2] for path in with_hard.train.paths[len(plain.train):]] == ["stream_hard"] * 3


def test_other_word_rows_are_the_generated_non_keyword_words():
    from pathlib import Path

    from train.kws.data import ClipSet
    from train.kws.open_set import other_word_rows

    labels = ("go", "stop", SILENCE_LABEL, UNKNOWN_LABEL)
    paths = [Path("go/a.wav"), Path("generated/train/tts_word/0"), Path("generated/train/half/1"),
             Path("generated/train/tts_hard/2"), Path("generated/train/noise_pink/3"),
             Path("generated/train/tts_keyword/4"), Path("tts_word/b.wav")]
    ids = np.array([0, 3, 3, 3, 2, 1, 3], np.int32)
    clips = ClipSet(audio=np.zeros((len(paths), 16000), np.int16), label_ids=ids, labels=labels, paths=paths)
    assert other_word_rows(clips).tolist() == [1, 3]


def test_cli_closed_set_synthetic_keywords_join_training_only(toy_data, tmp_path, capsys, monkeypatch):
    from train.kws import negatives, training

    requested, seen = [], {}

    def fake_synthetic_keywords(split, **kwargs):
        requested.append(split)
        return toy_generated(2, keyword="go")  # silence, unknown, and one synthetic "go"

    def spy(config, splits, *args, **kwargs):
        seen["clips"] = {name: len(getattr(splits, name).label_ids) for name in ("train", "val", "test")}
        seen["train_paths"] = [str(path) for path in splits.train.paths]
        return real(config, splits, *args, **kwargs)

    real = training.train_export_evaluate
    monkeypatch.setattr(negatives, "synthetic_keywords", fake_synthetic_keywords)
    monkeypatch.setattr(training, "train_export_evaluate", spy)
    run_toy_go_stop_cli(toy_data, tmp_path, monkeypatch, "--synthetic-keywords")
    capsys.readouterr()
    assert requested == ["train"]  # never a validation or test voice
    # 12 toy go/stop training clips; only the synthetic "go" joins (a closed set has no unknown class)
    assert seen["clips"] == {"train": 13, "val": 4, "test": 4}
    assert sum("tts_keyword" in path for path in seen["train_paths"]) == 1
    sidecar = json.loads((tmp_path / "kws_a_go_stop.json").read_text())
    assert sidecar["labels"] == ["go", "stop"] and sidecar["training"]["synthetic_keywords"] is True


def test_cli_synthetic_keywords_default_to_the_version_and_can_be_turned_off(toy_data, tmp_path, capsys,
                                                                              monkeypatch):
    import dataclasses

    from train.kws import __main__ as cli
    from train.kws import negatives, versions

    requested = []
    monkeypatch.setattr(negatives, "synthetic_keywords",
                        lambda split, **kwargs: requested.append(split) or toy_generated(2, keyword="go"))
    folder, splits_dir = toy_data
    monkeypatch.setitem(versions.VERSIONS, "a", versions.Version(
        "a", toy_config(epochs=1), max_size_kb=25, summary="toy", synthetic_keywords=True))
    monkeypatch.setattr(versions, "SUBSET_CONFIG_CHANGES", {})
    common = ["--version", "a", "--keywords", "go,stop", "--data-dir", str(folder), "--splits-dir", str(splits_dir),
              "--latency-runs", "2", "--quiet"]
    cli.main([*common, "--output-dir", str(tmp_path / "default")])
    cli.main([*common, "--no-synthetic-keywords", "--output-dir", str(tmp_path / "off")])
    capsys.readouterr()
    assert requested == ["train"]  # the version's default, once; not with --no-synthetic-keywords
    trained = {name: json.loads((tmp_path / name / "kws_a_go_stop.json").read_text())["training"]
               for name in ("default", "off")}
    assert trained["default"]["synthetic_keywords"] is True and "synthetic_keywords" not in trained["off"]
    assert not dataclasses.asdict(versions.Version("x", toy_config(), max_size_kb=1))["synthetic_keywords"]


def test_raised_voices_join_training_only_keywords_and_words_alike(toy_data, monkeypatch):
    from train.kws import negatives
    from train.kws.open_set import load_open_set_splits

    asked = []

    def raised_keywords(split, *, register="natural", **kwargs):
        asked.append(("keywords", split, register))
        return toy_generated(2, keyword="go").select_classes(("go",))

    def raised_words(split, **kwargs):
        asked.append(("words", split, "raised"))
        words = toy_generated(10, seed=2).select_classes((UNKNOWN_LABEL,))
        return GeneratedClips(words.audio, words.classes, ("tts_word_raised",) * len(words), words.sources)

    monkeypatch.setattr(negatives, "build_negatives", lambda split, **kwargs: toy_generated(6, seed=1))
    monkeypatch.setattr(negatives, "synthetic_keywords", raised_keywords)
    monkeypatch.setattr(negatives, "raised_words", raised_words)
    folder, splits_dir = toy_data
    sizes = {}
    for raised in (False, True):
        splits, _ = load_open_set_splits(TOY_WORDS, train_labels=open_set_labels(TOY_WORDS), data_dir=folder,
                                         splits_dir=splits_dir, negatives_share=0.4, raised_voices=raised)
        sizes[raised] = (len(splits.train), len(splits.val), len(splits.test))
    assert asked == [("words", "train", "raised"), ("keywords", "train", "raised")]
    # 2 of the 5 raised words (the negatives' share) and the one raised "go", in training only
    assert sizes[True][0] == sizes[False][0] + 3 and sizes[True][1:] == sizes[False][1:]


def test_cli_closed_set_raised_voices_join_training_and_are_recorded(toy_data, tmp_path, capsys, monkeypatch):
    from train.kws import negatives

    registers = []

    def fake_synthetic_keywords(split, *, register="natural", **kwargs):
        registers.append((split, register))
        return toy_generated(2, keyword="go")

    monkeypatch.setattr(negatives, "synthetic_keywords", fake_synthetic_keywords)
    run_toy_go_stop_cli(toy_data, tmp_path, monkeypatch, "--raised-voices")
    capsys.readouterr()
    assert registers == [("train", "raised")]
    training = json.loads((tmp_path / "kws_a_go_stop.json").read_text())["training"]
    assert training["raised_voices"] is True and "synthetic_keywords" not in training


def test_cli_closed_set_accented_voices_join_training_and_are_recorded(toy_data, tmp_path, capsys, monkeypatch):
    from train.kws import __main__ as cli
    from train.kws import negatives

    asked = []

    def fake_synthetic_keywords(split, *, register="natural", accented=False, **kwargs):
        asked.append((split, register, accented))
        return toy_generated(2, keyword="go")

    monkeypatch.setattr(negatives, "synthetic_keywords", fake_synthetic_keywords)
    run_toy_go_stop_cli(toy_data, tmp_path, monkeypatch, "--accented-voices", "--synthetic-keywords")
    capsys.readouterr()
    assert asked == [("train", "natural", False), ("train", "natural", True)]  # training only, both sets
    training = json.loads((tmp_path / "kws_a_go_stop.json").read_text())["training"]
    assert training["accented_voices"] is True and training["synthetic_keywords"] is True
    folder, splits_dir = toy_data
    assert cli.main(["--version", "a", "--open-set", "--accented-voices", "--data-dir", str(folder),
                     "--splits-dir", str(splits_dir)]) == 2
    assert "closed-set" in capsys.readouterr().err and len(asked) == 2
