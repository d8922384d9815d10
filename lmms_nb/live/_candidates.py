"""The candidates of the draft and review steps: `Candidate` (one question and its provenance), `DraftFailure`,
`DraftResult`, and `save_candidates` / `load_candidates` (JSON lines, image paths relative to the file).

Example:
    >>> import tempfile
    >>> c = Candidate(id="a-0", subtask="Basic Understanding", question="Colour?", answer="white", criteria="10 if white",
    ...               image_path="shot.png", url="https://example.org", captured_at="2026-11-30T00:00:00+00:00",
    ...               png_sha256="0" * 64, html_sha256="", drafted_by="drafter", draft_template="livebench-draft@1")
    >>> path = save_candidates([c], tempfile.mkdtemp() + "/candidates.jsonl")
    >>> load_candidates(path)[0].question
    'Colour?'
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

__all__ = ["QUESTION_FIELDS", "Candidate", "DraftFailure", "DraftResult", "load_candidates", "save_candidates"]

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
