"""The sidecar: a JSON file beside every exported model saying how to feed it.

``models/kws/kws_a.tflite`` (or ``kws_a.tflite.zlib``) has ``models/kws/kws_a.json``.
It carries the frontend parameters and labels (keyword spotting) or the
normalisation statistics and window sizes (forecasting), plus how the model
was trained and what was measured on the exported file. The device builds
everything from it, so no preprocessing flag is ever typed twice.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Union

SIDECAR_FORMAT = "tinyml-pi-sidecar"
SIDECAR_VERSION = 1
TASKS = ("kws", "forecast")
MODEL_SUFFIXES = (".tflite.zlib", ".tflite")

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


def validate_sidecar(data: Any, *, source: str = "sidecar") -> Dict[str, Any]:
    """Check the schema's required keys; returns ``data`` unchanged."""
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
        if not isinstance(data.get("frontend"), dict):
            raise SidecarError(f"{source}: a kws sidecar needs a 'frontend' object")
        labels = data.get("labels")
        if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
            raise SidecarError(f"{source}: a kws sidecar needs a non-empty 'labels' list of strings")
    else:
        forecast = data.get("forecast")
        needed = ("features", "input_width", "out_steps", "mean", "std")
        if not isinstance(forecast, dict) or any(key not in forecast for key in needed):
            raise SidecarError(f"{source}: a forecast sidecar needs 'forecast' with {', '.join(needed)}")
    return data


def new_sidecar(task: str, **sections: Any) -> Dict[str, Any]:
    """A sidecar dict with the header filled in; ``sections`` become top-level keys."""
    return {"format": SIDECAR_FORMAT, "version": SIDECAR_VERSION, "task": task, **sections}


def read_sidecar(model_path: PathLike) -> Dict[str, Any]:
    """Read and validate the sidecar of ``model_path``; SidecarError if absent or bad."""
    path = sidecar_path(model_path)
    if not path.is_file():
        raise SidecarError(f"{path}: no sidecar beside {Path(model_path).name}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SidecarError(f"{path}: unreadable sidecar ({error})") from None
    return validate_sidecar(data, source=str(path))


def write_sidecar(model_path: PathLike, data: Dict[str, Any]) -> Path:
    """Validate and write ``data`` as the sidecar of ``model_path``; returns its path."""
    path = sidecar_path(model_path)
    validate_sidecar(data, source=str(path))
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
