"""A disk cache of one folder's task index, so that `lmms-nb eval` does not re-read lmms-eval's ~3,000 YAMLs.

Indexing the installed lmms-eval catalogue reads every YAML (seconds); a command line that names one task pays it
on every start. The index of a folder is stored under the lmms-nb cache (`LMMS_NB_CACHE`) with a key made of:
the folder's path, the path, size and mtime of every file under it (so an edited, added or removed YAML or
included template rebuilds it), and the source of the indexing code (so a newer lmms-nb never reads an index an
older one built). The warnings indexing gave (names defined twice, ...) are stored and given again on a hit.
A cache that cannot be read or written is ignored: the folder is indexed as before.

Example:
    >>> import pathlib, tempfile
    >>> d, cache = pathlib.Path(tempfile.mkdtemp()), pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.yaml").write_text("task: a\\n")
    >>> calls = []
    >>> build = lambda folder: calls.append(folder) or {"a": 1}
    >>> cached_folder_index(d, build, cache=cache), cached_folder_index(d, build, cache=cache)
    ({'a': 1}, {'a': 1})
    >>> len(calls)
    1
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["cached_folder_index", "folder_state"]

T = TypeVar("T")
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints"}
_CODE = [Path(__file__).with_name(n) for n in ("_yaml_index.py", "_yaml_config.py", "_yaml_functions.py", "_index_cache.py")]


def _key(folder: Path) -> str:
    digest = hashlib.sha256(str(folder.absolute()).encode())
    for code in _CODE:
        digest.update(code.read_bytes() if code.is_file() else b"")
    digest.update(folder_state(folder).encode())
    return digest.hexdigest()[:32]


def folder_state(folder: Path) -> str:
    """A hash of the path, size and mtime of every file under `folder`: changes when a file is edited, added or
    removed."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            st = os.stat(os.path.join(root, name))
            digest.update(f"{root}/{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def cached_folder_index(folder: Path, build: Callable[[Path], T], *, cache: Path | None = None) -> T:
    """`build(folder)`, or what it returned before for this folder when nothing under it has changed."""
    try:
        if cache is None:
            from lmms_nb.config import cache_dir

            cache = cache_dir("task_index")
        path = Path(cache) / f"{_key(folder)}.pkl"
    except OSError:
        return build(folder)
    if path.is_file():
        try:
            value, caught = pickle.loads(path.read_bytes())
        except Exception:  # noqa: BLE001 - an unreadable cache (another lmms-nb's, truncated) is rebuilt
            pass
        else:
            for category, message in caught:
                warnings.warn(message, category, stacklevel=4)
            return value
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        value = build(folder)
    caught: list[tuple[type[Warning], str]] = [(r.category, str(r.message)) for r in records]
    for category, message in caught:
        warnings.warn(message, category, stacklevel=4)
    try:
        Path(cache).mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps((value, caught)))
        os.replace(tmp, path)  # atomic: a parallel run reads the old file or the new one, never half of one
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        pass
    return value
