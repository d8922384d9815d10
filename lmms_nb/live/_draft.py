"""Draft and review: a drafting model proposes questions per screenshot, a second model revises each one.

Both steps send one `Request` per item (the screenshot as the image, the template-rendered prompt as the
text) to any `Model` (typically `OpenAIChatModel`, whose concurrency, retries and response cache apply), in
batches with a progress bar. Replies are parsed by `lmms_nb.live._parse`. Nothing in a batch can stop the
batch: a failed request, a reply without JSON or an item without criteria becomes a `DraftFailure` naming
the screenshot, the stage and what was wrong, listed in the result next to the good candidates.

Every `Candidate` records which model and which template (``name@version``) drafted it, and which reviewed
it; the reviewer's notes, whether it changed anything, and the draft as it was before review.

Example (a stand-in model that answers every prompt with the same JSON):
    >>> import json, tempfile
    >>> from PIL import Image
    >>> from lmms_nb.models.baselines import FunctionModel
    >>> png = tempfile.mktemp(suffix=".png"); Image.new("RGB", (8, 8), "white").save(png)
    >>> reply = json.dumps({"questions": [{"subtask": "Basic Understanding", "question": "Colour?",
    ...                                    "answer": "white", "criteria": "10 if white"}]})
    >>> result = draft_questions([png], FunctionModel(lambda r: reply, name="drafter"), progress=False)
    >>> [(c.question, c.drafted_by, c.draft_template) for c in result.candidates], result.failures
    ([('Colour?', 'drafter', 'livebench-draft@1')], [])
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from lmms_nb.live._candidates import (
    QUESTION_FIELDS,
    Candidate,
    DraftFailure,
    DraftResult,
    load_candidates,
    save_candidates,
)
from lmms_nb.live._capture import CaptureResult, Screenshot
from lmms_nb.live._parse import ReplyParseError, parse_draft_reply, parse_review_reply
from lmms_nb.live._prompts import (
    DRAFT_TEMPLATE,
    REVIEW_TEMPLATE,
    SUBTASKS,
    PromptTemplate,
    TemplateError,
    subtask_list,
)
from lmms_nb.models.base import Model, Request, Response
from lmms_nb.runner._generate import generate_safely

# Candidate, DraftFailure, DraftResult, load_candidates and save_candidates live in _candidates; the other
# modules of lmms_nb.live and older notebooks import them from here too.
__all__ = [
    "Candidate",
    "DraftFailure",
    "DraftResult",
    "draft_questions",
    "load_candidates",
    "review_candidates",
    "save_candidates",
    "screenshot_from_file",
]

#: What a draft or review request asks of the model unless told otherwise: room for several JSON questions.
DEFAULT_GENERATION_KWARGS: dict[str, Any] = {"max_new_tokens": 2048}

T = TypeVar("T")


def screenshot_from_file(path: str | os.PathLike, url: str | None = None, captured_at: str | None = None) -> Screenshot:
    """A `Screenshot` record for a PNG made elsewhere (its URL defaults to the file's URI, its time to its mtime)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"screenshot {str(p)!r} does not exist")
    data = p.read_bytes()
    when = captured_at or _dt.datetime.fromtimestamp(p.stat().st_mtime, _dt.timezone.utc).isoformat(timespec="seconds")
    return Screenshot(url=url or p.resolve().as_uri(), path=str(p), captured_at=when,
                      png_sha256=hashlib.sha256(data).hexdigest(), html_sha256="")


def _as_screenshots(screenshots: CaptureResult | Iterable[Screenshot | str | os.PathLike]) -> list[Screenshot]:
    if isinstance(screenshots, CaptureResult):
        return list(screenshots.screenshots)
    out = []
    for s in screenshots:
        out.append(s if isinstance(s, Screenshot) else screenshot_from_file(s))
    return out


def _check_fields(template: PromptTemplate, available: Iterable[str]) -> None:
    unknown = set(template.fields) - set(available)
    if unknown:
        raise TemplateError(
            f"template {template.id} uses ${', $'.join(sorted(unknown))}, which this step cannot fill "
            f"(available: {', '.join('$' + a for a in sorted(available))})"
        )


def _render(template: PromptTemplate, values: dict[str, Any]) -> str:
    return template.render(**{k: v for k, v in values.items() if k in template.fields})


def _ask_in_batches(model: Model, items: Sequence[T], request_for: Callable[[int, T, dict[str, Any]], Request | None],
                    collect: Callable[[T, Response], None], *, batch_size: int, desc: str, unit: str,
                    progress: bool) -> None:
    """One request per item to `model`, `batch_size` at a time, under a progress bar.

    `request_for(i, item, batch)` gives item i's request, or None when the item failed before asking (it records
    why); `batch` is a dict kept for one batch (to decode a shared image once). `collect(item, response)` takes
    each reply, in order; a failed request comes back as a `Response` with an error, never as an exception.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=not progress)
    try:
        for start in range(0, len(items), batch_size):
            chunk = range(start, min(len(items), start + batch_size))
            requests, sent = [], []
            batch: dict[str, Any] = {}
            for i in chunk:
                request = request_for(i, items[i], batch)
                if request is not None:
                    requests.append(request)
                    sent.append(items[i])
            for item, response in zip(sent, generate_safely(model, requests)):
                collect(item, response)
            bar.update(len(chunk))
    finally:
        bar.close()


def _name_of(model: Model) -> str:
    return str(getattr(model, "name", type(model).__name__))


def draft_questions(
    screenshots: CaptureResult | Iterable[Screenshot | str | os.PathLike],
    model: Model,
    *,
    template: PromptTemplate = DRAFT_TEMPLATE,
    n_questions: int = 3,
    subtasks: Sequence[str] = SUBTASKS,
    generation_kwargs: dict[str, Any] | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> DraftResult:
    """Ask `model` for `n_questions` questions per screenshot; see the module docstring.

    The template may use ``$url``, ``$captured_at``, ``$n_questions`` and ``$subtasks`` (the categories with
    their descriptions). Returns every parsed candidate and every failure, one per screenshot whose request
    or reply failed, or per malformed item of an otherwise good reply.
    """
    shots = _as_screenshots(screenshots)
    subtasks = tuple(subtasks)
    if n_questions < 1:
        raise ValueError(f"n_questions must be >= 1, got {n_questions}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    _check_fields(template, ("url", "captured_at", "n_questions", "subtasks"))
    gen = dict(DEFAULT_GENERATION_KWARGS if generation_kwargs is None else generation_kwargs)
    result = DraftResult()
    drafter = _name_of(model)

    def request_for(i: int, shot: Screenshot, _batch: dict[str, Any]) -> Request | None:
        try:
            image = shot.image()
        except Exception as e:  # noqa: BLE001 - an unreadable PNG fails that screenshot only
            error = f"{shot.path}: cannot read the screenshot: {e}"
            result.failures.append(DraftFailure("draft", shot.path, shot.url, error))
            return None
        prompt = _render(template, {"url": shot.url, "captured_at": shot.captured_at,
                                    "n_questions": n_questions, "subtasks": subtask_list(subtasks)})
        return Request(doc_id=i, task="live_draft", images=[image], prompt=prompt, generation_kwargs=dict(gen))

    _ask_in_batches(model, shots, request_for,
                    lambda shot, response: _collect_draft(result, shot, response, drafter, template, subtasks),
                    batch_size=batch_size, desc="draft", unit="page", progress=progress)
    return result


def _candidate_id(shot: Screenshot, k: int) -> str:
    # the path too: the same page captured twice in one folder gives two screenshots, two sets of questions
    digest = hashlib.sha256(f"{shot.url}\n{shot.png_sha256}\n{Path(shot.path).name}".encode()).hexdigest()[:10]
    return f"{digest}-{k}"


def _collect_draft(result: DraftResult, shot: Screenshot, response: Response, drafter: str,
                   template: PromptTemplate, subtasks: tuple[str, ...]) -> None:
    source = f"screenshot {Path(shot.path).name} ({shot.url})"
    if response.error is not None:
        result.failures.append(DraftFailure("draft", shot.path, shot.url,
                                            f"{source}: drafting request failed: {response.error}", response.text))
        return
    try:
        items, problems = parse_draft_reply(response.text, source=source, subtasks=subtasks)
    except ReplyParseError as e:
        result.failures.append(DraftFailure("draft", shot.path, shot.url, str(e), response.text))
        return
    for problem in problems:
        result.failures.append(DraftFailure("draft", shot.path, shot.url, problem, response.text))
    for k, item in enumerate(items):
        result.candidates.append(Candidate(
            id=_candidate_id(shot, k), subtask=item["subtask"], question=item["question"], answer=item["answer"],
            criteria=item["criteria"], image_path=shot.path, url=shot.url, captured_at=shot.captured_at,
            png_sha256=shot.png_sha256, html_sha256=shot.html_sha256, drafted_by=drafter, draft_template=template.id,
        ))


def review_candidates(
    candidates: DraftResult | Iterable[Candidate],
    model: Model,
    *,
    template: PromptTemplate = REVIEW_TEMPLATE,
    subtasks: Sequence[str] = SUBTASKS,
    generation_kwargs: dict[str, Any] | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> DraftResult:
    """Have `model` review and revise each candidate; returns every candidate, revised where the review worked.

    The template may use ``$url``, ``$subtask``, ``$question``, ``$answer``, ``$criteria`` and ``$subtasks``.
    A candidate whose review failed is kept as drafted, with `review_error` set, and is listed in `failures`
    (stage "review"), so the person reviewing by hand still sees it and knows it was not reviewed.
    """
    items = list(candidates.candidates if isinstance(candidates, DraftResult) else candidates)
    subtasks = tuple(subtasks)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    _check_fields(template, ("url", "subtask", "question", "answer", "criteria", "subtasks"))
    gen = dict(DEFAULT_GENERATION_KWARGS if generation_kwargs is None else generation_kwargs)
    reviewer = _name_of(model)
    result = DraftResult()

    def request_for(i: int, cand: Candidate, decoded: dict[str, Any]) -> Request | None:
        try:  # several candidates share a screenshot: decode each PNG once per batch (a tall page takes ~0.3 s)
            image = decoded[cand.image_path] if cand.image_path in decoded else cand.image()
            decoded[cand.image_path] = image
        except Exception as e:  # noqa: BLE001
            error = f"{cand.image_path}: cannot read the screenshot: {e}"
            _review_failed(result, cand, reviewer, template, error, None)
            return None
        prompt = _render(template, {**cand.fields(), "url": cand.url, "subtasks": subtask_list(subtasks)})
        return Request(doc_id=i, task="live_review", images=[image], prompt=prompt, generation_kwargs=dict(gen))

    _ask_in_batches(model, items, request_for,
                    lambda cand, response: _collect_review(result, cand, response, reviewer, template, subtasks),
                    batch_size=batch_size, desc="review", unit="question", progress=progress)
    # keep the input order (failures to read an image were appended out of turn)
    order = {c.id: k for k, c in enumerate(items)}
    result.candidates.sort(key=lambda c: order.get(c.id, len(order)))
    return result


def _review_failed(result: DraftResult, cand: Candidate, reviewer: str, template: PromptTemplate, error: str,
                   raw: str | None) -> None:
    result.failures.append(DraftFailure("review", cand.image_path, cand.url, error, raw, cand.id))
    result.candidates.append(dataclasses.replace(cand, review_error=error, reviewed_by=reviewer,
                                                 review_template=template.id))


def _collect_review(result: DraftResult, cand: Candidate, response: Response, reviewer: str,
                    template: PromptTemplate, subtasks: tuple[str, ...]) -> None:
    source = f"screenshot {Path(cand.image_path).name} ({cand.url}), candidate {cand.id}"
    if response.error is not None:
        _review_failed(result, cand, reviewer, template, f"{source}: reviewing request failed: {response.error}",
                       response.text)
        return
    try:
        revised = parse_review_reply(response.text, source=source, subtasks=subtasks)
    except ReplyParseError as e:
        _review_failed(result, cand, reviewer, template, str(e), response.text)
        return
    new_fields = {k: revised[k] for k in QUESTION_FIELDS}
    changed = new_fields != cand.fields()
    result.candidates.append(dataclasses.replace(
        cand, **new_fields, reviewed_by=reviewer, review_template=template.id, review_notes=revised.get("notes"),
        revised=changed, review_error=None, draft=cand.fields() if changed else None,
    ))


