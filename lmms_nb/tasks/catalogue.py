"""lmms-eval's own task catalogue, by name: `TaskCatalogue`, `get_catalogue`.

With the extra ``pip install 'lmms-nb[lmms-eval]'`` (lmms-eval 0.7.3 installed beside lmms-nb), every task,
group and tag of lmms-eval's tasks folder resolves by name, as `lmms-eval --tasks mme,pope` does:
``get_task("mme")``, ``evaluate(model, ["mme", "pope"])``, ``lmms-nb tasks``. Folders of your own
(`include_path`) are indexed after the catalogue; as in lmms-eval 0.7.3 (``{**later, **earlier}`` in its
TaskManager), the first folder that defines a name wins. Groups expand to their subtasks and keep their
`aggregate_metric_list`, so `group_scores` reports group scores as lmms-eval does.

The catalogue's task files are found without importing lmms-eval; its `utils.py` files import it (and
loguru, openai, ...) when a task is built, which is what the extra installs.

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "mine.yaml").write_text(
    ...     "task: mine\\ndataset_path: x\\ntest_split: test\\ndoc_to_text: q\\ndoc_to_target: a\\n")
    >>> cat = TaskCatalogue(include_path=[d], include_defaults=False)
    >>> cat.names("task"), cat.load(["mine"])[0].name
    (['mine'], 'mine')
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmms_nb.tasks._yaml_index import Expander, TaskIndex, _names_of
from lmms_nb.tasks.yaml_loader import TaskList, _check_no_repeats, _expand

__all__ = ["TaskCatalogue", "catalogue_folders", "get_catalogue", "lmms_eval_tasks_dir"]


def lmms_eval_tasks_dir() -> Path | None:
    """The installed lmms-eval's tasks folder (found without importing lmms-eval), or None when not installed."""
    try:
        spec = importlib.util.find_spec("lmms_eval")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        tasks = Path(location) / "tasks"
        if tasks.is_dir():
            return tasks
    return None


def catalogue_folders(include_path: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                      include_defaults: bool = True) -> list[Path]:
    """The folders a catalogue indexes, in lmms-eval's order: the installed tasks folder, then `include_path`."""
    folders: list[Path] = []
    default = lmms_eval_tasks_dir() if include_defaults else None
    if default is not None:
        folders.append(default)
    if include_path is not None:
        extra = [include_path] if isinstance(include_path, (str, os.PathLike)) else list(include_path)
        for folder in extra:
            path = Path(folder).absolute()
            if not path.is_dir():
                raise FileNotFoundError(f"include_path: no such folder: {folder}")
            folders.append(path)
    return folders


class TaskCatalogue:
    """Tasks, groups and tags of lmms-eval's installed catalogue and of `include_path` folders, by name.

    Args:
        include_path: folders of your own task YAMLs, indexed after lmms-eval's (the first definition of
            a name wins, as in lmms-eval 0.7.3).
        include_defaults: index the installed lmms-eval's tasks folder (when installed).
    """

    def __init__(self, include_path: Any = None, *, include_defaults: bool = True) -> None:
        self.folders = catalogue_folders(include_path, include_defaults)
        self.index = TaskIndex.of_folders(self.folders)

    def __contains__(self, name: object) -> bool:
        return name in self.index.entries

    def names(self, kind: str | None = None) -> list[str]:
        """Sorted names of the catalogue's tasks, groups or tags (`kind` = "task", "group", "tag"; all if None)."""
        return self.index.names(kind)

    def load(self, names: Sequence[str], *, model_type: str | None = None) -> TaskList:
        """The tasks of these names (groups and tags expanded); anything that does not load raises."""
        tasks = _expand(Expander(self.index, model_type), list(names), True, "catalogue")
        _check_no_repeats(tasks, ", ".join(names))
        return tasks

    def load_all(self, *, model_type: str | None = None, strict: bool = False) -> TaskList:
        """Every task of the catalogue that loads; the others (and unreadable YAMLs) in `.failures`."""
        tasks = _expand(Expander(self.index, model_type), self.names("task"), strict, "catalogue")
        tasks.failures[:0] = self.index.errors
        return tasks

    def table(self) -> Any:
        """A polars DataFrame: name, kind (task / group / tag), yaml_path, members (a group's or tag's)."""
        import polars as pl

        rows = []
        for name in self.names():
            e = self.index.entries[name]
            members = e.tasks if e.kind == "tag" else (
                [m if isinstance(m, str) else str(m.get("task")) for m in _names_of(e.path).get("task", [])]
                if e.kind == "group" and e.path is not None else [])
            rows.append({"name": name, "kind": e.kind, "yaml_path": str(e.path) if e.path else None,
                         "members": members})
        return pl.DataFrame(rows, schema={"name": pl.Utf8, "kind": pl.Utf8, "yaml_path": pl.Utf8,
                                          "members": pl.List(pl.Utf8)})


@functools.lru_cache(maxsize=8)
def _cached(folders: tuple[str, ...], include_defaults: bool, _states: tuple[str, ...]) -> TaskCatalogue:
    return TaskCatalogue(list(folders) or None, include_defaults=include_defaults)


def get_catalogue(include_path: Any = None, *, include_defaults: bool = True) -> TaskCatalogue:
    """The catalogue for these folders, indexed once per process (the installed one when no `include_path`); an
    `include_path` folder is looked at again on every call (the path, size and mtime of its files, as the index's
    disk cache keys it), so a task YAML added, removed or renamed there is seen by the next call."""
    from lmms_nb.tasks._index_cache import folder_state

    extra = [] if include_path is None else (
        [include_path] if isinstance(include_path, (str, os.PathLike)) else list(include_path))
    folders = tuple(str(Path(p).absolute()) for p in extra)
    return _cached(folders, include_defaults, tuple(folder_state(Path(f)) for f in folders))
