"""Where lmms-nb keeps generated data (synthbench, the zoo, embedding caches).

`LMMS_NB_CACHE` overrides the default `~/.cache/lmms_nb`; tests point it at a temporary folder.

Example:
    >>> from lmms_nb.config import cache_dir
    >>> cache_dir().name != ""
    True
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a sub-folder of it), created on demand."""
    root = Path(os.environ.get("LMMS_NB_CACHE") or Path.home() / ".cache" / "lmms_nb")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
