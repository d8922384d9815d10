"""`RunContext`: what a samples file's run says about it, read from the run's results JSON once per load.

lmms-eval and lm-evaluation-harness write one results JSON per run beside its samples files; the model name,
run id, splits, filters, status and the docs counted per task come from there (`run_info_from_results`), and
each samples file gets them as its `FileMeta`. A samples file whose results JSON is missing (a run that crashed
early) is lmms-nb's own when its lines carry our keys.

Example:
    >>> import pathlib, tempfile
    >>> from lmms_nb.logs._detect import Found
    >>> from lmms_nb.logs._errors import Problems
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "org__model"
    >>> folder.mkdir()
    >>> path = folder / "20240101_120000_samples_count.jsonl"
    >>> _ = path.write_text('{"doc_id": 0}\\n')
    >>> meta = RunContext(Problems(strict=True)).meta(Found(path, "samples", explicit=True))
    >>> meta.model, meta.task, meta.run_id, meta.source_format
    ('org__model', 'count', 'org__model/20240101_120000', 'lmms_eval')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmms_nb.logs._detect import HARNESS_SAMPLES_NAME, SAMPLES_NAME, Found
from lmms_nb.logs._errors import Problems
from lmms_nb.logs._runinfo import RunInfo, read_results_json, run_info_from_results
from lmms_nb.logs._samples import FileMeta

__all__ = ["RunContext"]


class RunContext:
    """Parses each results JSON once per load and turns it into run-level defaults for samples files."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self._cache: dict[Path, dict[str, Any] | None] = {}
        #: samples file -> (its run's status, the docs its results JSON counts for its task)
        self.status: dict[Path, tuple[str | None, int | None]] = {}

    def results(self, path: Path) -> dict[str, Any] | None:
        if path not in self._cache:
            payload = None
            if path.is_file():
                try:
                    payload = read_results_json(path)
                except ValueError as e:
                    self.problems.error(path, None, f"unreadable results JSON: {e}", "a results JSON object")
            self._cache[path] = payload
        return self._cache[path]

    def meta(self, item: Found) -> FileMeta:
        path = item.path
        folder = path.parent.name
        if item.kind == "harness":
            match = HARNESS_SAMPLES_NAME.match(path.name)
            task, date = (match.group("task"), match.group("date")) if match else (path.stem, None)
            results_file = path.parent / f"results_{date}.json" if date else None
            source_format = "lm_eval_harness"
        else:
            match = SAMPLES_NAME.match(path.name)
            task, date = (match.group("task"), match.group("date")) if match else (path.stem, None)
            results_file = path.parent / f"{date}_results.json" if date else None
            source_format = "lmms_eval"
        run_id = f"{folder}/{date or path.stem}"
        payload = self.results(results_file) if results_file else None
        if payload is not None:
            info = run_info_from_results(payload, results_file, run_id)
            if item.kind == "harness":
                info.source_format = source_format
        else:
            info = RunInfo(source_format=source_format, run_id=run_id)
            if item.kind == "samples" and _looks_like_ours(path):
                info.source_format = "lmms_nb"
        self.status[path] = (info.status, info.expected.get(task))
        return FileMeta(
            path=path,
            source_format=info.source_format,
            model=info.model or folder or None,
            task=task,
            run_id=info.run_id,
            split=info.splits.get(task),
            filters=info.filters.get(task, []),
            harness=item.kind == "harness",
        )


def _looks_like_ours(path: Path) -> bool:
    """A samples file without its results JSON (a run that crashed early) is ours when its lines say so."""
    try:
        with open(path, "rb") as fh:
            first = json.loads(fh.readline().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(first, dict) and {"run_id", "model", "task"} <= first.keys()
