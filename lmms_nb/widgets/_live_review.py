"""`LiveReviewWidget`: review drafted live-benchmark questions by hand, beside their screenshots.

The widget shows one candidate at a time: the full-page screenshot on the left (scrollable), and on the
right where it came from (URL, capture time, drafting and reviewing models and templates, the reviewer's
notes, the draft before review) and its category, question, answer and criteria. Accept, Edit and Reject
decide; Prev and Next move; a progress bar counts the decisions; Save writes the accepted set as a `datasets`
Dataset tagged with its month. Every decision and the save are calls to `lmms_nb.live.ReviewSession`; the
widget holds no logic of its own.

Keyboard: ipywidgets has no global key events, and ipyevents is not installed here. A page-wide key listener
(an anywidget with a document ``keydown`` handler) would also fight JupyterLab's own command-mode shortcuts:
``a`` inserts a cell, ``e`` and ``r`` change cell types. So the keys go into a small text box, the *key box*:
click it once, then type ``a`` accept, ``e`` edit, ``r`` reject, ``n`` next, ``p`` previous (``?`` shows this
help). JupyterLab ignores its shortcuts while an input has focus, so the letters reach the widget and nothing
else; the box needs no custom JavaScript, works in every frontend (JupyterLab, Notebook 7, VS Code, Colab), and
is driven in tests by setting its value. Each letter is acted on as soon as it arrives and the box is cleared.
Edit (``e``) unlocks the fields and puts the cursor in the question; Accept then records the edits.

All text from the candidates (model output: untrusted) is shown through escaped HTML or in text inputs.

Example:
    >>> import tempfile
    >>> from PIL import Image
    >>> from lmms_nb.live import Candidate
    >>> png = tempfile.mktemp(suffix=".png"); Image.new("RGB", (8, 8)).save(png)
    >>> c = Candidate(id="c0", subtask="Basic Understanding", question="<b>Colour?</b>", answer="black",
    ...               criteria="10 if black", image_path=png, url="http://127.0.0.1/",
    ...               captured_at="2026-11-03T10:00:00+00:00", png_sha256="0" * 64, html_sha256="",
    ...               drafted_by="m", draft_template="livebench-draft@1")
    >>> w = LiveReviewWidget([c])
    >>> w.key_box.value = "a"
    >>> w.session.progress()["accepted"], w.progress_bar.value
    (1, 1)
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import ipywidgets as widgets

from lmms_nb.widgets._html import esc

__all__ = ["LiveReviewWidget", "KEY_HELP"]

KEY_HELP = "keys: a accept · e edit · r reject · n next · p previous · ? help"
_STATUS_STYLE = {"accepted": "#2ca02c", "edited": "#1f77b4", "rejected": "#d62728", None: "#888"}


@lru_cache(maxsize=8)
def _png_bytes(path: str, mtime: float) -> bytes:
    # the mtime is in the key so a screenshot rewritten in place is read again
    return Path(path).read_bytes()


class LiveReviewWidget(widgets.VBox):
    """Accept, edit or reject live-benchmark candidates beside their screenshots (see the module docstring).

    Args:
        candidates: a `lmms_nb.live.ReviewSession`, a `DraftResult` or a list of `Candidate`.
        save_path: the initial value of the dataset folder box.
        month: the initial value of the month box ("" = the month of the latest screenshot).
        journal: for a new session, the JSON-lines file decisions are written to and resumed from.
        on_saved: called with the saved `datasets.Dataset`.

    Controls: `subtask_select`, `question_text`, `answer_text`, `criteria_text`, `accept_button`,
    `edit_button`, `reject_button`, `prev_button`, `next_button`, `key_box`, `month_text`, `save_path_text`,
    `save_button`. Shown: `image`, `meta_html`, `progress_bar`, `progress_html`, `status_html`. After a save:
    `dataset`.
    """

    def __init__(self, candidates: Any, *, save_path: str | os.PathLike = "", month: str = "",
                 journal: str | os.PathLike | None = None, on_saved: Callable[[Any], None] | None = None,
                 image_width: str = "560px", **kwargs: Any) -> None:
        from lmms_nb.live import SUBTASKS, ReviewSession

        if not isinstance(candidates, ReviewSession):
            candidates = ReviewSession(candidates, journal=journal)
        self.session = candidates
        self.dataset: Any = None
        self.editing = False
        self._callbacks: list[Callable[[Any], None]] = [on_saved] if on_saved else []
        self._keys = {"a": self.accept, "e": self.edit, "r": self.reject, "n": self.next, "p": self.previous,
                      "?": self.show_help}

        self.image = widgets.Image(format="png", layout=widgets.Layout(width="100%", height="auto"))
        image_box = widgets.Box([self.image], layout=widgets.Layout(width=image_width, max_height="680px",
                                                                    overflow="auto", border="1px solid #ddd"))
        self.meta_html = widgets.HTML()
        subtasks = tuple(self.session.subtasks) or SUBTASKS
        self.subtask_select = widgets.Dropdown(options=list(subtasks), description="subtask")
        wide = widgets.Layout(width="98%")
        self.question_text = widgets.Textarea(description="question", rows=3, layout=wide)
        self.answer_text = widgets.Textarea(description="answer", rows=3, layout=wide)
        self.criteria_text = widgets.Textarea(description="criteria", rows=4, layout=wide)
        self.accept_button = widgets.Button(description="Accept (a)", button_style="success", icon="check")
        self.edit_button = widgets.Button(description="Edit (e)", button_style="info", icon="pencil")
        self.reject_button = widgets.Button(description="Reject (r)", button_style="danger", icon="times")
        self.prev_button = widgets.Button(description="Prev (p)", icon="arrow-left")
        self.next_button = widgets.Button(description="Next (n)", icon="arrow-right")
        self.key_box = widgets.Text(value="", placeholder="click here, then type a / e / r / n / p",
                                    description="keys", continuous_update=True)
        self.progress_bar = widgets.IntProgress(value=0, min=0, max=max(1, len(self.session)), bar_style="info")
        self.progress_html = widgets.HTML()
        self.status_html = widgets.HTML(f"<small>{esc(KEY_HELP)}</small>")
        self.month_text = widgets.Text(value=month, placeholder="YYYY-MM (default: month of the screenshots)",
                                       description="month")
        self.save_path_text = widgets.Text(value=str(save_path), placeholder="folder for the dataset",
                                           description="save to")
        self.save_button = widgets.Button(description="Save accepted", icon="save")

        self.accept_button.on_click(lambda _: self.accept())
        self.edit_button.on_click(lambda _: self.edit())
        self.reject_button.on_click(lambda _: self.reject())
        self.prev_button.on_click(lambda _: self.previous())
        self.next_button.on_click(lambda _: self.next())
        self.save_button.on_click(lambda _: self.save())
        self.key_box.observe(self._on_keys, names="value")

        fields = widgets.VBox([self.meta_html, self.subtask_select, self.question_text, self.answer_text,
                               self.criteria_text,
                               widgets.HBox([self.accept_button, self.edit_button, self.reject_button]),
                               widgets.HBox([self.prev_button, self.next_button, self.key_box])],
                              layout=widgets.Layout(flex="1 1 auto", min_width="360px"))
        super().__init__([
            widgets.HBox([self.progress_bar, self.progress_html]),
            widgets.HBox([image_box, fields]),
            self.status_html,
            widgets.HBox([self.month_text, self.save_path_text, self.save_button]),
        ], **kwargs)
        self.add_class("lmms-nb-live-review")
        for widget, name in ((self.image, "screenshot"), (self.meta_html, "meta"), (self.question_text, "question"),
                             (self.answer_text, "answer"), (self.criteria_text, "criteria"),
                             (self.subtask_select, "subtask"), (self.accept_button, "accept"),
                             (self.edit_button, "edit"), (self.reject_button, "reject"), (self.prev_button, "prev"),
                             (self.next_button, "next"), (self.key_box, "keys"), (self.progress_html, "progress"),
                             (self.status_html, "status"), (self.save_button, "save")):
            widget.add_class(f"lmms-nb-live-{name}")
        self._show()

    # ---- actions (buttons and keys) --------------------------------------------------------------------------
    def accept(self) -> None:
        """Accept the current candidate; in edit mode, with the edited fields."""
        if self.session.current is None:
            return self._say("nothing to review", "error")
        edits = dict(subtask=self.subtask_select.value, question=self.question_text.value,
                     answer=self.answer_text.value, criteria=self.criteria_text.value)
        try:
            decision = self.session.accept(**edits)
        except ValueError as e:
            return self._say(f"not accepted: {e}", "error")
        self._after_decision(f"{decision.status}: {decision.candidate_id}")

    def edit(self) -> None:
        """Unlock the fields for editing and put the cursor in the question; Accept records the edits."""
        if self.session.current is None:
            return self._say("nothing to review", "error")
        self.editing = True
        self._set_locked(False)
        self.question_text.focus()
        self._say("editing: change the fields, then Accept (a) to keep the edits", "info")

    def reject(self) -> None:
        """Reject the current candidate."""
        if self.session.current is None:
            return self._say("nothing to review", "error")
        decision = self.session.reject()
        self._after_decision(f"rejected: {decision.candidate_id}")

    def next(self) -> None:
        self.session.next()
        self._show()

    def previous(self) -> None:
        self.session.previous()
        self._show()

    def show_help(self) -> None:
        self._say(KEY_HELP, "info")

    def save(self) -> Any:
        """Save the accepted set to the folder in `save_path_text`, tagged with `month_text` (if set)."""
        path = self.save_path_text.value.strip()
        if not path:
            return self._say("not saved: give a folder to save to (save to)", "error")
        month = self.month_text.value.strip() or None
        try:
            self.dataset = self.session.save(path, month=month)
        except (ValueError, OSError) as e:
            return self._say(f"not saved: {e}", "error")
        month_saved = self.dataset[0]["month"] if len(self.dataset) else month
        self._say(f"saved {len(self.dataset)} question(s), month {month_saved}, to {path}", "success")
        for callback in self._callbacks:
            callback(self.dataset)
        return self.dataset

    def on_saved(self, callback: Callable[[Any], None]) -> None:
        """Call `callback(dataset)` after each save."""
        self._callbacks.append(callback)

    # ---- internals -------------------------------------------------------------------------------------------
    def _on_keys(self, change: dict[str, Any]) -> None:
        typed = change["new"]
        if not typed:
            return
        # several letters can arrive in one update when typing fast: act on each, in order
        for key in typed.lower():
            action = self._keys.get(key)
            if action is None:
                if not key.isspace():
                    self._say(f"unknown key {key!r} — {KEY_HELP}", "error")
                continue
            action()
        self.key_box.value = ""
        if not self.editing:
            self.key_box.focus()

    def _after_decision(self, message: str) -> None:
        note = " · all candidates decided: Save when ready" if self.session.done else ""
        self._show()
        self._say(message + note, "success")
        self.key_box.focus()

    def _set_locked(self, locked: bool) -> None:
        for w in (self.subtask_select, self.question_text, self.answer_text, self.criteria_text):
            w.disabled = locked

    def _show(self) -> None:
        """Show the current candidate (with its decided fields when it has a decision) and the progress."""
        self.editing = False
        self._set_locked(True)
        progress = self.session.progress()
        self.progress_bar.max = max(1, progress["total"])
        self.progress_bar.value = progress["decided"]
        self.progress_html.value = (
            f"<span class='lmms-nb-live-counts'>{progress['decided']} / {progress['total']} decided · "
            f"{progress['accepted']} accepted · {progress['edited']} edited · {progress['rejected']} rejected</span>"
        )
        cand = self.session.current
        if cand is None:
            self.image.value = b""
            self.meta_html.value = "<i>no candidates to review</i>"
            for w in (self.question_text, self.answer_text, self.criteria_text):
                w.value = ""
            return
        decision = self.session.decision(cand)
        fields = decision.fields if decision is not None else cand.fields()
        try:
            self.image.value = _png_bytes(cand.image_path, os.path.getmtime(cand.image_path))
        except OSError:
            self.image.value = b""
        if fields["subtask"] not in self.subtask_select.options:
            self.subtask_select.options = [*self.subtask_select.options, fields["subtask"]]
        self.subtask_select.value = fields["subtask"]
        self.question_text.value = fields["question"]
        self.answer_text.value = fields["answer"]
        self.criteria_text.value = fields["criteria"]
        self.meta_html.value = _meta_html(cand, decision.status if decision else None,
                                          self.session.index, len(self.session))

    def _say(self, message: str, kind: str) -> None:
        colour = {"error": "#d62728", "success": "#2ca02c", "info": "#555"}.get(kind, "#555")
        self.status_html.value = f"<span class='lmms-nb-live-{kind}' style='color:{colour}'>{esc(message)}</span>"


def _meta_html(cand: Any, status: str | None, index: int, total: int) -> str:
    """Where a candidate came from and its decision, every value escaped."""
    rows = [
        ("page", cand.url),
        ("captured", f"{cand.captured_at} UTC"),
        ("drafted by", f"{cand.drafted_by} ({cand.draft_template})"),
    ]
    if cand.reviewed_by:
        rows.append(("reviewed by", f"{cand.reviewed_by} ({cand.review_template})"
                     + (" — revised" if cand.revised else " — unchanged")))
    if cand.review_error:
        rows.append(("review failed", cand.review_error))
    if cand.review_notes:
        rows.append(("review notes", cand.review_notes))
    if cand.draft:
        d = cand.draft
        rows.append(("as drafted", f"[{d.get('subtask')}] {d.get('question')} → {d.get('answer')}"))
    body = "".join(f"<tr><th style='text-align:left;padding-right:6px;vertical-align:top'>{esc(k)}</th>"
                   f"<td style='white-space:pre-wrap;word-break:break-word'>{esc(v)}</td></tr>" for k, v in rows)
    label = status or "undecided"
    badge = (f"<span class='lmms-nb-live-decision' data-status='{esc(label)}' style='color:#fff;"
             f"background:{_STATUS_STYLE.get(status, '#888')};border-radius:4px;padding:1px 6px'>{esc(label)}</span>")
    return (f"<div class='lmms-nb-live-card'><b>candidate {index + 1} of {total}</b> "
            f"<code>{esc(cand.id)}</code> {badge}<table style='font-size:12px'>{body}</table></div>")

