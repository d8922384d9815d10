"""transformers' import structure of its models, kept on disk for the `lmms-nb` program instead of rebuilt from
every model file's source at each `import transformers`.

`import transformers` maps every public name to its module without importing them: `define_import_structure`
opens each of the ~2,600 files under `transformers/models` and scans its source for `__all__` and backend
requirements, about 0.3 CPU-s of every cold start (one thread), for a map that changes only when those files do.
This module, installed by the program before transformers is first imported, wraps that function so that for the
`models` folder it returns the map stored under the cache dir (`cache_dir("transformers_imports")`) when the
folder's files are those it was built from: the same transformers version and path, and the same (path, size,
modification time) for every file, listed again at each start (~20 ms). Anything else (another version, an edited
or added file, a missing, unreadable or malformed cache file) rebuilds the map with transformers' own function and
stores it (written to a temporary file, then `os.replace`). The map is plain data (names of modules, objects and
backends), stored as JSON; a wrong map could only fail an import, and a matching listing rules that out.

Example:
    >>> structure = {frozenset({"torch"}): {"models.x.modeling_x": {"XModel"}}}
    >>> _from_json(_to_json(structure)) == structure
    True
"""

from __future__ import annotations

import functools
import hashlib
import importlib.machinery
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["install"]

log = logging.getLogger(__name__)

_MODULE = "transformers.utils.import_utils"
FORMAT = 1


def _listing(folder: str) -> str:
    """A digest of every file under `folder` (relative path, size, modification time), __pycache__ left out."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        digest.update(f"{os.path.relpath(dirpath, folder)}\0".encode())
        for name in sorted(filenames):
            stat = os.stat(os.path.join(dirpath, name))
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _to_json(structure: dict) -> list:
    return [[sorted(backends), {module: sorted(names) for module, names in sorted(modules.items())}]
            for backends, modules in structure.items()]


def _from_json(data: list) -> dict:
    return {frozenset(backends): {module: set(names) for module, names in modules.items()}
            for backends, modules in data}


def _cache_file(folder: str, prefix: str | None, version: str) -> Path:
    from lmms_nb.config import cache_dir

    key = json.dumps([FORMAT, version, os.path.realpath(folder), prefix, sys.version_info[:2]])
    return cache_dir("transformers_imports") / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"


def _cached(original: Any, version: str, models_folder: str) -> Any:
    """`define_import_structure`, answered from the cache for transformers' own models folder."""

    @functools.wraps(original)  # keeps cache_clear / cache_info where transformers memoises it
    def define_import_structure(*args: Any, **kwargs: Any) -> Any:
        # Only the one call form this module knows is answered from the cache; any other (a later transformers
        # with more arguments) goes to transformers' own function untouched.
        if not args or len(args) > 2 or set(kwargs) - {"prefix"} or (len(args) == 2 and kwargs):
            return original(*args, **kwargs)
        module_path = args[0]
        prefix = args[1] if len(args) == 2 else kwargs.get("prefix")
        if os.path.realpath(str(module_path)) != models_folder:
            return original(*args, **kwargs)
        try:
            path = _cache_file(models_folder, prefix, version)
            listing = _listing(models_folder)
        except Exception as e:  # noqa: BLE001 - the cache must never fail an import: transformers' own answer
            log.debug("transformers' import structure not cached (%s)", e)
            return original(*args, **kwargs)
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            if stored["listing"] == listing:
                return _from_json(stored["structure"])
        except Exception as e:  # noqa: BLE001 - missing, unreadable or malformed (any shape): rebuilt
            log.debug("transformers' import structure cache %s not used (%s)", path, e)
        structure = original(*args, **kwargs)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump({"listing": listing, "structure": _to_json(structure)}, fh)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except Exception as e:  # noqa: BLE001 - an unexpected return shape or a full disk: not stored
            log.debug("transformers' import structure not stored (%s)", e)
        return structure

    return define_import_structure


def _wrap(module: Any) -> None:
    original = getattr(module, "define_import_structure", None)
    spec = importlib.machinery.PathFinder.find_spec("transformers")
    if not callable(original) or spec is None or not spec.submodule_search_locations:
        return
    package = list(spec.submodule_search_locations)[0]
    try:
        from importlib.metadata import version

        transformers_version = version("transformers")
    except Exception:  # noqa: BLE001 - no distribution metadata: nothing to key the cache by
        return
    module.define_import_structure = _cached(original, transformers_version,
                                             os.path.realpath(os.path.join(package, "models")))


class _Finder:
    """Finds transformers' import_utils as usual, and wraps its `define_import_structure` once it has run."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_wrap(module: Any) -> None:
            exec_module(module)
            _wrap(module)

        spec.loader.exec_module = exec_and_wrap  # type: ignore[method-assign]
        return spec


def install() -> bool:
    """Put the wrapper in place for the next `import transformers` (the program's own process only). Returns
    False where transformers is imported already (nothing to save) or the wrapper is installed."""
    if _MODULE in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _Finder())
    return True
