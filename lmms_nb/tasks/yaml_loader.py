"""Run lmms-eval task YAMLs: `load_task`, `load_tasks`, `resolve_tasks`, `group_scores`.

A folder written in lmms-eval's format (task YAMLs, `include`d templates, a `utils.py` reached through
``!function utils.name``) loads into lmms-nb `Task`s that give the same prompts, filtered answers and
scores as lmms-eval 0.7.3. Supported: include, task / tag / group (with aggregate_metric_list),
dataset_path (hub name or folder) / dataset_name / dataset_kwargs (load_from_disk, data_files, ...),
test_split, process_docs, doc_to_visual / doc_to_text / doc_to_target / doc_to_choice (field, Jinja
template or function), description, lmms_eval_specific_kwargs (default and per-model blocks),
model_specific_generation_kwargs / model_specific_target_kwargs, generation_kwargs, process_results,
metric_list (exact_match, anls, ... with their options; mean, median or `!function` aggregations),
filter_list (see `lmms_nb.tasks.filters`), output_type generate_until. Anything else is an error that
names the key, the file and the line. Only Python files inside the task folders are ever imported.

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

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmms_nb.tasks._yaml_build import GROUP_KEYS, TASK_KEYS, build_task, check_keys
from lmms_nb.tasks._yaml_config import TaskYaml, TaskYamlError, read_task_yaml
from lmms_nb.tasks._yaml_metrics import metric_number
from lmms_nb.tasks.task import Task

__all__ = [
    "TaskYamlError",
    "group_scores",
    "is_yaml_task_spec",
    "load_task",
    "load_tasks",
    "metric_number",
    "resolve_tasks",
]

_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints"}


@dataclass
class _Entry:
    kind: str  # "task", "group" or "tag"
    name: str
    cfg: TaskYaml | None = None
    tasks: list[str] = field(default_factory=list)  # a tag's member tasks


def _is_group(cfg: TaskYaml) -> bool:
    return isinstance(cfg.data.get("task"), list)


def _index_folder(folder: Path) -> dict[str, _Entry]:
    """Every task, group and tag defined by the YAML files under `folder` (recursively), as lmms-eval indexes."""
    index: dict[str, _Entry] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for fname in sorted(files):
            if not fname.endswith(".yaml"):
                continue
            cfg = read_task_yaml(Path(root) / fname)
            task = cfg.data.get("task")
            if _is_group(cfg):
                name = cfg.data.get("group")
                if not isinstance(name, str):
                    raise TaskYamlError(f"{cfg.where('group')}: a group config (task: [list]) needs `group: <name>`")
                _add(index, _Entry("group", name, cfg))
            elif isinstance(task, str):
                _add(index, _Entry("task", task, cfg))
                tags = cfg.data.get("tag") if cfg.data.get("tag") is not None else cfg.data.get("group")
                for tag in [tags] if isinstance(tags, str) else list(tags or []):
                    entry = index.setdefault(tag, _Entry("tag", tag))
                    if entry.kind == "tag":
                        entry.tasks.append(task)
            # other YAML files (shared templates without `task`) are only read through `include`
    return index


def _add(index: dict[str, _Entry], entry: _Entry) -> None:
    old = index.get(entry.name)
    if old is not None and old.kind != "tag":
        raise TaskYamlError(f"{entry.cfg.path if entry.cfg else '?'}: {entry.kind} {entry.name!r} is also "
                            f"defined in {old.cfg.path if old.cfg else '?'}")
    if old is not None and old.kind == "tag":
        raise TaskYamlError(f"{entry.cfg.path if entry.cfg else '?'}: {entry.name!r} is already a tag of tasks "
                            f"{old.tasks}")
    index[entry.name] = entry


#: (overrides, the config that wrote them, their key-path prefix there), applied in order on a subtask
_Layer = tuple[dict, TaskYaml, tuple]


class _Expander:
    """Expands names (tasks, tags, groups) and group entries into built `Task`s, as lmms-eval's TaskManager."""

    def __init__(self, index: dict[str, _Entry], model_type: str | None) -> None:
        self.index = index
        self.model_type = model_type

    def name(self, name: str, layers: tuple[_Layer, ...] = (), groups: tuple[str, ...] = (),
             where: str = "") -> list[Task]:
        entry = self.index.get(name)
        if entry is None:
            known = sorted(self.index)
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise TaskYamlError(f"{where + ': ' if where else ''}unknown task, tag or group {name!r}.{hint} "
                                f"Known: {', '.join(known) or '(none)'}")
        if entry.kind == "task":
            assert entry.cfg is not None
            return [build_task(_apply(entry.cfg, layers), model_type=self.model_type, groups=groups)]
        if entry.kind == "tag":
            return [t for member in entry.tasks for t in self.name(member, layers, groups)]
        assert entry.cfg is not None
        return self.group(entry.cfg, layers, groups)

    def group(self, cfg: TaskYaml, layers: tuple[_Layer, ...] = (), groups: tuple[str, ...] = ()) -> list[Task]:
        name = cfg.data.get("group")
        if not isinstance(name, str):
            raise TaskYamlError(f"{cfg.where('task')}: a group config (task: [list]) needs `group: <name>`")
        agg = cfg.data.get("aggregate_metric_list")
        _check_aggregate_metric_list(cfg, agg)
        # keys of a group file that are not group keys apply to every subtask, as in lmms-eval
        update = {k: v for k, v in cfg.data.items() if k not in GROUP_KEYS}
        check_keys(TaskYaml(cfg.path, update, cfg.origins, cfg.files), TASK_KEYS, "group")
        if update:
            layers = (*layers, (update, cfg, ()))
        chain = (*groups, name)
        tasks: list[Task] = []
        for i, item in enumerate(cfg.data["task"]):
            where = cfg.where("task", i)
            if isinstance(item, str):
                tasks.extend(self.name(item, layers, chain, where))
            elif isinstance(item, dict) and isinstance(item.get("task"), str) and item["task"] in self.index:
                # a known task, tag or group with overrides for this group
                sub = {k: v for k, v in item.items() if k != "task"}
                tasks.extend(self.name(item["task"], (*layers, (sub, cfg, ("task", i))) if sub else layers,
                                       chain, where))
            elif isinstance(item, dict) and isinstance(item.get("task"), str):
                # an inline task config: the group's settings, then the entry's own keys
                inline = _apply(TaskYaml(cfg.path, {}, {}, list(cfg.files)), (*layers, (item, cfg, ("task", i))))
                tasks.append(build_task(inline, model_type=self.model_type, groups=chain))
            elif isinstance(item, dict) and isinstance(item.get("task"), list):
                inline = TaskYaml(cfg.path, {}, {}, list(cfg.files)).with_overrides(item, cfg, ("task", i))
                tasks.extend(self.group(inline, layers, chain))
            else:
                raise TaskYamlError(f"{where}: a group's task entry must be a name or a mapping with `task`")
        for t in tasks:
            t.config.setdefault("groups", {})[name] = {"aggregate_metric_list": agg} if agg else {}
        return tasks


def _apply(cfg: TaskYaml, layers: tuple[_Layer, ...]) -> TaskYaml:
    for overrides, source, prefix in layers:
        cfg = cfg.with_overrides(overrides, source, prefix)
    return cfg


def _check_aggregate_metric_list(cfg: TaskYaml, agg: Any) -> None:
    if agg is None:
        return
    entries = [agg] if isinstance(agg, dict) else agg
    if not isinstance(entries, list):
        raise TaskYamlError(f"{cfg.where('aggregate_metric_list')}: aggregate_metric_list must be a list")
    for i, entry in enumerate(entries):
        where = cfg.where("aggregate_metric_list", i)
        if not isinstance(entry, dict) or "metric" not in entry:
            raise TaskYamlError(f"{where}: each aggregate_metric_list entry needs `metric`")
        extra = set(entry) - {"metric", "aggregation", "weight_by_size", "filter_list"}
        if extra:
            raise TaskYamlError(f"{where}: unsupported aggregate_metric_list key(s) {sorted(extra)}")
        if entry.get("aggregation", "mean") != "mean":
            raise TaskYamlError(f"{where}: only `aggregation: mean` is supported across a group's subtasks")


def load_tasks(path: str | Path, names: Sequence[str] | None = None, *, model_type: str | None = None) -> list[Task]:
    """The tasks defined by a task YAML, a group YAML, or a folder of them (searched recursively).

    Args:
        path: a `.yaml` file (one task, or a group whose subtasks are looked up in the file's folder), or a
            folder: every task in it, or only `names`.
        names: tasks, tags or groups to take from a folder (all of its tasks when omitted).
        model_type: the lmms-eval model name (e.g. "llava_hf", "qwen2_5_vl") whose blocks of
            `lmms_eval_specific_kwargs` and `model_specific_*` apply; the `default` block otherwise.

    Returns the tasks in order, each named as its YAML's `task`. Raises `TaskYamlError` naming the
    file, line and key of anything unsupported or wrong.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such task YAML or folder: {path}")
    if path.is_dir():
        expander = _Expander(_index_folder(path), model_type)
        if names is None:
            chosen = sorted(n for n, e in expander.index.items() if e.kind == "task")
            if not chosen:
                raise TaskYamlError(f"{path}: no task YAML (a .yaml file with `task: <name>`) in this folder")
        else:
            chosen = list(names)
        tasks = [t for n in chosen for t in expander.name(n)]
    else:
        if names is not None:
            raise ValueError("`names` selects tasks from a folder; pass the folder, not a file")
        cfg = read_task_yaml(path)
        if _is_group(cfg):
            tasks = _Expander(_index_folder(path.parent), model_type).group(cfg)
        elif isinstance(cfg.data.get("task"), str):
            if "class" in cfg.data:
                raise TaskYamlError(f"{cfg.where('class')}: Python-class tasks (`class:`) are not supported")
            tasks = [build_task(cfg, model_type=model_type)]
        else:
            raise TaskYamlError(f"{path}: defines no task: a task YAML needs `task: <name>` "
                                "(a group YAML `group: <name>` and `task: [subtasks]`)")
    seen: dict[str, int] = {}
    for t in tasks:
        seen[t.name] = seen.get(t.name, 0) + 1
    dupes = sorted(n for n, c in seen.items() if c > 1)
    if dupes:
        raise TaskYamlError(f"{path}: task(s) {dupes} would run more than once (listed by several groups or tags)")
    return tasks


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


def resolve_tasks(spec: Any, *, model_type: str | None = None) -> list[Task]:
    """`Task`s from what `evaluate(tasks=...)` accepts: a Task, a registered name, a YAML path or folder, or a list.

    >>> [t.name for t in resolve_tasks(["synthbench_count"])]
    ['synthbench_count']
    """
    from lmms_nb.tasks.registry import get_task

    items = [spec] if isinstance(spec, (str, os.PathLike, Task)) else list(spec)
    out: list[Task] = []
    for item in items:
        if isinstance(item, Task):
            out.append(item)
        elif is_yaml_task_spec(item):
            out.extend(load_tasks(item, model_type=model_type))
        elif isinstance(item, os.PathLike) or (isinstance(item, str) and item.endswith(".yaml")):
            raise FileNotFoundError(f"no such task YAML: {item}")
        else:
            out.append(get_task(item))
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
        part = scores.filter(pl.col("task").is_in(members))
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
