"""The sidecar: a JSON file beside every exported model saying how to feed it.

``models/kws/kws_a.tflite`` (or ``kws_a.tflite.zlib``) has ``models/kws/kws_a.json``.
It carries the frontend parameters and labels (keyword spotting) or the
normalisation statistics and window sizes (forecasting), plus how the model
was trained and what was measured on the exported file. The device builds
everything from it, so no preprocessing flag is ever typed twice.

Optional keys (absent from older files, checked when present):

``"keywords"``
    The labels that are keywords (default: every label but ``_silence_`` and
    ``_unknown_``); each must be one of ``"labels"``.
``"output": {"kind": "logits" | "probabilities"}``
    What the model's output holds (the kind alone, ``"output": "logits"``, is
    read too); see :func:`output_kind`.
``"detector"``
    Calibrated detector settings: ``threshold`` in [0, 1], ``smoothing_windows``
    an integer from 1 to 100, ``hop_ms`` > 0, ``refractory_ms`` >= 0 (finite),
    ``min_level_dbfs`` a number, or ``null`` for "no energy gate" (JSON has no
    -inf; :func:`detector_settings` turns ``null`` into ``-inf``), and a free
    ``calibration`` object saying how they were chosen.

JSON's ``NaN`` and ``Infinity`` are refused anywhere in the file.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Optional, Union

SIDECAR_FORMAT = "tinyml-pi-sidecar"
SIDECAR_VERSION = 1
TASKS = ("kws", "forecast")
MODEL_SUFFIXES = (".tflite.zlib", ".tflite")
OUTPUT_KINDS = ("logits", "probabilities")
MAX_SMOOTHING_WINDOWS = 100
# A sidecar is a few kilobytes; anything far larger is not one (and is not read into memory).
MAX_SIDECAR_BYTES = 4 << 20

PathLike = Union[str, Path]


class SidecarError(ValueError):
    """A sidecar that is missing, unreadable or inconsistent."""


def model_stem(model_path: PathLike) -> Path:
    """``dir/name.tflite`` or ``dir/name.tflite.zlib`` -> ``dir/name``."""
    path = Path(model_path)
    for suffix in MODEL_SUFFIXES:
        if path.name.endswith(suffix):
            return path.with_name(path.name[: -len(suffix)])
    raise SidecarError(f"{path}: a model file must end in .tflite or .tflite.zlib")


def sidecar_path(model_path: PathLike) -> Path:
    """Path of the sidecar belonging to ``model_path``."""
    stem = model_stem(model_path)
    return stem.with_name(stem.name + ".json")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_labels(data: Dict[str, Any], source: str) -> None:
    labels = data.get("labels")
    if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
        raise SidecarError(f"{source}: a kws sidecar needs a non-empty 'labels' list of strings")
    if len(set(labels)) != len(labels):
        raise SidecarError(f"{source}: 'labels' repeats a label: {labels}")
    if "keywords" in data:
        keywords = data["keywords"]
        if not (isinstance(keywords, list) and keywords and all(isinstance(x, str) for x in keywords)):
            raise SidecarError(f"{source}: 'keywords' must be a non-empty list of labels, got {keywords!r}")
        unknown = [word for word in keywords if word not in labels]
        if unknown:
            raise SidecarError(f"{source}: 'keywords' names {unknown}, not among the labels {labels}")


def _check_frontend(data: Dict[str, Any], source: str) -> None:
    from native.params import FrontendParams  # its own range checks; imported here to keep this module light

    if not isinstance(data.get("frontend"), dict):
        raise SidecarError(f"{source}: a kws sidecar needs a 'frontend' object")
    try:
        FrontendParams.from_dict(data["frontend"])
    except (ValueError, TypeError) as error:
        raise SidecarError(f"{source}: frontend: {error}") from None


def _check_output(data: Dict[str, Any], source: str) -> None:
    try:
        output_kind(data)
    except SidecarError as error:
        raise SidecarError(f"{source}: {error}") from None


def _check_detector(data: Dict[str, Any], source: str) -> None:
    detector = data["detector"]
    if not isinstance(detector, dict):
        raise SidecarError(f"{source}: 'detector' must be an object, got {detector!r}")
    checks = {
        "threshold": (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
        "smoothing_windows": (lambda v: _is_count(v, 1, MAX_SMOOTHING_WINDOWS),
                              f"an integer from 1 to {MAX_SMOOTHING_WINDOWS}"),
        "hop_ms": (lambda v: _is_number(v) and v > 0, "a positive number"),
        "refractory_ms": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
        "min_level_dbfs": (lambda v: v is None or _is_number(v), "a number, or null for no energy gate"),
        "calibration": (lambda v: isinstance(v, dict), "an object"),
    }
    for key, value in detector.items():
        if key in checks and not checks[key][0](value):
            raise SidecarError(f"{source}: detector.{key} must be {checks[key][1]}, got {value!r}")


def _check_forecast(data: Dict[str, Any], source: str) -> None:
    forecast = data.get("forecast")
    needed = ("features", "input_width", "out_steps", "mean", "std")
    if not isinstance(forecast, dict) or any(key not in forecast for key in needed):
        raise SidecarError(f"{source}: a forecast sidecar needs 'forecast' with {', '.join(needed)}")
    features = forecast["features"]
    if not (isinstance(features, list) and features and all(isinstance(x, str) for x in features)):
        raise SidecarError(f"{source}: forecast.features must be a non-empty list of column names")
    for key in ("input_width", "out_steps"):
        if not _is_count(forecast[key], 1, 100_000):
            raise SidecarError(f"{source}: forecast.{key} must be a positive integer, got {forecast[key]!r}")
    if "time_step_s" in forecast and not _is_count(forecast["time_step_s"], 1, 10**9):
        raise SidecarError(f"{source}: forecast.time_step_s must be a positive integer, got {forecast['time_step_s']!r}")
    for key in ("mean", "std"):
        values = forecast[key]
        if not (isinstance(values, list) and len(values) == len(features) and all(map(_is_number, values))):
            raise SidecarError(f"{source}: forecast.{key} must hold {len(features)} numbers, got {values!r}")
    if not all(value > 0 for value in forecast["std"]):
        raise SidecarError(f"{source}: forecast.std must be positive, got {forecast['std']}")
    for key in ("target", "layout"):
        if key in forecast and not isinstance(forecast[key], str):
            raise SidecarError(f"{source}: forecast.{key} must be a string, got {forecast[key]!r}")
    time_features = forecast.get("time_features", [])
    if not (isinstance(time_features, list) and all(isinstance(x, str) for x in time_features)):
        raise SidecarError(f"{source}: forecast.time_features must be a list of names, got {time_features!r}")


def validate_sidecar(data: Any, *, source: str = "sidecar") -> Dict[str, Any]:
    """Check the schema's keys and the optional ones present; returns ``data`` unchanged."""
    if not isinstance(data, dict):
        raise SidecarError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != SIDECAR_FORMAT:
        raise SidecarError(f"{source}: not a tinyml-pi sidecar (format={data.get('format')!r})")
    if data.get("version") != SIDECAR_VERSION:
        raise SidecarError(f"{source}: unsupported sidecar version {data.get('version')!r} (this code reads {SIDECAR_VERSION})")
    task = data.get("task")
    if task not in TASKS:
        raise SidecarError(f"{source}: task must be one of {TASKS}, got {task!r}")
    if task == "kws":
        _check_frontend(data, source)
        _check_labels(data, source)
    else:
        _check_forecast(data, source)
    if "output" in data:
        _check_output(data, source)
    if "detector" in data:
        _check_detector(data, source)
    return data


def output_kind(sidecar: Optional[Dict[str, Any]]) -> Optional[str]:
    """``"logits"`` or ``"probabilities"`` as the sidecar declares it; None when it does not say.

    Sidecars written before the key existed say nothing; the delivered
    keyword-spotting models of that time all output logits.
    """
    declared = (sidecar or {}).get("output")
    if declared is None:
        return None
    kind = declared.get("kind") if isinstance(declared, dict) else declared
    if not isinstance(kind, str) or kind not in OUTPUT_KINDS:
        raise SidecarError(f"'output' must be {{\"kind\": \"logits\" | \"probabilities\"}}, got {declared!r}")
    return kind


def detector_settings(sidecar: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The sidecar's ``"detector"`` settings (``{}`` when absent), ``min_level_dbfs: null`` as ``-inf``."""
    settings = dict((sidecar or {}).get("detector") or {})
    if "min_level_dbfs" in settings and settings["min_level_dbfs"] is None:
        settings["min_level_dbfs"] = -math.inf
    return settings


def new_sidecar(task: str, **sections: Any) -> Dict[str, Any]:
    """A sidecar dict with the header filled in; ``sections`` become top-level keys."""
    return {"format": SIDECAR_FORMAT, "version": SIDECAR_VERSION, "task": task, **sections}


def _refuse_constant(name: str) -> None:
    raise SidecarError(f"{name} is not a number a sidecar may hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf
        _refuse_constant(text)
    return value


def parse_sidecar(text: str, *, source: str = "sidecar") -> Dict[str, Any]:
    """Parse and validate sidecar JSON text (``NaN``/``Infinity`` refused)."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except SidecarError as error:
        raise SidecarError(f"{source}: {error}") from None
    except (ValueError, RecursionError) as error:  # JSONDecodeError, or an integer of thousands of digits
        raise SidecarError(f"{source}: unreadable sidecar ({error})") from None
    return validate_sidecar(data, source=source)


def read_sidecar(model_path: PathLike) -> Dict[str, Any]:
    """Read and validate the sidecar of ``model_path``; SidecarError if absent or bad."""
    path = sidecar_path(model_path)
    if not path.is_file():
        raise SidecarError(f"{path}: no sidecar beside {Path(model_path).name}")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SIDECAR_BYTES + 1)
        if len(raw) > MAX_SIDECAR_BYTES:
            raise SidecarError(f"{path}: larger than {MAX_SIDECAR_BYTES >> 20} MiB: not a sidecar")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SidecarError(f"{path}: unreadable sidecar ({error})") from None
    return parse_sidecar(text, source=str(path))


def write_sidecar(model_path: PathLike, data: Dict[str, Any]) -> Path:
    """Validate and write ``data`` as the sidecar of ``model_path``; returns its path."""
    path = sidecar_path(model_path)
    validate_sidecar(data, source=str(path))
    try:
        text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False)
    except ValueError as error:  # NaN or an infinity somewhere: it could not be read back
        raise SidecarError(f"{path}: {error}; write None for a value that is not a number") from None
    path.write_text(text + "\n", encoding="utf-8")
    return path
