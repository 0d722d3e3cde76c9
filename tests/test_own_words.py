"""Your own words: python -m train.kws --data-dir on a toy folder, transfer from a delivered-style body,
the evaluation tool on the written splits, listen on the resulting model."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

soundfile = pytest.importorskip("soundfile", reason="the folder dataset reads WAVs with soundfile (train extra)")

from kws_toy import build_stream, tone_word  # noqa: E402
from pi_runtime.labels import SILENCE_LABEL, UNKNOWN_LABEL  # noqa: E402
from pi_runtime.sidecar import read_sidecar  # noqa: E402
from pi_runtime.wav import write_wav  # noqa: E402
from train.kws import __main__ as cli  # noqa: E402
from train.kws.data import ClipSet  # noqa: E402
from train.kws.folder_data import speaker_of  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
TOY_WORDS = ("chirp", "high", "low")
FAST = ["--epochs", "2", "--latency-runs", "2", "--quiet"]


def _toy_folder(root: Path, *, speakers: int = 10, takes: int = 3, seed: int = 0) -> Path:
    """Three tone "words", ``takes`` by each of ``speakers``; every fifth file at 44.1 kHz stereo."""
    rng = np.random.default_rng(seed)
    for label in TOY_WORDS:
        (root / label).mkdir(parents=True)
        for speaker in range(speakers):
            for take in range(takes):
                clip = np.zeros(16000, np.float32)
                word = tone_word(label, rng.uniform(0.3, 0.6), rng.uniform(0.1, 0.5), rng)
                start = int(rng.integers(0, clip.size - word.size))
                clip[start:start + word.size] = word
                clip += rng.normal(scale=1e-3, size=clip.size).astype(np.float32)
                path = root / label / f"spk{speaker:02d}_nohash_{take}.wav"
                if (speaker + take) % 5 == 0:
                    from native.resample import resample_poly

                    wide = resample_poly(clip, 441, 160)
                    soundfile.write(path, np.stack([wide, wide], axis=1), 44100, subtype="PCM_16")
                else:
                    soundfile.write(path, clip, 16000, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A closed-set model trained from scratch on the toy folder through the command line."""
    root = _toy_folder(tmp_path_factory.mktemp("own") / "words")
    out = root.parent / "models"
    status = cli.main(["--data-dir", str(root), "--closed-set", "--transfer", "none", "--split-by", "clip",
                       "--output-dir", str(out)] + FAST)
    return root, out, status


def test_toy_folder_trains_end_to_end_from_the_command_line(toy_run):
    root, out, status = toy_run
    assert status in (0, 1)  # 1 only if a limit is missed; the model is delivered either way
    model = out / "own_chirp_high_low.tflite.zlib"
    sidecar = read_sidecar(model)
    assert sidecar["labels"] == list(TOY_WORDS)
    assert sidecar["training"]["transfer"] == "none" and sidecar["training"]["open_set"] is False
    assert sidecar["results"]["test_clips"] > 0 and 0.0 <= sidecar["results"]["test_accuracy"] <= 1.0
    # The splits are written beside the model, relative to the folder, each clip in exactly one.
    listed = {name: (out / "own_chirp_high_low_splits" / f"kws_{name}_split.txt").read_text().split()
              for name in ("train", "val", "test")}
    everything = sum(listed.values(), [])
    assert len(everything) == len(set(everything)) == 3 * 10 * 3
    assert all((root / line).is_file() for line in everything)


def test_the_written_splits_repeat_and_evaluate(toy_run, capsys):
    from train.kws import evaluate

    root, out, _ = toy_run
    model = out / "own_chirp_high_low.tflite.zlib"
    test_file = out / "own_chirp_high_low_splits" / "kws_test_split.txt"
    capsys.readouterr()
    assert evaluate.main([str(model), "--data-dir", str(root), "--split-file", str(test_file)]) == 0
    report = capsys.readouterr().out
    clips = len(test_file.read_text().split())
    assert f"on the {clips} kws_test_split.txt clips of chirp, high, low" in report
    # The evaluation tool's accuracy is the one training measured on the same test clips.
    accuracy = read_sidecar(model)["results"]["test_accuracy"]
    assert f"{accuracy:.2%}" in report
    # your own words are words to evaluate on too, not only the course's eight
    assert evaluate.main([str(model), "--data-dir", str(root), "--split-file", str(test_file),
                          "--keywords", "low,high"]) == 0
    assert "clips of high, low" in capsys.readouterr().out
    # without --split-file, the words folder is not taken for a place to download the course's dataset into
    assert evaluate.main([str(model), "--data-dir", str(root)]) == 2
    assert "holds no mini_speech_commands/; to evaluate on a folder of your own words, give --split-file" in (
        capsys.readouterr().err)
    assert not (root / "mini_speech_commands").exists()


def test_listen_runs_the_new_model_on_a_wav(toy_run, tmp_path):
    _, out, _ = toy_run
    model = out / "own_chirp_high_low.tflite.zlib"
    wav = tmp_path / "stream.wav"
    write_wav(wav, build_stream([(1.0, "low"), (3.0, "high"), (5.0, "chirp")], 7.0), 16000)
    completed = subprocess.run([sys.executable, "-m", "pi_runtime.listen", "--model", str(model), "--input", str(wav),
                                "--json", "--threshold", "0.05", "--verbose"],
                               capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert completed.returncode == 0, completed.stderr
    detections = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    # At a threshold this low some window always fires; every answer is one of the new model's words.
    assert detections and {detection["label"] for detection in detections} <= set(TOY_WORDS)


def test_transfer_from_the_toy_model_as_a_body(toy_run):
    root, out, _ = toy_run
    body = out / "own_chirp_high_low.tflite.zlib"
    status = cli.main(["--data-dir", str(root), "--closed-set", "--transfer", "fine-tune", "--body", str(body),
                       "--split-by", "clip", "--labels", "high,low", "--output-dir", str(out / "transferred")] + FAST)
    assert status in (0, 1)
    sidecar = read_sidecar(out / "transferred" / "own_high_low.tflite.zlib")
    assert sidecar["labels"] == ["high", "low"]
    training = sidecar["training"]
    assert training["transfer"] == "fine-tune" and training["body"] == str(body)
    assert training["head_epochs"] + training["fine_tune_epochs"] == 2
    assert training["body_agreement"] > 0.9  # the rebuilt float body answers like its int8 file


def test_a_rebuilt_body_answers_like_its_file_and_keeps_the_open_set_rows(toy_run, tmp_path):
    import shutil

    from pi_runtime.sidecar import write_sidecar
    from train.kws.features import compute_features
    from train.kws.folder_data import load_folder_dataset
    from train.kws.transfer import HEAD_LAYER, check_reconstruction, float_model_from_tflite, set_body_trainable, \
        transfer_model

    root, out, _ = toy_run
    body_path = tmp_path / "body.tflite.zlib"
    shutil.copy(out / "own_chirp_high_low.tflite.zlib", body_path)
    sidecar = read_sidecar(out / "own_chirp_high_low.tflite.zlib")
    sidecar["labels"] = ["chirp", SILENCE_LABEL, UNKNOWN_LABEL]  # pretend an open-set body
    sidecar["keywords"] = ["chirp"]
    write_sidecar(body_path, sidecar)
    body = float_model_from_tflite(body_path)
    dataset = load_folder_dataset(root, split_by="clip")
    features = compute_features(dataset.splits["train"].audio, body.model_input)
    assert check_reconstruction(body, features) > 0.9
    model = transfer_model(body, ("beep", SILENCE_LABEL, UNKNOWN_LABEL, "boop"))
    old_kernel, old_bias = body.model.layers[-1].get_weights()
    kernel, bias = model.get_layer(HEAD_LAYER).get_weights()
    np.testing.assert_array_equal(kernel[:, 1:3], old_kernel[:, 1:3])
    np.testing.assert_array_equal(bias[1:3], old_bias[1:3])
    assert not np.allclose(kernel[:, 0], old_kernel[:, 0]) and bias[0] == 0 and bias[3] == 0
    # The body's layers are the rebuilt ones, shared; freezing leaves only the new head trainable.
    set_body_trainable(model, False)
    assert [layer.name for layer in model.layers if layer.trainable and layer.weights] == [HEAD_LAYER]


def test_folder_errors_exit_2_and_say_why(toy_run, tmp_path, capsys):
    root, _, _ = toy_run
    assert cli.main(["--data-dir", str(root), "--keywords", "go,stop"] + FAST) == 2
    assert "--keywords apply to Mini Speech Commands" in capsys.readouterr().err
    assert cli.main(["--data-dir", str(root), "--weight-average", "0.999"] + FAST) == 2
    assert "--weight-average apply to Mini Speech Commands" in capsys.readouterr().err
    assert cli.main(["--data-dir", str(root), "--babble-words-negatives"] + FAST) == 2
    assert "--babble-words-negatives apply to Mini Speech Commands" in capsys.readouterr().err
    assert cli.main(["--data-dir", str(root), "--labels", "high,nope"] + FAST) == 2
    assert "nope" in capsys.readouterr().err
    assert cli.main(["--data-dir", str(root), "--closed-set", "--labels", "high", "--split-by", "clip"] + FAST) == 2
    assert "at least two labels" in capsys.readouterr().err
    assert cli.main(["--data-dir", str(root), "--transfer", "fine-tune", "--body", str(tmp_path / "none.tflite"),
                     "--split-by", "clip"] + FAST) == 2
    assert "none.tflite not found" in capsys.readouterr().err
    # Speaker-aware splits of two speakers: a split without a clip of a label is an error with advice.
    few = _toy_folder(tmp_path / "few", speakers=2, takes=2)
    assert cli.main(["--data-dir", str(few), "--closed-set", "--transfer", "none"] + FAST) == 2
    assert "split by clip" in capsys.readouterr().err
    broken = _toy_folder(tmp_path / "broken", speakers=3, takes=1)
    (broken / "low" / "spk99_nohash_0.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    assert cli.main(["--data-dir", str(broken), "--closed-set", "--split-by", "clip"] + FAST) == 2
    assert "spk99_nohash_0.wav" in capsys.readouterr().err
    assert cli.main(["--data-dir", str(root), "--closed-set", "--target-false-alarms-per-hour", "5"] + FAST) == 2
    assert "leave out --closed-set" in capsys.readouterr().err
    assert cli.main(["--data-dir", str(root), "--closed-set", "--tonal-negatives"] + FAST) == 2
    assert "leave out --closed-set" in capsys.readouterr().err
    assert cli.main(["--labels", "a,b", "--version", "b"] + FAST) == 2
    assert "--labels apply to a folder dataset" in capsys.readouterr().err
    assert cli.main(["--data-dir", str(root), "--teachers-hear", "clean"] + FAST) == 2
    assert "--teachers-hear apply to Mini Speech Commands" in capsys.readouterr().err
    assert cli.main(["--data-dir", str(root), "--transfer", "none", "--body", str(tmp_path / "m.tflite")] + FAST) == 2
    assert "leave it out with --transfer none" in capsys.readouterr().err


def test_negatives_drop_the_users_words_and_same_word_splices(tmp_path, monkeypatch):
    from train.kws import folder_training, negatives
    from train.kws.negatives import GeneratedClips

    asked_sizes = []

    def fake_build(split, *, split_clips, data_dir, seed, scale, progress, sizes=None):
        asked_sizes.append(sizes)
        sources = ("lamp|flite_kal|stretch=1", "table|flite_kal|stretch=1", "lamp/a.wav+lamp/b.wav",
                   "lamp/a.wav+fan/b.wav", "noise_white", "tonal 1", "babble of 3 words")
        return GeneratedClips(np.zeros((7, 16000), np.int16),
                              (UNKNOWN_LABEL,) * 4 + (SILENCE_LABEL,) * 2 + (UNKNOWN_LABEL,),
                              ("tts_word", "tts_word", "splice", "splice", "noise_white", "tonal", "babble_words"),
                              sources)

    monkeypatch.setattr(negatives, "build_negatives", fake_build)
    clips = ClipSet(np.zeros((6, 16000), np.int16), np.array([0, 1] * 3, np.int32), ("fan", "lamp"),
                    [Path(f"lamp/s{n}_nohash_0.wav") for n in range(6)])
    dataset = type("Dataset", (), {"splits": {"train": clips}, "labels": ("fan", "lamp"), "root": tmp_path})()
    background = np.ones((2, 16000), np.int16)
    made = folder_training.folder_negatives(dataset, "train", scale=0.1, background=background)
    assert made.sources[:3] == ("table|flite_kal|stretch=1", "lamp/a.wav+fan/b.wav", "noise_white")
    assert made.kinds[3:] == (folder_training.BACKGROUND_KIND,) * 2
    assert made.classes[3:] == (SILENCE_LABEL,) * 2
    # The tonal negatives join only when asked (--tonal-negatives), before the background pieces.
    tonal = folder_training.folder_negatives(dataset, "train", scale=0.1, background=background, tonal=True)
    assert tonal.sources[:4] == made.sources[:3] + ("tonal 1",) and tonal.kinds[3] == "tonal"
    assert len(tonal) == len(made) + 1
    assert "babble_words" not in made.kinds + tonal.kinds  # never on a folder dataset
    # Training asks the generator for FOLDER_TONAL_CLIPS tonal clips, whatever the scale; only when it uses them.
    assert asked_sizes == [None, {"tonal": folder_training.FOLDER_TONAL_CLIPS}]
    too_few = ClipSet(clips.audio[:5], clips.label_ids[:5], clips.labels, clips.paths[:5])
    dataset.splits = {"val": too_few}
    with pytest.raises(ValueError, match="the val split has 5 clips.*--closed-set"):
        folder_training.folder_negatives(dataset, "val", scale=0.1, background=background[:0])


def test_background_pieces_and_mixing(tmp_path):
    from train.kws.acoustics import active_rms_dbfs, rms_dbfs
    from train.kws.folder_training import BACKGROUND_SNR_DB, background_pieces, mixed_with_background

    rng = np.random.default_rng(1)
    room = rng.normal(scale=0.01, size=48000 * 11 + 100)  # 11 s and a bit at 48 kHz
    soundfile.write(tmp_path / "room.wav", room, 48000, subtype="PCM_16")
    pieces = background_pieces([tmp_path / "room.wav"])
    assert [len(pieces[name]) for name in ("train", "val", "test")] == [10, 1, 0]
    assert pieces["train"].shape[1] == 16000 and pieces["train"].dtype == np.int16
    word = np.zeros((1, 16000), np.int16)
    word[0, 4000:12000] = (0.3 * 32767 * np.sin(np.arange(8000) * 0.2)).astype(np.int16)
    clips = ClipSet(word, np.array([0], np.int32), ("beep",), [Path("beep/a_nohash_0.wav")])
    mixed = mixed_with_background(clips, pieces["train"], rng)
    noise = mixed.audio[0].astype(np.float64) - word[0]
    snr = active_rms_dbfs(word[0].astype(np.float32) / 32768) - rms_dbfs(noise.astype(np.float32) / 32768)
    assert BACKGROUND_SNR_DB[0] - 0.5 <= snr <= BACKGROUND_SNR_DB[1] + 0.5
    assert mixed.labels == clips.labels and speaker_of(mixed.paths[0]) == "a"


def test_balanced_accuracy_on_known_answers():
    from train.kws.transfer import balanced_accuracy

    truth = np.array([0, 0, 0, 0, 1, 2])
    assert balanced_accuracy(np.array([0, 0, 0, 0, 1, 0]), truth) == pytest.approx((1 + 1 + 0) / 3)
    assert balanced_accuracy(np.array([1, 1, 1, 1, 1, 2]), truth) == pytest.approx((0 + 1 + 1) / 3)


@pytest.mark.parametrize("flags, expected", [([], True), (["--no-tonal-negatives"], False),
                                             (["--closed-set"], False)])
def test_a_folder_trains_with_the_tonal_negatives_unless_told_otherwise(toy_run, monkeypatch, capsys, flags,
                                                                          expected):
    from train.kws import folder_training

    seen = {}

    def capture(dataset, path, config, options, **kwargs):
        seen["options"] = options
        raise ValueError("stopped before training")

    monkeypatch.setattr(folder_training, "train_folder_model", capture)
    root, _, _ = toy_run
    assert cli.main(["--data-dir", str(root), "--split-by", "clip", "--transfer", "none", *flags] + FAST) == 2
    assert "stopped before training" in capsys.readouterr().err
    assert seen["options"].tonal_negatives is expected


def test_the_benchmark_refuses_the_test_stream_for_a_validation_choice(capsys):
    from benchmarks import own_words

    with pytest.raises(SystemExit) as exit_info:
        own_words.main(["--split", "val", "--streaming"])
    assert exit_info.value.code == 2
    assert "train.kws.calibrate" in capsys.readouterr().err


def test_the_benchmark_refuses_a_negative_seed(capsys):
    from benchmarks import own_words

    with pytest.raises(SystemExit) as exit_info:
        own_words.main(["--seed", "-1"])
    assert exit_info.value.code == 2
    assert "--seed: expected an integer >= 0, got -1" in capsys.readouterr().err


def test_the_benchmark_never_clears_a_folder_it_did_not_make(tmp_path, capsys, monkeypatch):
    from benchmarks import own_words
    import train.kws.data as data

    monkeypatch.setattr(data, "ensure_dataset", lambda *a, **k: pytest.fail("went on to the dataset"))
    precious = tmp_path / "my_words"
    (precious / "sub").mkdir(parents=True)
    (precious / "sub" / "thesis.wav").write_bytes(b"RIFF")
    own = tmp_path / "own"  # the layout a run writes, but the user's own recordings
    (own / "dataset" / "go").mkdir(parents=True)
    (own / "dataset" / "go" / "mine.wav").write_bytes(b"RIFF")
    for argv, message in ((["--work-dir", str(precious)], "holds files this benchmark did not make"),
                          (["--work-dir", str(own)], "holds files this benchmark did not make"),
                          (["--work-dir", str(tmp_path / "new"), "--modes", "bogus"], "'bogus'"),
                          (["--work-dir", str(tmp_path / "new"), "--words", "go,zebra"], "'zebra'"),
                          (["--epochs", "0"], "--epochs: expected an integer >= 1")):
        with pytest.raises(SystemExit) as exit_info:
            own_words.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert (precious / "sub" / "thesis.wav").read_bytes() == b"RIFF"
    assert (own / "dataset" / "go" / "mine.wav").read_bytes() == b"RIFF"
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(SystemExit):
        own_words.main(["--work-dir", str(a_file)])
    assert "exists and is not a folder" in capsys.readouterr().err
    # a folder an earlier run made is cleared again; an empty folder is taken as it is
    marked = tmp_path / "earlier"
    marked.mkdir()
    (marked / own_words.WORK_DIR_MARK).write_text("")
    (marked / "old.txt").write_text("x")
    for folder in (marked, tmp_path / "empty"):
        folder.mkdir(exist_ok=True)
        with pytest.raises(pytest.fail.Exception, match="went on to the dataset"):
            own_words.main(["--work-dir", str(folder)])


def test_a_folder_of_words_is_told_from_a_place_for_the_course_dataset(tmp_path):
    from train.kws.folder_data import is_folder_dataset

    assert not is_folder_dataset(None) and not is_folder_dataset(tmp_path / "absent")
    assert not is_folder_dataset(tmp_path)  # empty: where Mini Speech Commands may be downloaded
    (tmp_path / "_background_noise_").mkdir()
    (tmp_path / "notes.txt").write_text("")
    assert not is_folder_dataset(tmp_path)
    (tmp_path / "marvin").mkdir()
    assert is_folder_dataset(tmp_path)
    (tmp_path / "mini_speech_commands").mkdir()
    assert not is_folder_dataset(tmp_path)
