"""What the models answer on the babble negatives, against who speaks in them.

    python -m benchmarks.babble_negatives [MODEL ...] [--split val|test] [--data-dir DIR] [--markdown FILE]

A babble negative (``train.kws.negatives``, kind ``babble``) overlaps three to six of the split's
keyword clips, each at unit active level less up to 6 dB; it is ``_unknown_`` to the open-set models
and, in the streams, audio on which any detection is a false alarm on noise and babble. Yet every
talker in it says a keyword. This benchmark makes the split's derived negatives again (the same draws,
in seconds; ``split_derived_negatives``), reads who speaks in each babble clip and how far the loudest
talker stands over the others together (dB of energy), and scores each model on the clips through
``pi_runtime``: how often it answers a keyword, and how often that keyword is the loudest talker's word
or some talker's word, by how far the loudest stands out. It measures and prints; it asserts nothing.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from benchmarks.reporting import Report, add_data_dir_argument, add_markdown_argument, load_kws_models, models_to_run
from pi_runtime.arguments import run_command
from pi_runtime.labels import NON_KEYWORD_LABELS

# Bands of the loudest talker over the rest together (dB), for the table.
LEADER_BANDS_DB = ((-np.inf, -3.0), (-3.0, 0.0), (0.0, 3.0), (3.0, np.inf))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.babble_negatives",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", type=Path, metavar="MODEL",
                        help="keyword-spotting models (default: every model delivered in models/kws/)")
    parser.add_argument("--split", choices=("val", "test"), default="val",
                        help="whose babble negatives (default val; test measures the negatives of the test "
                             "stream, for a report, never for a choice)")
    add_data_dir_argument(parser, holds="mini_speech_commands/")
    add_markdown_argument(parser)
    return parser


def band_name(low: float, high: float) -> str:
    if not np.isfinite(low):
        return f"under {high:+g} dB"
    if not np.isfinite(high):
        return f"{low:+g} dB or more"
    return f"{low:+g} to {high:+g} dB"


def word_of(name: str) -> str:
    """The keyword of a split clip's name (``"go/0a2b_nohash_0.wav"`` -> ``"go"``)."""
    return name.split("/", 1)[0]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        paths = models_to_run(args.models)
        loaded = load_kws_models(paths)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from train.kws.data import LABELS, load_split
    from train.kws.negatives import split_derived_negatives
    from train.kws.open_set import NEGATIVES_SEED, predicted_labels

    report = Report()
    clips = load_split(args.split, data_dir=args.data_dir, labels=LABELS)
    derived, settings = split_derived_negatives(args.split, clips, seed=NEGATIVES_SEED)
    rows = [k for k, kind in enumerate(derived.kinds) if kind == "babble"]
    talkers = [[word_of(name) for name in settings[k]["clips"]] for k in rows]
    leaders = [word_of(settings[k]["leader"]) for k in rows]
    over_db = np.array([np.nan if settings[k]["leader_over_rest_db"] is None else settings[k]["leader_over_rest_db"]
                        for k in rows], dtype=float)
    report(f"{len(rows)} babble negatives of the {args.split} split "
           f"({', '.join(f'{n} of {t}' for t, n in sorted(Counter(len(w) for w in talkers).items()))} talkers); "
           f"the loudest talker over the others together: median {np.nanmedian(over_db):+.1f} dB, quartiles "
           f"{np.nanpercentile(over_db, 25):+.1f} to {np.nanpercentile(over_db, 75):+.1f} dB, at most "
           f"{np.nanmax(over_db):+.1f} dB")
    report("(the robustness check's babble at 10 dB SNR puts a keyword 10 dB over five other clips, and the "
           "streams' backgrounds put keywords 5, 10 and 20 dB over babble: those are keywords to detect)")
    report()
    bands = [(low, high, (over_db >= low) & (over_db < high)) for low, high in LEADER_BANDS_DB]
    header = f"{'model':28} {'keyword answered':>18} {'the loudest word':>20} {'some talker word':>20}"
    report(header + "".join(f" {band_name(low, high):>22}" for low, high, _ in bands))
    report("-" * (len(header) + 23 * len(bands)))
    for path, model in zip(paths, loaded):
        answers = np.array(predicted_labels(path, derived.audio[rows]), dtype=str)
        keyword = ~np.isin(answers, NON_KEYWORD_LABELS)
        leader = keyword & (answers == np.array(leaders))
        some = keyword & np.array([answer in words for answer, words in zip(answers, talkers)])
        # A keyword answered at random among the model's own: how often it would be the loudest's or some talker's.
        own = [label for label in model.spec.labels if label not in NON_KEYWORD_LABELS]
        chance_leader = np.mean([word in own for word in leaders]) / len(own)
        chance_some = np.mean([len(set(words) & set(own)) for words in talkers]) / len(own)
        cells = [f"{int(keyword[m].sum())}/{int(m.sum())}, {int(leader[m].sum())} loudest" for _, _, m in bands]
        report(f"{Path(path).name:28} {_share(keyword.sum(), len(rows)):>18} "
               f"{_share(leader.sum(), keyword.sum()) + f' [{100 * chance_leader:.0f}]':>20} "
               f"{_share(some.sum(), keyword.sum()) + f' [{100 * chance_some:.0f}]':>20}"
               + "".join(f" {cell:>22}" for cell in cells))
    report()
    report("columns: babble clips answered with a keyword; of those answers, the share that is the loudest "
           "talker's word and that is some talker's word ([chance]: the same share, in %, for a keyword answered "
           "at random among the model's own); then per band of the loudest talker over the rest: "
           "clips answered with a keyword / clips, and how many with the loudest talker's word")
    if args.markdown:
        report.write_markdown(args.markdown, title="What the models answer on the babble negatives",
                              command=" ".join(["python -m benchmarks.babble_negatives",
                                                *(argv if argv is not None else sys.argv[1:])]),
                              note="Clips through `pi_runtime` (the exported file, the native frontend); "
                                   "the negatives made again with the draws of their cache.")
        print(f"wrote {args.markdown}")
    return 0


def _share(part: int, whole: int) -> str:
    return f"{int(part)}/{int(whole)} ({100 * part / whole:.0f} %)" if whole else "0/0"


if __name__ == "__main__":
    run_command(main)
