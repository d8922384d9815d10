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
    """The task registered as `name`, or loaded from an lmms-eval YAML path (a `Task` passes through).

    Unknown names raise with close matches.
    """
    if isinstance(name, Task):
        return name
    from lmms_nb.tasks.yaml_loader import is_yaml_task_spec, load_task

    if is_yaml_task_spec(name):  # an lmms-eval task YAML (a folder goes through load_tasks / evaluate)
        return load_task(name)
    _ensure_builtin()
    if name not in _FACTORIES:
        close = difflib.get_close_matches(name, list(_FACTORIES), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown task {name!r}.{hint} Known tasks: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[name]()


def _ensure_builtin() -> None:
    # Importing synthbench registers its tasks; done lazily so `import lmms_nb` stays fast.
    from lmms_nb.tasks import synthbench  # noqa: F401
