"""Baseline models: `majority` (the most common answer per question type) and `FunctionModel`.

Example:
    >>> from lmms_nb.models import Request
    >>> from lmms_nb.models.baselines import FunctionModel
    >>> m = FunctionModel(lambda req: req.prompt.upper(), name="shout")
    >>> m.generate([Request(doc_id=0, task="t", images=[], prompt="hi")])[0].text
    'HI'
"""

from __future__ import annotations

import inspect
import time
from collections import Counter
from typing import Any, Callable, Sequence

from lmms_nb.models.base import Request, Response
from lmms_nb.models.registry import register_model


class FunctionModel:
    """Any Python function as a model: `fn(request) -> str`, or `fn(images, prompt) -> str`.

    An exception raised by `fn` becomes that request's error; the other requests still get answers.
    """

    def __init__(self, fn: Callable[..., str], *, name: str | None = None, model_args: dict[str, Any] | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "function")
        self.model_args = dict(model_args or {"function": getattr(fn, "__qualname__", repr(fn))})
        # Accept both call styles; decided once from the signature.
        params = [p for p in inspect.signature(fn).parameters.values() if p.default is p.empty]
        self._two_args = len(params) >= 2

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for req in requests:
            start = time.perf_counter()
            try:
                text = self.fn(req.images, req.prompt) if self._two_args else self.fn(req)
                out.append(Response(text=str(text), latency_s=time.perf_counter() - start))
            except Exception as e:  # noqa: BLE001 - a model error belongs to its sample, not to the run
                out.append(Response(text=None, error=f"{type(e).__name__}: {e}", latency_s=time.perf_counter() - start))
        return out


class MajorityModel:
    """Answers every question with the most common answer of its question type in a training split.

    The question type is the task plus the doc's `category_column` value. `fit` learns from `(task, dataset)`
    pairs; for a task it has not seen it falls back to the most common target of the task's own split (a
    chance-level floor that peeks at the label distribution, so read it as such).
    """

    name = "majority"

    def __init__(self, answers: dict[tuple[str, str | None], str] | None = None):
        self.answers: dict[tuple[str, str | None], str] = dict(answers or {})
        self.model_args: dict[str, Any] = {"fitted_on": "train split"}
        self._category_column: dict[str, str | None] = {}

    def fit(self, task_name: str, rows: Sequence[dict[str, Any]], *, target: Callable[[dict], str],
            category_column: str | None) -> "MajorityModel":
        by_type: dict[str | None, Counter] = {}
        overall: Counter = Counter()
        for row in rows:
            answer = target(row)
            key = row.get(category_column) if category_column else None
            by_type.setdefault(key, Counter())[answer] += 1
            overall[answer] += 1
        for key, counts in by_type.items():
            self.answers[(task_name, key)] = _most_common(counts)
        self.answers[(task_name, None)] = _most_common(overall)
        return self

    def _fit_task(self, task_name: str) -> None:
        from lmms_nb.tasks import get_task

        task = get_task(task_name)
        ds = task.train_load() if task.train_load is not None else task.load()
        self._category_column[task_name] = task.category_column
        cols = [c for c in ds.column_names if c != task.image_column]
        rows = ds.select_columns(cols)
        self.fit(task_name, rows, target=task.doc_to_target, category_column=task.category_column)

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for req in requests:
            try:
                if (req.task, None) not in self.answers:
                    self._fit_task(req.task)
                col = self._category_column.get(req.task)
                key = (req.doc or {}).get(col) if col else None
                text = self.answers.get((req.task, key), self.answers[(req.task, None)])
                out.append(Response(text=text, latency_s=0.0, output_tokens=1))
            except Exception as e:  # noqa: BLE001
                out.append(Response(text=None, error=f"{type(e).__name__}: {e}"))
        return out


def _most_common(counts: Counter) -> str:
    # Ties go to the smallest answer so the baseline is deterministic whatever the row order.
    best = max(counts.values())
    return min(a for a, c in counts.items() if c == best)


register_model("majority", lambda **kw: MajorityModel(**kw))
register_model("function", lambda fn, **kw: FunctionModel(fn, **kw))
