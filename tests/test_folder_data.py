"""train.kws.folder_data: any folder of <label>/*.wav, converted to 16 kHz mono, split by speaker."""
import functools
import hashlib
import itertools
import warnings

import numpy as np
import pytest

soundfile = pytest.importorskip("soundfile", reason="the folder dataset reads WAVs with soundfile (train extra)")
from scipy.signal import resample_poly as scipy_resample_poly  # noqa: E402

from train.kws.data import ClipSet  # noqa: E402
from train.kws.folder_data import (loudest_second, load_folder_dataset, read_audio_16k, read_clip_16k, read_clips,  # noqa: E402,E501
                                   speaker_of, split_of, write_splits)


def _tone(seconds, rate_hz, channels=1, frequency_hz=440.0, amplitude=0.5):
    t = np.arange(int(round(seconds * rate_hz))) / rate_hz
    left = amplitude * np.sin(2 * np.pi * frequency_hz * t)
    if channels == 1:
        return left
    return np.stack([left, 0.5 * amplitude * np.sin(2 * np.pi * 2 * frequency_hz * t)][:channels], axis=1)


@functools.lru_cache(maxsize=None)
def _speakers_in(split, count=3):
    """The first ``count`` speaker ids ``spk<n>`` that Speech Commands' rule puts in ``split``."""
    ids = (f"spk{n:03d}" for n in itertools.count())
    return list(itertools.islice((speaker for speaker in ids if split_of(speaker) == split), count))


def _dataset(tmp_path, labels=("no", "yes"), clips_per_speaker=2):
    """Two speakers per split, each with ``clips_per_speaker`` 16 kHz clips of every label."""
    root = tmp_path / "words"
    for label_number, label in enumerate(labels):
        (root / label).mkdir(parents=True)
        for split in ("train", "val", "test"):
            for speaker in _speakers_in(split, 3):
                for n in range(clips_per_speaker):
                    audio = _tone(0.8, 16000, frequency_hz=300 + 100 * label_number + 10 * n)
                    soundfile.write(root / label / f"{speaker}_nohash_{n}.wav", audio, 16000, subtype="PCM_16")
    (root / "_background_noise_").mkdir()
    soundfile.write(root / "_background_noise_" / "room.wav", _tone(3.0, 16000, amplitude=0.01), 16000)
    (root / "yes" / "notes.txt").write_text("not audio")
    return root


def test_speaker_of_and_the_speech_commands_split_rule():
    assert speaker_of("yes/0a7c2a8d_nohash_3.wav") == "0a7c2a8d"
    assert speaker_of("yes/no_marker.wav") == "no_marker.wav"
    # The rule of Speech Commands' which_set(), computed by hand for one id.
    digest = int(hashlib.sha1(b"0a7c2a8d").hexdigest(), 16)
    percent = (digest % 2 ** 27) * 100.0 / (2 ** 27 - 1)
    expected = "val" if percent < 10 else "test" if percent < 20 else "train"
    assert split_of("0a7c2a8d") == expected
    # Shares close to the percentages over many speakers.
    shares = np.array([split_of(f"speaker{n}", val_percent=15, test_percent=5) for n in range(20000)])
    assert np.mean(shares == "val") == pytest.approx(0.15, abs=0.01)
    assert np.mean(shares == "test") == pytest.approx(0.05, abs=0.01)


def test_a_folder_is_split_by_speaker_deterministically(tmp_path):
    root = _dataset(tmp_path)
    dataset = load_folder_dataset(root)
    assert dataset.labels == ("no", "yes") and dataset.split_by == "speaker"
    assert [len(dataset.splits[name]) for name in ("train", "val", "test")] == [12, 12, 12]
    for name, clips in dataset.splits.items():
        assert isinstance(clips, ClipSet) and clips.audio.shape == (12, 16000) and clips.audio.dtype == np.int16
        assert clips.labels == ("no", "yes")
        assert {speaker_of(path) for path in clips.paths} == set(_speakers_in(name, 3))
        assert all(clips.labels[label_id] == path.parent.name for path, label_id in zip(clips.paths, clips.label_ids))
    assert dataset.background == (root / "_background_noise_" / "room.wav",)
    again = load_folder_dataset(root)
    for name in dataset.splits:
        assert again.splits[name].paths == dataset.splits[name].paths
        np.testing.assert_array_equal(again.splits[name].audio, dataset.splits[name].audio)
    assert "spk" in dataset.describe() and "split by speaker" in dataset.describe()


def test_a_speaker_stays_on_one_side_whatever_else_is_in_the_folder(tmp_path):
    root = _dataset(tmp_path)
    before = {path.name: name for name, clips in load_folder_dataset(root).splits.items() for path in clips.paths}
    # New speakers (and a new clip of an existing speaker) do not move anyone already split.
    speaker = _speakers_in("test", 1)[0]
    soundfile.write(root / "yes" / f"{speaker}_nohash_9.wav", _tone(0.5, 16000), 16000)
    for n in range(40):
        soundfile.write(root / "no" / f"new{n}_nohash_0.wav", _tone(0.5, 16000), 16000)
    after = load_folder_dataset(root)
    sides = {}
    for name, clips in after.splits.items():
        for path in clips.paths:
            sides.setdefault(speaker_of(path), set()).add(name)
            if path.name in before and path.parent.name in ("no", "yes"):
                assert before[path.name] == name
    assert all(len(names) == 1 for names in sides.values())
    assert sides[speaker] == {"test"}


def test_split_files_round_trip(tmp_path):
    root = _dataset(tmp_path)
    dataset = load_folder_dataset(root)
    written = write_splits(dataset, tmp_path / "model")
    assert sorted(path.name for path in written.values()) == ["kws_test_split.txt", "kws_train_split.txt",
                                                              "kws_val_split.txt"]
    first_line = written["train"].read_text().splitlines()[0]
    assert first_line.startswith(("no/", "yes/")) and first_line.endswith(".wav")
    # Files added afterwards do not enter a split read back from its files.
    soundfile.write(root / "yes" / "late_nohash_0.wav", _tone(0.5, 16000), 16000)
    again = load_folder_dataset(root, split_dir=tmp_path / "model")
    assert again.split_by == "files" and again.split_files == written
    for name in dataset.splits:
        assert again.splits[name].paths == dataset.splits[name].paths
        np.testing.assert_array_equal(again.splits[name].label_ids, dataset.splits[name].label_ids)
    # A subset of the labels read back from the same files.
    only_yes = load_folder_dataset(root, labels=["yes"], split_dir=tmp_path / "model")
    assert only_yes.labels == ("yes",) and len(only_yes.splits["test"]) == 6


def test_any_rate_and_channel_count_is_converted_like_a_one_shot_conversion(tmp_path):
    root = tmp_path / "mixed"
    cases = [(8000, 1, "PCM_16"), (22050, 2, "PCM_16"), (44100, 2, "PCM_24"), (48000, 1, "FLOAT"),
             (16000, 2, "PCM_16"), (11025, 3, "PCM_U8")]
    speakers = [speaker for split in ("train", "val", "test") for speaker in _speakers_in(split, 1)]
    expected = {}
    for number, (rate_hz, channels, subtype) in enumerate(cases):
        audio = _tone(0.9, rate_hz, channels=channels, frequency_hz=300 + 50 * number)
        path = root / "ab"[number % 2] / f"{speakers[number // 2]}_nohash_{number}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, audio, rate_hz, subtype=subtype)
        # The one-shot conversion: what the file holds, channels averaged, scipy's resampler, int16.
        stored, _ = soundfile.read(path, dtype="float64", always_2d=True)
        mono = stored.mean(axis=1)
        reference = scipy_resample_poly(mono, 16000, rate_hz) if rate_hz != 16000 else mono
        expected[path] = np.clip(np.round(reference * 32768), -32768, 32767)
        converted = read_audio_16k(path)
        assert converted.dtype == np.int16 and converted.size == int(np.ceil(mono.size * 16000 / rate_hz))
        assert np.abs(converted - expected[path]).max() <= 2, (rate_hz, channels, subtype)
    with pytest.warns(UserWarning, match="only 1 clip"):
        dataset = load_folder_dataset(root)
    assert dataset.labels == ("a", "b") and sorted(p for c in dataset.splits.values() for p in c.paths) == sorted(expected)
    for clips in dataset.splits.values():
        for clip, path in zip(clips.audio, clips.paths):
            reference = expected[path]
            assert np.abs(clip[: reference.size] - reference).max() <= 2 and not clip[reference.size:].any()


def test_clips_longer_than_a_second_keep_their_loudest_second(tmp_path):
    audio = np.full(40000, 300, dtype=np.int16)
    audio[25000:31000] = 16000  # the word
    path = tmp_path / "long.wav"
    soundfile.write(path, audio, 16000, subtype="PCM_16")
    clip, cropped = read_clip_16k(path)
    start = loudest_second(audio)
    assert cropped and start <= 25000 and start + 16000 >= 31000
    np.testing.assert_array_equal(clip, audio[start:start + 16000])


def test_unreadable_files_are_named(tmp_path):
    root = _dataset(tmp_path)
    (root / "yes" / "broken_nohash_0.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    (root / "no" / "empty_nohash_0.wav").write_bytes(b"")
    with pytest.raises(ValueError) as error:
        load_folder_dataset(root)
    message = str(error.value)
    assert "2 file(s)" in message and "broken_nohash_0.wav" in message and "empty_nohash_0.wav" in message


def test_too_few_clips_warn_and_an_empty_split_is_an_error(tmp_path):
    root = _dataset(tmp_path, clips_per_speaker=1)  # 3 clips of each label per split
    with pytest.warns(UserWarning, match="only 3 clip"):
        dataset = load_folder_dataset(root)
    assert len(dataset.warnings) == 6 and "warning: the train split has only 3" in dataset.describe()
    # One speaker recorded everything: one split holds it all.
    solo = tmp_path / "solo"
    (solo / "hey").mkdir(parents=True)
    for n in range(20):
        soundfile.write(solo / "hey" / f"me_nohash_{n}.wav", _tone(0.5, 16000), 16000)
    with pytest.raises(ValueError, match="split has no clip of 'hey'.*hey: 1.*--speaker NAME"):
        load_folder_dataset(solo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_clip = load_folder_dataset(solo, split_by="clip", val_percent=30, test_percent=30)
    assert by_clip.split_by == "clip" and sum(len(clips) for clips in by_clip.splits.values()) == 20


@pytest.mark.parametrize("kwargs, message", [
    (dict(labels=["maybe"]), "maybe not among the folders"),
    (dict(val_percent=0), "percentages"),
    (dict(val_percent=60, test_percent=40), "percentages"),
    (dict(split_by="label"), "split_by"),
])
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    root = _dataset(tmp_path)
    with pytest.raises(ValueError, match=message):
        load_folder_dataset(root, **kwargs)


def test_missing_or_empty_folders_are_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_folder_dataset(tmp_path / "nothing")
    (tmp_path / "empty" / "_background_noise_").mkdir(parents=True)
    with pytest.raises(ValueError, match="no label folders"):
        load_folder_dataset(tmp_path / "empty")
    (tmp_path / "empty" / "yes").mkdir()
    with pytest.raises(ValueError, match="holds no .wav files"):
        load_folder_dataset(tmp_path / "empty")


def test_mini_speech_commands_uses_the_course_split_files(tmp_path, monkeypatch):
    from train.kws import data

    root = tmp_path / "data" / "mini_speech_commands"
    listed = {"train": [], "val": [], "test": []}
    for word in ("go", "stop"):
        (root / word).mkdir(parents=True)
        for split in listed:
            for n in range(5):
                name = f"{split}{n}_nohash_0.wav"  # speaker names that the hash would split otherwise
                soundfile.write(root / word / name, _tone(0.5, 16000), 16000, subtype="PCM_16")
                listed[split].append(f"./data/mini_speech_commands/{word}/{name}")
    splits_dir = tmp_path / "splits"
    splits_dir.mkdir()
    for split, lines in listed.items():
        (splits_dir / f"kws_{split}_split.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(data, "SPLITS_DIR", splits_dir)
    dataset = load_folder_dataset(root)
    assert dataset.split_by == "course" and dataset.split_files["test"] == splits_dir / "kws_test_split.txt"
    for split, clips in dataset.splits.items():
        assert sorted(f"./data/mini_speech_commands/{p.parent.name}/{p.name}" for p in clips.paths) == sorted(listed[split])


def test_read_clips_labels_by_folder_with_an_unknown_class(tmp_path):
    paths = []
    for label, rate_hz in (("yes", 8000), ("no", 44100), ("maybe", 16000)):
        (tmp_path / label).mkdir()
        paths.append(tmp_path / label / "s_nohash_0.wav")
        soundfile.write(paths[-1], _tone(0.5, rate_hz), rate_hz)
    clips, cropped = read_clips(paths, ["no", "yes"])
    assert clips.labels == ("no", "yes") and [p.parent.name for p in clips.paths] == ["yes", "no"]
    assert clips.label_ids.tolist() == [1, 0] and clips.audio.shape == (2, 16000) and cropped == ()
    with_unknown, _ = read_clips(paths, ["no", "yes"], unknown_label="_unknown_")
    assert with_unknown.labels == ("no", "yes", "_unknown_") and with_unknown.label_ids.tolist() == [1, 0, 2]
