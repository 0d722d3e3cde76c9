"""Tuning the detector to a room (``python -m pi_runtime.tune``): does a threshold chosen on a
short recording of a room hold on more of it, and what does it cost in keywords?

    python -m benchmarks.room_tuning [MODEL ...] [--target-false-alarms-per-hour 2] [--tuning-minutes 10]
                                     [--markdown FILE]

Rooms are made of the test split's held-out negatives (synthetic words of the
test voices, their babble, coloured noise), never of the validation material
the sidecars were calibrated on, and each comes twice: a tuning recording of
``--tuning-minutes`` and an unseen part of ``--check-minutes``, from disjoint
halves of the words and other seeds:

* talk: other words one after another (peaks -30..-6 dBFS, 0.3-1.5 s apart),
  half of them over babble at 20 or 10 dB SNR;
* babble: babble of three to seven talkers on its own (other words);
* noise: white, pink and brown noise on their own.

Per model (default: the open-set models delivered, ``kws_live_*``) and room,
the threshold ``pi_runtime.tune`` recommends on the tuning recording
(:func:`pi_runtime.tune.run_room`, the code the command runs), the false alarms
an hour at the threshold in use and at that one on both recordings, and the
keywords of the test stream (``train.kws.streams.realistic_stream("test")``)
detected at both, beside the estimate the sidecar's validation curve gives.
Nothing is chosen here; it measures and prints.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from benchmarks.reporting import REPO_ROOT, Report, add_data_dir_argument, add_markdown_argument, load_kws_models
from pi_runtime.arguments import non_negative_float, positive_float, run_command
from pi_runtime.labels import keyword_list

ROOMS = ("talk", "babble", "noise")
ROOM_PEAK_DBFS = (-30.0, -6.0)
STRETCH_S = 30
SAMPLE_RATE_HZ = 16000
DEFAULT_MODELS = ("kws_live_c.tflite.zlib", "kws_live_b.tflite.zlib")


def room_streams(negatives, room: str, *, tuning_minutes: float, check_minutes: float,
                 seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """(tuning recording, unseen part) of ``room``, float32 at 16 kHz, from disjoint halves of the words."""
    from dataclasses import replace

    from train.kws import acoustics
    from train.kws.streams import Backgrounds, StreamRecipe, build_stream, speech_rows

    words = negatives.select(("tts_word", "tts_hard"))
    halves = (words.rows(list(range(0, len(words.kinds), 2))), words.rows(list(range(1, len(words.kinds), 2))))
    recordings = []
    for half, minutes, part_seed in zip(halves, (tuning_minutes, check_minutes), (seed, seed + 1)):
        samples = int(minutes * 60 * SAMPLE_RATE_HZ)
        if room == "talk":
            recipe = StreamRecipe(seed=part_seed, gap_s=(0.3, 1.5), gap_noise_dbfs=None, peak_dbfs=ROOM_PEAK_DBFS,
                                  background_share=0.5, snrs_db=(20.0, 10.0), background_kinds=("babble",))
            pieces, total, repeat = [], 0, 0
            while total < samples:  # longer than the half's words: said again, at other levels over other babble
                pieces.append(build_stream(None, half, recipe=replace(recipe, seed=part_seed + 100 * repeat),
                                           name=room).audio)
                total, repeat = total + pieces[-1].size, repeat + 1
            audio = np.concatenate(pieces)
        else:  # stretches of 30 s on their own, one after another, each at its own level
            rng = np.random.default_rng(part_seed)
            backgrounds = Backgrounds(half.audio[speech_rows(half)], StreamRecipe(), rng)
            kinds = ("babble",) if room == "babble" else ("white", "pink", "brown")
            stretch = STRETCH_S * SAMPLE_RATE_HZ
            audio = np.concatenate([
                acoustics.scale_to_peak_dbfs(backgrounds.make(kinds[int(rng.integers(len(kinds)))], stretch),
                                             float(rng.uniform(*ROOM_PEAK_DBFS)))
                for _ in range(-(-samples // stretch))]).astype(np.float32)
        recordings.append(audio[:samples])
    return recordings[0], recordings[1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.room_tuning", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", type=Path, metavar="MODEL",
                        help="open-set keyword-spotting models with a calibrated sidecar "
                             f"(default: {', '.join(DEFAULT_MODELS)} in models/kws/)")
    parser.add_argument("--target-false-alarms-per-hour", type=non_negative_float, default=2.0,
                        help="the tuning's target (default 2, the open-set bar on noise and babble)")
    parser.add_argument("--tuning-minutes", type=positive_float, default=10.0,
                        help="length of each room's tuning recording (default 10)")
    parser.add_argument("--check-minutes", type=positive_float, default=30.0,
                        help="length of each room's unseen part (default 30)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the rooms (default 1)")
    parser.add_argument("--keywords", type=keyword_list,
                        help="listen for these of each model's keywords only, with the sidecar's settings for "
                             "them (e.g. go,stop)")
    add_markdown_argument(parser)
    add_data_dir_argument(parser)
    return parser


def measure(args: argparse.Namespace, models: Sequence[Path], report: Callable[[str], None]) -> None:
    from pi_runtime.kws_pipeline import DetectorConfig
    from pi_runtime.labels import SILENCE_LABEL, UNKNOWN_LABEL
    from pi_runtime.tune import detected_at, run_room, validation_curve
    from train.kws.data import load_split
    from train.kws.negatives import build_negatives
    from train.kws.streams import det_curve, realistic_stream, run_pipeline

    loaded = load_kws_models(models)  # a bad file or a word a model lacks is said before the long work
    for model in loaded:
        model.spec.listened_keywords(args.keywords)
    print("building the test stream and the rooms ...", file=sys.stderr, flush=True)
    clips = load_split("test", data_dir=args.data_dir)
    negatives = build_negatives("test", split_clips=clips, data_dir=args.data_dir, seed=0)
    negatives = negatives.select_classes((UNKNOWN_LABEL, SILENCE_LABEL))
    stream = realistic_stream("test", data_dir=args.data_dir)
    rooms: Dict[str, Tuple[np.ndarray, np.ndarray]] = {
        room: room_streams(negatives, room, tuning_minutes=args.tuning_minutes, check_minutes=args.check_minutes,
                           seed=args.seed) for room in ROOMS}
    report(f"rooms from the test split's held-out negatives, seed {args.seed}: tuning recordings of "
           f"{args.tuning_minutes:g} min, unseen parts of {args.check_minutes:g} min; target "
           f"{args.target_false_alarms_per_hour:g} false alarms an hour")
    report(f"keywords: {stream.description}")
    header = (f"{'model':<24} {'room':<7} {'threshold':>15} {'FA/h tuning rec.':>17} {'FA/h unseen':>14} "
              f"{'test keywords detected':>23} {'validation curve':>17}")
    report("")
    report(header)
    report("-" * len(header))
    for path, model in zip(models, loaded):
        config = DetectorConfig.from_sidecar(model.spec, keywords=args.keywords)
        curve = validation_curve(model.spec, config, args.keywords)
        print(f"{path.name}: the test stream ...", file=sys.stderr, flush=True)
        test_run = run_pipeline(model, stream, config=config, keywords=args.keywords)
        for room, (tuning, unseen) in rooms.items():
            tuned = run_room(model, [(room, tuning, SAMPLE_RATE_HZ)], config=config, keywords=args.keywords)
            index = tuned.recommended(args.target_false_alarms_per_hour)
            chosen = tuned.thresholds.size - 1 if index is None else index  # none reaches it: the highest tried
            threshold = float(tuned.thresholds[chosen])
            # The same settings, so the same grid as the tuning recording's: its index holds on the unseen part.
            checked = run_room(model, [(room, unseen, SAMPLE_RATE_HZ)], config=config, keywords=args.keywords)
            keywords = det_curve(test_run.decisions, test_run.labels, stream, config=config,
                                 keywords=test_run.keywords, thresholds=[config.threshold, threshold],
                                 window_duration_s=test_run.window_duration_s)
            estimate = [detected_at(curve, t) for t in (config.threshold, threshold)]
            report(f"{path.name:<24} {room:<7} {config.threshold:>6g} -> {threshold:<6g}"
                   + ("*" if index is None else " ")
                   + f" {tuned.false_alarms_per_hour[0]:>7.1f} -> {tuned.false_alarms_per_hour[chosen]:<6.1f}"
                   f" {checked.false_alarms_per_hour[0]:>6.1f} -> {checked.false_alarms_per_hour[chosen]:<5.1f}"
                   f" {keywords.scores[0].detected_percent:>10.1f} -> {keywords.scores[1].detected_percent:<5.1f} %"
                   + ("" if None in estimate else f" {estimate[0]:>6.1f} -> {estimate[1]:<5.1f} %"))
    report("")
    report("threshold: in use (the sidecar's calibration) -> recommended on the tuning recording (* no threshold "
           "reached the target there: the highest tried); FA/h: false alarms an hour at each; test keywords "
           f"detected: the test stream's {keywords.scores[0].keywords} keywords"
           + (f" ({', '.join(args.keywords)})" if args.keywords else "")
           + " at each; validation curve: the sidecar's estimate, what pi_runtime.tune prints")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    report = Report()
    models: List[Path] = args.models or [REPO_ROOT / "models" / "kws" / name for name in DEFAULT_MODELS]
    missing = [str(path) for path in models if not Path(path).is_file()]
    if missing:
        parser.error(f"no such model file: {', '.join(missing)}")
    try:
        measure(args, models, report)
    except BrokenPipeError:  # the reader of the output went away: run_command ends quietly
        raise
    except (ValueError, OSError) as error:  # a missing or corrupt model or sidecar, missing data
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.markdown is not None:
        report.write_markdown(args.markdown, title="Tuning the detector to a room (`python -m benchmarks.room_tuning`)",
                              command=" ".join(["python -m benchmarks.room_tuning",
                                                *(sys.argv[1:] if argv is None else argv)]),
                              note="see the module docstring for what is measured")
    return 0


if __name__ == "__main__":
    run_command(main)
