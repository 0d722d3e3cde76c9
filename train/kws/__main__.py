"""python -m train.kws --version a|b|c [--keywords go,stop] [--open-set]: train, export, check the limits.

Or, on any folder of ``<label>/*.wav`` (your own words, e.g. recorded with
``python -m pi_runtime.record``): ``python -m train.kws --data-dir DIR
[--labels a,b]``, open-set and transferred from a delivered model by default
(see train/kws/folder_training.py).

On Mini Speech Commands it trains from scratch on the course's training split (validation split for
model selection), writes models/kws/kws_<version>.tflite (or .tflite.zlib)
with its sidecar, measures the exported file (accuracy on the test split,
size, latency), prints the limits table and exits with status 1 when a limit
is missed. With --open-set the model also answers _silence_ and _unknown_,
learnt from generated negatives, and is delivered as kws_live_<version>.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

from pi_runtime.arguments import (non_negative_float, non_negative_int, output_folder, positive_float, positive_int,
                                  run_command)
from train.kws.versions import FIRST_LIVE_B

# A Pi 4 budget for your own words when no --version is asked for: version c's limits (the largest
# course deliverable), which b's architecture (26 kB, well under 1 ms per inference here) meets with room.
PI4_MAX_SIZE_KB = 45.0
PI4_MAX_TOTAL_MS = 40.0
DEFAULT_BODY = FIRST_LIVE_B  # the body the own-words results were measured with


def build_parser() -> argparse.ArgumentParser:
    from train.kws.folder_training import AUTO_TRANSFER_MAX_CLIPS_PER_LABEL, NEGATIVES_SCALE, TRANSFER_MODES
    from train.kws.training import DISTILLATION_INPUTS
    from train.kws.versions import VERSIONS

    parser = argparse.ArgumentParser(
        prog="python -m train.kws", description=__doc__.split("\n\n")[0],
        epilog="Versions: " + "; ".join(f"{name}: {version.summary}" for name, version in VERSIONS.items()))
    parser.add_argument("--version", choices=sorted(VERSIONS), default=None,
                        help="which deliverable to train (required for Mini Speech Commands); with a folder "
                             "--data-dir: its architecture and its limits are checked (default: b's architecture "
                             f"and the Pi 4 budget, file < {PI4_MAX_SIZE_KB:g} kB and total latency < "
                             f"{PI4_MAX_TOTAL_MS:g} ms)")
    parser.add_argument("--keywords", default=None,
                        help="comma-separated subset of the labels to train on, e.g. go,stop (default: all eight)")
    parser.add_argument("--unknown", action="store_true",
                        help="with --keywords: add an _unknown_ class trained on the clips of the other words, so "
                             "the model rejects them (accuracy is then reported on the keyword clips, an unknown "
                             "prediction counting as an error)")
    parser.add_argument("--train-on-all-words", action="store_true",
                        help="with --keywords: train on the clips of all eight words (four times the data for "
                             "two keywords), then deliver the keywords' outputs, their head fine-tuned on the "
                             "keywords' clips")
    parser.add_argument("--open-set", action="store_true",
                        help="add the classes _silence_ and _unknown_, trained on generated negatives (synthetic "
                             "speech of other words, reversed and spliced words, babble, noise; needs flite and "
                             "festival) and, with --keywords, the other words' clips; delivered as kws_live_<version>")
    parser.add_argument("--negatives-share", type=float, default=None,
                        help="with --open-set: the share (0..1] of the generated negatives joined to training and "
                             "validation (default: the version's, LIVE_NEGATIVES_SHARE in train/kws/versions.py)")
    parser.add_argument("--stream-windows", type=float, default=None, metavar="SHARE",
                        help="with --open-set: add one-second windows cut from a stream of the training split, "
                             "as the live detector sees them: one around this share (0..1] of the training "
                             "keyword clips, as many negative windows (train/kws/stream_windows.py; default: "
                             "the version's, LIVE_STREAM_WINDOWS_SHARE in train/kws/versions.py; 0 for none)")
    parser.add_argument("--tonal-negatives", action=argparse.BooleanOptionalAction, default=None,
                        help="join the tonal training negatives (tones, beeps, alarms, whistles, music: "
                             "train/kws/negatives.py) as _silence_: with --open-set (default no; the recipe of "
                             "kws_live_b and kws_live_c says it), and on a folder dataset (default yes)")
    parser.add_argument("--babble-words-negatives", action="store_true",
                        help="with --open-set: join the training negatives of babble of other words (three to six "
                             "of the training voices' non-keyword words overlapped: people talking in the "
                             "background) as _unknown_ (default no)")
    parser.add_argument("--babble-from-other-words", action="store_true",
                        help="with --open-set: make the babble that training mixes under clips of the synthetic "
                             "non-keyword words only (people saying other things), not of any training clip, "
                             "most of which are keywords (default no)")
    parser.add_argument("--hard-negatives-from", default=None, metavar="MODEL",
                        help="with --open-set: join, as training negatives, the windows where this exported model "
                             "(a relative path is under models/, e.g. kws/kws_live_b.tflite.zlib) fires on a stream "
                             "of the training negatives: its false alarms, mined (train/kws/stream_windows.py; "
                             "default none)")
    parser.add_argument("--synthetic-keywords", action=argparse.BooleanOptionalAction, default=None,
                        help="add the keywords spoken by the training split's synthetic voices (flite, festival) "
                             "as extra training positives; with --open-set the validation voice's join "
                             "validation too (default: the version's, synthetic_keywords in "
                             "train/kws/versions.py: b and c yes, a no)")
    parser.add_argument("--raised-voices", action="store_true",
                        help="training only: add the training voices' keywords spoken higher (pitch 1.4-2x, "
                             "formants up to 1.2x: every synthetic training voice is a man's) as extra positives; "
                             "with --open-set their other words spoken so too, as _unknown_")
    parser.add_argument("--accented-voices", action="store_true",
                        help="closed set, training only: add the keywords spoken by women's voices of other "
                             "languages (Italian, Czech; festival, respelled so their own rules say the English "
                             "word: train/kws/negatives.py ACCENTED_VOICES) as extra positives")
    parser.add_argument("--target-false-alarms-per-hour", type=non_negative_float, default=None,
                        help="with --open-set: calibrate the detector threshold on the validation stream for this "
                             "false-alarm rate and write it into the sidecar (default: LIVE_TARGET_FALSE_ALARMS_PER_HOUR "
                             "in train/kws/versions.py)")
    parser.add_argument("--teachers", default=None,
                        help="comma-separated exported models to distil from (relative paths under models/, "
                             "e.g. kws/kws_c.tflite.zlib; default: the version's recipe, for a the delivered b and "
                             "c, for b the delivered c, for c's open-set model the first kws_live_c and the first kws_live_b; "
                             "'' for labels only)")
    parser.add_argument("--teachers-hear", choices=DISTILLATION_INPUTS, default=None,
                        help="what the teachers hear: the student's augmented clips of each epoch, or the clean "
                             "clips, so the student learns to answer under noise as they do without it "
                             "(default: the version's recipe, augmented)")
    parser.add_argument("--weight-average", type=float, default=None, metavar="DECAY",
                        help="select and deliver an exponential moving average of the weights, updated every "
                             "step with this decay (e.g. 0.999; 0 for none; default: the version's recipe, "
                             "weight_average_decay in train/kws/versions.py: 0.999 for a, b and c, none for go/stop "
                             "and the open-set models)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding mini_speech_commands/ (default: $TINYML_DATA_DIR or ~/.cache/tinyml-pi; "
                             "downloaded there when absent), or a dataset folder of <label>/*.wav to train on "
                             "(any rate and channel count; _background_noise_/*.wav is recorded room sound)")
    folder = parser.add_argument_group("a folder dataset (--data-dir DIR holding <label>/*.wav)")
    folder.add_argument("--labels", default=None,
                        help="comma-separated label folders to train on (default: every folder not starting "
                             "with _ , sorted)")
    folder.add_argument("--val-percent", type=float, default=10.0,
                        help="share of the speakers (or clips) in the validation split, percent (default 10)")
    folder.add_argument("--test-percent", type=float, default=10.0,
                        help="share of the speakers (or clips) in the test split, percent (default 10)")
    folder.add_argument("--split-by", choices=("speaker", "clip"), default="speaker",
                        help="hash the speaker (the file name before _nohash_; default: new voices in validation "
                             "and test) or the whole file name (for folders with few speakers)")
    folder.add_argument("--split-dir", type=Path, default=None,
                        help="read the splits from kws_<split>_split.txt in this folder (as a run wrote them "
                             "beside its model) instead of computing them")
    folder.add_argument("--closed-set", action="store_true",
                        help="no _silence_/_unknown_ classes and no negatives (default: open set, what listening "
                             "needs; negatives are generated once and cached under DIR/_generated)")
    folder.add_argument("--negatives-scale", type=positive_float, default=None,
                        help="share of the open-set generator's default sizes (default "
                             f"{NEGATIVES_SCALE:g}, NEGATIVES_SCALE in train/kws/folder_training.py)")
    folder.add_argument("--transfer", choices=("auto",) + TRANSFER_MODES, default="auto",
                        help="start from the body of a delivered model (--body): frozen (a new head only) or "
                             "fine-tune (the head, then everything at a tenth of the rate); none: from scratch; "
                             f"auto (default): fine-tune when a word has fewer than "
                             f"{AUTO_TRANSFER_MAX_CLIPS_PER_LABEL} training clips")
    folder.add_argument("--body", type=Path, default=None,
                        help=f"the delivered model to transfer from (default: models/{DEFAULT_BODY})")
    parser.add_argument("--splits-dir", type=Path, default=None,
                        help="folder with kws_train_split.txt, kws_val_split.txt, kws_test_split.txt "
                             "(default: the course's splits shipped in train/splits)")
    parser.add_argument("--output-dir", type=output_folder, default=None,
                        help="where to write the model (default: models/kws; for a folder dataset DIR/_models)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="override the version's number of epochs")
    parser.add_argument("--seed", type=non_negative_int, default=None, help="override the version's random seed")
    parser.add_argument("--feature-backend", default="native", choices=("native", "tf_signal"),
                        help="native frontend (default; what the device runs) or the tf.signal reference")
    parser.add_argument("--latency-runs", type=positive_int, default=100, help="runs for the latency means (default 100)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from train.kws.folder_data import check_data_dir, is_folder_dataset

    args = build_parser().parse_args(argv)
    try:
        check_data_dir(args.data_dir)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if is_folder_dataset(args.data_dir):
        return main_folder(args, argv)
    if args.version is None:
        print("error: --version is required for Mini Speech Commands (or give --data-dir a folder of "
              "<label>/*.wav)", file=sys.stderr)
        return 2
    folder_only = [flag for flag, value in (("--labels", args.labels), ("--split-dir", args.split_dir),
                                            ("--closed-set", args.closed_set), ("--body", args.body),
                                            ("--negatives-scale", args.negatives_scale))
                   if value not in (None, False)]
    if folder_only:
        print(f"error: {', '.join(folder_only)} apply to a folder dataset (--data-dir DIR holding "
              f"<label>/*.wav)", file=sys.stderr)
        return 2
    from train.kws.data import LABELS, UNKNOWN_LABEL, ensure_dataset, load_split, parse_keywords, split_file
    from train.kws.open_set import load_open_set_splits, open_set_labels, synthetic_keyword_clips
    from train.kws.results import write_results_markdown
    from train.kws.training import Splits, log, teacher_paths, train_export_evaluate
    from train.kws.versions import (LIVE_NEGATIVES_SHARE, LIVE_STREAM_WINDOWS_SHARE, VERSIONS, config_for, limits_for,
                                    model_file_stem)
    from train.kws.negatives import file_sha256
    from train.paths import model_file, models_dir
    from train.toolbox.limits import check_limits

    started = time.perf_counter()
    version = VERSIONS[args.version]
    try:
        labels = parse_keywords(args.keywords)
        if args.unknown and len(labels) == len(LABELS):
            raise ValueError("--unknown needs --keywords (with all eight words there is no other word)")
        if args.train_on_all_words and (len(labels) == len(LABELS) or args.unknown):
            raise ValueError("--train-on-all-words needs --keywords, without --unknown")
        if args.open_set and args.accented_voices:
            raise ValueError("--accented-voices applies to closed-set training (the accented voices speak "
                             "only the keywords)")
        if args.open_set and args.unknown:
            raise ValueError("--open-set has an _unknown_ class already: leave out --unknown")
        if not args.open_set and (args.negatives_share is not None or args.target_false_alarms_per_hour is not None
                                  or args.stream_windows is not None or args.tonal_negatives
                                  or args.babble_words_negatives or args.hard_negatives_from is not None
                                  or args.babble_from_other_words):
            raise ValueError("--negatives-share, --stream-windows, --tonal-negatives, --babble-words-negatives, "
                             "--babble-from-other-words, --hard-negatives-from and --target-false-alarms-per-hour "
                             "need --open-set")
        miner = None
        if args.hard_negatives_from is not None:
            miner = model_file(args.hard_negatives_from)
            if not miner.is_file():
                raise ValueError(f"--hard-negatives-from: no model file {miner}")
        synthetic = version.synthetic_keywords if args.synthetic_keywords is None else args.synthetic_keywords
        negatives_share = LIVE_NEGATIVES_SHARE if args.negatives_share is None else args.negatives_share
        if not 0 < negatives_share <= 1:
            raise ValueError(f"--negatives-share must be in (0, 1], got {negatives_share}")
        stream_windows = LIVE_STREAM_WINDOWS_SHARE if args.stream_windows is None else args.stream_windows
        if not 0 <= stream_windows <= 1:
            raise ValueError(f"--stream-windows must be in [0, 1], got {stream_windows}")
        config = config_for(version, labels, open_set=args.open_set)
        if args.epochs is not None:
            config = config.replace(epochs=args.epochs)
        if args.seed is not None:
            config = config.replace(seed=args.seed)
        if args.teachers is not None:
            config = config.replace(teachers=tuple(path.strip() for path in args.teachers.split(",")
                                                   if path.strip()))
        if args.teachers_hear is not None:
            if not config.teachers:
                raise ValueError("--teachers-hear needs teachers (--teachers, or a version that has them)")
            config = config.replace(distillation_input=args.teachers_hear)
        if args.weight_average is not None:
            config = config.replace(weight_average_decay=args.weight_average)
        if args.babble_from_other_words:
            config = config.replace(augment=config.augment.replace(babble_of_other_words=True))
        teacher_paths(config)  # a missing teacher is said before the data is fetched and read
        data_dir = ensure_dataset(args.data_dir)
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output_dir = args.output_dir or models_dir() / "kws"
    output_path = output_dir / (model_file_stem(args.version, labels, LABELS, open_set=args.open_set) + ".tflite")

    log(f"version {args.version} ({version.summary}); labels {', '.join(labels)}; data {data_dir}")
    subset = len(labels) < len(LABELS)
    if args.train_on_all_words:
        config = config.replace(train_on_all_words=True)
    if args.unknown:  # the other words are a class of their own: nothing to gain from learning them apart
        config = config.replace(train_on_all_words=False)
    train_labels = LABELS if subset and config.train_on_all_words else labels
    test_negatives = None
    try:
        if args.open_set:
            splits, test_negatives = load_open_set_splits(
                labels, train_labels=open_set_labels(train_labels), data_dir=data_dir, splits_dir=args.splits_dir,
                negatives_share=negatives_share, synthetic_keywords=synthetic,
                stream_windows_share=stream_windows, tonal_negatives=bool(args.tonal_negatives),
                babble_words_negatives=args.babble_words_negatives,
                raised_voices=args.raised_voices, hard_negatives_from=miner, progress=not args.quiet)
        else:
            splits = Splits(*(load_split(name, data_dir=data_dir, labels=train_labels, progress=not args.quiet,
                                         unknown_label=UNKNOWN_LABEL if args.unknown else None,
                                         split_path=args.splits_dir / split_file(name).name if args.splits_dir else None)
                              for name in ("train", "val", "test")))
            spoken = [(register, accented) for register, accented, asked in
                      (("natural", False, synthetic), ("raised", False, args.raised_voices),
                       ("natural", True, args.accented_voices)) if asked]
            for register, accented in spoken:  # training only: validation stays the course's clips, like for like
                splits = replace(splits, train=splits.train.concat(synthetic_keyword_clips(
                    "train", splits.labels, data_dir=data_dir, progress=not args.quiet, register=register,
                    accented=accented)))
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if (args.epochs is None and subset and not config.train_on_all_words
            and config.epochs == config_for(version, LABELS, open_set=args.open_set).epochs):
        config = config.replace(epochs=subset_epochs(config.epochs, len(splits.train), args.splits_dir, data_dir))
        log(f"keyword subset: {config.epochs} epochs, as many optimiser steps as the full-label run")
    command = "python -m train.kws " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.open_set:
        data_info = {"open_set": {"negatives_share": negatives_share, "synthetic_keywords": synthetic,
                                  **({"stream_windows_share": stream_windows} if stream_windows else {}),
                                  **({"tonal_negatives": True} if args.tonal_negatives else {}),
                                  **({"babble_words_negatives": True} if args.babble_words_negatives else {}),
                                  **({"raised_voices": True} if args.raised_voices else {}),
                                  **({"hard_negatives_from": {"model": args.hard_negatives_from,
                                                              "sha256": file_sha256(miner)}} if miner else {})}}
    else:
        data_info = {**({"synthetic_keywords": True} if synthetic else {}),
                     **({"raised_voices": True} if args.raised_voices else {}),
                     **({"accented_voices": True} if args.accented_voices else {})}
    delivered_labels = open_set_labels(labels) if args.open_set else splits.labels if args.unknown else labels
    result = train_export_evaluate(config, splits, output_path, keywords=delivered_labels,
                                   feature_backend=args.feature_backend,
                                   latency_runs=args.latency_runs, verbose=not args.quiet,
                                   training_info={"command": command, "version": args.version, **data_info})
    if test_negatives is not None:
        report_open_set(result.path, test_negatives, data_dir=data_dir, target=args.target_false_alarms_per_hour,
                        feature_backend=args.feature_backend)
    print(f"\nkws version {args.version} ({', '.join(labels)}) -> {result.path}")
    passed = check_limits(limits_for(version, result, delivered_labels))
    table = write_results_markdown(output_dir)
    minutes, seconds = divmod(time.perf_counter() - started, 60)
    print(f"results table: {table}")
    print(f"took {int(minutes)} min {seconds:.0f} s (training {result.train_seconds:.0f} s)")
    return 0 if passed else 1


def main_folder(args: argparse.Namespace, argv: Optional[Sequence[str]]) -> int:
    """Train on the folder dataset ``args.data_dir`` (see train/kws/folder_training.py)."""
    import warnings

    from pi_runtime.sidecar import read_sidecar
    from train.kws.folder_data import load_folder_dataset, write_splits
    from train.kws.folder_training import NEGATIVES_SCALE, FolderRunOptions, auto_transfer, train_folder_model
    from train.kws.training import log
    from train.kws.versions import KB, LIVE_AUGMENT, LIVE_TARGET_FALSE_ALARMS_PER_HOUR, VERSIONS, limits_for
    from train.paths import models_dir
    from train.toolbox.limits import Limit, check_limits

    started = time.perf_counter()
    root = args.data_dir
    try:
        msc_only = [flag for flag, value in (("--keywords", args.keywords), ("--unknown", args.unknown),
                                             ("--train-on-all-words", args.train_on_all_words),
                                             ("--open-set", args.open_set), ("--negatives-share", args.negatives_share),
                                             ("--stream-windows", args.stream_windows),
                                             ("--raised-voices", args.raised_voices),
                                             ("--accented-voices", args.accented_voices),
                                             ("--babble-words-negatives", args.babble_words_negatives),
                                             ("--hard-negatives-from", args.hard_negatives_from),
                                             ("--babble-from-other-words", args.babble_from_other_words),
                                             ("--synthetic-keywords", args.synthetic_keywords),
                                             ("--teachers", args.teachers), ("--teachers-hear", args.teachers_hear),
                                             ("--splits-dir", args.splits_dir),
                                             ("--weight-average", args.weight_average))
                    if value not in (None, False)]
        if msc_only:
            raise ValueError(f"{', '.join(msc_only)} apply to Mini Speech Commands; a folder dataset is open-set "
                             "by default (--closed-set to leave it out), its labels chosen with --labels")
        labels = None
        if args.labels is not None:
            labels = [label.strip() for label in args.labels.split(",") if label.strip()]
            if args.closed_set and len(labels) < 2:
                raise ValueError(f"a closed-set classifier needs at least two labels, got {args.labels!r}")
        if args.closed_set and args.target_false_alarms_per_hour is not None:
            raise ValueError("--target-false-alarms-per-hour calibrates an open-set detector: leave out --closed-set")
        if args.closed_set and args.tonal_negatives:
            raise ValueError("--tonal-negatives are open-set negatives: leave out --closed-set")
        if args.body is not None and args.transfer == "none":
            raise ValueError("--body is the model --transfer starts from: leave it out with --transfer none")
        tonal = not args.closed_set if args.tonal_negatives is None else args.tonal_negatives
        body = args.body if args.body is not None else models_dir() / DEFAULT_BODY
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dataset = load_folder_dataset(root, labels=labels, val_percent=args.val_percent,
                                          test_percent=args.test_percent, split_by=args.split_by,
                                          split_dir=args.split_dir, progress=not args.quiet)
        del caught  # dataset.describe() below lists them
        if args.closed_set and len(dataset.labels) < 2:
            raise ValueError(f"a closed-set classifier needs at least two labels, got {', '.join(dataset.labels)}")
        transfer = auto_transfer(dataset) if args.transfer == "auto" else args.transfer
        if transfer != "none" and not body.is_file():
            raise ValueError(f"body model {body} not found (train it first, or --transfer none)")
        version = VERSIONS[args.version or "b"]
        config = version.base_config.replace(teachers=(), calibrate_temperature=False, final_sparsity=0.0, qat_epochs=0,
                                        train_on_all_words=False, compress=True)
        if not args.closed_set:
            config = config.replace(augment=LIVE_AUGMENT)
        if args.seed is not None:
            config = config.replace(seed=args.seed)
        options = FolderRunOptions(
            open_set=not args.closed_set, transfer=transfer, body=body if transfer != "none" else None,
            negatives_scale=NEGATIVES_SCALE if args.negatives_scale is None else args.negatives_scale,
            epochs=args.epochs, feature_backend=args.feature_backend, latency_runs=args.latency_runs,
            target_false_alarms_per_hour=(LIVE_TARGET_FALSE_ALARMS_PER_HOUR if args.target_false_alarms_per_hour
                                          is None else args.target_false_alarms_per_hour),
            tonal_negatives=tonal,
            extra_training_info={"command": "python -m train.kws " + " ".join(
                sys.argv[1:] if argv is None else argv), **({"version": args.version} if args.version else {})})
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    log(dataset.describe())
    output_dir = args.output_dir or root / "_models"
    stem = "own_" + "_".join(dataset.labels)
    split_files = write_splits(dataset, output_dir / f"{stem}_splits")
    log(f"splits written to {split_files['train'].parent} (repeat with --split-dir, evaluate with "
        f"python -m train.kws.evaluate MODEL --data-dir {root} --split-file {split_files['test']})")
    options = replace(options, extra_training_info={**options.extra_training_info,
                                                    "split_files": {name: str(path) for name, path in
                                                                    split_files.items()}})
    try:
        result = train_folder_model(dataset, output_dir / f"{stem}.tflite", config, options,
                                    progress=not args.quiet, say=log)
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\nyour words ({', '.join(dataset.labels)}) -> {result.path}")
    print(f"listen: python -m pi_runtime.listen --model {result.path}")
    if args.version:
        limits = limits_for(version, result, read_sidecar(result.path)["labels"])
    else:
        limits = [Limit("file size", result.size_bytes / KB, PI4_MAX_SIZE_KB, "kB", "<"),
                  Limit("total latency (mean)", result.total_ms["mean"], PI4_MAX_TOTAL_MS, "ms")]
    passed = check_limits(limits)
    minutes, seconds = divmod(time.perf_counter() - started, 60)
    print(f"test accuracy {result.accuracy:.2%} on the {result.num_test_clips} test clips of your words; "
          f"took {int(minutes)} min {seconds:.0f} s (training {result.train_seconds:.0f} s)")
    return 0 if passed else 1


def report_open_set(model_path: Path, test_negatives, *, data_dir: Path, target: Optional[float],
                    feature_backend: str) -> None:
    """Score the held-out generated test clips, calibrate the detector on the validation stream
    (never the test split), and record both in the sidecar."""
    from train.kws.calibrate import calibrate_model, describe
    from train.kws.open_set import NEGATIVES_SEED, record_held_out_test
    from train.kws.streams import realistic_stream
    from train.kws.training import log
    from train.kws.versions import LIVE_TARGET_FALSE_ALARMS_PER_HOUR

    record_held_out_test(model_path, data_dir=data_dir, test_negatives=test_negatives, feature_backend=feature_backend)
    log("calibrating the detector on the validation stream ...")
    stream = realistic_stream("val", data_dir=data_dir, seed=NEGATIVES_SEED)
    section = calibrate_model(model_path, stream, target_false_alarms_per_hour=(
        LIVE_TARGET_FALSE_ALARMS_PER_HOUR if target is None else target))
    log(f"detector: {describe(section)}")


def subset_epochs(full_label_epochs: int, subset_train_clips: int, splits_dir: Optional[Path], data_dir: Path) -> int:
    """Epochs for a keyword subset so that it gets the optimiser steps of the full-label run.

    A subset (go/stop: a quarter of the clips) would otherwise stop after a
    quarter of the updates, before it converges.
    """
    from train.kws.data import read_split, split_file

    split_path = splits_dir / split_file("train").name if splits_dir else split_file("train")
    all_train_clips = len(read_split(split_path, data_dir, check_exists=False))
    return max(full_label_epochs, int(round(full_label_epochs * all_train_clips / max(1, subset_train_clips))))


if __name__ == "__main__":
    run_command(main)
