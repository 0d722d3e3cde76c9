"""The Jena Climate record: reading, downloading, time step, split, normalisation.

The Keras copy of the record (``jena_climate_2009_2016.csv``, one row every
10 minutes, 2009-2016) has a header ``"Date Time","p (mbar)","T (degC)",...``
with timestamps like ``01.01.2009 00:10:00``. Any CSV with the same header
works (extra columns are ignored, ``.gz`` is read directly), such as an hourly
copy made of every 6th row.

Invalid values: a selected column whose cell is empty, not a number, NaN/inf
or the station's error code ``-9999`` marks that row invalid. Invalid rows are
kept in the record (so that the time axis stays intact) with ``valid=False``;
the window generator drops every window that touches one and counts them.
They are never normalised into training data.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from train.paths import data_dir

JENA_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/jena_climate_2009_2016.csv.zip"
JENA_CSV_NAME = "jena_climate_2009_2016.csv"
JENA_CSV_MD5 = "959915f05bfafef18e471a97ae679535"  # of the unzipped CSV (43,164,220 bytes)
TIME_COLUMN = "Date Time"
DEFAULT_FEATURES = ("T (degC)", "rh (%)")
ERROR_CODE = -9999.0  # the station's "sensor error" value (seen in the wind columns)
SPLIT_FRACTIONS = (0.7, 0.2, 0.1)  # train, validation, test, chronological

PathLike = Union[str, Path]


@dataclass
class JenaRecord:
    """A time series read from a Jena-style CSV.

    Attributes
    ----------
    timestamps_s : int64 [rows], seconds since 1970-01-01 of the station's (local) clock.
    values : float32 [rows, features]; invalid cells hold NaN.
    features : names of the columns in ``values``.
    valid : bool [rows], False where a selected value was missing, NaN or -9999.
    source : where it was read from.
    """

    timestamps_s: np.ndarray
    values: np.ndarray
    features: Tuple[str, ...]
    valid: np.ndarray
    source: str = ""
    notes: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.timestamps_s)

    @property
    def time_step_s(self) -> int:
        """The regular sampling interval: the most common positive difference of the timestamps."""
        return time_step_of(self.timestamps_s)

    def every(self, n: int) -> "JenaRecord":
        """Every ``n``-th row (``--every 6`` turns 10-minute data into hourly data)."""
        if n < 1:
            raise ValueError(f"--every must be >= 1, got {n}")
        return JenaRecord(self.timestamps_s[::n], self.values[::n], self.features, self.valid[::n],
                          self.source, self.notes + ([f"every {n}th row"] if n > 1 else []))

    def rows(self, start: int, stop: int) -> "JenaRecord":
        return JenaRecord(self.timestamps_s[start:stop], self.values[start:stop], self.features,
                          self.valid[start:stop], self.source, list(self.notes))

    def invalid_cells(self) -> str:
        """For an error message: ``" (column 'rh (%)': 70 of 70 cells are ...)"``, each column that holds an
        invalid cell and how many, or "" when none does."""
        counts = np.isnan(self.values).sum(axis=0)
        columns = [f"column {name!r}: {count} of {len(self)} cells are empty, not numbers or {ERROR_CODE:g}"
                   for name, count in zip(self.features, counts) if count]
        return f" ({'; '.join(columns)})" if columns else ""


def time_step_of(timestamps_s: np.ndarray) -> int:
    """Most common positive difference between consecutive timestamps, in seconds."""
    steps = np.diff(np.asarray(timestamps_s, dtype=np.int64))
    steps = steps[steps > 0]
    if steps.size == 0:
        raise ValueError("cannot tell the time step: need at least two increasing timestamps")
    values, counts = np.unique(steps, return_counts=True)
    return int(values[np.argmax(counts)])


def describe_resolution(time_step_s: int) -> str:
    """``600`` -> ``"10-minute"``, ``3600`` -> ``"hourly"``."""
    if time_step_s == 3600:
        return "hourly"
    if time_step_s % 60 == 0:
        return f"{time_step_s // 60}-minute"
    return f"{time_step_s}-second"


def parse_timestamps(texts: Sequence[str], *, source: str = "CSV") -> np.ndarray:
    """``"dd.mm.yyyy HH:MM:SS"`` strings -> int64 seconds since the epoch.

    Raises ValueError naming the first malformed entry (and its data row, 1-based).
    """
    iso = []
    for row, text in enumerate(texts, start=1):
        text = text.strip()
        if len(text) != 19 or text[2] != "." or text[5] != "." or text[10] != " ":
            raise ValueError(f"{source}: data row {row}: timestamp {text!r} is not 'dd.mm.yyyy HH:MM:SS'")
        iso.append(f"{text[6:10]}-{text[3:5]}-{text[0:2]}T{text[11:19]}")
    try:
        return np.array(iso, dtype="datetime64[s]").astype(np.int64)
    except ValueError as error:
        raise ValueError(f"{source}: unreadable timestamp ({error})") from None


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    if path.name.endswith(".zip"):
        archive = zipfile.ZipFile(path)
        names = [name for name in archive.namelist() if name.endswith(".csv")]
        if not names:
            raise ValueError(f"{path}: the zip holds no .csv file")
        return io.TextIOWrapper(archive.open(names[0]), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_jena_csv(path: PathLike, features: Sequence[str] = DEFAULT_FEATURES) -> JenaRecord:
    """Read the timestamps and the ``features`` columns of a Jena-style CSV.

    Parameters
    ----------
    path : ``.csv``, ``.csv.gz`` or the official ``.csv.zip``.
    features : column names to keep, in this order.

    Returns
    -------
    JenaRecord with rows in file order (not sorted: clock jumps stay visible).

    Raises
    ------
    ValueError : empty file, no header, missing columns, malformed timestamps.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    features = tuple(features)
    if not features:
        raise ValueError("select at least one feature column")
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path}: empty file (no header)")
            header = [name.strip() for name in header]
            missing = [name for name in (TIME_COLUMN,) + features if name not in header]
            if missing:
                raise ValueError(f"{path}: missing column(s) {missing}; the header has {header}")
            time_index = header.index(TIME_COLUMN)
            indices = [header.index(name) for name in features]
            times, cells = [], []
            for line_number, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) < len(header):
                    raise ValueError(f"{path}: line {line_number} has {len(row)} fields, the header {len(header)}")
                times.append(row[time_index])
                cells.append([row[i] for i in indices])
    except (OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: unreadable ({error})") from None
    if not times:
        raise ValueError(f"{path}: no data rows after the header")
    values = np.array([[_to_float(cell) for cell in row] for row in cells], dtype=np.float64)
    valid = np.all(np.isfinite(values) & (values != ERROR_CODE), axis=1)
    values[~np.isfinite(values) | (values == ERROR_CODE)] = np.nan
    return JenaRecord(parse_timestamps(times, source=str(path)), values.astype(np.float32), features, valid,
                      str(path))


def _to_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")  # empty or garbled cell: an invalid reading, see the module docstring


# --- locating and downloading ---------------------------------------------------------


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_jena(folder: Optional[PathLike] = None, *, url: str = JENA_URL) -> Path:
    """Download the official zip, unpack the CSV into ``folder`` and check its md5.

    Shows a progress bar (tqdm when installed). Raises RuntimeError with what to
    do when there is no network.
    """
    folder = Path(folder) if folder is not None else data_dir() / "jena"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / JENA_CSV_NAME
    zip_path = folder / (JENA_CSV_NAME + ".zip.part")
    print(f"downloading {url} -> {target}", file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(zip_path, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            progress = _progress(total)
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                progress(len(block))
            progress(None)
    except (urllib.error.URLError, OSError) as error:
        zip_path.unlink(missing_ok=True)
        raise RuntimeError(
            f"cannot download the Jena Climate record ({error}).\n"
            f"No network? Fetch {url} elsewhere, unzip it and put {JENA_CSV_NAME} into {folder} "
            f"(or pass --csv PATH; any CSV with the same header works, also .csv.gz)."
        ) from None
    with zipfile.ZipFile(zip_path) as archive, archive.open(JENA_CSV_NAME) as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out)
    zip_path.unlink()
    digest = _md5(target)
    if digest != JENA_CSV_MD5:
        target.unlink()
        raise RuntimeError(f"downloaded {JENA_CSV_NAME} has md5 {digest}, expected {JENA_CSV_MD5}: corrupt download")
    return target


def _progress(total_bytes: int):
    """A callable taking byte counts (None to close): tqdm if available, else a plain percentage."""
    try:
        from tqdm import tqdm

        bar = tqdm(total=total_bytes or None, unit="B", unit_scale=True, file=sys.stderr)
        return lambda n: bar.close() if n is None else bar.update(n)
    except ImportError:
        done = [0]

        def report(n):
            if n is None:
                print(file=sys.stderr)
                return
            done[0] += n
            shown = f"{100 * done[0] / total_bytes:.0f} %" if total_bytes else f"{done[0] >> 20} MiB"
            print(f"\r  {shown}", end="", file=sys.stderr)

        return report


def find_jena_csv(folder: Optional[PathLike] = None, *, download: bool = True) -> Path:
    """The 10-minute Jena CSV: from ``folder`` (default ``data_dir()/jena``), else downloaded.

    When the download fails but another Jena CSV (such as the hourly copy
    ``jena_climate_2009_2016_every6th.csv.gz``) lies in the folder, that one is
    returned with a warning on stderr; the CLIs report the resolution they ran on.
    """
    folder = Path(folder) if folder is not None else data_dir() / "jena"
    for name in (JENA_CSV_NAME, JENA_CSV_NAME + ".gz", JENA_CSV_NAME + ".zip"):
        if (folder / name).is_file():
            return folder / name
    others = sorted(folder.glob("jena_climate_2009_2016*.csv*")) if folder.is_dir() else []
    if download:
        try:
            return download_jena(folder)
        except RuntimeError as error:
            if not others:
                raise
            print(f"warning: {error}\nwarning: using {others[0]} instead", file=sys.stderr)
            return others[0]
    if others:
        return others[0]
    raise RuntimeError(f"no Jena Climate CSV in {folder}; pass --csv PATH or allow the download")


# --- split and normalisation -----------------------------------------------------------


def split_record(record: JenaRecord, fractions: Tuple[float, float, float] = SPLIT_FRACTIONS) -> Dict[str, JenaRecord]:
    """Chronological 70/20/10 split by rows: ``{"train": ..., "val": ..., "test": ...}``.

    Windows are cut inside each part, so none straddles two parts.
    """
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"split fractions must be three positive numbers summing to 1, got {fractions}")
    n = len(record)
    # The epsilon keeps 0.7 + 0.2 (= 0.8999...) from losing a row to rounding.
    train_end = int(n * fractions[0] + 1e-9)
    val_end = int(n * (fractions[0] + fractions[1]) + 1e-9)
    return {"train": record.rows(0, train_end), "val": record.rows(train_end, val_end), "test": record.rows(val_end, n)}


@dataclass(frozen=True)
class Normalisation:
    """Per-feature mean and standard deviation (from the training part only)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, record: JenaRecord) -> "Normalisation":
        values = record.values[record.valid].astype(np.float64)
        if len(values) < 2:
            raise ValueError("need at least two valid rows to compute normalisation statistics"
                             + record.invalid_cells())
        std = values.std(axis=0)
        if np.any(std == 0):
            constant = [name for name, s in zip(record.features, std) if s == 0]
            raise ValueError(f"feature(s) {constant} are constant in the training part: cannot normalise")
        return cls(values.mean(axis=0).astype(np.float32), std.astype(np.float32))

    def apply(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)

    def invert(self, values: np.ndarray) -> np.ndarray:
        return (values * self.std + self.mean).astype(np.float32)
