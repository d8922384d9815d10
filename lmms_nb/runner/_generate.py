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

import time
from typing import Any

from lmms_nb.models.base import LoglikelihoodRequest, Model, Request, Response
from lmms_nb.tasks.task import Task

__all__ = ["check_model_can_run", "generate_safely", "make_request", "respond"]


def make_request(task: Task, doc_id: int, doc: dict[str, Any], *, chat: bool = False) -> Request:
    """The request for one task row: its images, prompt, generation kwargs and (for multiple choice) choices.

    `chat`: the model takes chat messages (`accepts_messages`); as lmms-eval 0.7.3 does for its chat backends,
    a task's doc_to_messages then builds what is sent (`Request.messages`), and doc_to_text for the others.
    """
    use_messages = chat and task.doc_to_messages is not None and task.output_type == "generate_until"
    messages_only = getattr(task.doc_to_text, "messages_only", False)
    messages = task.doc_to_messages(doc) if use_messages else None  # type: ignore[misc]
    # with messages, the images are those the messages carry, in their order (lmms-eval's extract_media)
    images = ([p.get("url") for m in messages for p in (m.get("content") or []) if isinstance(p, dict)
               and p.get("type") == "image"] if messages is not None else list(task.doc_to_visual(doc) or []))
    return Request(
        doc_id=doc_id,
        task=task.name,
        images=images,
        prompt="" if use_messages and messages_only else task.prompt(doc_id, doc),
        generation_kwargs=dict(task.generation_kwargs),
        choices=task.doc_to_choice(doc) if task.doc_to_choice is not None else None,
        doc={k: v for k, v in doc.items() if k != task.image_column},
        messages=messages,
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


def respond(model: Model, task: Task, requests: list[Request]) -> list[Response]:
    """The responses for a task's requests: generated text, or for a multiple_choice task the loglikelihood of
    each choice (JSON ``[[loss, is_greedy], ...]``, see `lmms_nb.tasks._yaml_choice`); never raises."""
    if task.output_type != "multiple_choice":
        repeats = max(int(getattr(task, "repeats", 1) or 1), 1)
        if repeats == 1:
            return generate_safely(model, requests)
        # lmms-eval's `repeats`: each request asked k times in a row, in one batch (a sampling backend answers
        # each copy anew); the doc's k responses travel together to its filters
        flat = generate_safely(model, [req for req in requests for _ in range(repeats)])
        return [_together(flat[i * repeats:(i + 1) * repeats]) for i in range(len(requests))]
    from lmms_nb.tasks._yaml_choice import choice_requests, encode_results

    def one(req: Request) -> Response:
        start = time.perf_counter()
        try:
            pairs = choice_requests(req.prompt, req.choices or [], task.target_delimiter)
            results = model.loglikelihood([LoglikelihoodRequest(req.doc_id, req.task, req.images, ctx, cont)
                                           for ctx, cont in pairs])  # type: ignore[attr-defined]
            if len(results) != len(pairs):
                raise RuntimeError(f"model returned {len(results)} loglikelihoods for {len(pairs)} choices")
            return Response(text=encode_results(results), latency_s=time.perf_counter() - start)
        except Exception as e:  # noqa: BLE001 - a failing doc is that doc's error
            return Response(text=None, error=f"{type(e).__name__}: {e}", latency_s=time.perf_counter() - start)

    return [one(req) for req in requests]


def _together(answers: list[Response]) -> Response:
    """One doc's k responses as one: the first text, summed tokens and time, an error when any failed."""
    error = next((r.error for r in answers if r.error is not None), None)
    tokens = [r.output_tokens for r in answers]
    latencies = [r.latency_s for r in answers]
    return Response(text=None if error else answers[0].text, error=error,
                    latency_s=sum(latencies) if None not in latencies else None,
                    output_tokens=sum(tokens) if None not in tokens else None,  # type: ignore[arg-type]
                    cached=answers[0].cached, truncated=any(bool(r.truncated) for r in answers) or answers[0].truncated,
                    repeats=answers)


def check_model_can_run(model: Model, tasks: list[Task]) -> None:
    """Refuse, before anything is generated, a task this model cannot answer in the way the task scores."""
    for task in tasks:
        if task.output_type == "multiple_choice" and not callable(getattr(model, "loglikelihood", None)):
            raise ValueError(f"task {task.name!r} is multiple_choice (lmms-eval scores the loglikelihood of each "
                             f"choice) and model {model.name!r} has no loglikelihood(); the transformers backend "
                             "('hf') has one")
        if getattr(task.doc_to_text, "messages_only", False) and not getattr(model, "accepts_messages", False):
            raise ValueError(f"task {task.name!r} defines only doc_to_messages (no doc_to_text), which lmms-eval "
                             f"sends to chat backends only; model {model.name!r} takes a text prompt")
        if task.config.get("video") and not getattr(model, "accepts_video", False):
            raise ValueError(f"task {task.name!r} gives videos and model {model.name!r} does not take video "
                             "(the transformers backend does for Qwen2-VL, Qwen2.5-VL and LLaVA-OneVision)")
