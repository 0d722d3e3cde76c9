"""Tune the keyword spotter to a room: how often it fires on the room's own sound, and the
threshold that keeps that under a budget.

``python -m pi_runtime.tune ROOM.wav [MORE.wav | FOLDER ...] [--model M] [--keywords go,stop]
[--target-false-alarms-per-hour 2]``

Record the room as it sounds while no keyword is said (the television, the
kitchen, people talking: ``python -m pi_runtime.record --background 1800 --out
DIR`` writes ``DIR/_background_noise_/*.wav``). The listener runs over each
recording with the settings ``listen`` would use (the sidecar's calibrated
detector, for ``--keywords`` that subset's), every window's posteriors kept,
and replays them at each threshold from the one in use up
(:mod:`pi_runtime.replay`): every detection there is a false alarm. The
threshold recommended is the lowest from which on every higher one keeps the
recordings' false alarms per hour within the target. It is never lower than
the one in use: a recording without keywords says what a higher threshold
saves, not what a lower one would detect.

What a higher threshold costs is read from the sidecar: its calibration keeps
the share of the validation stream's keywords detected at every threshold of
its grid (``measured.curve``, written by ``python -m train.kws.calibrate``), so
the cost is known on the Pi without the dataset. The command prints the
``listen`` line to use. A rate measured on a few minutes is rough (one false
alarm in 10 minutes is 6 an hour), hence the minimum length of
:data:`MIN_ROOM_SECONDS` and the note on short recordings.

``--write`` makes the recommended threshold ``listen``'s default (the sidecar's
detector section for those keywords, with a ``"room"`` record of what it
replaced and what it was tuned on); ``--undo`` puts the sidecar back as it was.
Exit status: 0, 1 when no threshold up to the grid's highest keeps to the
target, 2 for bad input.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, TextIO, Tuple

import numpy as np

from pi_runtime.arguments import add_builtin_kernels_argument, non_negative_float, run_command
from pi_runtime.kws_pipeline import Decision, Detection, DetectorConfig, KeywordSpotter
from pi_runtime.labels import keyword_list
from pi_runtime.listen import DEFAULT_MODEL
from pi_runtime.model import load_model
from pi_runtime.record import BACKGROUND_FOLDER
from pi_runtime.replay import DEFAULT_THRESHOLDS, pick_threshold, replay_thresholds
from pi_runtime.sidecar import read_sidecar, subset_key, subset_settings, write_sidecar
from pi_runtime.wav import read_wav

DEFAULT_TARGET_FALSE_ALARMS_PER_HOUR = 2.0  # the open-set bar on noise and babble
MIN_ROOM_SECONDS = 60.0                     # under a minute, one false alarm is over 60 an hour
SHORT_ROOM_SECONDS = 1800.0                 # under half an hour, the note on rough rates is printed
PUSH_SECONDS = 10


@dataclass
class RoomRun:
    """The listener over a room's recordings, replayed at a grid of thresholds."""

    thresholds: np.ndarray                   # ascending, the first the threshold in use
    false_alarms: np.ndarray                 # int, at each threshold, over all recordings
    seconds: float                           # of audio, over all recordings
    recordings: List[Tuple[str, float]]      # (name, seconds)
    detections: List[Tuple[str, Detection]] = field(default_factory=list)  # (recording, detection) at the first

    @property
    def false_alarms_per_hour(self) -> np.ndarray:
        return self.false_alarms * 3600.0 / self.seconds

    def recommended(self, target_false_alarms_per_hour: float) -> Optional[int]:
        """Index of the threshold to use for at most the target, or None when none reaches it."""
        return pick_threshold(self.thresholds, self.false_alarms_per_hour, target_false_alarms_per_hour)


def threshold_grid(threshold_in_use: float, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> np.ndarray:
    """The threshold in use, then every threshold of the grid above it."""
    return np.array([threshold_in_use] + sorted(t for t in thresholds if t > threshold_in_use), dtype=np.float64)


def run_room(model, recordings: Sequence[Tuple[str, np.ndarray, int]], *, config: DetectorConfig,
             keywords: Optional[Sequence[str]] = None, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
             progress: Optional[TextIO] = None) -> RoomRun:
    """Run the listener over each recording (name, samples, rate in Hz) and count its detections at
    ``config.threshold`` and every threshold of ``thresholds`` above it.

    Each recording is a stream of its own (the detector starts afresh), as ``listen --input`` hears it.
    ``progress``: a line per recording heard (its length and false alarms at the threshold in use).
    """
    grid = threshold_grid(config.threshold, thresholds)
    false_alarms = np.zeros(grid.size, dtype=np.int64)
    seconds, names, detections = 0.0, [], []
    for name, samples, rate_hz in recordings:
        decisions: List[Decision] = []
        spotter = KeywordSpotter(model, input_rate_hz=rate_hz, config=config, on_decision=decisions.append,
                                 keywords=keywords)
        for start in range(0, samples.size, PUSH_SECONDS * rate_hz):  # float32 of a long recording, a piece at a time
            spotter.push(samples[start:start + PUSH_SECONDS * rate_hz])
        spotter.flush()
        replays = replay_thresholds(decisions, spotter.labels, config, grid, keywords=spotter.keywords,
                                    window_duration_s=spotter.policy.window_duration_s)
        false_alarms += np.array([len(found) for found in replays])
        detections += [(name, detection) for detection in replays[0]]
        seconds += spotter.seconds_in
        names.append((name, spotter.seconds_in))
        if progress is not None:
            print(f"  {len(names)}/{len(recordings)} {name}: {spotter.seconds_in / 60:.1f} min, "
                  f"{len(replays[0])} false alarm(s) at the threshold in use", file=progress, flush=True)
    return RoomRun(grid, false_alarms, seconds, names, detections)


def validation_curve(spec, config: DetectorConfig,
                     keywords: Optional[Sequence[str]] = None) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(thresholds, validation keywords detected %) of the sidecar's calibration for listening to
    ``keywords`` (a :class:`pi_runtime.sidecar.KwsSpec`'s), or None when it has none for them, kept no
    curve, or was calibrated with another smoothing, gate, temperature or hop than ``config``'s."""
    if not spec.calibrated_for(spec.listened_keywords(keywords)):
        return None  # e.g. a subset without its own calibration: the curve of all the keywords says nothing
    settings = spec.detector_settings(keywords)
    calibration = settings.get("calibration") or {}
    curve = (calibration.get("measured") or {}).get("curve")
    if not curve:
        return None
    same = all(settings.get(key, default) == getattr(config, key)
               for key, default in (("smoothing_windows", None), ("hop_ms", None), ("min_level_dbfs", None),
                                    ("temperature", 1.0)))
    if not same:
        return None
    thresholds = np.asarray(curve["thresholds"], dtype=np.float64)
    detected = np.asarray(curve["keywords_detected_percent"], dtype=np.float64)
    if thresholds.size != detected.size or thresholds.size == 0:
        return None
    order = np.argsort(thresholds)
    return thresholds[order], detected[order]


def detected_at(curve: Optional[Tuple[np.ndarray, np.ndarray]], threshold: float) -> Optional[float]:
    """Validation keywords detected (%) at ``threshold``, interpolated between the curve's thresholds;
    None (unknown) outside them (a curve kept with a shorter grid than tune's)."""
    if curve is None:
        return None
    thresholds, detected = curve
    if not thresholds.min() <= threshold <= thresholds.max():
        return None
    return float(np.interp(threshold, thresholds, detected))


def recording_files(paths: Sequence[Path]) -> List[Path]:
    """Each WAV file named, and every ``*.wav`` directly inside each folder named (sorted; hidden files
    such as ``._a.wav`` left out), each file once however often it is named."""
    files: List[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir()
                            if p.suffix.lower() == ".wav" and not p.name.startswith(".") and p.is_file())
            if not inside:
                hint = (f"; the recordings of record --background are in {path / BACKGROUND_FOLDER}"
                        if (path / BACKGROUND_FOLDER).is_dir() else "")
                raise ValueError(f"{path}: a folder without WAV files{hint}")
            files += inside
        else:
            files.append(path)
    unique = {}
    for path in files:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def read_recordings(paths: Sequence[Path]) -> List[Tuple[str, np.ndarray, int]]:
    """(name, int16 samples, rate in Hz) of each file of :func:`recording_files`; ValueError naming a file
    that is no 16-bit mono WAV or holds no audio."""
    recordings = []
    for path in recording_files(paths):
        samples, rate_hz = read_wav(path)
        if not samples.size:
            raise ValueError(f"{path}: holds no audio")
        recordings.append((str(path), samples, rate_hz))
    return recordings


# -- the sidecar ------------------------------------------------------------------------
ROOM_KEY = "room"  # in a detector section: the tuning written, with the threshold it replaced


def _is_subset(spec, keywords: Optional[Sequence[str]]) -> bool:
    return keywords is not None and set(keywords) != set(spec.keywords)


def _tuned_section(sidecar: dict, spec, keywords: Optional[Sequence[str]]) -> Optional[dict]:
    """The detector section in ``sidecar`` that ``listen`` reads for ``keywords`` when it is there: the
    model's own, or for fewer keywords their ``keyword_subsets`` entry (to change in place)."""
    detector = sidecar.get("detector")
    if detector is None or not _is_subset(spec, keywords):
        return detector
    return subset_settings(detector, keywords)


def write_room_tuning(model_path, spec, keywords: Optional[Sequence[str]], result: dict) -> None:
    """Make the recommended threshold the one ``listen`` uses by default, keeping what it replaced.

    Where the section did not exist (a sidecar without a detector, a subset without settings of its
    own, made from the model's), the tuning says so, and :func:`undo_room_tuning` removes it again.
    """
    sidecar = read_sidecar(model_path)
    section = _tuned_section(sidecar, spec, keywords)
    created = section is None
    if created:
        detector = sidecar.setdefault("detector", {})
        if _is_subset(spec, keywords):
            own = {key: value for key, value in detector.items() if key not in ("calibration", "keyword_subsets",
                                                                                ROOM_KEY)}
            section = detector.setdefault("keyword_subsets", {}).setdefault(
                subset_key(spec.listened_keywords(keywords)), own)
        else:
            section = detector
    earlier = section.get(ROOM_KEY)
    section[ROOM_KEY] = {
        # What undo puts back: the threshold before the first tuning (None: the default, no setting).
        "threshold_replaced": earlier["threshold_replaced"] if earlier else section.get("threshold"),
        "section_created": earlier["section_created"] if earlier else created,
        "target_false_alarms_per_hour": result["target_false_alarms_per_hour"],
        "recordings": result["recordings"],
        "false_alarms_per_hour": result["recommended_false_alarms_per_hour"],
        "validation_keywords_detected_percent": result["validation_keywords_detected_percent_recommended"],
    }
    section["threshold"] = result["recommended_threshold"]
    write_sidecar(model_path, sidecar)


def undo_room_tuning(model_path, spec, keywords: Optional[Sequence[str]]) -> Optional[float]:
    """Put the sidecar back as it was before the room tuning; returns the threshold in use again (None:
    the default). ValueError when there is no tuning to undo."""
    sidecar = read_sidecar(model_path)
    section = _tuned_section(sidecar, spec, keywords)
    room = (section or {}).pop(ROOM_KEY, None)
    if room is None:
        raise ValueError(f"{model_path}: no room tuning to undo"
                         + (f" for {','.join(keywords)}" if _is_subset(spec, keywords) else ""))
    detector = sidecar["detector"]
    if room.get("section_created") and _is_subset(spec, keywords):
        subsets = detector["keyword_subsets"]
        del subsets[next(key for key, value in subsets.items() if value is section)]
        if not subsets:
            del detector["keyword_subsets"]
    elif room.get("threshold_replaced") is None:
        section.pop("threshold", None)
    else:
        section["threshold"] = room["threshold_replaced"]
    if not detector:
        del sidecar["detector"]
    write_sidecar(model_path, sidecar)
    return DetectorConfig.from_sidecar(read_sidecar(model_path), keywords=keywords).threshold


# -- command line ------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pi_runtime.tune",
        usage=("%(prog)s ROOM.wav|FOLDER [...] " + ("[--model MODEL]" if DEFAULT_MODEL else "--model MODEL")
               + " [options]\n       %(prog)s --undo [--model MODEL] [--keywords WORDS]"),
        description="Tune the keyword spotter to a room: run it over recordings of the room with no keyword "
                    "said, count its false alarms at the threshold in use and at higher ones, and recommend "
                    "the lowest threshold that keeps them within a target, with what it costs in keywords "
                    "detected on the validation stream (from the sidecar's calibration). Record the room "
                    "with: python -m pi_runtime.record --background 1800 --out DIR (then give "
                    "DIR/_background_noise_). Exit status 1 when no threshold reaches the target; --undo "
                    "puts back what --write changed.")
    parser.add_argument("recordings", nargs="*", type=Path, metavar="ROOM.wav|FOLDER",
                        help="16-bit mono WAV files of the room (any rate), or folders of them; together at "
                             f"least {MIN_ROOM_SECONDS:g} s, better half an hour or more")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="keyword-spotting model (.tflite or .tflite.zlib) with its sidecar"
                             + (f" (default {DEFAULT_MODEL})" if DEFAULT_MODEL else ""))
    parser.add_argument("--keywords", type=keyword_list,
                        help="tune for listening to these of the model's keywords only, comma-separated "
                             "(listen --keywords; the sidecar's settings for them)")
    parser.add_argument("--target-false-alarms-per-hour", type=non_negative_float,
                        default=DEFAULT_TARGET_FALSE_ALARMS_PER_HOUR,
                        help="false alarms an hour of this room allowed "
                             f"(default {DEFAULT_TARGET_FALSE_ALARMS_PER_HOUR:g})")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--write", action="store_true",
                        help="make the recommended threshold the one listen uses by default: written into the "
                             "model's sidecar (for --keywords, that subset's settings) with the threshold it "
                             "replaces, which --undo puts back")
    parser.add_argument("--undo", action="store_true",
                        help="put back the threshold a --write replaced (no recording needed) and exit")
    add_builtin_kernels_argument(parser)
    return parser


def _model_flags(args: argparse.Namespace) -> List[str]:
    """--model (unless the default) and --keywords as given, for the command lines printed."""
    return ((["--model", str(args.model)] if args.model != DEFAULT_MODEL else [])
            + (["--keywords", ",".join(args.keywords)] if args.keywords else []))


def listen_command(args: argparse.Namespace, threshold: float) -> str:
    kernels = ["--builtin-kernels"] if args.builtin_kernels else []
    return shlex.join(["python", "-m", "pi_runtime.listen", *_model_flags(args), *kernels,
                       "--threshold", f"{threshold:g}"])


def summary(args: argparse.Namespace, run: RoomRun, config: DetectorConfig, curve, keywords) -> dict:
    index = run.recommended(args.target_false_alarms_per_hour)
    threshold = None if index is None else float(run.thresholds[index])  # the grid's 4 decimals, or the one in use
    fired = Counter(detection.label for _, detection in run.detections)
    return {
        "model": str(args.model),
        "keywords": list(keywords),
        "detector_in_use": {key: (None if value == -math.inf else value) for key, value in config.to_dict().items()},
        "recordings": [{"path": name, "seconds": round(seconds, 2)} for name, seconds in run.recordings],
        "seconds": round(run.seconds, 2),
        "target_false_alarms_per_hour": args.target_false_alarms_per_hour,
        "false_alarms_in_use": int(run.false_alarms[0]),
        "false_alarms_per_hour_in_use": round(float(run.false_alarms_per_hour[0]), 2),
        "fired_in_use": dict(sorted(fired.items())),
        "detections_in_use": [{"recording": name, **detection.to_dict()} for name, detection in run.detections],
        "rows": [{"threshold": float(t), "false_alarms": int(n), "false_alarms_per_hour": round(float(r), 2),
                  "validation_keywords_detected_percent": _rounded(detected_at(curve, t))}
                 for t, n, r in zip(run.thresholds, run.false_alarms, run.false_alarms_per_hour)],
        "recommended_threshold": threshold,
        "recommended_is_in_use": index == 0,
        "recommended_false_alarms_per_hour": (None if index is None
                                              else round(float(run.false_alarms_per_hour[index]), 2)),
        "validation_keywords_detected_percent_in_use": _rounded(detected_at(curve, config.threshold)),
        "validation_keywords_detected_percent_recommended": (None if threshold is None
                                                             else _rounded(detected_at(curve, threshold))),
        "listen_command": None if threshold is None else listen_command(args, threshold),
    }


def _rounded(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 1)


def _percent(value: Optional[float]) -> str:
    return "unknown" if value is None else f"{value:.1f} %"


def print_report(result: dict, out: TextIO) -> None:
    minutes = result["seconds"] / 60.0
    detector = result["detector_in_use"]
    gate = "off" if detector["min_level_dbfs"] is None else f"{detector['min_level_dbfs']:g} dBFS"
    lines = [f"model: {result['model']}, listening for {', '.join(result['keywords'])}",
             f"detector in use: threshold {detector['threshold']:g}, smoothing {detector['smoothing_windows']} "
             f"windows, gate {gate}",
             f"room: {len(result['recordings'])} recording(s), {minutes:.1f} min",
             f"at the threshold in use: {result['false_alarms_in_use']} false alarm(s), "
             f"{result['false_alarms_per_hour_in_use']:.1f} an hour"
             + (" (" + ", ".join(f"{label} {count}" for label, count in result["fired_in_use"].items()) + ")"
                if result["fired_in_use"] else ""),
             "",
             f"{'threshold':>9}  {'false alarms':>12}  {'an hour':>8}  validation keywords detected"]
    rows = result["rows"]
    recommended = result["recommended_threshold"]
    for k, row in enumerate(rows):  # the rows where the count changes, the one in use and the one recommended
        is_recommended = recommended is not None and row["threshold"] == recommended and k > 0
        if k == 0 or row["false_alarms"] != rows[k - 1]["false_alarms"] or is_recommended:
            note = " (in use)" if k == 0 else " (recommended)" if is_recommended else ""
            lines.append(f"{row['threshold']:>9g}  {row['false_alarms']:>12d}  {row['false_alarms_per_hour']:>8.1f}  "
                         f"{_percent(row['validation_keywords_detected_percent'])}{note}")
    lines.append("")
    target = result["target_false_alarms_per_hour"]
    if recommended is None:
        lines.append(f"no threshold up to {rows[-1]['threshold']:g} keeps this room under {target:g} false alarms "
                     "an hour: the model hears keywords in it that no threshold removes")
    elif result["recommended_is_in_use"]:
        lines.append(f"the threshold in use already keeps this room within {target:g} false alarms an hour: "
                     "keep it")
    else:
        cost = ("" if result["validation_keywords_detected_percent_in_use"] is None else
                f"; validation keywords detected {_percent(result['validation_keywords_detected_percent_recommended'])}"
                f" instead of {_percent(result['validation_keywords_detected_percent_in_use'])}")
        lines.append(f"recommended for at most {target:g} false alarms an hour here: threshold {recommended:g} "
                     f"({result['recommended_false_alarms_per_hour']:.1f} an hour){cost}")
        lines.append(f"    {result['listen_command']}")
    if result["validation_keywords_detected_percent_in_use"] is None:
        lines.append("the sidecar keeps no validation curve for these settings, so the cost in keywords is unknown "
                     "(python -m train.kws.calibrate writes one)")
    if result["seconds"] < SHORT_ROOM_SECONDS:
        lines.append(f"note: {minutes:.1f} min is short: one false alarm in it is {3600.0 / result['seconds']:.1f} an "
                     "hour; record more of the room for a firmer figure")
    if result["detections_in_use"]:
        lines.append("where it fired at the threshold in use (listen to these moments: a keyword said there is "
                     "no false alarm; record again without it):")
        lines += [f"    {d['recording']} {d['time_s']:9.2f} s  {d['label']:<8s} score {d['score']:.2f}"
                  for d in result["detections_in_use"]]
    print("\n".join(lines), file=out)


def main(argv: Optional[Sequence[str]] = None, *, out: Optional[TextIO] = None,
         err: Optional[TextIO] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out, err = out or sys.stdout, err or sys.stderr
    if not args.model:
        parser.error("--model is required: a keyword-spotting model with its sidecar")
    if args.undo and (args.recordings or args.write):
        parser.error("--undo takes no recordings and no --write: it only puts back the threshold replaced")
    if not args.undo and not args.recordings:
        parser.error("give at least one recording of the room (ROOM.wav or a folder of them)")
    try:
        model = load_model(args.model, require_sidecar=True, builtin_kernels=args.builtin_kernels)
        if model.spec is None:
            raise ValueError(f"{args.model}: not a keyword-spotting model")
        keywords = model.spec.listened_keywords(args.keywords)
        if args.undo:
            threshold = undo_room_tuning(args.model, model.spec, args.keywords)
            print(f"{args.model}: threshold {threshold:g} put back (the one before the room tuning)", file=out)
            return 0
        config = DetectorConfig.from_sidecar(model.spec, keywords=args.keywords)
        recordings = read_recordings(args.recordings)
        seconds = sum(samples.size / rate_hz for _, samples, rate_hz in recordings)
        if seconds < MIN_ROOM_SECONDS:
            raise ValueError(f"{seconds:.1f} s of the room is too little to count false alarms an hour: give at "
                             f"least {MIN_ROOM_SECONDS:g} s, better half an hour or more")
        print(f"listening to {seconds / 60:.1f} min of the room ...", file=err, flush=True)
        run = run_room(model, recordings, config=config, keywords=args.keywords, progress=err)
        curve = validation_curve(model.spec, config, args.keywords)
        result = summary(args, run, config, curve, keywords)
    except BrokenPipeError:  # the reader of the output went away: run_command ends quietly
        raise
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=err)
        return 2
    if args.json:
        print(json.dumps(result), file=out)
    else:
        print_report(result, out)
    if result["recommended_threshold"] is None:
        if args.write:
            print("error: nothing written: no threshold reaches the target", file=err)
        return 1
    if args.write:
        if result["recommended_is_in_use"]:
            print("nothing written: the threshold in use already keeps to the target", file=err)
        else:
            try:
                write_room_tuning(args.model, model.spec, args.keywords, result)
            except (ValueError, OSError) as error:
                print(f"error: {error}", file=err)
                return 2
            listening = shlex.join(["python", "-m", "pi_runtime.listen", *_model_flags(args)])
            undo = shlex.join(["python", "-m", "pi_runtime.tune", "--undo", *_model_flags(args)])
            print(f"written: {listening} now uses threshold {result['recommended_threshold']:g} ({undo} puts "
                  "the one before back)", file=err)
    return 0


if __name__ == "__main__":
    run_command(main)
