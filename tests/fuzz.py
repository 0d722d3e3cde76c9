"""The property tests with many more examples, for N minutes.

    python -m tests.fuzz --minutes 30               # from the repository root
    python -m tests.fuzz --minutes 30 --sanitizer   # the same under AddressSanitizer/UBSan

Runs the property test files (:data:`PROPERTY_FILES`) under the Hypothesis
profile "fuzz" (``--examples``, 2000 per property by default; see
tests/conftest.py) in rounds,
each with a seed of its own (the default profile always draws the same
examples), until the time is up; the round under way when the time runs out
is stopped. Prints each round's result and a summary; exits 1 when a round
found a failure (its seed and the command that replays it are printed) and
2 when it cannot run.

``--sanitizer`` runs the rounds with the AddressSanitizer runtime preloaded,
as README's sanitizer section does for the native tests. The native
extensions must be the debug build first, and the release build afterwards::

    TINYML_DEBUG_BUILD=1 python setup.py build_ext --inplace
    python -m tests.fuzz --minutes 30 --sanitizer
    python setup.py build_ext --inplace
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from pi_runtime.arguments import run_command

REPO_ROOT = Path(__file__).resolve().parent.parent
PROPERTY_FILES = ("tests/test_properties.py", "tests/test_native_properties.py")
PROFILE_VARIABLE = "TINYML_HYPOTHESIS_PROFILE"  # read by tests/conftest.py
EXAMPLES_VARIABLE = "TINYML_HYPOTHESIS_MAX_EXAMPLES"


def sanitizer_environment() -> Dict[str, str]:
    """LD_PRELOAD and ASAN_OPTIONS for a Python that loads ASan-built extensions (as in README)."""
    libraries = []
    for name in ("libasan.so", "libstdc++.so"):
        found = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
        if not os.path.isabs(found):  # gcc echoes the bare name when it has no such library
            raise RuntimeError(f"gcc knows no {name}: install gcc's sanitizer runtime (libasan)")
        libraries.append(found)
    return {"LD_PRELOAD": " ".join(libraries), "ASAN_OPTIONS": "detect_leaks=0"}


def is_sanitizer_build() -> bool:
    """Whether the native extensions in native/ were built with AddressSanitizer."""
    extensions = list((REPO_ROOT / "native").glob("_*.so"))
    return bool(extensions) and all(b"__asan_init" in path.read_bytes() for path in extensions)


def round_command(files: Sequence[str], seed: int) -> List[str]:
    return [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", f"--hypothesis-seed={seed}", *files]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz",
                                     description="Run the property tests under the Hypothesis 'fuzz' profile "
                                                 "(many examples, a new seed each round) for about N minutes.")
    parser.add_argument("--minutes", type=float, required=True, help="how long to fuzz, in minutes (> 0)")
    parser.add_argument("--sanitizer", action="store_true",
                        help="preload AddressSanitizer (needs the debug build: TINYML_DEBUG_BUILD=1 "
                             "python setup.py build_ext --inplace)")
    parser.add_argument("--examples", type=int, default=2000,
                        help="examples per property and round (default 2000; fewer: shorter rounds)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the first round (default: random)")
    parser.add_argument("files", nargs="*", default=list(PROPERTY_FILES),
                        help="property test files (default: %(default)s)")
    args = parser.parse_args(argv)
    if not 0 < args.minutes < 7 * 24 * 60:
        parser.error("--minutes must be more than 0 and less than a week")
    if not 1 <= args.examples <= 10 ** 7:
        parser.error("--examples must be from 1 to 10000000")
    missing = [name for name in args.files if not (REPO_ROOT / name).is_file()]
    if missing:
        parser.error(f"no such test file: {', '.join(missing)}")

    environment = {**os.environ, PROFILE_VARIABLE: "fuzz", EXAMPLES_VARIABLE: str(args.examples)}
    if args.sanitizer:
        if not is_sanitizer_build():
            print("error: the native extensions are not the sanitizer build; first run\n"
                  "  TINYML_DEBUG_BUILD=1 python setup.py build_ext --inplace", file=sys.stderr)
            return 2
        try:
            environment.update(sanitizer_environment())
        except (OSError, RuntimeError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    seed = random.SystemRandom().randrange(2 ** 32) if args.seed is None else args.seed
    deadline = time.monotonic() + 60 * args.minutes
    completed, stopped = 0, False
    print(f"fuzzing {', '.join(args.files)} for {args.minutes:g} min"
          + (" under AddressSanitizer" if args.sanitizer else "") + f"; first seed {seed}", flush=True)
    while time.monotonic() < deadline:
        command = round_command(args.files, seed)
        started = time.monotonic()
        try:
            result = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True,
                                    timeout=max(1.0, deadline - started))
        except subprocess.TimeoutExpired:
            print(f"round {completed + 1} (seed {seed}): stopped at the time limit", flush=True)
            stopped = True
            break
        summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(f"round {completed + 1} (seed {seed}): {summary} [{time.monotonic() - started:.0f} s]", flush=True)
        if result.returncode != 0:
            print(result.stdout[-6000:] + result.stderr[-3000:], file=sys.stderr)
            replay = " ".join(command[1:]).replace(sys.executable, "python")
            print(f"FAILED in round {completed + 1}; replay with:\n  {PROFILE_VARIABLE}=fuzz "
                  f"{EXAMPLES_VARIABLE}={args.examples} "
                  + (" ".join(f"{k}={v!r}" for k, v in sanitizer_environment().items()) + " " if args.sanitizer else "")
                  + f"python {replay}", file=sys.stderr)
            return 1
        completed += 1
        seed = (seed + 1) % 2 ** 32
    print(f"{completed} round{'s' if completed != 1 else ''} passed"
          + (", the last one stopped at the time limit" if stopped else "") + "; no failure found")
    return 0


if __name__ == "__main__":
    run_command(main)
