"""`FileMeta`: the run-level defaults of one per-sample log file's rows, and how that file is to be read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FileMeta"]


@dataclass
class FileMeta:
    """Run-level defaults for the rows of one samples file, and how to read it."""

    path: Path
    source_format: str
    model: str | None = None
    task: str | None = None
    run_id: str | None = None
    split: str | None = None
    filters: list[str] = field(default_factory=list)  # filter names from the results JSON, in order
    harness: bool = False  # lm-evaluation-harness lines (loglikelihood choices, `arguments` dicts)

    @property
    def tolerates_truncated_tail(self) -> bool:
        # an interrupted lmms-nb run leaves a torn last line; its next run heals the file
        return self.source_format == "lmms_nb"

    @property
    def default_filter(self) -> str:
        return self.filters[0] if len(self.filters) == 1 else "none"
