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
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

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
QUESTION_FIELDS = ("subtask", "question", "answer", "criteria")


@dataclass
class Candidate:
    """One drafted question about one screenshot, with its provenance."""

    id: str
    subtask: str
    question: str
    answer: str
    criteria: str
    image_path: str
    url: str
    captured_at: str
    png_sha256: str
    html_sha256: str
    drafted_by: str
    draft_template: str  # name@version
    reviewed_by: str | None = None
    review_template: str | None = None
    review_notes: str | None = None
    revised: bool = False  # the reviewer changed the subtask, question, answer or criteria
    review_error: str | None = None  # the review failed; the candidate is the unrevised draft
    draft: dict[str, str] | None = None  # the four fields as drafted, when a review revised them

    def image(self) -> Any:
        """The screenshot as an RGB PIL image."""
        from PIL import Image

        with Image.open(self.image_path) as im:
            return im.convert("RGB")

    def fields(self) -> dict[str, str]:
        """subtask, question, answer and criteria."""
        return {k: getattr(self, k) for k in QUESTION_FIELDS}


@dataclass
class DraftFailure:
    """A screenshot (or one item of its reply) that gave no candidate, or a candidate whose review failed."""

    stage: str  # "draft" or "review"
    image_path: str
    url: str
    error: str
    raw: str | None = None  # the model's reply, when there was one
    candidate_id: str | None = None  # for review failures


@dataclass
class DraftResult:
    """Candidates and failures of a draft or review step."""

    candidates: list[Candidate] = field(default_factory=list)
    failures: list[DraftFailure] = field(default_factory=list)

    def to_polars(self) -> Any:
        """The candidates as a polars DataFrame (one row per candidate, provenance columns included)."""
        import polars as pl

        names = [f.name for f in dataclasses.fields(Candidate) if f.name != "draft"]
        schema = {n: (pl.Boolean if n == "revised" else pl.Utf8) for n in names}
        return pl.DataFrame([{n: getattr(c, n) for n in names} for c in self.candidates], schema=schema)

    def failures_to_polars(self) -> Any:
        import polars as pl

        names = [f.name for f in dataclasses.fields(DraftFailure)]
        return pl.DataFrame([dataclasses.asdict(f) for f in self.failures], schema={n: pl.Utf8 for n in names})

    def __repr__(self) -> str:
        return f"DraftResult({len(self.candidates)} candidate(s), {len(self.failures)} failure(s))"


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


def _batches(n: int, size: int) -> Iterable[range]:
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


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
    from tqdm.auto import tqdm

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
    bar = tqdm(total=len(shots), desc="draft", unit="page", disable=not progress)
    try:
        for chunk in _batches(len(shots), batch_size):
            requests, sent = [], []
            for i in chunk:
                shot = shots[i]
                try:
                    image = shot.image()
                except Exception as e:  # noqa: BLE001 - an unreadable PNG fails that screenshot only
                    error = f"{shot.path}: cannot read the screenshot: {e}"
                    result.failures.append(DraftFailure("draft", shot.path, shot.url, error))
                    continue
                prompt = _render(template, {"url": shot.url, "captured_at": shot.captured_at,
                                            "n_questions": n_questions, "subtasks": subtask_list(subtasks)})
                requests.append(Request(doc_id=i, task="live_draft", images=[image], prompt=prompt,
                                        generation_kwargs=dict(gen)))
                sent.append(shot)
            for shot, response in zip(sent, generate_safely(model, requests)):
                _collect_draft(result, shot, response, drafter, template, subtasks)
            bar.update(len(chunk))
    finally:
        bar.close()
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
    from tqdm.auto import tqdm

    items = list(candidates.candidates if isinstance(candidates, DraftResult) else candidates)
    subtasks = tuple(subtasks)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    _check_fields(template, ("url", "subtask", "question", "answer", "criteria", "subtasks"))
    gen = dict(DEFAULT_GENERATION_KWARGS if generation_kwargs is None else generation_kwargs)
    reviewer = _name_of(model)
    result = DraftResult()
    bar = tqdm(total=len(items), desc="review", unit="question", disable=not progress)
    try:
        for chunk in _batches(len(items), batch_size):
            requests, sent = [], []
            # several candidates share a screenshot: decode each PNG once per batch (a tall page takes ~0.3 s)
            decoded: dict[str, Any] = {}
            for i in chunk:
                cand = items[i]
                try:
                    image = decoded[cand.image_path] if cand.image_path in decoded else cand.image()
                    decoded[cand.image_path] = image
                except Exception as e:  # noqa: BLE001
                    error = f"{cand.image_path}: cannot read the screenshot: {e}"
                    _review_failed(result, cand, reviewer, template, error, None)
                    continue
                prompt = _render(template, {**cand.fields(), "url": cand.url, "subtasks": subtask_list(subtasks)})
                requests.append(Request(doc_id=i, task="live_review", images=[image], prompt=prompt,
                                        generation_kwargs=dict(gen)))
                sent.append(cand)
            for cand, response in zip(sent, generate_safely(model, requests)):
                _collect_review(result, cand, response, reviewer, template, subtasks)
            bar.update(len(chunk))
    finally:
        bar.close()
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


# --------------------------------------------------------------------------------------------- on disk
def save_candidates(candidates: DraftResult | Iterable[Candidate], path: str | os.PathLike) -> Path:
    """Write candidates as JSON lines (image paths relative to the file's folder when they are below it)."""
    items = candidates.candidates if isinstance(candidates, DraftResult) else list(candidates)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    base = p.parent.resolve()
    lines = []
    for c in items:
        rec = dataclasses.asdict(c)
        image = Path(c.image_path).resolve()
        if image.is_relative_to(base):
            rec["image_path"] = str(image.relative_to(base))
        lines.append(json.dumps(rec, ensure_ascii=False))
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, p)
    return p


def load_candidates(path: str | os.PathLike) -> list[Candidate]:
    """Read candidates written by `save_candidates`; a bad line is an error naming the file, line and field."""
    p = Path(path)
    names = {f.name for f in dataclasses.fields(Candidate)}
    required = [f.name for f in dataclasses.fields(Candidate) if f.default is dataclasses.MISSING]
    out = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{p}:{lineno}: not valid JSON ({e})") from None
            if not isinstance(rec, dict):
                raise ValueError(f"{p}:{lineno}: expected a JSON object, got {type(rec).__name__}")
            missing = [k for k in required if k not in rec]
            if missing:
                raise ValueError(f"{p}:{lineno}: candidate lacks field(s) {missing}")
            unknown = sorted(set(rec) - names)
            if unknown:
                raise ValueError(f"{p}:{lineno}: unknown candidate field(s) {unknown}")
            for k in QUESTION_FIELDS:
                if not isinstance(rec[k], str) or not rec[k].strip():
                    raise ValueError(f"{p}:{lineno}: field {k!r} must be a non-empty string, got {rec[k]!r}")
            if not Path(rec["image_path"]).is_absolute():
                rec["image_path"] = str(p.parent / rec["image_path"])
            out.append(Candidate(**rec))
    return out
