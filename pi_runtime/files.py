"""Files written whole or not at all."""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable, Union


def write_whole(path: Union[str, Path], write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write`` with a binary file beside ``path``, then rename it over ``path``: a full card or a
    power cut leaves the old file or none, never half a file. An existing ``path`` that is not writable
    is refused first (PermissionError), as writing into it would be."""
    path = Path(path)
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"{path}: not writable")
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as handle:
            write(handle)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
