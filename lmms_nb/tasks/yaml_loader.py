"""Run lmms-eval task YAMLs: `load_task`, `load_tasks`, `resolve_tasks`, `group_scores`.

A folder written in lmms-eval's format (task YAMLs, `include`d templates, a `utils.py` reached through
``!function utils.name``) loads into lmms-nb `Task`s that give the same prompts, filtered answers and
scores as lmms-eval 0.7.3. Supported: include, task / tag / group (with aggregate_metric_list),
dataset_path (hub name or folder) / dataset_name / dataset_kwargs (load_from_disk, data_files, ...),
test_split, process_docs, doc_to_visual / doc_to_text / doc_to_target / doc_to_choice (field, Jinja
template or function), description, lmms_eval_specific_kwargs (default and per-model blocks),
model_specific_generation_kwargs / model_specific_target_kwargs, generation_kwargs, process_results,
metric_list (exact_match, anls, ... with their options; mean, median or `!function` aggregations),
filter_list (see `lmms_nb.tasks.filters`), output_type generate_until and multiple_choice (loglikelihood),
num_fewshot / fewshot_config (lmms-eval's sampler), doc_to_messages (kept for chat backends; text backends get
doc_to_text, as lmms-eval), full_docs (inert, as in lmms-eval 0.7.3). Anything else is an error that names the
key, the file and the line. `!function`s import the task folder's own Python files, or (a package path such
as ``lmms_eval.tasks.x.utils.f``, as lmms-eval) installed modules. Names resolve from lmms-eval's installed
catalogue too (`lmms_nb.tasks.catalogue`). A folder loads every task it can and lists the others in the
result's `failures` (`strict=True`: all or nothing).

Example:
    >>> import pathlib, tempfile, datasets
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> datasets.DatasetDict({"test": datasets.Dataset.from_dict({"q": ["2+2?"], "a": ["4"]})}).save_to_disk(str(d / "data"))
    >>> _ = (d / "utils.py").write_text(
    ...     "def prompt(doc, kw):\\n    return kw['pre_prompt'] + doc['q'] + kw['post_prompt']\\n")
    >>> _ = (d / "add.yaml").write_text('''
    ... task: add
    ... dataset_path: data
    ... dataset_kwargs: {load_from_disk: true}
    ... test_split: test
    ... doc_to_text: !function utils.prompt
    ... doc_to_target: a
    ... lmms_eval_specific_kwargs:
    ...   default: {pre_prompt: "Q: ", post_prompt: " A:"}
    ... metric_list: [{metric: exact_match, aggregation: mean, higher_is_better: true}]
    ... ''')
    >>> task = load_task(d / "add.yaml")
    >>> doc = task.dataset()[0]
    >>> task.doc_to_text(doc), task.score(doc, " 4 ")
    ('Q: 2+2? A:', {'exact_match': 1.0})
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmms_nb.tasks._yaml_build import build_task
from lmms_nb.tasks._yaml_config import TaskYamlError, read_task_yaml
from lmms_nb.tasks._yaml_index import Expander, TaskIndex, TaskLoadFailure, is_group_config
from lmms_nb.tasks._yaml_metrics import metric_number
from lmms_nb.tasks.task import Task

__all__ = [
    "TaskList",
    "TaskLoadFailure",
    "TaskYamlError",
    "group_scores",
    "is_yaml_task_spec",
    "load_task",
    "load_tasks",
    "metric_number",
    "resolve_tasks",
]

class TaskList(list):
    """The tasks a folder (or names) gave, plus `failures`: those that did not load, each with file:line and why."""

    def __init__(self, tasks: Sequence[Task] = (), failures: Sequence[TaskLoadFailure] = ()) -> None:
        super().__init__(tasks)
        self.failures: list[TaskLoadFailure] = list(failures)


def _expand(expander: Expander, names: Sequence[str], strict: bool, where: str) -> TaskList:
    """Build the tasks of `names`; with strict=False a name that fails is listed in `failures`, not raised."""
    out = TaskList()
    for n in names:
        try:
            out.extend(expander.name(n))
        except Exception as e:  # noqa: BLE001 - a task's own code may raise anything while it is built
            if strict:
                raise
            entry = expander.index.entries.get(n)
            path = str(entry.path) if entry is not None and entry.path is not None else where
            reason = str(e) if isinstance(e, TaskYamlError) else f"{path}: {type(e).__name__}: {e}"
            out.failures.append(TaskLoadFailure(n, path, reason))
    if out.failures:
        warnings.warn(f"{where}: {len(out.failures)} task(s) not loaded (see .failures): "
                      + "; ".join(str(f) for f in out.failures[:5]) + (" ..." if len(out.failures) > 5 else ""),
                      stacklevel=3)
    return out


def load_tasks(path: str | Path, names: Sequence[str] | None = None, *, model_type: str | None = None,
               strict: bool = False) -> TaskList:
    """The tasks defined by a task YAML, a group YAML, or a folder of them (searched recursively).

    Args:
        path: a `.yaml` file (one task, or a group whose subtasks are looked up in the file's folder, then in
            the installed lmms-eval catalogue), or a folder: every task in it, or only `names`.
        names: tasks, tags or groups to take from a folder (all of its tasks when omitted).
        model_type: the lmms-eval model name (e.g. "llava_hf", "qwen2_5_vl") whose blocks of
            `lmms_eval_specific_kwargs` and `model_specific_*` apply; the `default` block otherwise.
        strict: for a whole folder (no `names`), raise on the first task that does not load instead of
            loading every task it can and listing the others in the result's `failures` (with a warning).

    Returns the tasks in order, each named as its YAML's `task`. Raises `TaskYamlError` naming the
    file, line and key of anything unsupported or wrong (for named tasks and single files, always).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such task YAML or folder: {path}")
    if path.is_dir():
        index = TaskIndex.of_folders([path])
        expander = Expander(index, model_type)
        if names is None:
            if strict and index.errors:
                raise TaskYamlError(index.errors[0].reason)
            chosen = index.names("task")
            if not chosen and not index.errors:
                raise TaskYamlError(f"{path}: no task YAML (a .yaml file with `task: <name>`) in this folder")
            tasks = _expand(expander, chosen, strict, str(path))
            tasks.failures[:0] = index.errors
        else:
            tasks = _expand(expander, list(names), True, str(path))
    else:
        if names is not None:
            raise ValueError("`names` selects tasks from a folder; pass the folder, not a file")
        cfg = read_task_yaml(path)
        if is_group_config(cfg):
            from lmms_nb.tasks.catalogue import catalogue_folders, get_catalogue

            if any(f in path.absolute().parents for f in catalogue_folders()):
                index = get_catalogue().index  # a group of the catalogue: its names resolve as lmms-eval's do
            else:  # the group's own folder first, then the catalogue
                index = TaskIndex.of_folders([path.parent, *catalogue_folders()])
            tasks = TaskList(Expander(index, model_type).group(cfg))
        elif isinstance(cfg.data.get("task"), str):
            if "class" in cfg.data:
                raise TaskYamlError(f"{cfg.where('class')}: Python-class tasks (`class:`) are not supported")
            tasks = TaskList([build_task(cfg, model_type=model_type)])
        else:
            raise TaskYamlError(f"{path}: defines no task: a task YAML needs `task: <name>` "
                                "(a group YAML `group: <name>` and `task: [subtasks]`)")
    _check_no_repeats(tasks, str(path))
    return tasks


def _check_no_repeats(tasks: Sequence[Task], where: str) -> None:
    seen: dict[str, int] = {}
    for t in tasks:
        seen[t.name] = seen.get(t.name, 0) + 1
    dupes = sorted(n for n, c in seen.items() if c > 1)
    if dupes:
        raise TaskYamlError(f"{where}: task(s) {dupes} would run more than once (listed by several groups or tags)")


def load_task(path: str | Path, name: str | None = None, *, model_type: str | None = None) -> Task:
    """One task from a task YAML (or the task `name` from a folder); see `load_tasks` and the module example."""
    path = Path(path)
    tasks = load_tasks(path, [name] if name is not None and path.is_dir() else None, model_type=model_type)
    if name is not None and not path.is_dir():
        tasks = [t for t in tasks if t.name == name] or tasks
    if len(tasks) != 1:
        raise TaskYamlError(f"{path}: defines {len(tasks)} tasks ({', '.join(t.name for t in tasks)}); "
                            "use load_tasks() or pass name=")
    return tasks[0]


def is_yaml_task_spec(spec: Any) -> bool:
    """True when `spec` names an existing `.yaml` file or a folder (what `resolve_tasks` loads from disk)."""
    if not isinstance(spec, (str, os.PathLike)):
        return False
    p = Path(spec)
    return (p.is_file() and p.suffix == ".yaml") or p.is_dir()


def resolve_tasks(spec: Any, *, model_type: str | None = None, include_path: Any = None) -> list[Task]:
    """`Task`s from what `evaluate(tasks=...)` accepts: a Task, a registered name, a name from lmms-eval's
    catalogue (and `include_path` folders; groups and tags expand to their tasks), a YAML path or folder,
    or a list of these. A name that is unknown or does not load raises before anything runs.

    >>> [t.name for t in resolve_tasks(["synthbench_count"])]
    ['synthbench_count']
    """
    from lmms_nb.tasks.catalogue import get_catalogue
    from lmms_nb.tasks.registry import _FACTORIES, _ensure_builtin, get_task

    items = [spec] if isinstance(spec, (str, os.PathLike, Task)) else list(spec)
    out: list[Task] = []
    _ensure_builtin()
    for item in items:
        if isinstance(item, Task):
            out.append(item)
        elif is_yaml_task_spec(item):
            out.extend(load_tasks(item, model_type=model_type))
        elif isinstance(item, os.PathLike) or (isinstance(item, str) and item.endswith(".yaml")):
            raise FileNotFoundError(f"no such task YAML: {item}")
        elif isinstance(item, str) and item not in _FACTORIES and item in get_catalogue(include_path):
            out.extend(get_catalogue(include_path).load([item], model_type=model_type))
        else:
            out.append(get_task(item))
    _check_no_repeats(out, "tasks")
    return out


def group_scores(scores: Any, tasks: Sequence[Task]) -> Any:
    """Group rows (as lmms-eval's `aggregate_metric_list`) computed from a `Run.scores` table of subtask scores.

    For every group with an aggregate_metric_list: value = mean of the subtasks' values, weighted by their
    sample counts `n` when ``weight_by_size`` is true; stderr pooled as lmms-eval does. Returns a polars
    DataFrame with the columns of `Run.scores` (task = the group name).
    """
    import math

    import polars as pl

    groups: dict[str, tuple[dict, list[str]]] = {}
    for t in tasks:
        for gname, gcfg in (t.config.get("groups") or {}).items():
            groups.setdefault(gname, (gcfg, []))[1].append(t.name)
    rows = []
    for gname, (gcfg, members) in groups.items():
        agg = gcfg.get("aggregate_metric_list")
        if not agg:
            continue
        part = scores.filter(pl.col("task").is_in(members) & pl.col("value").is_not_null())
        keys = part.select("metric", "filter").unique(maintain_order=True).iter_rows()
        for metric, filt in keys:
            sub = part.filter((pl.col("metric") == metric) & (pl.col("filter") == filt))
            for entry in [agg] if isinstance(agg, dict) else agg:
                if entry["metric"] not in f"{metric},{filt}":
                    continue
                values, sizes, stderrs = sub["value"].to_list(), sub["n"].to_list(), sub["stderr"].to_list()
                weights = sizes if entry.get("weight_by_size", False) else [1] * len(sizes)
                value = sum(v * w for v, w in zip(values, weights)) / sum(weights)
                stderr = None
                if all(s is not None for s in stderrs) and sum(sizes) > len(sizes):
                    pooled = sum((n - 1) * s**2 * n for n, s in zip(sizes, stderrs)) / (sum(sizes) - len(sizes))
                    stderr = math.sqrt(pooled / sum(sizes))
                rows.append({"task": gname, "metric": metric, "filter": filt, "value": float(value),
                             "stderr": stderr, "n": int(sum(sizes))})
    schema = {"task": pl.Utf8, "metric": pl.Utf8, "filter": pl.Utf8, "value": pl.Float64, "stderr": pl.Float64,
              "n": pl.Int64}
    return pl.DataFrame(rows, schema=schema)
