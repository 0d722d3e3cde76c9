"""Mini Speech Commands: download, the course's splits, and clips as int16 arrays.

The dataset lives in a data folder (``--data-dir``, ``$TINYML_DATA_DIR`` or a
cache folder) as ``<data folder>/mini_speech_commands/<label>/<clip>.wav``.
The course's split files name clips as ``./data/mini_speech_commands/...``;
the ``./data/`` prefix stands for the data folder.
"""
from __future__ import annotations

import hashlib
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from pi_runtime.labels import SILENCE_LABEL, UNKNOWN_LABEL  # noqa: F401 (the open-set classes, re-exported)
from train.paths import data_dir as default_data_dir

DATASET_FOLDER = "mini_speech_commands"
DOWNLOAD_URL = "http://storage.googleapis.com/download.tensorflow.org/data/mini_speech_commands.zip"
# sha256 of the sorted ``sha256sum`` listing of all 8000 WAVs (paths relative to
# the data folder, e.g. "<hex>  mini_speech_commands/go/x.wav"): it checks the
# content itself, whichever archive it came from.
LISTING_SHA256 = "56d67d680cfbe969316da6fc0901365b578a11cd61f0646f116bff098af5911e"
NUM_CLIPS = 8000

LABELS: Tuple[str, ...] = ("down", "go", "left", "no", "right", "stop", "up", "yes")
SAMPLE_RATE_HZ = 16000
CLIP_LENGTH_SAMPLES = 16000
SPLITS_DIR = Path(__file__).resolve().parent.parent / "splits"
SPLIT_NAMES = ("train", "val", "test")
SPLIT_PATH_PREFIX = "./data/"


@dataclass(frozen=True)
class ClipSet:
    """Clips of one split, padded to one second.

    Attributes
    ----------
    audio : int16[n, samples]
        PCM samples at ``SAMPLE_RATE_HZ``, zero-padded at the end.
    label_ids : int32[n]
        Index of each clip's label in ``labels``.
    labels : tuple of str
        Class names, sorted alphabetically.
    paths : list of Path
        The WAV file of each clip.
    """

    audio: np.ndarray
    label_ids: np.ndarray
    labels: Tuple[str, ...]
    paths: List[Path]

    def __len__(self) -> int:
        return len(self.paths)

    def label_rows(self, labels: Sequence[str]) -> np.ndarray:
        """Indices of the clips of ``labels``, in clip order (so features can be sliced like the clips)."""
        missing = [label for label in labels if label not in self.labels]
        if missing:
            raise ValueError(f"label(s) {', '.join(missing)} not among {', '.join(self.labels)}")
        return np.flatnonzero(np.isin(self.label_ids, [self.labels.index(label) for label in labels]))

    def subset(self, labels: Sequence[str]) -> "ClipSet":
        """The clips of ``labels`` only (rows :meth:`label_rows`), their ids renumbered in the order of ``labels``."""
        self.label_rows(labels)  # every label must be known
        return self.relabel(labels)

    def relabel_rows(self, labels: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        """(rows kept, their new label ids) when the clips are expressed in ``labels``.

        A clip keeps its label when ``labels`` has it; any other clip becomes
        ``_unknown_`` when ``labels`` has that class (an open-set model: the
        words outside a keyword subset are "unknown" to it) and is left out otherwise.
        """
        labels = tuple(labels)
        unknown = labels.index(UNKNOWN_LABEL) if UNKNOWN_LABEL in labels else -1
        new_ids = np.array([labels.index(label) if label in labels else unknown for label in self.labels],
                           dtype=np.int32)
        ids = new_ids[self.label_ids] if len(self) else np.zeros(0, np.int32)
        rows = np.flatnonzero(ids >= 0)
        return rows, ids[rows]

    def relabel(self, labels: Sequence[str]) -> "ClipSet":
        """The clips expressed in ``labels`` (see :meth:`relabel_rows`)."""
        rows, ids = self.relabel_rows(labels)
        return ClipSet(audio=self.audio[rows], label_ids=ids, labels=tuple(labels),
                       paths=[self.paths[row] for row in rows])

    def concat(self, other: "ClipSet") -> "ClipSet":
        """These clips followed by ``other``'s (both with the same labels)."""
        if other.labels != self.labels:
            raise ValueError(f"cannot join clip sets of labels {self.labels} and {other.labels}")
        return ClipSet(audio=np.concatenate([self.audio, other.audio]),
                       label_ids=np.concatenate([self.label_ids, other.label_ids]).astype(np.int32),
                       labels=self.labels, paths=list(self.paths) + list(other.paths))


# -- labels -------------------------------------------------------------------
def parse_keywords(text: Optional[str]) -> Tuple[str, ...]:
    """Labels to train on from ``"go,stop"`` (``None`` or ``""``: all eight), sorted.

    Raises
    ------
    ValueError
        For an unknown word, a duplicate, or fewer than two words.
    """
    if not text:
        return LABELS
    words = [word.strip().lower() for word in text.split(",") if word.strip()]
    unknown = [word for word in words if word not in LABELS]
    if unknown:
        raise ValueError(f"unknown keyword(s) {', '.join(unknown)}; choose from {', '.join(LABELS)}")
    if len(set(words)) != len(words):
        raise ValueError(f"keywords repeat a word: {text!r}")
    if len(words) < 2:
        raise ValueError(f"a classifier needs at least two keywords, got {text!r}")
    return tuple(sorted(words))


def label_of(path: Path) -> str:
    """The label of a clip: the name of the folder it lies in."""
    return Path(path).parent.name


# -- splits -------------------------------------------------------------------
def split_file(name: str) -> Path:
    """The course's split file for ``name`` in ``SPLIT_NAMES``."""
    if name not in SPLIT_NAMES:
        raise ValueError(f"unknown split {name!r}; choose from {', '.join(SPLIT_NAMES)}")
    return SPLITS_DIR / f"kws_{name}_split.txt"


def read_split(split_path: Path, data_dir: Path, *, check_exists: bool = True) -> List[Path]:
    """Clip paths listed in a split file, resolved against ``data_dir``.

    Each non-empty line names one WAV, either ``./data/<rest>`` (the course's
    form: ``./data/`` stands for ``data_dir``) or a path relative to ``data_dir``.

    Raises
    ------
    ValueError
        Naming the file and line for a line that is not a ``.wav`` under a
        known label folder, or whose file does not exist.
    FileNotFoundError
        When the split file itself is missing.
    """
    split_path = Path(split_path)
    if not split_path.is_file():
        raise FileNotFoundError(f"split file not found: {split_path}")
    paths = []
    for line_number, line in enumerate(split_path.read_text().splitlines(), start=1):
        entry = line.strip()
        if not entry:
            continue
        where = f"{split_path}, line {line_number} ({entry!r})"
        relative = entry[len(SPLIT_PATH_PREFIX):] if entry.startswith(SPLIT_PATH_PREFIX) else entry
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise ValueError(f"{where}: expected a path relative to the data folder")
        if not relative.endswith(".wav"):
            raise ValueError(f"{where}: expected a .wav file")
        path = Path(data_dir) / relative
        if label_of(path) not in LABELS:
            raise ValueError(f"{where}: folder {label_of(path)!r} is not one of the labels {', '.join(LABELS)}")
        if check_exists and not path.is_file():
            raise ValueError(f"{where}: {path} does not exist (is the data folder {data_dir} right?)")
        paths.append(path)
    if not paths:
        raise ValueError(f"split file {split_path} lists no clips")
    return paths


# -- clips --------------------------------------------------------------------
def read_clip(path: Path, num_samples: int = CLIP_LENGTH_SAMPLES) -> np.ndarray:
    """One clip as ``int16[num_samples]``, zero-padded at the end.

    Raises
    ------
    ValueError
        Naming the file when it is not 16-bit PCM mono at ``SAMPLE_RATE_HZ``,
        is truncated, or is longer than ``num_samples``.
    """
    from native.frontend import fit_to_clip
    from pi_runtime.wav import read_wav

    samples, sample_rate_hz = read_wav(path)
    if sample_rate_hz != SAMPLE_RATE_HZ:
        raise ValueError(f"{path}: sample rate {sample_rate_hz} Hz, expected {SAMPLE_RATE_HZ} Hz")
    if len(samples) > num_samples:
        raise ValueError(f"{path}: {len(samples)} samples, longer than one clip ({num_samples})")
    return np.asarray(fit_to_clip(samples, num_samples), dtype=np.int16)


def load_clips(paths: Sequence[Path], labels: Sequence[str] = LABELS,
               num_samples: int = CLIP_LENGTH_SAMPLES, progress: bool = False,
               unknown_label: Optional[str] = None) -> ClipSet:
    """Read ``paths`` whose label is in ``labels`` into a :class:`ClipSet`.

    Clips of other words are skipped, or, with ``unknown_label``, kept as one
    extra class of that name (appended after ``labels``).
    """
    labels = tuple(labels)
    if unknown_label is not None:
        if unknown_label in labels:
            raise ValueError(f"the unknown class {unknown_label!r} is already one of the labels")
        kept = [Path(path) for path in paths]
        labels = labels + (unknown_label,)
    else:
        kept = [Path(path) for path in paths if label_of(path) in labels]
    audio = np.zeros((len(kept), num_samples), dtype=np.int16)
    for row, path in enumerate(_progress(kept, "reading clips", progress)):
        audio[row] = read_clip(path, num_samples)
    label_ids = np.array([labels.index(label_of(path)) if label_of(path) in labels else len(labels) - 1
                          for path in kept], dtype=np.int32)
    return ClipSet(audio=audio, label_ids=label_ids, labels=labels, paths=kept)


def load_split(name: str, *, data_dir: Optional[Path] = None, labels: Sequence[str] = LABELS,
               split_path: Optional[Path] = None, progress: bool = False,
               unknown_label: Optional[str] = None) -> ClipSet:
    """The clips of split ``name`` (``train``/``val``/``test``) restricted to ``labels``
    (or, with ``unknown_label``, the other words as one extra class)."""
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    split_path = split_path if split_path is not None else split_file(name)
    paths = read_split(split_path, folder)
    clips = load_clips(paths, labels, progress=progress, unknown_label=unknown_label)
    if len(clips) == 0 or not np.isin(np.arange(len(labels)), clips.label_ids).any():
        raise ValueError(f"{split_path} lists no clips of the labels {', '.join(labels)}")
    return clips


# -- download -----------------------------------------------------------------
def ensure_dataset(data_dir: Optional[Path] = None, *, url: str = DOWNLOAD_URL) -> Path:
    """Make sure ``<data_dir>/mini_speech_commands`` exists, downloading it if not.

    Returns the data folder. Downloads the official zip with a progress bar,
    extracts it, and verifies the checksum of the 8000 WAVs.

    Raises
    ------
    RuntimeError
        With what to do when there is no network or the checksum differs.
    """
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    if (folder / DATASET_FOLDER / "yes").is_dir():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "mini_speech_commands.zip"
    try:
        _download(url, archive)
    except (urllib.error.URLError, OSError) as error:
        raise RuntimeError(
            f"could not download Mini Speech Commands from {url} ({error}).\n"
            f"Without network: fetch that zip elsewhere and unpack it so that "
            f"{folder / DATASET_FOLDER}/<label>/*.wav exists, or pass --data-dir / set "
            f"TINYML_DATA_DIR to a folder that holds {DATASET_FOLDER}/."
        ) from error
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(folder)
    digest = dataset_checksum(folder)
    if digest != LISTING_SHA256:
        raise RuntimeError(f"checksum of the WAVs under {folder / DATASET_FOLDER} is {digest}, "
                           f"expected {LISTING_SHA256}: delete the folder and download again")
    archive.unlink()
    return folder


def dataset_checksum(folder: Path) -> str:
    """sha256 of the sorted ``sha256sum`` listing of every WAV under ``folder/mini_speech_commands``."""
    lines = []
    for path in sorted((Path(folder) / DATASET_FOLDER).glob("*/*.wav")):
        relative = path.relative_to(folder).as_posix()
        lines.append((relative, f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {relative}\n"))
    return hashlib.sha256("".join(line for _, line in sorted(lines)).encode()).hexdigest()


def _download(url: str, destination: Path) -> None:
    partial = destination.with_suffix(destination.suffix + ".part")
    with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        bar = _bar(total, f"downloading {url.rsplit('/', 1)[-1]}")
        while True:
            block = response.read(1 << 16)
            if not block:
                break
            out.write(block)
            bar.update(len(block))
        bar.close()
    partial.replace(destination)


def _bar(total: int, description: str):
    from tqdm import tqdm

    return tqdm(total=total or None, unit="B", unit_scale=True, desc=description, file=sys.stderr)


def _progress(items: Iterable, description: str, enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=description, unit="clip", file=sys.stderr, mininterval=1.0)
