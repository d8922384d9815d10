"""The `Model` protocol every backend implements, and the requests and responses it exchanges.

A model receives a batch of `Request`s (images, prompt, generation kwargs) and returns one `Response` per
request, in order. A backend that fails on one request returns a `Response` with `error` set rather than
raising, so one bad sample never stops a run; raising is also tolerated (the runner then retries the batch
one request at a time to find the culprit).

Example:
    >>> from lmms_nb.models.base import Request, Response
    >>> Request(doc_id=0, task="t", images=[], prompt="Hi?").generation_kwargs
    {}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence, runtime_checkable


@dataclass
class Request:
    doc_id: int
    task: str
    images: list  # PIL images
    prompt: str
    generation_kwargs: dict[str, Any] = field(default_factory=dict)
    choices: list[str] | None = None  # the options of a multiple-choice doc, when the task has doc_to_choice
    doc: dict[str, Any] | None = None  # the raw row, for baselines that need question metadata
    #: lmms-eval's doc_to_messages(doc), set only for a backend that takes chat messages (`accepts_messages`)
    messages: list[dict[str, Any]] | None = None
    #: the context the log records as `input` when it is not `prompt` (lmms-eval's chat classes log the
    #: few-shot context they build but send doc_to_text alone); None: `prompt`
    logged_prompt: str | None = None


@dataclass
class LoglikelihoodRequest:
    """How likely `continuation` is after `context` (with the doc's images): lmms-eval's loglikelihood request.

    A backend answers ``(loss, is_greedy)``: the mean negative log-likelihood of the continuation's tokens, as
    lmms-eval's transformers backends do, and whether greedy decoding gives exactly those tokens.
    """

    doc_id: int
    task: str
    images: list
    context: str
    continuation: str


@dataclass
class Response:
    text: str | None
    error: str | None = None
    latency_s: float | None = None
    output_tokens: int | None = None
    #: True when the answer came from a response cache rather than the model (None: the backend has no cache)
    cached: bool | None = None
    #: True when generation stopped at the token limit (finish_reason "length"), None when unknown
    truncated: bool | None = None
    #: prompt and reasoning tokens, where the backend reports them (an API's `usage`); written in the log's
    #: token_counts as lmms-eval 0.7.3's API classes write them
    input_tokens: int | None = None
    reasoning_tokens: int | None = None
    #: with a task's `repeats` (k answers per doc, as lmms-eval): the k responses, in order; `text` is the first,
    #: `output_tokens` and `latency_s` their totals
    repeats: list["Response"] | None = field(default=None, repr=False)


@runtime_checkable
class Model(Protocol):
    """What `evaluate()` needs from a model."""

    #: a name for logs and tables (e.g. "llava-tiny-a", "Qwen2-VL-7B-Instruct")
    name: str
    #: the arguments that built it, recorded in every run
    model_args: dict[str, Any]

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """One response per request, in order."""
        ...


def generate_each(requests: Sequence[Request], generate_one: Callable[[Request], Response]) -> list[Response]:
    """One response per request, in order, each made alone by `generate_one`; a request that raises gets a
    `Response` with `error` set, naming its doc, so one bad sample never stops a run (the original-format
    checkpoints' models, which generate one request at a time as their lmms-eval classes do).

    Example:
        >>> def shout(req): return Response(text=req.prompt.upper()) if req.prompt else 1 / 0
        >>> requests = [Request(doc_id=0, task="t", images=[], prompt="hi"), Request(doc_id=1, task="t", images=[], prompt="")]
        >>> [(r.text, r.error) for r in generate_each(requests, shout)]
        [('HI', None), (None, 'doc 1: ZeroDivisionError: division by zero')]
    """
    out = []
    for req in requests:
        try:
            out.append(generate_one(req))
        except Exception as e:  # noqa: BLE001 - a bad sample must not stop the run
            msg = f"{type(e).__name__}: {e}"
            out.append(Response(text=None, error=msg if f"doc {req.doc_id}" in msg else f"doc {req.doc_id}: {msg}"))
    return out
