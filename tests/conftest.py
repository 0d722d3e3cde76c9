"""Shared fixtures: where the real data is, skipping cleanly when it is absent;
the Hypothesis profiles of the property tests."""
import os

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from train.paths import data_dir, repo_root  # noqa: E402  (after the environment above)

REPO_ROOT = repo_root()
# "default": few examples, the same ones every run (reproducible CI);
# "fuzz": many examples (2000, or $TINYML_HYPOTHESIS_MAX_EXAMPLES) from a seed of
# each run's own (python -m tests.fuzz).
HYPOTHESIS_PROFILE_VARIABLE = "TINYML_HYPOTHESIS_PROFILE"
FUZZ_EXAMPLES_VARIABLE = "TINYML_HYPOTHESIS_MAX_EXAMPLES"

try:
    from hypothesis import settings
except ImportError:  # the dev extra is not installed: the property tests say so themselves
    settings = None
if settings is not None:
    settings.register_profile("default", max_examples=25, deadline=None, derandomize=True)
    settings.register_profile("fuzz", max_examples=int(os.environ.get(FUZZ_EXAMPLES_VARIABLE, 2000)), deadline=None)
    settings.load_profile(os.environ.get(HYPOTHESIS_PROFILE_VARIABLE, "default"))


@pytest.fixture(scope="session")
def speech_commands_dir():
    """Folder holding ``mini_speech_commands/<label>/<clip>.wav`` (the course's layout)."""
    folder = data_dir()
    if not (folder / "mini_speech_commands" / "yes").is_dir():
        pytest.skip(f"Mini Speech Commands not found under {folder} (set TINYML_DATA_DIR; see README)")
    return folder


@pytest.fixture(scope="session")
def jena_csv():
    """The Jena Climate CSV (10-minute file if present, else the hourly copy)."""
    folder = data_dir() / "jena"
    candidates = sorted(folder.glob("jena_climate_2009_2016*.csv*")) if folder.is_dir() else []
    if not candidates:
        pytest.skip(f"Jena Climate CSV not found under {folder} (set TINYML_DATA_DIR; see README)")
    return candidates[0]


@pytest.fixture(scope="session")
def test_split_clips(speech_commands_dir):
    """Paths of the course's 800 test-split clips."""
    lines = (REPO_ROOT / "train" / "splits" / "kws_test_split.txt").read_text().split()
    return [speech_commands_dir / line.removeprefix("./data/") for line in lines]
