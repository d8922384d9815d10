"""The record of a capture: `Screenshot` per page, `CaptureFailure` per URL that failed, `CaptureResult`, and the
``manifest.json`` that keeps them (paths relative to it), written by `write_manifest` and read by `load_capture`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST", "CaptureFailure", "CaptureResult", "Screenshot", "load_capture", "write_manifest"]

MANIFEST = "manifest.json"


@dataclass
class Screenshot:
    """One captured page: where its PNG and HTML are, when it was taken and their sha256 hashes."""

    url: str  # the URL asked for
    path: str  # the PNG
    captured_at: str  # ISO 8601, UTC, to the second
    png_sha256: str
    html_sha256: str  # of the HTML file as saved (UTF-8), i.e. the page as shot, after removals
    html_path: str | None = None
    final_url: str | None = None  # after redirects
    status: int | None = None  # the HTTP status of the main document
    title: str = ""
    width: int = 0
    height: int = 0
    attempts: int = 1
    removed: dict[str, int] = field(default_factory=dict)  # selector -> elements removed

    def image(self) -> Any:
        """The screenshot as an RGB PIL image."""
        from PIL import Image

        with Image.open(self.path) as im:
            return im.convert("RGB")


@dataclass
class CaptureFailure:
    """A URL that could not be captured, why, and after how many attempts."""

    url: str
    error: str
    attempts: int


@dataclass
class CaptureResult:
    """What `capture_pages` did: the screenshots, the failures, and where the manifest is."""

    screenshots: list[Screenshot]
    failures: list[CaptureFailure]
    out_dir: Path
    manifest: Path
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every URL was captured."""
        return not self.failures

    def to_polars(self) -> Any:
        """One row per URL: url, ok, path, captured_at, hashes, status, attempts, error."""
        import polars as pl

        rows = [
            {"url": s.url, "ok": True, "path": s.path, "captured_at": s.captured_at, "png_sha256": s.png_sha256,
             "html_sha256": s.html_sha256, "status": s.status, "width": s.width, "height": s.height,
             "attempts": s.attempts, "error": None}
            for s in self.screenshots
        ] + [
            {"url": f.url, "ok": False, "path": None, "captured_at": None, "png_sha256": None, "html_sha256": None,
             "status": None, "width": None, "height": None, "attempts": f.attempts, "error": f.error}
            for f in self.failures
        ]
        schema = {"url": pl.Utf8, "ok": pl.Boolean, "path": pl.Utf8, "captured_at": pl.Utf8, "png_sha256": pl.Utf8,
                  "html_sha256": pl.Utf8, "status": pl.Int64, "width": pl.Int64, "height": pl.Int64,
                  "attempts": pl.Int64, "error": pl.Utf8}
        return pl.DataFrame(rows, schema=schema)

    def __repr__(self) -> str:
        return (f"CaptureResult({len(self.screenshots)} screenshot(s), {len(self.failures)} failure(s), "
                f"manifest={str(self.manifest)!r})")


def write_manifest(path: Path, screenshots: list[Screenshot], failures: list[CaptureFailure],
                   config: dict[str, Any]) -> None:
    """Write the manifest of a capture atomically (a temporary file, then a rename)."""
    base = path.parent

    def rel(p: str | None) -> str | None:
        return None if p is None else os.path.relpath(p, base)

    payload = {
        "format": "lmms-nb-live-capture",
        "version": 1,
        "config": config,
        "screenshots": [
            {**dataclasses.asdict(s), "path": rel(s.path), "html_path": rel(s.html_path)} for s in screenshots
        ],
        "failures": [dataclasses.asdict(f) for f in failures],
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


_REQUIRED_SHOT_FIELDS = ("url", "path", "captured_at", "png_sha256", "html_sha256")


def load_capture(out_dir: str | os.PathLike) -> CaptureResult:
    """Read a capture back from its ``manifest.json``; a missing file or field is an error naming it."""
    out = Path(out_dir)
    manifest = out / MANIFEST if out.is_dir() else out
    out = manifest.parent
    try:
        payload = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{manifest}: no capture manifest (run capture_pages into this folder first)") from None
    except ValueError as e:
        raise ValueError(f"{manifest}: not valid JSON ({e})") from None
    if not isinstance(payload, dict) or payload.get("format") != "lmms-nb-live-capture":
        raise ValueError(f"{manifest}: not an lmms-nb capture manifest (no format 'lmms-nb-live-capture')")
    known = {f.name for f in dataclasses.fields(Screenshot)}
    screenshots = []
    for i, rec in enumerate(payload.get("screenshots") or []):
        missing = [k for k in _REQUIRED_SHOT_FIELDS if not isinstance(rec, dict) or rec.get(k) in (None, "")]
        if missing:
            raise ValueError(f"{manifest}: screenshots[{i}] lacks {missing}")
        rec = {k: v for k, v in rec.items() if k in known}
        rec["path"] = str(out / rec["path"])
        if rec.get("html_path"):
            rec["html_path"] = str(out / rec["html_path"])
        screenshots.append(Screenshot(**rec))
    failures = []
    for i, rec in enumerate(payload.get("failures") or []):
        if not isinstance(rec, dict) or "url" not in rec or "error" not in rec:
            raise ValueError(f"{manifest}: failures[{i}] lacks url or error")
        failures.append(CaptureFailure(url=rec["url"], error=rec["error"], attempts=int(rec.get("attempts", 1))))
    return CaptureResult(screenshots, failures, out, manifest, dict(payload.get("config") or {}))
