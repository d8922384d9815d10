"""Tasks: the `Task` spec, the registry, and the built-in offline benchmark synthbench."""

from lmms_nb.tasks.registry import get_task, list_tasks, register_task
from lmms_nb.tasks.task import Metric, Task, mean_aggregation

__all__ = ["Task", "Metric", "mean_aggregation", "get_task", "list_tasks", "register_task"]
