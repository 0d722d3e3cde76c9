"""Open-set models compared on the VALIDATION split only, as recipes are chosen.

    python -m benchmarks.open_set_validation MODEL [MODEL ...] [--data-dir DIR] [--stream]

Per model, through ``pi_runtime`` (the exported file, the native frontend):

* accuracy on the 800 validation keyword clips of the course's split (an
  answer ``_silence_``/``_unknown_`` counts as wrong);
* the share of the validation negatives (``train.kws.negatives``, validation
  voice and words, derived from validation clips) answered ``_silence_`` or
  ``_unknown_``, in all and kind by kind;
* accuracy on the eight keywords spoken by the validation split's synthetic
  voice;
* with ``--stream``: keywords detected (in all, and of those without a
  background), false alarms an hour and words fired on the validation stream at the model's calibrated operating point (its
  sidecar's ``detector``), as ``train.kws.calibrate`` measured it;
* with ``--training-stream``: the same on a stream made alike of the training
  split's keywords and negatives (``realistic_stream("train")``): what the model
  misses on the material it learnt from, beside what it misses on validation.

The test split is never read. It measures and prints; it asserts nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from benchmarks.reporting import add_data_dir_argument, load_kws_models
from pi_runtime.arguments import run_command
from pi_runtime.labels import NON_KEYWORD_LABELS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.open_set_validation",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path, metavar="MODEL",
                        help="open-set keyword-spotting models (.tflite or .tflite.zlib, sidecar beside)")
    add_data_dir_argument(parser)
    parser.add_argument("--stream", action="store_true",
                        help="also run each model over the validation stream at its calibrated operating point")
    parser.add_argument("--training-stream", action="store_true",
                        help="also run each model over a stream made alike of the training split's keywords and "
                             "negatives, at the same operating point")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        loaded = load_kws_models(args.models)
    except (ValueError, OSError) as error:  # a missing, truncated or other task's model or sidecar
        print(f"error: {error}", file=sys.stderr)
        return 2
    closed = [str(model.path) for model in loaded if not set(NON_KEYWORD_LABELS) & set(model.spec.labels)]
    if closed:
        print(f"error: {', '.join(closed)}: not an open-set model (no {' or '.join(NON_KEYWORD_LABELS)} output); "
              "this benchmark measures how open-set models reject what is not a keyword", file=sys.stderr)
        return 2
    from pi_runtime.kws_pipeline import DetectorConfig
    from train.kws.data import LABELS, load_split
    from train.kws.evaluate import evaluate_model
    from train.kws.negatives import build_negatives, synthetic_keywords
    from train.kws.open_set import NEGATIVES_SEED, rejection_report
    from train.kws.streams import realistic_stream, run_pipeline, score

    clips = load_split("val", data_dir=args.data_dir, labels=LABELS)
    negatives = build_negatives("val", split_clips=clips, data_dir=args.data_dir, seed=NEGATIVES_SEED)
    spoken = synthetic_keywords("val", data_dir=args.data_dir, seed=NEGATIVES_SEED)
    for model_path, model in zip(args.models, loaded):
        keywords = evaluate_model(model_path, "val", data_dir=args.data_dir).accuracy
        rejected = rejection_report(model_path, negatives)
        synthetic = rejection_report(model_path, spoken)["tts_keyword"]["correct"]
        print(f"{model_path}: validation keywords {100 * keywords:.1f} % of {len(clips)}, "
              f"negatives rejected {100 * rejected['all negatives']['rejected']:.1f} % of {len(negatives)}, "
              f"synthetic-voice keywords {100 * synthetic:.1f} % of {len(spoken)}")
        print("  negatives by kind: " + ", ".join(f"{kind} {100 * entry['rejected']:.1f} %"
                                                   for kind, entry in rejected.items() if kind != "all negatives"))
    for name, split, wanted in (("validation stream", "val", args.stream),
                                ("training stream", "train", args.training_stream)):
        if not wanted:
            continue
        stream = realistic_stream(split, data_dir=args.data_dir)  # one at a time: each is 2.2 hours of audio
        for model_path, model in zip(args.models, loaded):
            config = DetectorConfig.from_sidecar(model.spec)
            run = run_pipeline(model, stream, config=config)
            result = score(run.detections, stream, keywords=run.keywords)
            measured = result.to_dict()
            hits, clean = result.detected_by.get("condition: clean", (0, 0))
            print(f"{model_path}: {name} ({config.summary()}): {measured['keywords_detected_percent']:.1f} % detected "
                  f"({100 * hits / max(clean, 1):.1f} % of the {clean} without a background), "
                  f"{measured['false_alarms_per_hour']:.1f} false alarms an hour, "
                  f"{measured['non_keyword_words_fired_percent']:.1f} % of other words fired")
        del stream
    return 0


if __name__ == "__main__":
    run_command(main)
