"""Open-set keyword spotting: the keywords plus ``_silence_`` and ``_unknown_``.

A model that knows only its keywords answers one of them for any sound; an
open-set model can answer "nothing I know" (the Speech Commands 12-class task
and MLPerf Tiny's reference model do the same). Its training and validation
splits get generated negatives (:mod:`train.kws.negatives`: synthetic
non-keyword speech, reversed, cut and spliced words, babble, noise), and, for
a keyword subset, the clips of the other words as ``_unknown_``. The test split
keeps only the course's clips (the 800 words: an answer ``_silence_`` or
``_unknown_`` is wrong), and the held-out test negatives are scored apart,
kind by kind (:func:`rejection_report`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from pi_runtime.labels import NON_KEYWORD_LABELS, SILENCE_LABEL, UNKNOWN_LABEL
from train.kws.data import LABELS, ClipSet, load_split, split_file

GENERATED_PREFIX = Path("generated")  # the "path" of a generated clip: generated/<split>/<kind>/<index>
# The generated clips are data, like the dataset: one seed for every run (a training seed changes the
# weights, not the negatives), so they are made once and read from the cache afterwards.
NEGATIVES_SEED = 0


def open_set_labels(keywords: Sequence[str]) -> Tuple[str, ...]:
    """``keywords`` followed by ``_silence_`` and ``_unknown_``."""
    clash = [label for label in keywords if label in NON_KEYWORD_LABELS]
    if clash:
        raise ValueError(f"{', '.join(clash)} cannot be a keyword")
    return tuple(keywords) + (SILENCE_LABEL, UNKNOWN_LABEL)


def generated_clip_set(generated, labels: Sequence[str], *, split: str) -> ClipSet:
    """Generated clips (:class:`train.kws.negatives.GeneratedClips`) as a :class:`ClipSet` of ``labels``.

    A clip whose class is not among ``labels`` becomes ``_unknown_`` (a
    synthetic "yes" is unknown to a go/stop model), or is left out when
    ``labels`` has no unknown class.
    """
    labels = tuple(labels)
    unknown = labels.index(UNKNOWN_LABEL) if UNKNOWN_LABEL in labels else -1
    ids = np.array([labels.index(name) if name in labels else unknown for name in generated.classes], np.int32)
    rows = np.flatnonzero(ids >= 0)
    paths = [GENERATED_PREFIX / split / generated.kinds[row] / str(row) for row in rows]
    return ClipSet(audio=np.asarray(generated.audio)[rows], label_ids=ids[rows], labels=labels, paths=paths)


def other_word_rows(clips: ClipSet) -> np.ndarray:
    """Rows of ``clips`` that are generated non-keyword words (kinds ``tts_word`` and ``tts_hard``, as
    :func:`generated_clip_set` names them): the talkers of a babble of other words."""
    from train.kws.streams import WORD_KINDS

    parts = [Path(path).parts for path in clips.paths]  # generated/<split>/<kind>/<index>
    return np.array([row for row, part in enumerate(parts)
                     if len(part) == 4 and part[0] == GENERATED_PREFIX.name and part[2] in WORD_KINDS
                     and clips.labels[int(clips.label_ids[row])] == UNKNOWN_LABEL], dtype=np.int64)


def share_of(generated, share: float, *, seed: int = NEGATIVES_SEED):
    """A seeded ``share`` (0..1] of ``generated``, the same share of every kind, in their order."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    if share == 1.0:
        return generated
    rng = np.random.default_rng(seed)
    kinds = np.array(generated.kinds)
    rows = []
    for kind in sorted(set(generated.kinds)):
        of_kind = np.flatnonzero(kinds == kind)
        rows.extend(rng.choice(of_kind, size=max(1, int(round(share * len(of_kind)))), replace=False).tolist())
    return generated.rows(sorted(rows))


def synthetic_keyword_clips(split: str, labels: Sequence[str], *, data_dir: Path, progress: bool = False,
                            register: str = "natural", accented: bool = False) -> ClipSet:
    """The keywords spoken by ``split``'s synthetic voices in ``register`` (its accented voices with
    ``accented``), as clips of ``labels`` (see :func:`generated_clip_set`)."""
    from train.kws.negatives import synthetic_keywords

    spoken = synthetic_keywords(split, data_dir=data_dir, seed=NEGATIVES_SEED, progress=progress, register=register,
                                accented=accented)
    return generated_clip_set(spoken, labels, split=split)


def load_open_set_splits(keywords: Sequence[str], *, train_labels: Sequence[str], data_dir: Path,
                         splits_dir: Optional[Path] = None, negatives_share: float = 1.0,
                         synthetic_keywords: bool = False, stream_windows_share: float = 0.0,
                         tonal_negatives: bool = False, babble_words_negatives: bool = False,
                         raised_voices: bool = False, hard_negatives_from: Optional[Path] = None,
                         progress: bool = False):
    """The course's splits with generated negatives, for an open-set model.

    Parameters
    ----------
    keywords : the delivered model's keywords (sorted)
    train_labels : the classes trained on: ``open_set_labels(keywords)``, or all eight words
        plus the two open-set classes when a subset learns every word first
    data_dir : the folder holding ``mini_speech_commands/`` (and the generated cache)
    negatives_share : the share of the generated negatives joined to training and validation
        (the same seeded share of every kind; the test negatives are always all scored)
    synthetic_keywords : add the training voices' synthetic keywords as extra positives
    stream_windows_share : when > 0, add windows cut from a stream of the training split
        (:mod:`train.kws.stream_windows`): one for this share of the training keyword clips, as many
        negative windows; training only
    tonal_negatives : join the tonal training negatives (tones, beeps, music), made for training only
    babble_words_negatives : join the training negatives of babble of other words, made for training only
        (both among :data:`train.kws.negatives.OPT_IN_KINDS`)
    raised_voices : training only: add the training voices' keywords in the raised register (higher
        pitch and formants, :func:`train.kws.negatives.synthetic_keywords`) as positives and the same
        share of their words in it (:func:`train.kws.negatives.raised_words`) as ``_unknown_``
    hard_negatives_from : training only: a model file whose false alarms on a stream of the training
        negatives (all of the recipe's kinds, not only its share) join training, every one of them
        (:func:`train.kws.stream_windows.mined_hard_windows`); the share of the other negatives is drawn
        as it is without them

    Returns
    -------
    (Splits, test_negatives)
        Training and validation with their generated clips appended; the test
        split holds the course's clips only (other words as ``_unknown_``).
        ``test_negatives`` are the held-out generated test clips, for
        :func:`rejection_report`.
    """
    from train.kws.negatives import build_negatives, raised_words, with_opt_in_kinds
    from train.kws.training import Splits

    delivered = open_set_labels(keywords)
    train_labels = tuple(train_labels)
    if UNKNOWN_LABEL not in train_labels or SILENCE_LABEL not in train_labels:
        raise ValueError(f"open-set training labels need {SILENCE_LABEL} and {UNKNOWN_LABEL}: {train_labels}")
    opt_in = [kind for kind, wanted in (("tonal", tonal_negatives), ("babble_words", babble_words_negatives)) if wanted]
    sets, test_negatives = [], None
    for name in ("train", "val", "test"):
        split_path = Path(splits_dir) / split_file(name).name if splits_dir else None
        clips = load_split(name, data_dir=data_dir, labels=LABELS, split_path=split_path, progress=progress)
        negatives = build_negatives(name, split_clips=clips, data_dir=data_dir, seed=NEGATIVES_SEED,
                                    progress=progress)
        if name == "test":
            sets.append(clips.relabel(delivered))
            test_negatives = negatives
            continue
        negatives = with_opt_in_kinds(negatives, opt_in)
        pool, negatives = negatives, share_of(negatives, negatives_share)
        joined = clips.relabel(train_labels).concat(generated_clip_set(negatives, train_labels, split=name))
        if name == "train" and hard_negatives_from is not None:
            from train.kws.stream_windows import mined_hard_windows

            hard = mined_hard_windows(name, negatives=pool, miner_path=hard_negatives_from, data_dir=data_dir,
                                      seed=NEGATIVES_SEED, progress=progress)
            joined = joined.concat(generated_clip_set(hard, train_labels, split=name))
        if name == "train" and stream_windows_share > 0:
            from train.kws.stream_windows import training_stream_windows

            windows = training_stream_windows(name, split_clips=clips, negatives=negatives, data_dir=data_dir,
                                              keyword_share=stream_windows_share, seed=NEGATIVES_SEED,
                                              progress=progress)
            joined = joined.concat(generated_clip_set(windows, train_labels, split=name))
        if synthetic_keywords:
            joined = joined.concat(synthetic_keyword_clips(name, train_labels, data_dir=data_dir, progress=progress))
        if raised_voices and name == "train":
            words = share_of(raised_words(name, data_dir=data_dir, seed=NEGATIVES_SEED, progress=progress),
                             negatives_share)
            joined = joined.concat(generated_clip_set(words, train_labels, split=name)).concat(
                synthetic_keyword_clips(name, train_labels, data_dir=data_dir, progress=progress, register="raised"))
        sets.append(joined)
    return Splits(*sets), test_negatives


def predicted_labels(model_path: Path, audio: np.ndarray, *, feature_backend: str = "native") -> List[str]:
    """The label the exported model answers for each int16 clip, through pi_runtime."""
    from pi_runtime.sidecar import read_kws_spec
    from train.kws.features import compute_features
    from train.kws.training import predict_file

    spec = read_kws_spec(model_path)  # labels and model input; predict_file loads the model itself
    if len(audio) == 0:
        return []
    features = compute_features(np.asarray(audio), spec.input, backend=feature_backend)
    return [spec.labels[k] for k in predict_file(model_path, features)]


def rejection_report(model_path: Path, generated, *, feature_backend: str = "native") -> Dict[str, Dict]:
    """How an exported model answers generated clips, kind by kind.

    For negatives (class ``_silence_`` / ``_unknown_``): the share answered
    with a non-keyword label (``rejected``) and the share answered with exactly
    their class. For synthetic keywords: the share answered correctly. Keys:
    each kind, plus ``"all negatives"``.
    """
    from pi_runtime.sidecar import read_kws_spec

    labels = list(read_kws_spec(model_path).labels)
    answers = np.array(predicted_labels(model_path, generated.audio, feature_backend=feature_backend), dtype=str)
    classes, kinds = np.array(generated.classes), np.array(generated.kinds)
    answered_non_keyword = np.isin(answers, NON_KEYWORD_LABELS)
    report: Dict[str, Dict] = {}
    negative = np.isin(classes, NON_KEYWORD_LABELS)
    for kind in sorted(set(kinds.tolist())):
        rows = kinds == kind
        entry = {"clips": int(rows.sum())}
        if negative[rows].all():
            entry["rejected"] = round(float(answered_non_keyword[rows].mean()), 5)
            entry["exact_class"] = round(float((answers[rows] == classes[rows]).mean()), 5)
        else:  # keywords spoken by synthetic voices: a keyword the model does not have counts as unknown
            expected = np.where(np.isin(classes[rows], labels), classes[rows], UNKNOWN_LABEL)
            entry["correct"] = round(float((answers[rows] == expected).mean()), 5)
        report[kind] = entry
    if negative.any():
        report["all negatives"] = {"clips": int(negative.sum()),
                                   "rejected": round(float(answered_non_keyword[negative].mean()), 5)}
    return report


def held_out_test_report(model_path: Path, *, data_dir: Path, test_negatives=None, feature_backend: str = "native",
                         progress: bool = False) -> Dict[str, Dict]:
    """An open-set model on the held-out generated test clips, as its sidecar's ``results.open_set`` records it:
    ``test_negatives`` (share of each kind answered ``_silence_``/``_unknown_``) and
    ``test_synthetic_keywords`` (the held-out voice's keywords, share right). ``test_negatives`` are built
    from the test split when not given (the same seeded clips, from the cache)."""
    from train.kws.negatives import build_negatives, synthetic_keywords

    if test_negatives is None:
        clips = load_split("test", data_dir=data_dir, labels=LABELS, progress=progress)
        test_negatives = build_negatives("test", split_clips=clips, data_dir=data_dir, seed=NEGATIVES_SEED,
                                         progress=progress)
    spoken = synthetic_keywords("test", data_dir=data_dir, seed=NEGATIVES_SEED)
    return {"test_negatives": rejection_report(model_path, test_negatives, feature_backend=feature_backend),
            "test_synthetic_keywords": rejection_report(model_path, spoken, feature_backend=feature_backend)}


def record_held_out_test(model_path: Path, *, data_dir: Path, test_negatives=None, feature_backend: str = "native",
                         say=None) -> None:
    """Score an open-set model on the held-out generated test clips, write it into its sidecar's
    ``results.open_set`` and log it."""
    from pi_runtime.sidecar import read_sidecar, write_sidecar
    from train.kws.training import log

    say = say or log
    report = held_out_test_report(model_path, data_dir=data_dir, test_negatives=test_negatives,
                                  feature_backend=feature_backend)
    sidecar = read_sidecar(model_path)
    sidecar["results"]["open_set"] = report
    write_sidecar(model_path, sidecar)
    say("held-out generated test clips (share answered _silence_/_unknown_; keywords: share correct):")
    for kind, entry in {**report["test_negatives"], **report["test_synthetic_keywords"]}.items():
        share = entry.get("rejected", entry.get("correct"))
        say(f"  {kind:<16s} {entry['clips']:5d} clips  {100 * share:6.2f} %")
