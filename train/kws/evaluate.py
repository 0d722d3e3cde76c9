"""``python -m train.kws.evaluate MODEL [MODEL ...]``: a delivered model on a split, clip by clip.

Runs each exported model (``.tflite`` or ``.tflite.zlib`` with its sidecar)
through pi_runtime's loader on the clips of a split, as the training command
measures it, and prints the accuracy, the confusion matrix and, with
``--errors``, every misclassified clip with its level. ``--keywords go,stop``
evaluates a model on a subset of its words: only those clips, and the answer is
the highest-scoring of those words' outputs (how an eight-word model serves as
a go/stop classifier). With ``--others-unknown`` as well, the other words'
clips are scored too and must be answered ``_unknown_``: the answer is the
model's top output, and any output that is not one of the keywords counts as
``_unknown_`` (how ``listen --keywords go,stop`` decides). With several models,
a last table counts in how many of them each clip is wrong, which tells hard
clips from unlucky runs.

``--split-file FILE`` evaluates on any list of clips: one WAV per line, relative
to the data folder (``--data-dir``; for a folder dataset its root, as the
split files ``python -m train.kws --data-dir DIR`` writes beside its model),
any sample rate and channel count (converted as
:func:`train.kws.folder_data.read_audio_16k` documents), its label the name of the folder it lies in
(which must be one of the model's labels; a model with an ``_unknown_`` class
scores the clips of other folders as ``_unknown_``). Mini Speech Commands is
downloaded only when the split names clips under ``mini_speech_commands/``.

An open-set model (``_silence_`` and ``_unknown_`` among its labels) answers
among all its outputs: on keyword clips an answer ``_silence_`` or
``_unknown_`` is wrong, and the report says how many clips it rejected so.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from pi_runtime.arguments import run_command
from pi_runtime.labels import NON_KEYWORD_LABELS, UNKNOWN_LABEL, keyword_list


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
    unknown_folders : tuple of str
        Folder labels of a split file that the model scored as its ``_unknown_`` class.
    scores : float[n, outputs] or None
        The model's outputs on each clip (all of them, in the model's label order).
    """

    model_path: Path
    labels: Tuple[str, ...]
    clip_paths: List[Path]
    label_ids: np.ndarray
    predicted_ids: np.ndarray
    peak_dbfs: np.ndarray
    unknown_folders: Tuple[str, ...] = ()
    scores: Optional[np.ndarray] = None

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted_ids == self.label_ids))

    @property
    def rejected_keyword_rows(self) -> np.ndarray:
        """Clips of a keyword that the model answered ``_silence_`` or ``_unknown_`` (errors)."""
        rejections = [self.labels.index(label) for label in NON_KEYWORD_LABELS if label in self.labels]
        is_keyword = ~np.isin(self.label_ids, rejections)
        return np.flatnonzero(is_keyword & np.isin(self.predicted_ids, rejections))

    def word_accuracy(self) -> Dict[str, float]:
        """Accuracy on the clips of each label that has clips (its recall), in label order."""
        return {label: float(np.mean(self.predicted_ids[self.label_ids == row] == row))
                for row, label in enumerate(self.labels) if np.any(self.label_ids == row)}

    @property
    def error_rows(self) -> np.ndarray:
        return np.flatnonzero(self.predicted_ids != self.label_ids)

    def confusion_matrix(self) -> np.ndarray:
        """int[true, predicted] clip counts."""
        matrix = np.zeros((len(self.labels), len(self.labels)), dtype=np.int64)
        np.add.at(matrix, (self.label_ids, self.predicted_ids), 1)
        return matrix


def load_scored_model(model_path: Path, *, builtin_kernels: bool = False):
    """``pi_runtime.model.load_model`` for scoring: a sidecar with labels and a frontend, one output per label
    (``builtin_kernels``: as ``load_model`` takes it).

    Raises
    ------
    ValueError
        For a model without labels or frontend in its sidecar, or whose output does not match its labels.
    """
    from pi_runtime.model import load_model

    model = load_model(model_path, require_sidecar=True, builtin_kernels=builtin_kernels)
    if not model.labels:
        raise ValueError(f"{model_path}: its sidecar lists no labels")
    if model.model_input is None:
        raise ValueError(f"{model_path}: its sidecar has no frontend parameters")
    num_outputs = int(np.prod(model.output_shape[1:]))
    if num_outputs != len(model.labels):
        raise ValueError(f"{model_path}: {num_outputs} outputs but {len(model.labels)} labels in its sidecar")
    return model


def answer_labels(model, keywords: Optional[Sequence[str]] = None, *,
                  others_unknown: bool = False) -> Tuple[Tuple[str, ...], Optional[str]]:
    """(the labels a model answers among, its unknown class or None).

    With ``keywords``, only those words (the highest-scoring of their outputs),
    and with ``others_unknown`` as well an ``_unknown_`` class for every other
    answer; otherwise every output, ``_unknown_`` last when the model has it.
    """
    if keywords is not None:
        labels = tuple(keywords)
        if UNKNOWN_LABEL in labels:
            raise ValueError(f"{model.path}: {UNKNOWN_LABEL} is not a word to evaluate on")
        model.output_indices(labels)  # every keyword has an output, before the clips are read
        return labels, UNKNOWN_LABEL if others_unknown else None
    if others_unknown:
        raise ValueError("others_unknown needs keywords: with all of a model's words there is no other word")
    unknown_label = UNKNOWN_LABEL if UNKNOWN_LABEL in model.labels else None
    return tuple(label for label in model.labels if label != UNKNOWN_LABEL), unknown_label


def predict_ids(model, features: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """int[n]: for each example of ``features`` (float32[n, frames, features]), the index in
    ``labels`` of the highest-scoring of those labels' outputs."""
    return top_ids(model.predict_many(features).reshape(len(features), -1), model, labels)


def top_ids(scores: np.ndarray, model, labels: Sequence[str]) -> np.ndarray:
    """int[n]: for each row of ``scores`` (float[n, the model's outputs]), the index in ``labels``
    of the highest-scoring of those labels' outputs."""
    return np.argmax(scores[:, model.output_indices(labels)], axis=1)


def top_listened_ids(scores: np.ndarray, labels: Sequence[str], keywords: Sequence[str]) -> np.ndarray:
    """int[n]: for each row of ``scores`` (float[n, len(labels)]), the index in ``keywords`` of its
    top label, or ``len(keywords)`` when that label is none of them (how ``listen --keywords`` decides)."""
    top = np.asarray(labels)[np.argmax(scores, axis=1)]
    return np.array([list(keywords).index(label) if label in keywords else len(keywords) for label in top],
                    dtype=np.int64)


def peak_dbfs(audio: np.ndarray) -> np.ndarray:
    """float[n]: the peak level of each int16 clip (rows of ``audio``), dB relative to full scale."""
    peaks = np.abs(audio.astype(np.int32)).max(axis=1) if audio.size else np.zeros(len(audio))
    return 20.0 * np.log10(np.maximum(peaks, 1) / 32768.0)


def read_split_file(split_path: Path, data_dir: Path, *, check_exists: bool = True) -> List[Path]:
    """The clips a split file lists, resolved against ``data_dir``.

    One WAV per non-empty line, a path relative to the data folder (the
    course's ``./data/`` prefix stands for it too); lines starting with ``#``
    are comments. The clip's label is the name of the folder it lies in.

    Raises
    ------
    FileNotFoundError
        When the split file is missing.
    ValueError
        Naming the file and the line of every bad entry (absolute or leaving
        the data folder, not a ``.wav``, not inside a label folder, missing).
    """
    from train.kws.data import SPLIT_PATH_PREFIX

    split_path = Path(split_path)
    if not split_path.is_file():
        raise FileNotFoundError(f"split file not found: {split_path}")
    paths, problems = [], []
    for line_number, line in enumerate(split_path.read_text().splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        relative = Path(entry[len(SPLIT_PATH_PREFIX):] if entry.startswith(SPLIT_PATH_PREFIX) else entry)
        problem = None
        if relative.is_absolute() or ".." in relative.parts:
            problem = "expected a path relative to the data folder"
        elif relative.suffix != ".wav":
            problem = "expected a .wav file"
        elif len(relative.parts) < 2:
            problem = "expected the clip inside a folder named by its label"
        elif check_exists and not (Path(data_dir) / relative).is_file():
            problem = f"{Path(data_dir) / relative} does not exist (is the data folder {data_dir} right?)"
        if problem:
            problems.append(f"{split_path}, line {line_number} ({entry!r}): {problem}")
        else:
            paths.append(Path(data_dir) / relative)
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more bad lines"] if len(problems) > 10 else [])
        raise ValueError("\n".join(shown))
    if not paths:
        raise ValueError(f"split file {split_path} lists no clips")
    return paths


def uses_speech_commands(paths: Sequence[Path], data_dir: Path) -> bool:
    """Whether any clip lies under ``<data_dir>/mini_speech_commands`` (the data set to download)."""
    from train.kws.data import DATASET_FOLDER

    return any(Path(path).relative_to(data_dir).parts[0] == DATASET_FOLDER for path in paths)


def check_split_labels(paths: Sequence[Path], labels: Sequence[str], unknown_label: Optional[str], *,
                       model_path: Path, split_path: Path, keywords_only: bool = False) -> List[str]:
    """The folder labels of ``paths`` that a model answering among ``labels`` scores as its unknown class.

    Raises
    ------
    ValueError
        Naming the folder labels that are none of ``labels``, unless the model has
        ``unknown_label`` or only the clips of the keywords are evaluated (``keywords_only``).
    """
    from train.kws.data import label_of

    others = sorted({label_of(path) for path in paths} - set(labels) - {unknown_label})
    if not others or keywords_only:
        return []
    if unknown_label is None:
        raise ValueError(f"{split_path}: clips labelled {', '.join(others)} (their folder names), which "
                         f"{model_path} does not answer (its labels: {', '.join(labels)})")
    return others


def evaluate_model(model_path: Path, split: str = "test", *, keywords: Optional[Sequence[str]] = None,
                   data_dir: Optional[Path] = None, split_path: Optional[Path] = None,
                   split_file: Optional[Path] = None, clip_cache: Optional[Dict] = None,
                   others_unknown: bool = False, builtin_kernels: bool = False) -> Evaluation:
    """Evaluate the exported ``model_path`` on ``split`` (optionally on ``keywords`` only, and with
    ``others_unknown`` the other words' clips as ``_unknown_``: see the module docstring).

    ``split_path`` replaces the course's file for ``split`` (the course's
    format: clips of the eight words, others skipped or unknown). ``split_file``
    is any list of clips (see :func:`read_split_file`) whose folder labels the
    model must answer, or has an ``_unknown_`` class for. ``clip_cache`` (a
    dict) keeps clips and features between calls, so that several models on
    the same split read and featurise it once. ``builtin_kernels``: run the
    interpreter's own kernels without XNNPACK (``pi_runtime.model.load_model``).

    Raises
    ------
    ValueError
        For a model without labels in its sidecar, keywords it does not have,
        a model whose output does not match its labels, or a split file with
        bad lines or labels the model does not answer.
    """
    from train.kws.data import load_split
    from train.kws.features import compute_features
    from train.kws.folder_data import read_clips
    from train.paths import data_dir as default_data_dir

    model = load_scored_model(model_path, builtin_kernels=builtin_kernels)
    labels, unknown_label = answer_labels(model, keywords, others_unknown=others_unknown)
    cache = clip_cache if clip_cache is not None else {}
    clips_key = (split, labels, unknown_label, data_dir, split_path, split_file)
    if clips_key not in cache:
        if split_file is not None:
            folder = Path(data_dir) if data_dir is not None else default_data_dir()
            paths = read_split_file(split_file, folder)
            unknown_folders = check_split_labels(paths, labels, unknown_label, model_path=model_path,
                                                 split_path=split_file,
                                                 keywords_only=keywords is not None and not others_unknown)
            clips, _ = read_clips(paths, labels, unknown_label=unknown_label)  # any rate and channel count
            if len(clips) == 0:
                raise ValueError(f"{split_file} lists no clips of {', '.join(labels)}")
            cache[clips_key] = clips, tuple(unknown_folders)
        else:
            cache[clips_key] = load_split(split, data_dir=data_dir, labels=labels, split_path=split_path,
                                          unknown_label=unknown_label), ()
    clips, unknown_folders = cache[clips_key]
    features_key = clips_key + (model.model_input,)
    if features_key not in cache:
        cache[features_key] = compute_features(clips.audio, model.model_input)
    scores = model.predict_many(cache[features_key]).reshape(len(clips.label_ids), -1)
    predicted = (top_listened_ids(scores, model.labels, labels) if others_unknown
                 else top_ids(scores, model, clips.labels))
    return Evaluation(model_path=Path(model_path), labels=clips.labels, clip_paths=list(clips.paths),
                      label_ids=clips.label_ids, predicted_ids=predicted,
                      peak_dbfs=peak_dbfs(clips.audio), unknown_folders=unknown_folders, scores=scores)


def clip_name(path: Path) -> str:
    """``word/file.wav``: how the splits and the reports name a clip."""
    return f"{path.parent.name}/{path.name}"


def format_report(evaluation: Evaluation, split: str, *, show_errors: bool = False) -> str:
    """Accuracy, per-class recall, the confusion matrix and (optionally) the misclassified clips."""
    labels = evaluation.labels
    matrix = evaluation.confusion_matrix()
    errors = evaluation.error_rows
    lines = [f"{evaluation.model_path}: {evaluation.accuracy:.2%} on the {len(evaluation.label_ids)} {split} clips "
             f"of {', '.join(labels)} ({len(errors)} wrong)"]
    if evaluation.unknown_folders:
        lines.append(f"clips of {', '.join(evaluation.unknown_folders)} scored as {UNKNOWN_LABEL}")
    if UNKNOWN_LABEL in labels:
        is_other = evaluation.label_ids == labels.index(UNKNOWN_LABEL)
        right = evaluation.predicted_ids == evaluation.label_ids
        if is_other.any() and (~is_other).any():
            lines.append(f"keyword clips: {right[~is_other].mean():.2%} right ({int(right[~is_other].sum())} of "
                         f"{int((~is_other).sum())}); other clips answered {UNKNOWN_LABEL}: "
                         f"{right[is_other].mean():.2%} ({int(right[is_other].sum())} of {int(is_other.sum())})")
    rejections = [label for label in NON_KEYWORD_LABELS if label in labels]
    if rejections:
        rejected = evaluation.rejected_keyword_rows
        answers = Counter(labels[evaluation.predicted_ids[row]] for row in rejected)
        detail = ", ".join(f"{count} {label}" for label, count in sorted(answers.items()))
        lines.append(f"{len(rejected)} keyword clips answered {' or '.join(rejections)} (wrong)"
                     + (f": {detail}" if detail else ""))
    lines.append("")
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
    add_data_arguments(parser)
    parser.add_argument("--keywords", type=keyword_list, default=None,
                        help="comma-separated subset of the models' words to evaluate on, e.g. go,stop, each one "
                             "every model has (default: all of each model's words)")
    parser.add_argument("--others-unknown", action="store_true",
                        help="with --keywords: score the other words' clips too, as _unknown_; the answer is the "
                             "model's top output, any output not among the keywords counting as _unknown_ (how "
                             "listen --keywords decides)")
    parser.add_argument("--errors", action="store_true", help="list every misclassified clip with its peak level")
    return parser


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--split``, ``--data-dir``, ``--splits-dir`` and ``--split-file`` (read back with :func:`resolve_data`)."""
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="which split (default: test)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the data folder: holds mini_speech_commands/ and the clips of --split-file "
                             "(default: $TINYML_DATA_DIR or ~/.cache/tinyml-pi; Mini Speech Commands is downloaded "
                             "there when a split uses it and it is absent)")
    parser.add_argument("--splits-dir", type=Path, default=None,
                        help="folder with the kws_<split>_split.txt files (default: the course's splits)")
    parser.add_argument("--split-file", type=Path, default=None,
                        help="use the clips this file lists instead: one WAV per line, relative to the data "
                             "folder, labelled by the folder it lies in (replaces --split and --splits-dir)")


def resolve_data(args: argparse.Namespace) -> Tuple[Path, Optional[Path]]:
    """(data folder, course split path or None) for parsed ``--data-dir/--split/--splits-dir/--split-file``.

    Downloads Mini Speech Commands only when the clips asked for lie in it.
    """
    from train.kws.data import ensure_dataset, split_file
    from train.paths import data_dir as default_data_dir

    if args.split_file is None:
        from train.kws.folder_data import check_data_dir, is_folder_dataset

        check_data_dir(args.data_dir)
        if is_folder_dataset(args.data_dir):  # your own words: not a place to download the course's into
            raise ValueError(f"{args.data_dir} holds no mini_speech_commands/; to evaluate on a folder of your "
                             "own words, give --split-file (training wrote kws_test_split.txt beside its model)")
        split_path = args.splits_dir / split_file(args.split).name if args.splits_dir else None
        return ensure_dataset(args.data_dir), split_path
    if args.splits_dir is not None:
        raise ValueError("--split-file and --splits-dir exclude each other")
    data_dir = Path(args.data_dir) if args.data_dir is not None else default_data_dir()
    if uses_speech_commands(read_split_file(args.split_file, data_dir, check_exists=False), data_dir):
        ensure_dataset(data_dir)
    return data_dir, None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        keywords = tuple(sorted(args.keywords)) if args.keywords else None  # checked against each model
        if args.others_unknown and keywords is None:
            raise ValueError("--others-unknown needs --keywords (the words listened for)")
        if keywords is not None and len(keywords) < 2 and not args.others_unknown:
            raise ValueError(f"--keywords {keywords[0]} alone: one word against itself is always right; name two "
                             "or more, or add --others-unknown to score the other words' clips as _unknown_")
        missing = [str(path) for path in args.models if not path.is_file()]
        if missing:
            raise ValueError(f"no such model file: {', '.join(missing)}")
        data_dir, split_path = resolve_data(args)
        split_name = args.split_file.name if args.split_file is not None else args.split
        cache: Dict = {}
        evaluations = []
        for path in args.models:
            evaluation = evaluate_model(path, args.split, keywords=keywords, data_dir=data_dir,
                                        split_path=split_path, split_file=args.split_file, clip_cache=cache,
                                        others_unknown=args.others_unknown)
            print(format_report(evaluation, split_name, show_errors=args.errors) + "\n", flush=True)
            evaluations.append(evaluation)
    except (ValueError, RuntimeError, FileNotFoundError) as error:  # ModelError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    if len(evaluations) > 1:
        print(format_tally(evaluations))
    return 0


if __name__ == "__main__":
    run_command(main)
