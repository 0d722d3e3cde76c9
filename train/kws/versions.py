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
from typing import Dict, List, Optional, Sequence, Tuple

from native.params import FrontendParams
from train.kws.augment import AugmentConfig
from train.kws.data import LABELS
from train.kws.training import RunConfig, RunResult

KB = 1000  # bytes; the stricter reading of "kB"

MFCC_FRONTEND = FrontendParams(sample_rate_hz=16000, frame_length_samples=640, frame_step_samples=320,
                               feature_kind="mfcc", num_mel_bins=40, lower_edge_hz=20.0,
                               upper_edge_hz=4000.0, num_mfccs=10)
# The recipe of the delivered versions, chosen on validation with `python -m train.kws.ablation`
# (models/kws/ablation/ablation.md: version b's recipe for 20 epochs, one change at a time, then together;
# validation accuracy clean / peak -40 dBFS / RT60 0.6 s / babble 10 dB SNR / validation synthetic voice):
#   the course's MFCCs, time shift, white noise, one time mask        95.1 / 91.8 / 89.5 / 60.0 / 99.4 %
#   PCEN on 10 mel bins instead of the MFCCs                          96.1 / 95.9 / 92.0 / 70.5 / 99.1 %
#   + rooms (RT60 0.2-1 s) and babble (5-20 dB SNR) on 30 % each      96.1 / 95.6 / 93.8 / 85.6 / 99.7 %  (kept)
#   + random peak levels -45..0 dBFS                                  96.5 / 96.2 / 93.9 / 84.8 / 97.2 %
#   + babble on 60 % instead, + speed perturbation                    95.5-96.6 / 95.2-95.5 / 93.4-94.0 / 85.0-85.6
# Alone, PCEN was the largest gain (log-mel on the same 10 bins lost 6 points at -40 dBFS: PCEN's
# per-channel gain control is what makes the level matter less); babble alone gave +21 points under babble.
PCEN_FRONTEND = FrontendParams(sample_rate_hz=16000, frame_length_samples=640, frame_step_samples=320,
                               feature_kind="pcen", num_mel_bins=10, lower_edge_hz=20.0, upper_edge_hz=4000.0)
ROBUST_AUGMENT = AugmentConfig(reverb_probability=0.3, babble_probability=0.3)
# Babble at 0-15 dB SNR instead of 5-20 (ablation, b for 20 epochs: validation babble 10 dB 86.9 % against 85.6 %,
# within one run's noise), trained for 60 epochs instead of 40. Each version took it only where its validation
# clean accuracy did not drop and the mean over the bar conditions rose (`python -m train.kws.robustness --split
# val`, 2026-12-02; clean / -40 dBFS / RT60 0.6 s / babble 10 dB / validation voice):
#   c        96.5 / 96.4 / 95.1 / 88.1 / 95.9 -> 96.8 / 97.0 / 95.4 / 89.9 / 97.5 %  (taken)
#   b        97.0 / 96.5 / 93.6 / 88.2 / 97.5 -> 96.5 / 96.0 / 95.2 / 88.9 / 97.8 %  (not taken: 4 clean clips fewer;
#            seed 1: 96.6 / 96.1 / 94.2 / 87.6 / 98.4 %, not taken either)
#            c's model at b's limit (alpha 0.3125, 40 % sparsity, label smoothing, 32.6 kB), same rule:
#              alone            96.8 / 96.4 / 95.2 / 88.1 / 98.1 %  (not taken: 2 clean clips fewer)
#              distilled from c 96.8 / 96.6 / 94.8 / 89.5 / 98.4 %  (not taken: 2 clean clips fewer)
#            b's own recipe distilled from c (logits rescaled, 40 epochs), seed 0 and seed 1:
#              96.2 / 96.2 / 94.6 / 88.5 / 99.7 %  (not taken: 6 clean clips fewer)
#              97.0 / 95.9 / 94.5 / 87.1 / 95.0 %  (not taken: clean equal, mean 93.1 against 94.0)
#   a        96.4 / 96.1 / 94.9 / 86.6 / 97.8 -> 96.9 / 96.5 / 95.0 / 88.6 / 97.8 %  (taken; teachers b and the new c)
#   go/stop  98.5 / 98.5 / 96.4 / 95.9 / 100  -> 98.5 / 98.5 / 97.0 / 95.4 / 100 %   (taken, by 0.1 point of mean)
# Later, a wider a under the same rule (its teachers, recipe and 60 epochs unchanged; clean from 775 to 776 clips):
#   alpha 0.3125 pruned 70 %, 24.6 kB  -> 97.0 / 96.5 / 95.1 / 88.4 / 98.1 %  (taken: +1 clean clip, mean +0.05)
#   alpha 0.28125 pruned 60 %, 23.7 kB -> 96.8 / 96.1 / 93.9 / 89.8 / 97.5 %  (not taken: 1 clean clip fewer)
# Then c with the training voices' synthetic keywords (320 clips) joined to training, the same rule:
#   c        96.8 / 97.0 / 95.4 / 89.9 / 97.5 -> 97.4 / 97.1 / 95.5 / 89.5 / 99.4 %  (taken: 5 clean clips more,
#            mean +0.4)
#   b        97.0 / 96.5 / 93.6 / 88.2 / 97.5 -> 95.9 / 96.1 / 94.4 / 84.9 / 96.2 %  (not taken: 9 clean clips fewer)
#   a        97.0 / 96.5 / 95.1 / 88.4 / 98.1 -> 96.8 / 96.4 / 94.6 / 89.8 / 99.1 %  (not taken: 2 clean clips fewer;
#            teachers b and this c)
# Then, for babble, c wider and c taught by a wider c, the same rule (2026-12-02, night):
#   alpha 0.375 pruned 55 %, 38.4 kB        97.4 / 97.1 / 95.5 / 89.5 / 99.4 -> 97.0 / 96.6 / 94.8 / 89.2 / 100 %
#                                           (not taken: 3 clean clips fewer)
#   distilled from an alpha 0.625 c (119 kB; itself 97.4 / 96.8 / 95.6 / 90.5 / 99.4 %) and the delivered c,
#   logits rescaled                         -> 96.8 / 96.4 / 95.2 / 89.6 / 98.8 %  (not taken: 5 clean clips fewer)
#   c's own recipe, seed 1                  -> 97.1 / 96.1 / 94.9 / 88.9 / 99.7 %  (not taken: 2 clean clips fewer)
#   c's own recipe, 90 epochs               -> 97.4 / 96.4 / 94.8 / 89.2 / 100 %   (not taken: clean equal, mean -0.3)
#   babble on 50 % of clips                 -> 96.8 / 95.9 / 94.1 / 90.0 / 99.4 %  (not taken: 5 clean clips fewer)
#   babble of 6 talkers                     -> 96.8 / 96.6 / 95.1 / 88.6 / 99.7 %  (not taken: 5 clean clips fewer)
#   a's own recipe, seed 1: 97.0 / 96.5 / 95.1 / 88.4 / 98.1 -> 96.8 / 96.6 / 95.4 / 86.9 / 97.8 %  (not taken: 2 clean
#   clips fewer; test, printed by its log: 95.88 % against 95.12 %)
# Then c with a third training speaker for its synthetic keywords (festival ked_diphone, 2026-12-03):
#   seed 0                                  -> 96.6 / 96.8 / 94.6 / 89.6 / 99.7 %  (not taken: 6 clean clips fewer)
#   seed 1                                  -> 96.1 / 96.1 / 93.5 / 88.6 / 98.1 %  (not taken: 10 clean clips fewer)
# Then an exponential moving average of the weights (decay 0.999 per step, selected and delivered in place of the
# last step's; train/toolbox/weight_averaging.py), the same rule (2026-12-03):
#   c        97.4 / 97.1 / 95.5 / 89.5 / 99.4 -> 97.5 / 97.4 / 95.5 / 90.4 / 98.8 %  (taken: 1 clean clip more,
#            mean +0.15; kws_c since)
#   b        97.0 / 96.5 / 93.6 / 88.2 / 97.5 -> 96.4 / 96.1 / 94.2 / 86.2 / 95.6 %  (not taken: 5 clean clips fewer)
#   a        97.0 / 96.5 / 95.1 / 88.4 / 98.1 -> 96.9 / 96.6 / 94.2 / 87.8 / 97.8 %  (not taken: 1 clean clip fewer;
#            teachers the b of then and this c)
# and, once b had become c's model learning from c (B_TEACHERS below), a's recipe with the new b and c as teachers:
#   without the average                       -> 96.5 / 96.2 / 94.8 / 88.2 / 99.4 %  (not taken: 4 clean clips fewer)
#   with it                                   -> 97.1 / 96.5 / 94.6 / 88.4 / 99.1 %  (taken: 1 clean clip more,
#            mean 94.65 against 94.53; kws_a since)
# c distilled from the delivered c and b (a student of its own size), logits rescaled, with the average (2026-12-03):
#   97.5 / 97.4 / 95.5 / 90.4 / 98.8 -> 96.9 / 96.2 / 94.4 / 88.5 / 98.4 %  (not taken: 5 clean clips fewer)
# c with two time masks and one mask of up to 2 PCEN bins (SpecAugment; 2026-12-03):
#   97.5 / 97.4 / 95.5 / 90.4 / 98.8 -> 96.9 / 96.6 / 94.5 / 87.6 / 98.1 %  (not taken: 5 clean clips fewer)
# During training the averaged weights score far above the step's (c, epoch 15: 95.9 against 91.6 % on
# validation); by the last epochs, at a small learning rate, the two agree.
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


# Version a, the smallest, learns from the delivered b and c as well as from the labels (knowledge
# distillation; validation accuracy, seeds 0-2: 97.50/96.50/97.00 % against 96.37 % for each without
# it), so train b and c first; its logits are then rescaled on validation, or its answers would be
# as soft as the teachers' at temperature 2 and miss a live detector's threshold.
A_TEACHERS = ("kws/kws_b.tflite.zlib", "kws/kws_c.tflite.zlib")
# Version b, since 2026-12-03, is c's model pruned 40 % to fit 35 kB, with c's recipe, learning from c (logits
# rescaled as a's are). Two runs, side by side, seed 0, the rule of the versions (clean / -40 dBFS / RT60 0.6 s /
# babble 10 dB / validation voice, `python -m train.kws.robustness --split val OLD NEW`):
#   delivered b (alpha 0.25, 40 epochs)  97.0 / 96.5 / 93.6 / 88.2 / 97.5 %
#   c's recipe and weight average        97.0 / 96.4 / 95.4 / 88.8 / 98.8 %  (clean equal, mean +0.9)
#   the same, distilled from c           97.5 / 96.8 / 96.1 / 88.9 / 99.4 %  (taken: 4 clean clips more, mean +1.35)
# (the training logs printed test accuracy before the comparison: 95.38 and 96.50 %, the b before 96.12 %). The
# same model without the synthetic keywords and the weight average lost 2 clean validation clips, alone and
# distilled (2026-12-02).
B_TEACHERS = ("kws/kws_c.tflite.zlib",)
# b's run until 2026-12-03, a smaller model (alpha 0.25, dense, 40 epochs): the base of its open-set recipe
# (kws_live_b), of folder datasets (models that must fit a Pi's budget beside the frontend) and of the
# ablation's rows, all chosen or measured on it. The open-set b at the new b's width (alpha 0.3125, pruned 40 %,
# label smoothing, 60 epochs, kws_live_c's teachers; 2026-12-03, seed 0; rule: validation stream above 69.8 %,
# validation clips not below 95.4 %): clips 94.4 %, negatives 84.4 %, voice 68.1 %, stream 73.2 % at 46.8 false
# alarms an hour (2.7 % of the words fired): not taken (test, printed by its log: 94.62 %).
B_BASE = RunConfig(model="ds_cnn", alpha=0.25, blocks=4, frontend=PCEN_FRONTEND, epochs=40, compress=True,
                   augment=ROBUST_AUGMENT)
# An open-set a learns from the open-set b and c (a teacher needs the student's _silence_ and _unknown_).
OPEN_SET_A_TEACHERS = ("kws/kws_live_b.tflite.zlib", "kws/kws_live_c.tflite.zlib")
# Open-set models are delivered beside the 8-word ones under this prefix (kws_live_a, kws_live_a_go_stop).
OPEN_SET_PREFIX = "kws_live"
# Other words' test clips a keyword subset with an unknown class must answer _unknown_ (go/stop: 592 clips).
MIN_UNKNOWN_ACCURACY = 0.97
# An open-set model listens live: words at other levels, over babble or coloured noise, anywhere in the
# window as it slides. A first run with every clip augmented harder (half the clips at peaks of -45..0 dBFS
# under the fixed white noise, a fifth each over babble, coloured noise and in a room) and all 5880
# generated negatives gave kws_live_b 83.5 % on the test clips (87 words answered _unknown_); the recipe
# kept adds some of each, with 40 % of the negatives (each kind alike). Compared on validation only, with
# --synthetic-keywords (validation keywords / negatives rejected / val-voice synthetic keywords / val stream
# detected at 50 false alarms an hour, gate -55 dBFS):
#   babble and coloured noise 0.1 each, shift 100 ms, no synthetic keywords  93.6 / 87.9 / 55.6 / 62.6 %
#   the same with synthetic keywords                                           94.9 / 85.4 / 79.4 / 63.0 %
#   babble and coloured noise 0.25 each                                        94.1 / 85.4 / 70.3 / 65.2 %
#   babble and coloured noise 0.25 each, shift 200 ms (kept)                   95.4 / 84.9 / 71.9 / 66.8 %
LIVE_AUGMENT = AugmentConfig(gain_probability=0.3, gain_to_peak_dbfs=True, min_gain_db=-35.0, max_gain_db=0.0,
                             babble_probability=0.25, coloured_noise_probability=0.25, min_snr_db=5.0,
                             max_snr_db=20.0, time_shift_ms=200.0)
LIVE_NEGATIVES_SHARE = 0.4
# More of them on kws_live_c's recipe (2026-12-02, 60 epochs; validation clips / negatives rejected / validation
# stream detected at 50 false alarms an hour; rule fixed before: stream up, clips not down): 0.4 (delivered,
# 40 epochs) 95.8 / 83.8 / 75.2 %; 0.7: 93.1 / 89.4 / 75.9 %; all: 94.4 / 91.2 / 76.4 % (2.3 % of the words
# fired, against 3.8 %). Neither taken: the stream gains a point, the clips lose one to three.
# The open-set recipe was chosen on the course's MFCCs. One run of kws_live_c's recipe on PCEN (10 mel bins,
# the 8-word versions' frontend since 2026-12-02) detected 71.8 % of the validation stream's keywords at its
# calibrated 50 false alarms an hour, against 75.2 % for the MFCC kws_live_c, so the MFCCs stay here.
# Nor did the 8-word versions' rooms and babble help here: kws_live_c's recipe with 30 % of clips in rooms and
# babble at 0-15 dB SNR detected 72.5 % at 50 an hour on MFCC and 72.5 % on PCEN (2026-12-02, rule fixed
# before: stream detection up, validation clips not down); babble negatives rejected fell from 45 to 25-29 %.
# A wider kws_live_c (alpha 0.375, pruned 55 %, 38.6 kB, 60 epochs): validation stream 77.5 % at 50 an hour, 3.3 % of
# the words fired, but validation clips 95.4 % against 95.8 %: not taken (2026-12-02, night). Seeds 1 and 2 of it:
# 74.9 and 73.6 % on the stream (clips 95.6 / 95.0 %), so one run's stream figure moves by about +-2 points with
# the seed, as large as most differences between the recipes above.
# Nor did leaving the halves of words (and the splices) out of the negatives, on the guess that a window sliding
# over a keyword sees half a word and learns to call it _unknown_: 72.8 % (63.9 % without splices either).
# Nor did training without label smoothing (it is said to blur rejection of unseen inputs; 2026-12-03, 60 epochs,
# seeds 0 and 1): validation stream 72.8 and 70.0 % at the calibrated 50 an hour, against 75.2 %.
# Version c's open-set model learns from the answers of the open-set models delivered before it (the first
# kws_live_c, kept as a teacher under models/kws/teachers/, and kws_live_b) as well as from the labels
# (2026-12-03, 60 epochs; rule fixed before: validation stream above 75.2 %, validation clips not below 95.8 %;
# validation clips / negatives rejected / validation voice / stream detected at the calibrated 50 an hour):
#   seed 0  95.8 / 82.3 / 77.8 / 74.2 %  (2.4 % of the words fired)
#   seed 1  95.8 / 82.7 / 82.2 / 76.4 %  (3.0 % of the words fired; taken, the kws_live_c delivered since)
# Over the two seeds the stream is where the first kws_live_c (40 epochs, seed 0) had it (75.3 against 75.2 %),
# but the same recipe without teachers for the same 60 epochs does worse (afterwards, as a control; seeds 1 and 2):
#   no teachers, seed 1  94.8 / 80.4 / 97.2 / 74.0 %;  seed 2  95.6 / 82.1 / 78.1 / 73.0 %
# so the teachers are worth about two points of the stream and a few validation clips.
# The same teachers for b's open-set model (its own recipe, 40 epochs; rule fixed before: stream above kws_live_b's
# 69.8 %, validation clips not below its 95.4 %): seed 0 95.0 / 82.8 / 75.3 / 74.2 %, seed 1 94.6 / 86.2 / 75.3 /
# 74.8 %. Both seeds gain five points of the stream but lose 3 and 6 validation clips: not taken, b keeps none.
# Then, on the delivered recipe (seed 1, 60 epochs; rule fixed before: validation stream above 76.4 %, validation
# clips not below 95.8 %; 2026-12-03): 70 % of the negatives (--negatives-share 0.7) 95.1 / 88.1 / 68.1 / 76.5 %
# (2.3 % of the words fired), clips lower; the delivered kws_live_c as a third teacher 94.4 / 82.5 / 79.1 / 67.5 %
# (a student of a student learns less). Neither taken. Seed 2 of the delivered recipe: 95.5 / 83.7 / 80.9 / 72.5 %,
# not taken; over seeds 0-2 the stream is 74.2, 76.4 and 72.5 %. Seed 2 of b with the same teachers (rule: stream
# above 69.8 %, clips not below 95.4 %): 94.5 / 78.4 / 88.8 / 70.5 %, not taken.
# The delivered recipe with its teachers hearing the clean clips while the student hears them augmented
# (--teachers-hear clean, seed 1; same rule): 95.5 / 80.4 / 77.2 / 77.0 % (2.8 % of the words fired); the stream
# gains 0.6 points, the clips lose 2: not taken.
# Speed perturbation (0.9-1.1) on half the clips, added to LIVE_AUGMENT (2026-12-03; same rules): c (seed 1, its
# teachers) 96.1 / 84.6 / 78.4 / 72.9 % (3.3 % of the words fired), the stream lower: not taken; b (seed 0)
# 94.8 / 84.3 / 85.9 / 74.6 % (2.8 %), the stream 4.8 points higher but 5 validation clips fewer: not taken.
OPEN_SET_C_TEACHERS = ("kws/teachers/kws_live_c_2026-12-02.tflite.zlib", "kws/kws_live_b.tflite.zlib")
# Windows cut from a stream of the training split (train/kws/stream_windows.py), for this share of the
# training keyword clips and as many negative windows, so the model learns words wherever the sliding window
# catches them: with 0.5 (2026-12-03, 60 epochs, seeds 0 and 1; rule fixed before: validation stream above
# 75.2 %, validation clips not below 95.8 %) the validation stream detected 74.6 and 68.1 % at the calibrated
# 47-50 an hour, the validation clips fell to 94.6 and 92.5 %. Not taken; the option stays for other shares.
LIVE_STREAM_WINDOWS_SHARE = 0.0
OPEN_SET_FRONTEND = MFCC_FRONTEND
# The weight average that c took (WEIGHT_AVERAGE_DECAY) on kws_live_c's recipe (seed 1, 2026-12-03; rule: validation
# stream above 76.4 %, validation clips not below 95.8 %): 95.5 / 84.0 / 79.7 / 74.8 % (3.3 % of the words fired);
# on kws_live_b's (rule: stream above 69.8 %, clips not below 95.4 %): 95.2 / 82.1 / 81.6 / 70.6 % (2.8 %). Neither
# taken, so the open-set recipes train without it.
OPEN_SET_WEIGHT_AVERAGE_DECAY = 0.0
# The detector's false-alarm budget on the validation stream (2.2 h, half the words over babble or noise
# at 5-20 dB SNR): the first kws_live_b detected 18 % of the validation words at 1 an hour, 62.6 % at 50.
LIVE_TARGET_FALSE_ALARMS_PER_HOUR = 50.0

VERSIONS: Dict[str, Version] = {
    "a": Version(
        "a", RunConfig(model="ds_cnn", alpha=0.3125, blocks=4, frontend=PCEN_FRONTEND, epochs=60,
                       final_sparsity=0.7, compress=True, augment=LOW_SNR_AUGMENT, teachers=A_TEACHERS,
                       calibrate_temperature=True, weight_average_decay=WEIGHT_AVERAGE_DECAY),
        max_size_kb=25, summary="accuracy > 90 %, file < 25 kB"),
    "b": Version(
        "b", RunConfig(model="ds_cnn", alpha=0.3125, blocks=4, frontend=PCEN_FRONTEND, epochs=60, final_sparsity=0.4,
                       label_smoothing=0.1, compress=True, augment=LOW_SNR_AUGMENT, teachers=B_TEACHERS,
                       calibrate_temperature=True, weight_average_decay=WEIGHT_AVERAGE_DECAY),
        max_size_kb=35, max_inference_ms=1.5, summary="accuracy > 90 %, file < 35 kB, inference < 1.5 ms",
        synthetic_keywords=True, base=B_BASE),
    "c": Version(
        "c", RunConfig(model="ds_cnn", alpha=0.3125, blocks=4, frontend=PCEN_FRONTEND, epochs=60,
                       label_smoothing=0.1, compress=True, augment=LOW_SNR_AUGMENT,
                       weight_average_decay=WEIGHT_AVERAGE_DECAY),
        max_size_kb=45, max_total_ms=40, summary="accuracy > 90 %, file < 45 kB, total latency < 40 ms",
        synthetic_keywords=True),
}

# Accuracy bars for keyword subsets (the go/stop classifier of one course report: 99 % at 23.5 kB).
SUBSET_MIN_ACCURACY: Dict[Tuple[str, ...], float] = {("go", "stop"): 0.99}


# Training changes for keyword subsets, chosen by validation accuracy. go/stop: learn all eight words
# (6400 training clips instead of 1600), then keep the go and stop outputs (validation, seeds 0/1/2:
# 97.97/98.98/97.46 % against 97.97/96.95/97.46 % for the go/stop clips alone, 60 epochs with random gain).
# Then quiet words were tried: 30 % of training clips scaled to peaks of -60..0 dBFS (two of the three validation
# clips the go/stop model got wrong peak at -57 and -52 dBFS), same rule as the versions (2026-12-02, clean /
# -40 dBFS / RT60 0.6 s / babble 10 dB / validation voice, 197 clips):
#   delivered  98.5 / 98.5 / 97.0 / 95.4 / 100 -> seed 0: 99.5 / 99.5 / 97.0 / 97.5 / 100 % (taken by the rule),
#                                                 seed 1: 99.0 / 99.0 / 97.0 / 95.4 / 100 %
# Not delivered: seed 0 failed the live check of the delivered models (tests/test_listen.py: on a stream of
# test-split clips it fired "go" at the start of three "stop"s and twice on two "go"s; 5 extra detections on
# its 10 words, at most 4 allowed), a check that reads test clips (97.12 % on test against 98.08 %).
SUBSET_CONFIG_CHANGES: Dict[Tuple[str, ...], Dict] = {
    ("go", "stop"): dict(train_on_all_words=True, head_epochs=10, teachers=(), calibrate_temperature=False,
                         weight_average_decay=0.0),
}
# The weight average on go/stop (2026-12-03, same rule): 99.5 / 99.0 / 97.5 / 95.9 / 100 -> 98.5 / 99.5 / 98.0 /
# 97.5 / 100 %: 2 clean clips fewer, not taken (test, printed by the log: 97.60 %).
# go/stop distilled from b and c (a's teachers) in its 8-word phase (2026-12-03, same rule): 99.5 / 99.0 / 97.5 / 95.9 /
# 100 -> 99.0 / 99.0 / 97.0 / 97.0 / 100 %: 1 clean clip fewer, not taken (test, printed by the log: 97.12 %).
# go/stop at a's width (alpha 0.3125, pruned 70 %, 24.3 kB) instead of a's earlier one (alpha 0.25, pruned 50 %,
# 21.6 kB), same rule (2026-12-02, late): seed 0 99.5 / 99.0 / 97.5 / 95.9 / 100 % (taken: 2 clean clips more,
# mean +0.6); seed 1 98.0 / 98.0 / 96.4 / 94.9 / 100 %. Test, printed by the training logs before the comparison:
# 98.08 % (the earlier model: 98.08 %) and 97.60 %.


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


def limits_for(version: Version, result: RunResult, labels: Sequence[str]) -> List["Limit"]:
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


def limits_from_sidecar(sidecar: Dict) -> Optional[List["Limit"]]:
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
