"""The sidecar: a JSON file beside every exported model saying how to feed it.

``models/kws/kws_a.tflite`` (or ``kws_a.tflite.zlib``) has ``models/kws/kws_a.json``.
It carries the frontend parameters, the model input and the labels (keyword
spotting) or the normalisation statistics and window sizes (forecasting),
plus how the model was trained and what was measured on the exported file.
The device builds everything from it, so no preprocessing flag is ever typed
twice.

A keyword-spotting sidecar is read once into a typed :class:`KwsSpec`
(:func:`read_kws_spec`, :meth:`KwsSpec.from_sidecar`) and written from one
(:meth:`KwsSpec.to_sidecar`); the dict functions below (:func:`read_sidecar`,
:func:`write_sidecar`) keep the rest of the file (``training``, ``results``).

Schema version 2 (written): a kws sidecar has ``"frontend"`` (the frames,
``FrontendParams``) and beside it ``"input"`` (``{"clip_duration_ms": 1000,
"resize": null}``, ``ModelInput``). Version 1 files (one ``"frontend"``
holding both) are read as version 2: :func:`parse_sidecar` moves
``clip_duration_ms`` and ``resize`` into ``"input"``.

Optional keys (absent from older files, checked when present):

``"keywords"``
    The labels that are keywords (default: every label but ``_silence_`` and
    ``_unknown_``); each must be one of ``"labels"``.
``"output": {"kind": "logits" | "probabilities"}``
    What the model's output holds (the kind alone, ``"output": "logits"``, is
    read too); see :func:`output_kind`. The exporter records it; a file
    without it (version 1) is decided by the model's graph when it is loaded.
``"detector"``
    Calibrated detector settings: ``threshold`` in [0, 1], ``smoothing_windows``
    an integer from 1 to 100, ``hop_ms`` > 0, ``refractory_ms`` >= 0 (finite),
    ``temperature`` from 0.01 to 100 (absent: 1, the posteriors as given),
    ``min_level_dbfs`` a number, or ``null`` for "no energy gate" (JSON has no
    -inf; :func:`detector_settings` turns ``null`` into ``-inf``), and a free
    ``calibration`` object saying how they were chosen. Optionally
    ``keyword_subsets``: for listening to some of the keywords only (the others
    then count as ``_unknown_``), settings calibrated for that subset, keyed by
    :func:`subset_key` (``"go,stop"``), each checked like the section itself.

JSON's ``NaN`` and ``Infinity`` are refused anywhere in the file.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from native.params import FrontendParams, ModelInput
from pi_runtime.files import write_whole
from pi_runtime.labels import keyword_labels

SIDECAR_FORMAT = "tinyml-pi-sidecar"
SIDECAR_VERSION = 2          # the version written
READABLE_VERSIONS = (1, 2)   # version 1: read as version 2 (see upgraded)
TASKS = ("kws", "forecast")
MODEL_SUFFIXES = (".tflite.zlib", ".tflite")
OUTPUT_KINDS = ("logits", "probabilities")
MAX_SMOOTHING_WINDOWS = 100
# The detector's temperature: 1/T must stay a sane exponent (and a typo an error).
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 100.0
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
    for key in ("frontend", "input"):
        if not isinstance(data.get(key), dict):
            raise SidecarError(f"{source}: a kws sidecar needs an {key!r} object")
    try:
        frontend = FrontendParams.from_dict(data["frontend"])
    except (ValueError, TypeError) as error:
        raise SidecarError(f"{source}: frontend: {error}") from None
    try:  # the model input's own checks, against its frontend
        ModelInput.from_dict(data["input"], frontend=frontend)
    except (ValueError, TypeError) as error:
        raise SidecarError(f"{source}: input: {error}") from None


def _check_output(data: Dict[str, Any], source: str) -> None:
    try:
        output_kind(data)
    except SidecarError as error:
        raise SidecarError(f"{source}: {error}") from None


def subset_key(keywords) -> str:
    """How a sidecar names a subset of its keywords: ``"go,stop"`` (in the order given)."""
    return ",".join(keywords)


def subset_settings(section: Dict[str, Any], keywords) -> Optional[Dict[str, Any]]:
    """The ``keyword_subsets`` entry of a detector section for ``keywords`` (any order), or None
    (the entry itself, not a copy: a writer may change it in place)."""
    for key, settings in (section.get("keyword_subsets") or {}).items():
        if set(key.split(",")) == set(keywords):
            return settings
    return None


def _check_detector(data: Dict[str, Any], source: str) -> None:
    detector = data["detector"]
    _check_detector_settings(detector, source, "detector")
    subsets = detector.get("keyword_subsets", {})
    if not isinstance(subsets, dict):
        raise SidecarError(f"{source}: detector.keyword_subsets must be an object, got {subsets!r}")
    if not subsets:
        return
    try:
        keywords = keyword_labels(data.get("labels") or (), data.get("keywords"))
    except ValueError as error:
        raise SidecarError(f"{source}: detector.keyword_subsets: {error}") from None
    for key, settings in subsets.items():
        words = key.split(",")
        if not all(word in keywords for word in words) or len(set(words)) != len(words):
            raise SidecarError(f"{source}: detector.keyword_subsets names {key!r}, not distinct keywords of "
                               f"{', '.join(keywords)}")
        _check_detector_settings(settings, source, f"detector.keyword_subsets[{key!r}]")
        if "keyword_subsets" in settings:
            raise SidecarError(f"{source}: detector.keyword_subsets[{key!r}] may not hold subsets of its own")


def _check_detector_settings(detector: Any, source: str, where: str) -> None:
    if not isinstance(detector, dict):
        raise SidecarError(f"{source}: {where} must be an object, got {detector!r}")
    checks = {
        "threshold": (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
        "smoothing_windows": (lambda v: _is_count(v, 1, MAX_SMOOTHING_WINDOWS),
                              f"an integer from 1 to {MAX_SMOOTHING_WINDOWS}"),
        "hop_ms": (lambda v: _is_number(v) and v > 0, "a positive number"),
        "refractory_ms": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
        "temperature": (lambda v: _is_number(v) and MIN_TEMPERATURE <= v <= MAX_TEMPERATURE,
                        f"a number from {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}"),
        "min_level_dbfs": (lambda v: v is None or _is_number(v), "a number, or null for no energy gate"),
        "calibration": (lambda v: isinstance(v, dict), "an object"),
    }
    for key, value in detector.items():
        if key in checks and not checks[key][0](value):
            raise SidecarError(f"{source}: {where}.{key} must be {checks[key][1]}, got {value!r}")


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
        raise SidecarError(f"{source}: unsupported sidecar version {data.get('version')!r} (this code writes "
                           f"{SIDECAR_VERSION} and reads {', '.join(map(str, READABLE_VERSIONS))})")
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


def upgraded(data: Any, *, source: str = "sidecar") -> Any:
    """A version-1 sidecar in the version-2 layout (a new dict); anything else unchanged.

    Version 1 kept ``clip_duration_ms`` and ``resize`` in ``"frontend"``;
    version 2 keeps the frames there and the model input in ``"input"``.
    """
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT or data.get("version") != 1:
        return data
    data = {**data, "version": SIDECAR_VERSION}
    frontend = data.get("frontend")
    if data.get("task") == "kws" and isinstance(frontend, dict) and "input" not in data:
        data["frontend"] = {key: value for key, value in frontend.items() if key not in ("clip_duration_ms", "resize")}
        data["input"] = {key: frontend[key] for key in ("clip_duration_ms", "resize") if key in frontend}
    return data


def output_kind(sidecar: Optional[Dict[str, Any]]) -> Optional[str]:
    """``"logits"`` or ``"probabilities"`` as the sidecar declares it; None when it does not say.

    Sidecars written before the key existed say nothing: the model's graph
    decides (``pi_runtime.model.LoadedModel.output_kind``).
    """
    declared = (sidecar or {}).get("output")
    if declared is None:
        return None
    kind = declared.get("kind") if isinstance(declared, dict) else declared
    if not isinstance(kind, str) or kind not in OUTPUT_KINDS:
        raise SidecarError(f"'output' must be {{\"kind\": \"logits\" | \"probabilities\"}}, got {declared!r}")
    return kind


def detector_settings(sidecar: Optional[Dict[str, Any]], keywords=None) -> Dict[str, Any]:
    """The sidecar's ``"detector"`` settings (``{}`` when absent), ``min_level_dbfs: null`` as ``-inf``.

    With ``keywords`` (a subset listened for), the settings calibrated for that
    subset (``keyword_subsets``) when the sidecar has them, else the section's own.
    """
    section = (sidecar or {}).get("detector") or {}
    subset = subset_settings(section, keywords) if keywords is not None else None
    settings = dict(subset if subset is not None else section)
    settings.pop("keyword_subsets", None)
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
    return validate_sidecar(upgraded(data, source=source), source=source)


def read_sidecar(model_path: PathLike) -> Dict[str, Any]:
    """Read and validate the sidecar of ``model_path`` (version 1 read as version 2); SidecarError if absent or bad."""
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
    return write_whole(path, lambda handle: handle.write((text + "\n").encode("utf-8")))


@dataclass(frozen=True)
class KwsSpec:
    """What a keyword-spotting sidecar says about feeding the model and reading its output.

    Attributes
    ----------
    input : ModelInput
        The frames (``input.frontend``, the sidecar's ``"frontend"``) and one
        model input made of them (``"input"``: clip length, resize).
    labels : tuple of str
        One per model output, in order.
    keywords : tuple of str
        The labels that may fire, in label order: the sidecar's ``"keywords"``,
        else every label but ``_silence_`` and ``_unknown_``.
    output_kind : {"logits", "probabilities"} or None
        ``"output": {"kind"}``; None only for a file written before the
        exporter recorded it (the model's graph then decides, at load).
    detector : dict
        The calibrated ``"detector"`` section as written (``{}`` when none);
        :meth:`detector_settings` for the values a ``DetectorConfig`` takes.
    """

    input: ModelInput
    labels: Tuple[str, ...]
    keywords: Tuple[str, ...] = ()
    output_kind: Optional[str] = None
    detector: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise SidecarError(f"labels must be distinct and at least one, got {list(self.labels)}")
        try:
            keywords = keyword_labels(self.labels, self.keywords or None)
        except ValueError as error:
            raise SidecarError(str(error)) from None
        object.__setattr__(self, "keywords", keywords)
        if self.output_kind is not None and self.output_kind not in OUTPUT_KINDS:
            raise SidecarError(f"output kind must be one of {OUTPUT_KINDS}, got {self.output_kind!r}")

    @property
    def frontend(self) -> FrontendParams:
        """The frames: ``input.frontend``."""
        return self.input.frontend

    def detector_settings(self, keywords=None) -> Dict[str, Any]:
        """The detector section with ``min_level_dbfs: null`` as ``-inf`` (see :func:`detector_settings`;
        ``keywords``: a subset's own calibration when there is one)."""
        return detector_settings({"detector": self.detector}, keywords)

    def calibrated_for(self, keywords) -> bool:
        """Whether the sidecar holds detector settings calibrated for listening to exactly
        ``keywords``: the model's own for all its keywords, a ``keyword_subsets`` entry for fewer."""
        if set(keywords) == set(self.keywords):
            return "calibration" in self.detector
        return subset_settings(self.detector, keywords) is not None

    def listened_keywords(self, keywords=None) -> Tuple[str, ...]:
        """``keywords`` (a subset of this model's keywords to listen for) in label order, or all of them.

        Raises
        ------
        ValueError
            For a word that is not one of the model's keywords, or an empty subset.
        """
        if keywords is None:
            return self.keywords
        wanted = [word.strip() for word in keywords]
        others = [word for word in wanted if word not in self.keywords]
        if others or not wanted:
            raise ValueError(f"{', '.join(map(repr, others)) or 'no keyword'}: a model can listen only for "
                             f"its own keywords ({', '.join(self.keywords)})")
        return tuple(label for label in self.keywords if label in set(wanted))

    @classmethod
    def from_sidecar(cls, sidecar: Dict[str, Any], *, source: str = "sidecar") -> "KwsSpec":
        """The spec of a sidecar dict (as :func:`read_sidecar` returns it: version 2, validated)."""
        data = validate_sidecar(upgraded(sidecar, source=source), source=source)
        if data["task"] != "kws":
            raise SidecarError(f"{source}: not a keyword-spotting sidecar (task {data['task']!r})")
        frontend = FrontendParams.from_dict(data["frontend"])
        return cls(input=ModelInput.from_dict(data["input"], frontend=frontend), labels=tuple(data["labels"]),
                   keywords=tuple(data.get("keywords") or ()), output_kind=output_kind(data),
                   detector=dict(data.get("detector") or {}))

    def to_sidecar(self, **sections: Any) -> Dict[str, Any]:
        """A complete version-2 sidecar dict: this spec plus ``sections`` (``training``, ``results``)."""
        spec = {"frontend": self.frontend.to_dict(), "input": self.input.to_dict(), "labels": list(self.labels),
                "keywords": list(self.keywords)}
        if self.output_kind is not None:
            spec["output"] = {"kind": self.output_kind}
        if self.detector:
            spec["detector"] = dict(self.detector)
        data = new_sidecar("kws", **spec, **sections)
        return validate_sidecar(data)


def read_kws_spec(model_path: PathLike) -> KwsSpec:
    """The :class:`KwsSpec` of ``model_path``'s sidecar; SidecarError if absent, bad or not kws."""
    return KwsSpec.from_sidecar(read_sidecar(model_path), source=str(sidecar_path(model_path)))
