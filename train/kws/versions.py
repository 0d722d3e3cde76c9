"""The delivered keyword-spotting versions: their limits and the configuration that meets them.

Limits (course, Raspberry Pi 4; sizes in kB = 1000 bytes of the delivered file):

=======  ==========  =========  ========================  =====================
version  accuracy    size       latency                   (one thread, 100 runs)
=======  ==========  =========  ========================  =====================
a        > 90 %      < 25 kB
b        > 90 %      < 35 kB    inference < 1.5 ms
c        > 90 %      < 45 kB    total < 40 ms
=======  ==========  =========  ========================  =====================

A keyword subset has its own accuracy bar where one is known (go/stop: >= 99 %).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from native.params import FrontendParams
from train.kws.augment import AugmentConfig
from train.kws.data import LABELS
from train.kws.training import RunConfig, RunResult

if TYPE_CHECKING:  # the annotations only; the functions import it when called
    from train.toolbox.limits import Limit

KB = 1000  # bytes; the stricter reading of "kB"

MFCC_FRONTEND = FrontendParams(sample_rate_hz=16000, frame_length_samples=640, frame_step_samples=320,
                               feature_kind="mfcc", num_mel_bins=40, lower_edge_hz=20.0,
                               upper_edge_hz=4000.0, num_mfccs=10)
# Every recipe below was chosen on validation only, one change at a time, by one rule: a run is taken when its
# clean validation accuracy is not lower and its mean over peak -40 dBFS, RT60 0.6 s, babble 10 dB SNR and the
# validation voice is higher (`python -m train.kws.robustness --split val OLD NEW`). The ablation
# (models/kws/ablation/ablation.md) found PCEN the largest single gain (log-mel on the same 10 bins lost 6 points
# at -40 dBFS: PCEN's per-channel gain control makes the level matter less) and babble in training the largest
# under babble (+21 points); PCEN's own settings are Wang et al.'s (a faster or slower gain control, a smaller
# exponent or root did not help, 2026-12-03). Every run since, taken or not, with its figures:
# models/kws/README.md.
PCEN_FRONTEND = FrontendParams(sample_rate_hz=16000, frame_length_samples=640, frame_step_samples=320,
                               feature_kind="pcen", num_mel_bins=10, lower_edge_hz=20.0, upper_edge_hz=4000.0)
ROBUST_AUGMENT = AugmentConfig(reverb_probability=0.3, babble_probability=0.3)
# Babble at 0-15 dB SNR instead of 5-20 and 60 epochs instead of 40: taken by c, a and go/stop (2026-12-02).
# An exponential moving average of the weights (train/toolbox/weight_averaging.py), selected and delivered in
# place of the last step's: taken by c, then by b (with c's recipe) and a (2026-12-03); not by b's earlier model,
# go/stop or the open-set recipes. Since then no change to c has matched the delivered c's clean validation
# accuracy (97.5 %).
WEIGHT_AVERAGE_DECAY = 0.999
LOW_SNR_AUGMENT = ROBUST_AUGMENT.replace(min_snr_db=0.0, max_snr_db=15.0)


@dataclass(frozen=True)
class Version:
    """One deliverable: its limits and the run that meets them."""

    name: str
    config: RunConfig
    max_size_kb: float
    min_accuracy: float = 0.90
    max_inference_ms: Optional[float] = None
    max_total_ms: Optional[float] = None
    summary: str = ""
    synthetic_keywords: bool = False  # the training voices' synthetic keywords join training (`--synthetic-keywords`)
    # The run the version's other recipes were chosen on, where it is not ``config``: its open-set recipe, models
    # trained on a folder dataset and the ablation's rows start from it (see :attr:`base_config`).
    base: Optional[RunConfig] = None

    @property
    def base_config(self) -> RunConfig:
        """What the open-set recipe, folder datasets and the ablation start from."""
        return self.base if self.base is not None else self.config


# Version a, the smallest, learns from the delivered b and c as well as from the labels (knowledge distillation:
# +0.1 to +1.1 points of validation accuracy over three seeds), so train b and c first; its logits are then
# rescaled on validation, or its answers would be as soft as the teachers' at temperature 2 and miss a live
# detector's threshold.
A_TEACHERS = ("kws/kws_b.tflite.zlib", "kws/kws_c.tflite.zlib")
# Version b, since 2026-12-03, is c's model pruned 40 % to fit 35 kB, with c's recipe, learning from c (logits
# rescaled as a's are): 4 clean validation clips more than the b before it; without the teacher, none more.
B_TEACHERS = ("kws/kws_c.tflite.zlib",)
# b's run until 2026-12-03, a smaller model (alpha 0.25, dense, 40 epochs): the base of its open-set recipe
# (kws_live_b), of folder datasets (models that must fit a Pi's budget beside the frontend) and of the ablation's
# rows, all chosen or measured on it (the open-set b at the new b's width lost 8 validation clips).
B_BASE = RunConfig(model="ds_cnn", alpha=0.25, blocks=4, frontend=PCEN_FRONTEND, epochs=40, compress=True,
                   augment=ROBUST_AUGMENT)
# The kws_live_b delivered until 2026-12-04, kept byte-identical as the body your own words start from (and
# as the teacher of the recipes run with it): the measurements made with it stay as they were.
FIRST_LIVE_B = "kws/teachers/kws_live_b_2026-12-02.tflite.zlib"
# An open-set a learns from the open-set b and c (a teacher needs the student's _silence_ and _unknown_): those
# of 2026-12-03, kept as teachers, with which its runs were made.
OPEN_SET_A_TEACHERS = (FIRST_LIVE_B, "kws/teachers/kws_live_c_2026-12-03.tflite.zlib")
# Open-set models are delivered beside the 8-word ones under this prefix (kws_live_a, kws_live_a_go_stop).
OPEN_SET_PREFIX = "kws_live"
# Other words' test clips a keyword subset with an unknown class must answer _unknown_ (go/stop: 592 clips).
MIN_UNKNOWN_ACCURACY = 0.97
# An open-set model listens live: words at other levels, over babble or coloured noise, anywhere in the window
# as it slides. Its recipe adds some of each, with 40 % of the generated negatives (each kind alike), chosen on
# validation only (clips, negatives rejected, validation voice and the validation stream's keywords detected at
# the calibrated false-alarm rate; "Open-set runs" in models/kws/README.md). Everything tried on it since, by a
# rule fixed before each run (stream detection higher, validation clips not lower), left it as it is: more
# negatives, PCEN, the 8-word versions' rooms and babble, a wider model, negatives without halves of words, no
# label smoothing, the teachers hearing clean clips, speed perturbation, stream windows, the weight average.
# One run's stream figure moves by about two points with the seed alone. Taken since: tonal negatives
# (2026-12-04, both), babble of other words among the negatives (2026-12-05, b; c lost 3 points of the stream).
LIVE_AUGMENT = AugmentConfig(gain_probability=0.3, gain_to_peak_dbfs=True, min_gain_db=-35.0, max_gain_db=0.0,
                             babble_probability=0.25, coloured_noise_probability=0.25, min_snr_db=5.0,
                             max_snr_db=20.0, time_shift_ms=200.0)
LIVE_NEGATIVES_SHARE = 0.4
# Version c's open-set model learns from the first kws_live_c (kept as a teacher under models/kws/teachers/) and
# the delivered kws_live_b as well as from the labels (since 2026-12-04 the kws_live_b trained with tonal
# negatives: the one before fires on tones and would teach the student to): against a control without
# teachers, about two points of the validation stream and a few validation clips. b's open-set model with the
# same teachers gained five points of the stream but lost validation clips, so it keeps none.
# The kws_live_b it learnt from (delivered 2026-12-04 to 2026-12-05) is kept byte-identical under teachers/; the
# sidecar of the kws_live_c delivered names it kws/kws_live_b.tflite.zlib, as it was called then.
OPEN_SET_C_TEACHERS = ("kws/teachers/kws_live_c_2026-12-02.tflite.zlib",
                       "kws/teachers/kws_live_b_2026-12-04.tflite.zlib")
# Windows cut from a stream of the training split (train/kws/stream_windows.py) for this share of the training
# keyword clips, and as many negative windows: 0.5 lowered the validation stream and clips (2026-12-03), so off;
# the option stays for other shares.
LIVE_STREAM_WINDOWS_SHARE = 0.0
OPEN_SET_FRONTEND = MFCC_FRONTEND
# The weight average that c took lowered both open-set recipes' validation streams or clips, so they train
# without it.
OPEN_SET_WEIGHT_AVERAGE_DECAY = 0.0
# The detector's false-alarm budget on the validation stream (2.2 h, half the words over babble or noise
# at 5-20 dB SNR): the first kws_live_b detected 18 % of the validation words at 1 an hour, 62.6 % at 50.
LIVE_TARGET_FALSE_ALARMS_PER_HOUR = 50.0

# c's run; b is the same model pruned to fit 35 kB, learning from c.
C_CONFIG = RunConfig(model="ds_cnn", alpha=0.3125, blocks=4, frontend=PCEN_FRONTEND, epochs=60, label_smoothing=0.1,
                     compress=True, augment=LOW_SNR_AUGMENT, weight_average_decay=WEIGHT_AVERAGE_DECAY)

VERSIONS: Dict[str, Version] = {
    "a": Version(
        "a", RunConfig(model="ds_cnn", alpha=0.3125, blocks=4, frontend=PCEN_FRONTEND, epochs=60,
                       final_sparsity=0.7, compress=True, augment=LOW_SNR_AUGMENT, teachers=A_TEACHERS,
                       calibrate_temperature=True, weight_average_decay=WEIGHT_AVERAGE_DECAY),
        # without the training voices' synthetic keywords that b and c take: with them a answered 2 and 3 validation
        # clips fewer right (2026-12-02, 2026-12-03)
        max_size_kb=25, summary="accuracy > 90 %, file < 25 kB"),
    "b": Version(
        "b", C_CONFIG.replace(final_sparsity=0.4, teachers=B_TEACHERS, calibrate_temperature=True),
        max_size_kb=35, max_inference_ms=1.5, summary="accuracy > 90 %, file < 35 kB, inference < 1.5 ms",
        synthetic_keywords=True, base=B_BASE),
    "c": Version(
        "c", C_CONFIG,
        max_size_kb=45, max_total_ms=40, summary="accuracy > 90 %, file < 45 kB, total latency < 40 ms",
        synthetic_keywords=True),
}

# Accuracy bars for keyword subsets (the go/stop classifier of one course report: 99 % at 23.5 kB).
SUBSET_MIN_ACCURACY: Dict[Tuple[str, ...], float] = {("go", "stop"): 0.99}


# Training changes for keyword subsets, chosen on validation. go/stop: learn all eight words (6400 training
# clips instead of 1600), then keep the go and stop outputs and fine-tune that head (validation, seeds 0-2:
# 97.97 / 98.98 / 97.46 % against 97.97 / 96.95 / 97.46 % for the go/stop clips alone). Tried since by the versions'
# rule and not taken (models/kws/README.md): quiet training words (taken by the rule, then failed the live check
# of tests/test_listen.py), the weight average, distillation from b and c; a's wider model was taken.
SUBSET_CONFIG_CHANGES: Dict[Tuple[str, ...], Dict] = {
    ("go", "stop"): dict(train_on_all_words=True, head_epochs=10, teachers=(), calibrate_temperature=False,
                         weight_average_decay=0.0),
}


def config_for(version: Version, labels: Sequence[str], *, open_set: bool = False) -> RunConfig:
    """The run configuration of ``version`` for ``labels`` (subset-specific changes applied)."""
    subset = tuple(sorted(labels))
    changes = SUBSET_CONFIG_CHANGES.get(subset)
    config = version.base_config if open_set else version.config
    config = config.replace(**changes) if changes else config
    if open_set:  # the live recipe replaces any closed-set augmentation, a subset's too
        config = config.replace(augment=LIVE_AUGMENT, frontend=OPEN_SET_FRONTEND,
                                weight_average_decay=OPEN_SET_WEIGHT_AVERAGE_DECAY)
        if config.teachers == A_TEACHERS:
            config = config.replace(teachers=OPEN_SET_A_TEACHERS)
        elif version.name == "c" and subset == tuple(sorted(LABELS)):  # teachers of all eight words
            config = config.replace(teachers=OPEN_SET_C_TEACHERS)
    return config


def min_accuracy_for(version: Version, labels: Sequence[str]) -> Tuple[float, str]:
    """The accuracy bar for ``labels`` and whether it must be exceeded (``>``) or met (``>=``)."""
    bar = SUBSET_MIN_ACCURACY.get(tuple(sorted(labels)))
    return (bar, ">=") if bar is not None else (version.min_accuracy, ">")


def limits_for(version: Version, result: RunResult, labels: Sequence[str]) -> List[Limit]:
    """One :class:`~train.toolbox.limits.Limit` per requirement of ``version``."""
    from pi_runtime.labels import UNKNOWN_LABEL, keyword_labels
    from train.toolbox.limits import Limit

    keywords = keyword_labels(labels)
    bar, op = min_accuracy_for(version, keywords)
    if result.num_unknown_clips:  # the bar is for the keyword clips; unknown predictions count as errors
        limits = [Limit(f"test accuracy ({'/'.join(keywords)} clips)", 100.0 * result.keyword_accuracy,
                        100.0 * bar, "%", op),
                  Limit(f"other words answered {UNKNOWN_LABEL}", 100.0 * result.unknown_accuracy,
                        100.0 * MIN_UNKNOWN_ACCURACY, "%", ">=")]
    else:  # every test clip is a keyword (an answer _silence_ or _unknown_ is an error)
        limits = [Limit("test accuracy", 100.0 * result.accuracy, 100.0 * bar, "%", op)]
    limits.append(Limit("file size", result.size_bytes / KB, version.max_size_kb, "kB", "<"))
    if version.max_inference_ms is not None:
        limits.append(Limit("inference latency (mean)", result.inference_ms["mean"], version.max_inference_ms, "ms"))
    if version.max_total_ms is not None:
        limits.append(Limit("total latency (mean)", result.total_ms["mean"], version.max_total_ms, "ms"))
    return limits


def limits_from_sidecar(sidecar: Dict) -> Optional[List[Limit]]:
    """The limits of a delivered model, from the results its sidecar records (None if it names no version)."""
    from train.kws.training import RunResult

    version = VERSIONS.get(sidecar.get("training", {}).get("version"))
    results = sidecar.get("results") or {}
    if version is None or not results:
        return None
    keyword_accuracy = results.get("keyword_accuracy")
    result = RunResult(
        path=Path("."), accuracy=results["test_accuracy"], val_accuracy=float("nan"),
        size_bytes=results["size_bytes"], tflite_bytes=results["tflite_bytes"], zlib_bytes=results["zlib_bytes"],
        sparsity=results.get("weight_sparsity", 0.0), inference_ms=results["inference_ms"],
        total_ms=results["total_ms"], train_seconds=0.0, run_seconds=0.0, num_test_clips=results["test_clips"],
        best_epoch=-1, parameters=results.get("parameters", 0),
        keyword_accuracy=float("nan") if keyword_accuracy is None else keyword_accuracy,
        unknown_accuracy=results.get("unknown_accuracy", float("nan")),
        num_unknown_clips=results.get("unknown_clips", 0))
    return limits_for(version, result, sidecar["labels"])


def model_file_stem(version: str, labels: Sequence[str], all_labels: Sequence[str], *, open_set: bool = False) -> str:
    """``kws_a`` for all labels, ``kws_a_go_stop`` for a subset; ``kws_live_a``, ``kws_live_a_go_stop`` open-set."""
    stem = f"{OPEN_SET_PREFIX if open_set else 'kws'}_{version}"
    return stem if tuple(labels) == tuple(all_labels) else stem + "_" + "_".join(labels)
