"""Command-line value types shared by the commands: a bad number is refused by argparse, naming its option.

    parser.add_argument("--seed", type=non_negative_int, default=0)

argparse turns the ``ValueError`` of a ``type`` into ``error: argument --seed:
invalid non_negative_int value: '-1'``; these raise ``argparse.ArgumentTypeError``
instead, whose text argparse prints as it is, after the option's name.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Callable, NoReturn, Optional

__all__ = ["non_negative_int", "positive_int", "positive_float", "non_negative_float", "fraction",
           "output_folder", "run_command", "EXIT_BROKEN_PIPE", "add_builtin_kernels_argument"]

EXIT_BROKEN_PIPE = 128 + 13  # a shell's status for a command stopped by SIGPIPE


def _integer(text: str, least: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def _number(text: str, positive: bool, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (a seed, a count that may be zero)."""
    return _integer(text, 0, "an integer >= 0")


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _integer(text, 1, "an integer >= 1")


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _number(text, True, "a finite number > 0")


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    return _number(text, False, "a finite number >= 0")


def fraction(text: str) -> float:
    """A number in [0, 1): a share that may be none but never all (a final sparsity)."""
    value = _number(text, False, "a number in [0, 1)")
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def output_folder(text: str) -> Path:
    """A folder to write into: absent (made later) or a folder, never an existing file, said before any work."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    return path


def run_command(main: Callable[[], Optional[int]]) -> NoReturn:
    """Run a command's ``main`` and exit with its status; when the reader of its output goes
    away (``| head``), stop quietly with :data:`EXIT_BROKEN_PIPE` instead of a traceback."""
    try:
        status = main()
        sys.stdout.flush()  # inside the try: a pipe closed during the last lines breaks here
    except BrokenPipeError:
        # Python flushes stdout again at exit and would complain about the closed pipe there.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)
    sys.exit(status)


def add_builtin_kernels_argument(parser: argparse.ArgumentParser) -> None:
    """``--builtin-kernels``, for the commands that run a model (``load_model(builtin_kernels=...)``)."""
    parser.add_argument("--builtin-kernels", action="store_true",
                        help="run the interpreter's own kernels without its default delegate (XNNPACK), as "
                             "tflite_runtime 2.14 runs integer models: its answers differ by a few quantisation "
                             "steps (python -m benchmarks.kernels)")
