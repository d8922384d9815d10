"""Shared fixtures. Generated data (synthbench, the zoo) goes to one cache for the whole session:
scripts/test.sh points LMMS_NB_CACHE at .cache/lmms_nb so later runs reuse it; otherwise a temp folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# jupyter_lab / chromium fixtures for the real-browser tests (tests/browser.py)
pytest_plugins = ["browser"]

# The fixture folders hold the scripts that regenerate them with the real tools (make.py, spec.py, ...):
# they are not tests, their doctests would need those tools, and two folders share file names.
collect_ignore_glob = ["fixtures/*"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if not os.environ.get("LMMS_NB_CACHE"):
    os.environ["LMMS_NB_CACHE"] = tempfile.mkdtemp(prefix="lmms_nb_cache_")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REALWORLD = SHARED / "realworld"


@pytest.fixture(scope="session")
def realworld() -> Path:
    """The compatibility corpus of real logs (present in CI); tests that need it skip only where it is absent."""
    if not REALWORLD.is_dir():
        pytest.skip("../shared/realworld is not present")
    return REALWORLD
