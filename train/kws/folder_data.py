"""Any folder of ``<label>/*.wav`` as a keyword-spotting dataset, split by speaker.

The layout is Speech Commands' (and what ``python -m pi_runtime.record``
writes)::

    DIR/yes/3f2a9c1e_nohash_0.wav
    DIR/yes/...
    DIR/no/...
    DIR/_background_noise_/*.wav     (folders starting with "_" are not labels)

Labels are the folder names, sorted (or a chosen subset). Only WAVs directly
inside a label folder count (``*.wav``, any case); other files are ignored.

Conversion (:func:`read_audio_16k`): any WAV that ``soundfile`` reads (8 to
32-bit PCM, float, any number of channels, any rate) becomes 16 kHz mono
int16: the channels are averaged, the rate is converted with
:func:`native.resample.resample_poly` (the native polyphase resampler, equal
to ``scipy.signal.resample_poly``), and the result is rounded to int16,
saturating at full scale. A clip shorter than one second is zero-padded at
the end, as the course pads Mini Speech Commands. A clip longer than one
second keeps its loudest second (the one-second window with the most energy,
where the word is); such clips are listed in :attr:`FolderDataset.cropped`.

Splits (:func:`split_of`) are deterministic and speaker-aware, as Speech
Commands defines them: the speaker is the part of the file name before
``_nohash_`` (the whole name when there is none); the sha1 of it, read as a
number modulo 2**27 and scaled to a percentage, below ``val_percent`` is
validation, below ``val_percent + test_percent`` test, else training. All of a
speaker's clips land on one side, so validation and test measure new voices;
and a Speech Commands folder splits as its own ``validation_list.txt`` and
``testing_list.txt`` (10/10). ``split_by="clip"`` hashes the whole file name
instead, for a folder with too few speakers (the test then measures voices the
model has heard). A folder named ``mini_speech_commands`` uses the course's
split files; ``split_dir`` reads splits written earlier by :func:`write_splits`
(one clip per line, relative to the dataset folder), so an evaluation can be
repeated on the same clips.
"""
from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from train.kws.data import CLIP_LENGTH_SAMPLES, DATASET_FOLDER, SAMPLE_RATE_HZ, SPLIT_NAMES, ClipSet, _progress

NOHASH = "_nohash_"
MIN_CLIPS_PER_LABEL = 5  # fewer clips of a label in a split: its accuracy there says little (a warning)
_HASH_MODULUS = 2 ** 27  # Speech Commands' MAX_NUM_WAVS_PER_CLASS + 1
SPLIT_BY = ("speaker", "clip")


@dataclass(frozen=True)
class FolderDataset:
    """A folder's clips, split.

    Attributes
    ----------
    root : Path
        The dataset folder; split files name clips relative to it.
    labels : tuple of str
        The classes, sorted.
    splits : dict
        ``"train"``, ``"val"``, ``"test"`` -> :class:`train.kws.data.ClipSet` (int16[n, 16000] at 16 kHz).
    split_by : str
        How the clips were split: "speaker", "clip", "course" (Mini Speech Commands' split files) or
        "files" (split files read back, see ``split_files``).
    split_files : dict
        Split name -> the file the split was read from (empty when the split was computed).
    cropped : tuple of Path
        Clips longer than one second, of which the loudest second was kept.
    background : tuple of Path
        WAVs in ``_background_noise_/`` (room sound for noise mixing), not read.
    warnings : tuple of str
        Splits with fewer than ``MIN_CLIPS_PER_LABEL`` clips of a label (also issued as warnings).
    """

    root: Path
    labels: Tuple[str, ...]
    splits: Dict[str, ClipSet]
    split_by: str
    split_files: Dict[str, Path]
    cropped: Tuple[Path, ...]
    background: Tuple[Path, ...]
    warnings: Tuple[str, ...]

    def describe(self) -> str:
        """Clips per label and split, with the number of speakers, as a small table."""
        width = max(len(label) for label in self.labels + ("label",))
        lines = [f"{self.root}: {len(self.labels)} labels, split by {self.split_by}",
                 f"{'label':<{width}} " + " ".join(f"{name:>13}" for name in SPLIT_NAMES)]
        for label_id, label in enumerate(self.labels):
            cells = []
            for name in SPLIT_NAMES:
                clips = self.splits[name]
                rows = np.flatnonzero(clips.label_ids == label_id)
                speakers = {speaker_of(clips.paths[row]) for row in rows}
                cells.append(f"{len(rows):>5} ({len(speakers):>3} spk)")
            lines.append(f"{label:<{width}} " + " ".join(cells))
        if self.cropped:
            lines.append(f"{len(self.cropped)} clips longer than 1 s: their loudest second kept")
        return "\n".join(lines + [f"warning: {text}" for text in self.warnings])


# -- splits ---------------------------------------------------------------------------------------
def speaker_of(path) -> str:
    """The speaker of a clip: its file name up to ``_nohash_`` (the whole file name when there is none)."""
    name = Path(path).name
    return name.split(NOHASH, 1)[0] if NOHASH in name else name


def split_of(key: str, *, val_percent: float = 10.0, test_percent: float = 10.0) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for a speaker id (or any string), Speech Commands' rule.

    The sha1 of ``key`` as an integer, modulo 2**27, scaled to 0..100: below
    ``val_percent`` is validation, below ``val_percent + test_percent`` test.
    """
    digest = int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16)
    percent = (digest % _HASH_MODULUS) * (100.0 / (_HASH_MODULUS - 1))
    if percent < val_percent:
        return "val"
    if percent < val_percent + test_percent:
        return "test"
    return "train"


def write_splits(dataset: FolderDataset, folder, *, prefix: str = "kws") -> Dict[str, Path]:
    """Write ``folder/<prefix>_<split>_split.txt`` for train, val and test: one clip per line, sorted,
    relative to the dataset folder (what ``load_folder_dataset(root, split_dir=folder)`` and
    ``python -m train.kws.evaluate --data-dir ROOT --split-file FILE`` read). Returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in SPLIT_NAMES:
        lines = sorted(path.relative_to(dataset.root).as_posix() for path in dataset.splits[name].paths)
        written[name] = folder / f"{prefix}_{name}_split.txt"
        written[name].write_text("".join(f"{line}\n" for line in lines))
    return written


# -- audio ----------------------------------------------------------------------------------------
def read_audio_16k(path) -> np.ndarray:
    """A WAV of any rate, sample format and channel count as 16 kHz mono ``int16[samples]``.

    Channels averaged, then :func:`native.resample.resample_poly`, rounded to int16 (saturating).

    Raises
    ------
    ValueError
        Naming the file when it cannot be read, holds no samples, or has a rate the resampler refuses.
    """
    import soundfile

    from native.resample import ratio_for, resample_poly
    from pi_runtime.record import to_int16

    try:
        audio, rate_hz = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, TypeError, ValueError, OSError) as error:  # soundfile's errors derive from these
        raise ValueError(f"{path}: cannot read it as audio ({error})") from None
    if audio.size == 0:
        raise ValueError(f"{path}: holds no samples")
    mono = np.ascontiguousarray(audio.mean(axis=1, dtype=np.float32))
    if not np.isfinite(mono).all():
        raise ValueError(f"{path}: holds NaN or infinite samples")
    try:
        up, down = ratio_for(int(rate_hz), SAMPLE_RATE_HZ)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return to_int16(resample_poly(mono, up, down))


def loudest_second(audio: np.ndarray, num_samples: int = CLIP_LENGTH_SAMPLES) -> int:
    """First sample of the ``num_samples`` window of ``audio`` with the most energy (the earliest of equals)."""
    energy = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
    return int(np.argmax(energy[num_samples:] - energy[:-num_samples]))


def read_clip_16k(path, num_samples: int = CLIP_LENGTH_SAMPLES) -> Tuple[np.ndarray, bool]:
    """``(int16[num_samples], cropped)``: :func:`read_audio_16k`, zero-padded at the end, or its loudest second."""
    audio = read_audio_16k(path)
    if audio.size <= num_samples:
        clip = np.zeros(num_samples, dtype=np.int16)
        clip[: audio.size] = audio
        return clip, False
    start = loudest_second(audio, num_samples)
    return audio[start:start + num_samples].copy(), True


# -- the dataset ----------------------------------------------------------------------------------
def check_data_dir(data_dir: Optional[Path]) -> None:
    """ValueError for a ``--data-dir`` that is not a folder: a typo, not a place to make and download into."""
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ValueError(f"--data-dir {data_dir} is not a folder (a dataset of <label>/*.wav, or the folder that "
                         "holds or will hold mini_speech_commands/: make it first)")


def is_folder_dataset(data_dir: Optional[Path]) -> bool:
    """Whether ``--data-dir`` names a dataset of label folders rather than the folder holding (or, empty,
    about to hold) mini_speech_commands/: a folder with a subfolder not starting with ``_`` or ``.``."""
    from train.kws.data import DATASET_FOLDER

    if data_dir is None or not Path(data_dir).is_dir() or (Path(data_dir) / DATASET_FOLDER).is_dir():
        return False
    return any(path.is_dir() and path.name[0] not in "_." for path in Path(data_dir).iterdir())


def folder_labels(root) -> Tuple[str, ...]:
    """The label folders of ``root``: its subfolders not starting with ``_`` or ``.``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"dataset folder {root} does not exist")
    labels = tuple(sorted(path.name for path in root.iterdir() if path.is_dir() and path.name[0] not in "_."))
    if not labels:
        raise ValueError(f"{root} has no label folders (expected {root}/<label>/*.wav)")
    return labels


def label_wavs(root: Path, label: str) -> List[Path]:
    """The WAVs directly inside ``root/label``, sorted."""
    return sorted(path for path in (root / label).iterdir() if path.is_file() and path.suffix.lower() == ".wav")


def load_folder_dataset(root, *, labels: Optional[Sequence[str]] = None, val_percent: float = 10.0,
                        test_percent: float = 10.0, split_by: str = "speaker", split_dir=None,
                        progress: bool = False) -> FolderDataset:
    """Read ``root/<label>/*.wav`` into train/val/test :class:`ClipSet` s (see the module's docstring).

    Parameters
    ----------
    root : path
        The dataset folder.
    labels : sequence of str, optional
        The label folders to use (default: all of them); sorted.
    val_percent, test_percent : float
        Shares of the speakers (or clips) in validation and test, percent.
    split_by : "speaker" or "clip"
        What the split hashes: the speaker id (default) or the file name.
    split_dir : path, optional
        Read the splits from ``<split_dir>/kws_<split>_split.txt`` (as :func:`write_splits` wrote them)
        instead of computing them.
    progress : bool
        A progress bar while reading.

    Raises
    ------
    ValueError
        For a missing folder, an unknown or empty label, bad percentages, files that cannot be read
        (all named), or a split with no clip of a label.
    """
    root = Path(root)
    available = folder_labels(root)
    labels = tuple(sorted(available if labels is None else labels))
    unknown = [label for label in labels if label not in available]
    if unknown or not labels:
        raise ValueError(f"label(s) {', '.join(unknown) or '(none)'} not among the folders of {root}: "
                         f"{', '.join(available)}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels repeat: {', '.join(labels)}")
    if split_by not in SPLIT_BY:
        raise ValueError(f"split_by must be one of {', '.join(SPLIT_BY)}, got {split_by!r}")
    if not (0 < val_percent < 100 and 0 < test_percent < 100 and val_percent + test_percent < 100):
        raise ValueError(f"validation and test percentages must be positive and leave room for training, "
                         f"got {val_percent:g} and {test_percent:g}")

    split_files: Dict[str, Path] = {}
    if split_dir is not None or root.name == DATASET_FOLDER:
        assigned, split_files = _listed_splits(root, labels, split_dir)
        split_by = "files" if split_dir is not None else "course"
    else:
        assigned = {}
        for label in labels:
            paths = label_wavs(root, label)
            if not paths:
                raise ValueError(f"{root / label} holds no .wav files")
            for path in paths:
                key = speaker_of(path) if split_by == "speaker" else path.name
                assigned[path] = split_of(key, val_percent=val_percent, test_percent=test_percent)

    clips, cropped = read_clips(sorted(assigned), labels, progress=progress)
    splits = {}
    for name in SPLIT_NAMES:
        rows = [row for row, path in enumerate(clips.paths) if assigned[path] == name]
        splits[name] = ClipSet(audio=clips.audio[rows], label_ids=clips.label_ids[rows], labels=labels,
                               paths=[clips.paths[row] for row in rows])
    notes = _check_splits(splits, labels, split_by)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    background_folder = root / "_background_noise_"
    background = tuple(label_wavs(root, background_folder.name)) if background_folder.is_dir() else ()
    return FolderDataset(root=root, labels=labels, splits=splits, split_by=split_by, split_files=split_files,
                         cropped=tuple(cropped), background=background, warnings=tuple(notes))


def read_clips(paths: Sequence[Path], labels: Sequence[str], *, unknown_label: Optional[str] = None,
               progress: bool = False) -> Tuple[ClipSet, Tuple[Path, ...]]:
    """``(clips, cropped)``: WAVs of any format as one :class:`ClipSet` (:func:`read_clip_16k` each), labelled
    by their folder; like :func:`train.kws.data.load_clips`, which reads 16 kHz mono 16-bit files only.

    Clips of folders outside ``labels`` are left out, or, with ``unknown_label``, kept as that extra
    class (appended after ``labels``). ``cropped``: the clips longer than one second.

    Raises
    ------
    ValueError
        Naming every file that cannot be read (the first ten, and how many more).
    """
    labels = tuple(labels) + ((unknown_label,) if unknown_label is not None else ())
    paths = [Path(path) for path in paths if unknown_label is not None or Path(path).parent.name in labels]
    audio = np.zeros((len(paths), CLIP_LENGTH_SAMPLES), dtype=np.int16)
    cropped, unreadable = [], []
    for row, path in enumerate(_progress(paths, "reading clips", progress)):
        try:
            audio[row], was_cropped = read_clip_16k(path)
        except ValueError as error:
            unreadable.append(str(error))
            continue
        if was_cropped:
            cropped.append(path)
    if unreadable:
        shown = unreadable[:10] + ([f"... and {len(unreadable) - 10} more"] if len(unreadable) > 10 else [])
        raise ValueError(f"{len(unreadable)} file(s) cannot be read:\n" + "\n".join(shown))
    label_ids = np.array([labels.index(path.parent.name) if path.parent.name in labels else len(labels) - 1
                          for path in paths], dtype=np.int32)
    return ClipSet(audio=audio, label_ids=label_ids, labels=labels, paths=paths), tuple(cropped)


def _listed_splits(root: Path, labels: Sequence[str], split_dir) -> Tuple[Dict[Path, str], Dict[str, Path]]:
    """Clips of ``labels`` from split files: ``split_dir``'s (relative to ``root``) or the course's."""
    from train.kws.data import read_split, split_file
    from train.kws.evaluate import read_split_file

    assigned: Dict[Path, str] = {}
    files: Dict[str, Path] = {}
    for name in SPLIT_NAMES:
        if split_dir is not None:
            files[name] = Path(split_dir) / f"kws_{name}_split.txt"
            listed = read_split_file(files[name], root)
        else:  # Mini Speech Commands: the course's files name clips relative to the folder above it
            files[name] = split_file(name)
            listed = read_split(files[name], root.parent)
        for path in listed:
            if path.parent.name not in labels:
                continue
            if path in assigned and assigned[path] != name:
                raise ValueError(f"{path} is listed in both the {assigned[path]} and the {name} split")
            assigned[path] = name
    return assigned, files


def _check_splits(splits: Dict[str, ClipSet], labels: Sequence[str], split_by: str) -> List[str]:
    """Warnings for labels with few clips in a split; raises for a label with none."""
    notes, empty = [], []
    all_speakers = {label: set() for label in labels}
    for clips in splits.values():
        for path, label_id in zip(clips.paths, clips.label_ids):
            all_speakers[labels[label_id]].add(speaker_of(path))
    for name in SPLIT_NAMES:
        counts = Counter(splits[name].label_ids.tolist())
        for label_id, label in enumerate(labels):
            if counts[label_id] == 0:
                empty.append(f"the {name} split has no clip of {label!r}")
            elif counts[label_id] < MIN_CLIPS_PER_LABEL:
                notes.append(f"the {name} split has only {counts[label_id]} clip(s) of {label!r}: "
                             "its accuracy there says little")
    if empty:
        speakers = ", ".join(f"{label}: {len(all_speakers[label])}" for label in labels)
        advice = ("speaker-aware splits need clips from several speakers (record others with "
                  "python -m pi_runtime.record --speaker NAME), or split by clip (validation and test then "
                  "hold voices the model has heard)" if split_by == "speaker" else "record more clips")
        raise ValueError("; ".join(empty) + f". Speakers per label: {speakers}. To fix: {advice}")
    return notes
