"""Labels with a meaning of their own in a keyword-spotting model's outputs.

An open-set model answers "nothing I know" as well as its keywords: the
Speech Commands convention adds ``_silence_`` (no speech) and ``_unknown_``
(speech or sound that is none of the keywords). A sidecar may list its
keywords explicitly (``"keywords"``); without that list every label except
these two is a keyword.
"""
from __future__ import annotations

import argparse
from typing import List, Optional, Sequence, Tuple

SILENCE_LABEL = "_silence_"
UNKNOWN_LABEL = "_unknown_"
NON_KEYWORD_LABELS: Tuple[str, ...] = (SILENCE_LABEL, UNKNOWN_LABEL)


def keyword_labels(labels: Sequence[str], declared: Optional[Sequence[str]] = None) -> Tuple[str, ...]:
    """The keywords among ``labels``, in label order.

    Parameters
    ----------
    labels : the model's output labels
    declared : the sidecar's ``"keywords"`` list, when it has one

    Raises
    ------
    ValueError
        When ``declared`` names a label the model does not have, or no keyword remains.
    """
    labels = tuple(labels)
    if declared is None:
        keywords = tuple(label for label in labels if label not in NON_KEYWORD_LABELS)
    else:
        missing = [word for word in declared if word not in labels]
        if missing:
            raise ValueError(f"keywords {', '.join(map(repr, missing))} are not among the labels {', '.join(labels)}")
        keywords = tuple(label for label in labels if label in set(declared))
    if not keywords:
        raise ValueError(f"no keyword among the labels {', '.join(labels)}")
    return keywords


def keyword_list(text: str) -> List[str]:
    """``"go, stop"`` -> ``["go", "stop"]`` (an argparse type: the words listened for, checked
    against a model later); an empty or repeated word is a usage error."""
    words = [word.strip() for word in text.split(",")]
    if not all(words):
        raise argparse.ArgumentTypeError(f"expected comma-separated keywords, got {text!r}")
    if len(set(words)) != len(words):
        raise argparse.ArgumentTypeError(f"a keyword is named twice in {text!r}")
    return words
