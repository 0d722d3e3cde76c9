"""The independent check: delivered keyword models on speech from espeak-ng.

No model learnt from espeak-ng or was chosen with it (training and selection
use flite and festival only, :mod:`train.kws.negatives`), so this measures how
the models carry to an engine, and voices, they have never met:

* the eight keywords spoken by eight espeak-ng voices (American, British,
  Scottish, Caribbean, Received Pronunciation, Lancaster and West Midlands
  English, male and female variants), 40 clips a word, each with its own
  voice, rate, pitch, level, place in the clip and noise floor, made as the
  synthetic keywords of the splits are;
* for models with ``_unknown_``: 400 non-keyword words of the test split's
  word list and 100 hard ones (town, goal, lift, ...), spoken by the same
  voices, and the share answered ``_unknown_`` or ``_silence_``.

Every model runs from its exported file through ``pi_runtime`` with the native
frontend. An answer ``_silence_`` or ``_unknown_`` to a keyword is wrong; a
keyword subset (go/stop) is scored on its own words, and, when it has
``_unknown_``, on the other six as ``_unknown_``. With ``--keywords go,stop``
every model is listened to for those words only, as ``listen --keywords``
does: an answer naming one of its other keywords counts as ``_unknown_``, the
other keywords' clips must be answered so, and the non-keyword words are
scored for every model. The audio is seeded and cached under ``<data
folder>/kws_generated/espeak_check/`` with a manifest.

This measures and prints; it must not be used to choose a model or a recipe.

    python -m benchmarks.espeak_check [--model M ...] [--markdown benchmarks/results/espeak_check.md]
"""
from __future__ import annotations

import argparse
import platform
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from benchmarks.reporting import add_data_dir_argument, add_markdown_argument, load_kws_models, models_to_run
from pi_runtime.arguments import non_negative_int, positive_int, run_command
from pi_runtime.labels import NON_KEYWORD_LABELS, UNKNOWN_LABEL, keyword_list
from train.kws import negatives
from train.kws.negatives import GeneratedClips, Voice

CHECK_FOLDER = "espeak_check"  # under <data folder>/kws_generated/
CHECK_SEED = 0
KEYWORD_CLIPS_PER_WORD = 40
OTHER_WORDS = 400
HARD_WORDS = 100
WORD_SPLIT = "test"  # words no model trained on or was chosen with


def _espeak_voice(engine_voice: str) -> Voice:
    # Each variant is its own speaker; espeak-ng moves its own pitch (see negatives.ESPEAK_DEFAULT_PITCH).
    return Voice(f"espeak_{engine_voice}", "espeak-ng", engine_voice, engine_voice, True, 0.0)


# What the spoken audio depends on beyond the request of train.kws.negatives: a change rebuilds the cache.
_ESPEAK_SETTINGS = {"espeak_default_words_per_minute": negatives.ESPEAK_DEFAULT_WORDS_PER_MINUTE,
                    "espeak_default_pitch": negatives.ESPEAK_DEFAULT_PITCH}

VOICES: Tuple[Voice, ...] = tuple(_espeak_voice(name) for name in (
    "en-us", "en-us+f3", "en-gb+m3", "en-gb-scotland+f2", "en-029", "en-gb-x-rp+f4", "en-gb-x-gbclan+m5",
    "en-gb-x-gbcwmd+f1"))


# -- the audio ------------------------------------------------------------------------------------
def espeak_keywords(*, data_dir: Optional[Path] = None, clips_per_word: int = KEYWORD_CLIPS_PER_WORD,
                    voices: Sequence[Voice] = VOICES, seed: int = CHECK_SEED,
                    progress: bool = False) -> GeneratedClips:
    """The eight keywords spoken by ``voices``: ``clips_per_word`` clips a word, class = the keyword."""
    if isinstance(clips_per_word, bool) or int(clips_per_word) != clips_per_word or clips_per_word < 1:
        raise ValueError(f"clips_per_word must be a positive integer, got {clips_per_word!r}")
    request = negatives._request("keywords", CHECK_FOLDER, seed=seed, voices=voices,
                                 extra={"clips_per_word": int(clips_per_word), **_ESPEAK_SETTINGS})

    def generate():
        return negatives.speak_keywords(voices, int(clips_per_word), np.random.default_rng([seed, 101]),
                                        kind="espeak_keyword", progress=progress)

    return negatives._cached(CHECK_FOLDER, "keywords", request, generate, data_dir, progress)


def espeak_words(*, data_dir: Optional[Path] = None, count: int = OTHER_WORDS, hard_count: int = HARD_WORDS,
                 voices: Sequence[Voice] = VOICES, seed: int = CHECK_SEED, progress: bool = False) -> GeneratedClips:
    """Non-keyword words of the test split's word list (homophones of a keyword left out) spoken by
    ``voices``: class ``_unknown_``, kinds ``tts_word`` and ``tts_hard``."""
    for name, value in (("count", count), ("hard_count", hard_count)):
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if count + hard_count == 0:
        raise ValueError("ask for at least one word")
    request = negatives._request("words", CHECK_FOLDER, seed=seed, voices=voices,
                                 extra={"count": int(count), "hard_count": int(hard_count), "word_split": WORD_SPLIT,
                                        **_ESPEAK_SETTINGS})

    def generate():
        plain = negatives.split_words(WORD_SPLIT, negatives._with_spares(int(count)), seed=seed) if count else []
        hard = (negatives.split_words(WORD_SPLIT, negatives._with_spares(int(hard_count)), seed=seed, hard=True)
                if hard_count else [])
        return negatives.speak_words(plain, hard, voices, int(count), int(hard_count),
                                     np.random.default_rng([seed, 102]), progress=progress)

    return negatives._cached(CHECK_FOLDER, "words", request, generate, data_dir, progress)


def voice_of(source: str) -> str:
    """The voice in a generated clip's source (``word|voice|stretch=...|pitch=...``)."""
    parts = source.split("|")
    if len(parts) < 2 or not parts[1]:
        raise ValueError(f"no voice in source {source!r}")
    return parts[1]


# -- scoring --------------------------------------------------------------------------------------
@dataclass
class CheckScore:
    """One model's answers: keywords right (by word and by voice) and non-keyword words rejected."""

    by_word: Dict[str, Tuple[int, int]] = field(default_factory=dict)    # word -> (right, clips)
    by_voice: Dict[str, Tuple[int, int]] = field(default_factory=dict)   # voice -> (right, clips)
    rejected_by_kind: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # kind -> (rejected, clips)

    @property
    def keyword_accuracy(self) -> float:
        right = sum(r for r, _ in self.by_word.values())
        clips = sum(n for _, n in self.by_word.values())
        return right / clips if clips else float("nan")

    def worst(self, table: str) -> Tuple[str, float]:
        """The word (``table="by_word"``) or voice (``"by_voice"``) answered worst, and its accuracy."""
        entries = getattr(self, table)
        name = min(entries, key=lambda key: (entries[key][0] / entries[key][1], key))
        return name, entries[name][0] / entries[name][1]


def score_answers(labels: Sequence[str], keyword_answers: Sequence[str], keyword_classes: Sequence[str],
                  keyword_voices: Sequence[str], word_answers: Sequence[str] = (),
                  word_kinds: Sequence[str] = ()) -> CheckScore:
    """Score a model with outputs ``labels`` from its answers (labels) to the keyword and word clips.

    A keyword the model has must be answered with itself; one it lacks must be answered ``_unknown_``
    when the model has that output, and is not scored when it has not. Non-keyword words are scored
    (answered ``_unknown_`` or ``_silence_``) only for a model with ``_unknown_``.
    """
    labels = tuple(labels)
    if not (len(keyword_answers) == len(keyword_classes) == len(keyword_voices)):
        raise ValueError("keyword answers, classes and voices differ in length")
    if len(word_answers) != len(word_kinds):
        raise ValueError("word answers and kinds differ in length")
    has_unknown = UNKNOWN_LABEL in labels
    result = CheckScore()
    for answer, word, voice in zip(keyword_answers, keyword_classes, keyword_voices):
        expected = word if word in labels else (UNKNOWN_LABEL if has_unknown else None)
        if expected is None:
            continue
        right = int(answer == expected)
        for table, key in ((result.by_word, word), (result.by_voice, voice)):
            hits, clips = table.get(key, (0, 0))
            table[key] = (hits + right, clips + 1)
    if has_unknown:
        for answer, kind in zip(word_answers, word_kinds):
            rejected, clips = result.rejected_by_kind.get(kind, (0, 0))
            result.rejected_by_kind[kind] = (rejected + int(answer in NON_KEYWORD_LABELS), clips + 1)
    return result


def listened_answers(answers: Sequence[str], model_keywords: Sequence[str], listened: Sequence[str]) -> List[str]:
    """The answers of a model listened to for ``listened`` only: another of its keywords becomes ``_unknown_``."""
    return [UNKNOWN_LABEL if answer in model_keywords and answer not in listened else answer for answer in answers]


def check_model(model_path: Path, keywords: GeneratedClips, words: Optional[GeneratedClips],
                listened: Optional[Sequence[str]] = None) -> CheckScore:
    """Score ``model_path`` on the keyword clips and, when it can answer ``_unknown_`` (or is
    listened to for ``listened`` only, its other keywords then meaning ``_unknown_``), the word clips."""
    from pi_runtime.sidecar import read_kws_spec
    from train.kws.open_set import predicted_labels

    spec = read_kws_spec(model_path)
    labels = spec.labels
    if listened is not None:
        labels = spec.listened_keywords(listened) + (UNKNOWN_LABEL,)
    scored_words = words if words is not None and UNKNOWN_LABEL in labels else None
    audio = keywords.audio if scored_words is None else np.concatenate([keywords.audio, scored_words.audio])
    answers = predicted_labels(model_path, audio)  # one pass: the model is loaded once
    if listened is not None:
        answers = listened_answers(answers, spec.keywords, labels)
    return score_answers(labels, answers[:len(keywords)], keywords.classes,
                         [voice_of(source) for source in keywords.sources], answers[len(keywords):],
                         [] if scored_words is None else list(scored_words.kinds))


# -- the report -----------------------------------------------------------------------------------
def _percent(hits: int, total: int) -> str:
    return f"{100 * hits / total:.1f}" if total else "-"


def report_lines(results: Dict[str, CheckScore], keywords: GeneratedClips, words: Optional[GeneratedClips],
                 manifest: dict) -> List[str]:
    engines = manifest.get("request", {}).get("engines", {})
    lines = [f"- espeak-ng: {engines.get('espeak-ng', '?')}; voices: "
             + ", ".join(voice.engine_voice for voice in VOICES),
             f"- {len(keywords)} keyword clips"
             + (f", {len(words)} non-keyword word clips ({', '.join(f'{n} {k}' for k, n in words.counts().items())})"
                if words is not None else ""),
             "", "| model | espeak-ng keywords | worst word | worst voice | non-keyword words answered "
             "`_unknown_`/`_silence_` (all / hard) |", "| --- | ---: | --- | --- | ---: |"]
    for name, result in results.items():
        if not result.by_word:
            continue
        word, word_accuracy = result.worst("by_word")
        voice, voice_accuracy = result.worst("by_voice")
        clips = sum(n for _, n in result.by_word.values())
        rejected = "-"
        if result.rejected_by_kind:
            all_rejected = sum(r for r, _ in result.rejected_by_kind.values())
            all_clips = sum(n for _, n in result.rejected_by_kind.values())
            rejected = f"{_percent(all_rejected, all_clips)} / {_percent(*result.rejected_by_kind.get('tts_hard', (0, 0)))}"
        lines.append(f"| {name} | {100 * result.keyword_accuracy:.1f} % of {clips} | {word} "
                     f"{100 * word_accuracy:.1f} | {voice.removeprefix('espeak_')} {100 * voice_accuracy:.1f} "
                     f"| {rejected} |")
    for table, title in (("by_word", "word"), ("by_voice", "voice")):
        keys = sorted({key for result in results.values() for key in getattr(result, table)})
        lines += ["", f"Keywords answered right by {title} (%):", "",
                  "| model | " + " | ".join(key.removeprefix("espeak_") for key in keys) + " |",
                  "| --- |" + " ---: |" * len(keys)]
        for name, result in results.items():
            entries = getattr(result, table)
            lines.append(f"| {name} | " + " | ".join(_percent(*entries[key]) if key in entries else "-"
                                                      for key in keys) + " |")
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.espeak_check", description=__doc__.split("\n\n")[0],
                                     epilog="Measures only: never choose a model or a recipe with it.")
    parser.add_argument("--model", type=Path, action="append",
                        help="a keyword-spotting model (.tflite or .tflite.zlib, sidecar beside); repeat for "
                             "several (default: every model in models/kws/)")
    add_data_dir_argument(parser, holds="kws_generated/espeak_check/, the espeak-ng audio's cache")
    parser.add_argument("--clips-per-word", type=positive_int, default=KEYWORD_CLIPS_PER_WORD,
                        help=f"espeak-ng clips of each keyword (default {KEYWORD_CLIPS_PER_WORD})")
    parser.add_argument("--words", type=non_negative_int, default=OTHER_WORDS,
                        help=f"non-keyword words (default {OTHER_WORDS}; 0 with --hard-words 0: none)")
    parser.add_argument("--hard-words", type=non_negative_int, default=HARD_WORDS,
                        help=f"hard non-keyword words such as town or goal (default {HARD_WORDS})")
    parser.add_argument("--keywords", type=keyword_list,
                        help="listen to every model for these of its keywords only, comma-separated (e.g. "
                             "go,stop; as listen --keywords): its other keywords count as _unknown_")
    add_markdown_argument(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        models = models_to_run(args.model)
        for model in load_kws_models(models):  # a bad model, or a word some model lacks: said before any audio
            if args.keywords is not None:
                model.spec.listened_keywords(args.keywords)
        keywords = espeak_keywords(data_dir=args.data_dir, clips_per_word=args.clips_per_word, progress=True)
        words = (espeak_words(data_dir=args.data_dir, count=args.words, hard_count=args.hard_words, progress=True)
                 if args.words or args.hard_words else None)
    except (RuntimeError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    manifest = negatives.read_manifest(CHECK_FOLDER, "keywords", args.data_dir)
    results: Dict[str, CheckScore] = {}
    for path in models:
        print(f"{Path(path).name}: scoring ...", file=sys.stderr)
        results[Path(path).name] = check_model(Path(path), keywords, words, args.keywords)
    header = [f"- python {platform.python_version()}, {platform.machine()} {platform.system()}"]
    if args.keywords is not None:
        header.append(f"- every model listened to for {', '.join(args.keywords)} only: its other keywords' "
                      "clips must be answered `_unknown_`, and an answer naming one of them counts as `_unknown_`")
    lines = header + report_lines(results, keywords, words, manifest)
    print("\n".join(lines))
    if args.markdown:
        command = "python -m benchmarks.espeak_check" + "".join(f" {arg}" for arg in (argv or sys.argv[1:]))
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(
            "# The independent check: keyword models on espeak-ng speech\n\n"
            f"Produced on {date.today().isoformat()} by `{command}` (see the module docstring). No model was "
            "trained or chosen with espeak-ng; these figures must not be used to choose one either.\n\n"
            + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    run_command(main)
