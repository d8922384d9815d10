"""lmms-eval's task index and expansion: which YAML defines each task, group and tag, and how names expand.

This mirrors lmms-eval 0.7.3's `TaskManager`:

* a folder is walked with `os.walk` in the file system's order; every YAML whose merged `task` is a string is
  a task, a list a group; a task's `tag` (or legacy `group`) names tags;
* a name defined twice (lmms-eval's own tree defines three twice) is the one walked last, with a warning
  naming both files, as lmms-eval's index (a dict) keeps the last; a tag that is already a task or group is
  not registered (warning, as lmms-eval); a task named like an earlier tag replaces it;
* of several folders (the installed catalogue, then `include_path`s), the first that defines a name wins, as
  lmms-eval merges ``{**later, **earlier}``;
* a YAML that cannot be read is not indexed; it is listed in `errors` (lmms-eval would stop there).

`Expander` turns names into built `Task`s, applying a group's keys to its subtasks as lmms-eval does.

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.yaml").write_text("task: a\\ntag: letters\\n")
    >>> _ = (d / "b.yaml").write_text("task: b\\ntag: letters\\n")
    >>> index = TaskIndex.of_folders([d])
    >>> index.entries["letters"].kind, sorted(index.entries["letters"].tasks)
    ('tag', ['a', 'b'])
"""

from __future__ import annotations

import difflib
import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lmms_nb.tasks._index_cache import cached_folder_index
from lmms_nb.tasks._yaml_build import GROUP_KEYS, TASK_KEYS, build_task, check_keys
from lmms_nb.tasks._yaml_config import TaskYaml, TaskYamlError, read_task_yaml
from lmms_nb.tasks.task import Task

__all__ = ["Entry", "Expander", "TaskIndex", "TaskLoadFailure", "is_group_config"]

_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints"}


@dataclass
class Entry:
    kind: str  # "task", "group" or "tag"
    name: str
    path: Path | None = None  # the YAML that defines a task or group (None for a tag)
    tasks: list[str] = field(default_factory=list)  # a tag's member tasks

    @property
    def cfg(self) -> TaskYaml | None:
        """The YAML read in full (with where each key came from), read on every use (indexing reads only names):
        an edit of the file or of a file it includes is seen by the next build (the parse is kept per file
        content, so reading again costs a hash, not a parse)."""
        return None if self.path is None else read_task_yaml(self.path)


class _QuickLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Only for indexing (as lmms-eval's "simple" mode): `!function` values are not needed to know the names."""


_QuickLoader.add_constructor("!function", lambda loader, node: None)


#: (path, sha256 of its bytes) -> the file's own top-level keys (include not merged); bounded
_QUICK: dict[tuple[str, bytes], dict] = {}


def _quick_read(path: Path, stack: tuple[Path, ...] = ()) -> dict:
    """The merged top-level keys of a YAML and its includes, fast (C parser, no line numbers). Each file is read
    every call and its parse kept by the hash of its bytes: an edit of it or of an included file is seen."""
    if path in stack:
        raise TaskYamlError(f"{path}: include cycle")
    raw = path.read_bytes()
    key = (str(path), hashlib.sha256(raw).digest())
    data = _QUICK.get(key)
    if data is None:
        data = yaml.load(raw.decode("utf-8"), Loader=_QuickLoader) or {}
        if not isinstance(data, dict):
            raise TaskYamlError(f"{path}: a task YAML must be a mapping of keys")
        if len(_QUICK) < 8192:
            _QUICK[key] = data
    include = data.get("include")
    merged: dict = {}
    for name in reversed([include] if isinstance(include, str) else list(include or [])):
        merged.update(_quick_read(path.parent / str(name), (*stack, path)))
    merged.update((k, v) for k, v in data.items() if k != "include")
    return merged


def _names_of(path: Path) -> dict:
    try:
        return _quick_read(path)
    except Exception:  # noqa: BLE001 - read it again in full for an error that names the file, line and key
        return read_task_yaml(path).data


@dataclass(frozen=True)
class TaskLoadFailure:
    """A task (or group, or YAML file) that could not be loaded: its name, where, and why (file:line: key: ...)."""

    name: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def is_group_config(cfg: TaskYaml) -> bool:
    return isinstance(cfg.data.get("task"), list)


@dataclass
class TaskIndex:
    """Every task, group and tag defined under some folders, with lmms-eval's precedence (module docstring)."""

    entries: dict[str, Entry] = field(default_factory=dict)
    #: YAML files that could not be read (so define nothing here)
    errors: list[TaskLoadFailure] = field(default_factory=list)
    #: (name, the file kept, the file dropped) for names defined more than once
    duplicates: list[tuple[str, str, str]] = field(default_factory=list)

    @classmethod
    def of_folders(cls, folders: list[Path]) -> TaskIndex:
        merged = cls()
        for folder in folders:
            one = cached_folder_index(Path(folder), cls._of_folder)  # on disk: re-reading ~3k YAMLs takes seconds
            merged.errors += one.errors
            merged.duplicates += one.duplicates
            for name, entry in one.entries.items():
                kept = merged.entries.get(name)
                if kept is None:
                    merged.entries[name] = entry
                elif kept.path is not None and entry.path is not None:
                    merged.duplicates.append((name, str(kept.path), str(entry.path)))
                    warnings.warn(f"{name!r} is defined in {kept.path} and {entry.path}: using the first "
                                  "(the earlier folder wins, as in lmms-eval)", stacklevel=3)
        return merged

    @classmethod
    def _of_folder(cls, folder: Path) -> TaskIndex:
        index = cls()
        entries = index.entries
        # os.walk in the file system's order, unsorted: the order lmms-eval sees, so the same duplicate wins
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
            for fname in files:
                if not fname.endswith(".yaml"):
                    continue
                path = (Path(root) / fname).absolute()
                try:
                    data = _names_of(path)
                except TaskYamlError as e:
                    index.errors.append(TaskLoadFailure(fname, str(path), str(e)))
                    continue
                task = data.get("task")
                if isinstance(task, list):
                    name = data.get("group")
                    if not isinstance(name, str):
                        index.errors.append(TaskLoadFailure(fname, str(path), f"{path}: a group config "
                                                                             "(task: [list]) needs `group: <name>`"))
                        continue
                    index._put(Entry("group", name, path))
                elif isinstance(task, str):
                    index._put(Entry("task", task, path))
                    for attr in ("tag", "group"):
                        tags = data.get(attr)
                        for tag in [tags] if isinstance(tags, str) else list(tags or []):
                            if not isinstance(tag, str):
                                continue
                            entry = entries.get(tag)
                            if entry is None:
                                entries[tag] = Entry("tag", tag, tasks=[task])
                            elif entry.kind != "tag":
                                warnings.warn(f"{path}: tag {tag!r} is already a {entry.kind} "
                                              f"({entry.path}); not registered as a tag, "
                                              "as in lmms-eval", stacklevel=4)
                                break
                            else:
                                entry.tasks.append(task)
                # other YAML files (shared templates without `task`) are only read through `include`
        return index

    def _put(self, entry: Entry) -> None:
        old = self.entries.get(entry.name)
        if old is not None and old.path is not None and entry.path is not None:
            self.duplicates.append((entry.name, str(entry.path), str(old.path)))
            warnings.warn(f"{entry.kind} {entry.name!r} is defined in {old.path} and {entry.path}: using "
                          "the latter (the last one lmms-eval's index sees)", stacklevel=4)
        self.entries[entry.name] = entry

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(n for n, e in self.entries.items() if kind is None or e.kind == kind)


#: (overrides, the config that wrote them, their key-path prefix there), applied in order on a subtask
_Layer = tuple[dict, TaskYaml, tuple]


class Expander:
    """Expands names (tasks, tags, groups) and group entries into built `Task`s, as lmms-eval's TaskManager."""

    def __init__(self, index: TaskIndex, model_type: str | None) -> None:
        self.index = index
        self.model_type = model_type

    def name(self, name: str, layers: tuple[_Layer, ...] = (), groups: tuple[str, ...] = (),
             where: str = "") -> list[Task]:
        entry = self.index.entries.get(name)
        if entry is None:
            known = self.index.names()
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            shown = ", ".join(known[:40]) + (f", ... ({len(known)} in all)" if len(known) > 40 else "")
            raise TaskYamlError(f"{where + ': ' if where else ''}unknown task, tag or group {name!r}.{hint} "
                                f"Known: {shown or '(none)'}")
        if entry.kind == "task":
            cfg = entry.cfg
            assert cfg is not None
            if "class" in cfg.data:
                raise TaskYamlError(f"{cfg.where('class')}: Python-class tasks (`class:`) are not supported")
            return [build_task(_apply(cfg, layers), model_type=self.model_type, groups=groups)]
        if entry.kind == "tag":
            return [t for member in entry.tasks for t in self.name(member, layers, groups)]
        cfg = entry.cfg
        assert cfg is not None
        return self.group(cfg, layers, groups)

    def group(self, cfg: TaskYaml, layers: tuple[_Layer, ...] = (), groups: tuple[str, ...] = ()) -> list[Task]:
        name = cfg.data.get("group")
        if not isinstance(name, str):
            raise TaskYamlError(f"{cfg.where('task')}: a group config (task: [list]) needs `group: <name>`")
        agg = cfg.data.get("aggregate_metric_list")
        _check_aggregate_metric_list(cfg, agg)
        # keys of a group file that are not group keys apply to every subtask, as in lmms-eval
        update = {k: v for k, v in cfg.data.items() if k not in GROUP_KEYS}
        check_keys(TaskYaml(cfg.path, update, cfg.origins, cfg.files, cfg.sources), TASK_KEYS, "group")
        if update:
            layers = (*layers, (update, cfg, ()))
        chain = (*groups, name)
        tasks: list[Task] = []
        for i, item in enumerate(cfg.data["task"]):
            where = cfg.where("task", i)
            if isinstance(item, str):
                tasks.extend(self.name(item, layers, chain, where))
            elif isinstance(item, dict) and isinstance(item.get("task"), str) and item["task"] in self.index.entries:
                # a known task, tag or group with overrides for this group
                sub = {k: v for k, v in item.items() if k != "task"}
                tasks.extend(self.name(item["task"], (*layers, (sub, cfg, ("task", i))) if sub else layers,
                                       chain, where))
            elif isinstance(item, dict) and isinstance(item.get("task"), str):
                # an inline task config: the group's settings, then the entry's own keys
                inline = _apply(TaskYaml(cfg.path, {}, {}, list(cfg.files), dict(cfg.sources)), (*layers, (item, cfg, ("task", i))))
                tasks.append(build_task(inline, model_type=self.model_type, groups=chain))
            elif isinstance(item, dict) and isinstance(item.get("task"), list):
                inline = TaskYaml(cfg.path, {}, {}, list(cfg.files), dict(cfg.sources)).with_overrides(item, cfg, ("task", i))
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
