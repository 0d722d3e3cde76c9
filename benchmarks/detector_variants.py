"""Other ways to turn window posteriors into detections, compared on the VALIDATION stream.

    python -m benchmarks.detector_variants MODEL [--verifier MODEL] [--target-false-alarms-per-hour 50]

The model runs once over the validation stream (``train.kws.streams.realistic_stream("val")``;
the test split is never read) and every window's posteriors are kept. Each
variant pools those posteriors window by window in its own way; the delivered
policy's rule (gate, threshold, beating the rejection classes, re-arming,
refractory period) then replays them in place of its own mean
(``train.kws.streams.det_curve(..., pooled=...)``), at the model's calibrated
gate (or the default one). Each variant's threshold is the one
``train.kws.calibrate`` would pick for the target on that same stream, so
every row is measured in-sample, alike.
The variants:

* ``mean n``: the mean of the last n windows, the delivered policy's own
  smoothing (at the calibrated n it reproduces the calibration);
* ``top-k of n``: the mean of the k largest of the last n (a word that is clear
  in a few windows only);
* ``geometric n``: the geometric mean of the last n (one confident window
  cannot carry the others);
* ``_unknown_ xw``: the rejection classes' posteriors scaled by w before the
  mean (a prior for or against rejecting);
* ``sharpened T``: the delivered policy itself at temperature T, T the
  calibration's candidates (each window's posteriors raised to the power 1/T
  and renormalised before the mean, as a softmax at temperature T: an
  open-set model that hedges between keywords may part them from babble,
  whose mass spreads over several words, with a sharper score);
* ``keywords to the leader``: in each window the whole keyword mass given to
  the leading keyword before the mean (the word is then told apart from the
  rejection classes only, not from the other keywords);
* with ``--verifier``: each keyword's posterior multiplied by a second model's
  posterior for the same word to the power p before the mean (a cascade);
* ``pause >= R dB``: the mean, but only windows whose audio rises and falls,
  the 95th percentile of their 20 ms frames' energy at least R dB over the
  10th, may fire (a command said between pauses; continuous babble and noise
  have no such dips).

Then one threshold per keyword instead of one for all, measured out of sample:
the stream is cut into its two halves in time; on one half the thresholds
that detect the most keywords within the half's false-alarm budget are
chosen (:func:`thresholds_per_keyword`, exact over the grid, each keyword's
detections and false alarms counted from its own detections), and they are
scored on the other half beside the single threshold the calibration's rule
picks on the same half, then the halves swap; last, for a like-for-like
comparison, the most keywords a single threshold detects on the scored half
with no more false alarms there (a point of its DET curve).

First it says how the model shares its posterior in the window that holds
each keyword clip without a background (:func:`where_the_mass_goes`): between
the right word, the other keywords and the rejection classes.

It measures and prints; it asserts nothing.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from benchmarks.reporting import add_data_dir_argument, load_kws_models
from pi_runtime.arguments import non_negative_float, run_command
from pi_runtime.replay import DEFAULT_THRESHOLDS, pick_threshold, replay_thresholds
from train.kws.calibrate import DEFAULT_TEMPERATURE_CANDIDATES

WINDOW_COUNTS = (3, 5, 8)
TOP_K = (2, 3)
REJECTION_SCALES = (0.5, 0.25)
# The temperatures the calibration searches, but 1 (the mean's own rows).
TEMPERATURES = tuple(t for t in DEFAULT_TEMPERATURE_CANDIDATES if t != 1.0)
VERIFIER_POWERS = (0.5, 1.0, 2.0)
PAUSE_RANGES_DB = (15.0, 20.0, 25.0)
PAUSE_FRAME_S = 0.02
# Up to 0.99 by hundredths, then the tail of pi_runtime.replay's grid, where sharpened posteriors crowd.
THRESHOLDS = np.concatenate([np.round(np.linspace(0.02, 0.99, 98), 2), [t for t in DEFAULT_THRESHOLDS if t > 0.99]])


def pool_posteriors(probabilities: np.ndarray, windows: int, how: str = "mean", top_k: int = 1) -> np.ndarray:
    """Row t pooled over rows t-windows+1..t (fewer at the start, as the policy's smoother holds fewer).

    ``how``: ``"mean"``, ``"top"`` (mean of the ``top_k`` largest, per label) or ``"geometric"``.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or windows < 1:
        raise ValueError(f"need [windows, labels] posteriors and windows >= 1, got {probabilities.shape}, {windows}")
    if how not in ("mean", "top", "geometric"):
        raise ValueError(f"how must be 'mean', 'top' or 'geometric', got {how!r}")
    if how == "top" and not 1 <= top_k <= windows:
        raise ValueError(f"top_k must be from 1 to windows ({windows}), got {top_k}")
    rows, labels = probabilities.shape
    # [windows, rows, labels]: the history each row sees, NaN where it reaches before the start
    padded = np.concatenate([np.full((windows - 1, labels), np.nan), probabilities])
    history = np.stack([padded[i:i + rows] for i in range(windows)])
    if how == "mean":
        return np.nanmean(history, axis=0)
    if how == "geometric":
        return np.exp(np.nanmean(np.log(np.maximum(history, 1e-6)), axis=0))
    held = np.minimum(np.arange(rows) + 1, windows)[:, None]  # windows held at each row
    # Posteriors are >= 0, so the padding as zeros adds nothing to the sum of the largest.
    largest = np.sort(np.nan_to_num(history, nan=0.0), axis=0)[-top_k:]
    return largest.sum(axis=0) / np.minimum(held, top_k)


def scale_labels(probabilities: np.ndarray, labels: Sequence[str], scales: Dict[str, float]) -> np.ndarray:
    """Posteriors with the named labels' columns scaled, each row renormalised to sum to 1."""
    scaled = np.array(probabilities, dtype=np.float64)
    for label, factor in scales.items():
        scaled[:, list(labels).index(label)] *= factor
    return scaled / np.maximum(scaled.sum(axis=1, keepdims=True), 1e-12)


def keywords_to_leader(probabilities: np.ndarray, labels: Sequence[str], keywords: Sequence[str]) -> np.ndarray:
    """In each row the keywords' summed posterior given to the largest of them, the others' set to
    zero; the other labels (the rejection classes) untouched."""
    pooled = np.array(probabilities, dtype=np.float64)
    columns = np.array([list(labels).index(keyword) for keyword in keywords])
    mass = pooled[:, columns].sum(axis=1)
    leader = columns[np.argmax(pooled[:, columns], axis=1)]
    pooled[:, columns] = 0.0
    pooled[np.arange(len(pooled)), leader] = mass
    return pooled


def verified(probabilities: np.ndarray, labels: Sequence[str], verifier_probabilities: np.ndarray,
             verifier_labels: Sequence[str], power: float) -> np.ndarray:
    """Each label the verifier also has, multiplied by the verifier's posterior for it to ``power``."""
    fused = np.array(probabilities, dtype=np.float64)
    for column, label in enumerate(labels):
        if label in verifier_labels:
            fused[:, column] *= np.asarray(verifier_probabilities)[:, list(verifier_labels).index(label)] ** power
    return fused


def energy_range_db(audio: np.ndarray, sample_rate_hz: int, end_times_s: Sequence[float],
                    window_s: float = 1.0) -> np.ndarray:
    """For each window ending at ``end_times_s``: the 95th minus the 10th percentile of its 20 ms
    frames' energy in dB (frames of digital silence at -120 dB)."""
    frame = int(round(PAUSE_FRAME_S * sample_rate_hz))
    count = np.asarray(audio).size // frame
    frames = np.asarray(audio, dtype=np.float64)[:count * frame].reshape(count, frame)
    energy_db = 10.0 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    span = int(round(window_s / PAUSE_FRAME_S))
    ranges = np.zeros(len(end_times_s))
    for row, end_s in enumerate(end_times_s):
        end = min(count, int(round(end_s / PAUSE_FRAME_S)))
        window = energy_db[max(0, end - span):end]
        ranges[row] = np.percentile(window, 95) - np.percentile(window, 10) if window.size else 0.0
    return ranges


def gated(probabilities: np.ndarray, levels_dbfs: np.ndarray, gate_dbfs: float) -> np.ndarray:
    """Windows under the gate as the policy smooths them: all-zero posteriors (which scaling and
    verifying leave at zero, so gating once comes first)."""
    return np.where((np.asarray(levels_dbfs) < gate_dbfs)[:, None], 0.0, probabilities)


def thresholds_per_keyword(detected: np.ndarray, false_alarms: np.ndarray, budget: int) -> List[int]:
    """For each keyword (row) the index of a threshold (column) so that the detections summed
    over the keywords are the most with the false alarms summed at most ``budget``.

    Exact (dynamic programming over the false alarms spent); ties keep the fewer false
    alarms, then the higher thresholds. Raises ValueError when even the highest
    thresholds spend more than ``budget``.
    """
    detected, false_alarms = np.asarray(detected), np.asarray(false_alarms)
    if detected.shape != false_alarms.shape or detected.ndim != 2 or budget < 0:
        raise ValueError(f"need [keywords, thresholds] counts of one shape and a budget >= 0, got "
                         f"{detected.shape}, {false_alarms.shape}, {budget}")
    best: Dict[int, Tuple[int, Tuple[int, ...]]] = {0: (0, ())}  # false alarms spent -> (detected, choice)
    for row in range(detected.shape[0]):
        following: Dict[int, Tuple[int, Tuple[int, ...]]] = {}
        for spent, (found, choice) in best.items():
            for column in range(detected.shape[1] - 1, -1, -1):  # the higher thresholds first win ties
                total = spent + int(false_alarms[row, column])
                if total > budget:
                    continue
                candidate = (found + int(detected[row, column]), choice + (column,))
                if total not in following or candidate[0] > following[total][0]:
                    following[total] = candidate
        best = following
        if not best:
            raise ValueError(f"no thresholds keep the false alarms within {budget}")
    found, choice = max(((found, -spent, choice) for spent, (found, choice) in best.items()))[::2]
    return list(choice)


def where_the_mass_goes(decisions, labels: Sequence[str], keywords: Sequence[str], stream) -> Dict[str, float]:
    """How the model shares its posterior in the window that ends nearest each keyword clip's end (the
    window that holds the clip), over the keyword events without a background: the mean mass of the
    right word, of the other keywords and of the other labels, and the share of those windows where
    the right word leads, reaches 0.5 and reaches 0.8."""
    from train.kws.streams import KEYWORD_CLIP_KIND

    times = np.array([decision.time_s for decision in decisions])
    keyword_columns = [list(labels).index(keyword) for keyword in keywords]
    rows = []
    for event in stream.events:
        if event.kind != KEYWORD_CLIP_KIND or event.condition != "clean" or event.label not in keywords:
            continue
        probabilities = decisions[int(np.argmin(np.abs(times - event.end_s)))].probabilities
        if probabilities is None:
            continue
        probabilities = np.asarray(probabilities, dtype=np.float64)
        right = list(labels).index(event.label)
        others = probabilities[keyword_columns].sum() - probabilities[right]
        rows.append((probabilities[right], others, probabilities.sum() - probabilities[right] - others,
                     int(np.argmax(probabilities)) == right))
    if not rows:
        raise ValueError("the stream has no keyword clip without a background")
    right, others, rest, leads = (np.array(column, dtype=np.float64) for column in zip(*rows))
    return {"windows": float(len(rows)), "right": float(right.mean()), "other keywords": float(others.mean()),
            "other labels": float(rest.mean()), "leads": float(leads.mean()),
            "reaches 0.5": float(np.mean(right >= 0.5)), "reaches 0.8": float(np.mean(right >= 0.8))}


def counts_per_keyword(replays, stream, keywords: Sequence[str], start_s: float, end_s: float):
    """(detected, false alarms): int[keywords, thresholds], counting the detections with window ends in
    [start_s, end_s) of each replay (one per threshold), each keyword from its own detections."""
    from train.kws.streams import score

    detected = np.zeros((len(keywords), len(replays)), np.int64)
    false_alarms = np.zeros_like(detected)
    for column, detections in enumerate(replays):
        for row, keyword in enumerate(keywords):
            result = score([d for d in detections if d.label == keyword and start_s <= d.time_s < end_s],
                           stream, keywords=keywords)
            detected[row, column], false_alarms[row, column] = result.detected, result.false_alarms
    return detected, false_alarms


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detector_variants",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="open-set keyword-spotting model (.tflite or .tflite.zlib, "
                                                 "sidecar beside, calibrated by train.kws.calibrate)")
    parser.add_argument("--verifier", type=Path, default=None,
                        help="a second model (e.g. an 8-word version) whose posteriors must agree")
    parser.add_argument("--target-false-alarms-per-hour", type=non_negative_float, default=50.0,
                        help="false alarms per hour of the validation stream each variant may make (default 50)")
    add_data_dir_argument(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from pi_runtime.kws_pipeline import DetectorConfig
    from pi_runtime.labels import SILENCE_LABEL, UNKNOWN_LABEL
    from train.kws.streams import det_curve, realistic_stream, run_pipeline

    try:  # a missing, truncated or other task's model or sidecar, missing data
        loaded = load_kws_models([path for path in (args.model, args.verifier) if path is not None])
        stream = realistic_stream("val", data_dir=args.data_dir)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = loaded[0]
    detector = DetectorConfig.from_sidecar(model.spec)
    ungated = detector.replace(min_level_dbfs=-math.inf)
    run = run_pipeline(model, stream, config=ungated)
    posteriors = np.stack([decision.probabilities for decision in run.decisions]).astype(np.float64)
    levels = np.array([decision.level_dbfs for decision in run.decisions])
    rejection = [label for label in (UNKNOWN_LABEL, SILENCE_LABEL) if label in run.labels]

    n = detector.smoothing_windows
    base = gated(posteriors, levels, detector.min_level_dbfs)
    # (name, posteriors pooled here, replayed in place of the policy's smoothing)
    variants: List[Tuple[str, np.ndarray]] = [(f"mean {windows}", pool_posteriors(base, windows))
                                              for windows in sorted({*WINDOW_COUNTS, n})]
    variants += [(f"top-{k} of {n}", pool_posteriors(base, n, "top", k)) for k in TOP_K if k < n]
    variants.append((f"geometric {n}", pool_posteriors(base, n, "geometric")))
    for factor in REJECTION_SCALES if rejection else ():
        scaled = scale_labels(base, run.labels, {label: factor for label in rejection})
        variants.append((f"{'/'.join(rejection)} x{factor:g}, mean {n}", pool_posteriors(scaled, n)))
    variants.append((f"keywords to the leader, mean {n}",
                     pool_posteriors(keywords_to_leader(base, run.labels, run.keywords), n)))
    if args.verifier is not None:
        verifier = run_pipeline(loaded[1], stream, config=ungated)
        times = np.array([decision.time_s for decision in run.decisions])
        if len(verifier.decisions) != len(times) or not np.allclose(
                times, [decision.time_s for decision in verifier.decisions]):
            print("error: the verifier's windows do not line up with the model's (different hop or window)",
                  file=sys.stderr)
            return 2
        second = np.stack([decision.probabilities for decision in verifier.decisions]).astype(np.float64)
        for power in VERIFIER_POWERS:
            fused = verified(base, run.labels, second, verifier.labels, power)
            variants.append((f"x {args.verifier.name}^{power:g}, mean {n}", pool_posteriors(fused, n)))
    ranges = energy_range_db(stream.audio, stream.sample_rate_hz, [decision.time_s for decision in run.decisions],
                             run.window_duration_s)
    for least_db in PAUSE_RANGES_DB:  # the windows without the dips of a word between pauses cannot fire
        variants.append((f"pause >= {least_db:g} dB, mean {n}",
                         np.where((ranges < least_db)[:, None], 0.0, pool_posteriors(base, n))))

    mass = where_the_mass_goes(run.decisions, run.labels, run.keywords, stream)
    print(f"{args.model}: in the window that ends nearest each of the {mass['windows']:.0f} keyword clips without a "
          f"background, the right word gets {mass['right']:.2f} of the mass on average, the other keywords "
          f"{mass['other keywords']:.2f}, the other labels {mass['other labels']:.2f}; the right word leads in "
          f"{100 * mass['leads']:.1f} % of them, reaches 0.5 in {100 * mass['reaches 0.5']:.1f} % and 0.8 in "
          f"{100 * mass['reaches 0.8']:.1f} %")
    origin = "calibrated" if model.spec.detector else "defaults: the sidecar has no calibration"
    print(f"{args.model}: validation stream, {stream.duration_s / 3600:.2f} h, {len(run.decisions)} windows; "
          f"its detector: {detector.summary()} ({origin}); the rows pool the model's posteriors as they are "
          f"(temperature 1) at its gate, but the sharpened ones; each threshold chosen for "
          f"{args.target_false_alarms_per_hour:g} false alarms an hour on this stream")
    print(f"{'variant':40s} {'threshold':>9s} {'detected':>9s} {'FA/h':>7s} {'words fired':>11s}")
    # The policy's own smoothing at other temperatures: what listen does with such a sidecar.
    rows = [(name, pooled, detector) for name, pooled in variants]
    rows += [(f"sharpened {temperature:g}, mean {n}", None, detector.replace(temperature=temperature))
             for temperature in TEMPERATURES]
    for name, pooled, config in rows:
        curve = det_curve(run.decisions, run.labels, stream, config=config, keywords=run.keywords,
                          thresholds=THRESHOLDS, window_duration_s=run.window_duration_s, pooled=pooled)
        index = pick_threshold(curve.thresholds, curve.false_alarms_per_hour, args.target_false_alarms_per_hour)
        if index is None:
            print(f"{name:40s} {'-':>9s}  (the target is not reached at any threshold)")
            continue
        result = curve.scores[index]
        print(f"{name:40s} {curve.thresholds[index]:9g} {result.detected_percent:8.1f}% "
              f"{result.false_alarms_per_hour:7.1f} {result.words_fired_percent:10.1f}%")

    print()
    print(f"one threshold per keyword, chosen on one half of the stream ({args.target_false_alarms_per_hour:g} "
          f"false alarms an hour of it), scored on the other half; the detector's own smoothing and temperature "
          f"({detector.summary()}):")
    replays = replay_thresholds(run.decisions, run.labels, detector, THRESHOLDS, keywords=run.keywords,
                                window_duration_s=run.window_duration_s)
    middle_s = stream.duration_s / 2
    halves = [counts_per_keyword(replays, stream, run.keywords, start, end)
              for start, end in ((0.0, middle_s), (middle_s, math.inf))]
    budget = int(math.floor(args.target_false_alarms_per_hour * middle_s / 3600.0))
    print(f"{'chosen on':10s} {'rule':32s} {'detected':>9s} {'false alarms':>12s}  (on the other half)")
    for chosen, scored in ((0, 1), (1, 0)):
        detected, false_alarms = halves[chosen]
        other_detected, other_false_alarms = halves[scored]
        one = pick_threshold(THRESHOLDS, false_alarms.sum(axis=0), budget)
        if one is not None:
            print(f"half {chosen + 1:<5d} {f'one threshold ({THRESHOLDS[one]:.2f})':32s} "
                  f"{int(other_detected[:, one].sum()):9d} {int(other_false_alarms[:, one].sum()):12d}")
        try:
            columns = thresholds_per_keyword(detected, false_alarms, budget)
        except ValueError as error:
            print(f"half {chosen + 1:<5d} {'one per keyword':32s} ({error})")
            continue
        rows = range(len(run.keywords))
        spent = sum(int(other_false_alarms[row, column]) for row, column in zip(rows, columns))
        print(f"half {chosen + 1:<5d} {'one per keyword':32s} "
              f"{sum(int(other_detected[row, column]) for row, column in zip(rows, columns)):9d} {spent:12d}  "
              + ", ".join(f"{keyword} {THRESHOLDS[column]:.2f}" for keyword, column in zip(run.keywords, columns)))
        # Like for like: the most one threshold detects there with no more false alarms (a DET point).
        within = other_false_alarms.sum(axis=0) <= spent
        if within.any():
            most = int(np.max(other_detected.sum(axis=0)[within]))
            print(f"{'':10s} {'(one threshold, as many FAs)':32s} {most:9d} {f'<= {spent}':>12s}")
    return 0


if __name__ == "__main__":
    run_command(main)
