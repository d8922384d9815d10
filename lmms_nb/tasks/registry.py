"""The task registry: `register_task`, `list_tasks`, `get_task`.

Example:
    >>> from lmms_nb.tasks import list_tasks, get_task
    >>> "synthbench_count" in list_tasks()
    True
    >>> get_task("synthbench_count").name
    'synthbench_count'
"""

from __future__ import annotations

import difflib
from typing import Callable

from lmms_nb.tasks.task import Task

_FACTORIES: dict[str, Callable[[], Task]] = {}


def register_task(name: str, factory: Callable[[], Task]) -> None:
    """Register a task factory under `name` (the factory is called lazily by `get_task`)."""
    _FACTORIES[name] = factory


def list_tasks() -> list[str]:
    """Names of all registered tasks, sorted."""
    _ensure_builtin()
    return sorted(_FACTORIES)


def get_task(name: str | Task) -> Task:
    """The task registered as `name`, a task of lmms-eval's installed catalogue (`lmms_nb.tasks.catalogue`),
    or loaded from an lmms-eval YAML path (a `Task` passes through). Unknown names raise with close matches.
    """
    if isinstance(name, Task):
        return name
    from lmms_nb.tasks.yaml_loader import is_yaml_task_spec, load_task

    if is_yaml_task_spec(name):  # an lmms-eval task YAML (a folder goes through load_tasks / evaluate)
        return load_task(name)
    _ensure_builtin()
    if name in _FACTORIES:
        return _FACTORIES[name]()
    from lmms_nb.tasks.catalogue import get_catalogue

    catalogue = get_catalogue()
    if name in catalogue:  # a task of lmms-eval's installed catalogue (a group or tag: use load_tasks / evaluate)
        tasks = catalogue.load([name])
        if len(tasks) != 1:
            raise KeyError(f"{name!r} is an lmms-eval group or tag of {len(tasks)} tasks "
                           f"({', '.join(t.name for t in tasks[:8])}{' ...' if len(tasks) > 8 else ''}): "
                           "pass it to evaluate() or get_catalogue().load()")
        return tasks[0]
    known = list(_FACTORIES) + catalogue.names()
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    where = (f"registered tasks and lmms-eval's catalogue ({len(catalogue.names())} names, `lmms-nb tasks`)"
             if catalogue.folders else "registered tasks (lmms-eval's catalogue is not installed: "
             "pip install 'lmms-nb[lmms-eval]')")
    raise KeyError(f"unknown task {name!r}.{hint} Searched {where}; registered: {', '.join(sorted(_FACTORIES))}")


def _ensure_builtin() -> None:
    # Importing synthbench registers its tasks; done lazily so `import lmms_nb` stays fast.
    from lmms_nb.tasks import synthbench  # noqa: F401
