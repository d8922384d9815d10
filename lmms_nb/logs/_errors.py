"""`LogFormatError`: what a reader says about a bad log file, and how strict and lenient reads collect them.

Example:
    >>> err = LogFormatError("run/x_samples_mme.jsonl", 3, "invalid JSON", "one JSON object per line")
    >>> str(err)
    'run/x_samples_mme.jsonl:3: invalid JSON (expected one JSON object per line)'
    >>> isinstance(err, ValueError), err.line, err.severity
    (True, 3, 'error')
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning"]


class LogFormatError(ValueError):
    """A log file (or one of its lines) that a reader could not use.

    Attributes:
        path: the file, as given or found.
        line: the 1-based line (or spreadsheet row) at fault, or None when the whole file is at fault.
        problem: what was wrong.
        expected: what the reader expected instead.
        severity: "error", or "warning" for what a lenient read tolerated and only reports (a truncated
            last line left by an interrupted lmms-nb run).
    """

    def __init__(
        self,
        path: str | Path,
        line: int | None,
        problem: str,
        expected: str,
        *,
        severity: Severity = "error",
    ) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.expected = expected
        self.severity: Severity = severity
        super().__init__(self._message())

    def _message(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.problem} (expected {self.expected})"

    def __reduce__(self):  # keep the attributes through pickling (multiprocessing, joblib)
        return (_rebuild, (self.path, self.line, self.problem, self.expected, self.severity))


def _rebuild(path: str, line: int | None, problem: str, expected: str, severity: Severity) -> LogFormatError:
    return LogFormatError(path, line, problem, expected, severity=severity)


class Problems:
    """Collects the problems of one read: strict reads raise the first error, lenient reads keep them all.

    Warnings never raise: they describe what the reader tolerated.
    """

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.items: list[LogFormatError] = []

    def error(self, path: str | Path, line: int | None, problem: str, expected: str) -> None:
        err = LogFormatError(path, line, problem, expected)
        if self.strict:
            raise err
        self.items.append(err)

    def warning(self, path: str | Path, line: int | None, problem: str, expected: str) -> None:
        self.items.append(LogFormatError(path, line, problem, expected, severity="warning"))
