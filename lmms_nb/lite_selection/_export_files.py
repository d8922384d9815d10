"""`export_lite_files`: write a Lite subset in several formats to one folder, under names that say what they are.

The formats are those of `lmms_nb.lite_selection`'s savers: "json" (`save_lite_subset`), "dataset"
(`save_lite_dataset`) and "yaml" (`write_lmms_eval_yaml`, over the dataset folder, so it writes one too).
With "json", a `DifficultySubset` also writes its estimator (`save_difficulty_subset`, key "estimator").

Example:
    >>> lite_file_stem("docvqa val/test", 25)
    'docvqa_val_test_lite_k25'
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ContextManager

from lmms_nb.lite_selection._difficulty_subset import DifficultySubset
from lmms_nb.lite_selection._difficulty_subset_file import save_difficulty_subset
from lmms_nb.lite_selection._export import save_lite_dataset, save_lite_subset, write_lmms_eval_yaml

__all__ = ["EXPORT_FORMATS", "export_lite_files", "lite_file_stem"]

EXPORT_FORMATS = ("json", "dataset", "yaml")


def lite_file_stem(task_name: str, k: int) -> str:
    """The file name stem of a `k`-doc Lite subset of a task: the task's name made safe for a file name."""
    safe = re.sub(r"[^\w.-]+", "_", task_name).strip("._") or "task"
    return f"{safe}_lite_k{k}"


def export_lite_files(
    task: Any,
    subset: Any,
    folder: str | os.PathLike,
    formats: Sequence[str],
    *,
    dataset_progress: ContextManager[Any] | None = None,
) -> dict[str, Path]:
    """Write `subset` (a `LiteSubset` of `task`) to `folder` in `formats`; returns {format: path}.

    `dataset_progress` is a context the dataset folder is written in (a widget's output area keeps the
    `datasets` progress bars inside the widget). Bad formats or a file in the folder's place raise first,
    before anything is written.

    >>> import tempfile
    >>> from lmms_nb.lite_selection import LiteSubset
    >>> from lmms_nb.tasks.synthbench import synthbench_task
    >>> subset = LiteSubset(task="synthbench_count", doc_ids=[4, 1], cell_sizes=[20, 10], n_full=30)
    >>> task = synthbench_task("count", n_train=6, n_test=30)
    >>> export_lite_files(task, subset, tempfile.mkdtemp(), ["json"])["json"].name
    'synthbench_count_lite_k2.json'
    """
    folder = Path(folder)
    formats = list(formats)
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; choose among {list(EXPORT_FORMATS)}")
    if not formats:
        raise ValueError("tick at least one export format")
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"cannot export to {folder}: it is a file, not a folder")
    stem = lite_file_stem(task.name, len(subset))
    written: dict[str, Path] = {}
    if "json" in formats:
        written["json"] = save_lite_subset(subset, folder / f"{stem}.json")
        if isinstance(subset, DifficultySubset):  # the doc ids alone cannot estimate a new model later
            written["estimator"] = save_difficulty_subset(subset, folder / f"{stem}_estimator.npz")
    if "dataset" in formats or "yaml" in formats:
        with dataset_progress if dataset_progress is not None else contextlib.nullcontext():
            written["dataset"] = save_lite_dataset(task, subset, folder / f"{stem}_dataset")
    if "yaml" in formats:
        # the YAML's own task YAML (when it came from one) gives lmms-eval the prompts and metrics
        include = task.config.get("yaml_path") if isinstance(task.config, dict) else None
        written["yaml"] = write_lmms_eval_yaml(task, subset, folder / f"{stem}.yaml", dataset_path=written["dataset"],
                                               include=include, name=f"{task.name}_lite")
    return written
