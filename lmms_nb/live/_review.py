"""`ReviewSession`: the human review of drafted candidates, one decision per candidate, resumable.

The person accepts a candidate as it is, accepts it with edits (status "edited"), or rejects it. Decisions
can be changed by going back and deciding again. With a `journal` file, every decision is appended to it as a
JSON line as soon as it is made, and a new session over the same candidates replays it: a review of a few
hundred questions survives a kernel restart. The accepted set is saved with `save()` as a `datasets` Dataset
tagged with its month (`save_live_dataset`).

This class holds all the logic of the review; `lmms_nb.widgets.LiveReviewWidget` only shows it and calls it.

Example:
    >>> import tempfile
    >>> from PIL import Image
    >>> from lmms_nb.live._draft import Candidate
    >>> png = tempfile.mktemp(suffix=".png"); Image.new("RGB", (8, 8)).save(png)
    >>> def cand(i): return Candidate(id=f"c{i}", subtask="Basic Understanding", question=f"Q{i}?", answer="A",
    ...     criteria="C", image_path=png, url="http://127.0.0.1/", captured_at="2026-11-03T10:00:00+00:00",
    ...     png_sha256="0" * 64, html_sha256="", drafted_by="m", draft_template="livebench-draft@1")
    >>> s = ReviewSession([cand(0), cand(1), cand(2)])
    >>> _ = s.accept(); _ = s.accept(question="Q1, sharper?"); _ = s.reject()
    >>> s.progress()
    {'total': 3, 'decided': 3, 'accepted': 1, 'edited': 1, 'rejected': 1, 'remaining': 0}
    >>> [c.question for c in s.accepted()]
    ['Q0?', 'Q1, sharper?']
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from lmms_nb.live._candidates import QUESTION_FIELDS, Candidate, DraftResult
from lmms_nb.live._prompts import SUBTASKS, normalize_subtask

__all__ = ["DECISIONS", "Decision", "ReviewSession"]

log = logging.getLogger(__name__)

DECISIONS = ("accepted", "edited", "rejected")


@dataclass
class Decision:
    """What the person decided about one candidate; `fields` are the final subtask/question/answer/criteria."""

    candidate_id: str
    status: str  # one of DECISIONS
    fields: dict[str, str]
    decided_at: str


class ReviewSession:
    """Decisions over a list of candidates, a cursor, progress counts and the save (see the module docstring).

    Args:
        candidates: the candidates to review (a `DraftResult` or a list of `Candidate`).
        journal: a JSON-lines file where decisions are appended as they are made and replayed from on start.
        subtasks: the allowed categories of an edited candidate.
    """

    def __init__(self, candidates: DraftResult | Iterable[Candidate], *, journal: str | os.PathLike | None = None,
                 subtasks: Sequence[str] = SUBTASKS) -> None:
        self.candidates: list[Candidate] = list(
            candidates.candidates if isinstance(candidates, DraftResult) else candidates
        )
        dup = [i for i, n in Counter(c.id for c in self.candidates).items() if n > 1]
        if dup:
            raise ValueError(f"duplicate candidate id(s): {dup[:5]}")
        self.subtasks = tuple(subtasks)
        self.decisions: dict[str, Decision] = {}
        self.index = 0
        self._by_id = {c.id: k for k, c in enumerate(self.candidates)}
        self.journal = Path(journal) if journal is not None else None
        if self.journal is not None and self.journal.exists():
            self._replay(self.journal)
            nxt = self.next_undecided(from_index=0)
            self.index = nxt if nxt is not None else 0

    # ------------------------------------------------------------------------------------ navigation
    def __len__(self) -> int:
        return len(self.candidates)

    @property
    def current(self) -> Candidate | None:
        """The candidate under the cursor (None when there are no candidates)."""
        return self.candidates[self.index] if self.candidates else None

    def go(self, index: int) -> Candidate | None:
        """Move the cursor to `index` (clamped to the list)."""
        if self.candidates:
            self.index = max(0, min(int(index), len(self.candidates) - 1))
        return self.current

    def next(self) -> Candidate | None:
        return self.go(self.index + 1)

    def previous(self) -> Candidate | None:
        return self.go(self.index - 1)

    def next_undecided(self, from_index: int | None = None) -> int | None:
        """The index of the first undecided candidate after `from_index` (wrapping), or None when all are decided."""
        n = len(self.candidates)
        start = self.index if from_index is None else from_index - 1
        for step in range(1, n + 1):
            k = (start + step) % n
            if self.candidates[k].id not in self.decisions:
                return k
        return None

    # ------------------------------------------------------------------------------------- decisions
    def decision(self, candidate: Candidate | None = None) -> Decision | None:
        """The decision about `candidate` (default: the current one), or None."""
        c = candidate or self.current
        return None if c is None else self.decisions.get(c.id)

    def accept(self, *, advance: bool = True, **edits: str) -> Decision:
        """Accept the current candidate; with edits (subtask, question, answer, criteria) it is "edited".

        Edits equal to the candidate's own values do not count as edits. An empty field or an unknown subtask
        is a ValueError naming it. The cursor then moves to the next undecided candidate (`advance`).
        """
        c = self._require_current()
        unknown = set(edits) - set(QUESTION_FIELDS)
        if unknown:
            raise ValueError(f"accept(): unknown field(s) {sorted(unknown)}; editable: {list(QUESTION_FIELDS)}")
        fields = c.fields()
        for name, value in edits.items():
            if value is None:
                continue
            text = str(value).strip()
            if not text:
                raise ValueError(f"candidate {c.id}: {name} cannot be empty")
            if name == "subtask":
                canonical = normalize_subtask(text, self.subtasks)
                if canonical is None:
                    raise ValueError(f"candidate {c.id}: subtask {text!r} is not one of {list(self.subtasks)}")
                text = canonical
            fields[name] = text
        status = "accepted" if fields == c.fields() else "edited"
        return self._decide(c, status, fields, advance)

    def reject(self, *, advance: bool = True) -> Decision:
        """Reject the current candidate and move on."""
        c = self._require_current()
        return self._decide(c, "rejected", c.fields(), advance)

    def undo(self, candidate: Candidate | None = None) -> None:
        """Forget the decision about `candidate` (default: the current one)."""
        c = candidate or self._require_current()
        if self.decisions.pop(c.id, None) is not None:
            self._log({"candidate_id": c.id, "status": None, "fields": None, "decided_at": _now()})

    def _require_current(self) -> Candidate:
        if self.current is None:
            raise ValueError("there are no candidates to review")
        return self.current

    def _decide(self, c: Candidate, status: str, fields: dict[str, str], advance: bool) -> Decision:
        d = Decision(candidate_id=c.id, status=status, fields=fields, decided_at=_now())
        self.decisions[c.id] = d
        self._log(dataclasses.asdict(d))
        if advance:
            nxt = self.next_undecided()
            if nxt is not None:
                self.index = nxt
        return d

    # --------------------------------------------------------------------------------------- journal
    def _log(self, record: dict[str, Any]) -> None:
        if self.journal is None:
            return
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        with self.journal.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _replay(self, path: Path) -> None:
        lines = path.read_text(encoding="utf-8").splitlines()
        unknown = 0
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                if lineno == len(lines):  # a line torn by a crash mid-write: the decision was not made
                    log.warning("%s:%d: ignoring a torn last line", path, lineno)
                    continue
                raise ValueError(f"{path}:{lineno}: not valid JSON") from None
            if not isinstance(rec, dict) or "candidate_id" not in rec or "status" not in rec:
                raise ValueError(f"{path}:{lineno}: a journal line needs candidate_id and status")
            cid = rec["candidate_id"]
            if cid not in self._by_id:
                unknown += 1
                continue
            if rec["status"] is None:  # an undo
                self.decisions.pop(cid, None)
                continue
            if rec["status"] not in DECISIONS:
                raise ValueError(f"{path}:{lineno}: status {rec['status']!r} is not one of {DECISIONS}")
            fields = rec.get("fields")
            if not isinstance(fields, dict) or set(fields) != set(QUESTION_FIELDS):
                raise ValueError(f"{path}:{lineno}: fields must have exactly {list(QUESTION_FIELDS)}")
            self.decisions[cid] = Decision(cid, rec["status"], {k: str(fields[k]) for k in QUESTION_FIELDS},
                                           str(rec.get("decided_at") or ""))
        if unknown:
            log.warning("%s: %d decision(s) about candidates not in this session were ignored", path, unknown)

    # -------------------------------------------------------------------------------------- results
    def progress(self) -> dict[str, int]:
        """Counts: total, decided, accepted, edited, rejected, remaining."""
        counts = Counter(d.status for d in self.decisions.values())
        total = len(self.candidates)
        decided = len(self.decisions)
        return {"total": total, "decided": decided, **{s: counts.get(s, 0) for s in DECISIONS},
                "remaining": total - decided}

    @property
    def done(self) -> bool:
        """True when every candidate has a decision."""
        return len(self.decisions) == len(self.candidates)

    def accepted(self) -> list[Candidate]:
        """The accepted and edited candidates, in their original order, with the final (edited) fields."""
        out = []
        for c in self.candidates:
            d = self.decisions.get(c.id)
            if d is not None and d.status != "rejected":
                out.append(dataclasses.replace(c, **d.fields))
        return out

    def save(self, path: str | os.PathLike, *, month: str | None = None) -> Any:
        """Save the accepted set as a `datasets` Dataset tagged with `month` (see `save_live_dataset`)."""
        from lmms_nb.live._dataset import save_live_dataset

        accepted = self.accepted()
        status = {c.id: self.decisions[c.id].status for c in accepted}
        return save_live_dataset(accepted, path, month=month, review_status=status)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
