"""Difficulty subsets on disk: one ``.npz`` (no pickles) with everything a `DifficultySubset`'s estimator needs.

`save_difficulty_subset` writes the subset, its design weights and the earlier models' scores; a later session
reads it back with `load_difficulty_subset` and estimates new models from their answers on the subset alone. A
malformed file, or one of a format version this lmms_nb does not read, is an error naming the file and field.

Example:
    >>> import numpy as np, polars as pl, tempfile, pathlib
    >>> from lmms_nb.lite_selection import build_difficulty_subset
    >>> rng = np.random.default_rng(0)
    >>> correct = (rng.random((8, 100)) < rng.uniform(0.3, 0.9, (8, 1))).astype(float)
    >>> logs = pl.DataFrame({"model": np.repeat([f"m{i}" for i in range(8)], 100), "task": "t",
    ...                      "doc_id": np.tile(np.arange(100), 8), "acc": correct.ravel()})
    >>> sub = build_difficulty_subset(logs, 10, estimator="residual_cv")
    >>> path = save_difficulty_subset(sub, pathlib.Path(tempfile.mkdtemp()) / "sub.npz")
    >>> back = load_difficulty_subset(path)
    >>> back.doc_ids.tolist() == sub.doc_ids.tolist(), back.meta["method"]
    (True, 'residual_cv')
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np

from lmms_nb.lite_selection._difficulty_subset import DifficultySubset

__all__ = ["load_difficulty_subset", "save_difficulty_subset"]


#: the arrays of a saved difficulty subset (plus "header", a JSON string of the rest)
_SAVED = ("doc_ids", "cell_sizes", "design_weights", "all_doc_ids", "train", "train_models")
#: the saved format's version: a file of another version is refused, not misread. 2: meta["method"] names the
#: estimator (difficulty_cv, residual_cv, spread_cv or anchor_corrected; the three *_cv share one estimate, only
#: their draw differs); an lmms_nb that reads only version 1 refuses it
#: rather than estimating a residual_cv or anchor_corrected subset as difficulty_cv
_FORMAT_VERSION = 2
#: versions this lmms_nb reads; version 1 files were all difficulty_cv subsets
_READABLE_VERSIONS = (1, 2)


def save_difficulty_subset(subset: DifficultySubset, path: str | os.PathLike) -> Path:
    """Write `subset` with everything its estimator needs (the earlier models' scores included) to one ``.npz``
    (no pickles); returns the path. `save_lite_subset` writes the doc ids alone, for `lite_task` and lmms-eval."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": "lmms_nb.difficulty_subset", "version": _FORMAT_VERSION, "task": subset.task, "n_full": int(subset.n_full),
              "group_prior": subset.group_prior if np.isfinite(subset.group_prior) else "inf", "meta": subset.meta,
              "groups": None if subset.groups is None else [str(g) for g in subset.groups]}
    arrays = {name: np.asarray(getattr(subset, name)) for name in _SAVED}
    # a name of its own per writer (pid and uuid): concurrent saves never write into one temporary file
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex}.tmp.npz")
    try:
        np.savez_compressed(tmp, header=np.array(json.dumps(header)), **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_difficulty_subset(path: str | os.PathLike) -> DifficultySubset:
    """Read a subset written by `save_difficulty_subset`; a malformed file is an error naming the file and field."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = {name: data[name] for name in data.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a difficulty subset file ({e})") from e
    missing = [name for name in ("header", *_SAVED) if name not in stored]
    if missing:
        raise ValueError(f"{path}: not a difficulty subset file (no field(s) {missing})")
    try:
        header = json.loads(str(stored["header"]))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: field 'header' is not JSON ({e})") from e
    if not isinstance(header, dict):
        raise ValueError(f"{path}: field 'header' must be a JSON object, got {type(header).__name__}")
    if header.get("format") != "lmms_nb.difficulty_subset":
        raise ValueError(f"{path}: field 'format' must be 'lmms_nb.difficulty_subset', got {header.get('format')!r}")
    version = header.get("version")
    if version not in _READABLE_VERSIONS:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > _FORMAT_VERSION
        raise ValueError(f"{path}: field 'version' must be one of {list(_READABLE_VERSIONS)} (the formats this "
                         f"lmms_nb reads), got {version!r}"
                         + ("; the file was written by a newer lmms-nb: upgrade lmms-nb to read it" if newer else ""))
    missing = [key for key in ("task", "n_full", "group_prior") if key not in header]
    if missing:
        raise ValueError(f"{path}: header has no field(s) {missing}")
    try:
        return DifficultySubset(
            task=header["task"], doc_ids=stored["doc_ids"], cell_sizes=stored["cell_sizes"], n_full=header["n_full"],
            meta=_meta_of(header, version), design_weights=stored["design_weights"], all_doc_ids=stored["all_doc_ids"],
            train=stored["train"], train_models=tuple(str(m) for m in stored["train_models"]),
            groups=None if header.get("groups") is None else np.asarray(header["groups"]),
            group_prior=float(header["group_prior"]))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from e


def _meta_of(header: dict, version: int) -> dict:
    meta = header.get("meta") or {}
    if not isinstance(meta, dict):
        raise TypeError(f"field 'meta' must be a JSON object, got {type(meta).__name__}")
    # version 1 had one estimator: a file that does not name it was a difficulty_cv subset
    return {"method": "difficulty_cv", **meta} if version == 1 else meta
