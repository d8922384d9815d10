"""HTML of the sample browser's cards and table rows: images with a full-size viewer, answer chips, details.

- Images: a thumbnail sized for the task (large for document / chart / OCR tasks and for any image of 600 px
  or more, a setting); a click opens the full image beside the question, target and every answer, with zoom
  (fit, 100 %, 200 %). It is plain HTML and CSS (radio buttons and `:has()`), so it works in a
  `widgets.HTML`, in a static export and with the kernel busy. Several images per sample: an `image_ref`
  holding several references, one per line.
- Answer chips: model (in its fixed colour), an icon and colour for the state (never colour alone), the
  metric value, and the prediction. Continuous metrics are right at 1, partial from 0.5, wrong below.
- Per card, a collapsed "details" part: raw response (before filters), latency, output tokens, error.

Every string from data goes through `esc`; the data URIs are built by us from base64 (only [A-Za-z0-9+/=]).

Example:
    >>> html = chip_html("m", "door", "partial", value=0.5)
    >>> 'data-state="partial"' in html and "0.50" in html and "◐" in html
    True
"""

from __future__ import annotations

import base64
import functools
import io
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from lmms_nb.analysis import STATE_ICONS, answer_state, model_colors
from lmms_nb.widgets._html import STYLE, esc

__all__ = ["chip_html", "sample_cards_html", "sample_table_html", "thumbnail_size"]

#: Longest text shown per field; the rest is cut (with a note) so one runaway answer cannot swamp a page.
MAX_CHARS = 2000
#: Thumbnail sizes: "large" for tasks whose images hold text or data, "small" otherwise.
LARGE_PX, SMALL_PX = 320, 128
_TEXT_HEAVY_TASK = re.compile(r"doc|chart|ocr|info|text|table|screen|plot|diagram|pdf|math|slide|web", re.I)
_REF_START = re.compile(r"^(dataset|file|b64):")


def thumbnail_size(task: str | None, image_size: tuple[int, int] | None = None,
                   setting: int | Mapping[str, int] | None = None) -> int:
    """Thumbnail side in px: `setting` (an int, or {task: px}) when given, else LARGE_PX for text-heavy tasks
    (DocVQA, ChartQA, OCR...) and images of 600 px or more, else SMALL_PX.

    >>> thumbnail_size("docvqa_val"), thumbnail_size("mme"), thumbnail_size("mme", (1024, 768)), thumbnail_size("x", None, 64)
    (320, 128, 320, 64)
    """
    if isinstance(setting, int):
        return setting
    if isinstance(setting, Mapping) and task in setting:
        return int(setting[task])
    if task and _TEXT_HEAVY_TASK.search(task):
        return LARGE_PX
    if image_size and max(image_size) >= 600:
        return LARGE_PX
    return SMALL_PX


def _cut(text: Any) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + f" … [{len(text) - MAX_CHARS} more characters]"


def _refs(image_ref: str | None) -> list[str]:
    if not image_ref:
        return []
    lines = [line.strip() for line in str(image_ref).splitlines() if line.strip()]
    if len(lines) > 1 and all(_REF_START.match(line) for line in lines):
        return lines
    return [str(image_ref)]


@functools.lru_cache(maxsize=256)
def _image(ref: str, setting: int | None, task: str | None) -> tuple[str, str, int, int, int]:
    """(thumbnail URI, full-size URI, width, height, thumbnail px) of one image reference (cached)."""
    from PIL import Image

    from lmms_nb.images import load_image, thumbnail_data_uri

    image = load_image(ref)
    w, h = image.size
    px = thumbnail_size(task, (w, h), setting)
    full = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
    if max(w, h) > 2048:  # a bigger image is read at 2048 px; the viewer zooms from there
        full.thumbnail((2048, 2048))
    elif max(w, h) < 256:  # tiny benchmark images are enlarged (nearest: pixels stay sharp)
        scale = max(1, 256 // max(w, h))
        full = full.resize((w * scale, h * scale), Image.NEAREST)
    buf = io.BytesIO()
    full.save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return thumbnail_data_uri(ref, px), uri, full.width, full.height, px


def _media(refs: list[str], uid: str, task: str | None, setting: Any) -> tuple[str, str]:
    """(the thumbnails column, the hidden viewer) of a card."""
    if not refs:
        return '<div class="lmms-nb-noimg">no image</div>', ""
    thumbs, fulls = [], []
    for j, ref in enumerate(refs[:8]):
        try:
            thumb, full, w, h, px = _image(ref, setting if isinstance(setting, int) else (
                setting.get(task) if isinstance(setting, Mapping) else None), task)
        except Exception as e:  # noqa: BLE001 - a broken image must not break the page; say why, visibly
            thumbs.append(f'<div class="lmms-nb-noimg" title="{esc(e)}">image unavailable<br>'
                          f'<small>{esc(str(e)[:160])}</small></div>')
            continue
        thumbs.append(
            f'<input type="radio" class="lmms-nb-open lmms-nb-open-{j}" name="{uid}" id="{uid}-{j}">'
            f'<label class="lmms-nb-thumb" for="{uid}-{j}" title="click for the full image ({w}×{h})">'
            f'<img src="{thumb}" alt="{esc(ref)}" style="max-width:{px}px;max-height:{px}px"></label>'
        )
        fulls.append(f'<img class="lmms-nb-full lmms-nb-full-{j}" src="{full}" width="{w}" height="{h}" '
                     f'style="--w:{w}px" alt="{esc(ref)} (full size)"><span class="lmms-nb-size lmms-nb-size-{j}">'
                     f'{w}×{h} px</span>')
    if not fulls:
        return "".join(thumbs), ""
    zoom = "".join(
        f'<label><input type="radio" class="lmms-nb-z-{z}" name="{uid}-z"{" checked" if z == "100" else ""}>'
        f'{label}</label>' for z, label in (("fit", "fit"), ("100", "100%"), ("200", "200%"))
    )
    viewer = (f'<div class="lmms-nb-viewer"><div class="lmms-nb-viewer-bar">zoom {zoom}'
              f'<input type="radio" class="lmms-nb-close" name="{uid}" id="{uid}-x">'
              f'<label class="lmms-nb-close-label" for="{uid}-x">close ✕</label></div>'
              f'<div class="lmms-nb-viewport">{"".join(fulls)}</div></div>')
    return "".join(thumbs), viewer


def chip_html(model: str, prediction: Any, state: str, *, value: float | None = None, error: Any = None,
              color: str | None = None, clicked: bool = False) -> str:
    """One model's answer: icon + state colour, model name (in its colour), metric value, prediction."""
    if state == "absent":
        body = "not run on this sample"
    elif error is not None:
        body = f"error: {_cut(error)}"
    elif prediction is None:
        body = "(no prediction)"
    else:
        body = _cut(prediction)
    icon = STATE_ICONS["error" if error is not None else state]
    shown_value = "" if value is None or value != value else f'<span class="lmms-nb-value">{value:.2f}</span>'
    style = f' style="--lmms-nb-model:{esc(color)}"' if color else ""
    cls = " lmms-nb-clicked" if clicked else ""
    data_value = "" if value is None or value != value else f' data-value="{value:.6g}"'
    return (f'<div class="lmms-nb-answer lmms-nb-{state}{cls}" data-model="{esc(model)}" data-state="{state}"'
            f'{data_value}{style}><span class="lmms-nb-icon" title="{state}">{icon}</span>'
            f'<span class="lmms-nb-model">{esc(model)}</span>{shown_value}'
            f'<span class="lmms-nb-pred">{esc(body)}</span></div>')


def _state(row: dict[str, Any], i: int, binary: bool | None) -> str:
    if not row[f"has_{i}"]:
        return "absent"
    if row[f"correct_{i}"] is None:
        return "unscored"
    value = row.get(f"value_{i}")
    if value is None or binary is None:
        return "right" if row[f"correct_{i}"] else "wrong"
    return answer_state(value, binary=binary)


def _details(row: dict[str, Any], models: Sequence[tuple[int, str]]) -> str:
    lines = []
    for i, name in models:
        raw, latency, tokens, error = (row.get(f"{c}_{i}") for c in ("raw", "latency", "tokens", "error"))
        if not row[f"has_{i}"] or all(v is None for v in (raw, latency, tokens, error)):
            continue
        lat = "" if latency is None else f"{latency:.2f} s"
        lines.append(f"<tr><th>{esc(name)}</th><td>{esc(_cut(raw))}</td><td>{esc(lat)}</td>"
                     f"<td>{esc('' if tokens is None else tokens)}</td><td>{esc(_cut(error))}</td></tr>")
    if not lines:
        return ""
    return ('<details class="lmms-nb-more"><summary>raw responses · latency · tokens · errors</summary>'
            '<table class="lmms-nb-table"><thead><tr><th>model</th><th>raw response (before filters)</th>'
            f'<th>latency</th><th>tokens</th><th>error</th></tr></thead><tbody>{"".join(lines)}</tbody></table>'
            "</details>")


def _meta(row: dict[str, Any], metrics: Mapping[str, str] | None, binary: Mapping[str, bool] | None) -> str:
    meta = [row["task"], f"#{row['doc_id']}"]
    if row.get("filter") not in (None, "none"):
        meta.append(f"filter {row['filter']}")
    if row.get("category") is not None:
        meta.append(f"category {row['category']}")
    if metrics and row["task"] in metrics:
        kind = "0/1" if (binary or {}).get(row["task"], True) else "right = 1, partial ≥ 0.5"
        meta.append(f"scored by {metrics[row['task']]} ({kind})")
    return " · ".join(meta)


def sample_cards_html(rows: pl.DataFrame, models: Sequence[tuple[int, str]], *,
                      thumbnail_px: int | Mapping[str, int] | None = None, metrics: Mapping[str, str] | None = None,
                      binary: Mapping[str, bool] | None = None, colors: Mapping[str, str] | None = None,
                      clicked: str | None = None) -> str:
    """Cards for the rows of a `SampleIndex` page: images, question, target, each model's answer chip.

    `models` lists (column index, name) of the models to show, in order; `colors` {model: colour} (default:
    the palette by position); `clicked` is a model to highlight.
    """
    if rows.height == 0:
        return STYLE + '<div class="lmms-nb-cards"><div class="lmms-nb-empty">No sample matches these filters.</div></div>'
    colors = colors or model_colors([m for _, m in models])
    cards = []
    for row in rows.iter_rows(named=True):
        task_binary = None if binary is None else binary.get(row["task"])
        answers = "".join(
            chip_html(name, row[f"prediction_{i}"], _state(row, i, task_binary), value=row.get(f"value_{i}"),
                      error=row[f"error_{i}"], color=colors.get(name), clicked=name == clicked)
            for i, name in models
        )
        thumbs, viewer = _media(_refs(row.get("image_ref")), f"lmms-nb-{uuid.uuid4().hex[:12]}", row["task"],
                                thumbnail_px)
        cards.append(
            f'<div class="lmms-nb-card" data-task="{esc(row["task"])}" data-doc-id="{esc(row["doc_id"])}">'
            f'<div class="lmms-nb-media">{thumbs}</div>{viewer}'
            f'<div class="lmms-nb-body"><div class="lmms-nb-meta">{esc(_meta(row, metrics, binary))}</div>'
            f'<div class="lmms-nb-question"><b>Q</b> {esc(_cut(row["input"]))}</div>'
            f'<div class="lmms-nb-target"><b>target</b> {esc(_cut(row["target"]))}</div>'
            f'<div class="lmms-nb-answers">{answers}</div>{_details(row, models)}</div></div>'
        )
    return STYLE + '<div class="lmms-nb-cards">' + "".join(cards) + "</div>"


def _short(text: Any, n: int) -> str:
    text = "" if text is None else " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def sample_table_html(rows: pl.DataFrame, models: Sequence[tuple[int, str]], *,
                      binary: Mapping[str, bool] | None = None, colors: Mapping[str, str] | None = None,
                      clicked: str | None = None) -> str:
    """The compact view: one table row per sample (question, target, each model's icon, value and answer)."""
    if rows.height == 0:
        return STYLE + '<div class="lmms-nb-empty">No sample matches these filters.</div>'
    colors = colors or model_colors([m for _, m in models])
    head = "".join(
        f'<th class="{"lmms-nb-clicked" if m == clicked else ""}" style="--lmms-nb-model:{esc(colors.get(m, ""))}">'
        f'<span class="lmms-nb-model">{esc(m)}</span></th>' for _, m in models
    )
    body = []
    for row in rows.iter_rows(named=True):
        task_binary = None if binary is None else binary.get(row["task"])
        cells = []
        for i, m in models:
            state = _state(row, i, task_binary)
            value = row.get(f"value_{i}")
            shown = "" if value is None else f"{value:.2f} "
            text = "not run" if state == "absent" else (
                f"error: {row[f'error_{i}']}" if row[f"error_{i}"] is not None else row[f"prediction_{i}"])
            icon = STATE_ICONS["error" if row[f"error_{i}"] is not None else state]
            cells.append(f'<td class="lmms-nb-{state}" data-model="{esc(m)}" data-state="{state}" '
                         f'title="{esc(_cut(text))}">{icon} {esc(shown)}{esc(_short(text, 40))}</td>')
        body.append(f'<tr class="lmms-nb-row" data-task="{esc(row["task"])}" data-doc-id="{esc(row["doc_id"])}">'
                    f'<td>{esc(row["task"])} #{esc(row["doc_id"])}</td><td title="{esc(_cut(row["input"]))}">'
                    f'{esc(_short(row["input"], 90))}</td><td>{esc(_short(row["target"], 30))}</td>{"".join(cells)}</tr>')
    return (STYLE + '<table class="lmms-nb-table lmms-nb-samples-table"><thead><tr><th>sample</th><th>question</th>'
            f'<th>target</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')
