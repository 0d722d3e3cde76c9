"""Calibrate a keyword spotter's detector on a validation stream and write it into the sidecar.

``python -m train.kws.calibrate models/kws/kws_live_c.tflite.zlib [--target-false-alarms-per-hour 50] [--keywords go,stop]``

Per model: the live pipeline runs once over the validation stream
(:func:`train.kws.streams.realistic_stream` of the "val" split: validation
keyword clips and validation negatives; the test split is never used), every
window's posteriors kept. The stored posteriors are replayed for each energy
gate, smoothing length and temperature (``DetectorConfig.temperature``: the
posteriors sharpened before the mean) and each threshold of a grid; for each
such setting the threshold taken is the lowest one from which on every higher
threshold keeps the false alarms per hour of the whole validation stream at or
under the target; the setting whose threshold detects the most validation
keywords wins (ties: the higher gate, which skips more windows, then the
shorter smoothing, which decides sooner, then the higher temperature, the
posteriors less changed; when none reaches the target, the one with the
fewest false alarms at its highest threshold, and the calibration says the
target was not reached).

Why the gate is searched too: the validation stream says words at a peak of
-40..-30 dBFS sit in windows under a -55 dBFS gate; for kws_live_b's recipe,
opening the gate to -65 dBFS detected 71 % of the validation keywords instead
of 67 % for 1.8 more false alarms an hour. The result goes into the
sidecar's ``"detector"`` section, with its provenance, and ``listen`` uses it
by default. With ``--keywords go,stop`` the detector is calibrated for
listening to those words alone (``listen --keywords go,stop``: the stream's
clips of the other keywords are then words that must not fire) and written
into the section's ``keyword_subsets``, beside the model's own settings.

Why a target of 50 false alarms per hour of the whole validation stream by
default: it is what the delivered open-set models are calibrated for, and
most of those false alarms are other words, not noise. The test-stream bars
ask for at most 2 an hour on noise and babble and 3 % of non-keyword words
firing; a budget of 1 an hour over everything would keep to them, but the
delivered models then detect under a fifth of the validation keywords, no
use to a listener. A calibration that detects under half of them
(``MIN_DETECTED_PERCENT``) is printed and not written unless ``--force``:
the sidecar keeps the detector it had.

The calibration's figures are measured on the stream it chose on, so a search
over more settings looks better than it is. ``--out-of-sample`` writes
nothing and says what a calibration does on audio it was not chosen on: the
validation stream is cut in two, the search chooses on each half and is scored
on the other, beside the sidecar's detector on the same halves
(:func:`out_of_sample`).
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from pi_runtime.arguments import non_negative_int, run_command
from pi_runtime.kws_pipeline import (MAX_SMOOTHING_WINDOWS, MAX_TEMPERATURE, MIN_TEMPERATURE, DetectorConfig,
                                     frames_per_hop)
from pi_runtime.labels import keyword_list
from pi_runtime.model import load_model
from pi_runtime.replay import DEFAULT_THRESHOLDS, pick_threshold, replay
from pi_runtime.sidecar import read_sidecar, subset_key, write_sidecar
from train.kws.streams import LabelledStream, det_curve, run_pipeline, score

DEFAULT_TARGET_FALSE_ALARMS_PER_HOUR = 50.0
# A point that detects fewer of the validation keywords is no listener; main refuses to write it.
MIN_DETECTED_PERCENT = 50.0
DEFAULT_SMOOTHING_CANDIDATES = (1, 2, 3, 4, 5)
DEFAULT_GATE_CANDIDATES_DBFS = (-55.0, -60.0, -65.0, -70.0)
# 1 is the posteriors as the model gives them; below it, sharper (DetectorConfig.temperature). Lower ones
# put the best threshold of a confident model (kws_live_b at 0.25) at the top of the threshold grid.
DEFAULT_TEMPERATURE_CANDIDATES = (1.0, 0.7, 0.5, 0.35)


def calibrate_model(model_path, stream: LabelledStream, *,
                    target_false_alarms_per_hour: float = DEFAULT_TARGET_FALSE_ALARMS_PER_HOUR,
                    smoothing_candidates: Sequence[int] = DEFAULT_SMOOTHING_CANDIDATES,
                    gate_candidates_dbfs: Optional[Sequence[float]] = DEFAULT_GATE_CANDIDATES_DBFS,
                    temperature_candidates: Sequence[float] = DEFAULT_TEMPERATURE_CANDIDATES,
                    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                    base_config: DetectorConfig = DetectorConfig(), input_rate_hz: int = 16000,
                    keywords: Optional[Sequence[str]] = None, write: bool = True) -> dict:
    """Choose the detector of ``model_path`` (gate, smoothing, temperature, threshold) on ``stream`` and write
    it into its sidecar.

    Parameters
    ----------
    model_path : str or Path
        A keyword-spotting model (.tflite or .tflite.zlib) with its sidecar.
    stream : LabelledStream
        A VALIDATION stream (never the test split's).
    target_false_alarms_per_hour : float
        False alarms per hour of the whole stream the detector may make.
    smoothing_candidates : sequence of int
        Smoothing lengths tried (windows).
    gate_candidates_dbfs : sequence of float or None
        Energy gates tried (``min_level_dbfs``; ``-inf`` is the gate open);
        None keeps ``base_config``'s.
    temperature_candidates : sequence of float
        Temperatures tried (``DetectorConfig.temperature``; 1: the posteriors as given).
    thresholds : sequence of float
        The threshold grid.
    base_config : DetectorConfig
        Hop and refractory period (kept as they are), and the gate when no candidates are given.
    input_rate_hz : int
        Rate the stream is fed at (16 kHz: no resampling).
    keywords : sequence of str, optional
        Calibrate for listening to these of the model's keywords only (the
        stream's clips of the others count as non-keyword words); the result
        goes into ``"detector"``'s ``keyword_subsets``, beside the model's own.
    write : bool
        Write the result into the sidecar's ``"detector"`` section.

    Returns
    -------
    dict
        The ``"detector"`` section: the settings and ``"calibration"`` (target,
        stream description with its seed, measured numbers on the validation stream).
    """
    space = SearchSpace.checked(target_false_alarms_per_hour, smoothing_candidates, gate_candidates_dbfs,
                                temperature_candidates, thresholds, base_config)
    model = load_model(model_path, require_sidecar=True)
    run = open_gate_run(model, stream, space, input_rate_hz=input_rate_hz, keywords=keywords)
    chosen, result, reached, curve = space.choose(run, stream)
    measured = result.to_dict()
    measured["target_reached"] = reached
    measured["curve"] = curve_record(curve)
    measured["searched"] = space.describe()
    settings = chosen.to_dict()
    if settings["min_level_dbfs"] == -math.inf:
        settings["min_level_dbfs"] = None  # the sidecar's "gate off" (JSON has no infinity)
    section = {**settings, "calibration": {
        "target_false_alarms_per_hour": space.target_false_alarms_per_hour,
        "stream": stream.description,
        "measured": measured,
    }}
    if keywords is not None:
        section["calibration"]["keywords"] = list(run.keywords)
    if write:
        write_calibration(model_path, section)
    return section


@dataclass(frozen=True)
class SearchSpace:
    """What the calibration tries (gates, smoothing lengths and temperatures, each at every threshold) and
    its false-alarm budget; :meth:`choose` picks the setting on one run of the live pipeline."""

    target_false_alarms_per_hour: float
    gates_dbfs: Tuple[float, ...]        # highest first
    smoothings: Tuple[int, ...]          # shortest first
    temperatures: Tuple[float, ...]      # highest first
    thresholds: Tuple[float, ...]
    base_config: DetectorConfig          # hop and refractory period, kept

    @classmethod
    def checked(cls, target_false_alarms_per_hour: float = DEFAULT_TARGET_FALSE_ALARMS_PER_HOUR,
                smoothing_candidates: Sequence[int] = DEFAULT_SMOOTHING_CANDIDATES,
                gate_candidates_dbfs: Optional[Sequence[float]] = DEFAULT_GATE_CANDIDATES_DBFS,
                temperature_candidates: Sequence[float] = DEFAULT_TEMPERATURE_CANDIDATES,
                thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                base_config: DetectorConfig = DetectorConfig()) -> "SearchSpace":
        """The candidates sorted and checked (ValueError naming the bad argument); ``gate_candidates_dbfs``
        None keeps ``base_config``'s gate."""
        if not target_false_alarms_per_hour >= 0:
            raise ValueError(f"target_false_alarms_per_hour must be >= 0, got {target_false_alarms_per_hour!r}")
        smoothings = sorted(set(int(n) for n in smoothing_candidates))
        if not smoothings or not all(1 <= n <= MAX_SMOOTHING_WINDOWS for n in smoothings):
            raise ValueError(f"smoothing_candidates must be integers from 1 to {MAX_SMOOTHING_WINDOWS}, "
                             f"got {list(smoothing_candidates)}")
        gates = (sorted(set(float(gate) for gate in gate_candidates_dbfs), reverse=True)
                 if gate_candidates_dbfs is not None else [base_config.min_level_dbfs])
        if not gates or any(math.isnan(gate) or gate > 0 for gate in gates):
            raise ValueError(f"gate_candidates_dbfs must be levels at or under 0 dBFS, got {gate_candidates_dbfs!r}")
        temperatures = sorted(set(float(t) for t in temperature_candidates), reverse=True)
        if not temperatures or not all(MIN_TEMPERATURE <= t <= MAX_TEMPERATURE for t in temperatures):
            raise ValueError(f"temperature_candidates must be numbers from {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}, "
                             f"got {list(temperature_candidates)!r}")
        return cls(float(target_false_alarms_per_hour), tuple(gates), tuple(smoothings), tuple(temperatures),
                   tuple(float(t) for t in thresholds), base_config)

    def choose(self, run, stream: LabelledStream):
        """(config, score at its threshold, whether the target was reached, its DET curve) of the best setting.

        For each setting, the lowest threshold from which on every higher one keeps to the target; best:
        the target reached, then the most keywords detected (the fewest false alarms when no setting
        reaches it), then the higher gate, the shorter smoothing, the higher temperature.
        """
        choices = []
        for gate, smoothing, temperature in itertools.product(self.gates_dbfs, self.smoothings, self.temperatures):
            config = self.base_config.replace(smoothing_windows=smoothing, min_level_dbfs=gate,
                                              temperature=temperature)
            curve = det_curve(run.decisions, run.labels, stream, config=config, keywords=run.keywords,
                              thresholds=self.thresholds, window_duration_s=run.window_duration_s)
            index = pick_threshold(curve.thresholds, curve.false_alarms_per_hour, self.target_false_alarms_per_hour)
            reached = index is not None
            if not reached:
                index = int(np.argmax(curve.thresholds))
            result = curve.scores[index]
            merit = result.detected if reached else -result.false_alarms
            choices.append(((reached, merit, gate, -smoothing, temperature),
                            config.replace(threshold=float(curve.thresholds[index])), result, reached, curve))
        return max(choices, key=lambda choice: choice[0])[1:]

    def describe(self) -> str:
        return (f"gate {', '.join(f'{gate:g}' for gate in self.gates_dbfs)} dBFS x "
                f"smoothing {', '.join(map(str, self.smoothings))} windows x "
                f"temperature {', '.join(f'{t:g}' for t in self.temperatures)} x {len(self.thresholds)} thresholds "
                f"from {min(self.thresholds):g} to {max(self.thresholds):g}")


def open_gate_run(model, stream: LabelledStream, space: SearchSpace, *, input_rate_hz: int = 16000,
                  keywords: Optional[Sequence[str]] = None):
    """One run of the live pipeline with the gate open: every window's posteriors, for any setting's replay."""
    return run_pipeline(model, stream, config=space.base_config.replace(min_level_dbfs=-math.inf),
                        input_rate_hz=input_rate_hz, keywords=keywords)


@dataclass
class HeldOutScore:
    """Sums over the two halves of a stream of what a detector did on the half it was not chosen on."""

    keywords: int = 0
    detected: int = 0
    false_alarms: int = 0
    hours: float = 0.0
    noise_and_babble_false_alarms: int = 0
    noise_and_babble_hours: float = 0.0
    words: int = 0
    words_fired: int = 0
    # The detector in a few words: chosen on the first half (scored on the second), then on the second.
    settings: List[str] = field(default_factory=list)
    seen_before: bool = False  # chosen on this very stream: in-sample on both halves

    def add(self, result, config: DetectorConfig) -> None:
        kinds = result.noise_and_babble_kinds
        self.keywords += result.keywords
        self.detected += result.detected
        self.false_alarms += result.false_alarms
        self.hours += result.duration_s / 3600.0
        self.noise_and_babble_false_alarms += result.false_alarms_of(kinds)
        self.noise_and_babble_hours += result.seconds_of(kinds) / 3600.0
        self.words += result.words
        self.words_fired += result.words_fired
        self.settings.append(config.summary())

    def describe(self) -> str:
        return (f"{100.0 * self.detected / max(self.keywords, 1):.1f} % of {self.keywords} keywords detected, "
                f"{self.false_alarms / max(self.hours, 1e-12):.1f} false alarms/hour, "
                f"{self.noise_and_babble_false_alarms} on noise and babble "
                f"({self.noise_and_babble_false_alarms / max(self.noise_and_babble_hours, 1e-12):.1f}/hour), "
                f"{self.words_fired} of {self.words} non-keyword words fired "
                f"({100.0 * self.words_fired / max(self.words, 1):.1f} %)")


def out_of_sample(model_path, stream: LabelledStream, space: Optional[SearchSpace] = None, *,
                  input_rate_hz: int = 16000,
                  keywords: Optional[Sequence[str]] = None) -> Tuple[HeldOutScore, HeldOutScore]:
    """How a calibration does on validation audio it was not chosen on, beside the sidecar's detector.

    The stream is cut in two (:meth:`LabelledStream.halves`); the calibration's search (``space``; by
    default the calibration's defaults) chooses a setting on each half, and it is scored on the other
    half. The calibration's own figures are in-sample (chosen and measured on the same stream), so they
    flatter a search with more settings; these do not. Returns (the calibration chosen on the other half,
    the sidecar's detector as it is, for ``keywords`` its subset's), each summed over the two halves; the second's ``seen_before`` says
    whether the sidecar's was calibrated on this very stream (then it is in-sample: compare with the
    search out of sample restricted to the sidecar's choices instead, e.g. one temperature). Writes nothing.
    """
    space = space if space is not None else SearchSpace.checked()
    model = load_model(model_path, require_sidecar=True)
    in_use = DetectorConfig.from_sidecar(model.spec, keywords=keywords, hop_ms=space.base_config.hop_ms)
    calibration = model.spec.detector_settings(keywords).get("calibration") or {}
    halves = stream.halves()
    runs = [open_gate_run(model, half, space, input_rate_hz=input_rate_hz, keywords=keywords) for half in halves]
    calibrated, kept = HeldOutScore(), HeldOutScore(seen_before=calibration.get("stream") == stream.description)
    for chosen_on, scored_on in ((0, 1), (1, 0)):
        config = space.choose(runs[chosen_on], halves[chosen_on])[0]
        run, half = runs[scored_on], halves[scored_on]
        for score_into, detector in ((calibrated, config), (kept, in_use)):
            detections = replay(run.decisions, run.labels, detector, keywords=run.keywords,
                                window_duration_s=run.window_duration_s)
            score_into.add(score(detections, half, keywords=run.keywords), detector)
    return calibrated, kept


def curve_record(curve) -> dict:
    """The chosen gate, smoothing and temperature at every threshold of the grid, as the sidecar keeps it: what a
    higher threshold costs in validation keywords (``python -m pi_runtime.tune`` reads it on the Pi)."""
    return {"thresholds": [round(float(t), 4) for t in curve.thresholds],
            "keywords_detected_percent": [round(s.detected_percent, 2) for s in curve.scores],
            "false_alarms_per_hour": [round(float(f), 3) for f in curve.false_alarms_per_hour]}


def write_calibration(model_path, section: dict) -> None:
    """Put a section of :func:`calibrate_model` into the model's sidecar: the model's own settings, or, for
    a section calibrated for some keywords alone, theirs in ``keyword_subsets`` (the other settings kept)."""
    sidecar = read_sidecar(model_path)
    detector = dict(sidecar.get("detector") or {})
    subsets = detector.pop("keyword_subsets", {})  # kept whichever settings are written
    keywords = section["calibration"].get("keywords")
    if keywords is None:
        detector = dict(section)
    else:
        subsets = {**subsets, subset_key(keywords): section}
    sidecar["detector"] = {**detector, **({"keyword_subsets": subsets} if subsets else {})}
    write_sidecar(model_path, sidecar)


def describe(section: dict) -> str:
    """One line per calibration: the settings and what they measured on validation."""
    measured = section["calibration"]["measured"]
    words = measured.get("non_keyword_words_fired_percent")
    noise = measured.get("false_alarms_per_hour_noise_and_babble")
    gate = section.get("min_level_dbfs")
    subset = section["calibration"].get("keywords")
    return ((f"for {','.join(subset)} alone: " if subset else "")
            + f"threshold {section['threshold']:.3f}, smoothing {section['smoothing_windows']} windows, "
            + (f"temperature {section['temperature']:g}, " if section.get("temperature", 1.0) != 1.0 else "")
            + f"gate {'off' if gate is None else f'{gate:g} dBFS'}: "
            f"{measured['keywords_detected_percent']:.1f} % of {measured['keywords']} keywords detected, "
            f"{measured['false_alarms_per_hour']:.2f} false alarms/hour (target "
            f"{section['calibration']['target_false_alarms_per_hour']:g}"
            f"{'' if measured['target_reached'] else ', NOT reached'})"
            + (f", {words:.1f} % of non-keyword words fired" if words is not None else "")
            + (f", {noise:.2f}/hour on noise and babble" if noise is not None else ""))


def parse_gates(text: str) -> Tuple[float, ...]:
    """``"-55,-65,off"`` -> ``(-55.0, -65.0, -inf)``: energy gates in dBFS at or under 0 (an argparse type)."""
    try:
        gates = tuple(-math.inf if part.strip() == "off" else float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"levels in dBFS or 'off', separated by commas, expected; got {text!r}")
    if any(math.isnan(gate) or gate > 0 for gate in gates):
        raise argparse.ArgumentTypeError(f"levels at or under 0 dBFS expected, got {text!r}")
    return gates


def join_list_values(argv: Sequence[str], options: Sequence[str] = ("--gates",)) -> List[str]:
    """``["--gates", "-55,-60"]`` -> ``["--gates=-55,-60"]``.

    argparse takes a value that starts with "-" for an option unless it is one
    number, so a list of negative levels needs the ``=`` form; this writes it.
    """
    argv, joined = list(argv), []
    while argv:
        token = argv.pop(0)
        if token in options and argv and argv[0].startswith("-") and argv[0][1:2].isdigit():
            token = f"{token}={argv.pop(0)}"
        joined.append(token)
    return joined


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train.kws.calibrate",
        description="Calibrate each model's detection threshold, smoothing, temperature and energy gate on the "
                    "validation stream (validation keyword clips and validation negatives, never the test split) for a target "
                    "false-alarm rate, and write them into the model's sidecar ('detector'), where listen "
                    "takes its defaults from.")
    parser.add_argument("models", nargs="+", type=Path, metavar="MODEL",
                        help="keyword-spotting model(s), .tflite or .tflite.zlib, each with its sidecar")
    parser.add_argument("--target-false-alarms-per-hour", type=float, default=DEFAULT_TARGET_FALSE_ALARMS_PER_HOUR,
                        help="false alarms allowed per hour of the validation stream "
                             f"(default {DEFAULT_TARGET_FALSE_ALARMS_PER_HOUR:g})")
    parser.add_argument("--smoothing", default=",".join(map(str, DEFAULT_SMOOTHING_CANDIDATES)),
                        help="smoothing lengths to try, in windows, comma-separated "
                             f"(default {','.join(map(str, DEFAULT_SMOOTHING_CANDIDATES))})")
    parser.add_argument("--temperatures", default=",".join(f"{t:g}" for t in DEFAULT_TEMPERATURE_CANDIDATES),
                        help="temperatures to try, comma-separated: each window's posteriors sharpened (below 1) or "
                             "flattened (above 1) as a softmax at that temperature would be, before the mean; 1 takes "
                             "them as the model gives them "
                             f"(default {','.join(f'{t:g}' for t in DEFAULT_TEMPERATURE_CANDIDATES)})")
    parser.add_argument("--gates", type=parse_gates, default=DEFAULT_GATE_CANDIDATES_DBFS,
                        help="energy gates to try (min_level_dbfs: windows quieter than this are not "
                             "classified), dBFS, comma-separated; 'off' for no gate "
                             f"(default {','.join(f'{gate:g}' for gate in DEFAULT_GATE_CANDIDATES_DBFS)})")
    parser.add_argument("--hop-ms", type=float, default=DetectorConfig().hop_ms,
                        help=f"time between model runs, ms, kept as it is: whole frames of the model's frontend (20 ms "
                             f"for the delivered models), at most one window (default {DetectorConfig().hop_ms:g})")
    parser.add_argument("--data-dir", type=Path,
                        help="folder holding mini_speech_commands/ and the generated negatives "
                             "(default $TINYML_DATA_DIR or ~/.cache/tinyml-pi)")
    parser.add_argument("--keywords", type=keyword_list,
                        help="calibrate for listening to these of each model's keywords only, comma-separated "
                             "(listen --keywords; e.g. go,stop): written beside the model's own settings")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the validation stream (default 0)")
    parser.add_argument("--dry-run", action="store_true", help="print the calibration without writing sidecars")
    parser.add_argument("--out-of-sample", action="store_true",
                        help="write nothing; instead choose on each half of the validation stream and score on the "
                             "other, beside the sidecar's detector on the same halves (the calibration's own figures "
                             "are measured on the stream they were chosen on)")
    parser.add_argument("--force", action="store_true",
                        help=f"write a calibration even when it detects under {MIN_DETECTED_PERCENT:g} %% of the "
                             "validation keywords (refused otherwise: the sidecar keeps its detector)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(join_list_values(sys.argv[1:] if argv is None else argv))
    try:
        smoothing = tuple(int(text) for text in args.smoothing.split(","))
    except ValueError:
        parser.error(f"--smoothing must be integers separated by commas, got {args.smoothing!r}")
    try:
        temperatures = tuple(float(text) for text in args.temperatures.split(","))
    except ValueError:
        parser.error(f"--temperatures must be numbers separated by commas, got {args.temperatures!r}")
    if not all(MIN_TEMPERATURE <= t <= MAX_TEMPERATURE for t in temperatures):
        parser.error(f"--temperatures must be numbers from {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}, "
                     f"got {args.temperatures!r}")
    if not args.target_false_alarms_per_hour >= 0:
        parser.error("--target-false-alarms-per-hour must be >= 0")
    try:
        base_config = DetectorConfig(hop_ms=args.hop_ms)
    except ValueError as error:
        parser.error(f"--hop-ms: {error}")
    missing = [str(path) for path in args.models if not path.is_file()]
    if missing:
        parser.error(f"no such model file: {', '.join(missing)}")
    from pi_runtime.sidecar import read_kws_spec
    from train.kws.streams import realistic_stream

    try:
        for model_path in args.models:  # a word some model lacks, a hop it cannot run: said before the stream is built
            spec = read_kws_spec(model_path)
            frames_per_hop(args.hop_ms, spec.input)
            if args.keywords is not None:
                spec.listened_keywords(args.keywords)
        refused: List[Path] = []
        space = SearchSpace.checked(args.target_false_alarms_per_hour, smoothing, args.gates, temperatures,
                                    base_config=base_config)  # what --out-of-sample searches, for every model
        print("building the validation stream ...", file=sys.stderr, flush=True)
        stream = realistic_stream("val", data_dir=args.data_dir, seed=args.seed, progress=True)
        print(stream.description, file=sys.stderr, flush=True)
        for model_path in args.models:
            if args.out_of_sample:
                print(f"{model_path}: choosing on each half, scoring on the other ...", file=sys.stderr, flush=True)
                calibrated, kept = out_of_sample(model_path, stream, space, keywords=args.keywords)
                print(f"{model_path.name}, on the half of the validation stream each was not chosen on"
                      + (f" (listening for {','.join(args.keywords)})" if args.keywords else "") + ":")
                print(f"  calibrated on the other half: {calibrated.describe()}")
                print(f"    chosen on the first half: {calibrated.settings[0]}; on the second: {calibrated.settings[1]}")
                print(f"  the sidecar's detector ({kept.settings[0]}): {kept.describe()}"
                      + ("\n    (calibrated on this same stream: in-sample, it has seen the half it is scored on)"
                         if kept.seen_before else ""))
                continue
            print(f"{model_path}: calibrating ...", file=sys.stderr, flush=True)
            section = calibrate_model(model_path, stream, target_false_alarms_per_hour=args.target_false_alarms_per_hour,
                                      smoothing_candidates=smoothing, gate_candidates_dbfs=args.gates,
                                      temperature_candidates=temperatures,
                                      base_config=base_config, keywords=args.keywords, write=False)
            detected = section["calibration"]["measured"]["keywords_detected_percent"]
            if args.dry_run:
                note = " (not written: --dry-run)"
            elif detected < MIN_DETECTED_PERCENT and not args.force:
                note = (f" (NOT written: it detects under {MIN_DETECTED_PERCENT:g} % of the keywords; allow more "
                        "false alarms with --target-false-alarms-per-hour, or --force to write it all the same)")
                refused.append(model_path)
            else:
                write_calibration(model_path, section)
                note = ""
            print(f"{model_path.name}: {describe(section)}{note}")
    except BrokenPipeError:  # the reader of the output went away: run_command ends quietly
        raise
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if refused:
        print(f"error: not written, the sidecar of {', '.join(map(str, refused))} keeps its detector",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_command(main)
