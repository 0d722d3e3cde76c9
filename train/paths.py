"""Where data, caches and delivered models live."""
import os
from pathlib import Path


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Cache folder for datasets: ``$TINYML_DATA_DIR`` or ``~/.cache/tinyml-pi``."""
    return Path(os.environ.get("TINYML_DATA_DIR") or Path.home() / ".cache" / "tinyml-pi")


def models_dir() -> Path:
    return repo_root() / "models"


def model_file(path) -> Path:
    """A model file named on a command line or in a recipe: a relative path is under ``models/``
    (e.g. ``kws/kws_b.tflite.zlib``)."""
    return Path(path) if Path(path).is_absolute() else models_dir() / path
