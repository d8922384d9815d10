"""Finding log files (files, folders searched recursively, globs) and telling their formats apart.

Formats are told by file name first, then by a peek at the content:

| kind | name | content |
|---|---|---|
| samples (lmms-eval v0.4+, lmms-nb) | `<date>_samples_<task>.jsonl` | or a .jsonl whose first line has doc_id, filtered_resps |
| harness (lm-evaluation-harness) | `samples_<task>_<YYYY-MM-DDTHH-MM-SS...>.jsonl` | or `arguments` as a dict |
| legacy (lmms-eval <= v0.2.3) | `<task>.json` | an object starting with `args`/`model_configs`/`logs` |
| results | `results.json`, `<date>_results.json`, `results_<date>.json` | run-level context and scores |
| vlmevalkit | `<model>_<dataset>.xlsx/.tsv/.csv` | `index` and `prediction` columns |
| vlmevalkit_score | `<model>_<dataset>_score.csv` (or `_acc`, `_acc.json`...) | aggregate scores |
| inspect (inspect_ai) | `<date>_<task>_<id>.eval` / `.json` | a zip with header.json / an EvalLog object |

Inside a folder, files of no known kind (datasets, notebooks, paper tables) are skipped silently; a file named
explicitly must be a log, or its read reports an unknown format.

Example:
    >>> classify_name(Path("20240101_120000_samples_mme.jsonl"))
    'samples'
    >>> classify_name(Path("samples_gsm8k_2024-05-01T12-30-00.123456.jsonl"))
    'harness'
    >>> classify_name(Path("results_2024-05-01T12-30-00.123456.json"))
    'results'
"""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from lmms_nb.logs._errors import Problems
from lmms_nb.logs._inspect import looks_like_inspect
from lmms_nb.logs._vlmevalkit import (
    TABLE_SUFFIXES,
    is_score_table,
    judge_of,
    judged_base,
    looks_like_predictions,
    read_table,
)

SAMPLES_NAME = re.compile(r"^(?P<date>.+?)_samples_(?P<task>.+)\.jsonl$")
HARNESS_SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d.:-]+)\.jsonl$")
RESULTS_NAME = re.compile(r"^(?P<date>.+)_results\.json$")
HARNESS_RESULTS_NAME = re.compile(r"^results_(?P<date>\d{4}-\d{2}-\d{2}T[\d.:-]+)\.json$")

PathLike = str | os.PathLike
KNOWN_FORMATS = (
    "an lmms-eval or lmms-nb `<date>_samples_<task>.jsonl`, an lm-evaluation-harness "
    "`samples_<task>_<date>.jsonl`, an lmms-eval <= v0.2.3 `<task>.json`, a results JSON, "
    "a VLMEvalKit `<model>_<dataset>.xlsx|tsv|csv`, or an inspect_ai `.eval` / `.json` log"
)
_PEEK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Found:
    """A file to read, its kind, and whether the user named it (explicit) or a folder/glob search found it."""

    path: Path
    kind: str
    explicit: bool
    judged: tuple[Path, ...] = ()  # VLMEvalKit: the judged copies of this prediction file, merged into its rows


def classify_name(path: Path) -> str | None:
    """The kind a file name alone says, or None."""
    name = path.name
    if HARNESS_SAMPLES_NAME.match(name):
        return "harness"
    if SAMPLES_NAME.match(name):
        return "samples"
    if name == "results.json" or RESULTS_NAME.match(name) or HARNESS_RESULTS_NAME.match(name):
        return "results"
    if is_score_table(path) and path.suffix.lower() != ".json":
        return "vlmevalkit_score"  # (a `<model>_<dataset>_acc.json` is told by its content: see classify)
    return None


def _first_json_line(path: Path) -> object:
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                if raw.strip():
                    return json.loads(raw.decode("utf-8"))
                if fh.tell() > _PEEK_BYTES:
                    return None
    except (OSError, ValueError, RecursionError):
        return None
    return None


def classify(path: Path) -> str | None:
    """The kind of a file from its name, then from a peek at its content; None when it is not a known log."""
    kind = classify_name(path)
    if kind is not None:
        return kind
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        first = _first_json_line(path)
        if isinstance(first, dict) and "doc_id" in first and ("filtered_resps" in first or "resps" in first):
            return "harness" if isinstance(first.get("arguments"), dict) else "samples"
        return None
    if suffix == ".eval":
        return "inspect" if looks_like_inspect(path) else None
    if suffix == ".json":
        try:
            with open(path, "rb") as fh:
                head = fh.read(_PEEK_BYTES)
        except OSError:
            return None
        if looks_like_inspect(path, head):
            return "inspect"
        text = head.lstrip()
        if text.startswith(b"{") and any(key in head for key in (b'"logs"', b'"model_configs"')):
            return "legacy"
        return "vlmevalkit_score" if is_score_table(path) else None
    if suffix in TABLE_SUFFIXES:
        try:
            return "vlmevalkit" if looks_like_predictions(read_table(path, header_only=True).columns) else None
        except Exception:  # noqa: BLE001 - an unreadable table is simply not one of ours when searching
            return None
    return None


def _is_hidden(path: Path, root: Path) -> bool:
    # `.__name` is not hidden on purpose: lm-evaluation-harness names the output folder of a model given by a
    # relative path (`pretrained=./name`) `.__name`
    return any(part.startswith(".") and not part.startswith(".__") for part in path.relative_to(root).parts)


def _walk(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not _is_hidden(p, root))


def _as_list(paths: PathLike | Sequence[PathLike]) -> list[PathLike]:
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    return list(paths)


def discover(paths: PathLike | Sequence[PathLike], problems: Problems) -> list[Found]:
    """The log files under `paths`, each once, in path order; results files are kept (as context)."""
    found: dict[Path, Found] = {}

    def add(path: Path, explicit: bool) -> None:
        path = Path(path)
        if path in found and found[path].explicit:
            return
        kind = classify(path)
        if kind is None:
            if explicit:
                try:
                    empty = path.stat().st_size == 0
                except OSError:
                    empty = False
                problems.error(path, None, "empty file" if empty else "unknown log format", KNOWN_FORMATS)
            return
        found[path] = Found(path, kind, explicit)

    for item in _as_list(paths):
        text = os.fspath(item)
        path = Path(text).expanduser()
        if path.is_dir():
            for file in _walk(path):
                add(file, explicit=False)
        elif path.is_file():
            add(path, explicit=True)
        elif any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(os.path.expanduser(text), recursive=True))
            if not matches:
                problems.error(text, None, "the glob matches no file", "at least one log file")
            for match in matches:
                mpath = Path(match)
                if mpath.is_dir():
                    for file in _walk(mpath):
                        add(file, explicit=False)
                elif mpath.is_file():
                    add(mpath, explicit=False)
        else:
            problems.error(text, None, "no such file or folder", "an existing file, folder or glob")
    return _group_judged([found[p] for p in sorted(found, key=str)])


def _group_judged(found: list[Found]) -> list[Found]:
    """Fold VLMEvalKit's judged copies (`X_openai_result.xlsx`, `X_auxmatch.xlsx`...) into the file they judge.

    A judged copy whose plain file is not among the found files still has it looked up next to it (and a plain
    file named alone brings its judged copies); without a plain file, the judged copy stands for the run itself.
    """
    tables = {item.path for item in found if item.kind == "vlmevalkit"}
    if not tables:
        return found
    by_folder: dict[Path, set[Path]] = {}
    for item in found:
        if item.kind == "vlmevalkit" and item.path.parent not in by_folder:
            folder = item.path.parent
            neighbours = {p for p in folder.iterdir() if p.suffix.lower() in TABLE_SUFFIXES and p.is_file()}
            by_folder[folder] = neighbours | {t for t in tables if t.parent == folder}
    judged_of: dict[Path, list[Path]] = {}
    roots: dict[Path, Path] = {}
    candidates = tables | {p for folder in by_folder.values() for p in folder if judge_of(p) is not None}
    for path in sorted(candidates, key=lambda p: (len(p.stem), str(p))):
        base = judged_base(path, by_folder[path.parent])
        if base is None:
            continue
        root = roots.get(base, base)
        roots[path] = root
        judged_of.setdefault(root, []).append(path)
    out = []
    for item in found:
        if item.path in roots:
            continue
        if item.path in judged_of:
            item = Found(item.path, item.kind, item.explicit, tuple(judged_of.pop(item.path)))
        out.append(item)
    for root, copies in judged_of.items():  # a plain file the search did not list (another glob, not named)
        kind = classify(root)
        if kind == "vlmevalkit":
            out.append(Found(root, kind, False, tuple(copies)))
        else:
            out.extend(Found(c, "vlmevalkit", False) for c in copies)
    return sorted(out, key=lambda f: str(f.path))


def results_companions(path: Path) -> list[Path]:
    """The per-sample files written by the run of a results JSON (same folder, same timestamp)."""
    folder = path.parent
    name = path.name
    harness = HARNESS_RESULTS_NAME.match(name)
    if harness:
        return sorted(folder.glob(f"samples_*_{glob.escape(harness.group('date'))}.jsonl"))
    ours = RESULTS_NAME.match(name)
    if ours:
        return sorted(folder.glob(f"{glob.escape(ours.group('date'))}_samples_*.jsonl"))
    return sorted(p for p in folder.glob("*.json") if p.name != "results.json" and classify(p) == "legacy")


def expand_results(found: Iterable[Found], problems: Problems) -> list[Found]:
    """Replace explicitly named results files by the per-sample files of their run; drop the others."""
    out: dict[Path, Found] = {}
    for item in found:
        if item.kind != "results":
            out.setdefault(item.path, item)
            continue
        if not item.explicit:
            continue  # found in a folder: context for its samples files, which the search found too
        companions = results_companions(item.path)
        if not companions:
            problems.warning(
                item.path, None, "a results file without per-sample logs next to it (read its scores with load_scores)",
                "per-sample files of the same run",
            )
        for companion in companions:
            out.setdefault(companion, Found(companion, classify(companion) or "samples", True))
    return [out[p] for p in sorted(out, key=str)]
