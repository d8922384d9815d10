"""Live benchmarks (LiveBench's loop): capture pages, draft and review questions with models, review them by
hand, save the month's set, and score models on it with an LLM judge.

Static benchmarks leak into training data; a live benchmark is rebuilt every month from what the web shows
that month. Each step is one call, so each can be a notebook cell:

1. `capture_pages(urls, out_dir)` -> `CaptureResult`: full-page screenshots by headless Chromium, with URL,
   UTC time and sha256 hashes; failures listed.
2. `draft_questions(capture, drafting_model)` -> `DraftResult`: questions, reference answers and grading
   criteria in LiveBench's `SUBTASKS`, from a versioned, editable `PromptTemplate` (`DRAFT_TEMPLATE`).
3. `review_candidates(draft, reviewing_model)` -> `DraftResult`: a second model revises each one
   (`REVIEW_TEMPLATE`).
4. `ReviewSession(candidates)` (or the `LiveReviewWidget` over it): accept, edit or reject by hand; `save(path)`
   writes a `datasets` Dataset tagged with its month.
5. `live_task(path, judge)` -> `Task`; `lmms_nb.evaluate(model, task)`; `live_scores(run)` -> LiveBench's table.

Example (the review and the save, on candidates made by hand):
    >>> import tempfile
    >>> from PIL import Image
    >>> from lmms_nb.live import Candidate, ReviewSession, live_task
    >>> png = tempfile.mktemp(suffix=".png"); Image.new("RGB", (8, 8)).save(png)
    >>> c = Candidate(id="c0", subtask="Basic Understanding", question="Colour?", answer="black",
    ...               criteria="10 if black", image_path=png, url="http://127.0.0.1/",
    ...               captured_at="2026-11-03T10:00:00+00:00", png_sha256="0" * 64, html_sha256="",
    ...               drafted_by="m", draft_template="livebench-draft@1")
    >>> session = ReviewSession([c]); _ = session.accept()
    >>> ds = session.save(tempfile.mkdtemp(), month="2026-11")
    >>> ds[0]["month"], ds[0]["review_status"]
    ('2026-11', 'accepted')
"""

from lmms_nb.live._capture import CHROMIUM_ARGS, CaptureFailure, CaptureResult, Screenshot, capture_pages, load_capture
from lmms_nb.live._dataset import LIVE_FEATURES, dataset_month, load_live_dataset, month_of, save_live_dataset
from lmms_nb.live._draft import (
    Candidate,
    DraftFailure,
    DraftResult,
    draft_questions,
    load_candidates,
    review_candidates,
    save_candidates,
    screenshot_from_file,
)
from lmms_nb.live._parse import ReplyParseError, extract_json, parse_draft_reply, parse_review_reply
from lmms_nb.live._prompts import (
    DRAFT_TEMPLATE,
    REVIEW_TEMPLATE,
    SUBTASK_DESCRIPTIONS,
    SUBTASKS,
    PromptTemplate,
    TemplateError,
    normalize_subtask,
)
from lmms_nb.live._review import DECISIONS, Decision, ReviewSession
from lmms_nb.live._task import live_scores, live_task

__all__ = [
    "CHROMIUM_ARGS",
    "DECISIONS",
    "DRAFT_TEMPLATE",
    "LIVE_FEATURES",
    "REVIEW_TEMPLATE",
    "SUBTASKS",
    "SUBTASK_DESCRIPTIONS",
    "Candidate",
    "CaptureFailure",
    "CaptureResult",
    "Decision",
    "DraftFailure",
    "DraftResult",
    "PromptTemplate",
    "ReplyParseError",
    "ReviewSession",
    "Screenshot",
    "TemplateError",
    "capture_pages",
    "dataset_month",
    "draft_questions",
    "extract_json",
    "live_scores",
    "live_task",
    "load_capture",
    "load_candidates",
    "load_live_dataset",
    "month_of",
    "normalize_subtask",
    "parse_draft_reply",
    "parse_review_reply",
    "review_candidates",
    "save_candidates",
    "save_live_dataset",
    "screenshot_from_file",
]
