"""What the keyword-spotting benchmarks share: the models they run by default, and a report
printed as it comes and kept for a markdown file."""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent


def add_data_dir_argument(parser, *, holds: str = "mini_speech_commands/ and kws_generated/") -> None:
    """``--data-dir``: the folder holding ``holds``, default the data folder of ``train.paths``."""
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"folder holding {holds} (default $TINYML_DATA_DIR or ~/.cache/tinyml-pi)")


def add_markdown_argument(parser) -> None:
    """``--markdown FILE``: the report written there as well."""
    parser.add_argument("--markdown", type=Path, help="also write the report to this markdown file")


def models_to_run(given: Optional[Sequence[Path]]) -> List[Path]:
    """``given``, else every model delivered in ``models/kws/``; ``ValueError`` naming any missing file."""
    from train.kws.results import delivered_models

    models = list(given) if given else delivered_models(REPO_ROOT / "models" / "kws")
    missing = [str(path) for path in models if not Path(path).is_file()]
    if missing:
        raise ValueError(f"no such model file: {', '.join(missing)}")
    if not models:
        raise ValueError("no model given and none delivered in models/kws/")
    return models


def package_version(module: str) -> str:
    """The ``__version__`` of an importable package, else "-" (for the versions line of a report)."""
    try:
        return __import__(module).__version__
    except Exception:  # not installed, no __version__, or failing in its own import
        return "-"


def load_kws_models(paths: Sequence[Path], *, num_threads: int = 1) -> list:
    """Each keyword-spotting model loaded with its sidecar (a ``LoadedModel``), to refuse a bad one before any
    long work; ``ValueError`` naming a missing or truncated model, a broken sidecar, or a model of another task."""
    from pi_runtime.model import load_model

    loaded = []
    for path in paths:
        model = load_model(path, num_threads=num_threads, require_sidecar=True)
        if model.spec is None:
            raise ValueError(f"{path}: not a keyword-spotting model (its sidecar's task is {model.sidecar['task']!r})")
        loaded.append(model)
    return loaded


class Report:
    """Lines printed as they come and kept for the markdown file."""

    def __init__(self) -> None:
        self.lines: List[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def write_markdown(self, path: Path, *, title: str, command: str, note: str, remark: str = "",
                       image: Optional[Tuple[str, Path]] = None) -> None:
        """The lines as a code block under ``title``, with the date and the ``command`` that made them, a
        ``remark`` after that sentence and an ``image`` (alt text, file) above the block."""
        path.parent.mkdir(parents=True, exist_ok=True)
        header = f"Produced on {date.today().isoformat()} by `{command}` ({note})." + (f" {remark}" if remark else "")
        figure = f"![{image[0]}]({os.path.relpath(image[1], path.parent)})\n\n" if image else ""
        path.write_text(f"# {title}\n\n{header}\n\n{figure}```\n" + "\n".join(self.lines) + "\n```\n",
                        encoding="utf-8")
