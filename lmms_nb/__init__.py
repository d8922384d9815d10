"""lmms-nb: a Jupyter-first toolkit for evaluating large multimodal models.

Run evaluations, load every log format into one polars table, compare models with paired statistics,
build Lite subsets, and render reports. Public names are imported lazily so `import lmms_nb` is instant.

Example:
    >>> import lmms_nb
    >>> "synthbench_count" in lmms_nb.list_tasks()
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "evaluate": "lmms_nb.runner",
    "Run": "lmms_nb.runner",
    "Task": "lmms_nb.tasks",
    "Metric": "lmms_nb.tasks",
    "get_task": "lmms_nb.tasks",
    "list_tasks": "lmms_nb.tasks",
    "register_task": "lmms_nb.tasks",
    "load_task": "lmms_nb.tasks.yaml_loader",
    "load_tasks": "lmms_nb.tasks.yaml_loader",
    "get_catalogue": "lmms_nb.tasks.catalogue",
    "TaskCatalogue": "lmms_nb.tasks.catalogue",
    "Model": "lmms_nb.models",
    "Request": "lmms_nb.models",
    "Response": "lmms_nb.models",
    "get_model": "lmms_nb.models",
    "list_models": "lmms_nb.models",
    "register_model": "lmms_nb.models",
    "FunctionModel": "lmms_nb.models.baselines",
    "OpenAIChatModel": "lmms_nb.models.openai_compat",
    "LLMJudge": "lmms_nb.judge",
    "judge_metric": "lmms_nb.judge",
    "load_logs": "lmms_nb.logs",
    "scan_logs": "lmms_nb.logs",
    "load_scores": "lmms_nb.logs",
    "LogFormatError": "lmms_nb.logs",
    "rescore": "lmms_nb.logs",
    "embed_task": "lmms_nb.lite_selection",
    "kcenter_greedy": "lmms_nb.lite_selection",
    "build_lite_subset": "lmms_nb.lite_selection",
    "build_difficulty_subset": "lmms_nb.lite_selection",
    "difficulty_estimates": "lmms_nb.lite_selection",
    "lite_estimates": "lmms_nb.lite_selection",
    "lite_fidelity": "lmms_nb.lite_selection",
    "lite_task": "lmms_nb.lite_selection",
    "save_lite_subset": "lmms_nb.lite_selection",
    "load_lite_subset": "lmms_nb.lite_selection",
    "compare": "lmms_nb.analysis",
    "flips": "lmms_nb.analysis",
    "find_slices": "lmms_nb.analysis",
    "Slices": "lmms_nb.analysis",
    "report": "lmms_nb.reporting",
    "Comparison": "lmms_nb.analysis",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lmms_nb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and IDEs
    from lmms_nb.analysis import Comparison, compare, flips
    from lmms_nb.lite_selection import (build_difficulty_subset, build_lite_subset, difficulty_estimates, embed_task,
                                        kcenter_greedy, lite_estimates, lite_fidelity, lite_task, load_lite_subset,
                                        save_lite_subset)
    from lmms_nb.logs import LogFormatError, load_logs, load_scores, rescore, scan_logs
    from lmms_nb.models import Model, Request, Response, get_model, list_models, register_model
    from lmms_nb.reporting import report
    from lmms_nb.runner import Run, evaluate
    from lmms_nb.tasks import Metric, Task, get_task, list_tasks, register_task
    from lmms_nb.tasks.catalogue import TaskCatalogue, get_catalogue
    from lmms_nb.tasks.yaml_loader import load_task, load_tasks
