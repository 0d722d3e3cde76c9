"""``python -m train.kws.evaluate MODEL [MODEL ...]``: a delivered model on a split, clip by clip.

Runs each exported model (``.tflite`` or ``.tflite.zlib`` with its sidecar)
through pi_runtime's loader on the clips of a split, as the training command
measures it, and prints the accuracy, the confusion matrix and, with
``--errors``, every misclassified clip with its level. ``--keywords go,stop``
evaluates a model on a subset of its words: only those clips, and the answer is
the highest-scoring of those words' outputs (how an eight-word model serves as
a go/stop classifier). With several models, a last table counts in how many of
them each clip is wrong, which tells hard clips from unlucky runs.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class Evaluation:
    """One model's answers on the clips of one split.

    Attributes
    ----------
    model_path : Path
    labels : tuple of str
        The classes answered among (the model's, or the ``--keywords`` subset).
    clip_paths : list of Path
    label_ids, predicted_ids : int[n]
        True and predicted class of each clip, indices into ``labels``.
    peak_dbfs : float[n]
        Each clip's peak level, dB relative to full scale (quiet clips explain many errors).
    """

    model_path: Path
    labels: Tuple[str, ...]
    clip_paths: List[Path]
    label_ids: np.ndarray
    predicted_ids: np.ndarray
    peak_dbfs: np.ndarray

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted_ids == self.label_ids))

    @property
    def error_rows(self) -> np.ndarray:
        return np.flatnonzero(self.predicted_ids != self.label_ids)

    def confusion_matrix(self) -> np.ndarray:
        """int[true, predicted] clip counts."""
        matrix = np.zeros((len(self.labels), len(self.labels)), dtype=np.int64)
        np.add.at(matrix, (self.label_ids, self.predicted_ids), 1)
        return matrix


def evaluate_model(model_path: Path, split: str = "test", *, keywords: Optional[Sequence[str]] = None,
                   data_dir: Optional[Path] = None, split_path: Optional[Path] = None,
                   clip_cache: Optional[Dict] = None) -> Evaluation:
    """Evaluate the exported ``model_path`` on ``split`` (optionally on ``keywords`` only).

    ``clip_cache`` (a dict) keeps clips and features between calls, so that
    several models on the same split read and featurise it once.

    Raises
    ------
    ValueError
        For a model without labels in its sidecar, keywords it does not have,
        or a model whose output does not match its labels.
    """
    from pi_runtime.model import load_model
    from train.kws.data import UNKNOWN_LABEL, load_split
    from train.kws.features import compute_features

    model = load_model(model_path, require_sidecar=True)
    if not model.labels:
        raise ValueError(f"{model_path}: its sidecar lists no labels")
    if model.frontend_params is None:
        raise ValueError(f"{model_path}: its sidecar has no frontend parameters")
    num_outputs = int(np.prod(model.output_shape[1:]))
    if num_outputs != len(model.labels):
        raise ValueError(f"{model_path}: {num_outputs} outputs but {len(model.labels)} labels in its sidecar")
    if keywords is not None:
        labels, unknown_label = tuple(keywords), None
        if UNKNOWN_LABEL in labels:
            raise ValueError(f"{model_path}: {UNKNOWN_LABEL} is not a word to evaluate on")
        model.output_indices(labels)  # every keyword has an output, before the clips are read
    else:
        unknown_label = UNKNOWN_LABEL if UNKNOWN_LABEL in model.labels else None
        labels = tuple(label for label in model.labels if label != UNKNOWN_LABEL)
    cache = clip_cache if clip_cache is not None else {}
    clips_key = (split, labels, unknown_label, data_dir, split_path)
    if clips_key not in cache:
        cache[clips_key] = load_split(split, data_dir=data_dir, labels=labels, split_path=split_path,
                                      unknown_label=unknown_label)
    clips = cache[clips_key]
    features_key = clips_key + (model.frontend_params,)
    if features_key not in cache:
        cache[features_key] = compute_features(clips.audio, model.frontend_params)
    scores = model.predict_many(cache[features_key]).reshape(len(clips), -1)
    predicted_ids = np.argmax(scores[:, model.output_indices(clips.labels)], axis=1)
    peaks = np.abs(clips.audio.astype(np.int32)).max(axis=1)  # load_split never returns an empty set
    peak_dbfs = 20.0 * np.log10(np.maximum(peaks, 1) / 32768.0)
    return Evaluation(model_path=Path(model_path), labels=clips.labels, clip_paths=list(clips.paths),
                      label_ids=clips.label_ids, predicted_ids=predicted_ids, peak_dbfs=peak_dbfs)


def clip_name(path: Path) -> str:
    """``word/file.wav``: how the splits and the reports name a clip."""
    return f"{path.parent.name}/{path.name}"


def format_report(evaluation: Evaluation, split: str, *, show_errors: bool = False) -> str:
    """Accuracy, per-class recall, the confusion matrix and (optionally) the misclassified clips."""
    labels = evaluation.labels
    matrix = evaluation.confusion_matrix()
    errors = evaluation.error_rows
    lines = [f"{evaluation.model_path}: {evaluation.accuracy:.2%} on the {len(evaluation.label_ids)} {split} clips "
             f"of {', '.join(labels)} ({len(errors)} wrong)", ""]
    width = max(8, *(len(label) for label in labels))
    lines.append("| true \\ predicted | " + " | ".join(label.rjust(width) for label in labels) + " | recall |")
    lines.append("| --- |" + " ---: |" * (len(labels) + 1))
    for row, label in enumerate(labels):
        total = int(matrix[row].sum())
        recall = f"{matrix[row, row] / total:.1%}" if total else "-"
        lines.append(f"| {label} | " + " | ".join(str(n).rjust(width) for n in matrix[row]) + f" | {recall} |")
    if show_errors and len(errors):
        lines += ["", "| clip | predicted | peak dBFS |", "| --- | --- | ---: |"]
        lines += [f"| {clip_name(evaluation.clip_paths[row])} | {labels[evaluation.predicted_ids[row]]} "
                  f"| {evaluation.peak_dbfs[row]:.1f} |" for row in errors]
    return "\n".join(lines)


def error_tally(evaluations: Sequence[Evaluation]) -> List[Tuple[str, int]]:
    """(clip, how many of ``evaluations`` get it wrong), most often wrong first, then by name."""
    counts = Counter(clip_name(evaluation.clip_paths[row]) for evaluation in evaluations
                     for row in evaluation.error_rows)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def format_tally(evaluations: Sequence[Evaluation]) -> str:
    tally = error_tally(evaluations)
    if not tally:
        return f"no clip is wrong in any of the {len(evaluations)} models"
    lines = [f"clips wrong in at least one of the {len(evaluations)} models:", "",
             "| clip | wrong in |", "| --- | ---: |"]
    lines += [f"| {clip} | {count} of {len(evaluations)} |" for clip, count in tally]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train.kws.evaluate", description=__doc__.split("\n\n")[0],
        epilog="Each model runs through pi_runtime's loader, as the training command measures it. "
               "Example: python -m train.kws.evaluate models/kws/kws_a.tflite.zlib --keywords go,stop --errors")
    parser.add_argument("models", nargs="+", type=Path, help="exported models (.tflite or .tflite.zlib, sidecar beside)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="which split (default: test)")
    parser.add_argument("--keywords", default=None,
                        help="comma-separated subset of the models' words to evaluate on, e.g. go,stop "
                             "(default: all of each model's words)")
    parser.add_argument("--errors", action="store_true", help="list every misclassified clip with its peak level")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder holding mini_speech_commands/ (default: $TINYML_DATA_DIR or ~/.cache/tinyml-pi; "
                             "downloaded there when absent)")
    parser.add_argument("--splits-dir", type=Path, default=None,
                        help="folder with the kws_<split>_split.txt files (default: the course's splits)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from train.kws.data import ensure_dataset, parse_keywords, split_file

    try:
        keywords = parse_keywords(args.keywords) if args.keywords else None
        missing = [str(path) for path in args.models if not path.is_file()]
        if missing:
            raise ValueError(f"no such model file: {', '.join(missing)}")
        data_dir = ensure_dataset(args.data_dir)
        split_path = args.splits_dir / split_file(args.split).name if args.splits_dir else None
        cache: Dict = {}
        evaluations = []
        for path in args.models:
            evaluation = evaluate_model(path, args.split, keywords=keywords, data_dir=data_dir,
                                        split_path=split_path, clip_cache=cache)
            print(format_report(evaluation, args.split, show_errors=args.errors) + "\n", flush=True)
            evaluations.append(evaluation)
    except (ValueError, RuntimeError, FileNotFoundError) as error:  # ModelError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    if len(evaluations) > 1:
        print(format_tally(evaluations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
