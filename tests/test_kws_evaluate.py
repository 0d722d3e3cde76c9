"""``python -m train.kws.evaluate``: a delivered model on a split, clip by clip (toy data and a toy model)."""
from pathlib import Path

import numpy as np
import pytest

from test_kws import TOY_FRONTEND, TOY_WORDS, toy_config, toy_splits, write_toy_dataset
from train.kws import evaluate as cli
from train.kws.evaluate import Evaluation, error_tally, format_report, format_tally


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    """(data folder, splits folder, a 3-word toy model exported with its sidecar)."""
    from train.kws.training import train_export_evaluate

    folder = tmp_path_factory.mktemp("toy_kws_evaluate")
    splits_dir = write_toy_dataset(folder)
    result = train_export_evaluate(toy_config(epochs=1), toy_splits(folder, splits_dir), folder / "toy.tflite",
                                   latency_runs=2, verbose=False)
    return folder, splits_dir, result.path


def expected_predictions(model_path: Path, clips, words):
    """What the file answers for each clip, the highest of ``words``' outputs: computed here independently."""
    from pi_runtime.model import load_model
    from train.kws.features import compute_features

    model = load_model(model_path)
    scores = np.stack([model.predict(x) for x in compute_features(clips.audio, TOY_FRONTEND)])
    return np.argmax(scores[:, [model.labels.index(word) for word in words]], axis=1)


def run_cli(toy_model, *args):
    folder, splits_dir, model_path = toy_model
    return cli.main([str(model_path), *args, "--data-dir", str(folder), "--splits-dir", str(splits_dir)])


def test_report_matches_the_exported_file_clip_by_clip(toy_model, capsys):
    from pi_runtime.sidecar import read_sidecar
    from train.kws.data import load_split

    folder, splits_dir, model_path = toy_model
    clips = load_split("test", data_dir=folder, labels=TOY_WORDS, split_path=splits_dir / "kws_test_split.txt")
    predicted = expected_predictions(model_path, clips, TOY_WORDS)
    evaluation = cli.evaluate_model(model_path, "test", data_dir=folder, split_path=splits_dir / "kws_test_split.txt")
    assert evaluation.labels == TOY_WORDS
    assert [p.name for p in evaluation.clip_paths] == [p.name for p in clips.paths]
    np.testing.assert_array_equal(evaluation.predicted_ids, predicted)
    # the training command measured the same file the same way
    assert evaluation.accuracy == pytest.approx(read_sidecar(model_path)["results"]["test_accuracy"], abs=1e-5)
    matrix = evaluation.confusion_matrix()
    assert matrix.sum() == len(clips) and np.array_equal(matrix.sum(axis=1), np.bincount(clips.label_ids, minlength=3))

    assert run_cli(toy_model, "--errors") == 0
    out = capsys.readouterr().out
    assert f"{evaluation.accuracy:.2%} on the {len(clips)} test clips of go, stop, yes" in out
    for row in np.flatnonzero(predicted != clips.label_ids):
        assert f"| {clips.paths[row].parent.name}/{clips.paths[row].name} | {TOY_WORDS[predicted[row]]} |" in out


def test_keywords_restrict_the_clips_and_the_outputs(toy_model, capsys):
    from train.kws.data import load_split

    folder, splits_dir, model_path = toy_model
    clips = load_split("val", data_dir=folder, labels=("go", "stop"), split_path=splits_dir / "kws_val_split.txt")
    evaluation = cli.evaluate_model(model_path, "val", keywords=("go", "stop"), data_dir=folder,
                                    split_path=splits_dir / "kws_val_split.txt")
    assert evaluation.labels == ("go", "stop") and len(evaluation.label_ids) == len(clips) == 4
    np.testing.assert_array_equal(evaluation.predicted_ids, expected_predictions(model_path, clips, ("go", "stop")))
    assert run_cli(toy_model, "--split", "val", "--keywords", "stop,go") == 0
    assert "on the 4 val clips of go, stop" in capsys.readouterr().out


def test_others_unknown_scores_every_clip_the_top_output_deciding(toy_model, capsys):
    """go/stop listened for with a 3-word model: a "yes" clip is right when "yes" is the top output."""
    from pi_runtime.model import load_model
    from train.kws.data import load_split
    from train.kws.features import compute_features

    folder, splits_dir, model_path = toy_model
    split_path = splits_dir / "kws_val_split.txt"
    clips = load_split("val", data_dir=folder, labels=TOY_WORDS, split_path=split_path)
    model = load_model(model_path)
    top = np.array([model.labels[int(np.argmax(model.predict(x)))] for x in compute_features(clips.audio, TOY_FRONTEND)])
    truth = np.array([TOY_WORDS[k] for k in clips.label_ids])
    expected = np.where(truth == "yes", top == "yes", top == truth)  # right: the word, or any other output for "yes"
    evaluation = cli.evaluate_model(model_path, "val", keywords=("go", "stop"), data_dir=folder,
                                    split_path=split_path, others_unknown=True)
    assert evaluation.labels == ("go", "stop", "_unknown_") and len(evaluation.label_ids) == len(clips)
    assert [evaluation.labels[k] for k in evaluation.label_ids] == [w if w != "yes" else "_unknown_" for w in truth]
    np.testing.assert_array_equal(evaluation.predicted_ids == evaluation.label_ids, expected)
    assert run_cli(toy_model, "--split", "val", "--keywords", "go,stop", "--others-unknown") == 0
    out = capsys.readouterr().out
    keyword_rows = truth != "yes"
    assert (f"keyword clips: {expected[keyword_rows].mean():.2%} right ({int(expected[keyword_rows].sum())} of "
            f"{int(keyword_rows.sum())}); other clips answered _unknown_: {expected[~keyword_rows].mean():.2%}") in out
    assert run_cli(toy_model, "--others-unknown") == 2
    assert "--others-unknown needs --keywords" in capsys.readouterr().err


def test_a_model_with_an_unknown_class_is_scored_on_every_clip(toy_model, tmp_path):
    from pi_runtime.sidecar import read_sidecar
    from train.kws.data import load_split
    from train.kws.training import Splits, train_export_evaluate

    folder, splits_dir, _ = toy_model
    splits = Splits(*(load_split(name, data_dir=folder, labels=("go", "stop"), unknown_label="_unknown_",
                                 split_path=splits_dir / f"kws_{name}_split.txt") for name in ("train", "val", "test")))
    result = train_export_evaluate(toy_config(epochs=1), splits, tmp_path / "unknown.tflite", latency_runs=2,
                                   verbose=False)
    evaluation = cli.evaluate_model(result.path, "test", data_dir=folder, split_path=splits_dir / "kws_test_split.txt")
    assert evaluation.labels == ("go", "stop", "_unknown_") and len(evaluation.label_ids) == 6
    assert sorted(evaluation.label_ids.tolist()) == [0, 0, 1, 1, 2, 2]  # the "yes" clips are unknown
    assert evaluation.accuracy == pytest.approx(read_sidecar(result.path)["results"]["test_accuracy"], abs=1e-5)

def test_several_models_end_with_a_tally_of_the_clips_they_get_wrong(toy_model, capsys):
    folder, splits_dir, model_path = toy_model
    assert cli.main([str(model_path), str(model_path), "--data-dir", str(folder),
                     "--splits-dir", str(splits_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count(str(model_path) + ":") == 2
    assert "of the 2 models" in out
    assert "1 of 2" not in out  # the same file twice: every wrong clip is wrong in both


def test_report_and_tally_on_known_answers():
    def evaluation(name, predicted):
        return Evaluation(model_path=Path(name), labels=("go", "stop"),
                          clip_paths=[Path("go/a.wav"), Path("go/b.wav"), Path("stop/c.wav")],
                          label_ids=np.array([0, 0, 1]), predicted_ids=np.array(predicted),
                          peak_dbfs=np.array([-6.0, -20.0, -55.25]))

    first, second = evaluation("m1", [0, 1, 0]), evaluation("m2", [0, 0, 0])
    assert first.accuracy == pytest.approx(1 / 3)
    assert first.confusion_matrix().tolist() == [[1, 1], [1, 0]]
    report = format_report(first, "test", show_errors=True)
    assert "33.33% on the 3 test clips of go, stop (2 wrong)" in report
    assert "| go/b.wav | stop | -20.0 |" in report and "| stop/c.wav | go | -55.2 |" in report
    assert "go/a.wav" not in report and "50.0%" in report  # go recall 1 of 2
    assert "| clip |" not in format_report(first, "test")  # errors listed only on request
    assert error_tally([first, second]) == [("stop/c.wav", 2), ("go/b.wav", 1)]
    assert "| stop/c.wav | 2 of 2 |" in format_tally([first, second])
    assert "no clip is wrong" in format_tally([evaluation("m3", [0, 0, 1])])


def test_bad_requests_are_clear_errors(toy_model, tmp_path, capsys):
    folder, splits_dir, model_path = toy_model
    assert run_cli(toy_model, "--keywords", "go,maybe") == 2  # any word a model may have, checked against it
    assert "no output for maybe" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([str(model_path), "--keywords", "go,go"])
    assert "a keyword is named twice" in capsys.readouterr().err
    assert run_cli(toy_model, "--keywords", "go") == 2
    assert "one word against itself is always right" in capsys.readouterr().err
    assert run_cli(toy_model, "--keywords", "go,left") == 2
    assert "no output for left" in capsys.readouterr().err
    assert cli.main([str(tmp_path / "missing.tflite"), "--data-dir", str(folder)]) == 2
    assert "no such model file" in capsys.readouterr().err
    bare = tmp_path / "bare.tflite.zlib"  # the model without its sidecar: no labels to report
    bare.write_bytes(model_path.read_bytes())
    assert cli.main([str(bare), "--data-dir", str(folder), "--splits-dir", str(splits_dir)]) == 2
    assert "sidecar" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    assert "--keywords" in capsys.readouterr().out


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["kws_a", "kws_b", "kws_c", "kws_a_go_stop"])
def test_delivered_models_score_what_their_sidecars_report(speech_commands_dir, name):
    from pi_runtime.sidecar import read_sidecar

    model_path = Path(__file__).resolve().parent.parent / "models" / "kws" / f"{name}.tflite.zlib"
    evaluation = cli.evaluate_model(model_path, "test", data_dir=speech_commands_dir)
    results = read_sidecar(model_path)["results"]
    assert len(evaluation.label_ids) == results["test_clips"]
    assert evaluation.accuracy == pytest.approx(results["test_accuracy"], abs=1e-5)


# -- --split-file ----------------------------------------------------------------------------------
def course_lines(splits_dir, name="test"):
    """The course-format lines of a toy split, without the ./data/ prefix (relative to the data folder)."""
    return [line[len("./data/"):] for line in (splits_dir / f"kws_{name}_split.txt").read_text().split()]


def test_a_split_file_lists_clips_relative_to_the_data_folder(toy_model, tmp_path, capsys):
    folder, splits_dir, model_path = toy_model
    lines = course_lines(splits_dir)
    split_file = tmp_path / "mine.txt"
    split_file.write_text("# the toy test clips, in the form of any split file\n\n"
                          + "\n".join(lines[:2] + ["./data/" + lines[2]] + lines[3:]) + "\n")
    paths = cli.read_split_file(split_file, folder)
    assert [p.relative_to(folder).as_posix() for p in paths] == lines
    reference = cli.evaluate_model(model_path, "test", data_dir=folder, split_path=splits_dir / "kws_test_split.txt")
    evaluation = cli.evaluate_model(model_path, data_dir=folder, split_file=split_file)
    assert [p.name for p in evaluation.clip_paths] == [p.name for p in reference.clip_paths]
    np.testing.assert_array_equal(evaluation.predicted_ids, reference.predicted_ids)
    assert cli.main([str(model_path), "--data-dir", str(folder), "--split-file", str(split_file)]) == 0
    assert f"on the {len(lines)} mine.txt clips of go, stop, yes" in capsys.readouterr().out


def test_split_file_bad_lines_are_reported_with_file_and_line(toy_model, tmp_path, capsys):
    folder, splits_dir, model_path = toy_model
    good = course_lines(splits_dir)[0]
    split_file = tmp_path / "bad.txt"
    split_file.write_text("\n".join([good, "/abs/go/a.wav", "../outside/go/a.wav", "mini_speech_commands/go/a.mp3",
                                     "loose.wav", "", "mini_speech_commands/go/missing.wav", good]) + "\n")
    with pytest.raises(ValueError) as raised:
        cli.read_split_file(split_file, folder)
    message = str(raised.value)
    for line_number, problem in ((2, "relative to the data folder"), (3, "relative to the data folder"),
                                 (4, "expected a .wav"), (5, "inside a folder named by its label"),
                                 (7, "does not exist")):
        assert f"{split_file}, line {line_number} " in message and problem in message
    assert "line 1 " not in message and "line 8 " not in message
    assert len(message.splitlines()) == 5
    with pytest.raises(ValueError) as raised:  # without the existence check, the missing file is no problem
        cli.read_split_file(split_file, folder, check_exists=False)
    assert len(str(raised.value).splitlines()) == 4 and "line 7" not in str(raised.value)
    assert cli.main([str(model_path), "--data-dir", str(folder), "--split-file", str(split_file)]) == 2
    assert "bad.txt, line 5" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="lists no clips"):
        cli.read_split_file(empty, folder)
    assert cli.main([str(model_path), "--data-dir", str(folder), "--split-file", str(tmp_path / "absent.txt")]) == 2
    assert "split file not found" in capsys.readouterr().err


def test_split_file_labels_must_be_the_models(toy_model, tmp_path, capsys):
    from pi_runtime.wav import write_wav

    folder, splits_dir, model_path = toy_model
    for word in ("maybe", "left"):
        (folder / "extra" / word).mkdir(parents=True, exist_ok=True)
        write_wav(folder / "extra" / word / "a.wav", np.zeros(16000, np.int16), 16000)
    split_file = tmp_path / "strangers.txt"
    split_file.write_text("\n".join(course_lines(splits_dir) + ["extra/maybe/a.wav", "extra/left/a.wav"]))
    assert cli.main([str(model_path), "--data-dir", str(folder), "--split-file", str(split_file)]) == 2
    error = capsys.readouterr().err
    assert "clips labelled left, maybe" in error and "does not answer" in error
    # with --keywords only the keywords' clips count: the others are left out
    assert cli.main([str(model_path), "--data-dir", str(folder), "--split-file", str(split_file),
                     "--keywords", "go,stop"]) == 0
    assert "on the 4 strangers.txt clips of go, stop" in capsys.readouterr().out


def test_a_split_outside_speech_commands_downloads_nothing(toy_model, tmp_path, monkeypatch, capsys):
    import shutil

    from train.kws import data as kws_data

    folder, splits_dir, model_path = toy_model
    root = tmp_path / "root"  # no mini_speech_commands/ here: a download would be attempted if asked
    lines = []
    for line in course_lines(splits_dir):
        target = root / "recordings" / Path(line).parent.name / Path(line).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / line, target)
        lines.append(target.relative_to(root).as_posix())
    (root / "split.txt").write_text("\n".join(lines))
    calls = []
    monkeypatch.setattr(kws_data, "ensure_dataset", lambda data_dir=None, **kw: calls.append(data_dir) or data_dir)
    assert cli.main([str(model_path), "--data-dir", str(root), "--split-file", str(root / "split.txt")]) == 0
    assert calls == [] and "on the 6 split.txt clips" in capsys.readouterr().out
    # a split under mini_speech_commands/ does make sure the data set is there
    (tmp_path / "course.txt").write_text("\n".join(course_lines(splits_dir)))
    assert cli.main([str(model_path), "--data-dir", str(folder), "--split-file", str(tmp_path / "course.txt")]) == 0
    assert calls == [folder]
    assert cli.main([str(model_path), "--split-file", str(tmp_path / "course.txt"),
                     "--splits-dir", str(splits_dir), "--data-dir", str(folder)]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_an_open_set_answer_of_silence_or_unknown_is_wrong_on_keyword_clips(toy_model, tmp_path, capsys):
    """The toy model relabelled as (go, stop, _silence_): its third output (trained as "yes") is now a
    rejection, so every go/stop clip it gives to that output is an error."""
    from pi_runtime.sidecar import read_sidecar, write_sidecar
    from train.kws.data import load_split

    folder, splits_dir, model_path = toy_model
    open_set = tmp_path / "open_set.tflite.zlib"
    open_set.write_bytes(model_path.read_bytes())
    write_sidecar(open_set, {**read_sidecar(model_path), "labels": ["go", "stop", "_silence_"],
                             "keywords": ["go", "stop"]})
    split_path = splits_dir / "kws_train_split.txt"  # 12 go/stop clips: enough for some to be rejected
    evaluation = cli.evaluate_model(open_set, "train", data_dir=folder, split_path=split_path)
    clips = load_split("train", data_dir=folder, labels=("go", "stop"), split_path=split_path)
    answers = expected_predictions(model_path, clips, TOY_WORDS)  # over all three outputs
    assert evaluation.labels == ("go", "stop", "_silence_") and len(evaluation.label_ids) == len(clips) == 12
    np.testing.assert_array_equal(evaluation.predicted_ids, answers)
    assert evaluation.accuracy == pytest.approx(np.mean(answers == clips.label_ids))
    np.testing.assert_array_equal(evaluation.rejected_keyword_rows, np.flatnonzero(answers == 2))
    report = format_report(evaluation, "train")
    assert f"{int(np.sum(answers == 2))} keyword clips answered _silence_ (wrong)" in report


def test_word_accuracy_and_rejections_on_known_answers():
    evaluation = Evaluation(model_path=Path("m"), labels=("go", "stop", "_silence_", "_unknown_"),
                            clip_paths=[Path(f"c{i}.wav") for i in range(5)],
                            label_ids=np.array([0, 0, 1, 1, 3]), predicted_ids=np.array([0, 2, 1, 3, 3]),
                            peak_dbfs=np.zeros(5))
    assert evaluation.word_accuracy() == {"go": 0.5, "stop": 0.5, "_unknown_": 1.0}
    assert evaluation.rejected_keyword_rows.tolist() == [1, 3]
    assert "2 keyword clips answered _silence_ or _unknown_ (wrong): 1 _silence_, 1 _unknown_" in \
        format_report(evaluation, "test")
