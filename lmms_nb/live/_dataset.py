"""The accepted questions as a `datasets` Dataset on disk, tagged with its month, ready to be a task.

Columns follow lmms-eval's LiveBench datasets (``id, images, website, question, answer, criteria, subtask,
data_generator, checker, date_time``) so its ``live_bench`` task config can read ours, plus the provenance
lmms-nb keeps: ``month``, the content hashes, the templates and the human review status. Images are stored
inside the dataset (PNG bytes), so the folder is self-contained. The month (``YYYY-MM``) is a column and is
written in the dataset's ``info.description``.

Example:
    >>> import tempfile
    >>> from PIL import Image
    >>> from lmms_nb.live._draft import Candidate
    >>> png = tempfile.mktemp(suffix=".png"); Image.new("RGB", (8, 8), "white").save(png)
    >>> c = Candidate(id="c0", subtask="Basic Understanding", question="Colour?", answer="white",
    ...               criteria="10 if white", image_path=png, url="http://127.0.0.1/",
    ...               captured_at="2026-11-03T10:00:00+00:00", png_sha256="0" * 64, html_sha256="1" * 64,
    ...               drafted_by="m", draft_template="livebench-draft@1")
    >>> ds = save_live_dataset([c], tempfile.mkdtemp())
    >>> ds[0]["month"], "2026-11" in ds.info.description, ds[0]["images"][0].size
    ('2026-11', True, (8, 8))
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping

import datasets

from lmms_nb.live._candidates import Candidate
from lmms_nb.live._prompts import SUBTASKS

__all__ = ["LIVE_FEATURES", "load_live_dataset", "month_of", "save_live_dataset"]

_TEXT = datasets.Value("string")
#: The schema of a saved live benchmark.
LIVE_FEATURES = datasets.Features({
    "id": _TEXT,
    "images": datasets.List(datasets.Image()),
    "website": _TEXT,
    "question": _TEXT,
    "answer": _TEXT,
    "criteria": _TEXT,
    "subtask": _TEXT,
    "month": _TEXT,
    "date_time": _TEXT,  # when the screenshot was taken (ISO 8601 UTC)
    "png_sha256": _TEXT,
    "html_sha256": _TEXT,
    "data_generator": _TEXT,  # the drafting model
    "draft_template": _TEXT,
    "checker": _TEXT,  # the reviewing model ("" when there was none)
    "review_template": _TEXT,
    "review_status": _TEXT,  # "accepted" as drafted/revised, or "edited" by the person reviewing
})
REQUIRED_COLUMNS = ("id", "images", "question", "answer", "criteria", "subtask", "month")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
DESCRIPTION_PREFIX = "lmms-nb live benchmark, month "


def month_of(timestamp: str | _dt.datetime) -> str:
    """The ``YYYY-MM`` (UTC) of an ISO 8601 time.

    >>> month_of("2026-11-30T23:30:00-02:00")
    '2026-12'
    """
    t = _dt.datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp
    if t.tzinfo is not None:
        t = t.astimezone(_dt.timezone.utc)
    return t.strftime("%Y-%m")


def _check_month(month: str) -> str:
    if not isinstance(month, str) or not _MONTH.match(month):
        raise ValueError(f"month must look like '2026-11' (YYYY-MM), got {month!r}")
    return month


def save_live_dataset(
    candidates: Iterable[Candidate],
    path: str | os.PathLike,
    *,
    month: str | None = None,
    review_status: Mapping[str, str] | None = None,
) -> datasets.Dataset:
    """Save `candidates` as a Dataset in `path` (``save_to_disk``) and return it (reloaded from disk).

    `month` defaults to the UTC month of the latest screenshot. `review_status` maps candidate id to
    "accepted" or "edited" (default "accepted"). Every subtask must be one of `SUBTASKS`.
    """
    items = list(candidates)
    if not items:
        raise ValueError("no candidates to save: accept at least one question first")
    ids = [c.id for c in items]
    dup = [i for i, n in Counter(ids).items() if n > 1]
    if dup:
        raise ValueError(f"duplicate candidate id(s) {dup[:5]}")
    for c in items:
        if c.subtask not in SUBTASKS:
            raise ValueError(f"candidate {c.id}: subtask {c.subtask!r} is not one of {list(SUBTASKS)}")
        for name in ("question", "answer", "criteria"):
            if not str(getattr(c, name) or "").strip():
                raise ValueError(f"candidate {c.id}: {name} is empty")
    month = _check_month(month) if month is not None else max(month_of(c.captured_at) for c in items)
    status = dict(review_status or {})
    rows: dict[str, list[Any]] = {name: [] for name in LIVE_FEATURES}
    png_cache: dict[str, bytes] = {}
    for c in items:
        if c.image_path not in png_cache:
            try:
                png_cache[c.image_path] = Path(c.image_path).read_bytes()
            except OSError as e:
                raise FileNotFoundError(f"candidate {c.id}: cannot read its screenshot {c.image_path!r}: {e}") from None
        values = {
            "id": c.id, "images": [{"bytes": png_cache[c.image_path], "path": Path(c.image_path).name}],
            "website": c.url, "question": c.question, "answer": c.answer, "criteria": c.criteria,
            "subtask": c.subtask, "month": month, "date_time": c.captured_at, "png_sha256": c.png_sha256,
            "html_sha256": c.html_sha256, "data_generator": c.drafted_by, "draft_template": c.draft_template,
            "checker": c.reviewed_by or "", "review_template": c.review_template or "",
            "review_status": status.get(c.id, "accepted"),
        }
        for name, value in values.items():
            rows[name].append(value)
    sites = sorted({c.url for c in items})
    times = sorted(c.captured_at for c in items)
    info = datasets.DatasetInfo(
        description=(f"{DESCRIPTION_PREFIX}{month}: {len(items)} question(s) about {len(png_cache)} screenshot(s) "
                     f"of {len(sites)} page(s), captured {times[0]} to {times[-1]} (UTC)."),
        features=LIVE_FEATURES,
    )
    ds = datasets.Dataset.from_dict(rows, features=LIVE_FEATURES, info=info)
    out = Path(path)
    ds.save_to_disk(str(out))
    return load_live_dataset(out)


def load_live_dataset(path: str | os.PathLike) -> datasets.Dataset:
    """A saved live benchmark; a folder that is not one is an error naming the path and what is missing."""
    p = Path(path)
    if not (p / "dataset_info.json").is_file():
        raise FileNotFoundError(f"{p}: not a saved dataset (no dataset_info.json); save one with save_live_dataset")
    ds = datasets.load_from_disk(str(p))
    if isinstance(ds, datasets.DatasetDict):
        raise ValueError(f"{p}: holds a DatasetDict ({list(ds)}), expected one live benchmark Dataset")
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise ValueError(f"{p}: not a live benchmark: missing column(s) {missing} (has {ds.column_names})")
    return ds


def dataset_month(ds: datasets.Dataset) -> str:
    """The month of a live benchmark (from its column; every row must agree)."""
    months = sorted(set(ds["month"]))
    if len(months) != 1:
        raise ValueError(f"a live benchmark has one month; this one has {months}")
    return _check_month(months[0])
