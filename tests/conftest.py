"""Shared fixtures: where the real data is, skipping cleanly when it is absent."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parent.parent


def _data_dir() -> Path:
    return Path(os.environ.get("TINYML_DATA_DIR") or Path.home() / ".cache" / "tinyml-pi")


@pytest.fixture(scope="session")
def speech_commands_dir() -> Path:
    """Folder holding ``mini_speech_commands/<label>/<clip>.wav`` (the course's layout)."""
    folder = _data_dir()
    if not (folder / "mini_speech_commands" / "yes").is_dir():
        pytest.skip(f"Mini Speech Commands not found under {folder} (set TINYML_DATA_DIR; see README)")
    return folder


@pytest.fixture(scope="session")
def jena_csv() -> Path:
    """The Jena Climate CSV (10-minute file if present, else the hourly copy)."""
    folder = _data_dir() / "jena"
    candidates = sorted(folder.glob("jena_climate_2009_2016*.csv*")) if folder.is_dir() else []
    if not candidates:
        pytest.skip(f"Jena Climate CSV not found under {folder} (set TINYML_DATA_DIR; see README)")
    return candidates[0]


@pytest.fixture(scope="session")
def test_split_clips(speech_commands_dir):
    """Paths of the course's 800 test-split clips."""
    lines = (REPO_ROOT / "train" / "splits" / "kws_test_split.txt").read_text().split()
    return [speech_commands_dir / line.removeprefix("./data/") for line in lines]
