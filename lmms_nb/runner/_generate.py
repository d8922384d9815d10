"""Stage 2, generate: task rows -> `Request`s -> the model's `Response`s, one failing request never stopping a batch.

`generate_safely` is the one place that calls `Model.generate` for a batch; the runner and the live pipeline
(`lmms_nb.live`) both use it.

Example:
    >>> from lmms_nb.models.baselines import FunctionModel
    >>> from lmms_nb.models.base import Request
    >>> def answer(r):
    ...     if r.prompt == "boom":
    ...         raise ValueError("bad doc")
    ...     return "ok"
    >>> out = generate_safely(FunctionModel(answer, name="m"), [Request(0, "t", [], "hi"), Request(1, "t", [], "boom")])
    >>> [(r.text, r.error) for r in out]
    [('ok', None), (None, 'ValueError: bad doc')]
"""

from __future__ import annotations

from typing import Any

from lmms_nb.models.base import Model, Request, Response
from lmms_nb.tasks.task import Task

__all__ = ["generate_safely", "make_request"]


def make_request(task: Task, doc_id: int, doc: dict[str, Any]) -> Request:
    """The request for one task row: its images, prompt, generation kwargs and (for multiple choice) choices."""
    return Request(
        doc_id=doc_id,
        task=task.name,
        images=list(task.doc_to_visual(doc) or []),
        prompt=task.doc_to_text(doc),
        generation_kwargs=dict(task.generation_kwargs),
        choices=task.doc_to_choice(doc) if task.doc_to_choice is not None else None,
        doc={k: v for k, v in doc.items() if k != task.image_column},
    )


def generate_safely(model: Model, requests: list[Request]) -> list[Response]:
    """The model's responses, one per request, in order; never raises.

    If the batch raises (or returns the wrong number of responses) each request is retried alone, so only
    the culprit gets the error (as `Response.error`, "<ExceptionType>: <message>").
    """
    try:
        responses = list(model.generate(requests))
        if len(responses) != len(requests):
            raise RuntimeError(f"model returned {len(responses)} responses for {len(requests)} requests")
        return responses
    except Exception as batch_error:  # noqa: BLE001 - one broken request must not lose the batch
        if len(requests) == 1:
            return [Response(text=None, error=f"{type(batch_error).__name__}: {batch_error}")]
        out = []
        for req in requests:
            out.extend(generate_safely(model, [req]))
        return out
