"""Replay a keyword spotter's stored window posteriors with other detector settings (no model runs).

The live pipeline keeps, for every window, its time, level and posteriors
(:class:`pi_runtime.kws_pipeline.Decision`). :func:`replay` gives the
detections another threshold, smoothing, temperature or energy gate would have made on
them, :func:`replay_thresholds` does so for a whole grid of thresholds in one
pass, and :func:`pick_threshold` chooses the lowest threshold from which on
false alarms stay within a budget. The calibration on the validation stream
(``train.kws.calibrate``) and the tuning to a room's own sound
(``pi_runtime.tune``) both use them; this module needs no TensorFlow, scipy
or ``train`` (NumPy and the native package), so it runs on the Pi.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from pi_runtime.kws_pipeline import Decision, Detection, DetectionPolicy, DetectorConfig

# Finer near 1, where a confident model's false alarms are decided (and where posteriors sharpened by a
# temperature under 1 crowd: up to 0.9999); down to 0.1, where a model listened to for a few of its words
# (their posteriors smoothed over several windows) may find its best point.
DEFAULT_THRESHOLDS = tuple(float(t) for t in np.round(np.concatenate(
    [np.arange(10, 90, 2) / 100, np.arange(900, 995, 5) / 1000, [0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999]]), 4))


def replay(decisions: Sequence[Decision], labels: Sequence[str], config: DetectorConfig, *,
           keywords: Optional[Sequence[str]] = None, window_duration_s: float = 1.0) -> List[Detection]:
    """Detections the policy would make with ``config`` on stored per-window posteriors.

    Windows the stored run did not classify (``probabilities`` None) stay gated;
    the others are gated by ``config.min_level_dbfs`` from their stored level.
    """
    policy = DetectionPolicy(labels, config, window_duration_s=window_duration_s, keywords=keywords)
    detections = []
    for decision in decisions:
        probabilities = None if policy.is_gated(decision.level_dbfs) else decision.probabilities
        detection = policy.update(probabilities, decision.time_s)
        if detection is not None:
            detections.append(detection)
    return detections


def replay_thresholds(decisions: Sequence[Decision], labels: Sequence[str], config: DetectorConfig,
                      thresholds: Sequence[float], *, keywords: Optional[Sequence[str]] = None,
                      window_duration_s: float = 1.0,
                      pooled: Optional[np.ndarray] = None) -> List[List[Detection]]:
    """:func:`replay` at every threshold in one pass: element k holds the detections at ``thresholds[k]``.

    The smoothing does not depend on the threshold, so each window is smoothed
    once (by the policy's own smoother) and the policy's rule (re-arm, refractory
    period, keywords only, beating ``_unknown_``/``_silence_``) is applied to all
    thresholds at once, as arrays. Tested equal to :func:`replay` threshold by threshold.

    ``pooled`` (float[windows, labels]), when given, replaces the policy's smoothing: row k is
    what window k's decision sees (``benchmarks.detector_variants`` compares other poolings);
    the gate still decides which windows may fire.
    """
    policy = DetectionPolicy(labels, config, window_duration_s=window_duration_s, keywords=keywords)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    refractory_s = config.refractory_ms / 1000.0
    refractory_until = np.full(thresholds.size, -np.inf)
    last_fired = np.full(thresholds.size, -1)
    rivals = list(policy.rival_indices)
    found: List[List[Detection]] = [[] for _ in thresholds]
    if pooled is not None and np.shape(pooled) != (len(decisions), len(policy.labels)):
        raise ValueError(f"pooled must be [{len(decisions)} windows, {len(policy.labels)} labels], "
                         f"got {np.shape(pooled)}")
    for row, decision in enumerate(decisions):
        probabilities = None if policy.is_gated(decision.level_dbfs) else decision.probabilities
        if pooled is None:
            best = policy.smooth(probabilities)
            smoothed = policy.smoothed
        else:
            smoothed = pooled[row]
            best = int(np.argmax(smoothed))
        armed = last_fired >= 0
        if armed.any():  # re-arm where the label that fired has fallen below the threshold
            fallen = armed & (smoothed[np.maximum(last_fired, 0)] < thresholds)
            last_fired[fallen] = -1
        if probabilities is None or not policy.can_fire[best]:
            continue
        score = float(smoothed[best])
        if rivals and smoothed[rivals].max() >= score:
            continue
        time_s = decision.time_s
        fire = (score >= thresholds) & (time_s >= refractory_until) & (last_fired != best)
        if not fire.any():
            continue
        refractory_until[fire] = time_s + refractory_s
        last_fired[fire] = best
        detection = Detection(label=policy.labels[best], score=score, time_s=float(time_s),
                              window_start_s=float(time_s) - window_duration_s)
        for k in np.flatnonzero(fire):
            found[k].append(detection)
    return found


def pick_threshold(thresholds: np.ndarray, false_alarms_per_hour: np.ndarray, target: float) -> Optional[int]:
    """Index of the lowest threshold from which on every higher one meets ``target``; None if the highest fails.

    False alarms do not always fall with the threshold (a label that stays up is
    reported once, re-armed only when it falls below), hence "every higher one".
    """
    order = np.argsort(thresholds)
    meets = np.asarray(false_alarms_per_hour)[order] <= target
    if not meets[-1]:
        return None
    failing = np.flatnonzero(~meets)
    return int(order[failing[-1] + 1 if failing.size else 0])
