"""Keep native libraries' start-up chatter off the user's terminal.

LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``
from C++ straight to file descriptor 2 when an interpreter is built, and
TensorFlow logs a few lines (some twice) while it is imported, before its own
``TF_CPP_MIN_LOG_LEVEL`` takes effect. No setting of either library silences
them, so :func:`filtered_stderr` holds what is written to descriptor 2 during
a block and writes it back afterwards without the lines that match; every
other line (warnings, errors) still reaches the terminal, in order.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator, Pattern

# LiteRT's own INFO lines ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.").
LITERT_INFO = re.compile(r"^INFO: ")
# absl-formatted INFO/WARNING lines of TensorFlow's C++ code ("I0000 00:00:17.. 123 file.cc:31] ..."),
# the error it logs when a machine has no GPU, absl's notice that precedes them, and the second
# line of TensorFlow's CPU-instructions notice.
TENSORFLOW_STARTUP = re.compile(r"^([IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] "
                                r"|E\d{4} [\d:.]+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit"
                                r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
                                r"|To enable the following instructions: .* rebuild TensorFlow)")


@contextmanager
def filtered_stderr(pattern: Pattern[str], *, enabled: bool = True) -> Iterator[None]:
    """Within the block, drop the lines written to file descriptor 2 that match ``pattern``.

    What is written is held in a temporary file and written back when the
    block ends (even by an exception), minus the matching lines. Does nothing
    when ``enabled`` is False or descriptor 2 cannot be duplicated.
    """
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 (a daemon) or a closed sys.stderr
        yield
        return
    try:
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                yield
            finally:
                try:
                    sys.stderr.flush()
                except ValueError:
                    pass
                os.dup2(saved, 2)
                held.seek(0)
                kept = [line for line in held.read().splitlines(keepends=True)
                        if not pattern.search(line.decode("utf-8", "replace"))]
                text = b"".join(kept)
                while text:
                    text = text[os.write(2, text):]
    finally:
        os.close(saved)


@contextmanager
def tensorflow_startup_filtered(*, verbose: bool = False) -> Iterator[None]:
    """Import TensorFlow (and what loads with it, like tf_keras) in this block
    to keep its start-up lines off the terminal.

    ``TF_CPP_MIN_LOG_LEVEL`` defaults to 2 (errors only); the lines printed
    before TensorFlow reads it are filtered. ``verbose``, or
    ``TF_CPP_MIN_LOG_LEVEL=0`` in the environment, shows everything.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    show = verbose or os.environ["TF_CPP_MIN_LOG_LEVEL"].strip() == "0"
    with filtered_stderr(TENSORFLOW_STARTUP, enabled=not show):
        yield
