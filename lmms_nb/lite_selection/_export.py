"""Export a Lite subset: a doc-id list with weights (JSON), a `Task` over those docs, a `datasets` folder, a YAML.

- `save_lite_subset` / `load_lite_subset`: ``{"format": "lmms_nb.lite_subset", "task", "n_full", "doc_ids",
  "cell_sizes", "weights", "radius", "meta"}``; loading checks every field and names the file and field.
- `lite_task`: ``dataclasses.replace(task, name=..., doc_ids=...)`` — the runner then evaluates only those
  docs, with their original doc ids, so its logs line up with full-set logs; the weights ride along in
  ``config["lite"]`` for `lite_estimates`.
- `save_lite_dataset`: the kept rows as a `datasets.DatasetDict` ``{split: rows}`` saved with
  `save_to_disk`, with two added columns: ``lite_source_doc_id`` (the doc id in the full set) and
  ``lite_weight``.
- `write_lmms_eval_yaml`: a standalone lmms-eval task YAML over that folder (``dataset_path`` +
  ``dataset_kwargs: {load_from_disk: true}`` + ``test_split``), with the doc ids and weights under
  ``metadata.lite``. The prompt and scoring functions (doc_to_visual, doc_to_text, process_results, metric_list)
  live in the original task's YAML and utils.py, which this toolkit cannot know: pass that YAML as
  `include=` to inherit them (its dataset keys are overridden by ours), or add them by hand. Note that
  lmms-eval numbers the subset's docs 0..k-1; ``lite_source_doc_id`` maps them back.

Example:
    >>> import tempfile, os
    >>> sub = LiteSubset(task="toy", doc_ids=[4, 1], cell_sizes=[3, 2], n_full=5)
    >>> path = save_lite_subset(sub, os.path.join(tempfile.mkdtemp(), "toy_lite.json"))
    >>> back = load_lite_subset(path)
    >>> back.doc_ids.tolist(), back.weights.tolist()
    ([4, 1], [0.6, 0.4])
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from lmms_nb.lite_selection._subset import LiteSubset
from lmms_nb.tasks.task import Task

_FORMAT = "lmms_nb.lite_subset"
SOURCE_ID_COLUMN = "lite_source_doc_id"
WEIGHT_COLUMN = "lite_weight"


def save_lite_subset(subset: LiteSubset, path: str | os.PathLike) -> Path:
    """Write the subset as JSON (doc ids in pick order, cell sizes, weights); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": _FORMAT,
        "version": 1,
        "task": subset.task,
        "n_full": int(subset.n_full),
        "doc_ids": [int(d) for d in subset.doc_ids],
        "cell_sizes": [int(c) for c in subset.cell_sizes],
        "weights": [float(w) for w in subset.weights],
        "radius": None if math.isnan(subset.radius) else float(subset.radius),
        "meta": _jsonable(subset.meta),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)
    return path


def load_lite_subset(path: str | os.PathLike) -> LiteSubset:
    """Read a subset written by `save_lite_subset`; a malformed file is an error naming the file and field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from e
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a Lite subset file (field 'format' must be {_FORMAT!r})")

    def field(name: str, kind: type | tuple[type, ...]) -> Any:
        if name not in data:
            raise ValueError(f"{path}: missing field {name!r}")
        value = data[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{path}: field {name!r} must be {getattr(kind, '__name__', kind)}, "
                             f"got {type(value).__name__}")
        return value

    task, n_full = field("task", str), field("n_full", int)
    doc_ids, cells = field("doc_ids", list), field("cell_sizes", list)
    for name, values in (("doc_ids", doc_ids), ("cell_sizes", cells)):
        bad = [i for i, v in enumerate(values) if not isinstance(v, int) or isinstance(v, bool) or v < 0]
        if bad:
            raise ValueError(f"{path}: field {name!r} item {bad[0]} is {values[bad[0]]!r}, not an integer >= 0")
    if len(cells) != len(doc_ids):
        raise ValueError(f"{path}: field 'cell_sizes' has {len(cells)} items for {len(doc_ids)} doc_ids")
    if sum(cells) != n_full:
        raise ValueError(f"{path}: field 'cell_sizes' sums to {sum(cells)}, not n_full={n_full}")
    radius = data.get("radius")
    try:
        return LiteSubset(task=task, doc_ids=doc_ids, cell_sizes=cells, n_full=n_full,
                          radius=float("nan") if radius is None else float(radius), meta=data.get("meta") or {})
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e


def lite_task(task: Task, subset: LiteSubset, *, name: str | None = None) -> Task:
    """A copy of `task` that evaluates only the subset's docs (named ``<task>_lite`` unless `name` is given).

    >>> import datasets
    >>> from lmms_nb.tasks import Task
    >>> t = Task(name="toy", load=lambda: datasets.Dataset.from_dict({"q": list("abcde")}), image_column=None,
    ...          doc_to_visual=lambda d: [], doc_to_text=lambda d: d["q"], doc_to_target=lambda d: "", metrics=[])
    >>> lt = lite_task(t, LiteSubset(task="toy", doc_ids=[4, 1], cell_sizes=[3, 2], n_full=5))
    >>> lt.name, lt.selected_doc_ids(5), lt.config["lite"]["weights"]
    ('toy_lite', [4, 1], [0.6, 0.4])
    """
    if subset.task != task.name:
        raise ValueError(f"the Lite subset was built for task {subset.task!r}, not {task.name!r}")
    return dataclasses.replace(
        task,
        name=name or f"{task.name}_lite",
        doc_ids=[int(d) for d in subset.doc_ids],
        config={**task.config, "lite": _lite_meta(subset)},
    )


def save_lite_dataset(task: Task, subset: LiteSubset, path: str | os.PathLike) -> Path:
    """Save the subset's rows as a `datasets.DatasetDict` ``{task.split: rows}`` with `save_to_disk`.

    Adds ``lite_source_doc_id`` and ``lite_weight`` columns; rows keep the subset's pick order.
    """
    import datasets

    if subset.task != task.name:
        raise ValueError(f"the Lite subset was built for task {subset.task!r}, not {task.name!r}")
    full = task.dataset()
    if subset.n_full != len(task.selected_doc_ids(len(full))):
        raise ValueError(f"the Lite subset was built over {subset.n_full} docs, task {task.name!r} has "
                         f"{len(task.selected_doc_ids(len(full)))}: the dataset changed?")
    clash = [c for c in (SOURCE_ID_COLUMN, WEIGHT_COLUMN) if c in full.column_names]
    if clash:
        raise ValueError(f"task {task.name!r}: dataset already has column(s) {clash}")
    bad = [int(d) for d in subset.doc_ids if not 0 <= int(d) < len(full)]
    if bad:
        raise ValueError(f"Lite subset doc ids {bad[:5]} are out of range for {len(full)} rows of {task.name!r}")
    rows = full.select([int(d) for d in subset.doc_ids])
    rows = rows.add_column(SOURCE_ID_COLUMN, [int(d) for d in subset.doc_ids])
    rows = rows.add_column(WEIGHT_COLUMN, [float(w) for w in subset.weights])
    path = Path(path)
    datasets.DatasetDict({task.split: rows}).save_to_disk(str(path))
    return path


def write_lmms_eval_yaml(
    task: Task,
    subset: LiteSubset,
    path: str | os.PathLike,
    *,
    dataset_path: str | os.PathLike,
    include: str | None = None,
    name: str | None = None,
) -> Path:
    """Write a standalone lmms-eval task YAML over a `save_lite_dataset` folder; see the module docstring.

    `dataset_path` is written as given (prefer a path relative to where lmms-eval runs); `include` is the
    original task's YAML (for its prompts and metrics).
    """
    import yaml

    if subset.task != task.name:
        raise ValueError(f"the Lite subset was built for task {subset.task!r}, not {task.name!r}")
    doc: dict[str, Any] = {}
    if include:
        doc["include"] = str(include)
    doc.update({
        "task": name or f"{task.name}_lite",
        "dataset_path": str(dataset_path),
        "dataset_kwargs": {"load_from_disk": True},
        "test_split": task.split,
        "metadata": {"version": task.version, "lite": _lite_meta(subset)},
    })
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# Lite subset of {task.name}: {len(subset)} of {subset.n_full} docs, by k-center greedy.\n"
              f"# Rows of dataset_path are the kept docs in pick order; column {SOURCE_ID_COLUMN} is the doc id\n"
              f"# in the full set and {WEIGHT_COLUMN} its cell-size weight (metadata.lite lists both too).\n")
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=120))
    return path


def _lite_meta(subset: LiteSubset) -> dict[str, Any]:
    return {
        "source_task": subset.task,
        "n_full": int(subset.n_full),
        "doc_ids": [int(d) for d in subset.doc_ids],
        "weights": [float(w) for w in subset.weights],
        **{k: v for k, v in _jsonable(subset.meta).items() if k not in ("doc_ids", "weights")},
    }


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    def conv(v: Any) -> Any:
        if isinstance(v, (np.integer,)):
            return int(v)
        if isinstance(v, (np.floating,)):
            return float(v)
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        return v

    return conv(dict(meta))
