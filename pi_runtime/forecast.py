"""Six-step temperature/humidity forecasting on the device.

    python -m pi_runtime.forecast --model models/forecast/forecast_b.tflite --csv readings.csv
    python -m pi_runtime.forecast --model M --csv readings.csv --realtime --speed 60
    some_logger | python -m pi_runtime.forecast --model M --csv -
    python -m pi_runtime.forecast --model M --dht DHT22 --pin D4

Each reading (timestamp, T, RH) is checked, normalised with the sidecar's
statistics and pushed into a native ring of the last ``input_width`` rows
(``native.ring.RowRing``); once the ring is full, every reading prints the
forecast of the next ``out_steps`` steps. A missing or invalid reading, a gap
in time or a clock going back is reported and empties the window, which then
refills from fresh readings: the model never sees garbage or a broken time axis.

The model input is built here and nowhere else; training imports these
functions, so the file is fed the same way in training, evaluation and on the
device. What a model needs is in its sidecar's ``forecast`` section:

``features`` (e.g. ``["T (degC)", "rh (%)"]``), ``input_width``, ``out_steps``,
``mean``/``std`` (training part), ``time_step_s``, ``target`` (``"value"``: the
model outputs the next values; ``"delta"``: their change from the last
reading), ``time_features`` (e.g. ``["hour_sin", "hour_cos"]``: the time of
day of each reading on a 24 h circle) and ``layout`` (``"rows"``: input
[input_width, features + time features]; ``"flat"``: the normalised readings
flattened, followed by the time features of the last reading).

Time is the reading's own wall-clock time, as the station's clock was in
training: ``2010-07-01T12:00:00+02:00`` is noon, its UTC offset ignored.

Readings files (``.csv``, ``.csv.gz``, or a ``.zip`` holding one ``.csv``;
a UTF-8 byte-order mark is fine) are read a line at a time: a line longer than
:data:`MAX_LINE_CHARS`, a timestamp outside years 1..9999 or a cell that is not
a number is reported with its line number and the stream goes on.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import math
import sys
import time
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from pi_runtime.arguments import add_builtin_kernels_argument, run_command

SECONDS_PER_DAY = 86400
KNOWN_TIME_FEATURES = ("hour_sin", "hour_cos")
ERROR_CODE = -9999.0  # the Jena station's sensor-error value
# Physically possible ranges; a reading outside is a sensor error, not weather.
VALID_RANGES = {"T (degC)": (-80.0, 70.0), "rh (%)": (0.0, 100.0)}
# Column names accepted in reading CSVs besides the feature names themselves.
COLUMN_ALIASES = {
    "T (degC)": ("t", "temperature", "temp", "t_degc", "temperature_c"),
    "rh (%)": ("rh", "humidity", "relative_humidity", "rh_percent"),
}
TIME_COLUMNS = ("timestamp", "time", "date time", "datetime", "date")
# A readings line is tens of characters (Jena's header about 200): longer is not a reading.
MAX_LINE_CHARS = 65536
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The timestamps datetime can print: years 1 to 9999, in seconds since 1970.
MIN_TIMESTAMP_S = int(datetime(1, 1, 1, tzinfo=timezone.utc).timestamp())
MAX_TIMESTAMP_S = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp())


# --- what the model needs, from the sidecar --------------------------------------------


@dataclass(frozen=True)
class ForecastSpec:
    """The ``forecast`` section of a sidecar (see the module docstring)."""

    features: Tuple[str, ...]
    input_width: int
    out_steps: int
    mean: np.ndarray
    std: np.ndarray
    time_step_s: int
    target: str = "value"
    time_features: Tuple[str, ...] = ()
    layout: str = "rows"

    def __post_init__(self):
        n = len(self.features)
        if n == 0 or self.input_width < 1 or self.out_steps < 1 or self.time_step_s <= 0:
            raise ValueError(f"bad forecast spec: {n} features, input_width {self.input_width}, "
                             f"out_steps {self.out_steps}, time_step_s {self.time_step_s}")
        if np.shape(self.mean) != (n,) or np.shape(self.std) != (n,) or np.any(np.asarray(self.std) <= 0):
            raise ValueError(f"mean and std need {n} values each, std > 0; got {self.mean}, {self.std}")
        if self.target not in ("value", "delta"):
            raise ValueError(f"target must be 'value' or 'delta', got {self.target!r}")
        if self.layout not in ("rows", "flat"):
            raise ValueError(f"layout must be 'rows' or 'flat', got {self.layout!r}")
        unknown = [name for name in self.time_features if name not in KNOWN_TIME_FEATURES]
        if unknown:
            raise ValueError(f"unknown time features {unknown}; known: {KNOWN_TIME_FEATURES}")

    @classmethod
    def from_sidecar(cls, sidecar: Dict) -> "ForecastSpec":
        if not sidecar or "forecast" not in sidecar:
            raise ValueError("the model's sidecar has no 'forecast' section: not a forecasting model?")
        section = sidecar["forecast"]
        return cls(
            features=tuple(section["features"]),
            input_width=int(section["input_width"]),
            out_steps=int(section["out_steps"]),
            mean=np.asarray(section["mean"], dtype=np.float32),
            std=np.asarray(section["std"], dtype=np.float32),
            time_step_s=int(section.get("time_step_s", 600)),
            target=section.get("target", "value"),
            time_features=tuple(section.get("time_features", ())),
            layout=section.get("layout", "rows"),
        )

    def to_sidecar(self) -> Dict:
        return {
            "features": list(self.features), "input_width": self.input_width, "out_steps": self.out_steps,
            "mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std],
            "time_step_s": self.time_step_s, "target": self.target,
            "time_features": list(self.time_features), "layout": self.layout,
        }

    @property
    def row_width(self) -> int:
        """Columns of one window row: normalised features, then time features."""
        return len(self.features) + len(self.time_features)

    @property
    def input_size(self) -> int:
        if self.layout == "flat":
            return self.input_width * len(self.features) + len(self.time_features)
        return self.input_width * self.row_width


def time_features(timestamps_s: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Time-of-day features of timestamps (seconds; the station's clock), float32 [..., len(names)]."""
    phase = (np.asarray(timestamps_s, dtype=np.int64) % SECONDS_PER_DAY).astype(np.float64)
    phase *= 2.0 * math.pi / SECONDS_PER_DAY
    columns = {"hour_sin": np.sin, "hour_cos": np.cos}
    if not names:
        return np.zeros(np.shape(timestamps_s) + (0,), np.float32)
    return np.stack([columns[name](phase) for name in names], axis=-1).astype(np.float32)


def window_rows(readings: np.ndarray, timestamps_s: np.ndarray, spec: ForecastSpec) -> np.ndarray:
    """Normalised readings with their time features: float32 [..., rows, row_width].

    ``readings``: [..., rows, features] in physical units; ``timestamps_s``: [..., rows].
    """
    readings = np.asarray(readings, dtype=np.float32)
    normalised = (readings - spec.mean) / spec.std
    return np.concatenate([normalised, time_features(timestamps_s, spec.time_features)], axis=-1).astype(np.float32)


def model_input(rows: np.ndarray, spec: ForecastSpec) -> np.ndarray:
    """The model's input from window rows [..., input_width, row_width] (see ``layout``)."""
    rows = np.asarray(rows, dtype=np.float32)
    if rows.shape[-2:] != (spec.input_width, spec.row_width):
        raise ValueError(f"window rows must be [..., {spec.input_width}, {spec.row_width}], got {rows.shape}")
    if spec.layout == "rows":
        return rows
    features = len(spec.features)
    values = rows[..., :features].reshape(rows.shape[:-2] + (spec.input_width * features,))
    return np.concatenate([values, rows[..., -1, features:]], axis=-1)


def outputs_to_values(outputs: np.ndarray, rows: np.ndarray, spec: ForecastSpec) -> np.ndarray:
    """Model outputs (normalised, any shape with out_steps x features values per example) ->
    forecasts in physical units [..., out_steps, features]."""
    features = len(spec.features)
    batch_shape = np.shape(rows)[:-2]
    outputs = np.asarray(outputs, dtype=np.float32).reshape(batch_shape + (spec.out_steps, features))
    if spec.target == "delta":
        outputs = outputs + np.asarray(rows, np.float32)[..., -1:, :features]
    return outputs * spec.std + spec.mean


class Forecaster:
    """A forecasting model and its spec: window in physical units -> forecast in physical units."""

    def __init__(self, model, spec: Optional[ForecastSpec] = None):
        from pi_runtime.model import LoadedModel, load_model

        self.model = model if isinstance(model, LoadedModel) else load_model(model, require_sidecar=spec is None)
        self.spec = spec or ForecastSpec.from_sidecar(self.model.sidecar)
        size = int(np.prod(self.model.input_shape))
        if size != self.spec.input_size:
            raise ValueError(f"{self.model.path.name}: the model takes {size} input values, the sidecar describes "
                             f"{self.spec.input_size} ({self.spec.layout} layout)")
        outputs = int(np.prod(self.model.output_shape))
        described = self.spec.out_steps * len(self.spec.features)
        if outputs != described:
            raise ValueError(f"{self.model.path.name}: the model outputs {outputs} values (shape "
                             f"{self.model.output_shape}), the sidecar describes {described} (out_steps "
                             f"{self.spec.out_steps} x {len(self.spec.features)} features)")

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """Window rows [input_width, row_width] -> forecast [out_steps, features] (physical units)."""
        # Every window is a new sequence: LoadedModel.predict resets a recurrent model's state.
        output = self.model.predict(model_input(rows, self.spec))
        return outputs_to_values(output, rows, self.spec)

    def predict(self, readings: np.ndarray, timestamps_s: np.ndarray) -> np.ndarray:
        """Readings [input_width, features] (physical units) at ``timestamps_s`` -> [out_steps, features]."""
        return self.predict_rows(window_rows(readings, timestamps_s, self.spec))

    def predict_many(self, readings: np.ndarray, timestamps_s: np.ndarray) -> np.ndarray:
        """[windows, input_width, features] -> [windows, out_steps, features], one invoke per window."""
        rows = window_rows(readings, timestamps_s, self.spec)
        if len(rows) == 0:
            return np.zeros((0, self.spec.out_steps, len(self.spec.features)), np.float32)
        return np.stack([self.predict_rows(window) for window in rows])


# --- the streaming loop -------------------------------------------------------------------


@dataclass
class Event:
    """What happened with one reading.

    ``status``: "forecast" (``forecast`` is [out_steps, features]), "filling" (window not
    full yet), "invalid" (reading refused), "gap" (time jumped or went back; window restarted).
    """

    timestamp_s: Optional[int]
    values: Optional[np.ndarray]
    status: str
    message: str = ""
    forecast: Optional[np.ndarray] = None


def check_reading(values: Sequence[float], features: Sequence[str]) -> Optional[str]:
    """None for a usable reading, else why it is not (missing, NaN, error code, out of range)."""
    if values is None or len(values) != len(features):
        return f"expected {len(features)} values ({', '.join(features)})"
    for name, value in zip(features, values):
        if value is None or not math.isfinite(value):
            return f"{name} missing or not a number"
        if value == ERROR_CODE:
            return f"{name} = -9999 (sensor error code)"
        low, high = VALID_RANGES.get(name, (-math.inf, math.inf))
        if not low <= value <= high:
            return f"{name} = {value} outside the possible range [{low}, {high}]"
    return None


class StreamingForecaster:
    """Feeds readings one at a time through a native ring window to a :class:`Forecaster`.

    Parameters
    ----------
    forecaster : Forecaster
    max_jitter_s : a step may differ from the sidecar's ``time_step_s`` by this much
        (a live sensor is never exactly on time); by default 10 % of the step.
        At least 0 and less than half the step, so that a missed reading is
        always a gap.
    """

    def __init__(self, forecaster: Forecaster, *, max_jitter_s: Optional[float] = None):
        from native.ring import RowRing

        self.forecaster = forecaster
        self.spec = forecaster.spec
        self.max_jitter_s = 0.1 * self.spec.time_step_s if max_jitter_s is None else float(max_jitter_s)
        if not 0 <= self.max_jitter_s < self.spec.time_step_s / 2:  # also refuses NaN
            raise ValueError(f"max_jitter_s must be >= 0 and less than half the model's {self.spec.time_step_s} s "
                             f"step, got {max_jitter_s!r}")
        self.window = RowRing(self.spec.input_width, self.spec.row_width)
        self._rows = np.zeros((self.spec.input_width, self.spec.row_width), np.float32)
        self.last_timestamp_s: Optional[int] = None

    def reset(self) -> None:
        self.window.clear()
        self.last_timestamp_s = None

    def push(self, timestamp_s: Optional[int], values: Optional[Sequence[float]]) -> Event:
        """Take one reading; return what happened (see :class:`Event`)."""
        values_array = None if values is None else np.asarray(values, dtype=np.float64)
        problem = "no timestamp" if timestamp_s is None else check_reading(
            None if values_array is None else list(values_array), self.spec.features)
        if problem:
            self.reset()
            return Event(timestamp_s, values_array, "invalid", f"invalid reading ({problem}); window restarted")
        status_message = ""
        if self.last_timestamp_s is not None:
            step = timestamp_s - self.last_timestamp_s
            if step <= 0 or abs(step - self.spec.time_step_s) > self.max_jitter_s:
                kind = "clock went back" if step <= 0 else f"gap of {step} s"
                status_message = (f"{kind} (expected {self.spec.time_step_s} s); window restarted")
                self.window.clear()
        self.last_timestamp_s = int(timestamp_s)
        row = window_rows(values_array.reshape(1, -1), np.array([timestamp_s]), self.spec)
        self.window.push(row)
        if status_message:
            return Event(timestamp_s, values_array, "gap", status_message)
        if not self.window.is_full:
            return Event(timestamp_s, values_array, "filling",
                         f"window {self.window.count}/{self.spec.input_width}")
        rows = self.window.snapshot(self._rows)
        return Event(timestamp_s, values_array, "forecast", forecast=self.forecaster.predict_rows(rows))


# --- reading sources -------------------------------------------------------------------------


def parse_timestamp(text: str) -> int:
    """Seconds since the epoch from unix seconds, ISO 8601 or Jena's ``dd.mm.yyyy HH:MM:SS``.

    The result counts the reading's own wall-clock time, as the station's clock
    did in training: a UTC offset (``+02:00``, ``Z``) is ignored, not applied,
    so ``2010-07-01T12:00:00+02:00`` is noon. Unix seconds are taken as they
    are. Raises ValueError for anything else, and for times outside years 1..9999.
    """
    text = text.strip()
    if not text:
        raise ValueError("empty timestamp")
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not MIN_TIMESTAMP_S <= seconds <= MAX_TIMESTAMP_S:  # also NaN
            raise ValueError(f"timestamp {text!r} is not a time between the years 1 and 9999 in unix seconds")
        return int(round(seconds))
    for fmt in ("%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"):
        try:
            moment = datetime.strptime(text, fmt)
            return int(moment.replace(tzinfo=timezone.utc).timestamp())
        except ValueError:
            continue
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"unreadable timestamp {text!r} (use unix seconds, ISO 8601 or dd.mm.yyyy HH:MM:SS)") from None
    # Wall-clock time: the offset is dropped, not applied (the model learned the local time of day).
    return int(moment.replace(tzinfo=timezone.utc).timestamp())


def format_timestamp(timestamp_s: Optional[int]) -> str:
    if timestamp_s is None:
        return "?"
    # Not datetime.fromtimestamp: a 32-bit time_t (armhf) overflows outside 1901-2038;
    # nor strftime's %Y, which glibc does not pad to four digits.
    moment = UNIX_EPOCH + timedelta(seconds=timestamp_s)
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} {moment.hour:02d}:{moment.minute:02d}"


def _column_index(header: List[str], name: str, aliases: Sequence[str]) -> Optional[int]:
    lowered = [column.strip().lower() for column in header]
    for candidate in (name.lower(),) + tuple(aliases):
        if candidate in lowered:
            return lowered.index(candidate)
    return None


def bounded_lines(lines: Iterable[str], *, max_chars: int = MAX_LINE_CHARS) -> Iterator[Optional[str]]:
    """The lines of ``lines`` (a text file, or strings), reading at most ``max_chars``
    characters at a time; a longer line (its end of line included) yields None,
    its rest read and dropped a piece at a time."""
    readline = getattr(lines, "readline", None)
    if readline is None:  # already in memory (a list, a generator of strings)
        for line in lines:
            yield line if len(line) <= max_chars else None
        return
    while True:
        line = readline(max_chars + 1)
        if not line:
            return
        if len(line) <= max_chars:
            yield line
            continue
        while line and not line.endswith(("\n", "\r")):  # the rest of the over-long line
            line = readline(max_chars)
        yield None


def read_csv_readings(lines: Iterable[str], features: Sequence[str], *, source: str = "CSV"
                      ) -> Iterator[Tuple[Optional[int], Optional[List[float]], str]]:
    """Yield ``(timestamp_s, values, problem)`` per data row of a readings CSV.

    The header names a time column (timestamp, time, Date Time, ...) and one
    column per feature (its name, e.g. ``T (degC)``, or an alias such as ``T``,
    ``RH``). A row with a bad timestamp or cell, or a line longer than
    :data:`MAX_LINE_CHARS`, yields ``problem`` naming its line (and None where
    the value is unusable) rather than stopping the stream. Each line is one
    row (quoted fields may not span lines).

    Raises ValueError for an empty input or a header without the needed columns.
    """
    rows = _csv_rows(lines)
    for line_number, header in rows:
        if header is None:
            raise ValueError(f"{source}: line {line_number} (the header) is longer than {MAX_LINE_CHARS} characters "
                             "or not CSV")
        if any(cell.strip() for cell in header):
            break
    else:
        header = None
    if header is None:
        raise ValueError(f"{source}: empty input (expected a header such as 'timestamp,T,RH')")
    header = [header[0].lstrip("\ufeff")] + header[1:]  # the byte-order mark spreadsheets write
    time_index = next((i for i, column in enumerate(header) if column.strip().lower() in TIME_COLUMNS), None)
    indices = [_column_index(header, name, COLUMN_ALIASES.get(name, ())) for name in features]
    missing = ([] if time_index is not None else ["a time column (timestamp/time/Date Time)"]) + [
        name for name, index in zip(features, indices) if index is None]
    if missing:
        raise ValueError(f"{source}: missing column(s): {', '.join(missing)}; header is {header}")
    for line_number, row in rows:
        if row is None:
            yield None, None, f"line {line_number}: longer than {MAX_LINE_CHARS} characters or not CSV; skipped"
            continue
        if not row or not any(cell.strip() for cell in row):
            continue
        problem = ""
        try:
            timestamp_s = parse_timestamp(row[time_index]) if time_index < len(row) else None
        except ValueError as error:
            timestamp_s, problem = None, f"line {line_number}: {error}"
        values = []
        for name, index in zip(features, indices):
            cell = row[index].strip() if index < len(row) else ""
            try:
                values.append(float(cell))
            except ValueError:
                values.append(float("nan"))
                problem = problem or f"line {line_number}: {name} = {cell!r} is not a number"
        yield timestamp_s, values, problem


def _csv_rows(lines: Iterable[str]) -> Iterator[Tuple[int, Optional[List[str]]]]:
    """``(line_number, cells)`` per line; cells None for a line too long or not CSV (a NUL byte)."""
    for line_number, line in enumerate(bounded_lines(lines), start=1):
        try:
            yield line_number, None if line is None else next(csv.reader([line]), [])
        except csv.Error:
            yield line_number, None


def open_readings(path: Path) -> IO[str]:
    """A text handle on a readings file: ``.csv``, ``.csv.gz`` or a ``.zip`` holding one ``.csv``.

    Raises ValueError naming the file when it cannot be opened as such
    (missing, not gzip, not a zip, a zip without exactly one CSV).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        if path.name.endswith(".zip"):
            archive = zipfile.ZipFile(path)
            members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
            if len(members) != 1:
                archive.close()
                raise ValueError(f"{path}: the zip must hold exactly one .csv file, it holds {members or 'none'}")
            return io.TextIOWrapper(archive.open(members[0]), encoding="utf-8", newline="")
        if path.name.endswith(".gz"):
            handle = gzip.open(path, "rt", encoding="utf-8", newline="")
            handle.buffer.peek(1)  # a file that is not gzip fails here, with its name
            return handle
        return open(path, encoding="utf-8", newline="")
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(f"{path}: unreadable ({error})") from None


def read_dht(sensor: str, pin: str, interval_s: float) -> Iterator[Tuple[Optional[int], Optional[List[float]], str]]:
    """Readings from a DHT11/DHT22 every ``interval_s`` via adafruit-circuitpython-dht."""
    try:
        import adafruit_dht
        import board
    except ImportError:
        raise SystemExit("reading a DHT sensor needs adafruit-circuitpython-dht "
                         "(pip install adafruit-circuitpython-dht; on a Pi also: sudo apt install libgpiod2)") from None
    device_class = {"DHT11": adafruit_dht.DHT11, "DHT22": adafruit_dht.DHT22}[sensor]
    if not hasattr(board, pin):
        raise SystemExit(f"unknown pin {pin!r} for this board (e.g. D4)")
    device = device_class(getattr(board, pin))
    next_time = time.monotonic()
    try:
        while True:
            values, problem = None, ""
            for _ in range(5):  # DHT reads fail often (timing); retry a few times
                try:
                    temperature, humidity = device.temperature, device.humidity
                    if temperature is not None and humidity is not None:
                        values = [float(temperature), float(humidity)]
                        break
                except RuntimeError as error:
                    problem = str(error)
                time.sleep(2.0)
            # Time features are learned on the station's wall clock: use local time, not UTC.
            local_offset_s = datetime.now().astimezone().utcoffset().total_seconds()
            yield int(time.time() + local_offset_s), values, ("" if values else f"sensor read failed ({problem or 'no data'})")
            next_time += interval_s
            time.sleep(max(0.0, next_time - time.monotonic()))
    finally:
        device.exit()


def format_event(event: Event, spec: ForecastSpec) -> str:
    stamp = format_timestamp(event.timestamp_s)
    reading = "" if event.values is None else " ".join(
        f"{_short(name)}={value:.2f}" for name, value in zip(spec.features, event.values))
    if event.status != "forecast":
        return f"{stamp} {reading} | {event.message}"
    steps = []
    for step, values in enumerate(event.forecast, start=1):
        minutes = step * spec.time_step_s // 60
        ahead = f"+{minutes // 60}h" if minutes % 60 == 0 else f"+{minutes}min"
        steps.append(f"{ahead} " + "/".join(f"{value:.1f}" for value in values))
    return f"{stamp} {reading} | " + "  ".join(steps)


def _short(name: str) -> str:
    return {"T (degC)": "T", "rh (%)": "RH"}.get(name, name)


def run(forecaster: StreamingForecaster, readings, *, realtime: bool = False, speed: float = 1.0,
        out=None) -> Dict[str, int]:
    """Feed ``readings`` (from :func:`read_csv_readings` or :func:`read_dht`) and print an event per reading.

    Returns counts per status.
    """
    out = out or sys.stdout
    counts = {"forecast": 0, "filling": 0, "invalid": 0, "gap": 0}
    previous_time = None
    for timestamp_s, values, problem in readings:
        if realtime and previous_time is not None and timestamp_s is not None and timestamp_s > previous_time:
            time.sleep((timestamp_s - previous_time) / speed)
        if timestamp_s is not None:
            previous_time = timestamp_s
        event = forecaster.push(timestamp_s, values)
        if problem and event.status == "invalid":
            event.message = f"invalid reading ({problem}); window restarted"
        counts[event.status] += 1
        print(format_event(event, forecaster.spec), file=out, flush=realtime)
    return counts


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pi_runtime.forecast",
        description="Print a six-step temperature/humidity forecast after each reading. Time is the reading's own "
                    "wall-clock time, as in training: a UTC offset in a timestamp is ignored, not applied.")
    parser.add_argument("--model", required=True, help="forecasting model (.tflite or .tflite.zlib with its .json sidecar)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", help="readings .csv, .csv.gz or .zip holding one .csv (header with a time column and "
                                      "the model's features, e.g. 'timestamp,T,RH' or the Jena header; timestamps "
                                      "in unix seconds, ISO 8601 or dd.mm.yyyy HH:MM:SS); '-' reads stdin")
    source.add_argument("--dht", choices=["DHT11", "DHT22"], help="read a DHT sensor (adafruit-circuitpython-dht)")
    parser.add_argument("--pin", default="D4", help="board pin of the DHT data line (default D4)")
    parser.add_argument("--realtime", action="store_true",
                        help="replay the CSV at the pace of its timestamps (default: as fast as possible)")
    parser.add_argument("--speed", type=float, default=1.0, help="with --realtime: replay this many times faster")
    parser.add_argument("--max-jitter-s", type=float, default=None,
                        help="tolerated deviation from the model's time step, in seconds: at least 0 and less than "
                             "half the step (default 10 %% of it)")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    add_builtin_kernels_argument(parser)
    parser.add_argument("--verbose", action="store_true", help="let the interpreter's start-up lines through")
    args = parser.parse_args(argv)
    if not (math.isfinite(args.speed) and args.speed > 0):
        parser.error("--speed must be a positive number")
    if args.max_jitter_s is not None and not (math.isfinite(args.max_jitter_s) and args.max_jitter_s >= 0):
        parser.error("--max-jitter-s must be a number >= 0")

    from pi_runtime.model import load_model

    try:
        forecaster = Forecaster(load_model(args.model, num_threads=args.threads, require_sidecar=True,
                                           verbose=args.verbose, builtin_kernels=args.builtin_kernels))
        spec = forecaster.spec
        streaming = StreamingForecaster(forecaster, max_jitter_s=args.max_jitter_s)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"# {forecaster.model.describe()}; every {spec.time_step_s} s; {spec.input_width} readings in, "
          f"{spec.out_steps} steps out ({', '.join(spec.features)})", file=sys.stderr)
    try:
        if args.dht:
            readings = read_dht(args.dht, args.pin, spec.time_step_s)
            counts = run(streaming, readings, realtime=False)
        elif args.csv == "-":
            counts = run(streaming, read_csv_readings(sys.stdin, spec.features, source="stdin"),
                         realtime=args.realtime, speed=args.speed)
        else:
            path = Path(args.csv)
            with open_readings(path) as handle:
                try:
                    counts = run(streaming, read_csv_readings(handle, spec.features, source=str(path)),
                                 realtime=args.realtime, speed=args.speed)
                except (gzip.BadGzipFile, EOFError, zlib.error, zipfile.BadZipFile, UnicodeDecodeError) as error:
                    raise ValueError(f"{path}: unreadable ({error})") from None
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print("# " + ", ".join(f"{count} {status}" for status, count in counts.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_command(main)
