"""`LiteSteps`: what `LiteBuilder` does once a task is chosen — embed and pick, the subset at each budget, its
estimates and fidelity, the export — each step a call to the public API of `lmms_nb.lite_selection` through
the builder's panels.

`LiteBuilder` (its subclass) creates the controls and the panels (`_embedding`, `_budgets`, `_doc_map`,
`_fidelity`, `_export`), the state (`task`, `embeddings`, `kcenter`, `coords`, `subset`, `logs`, `_budget`,
`_max_budget`, `_syncing`) and gives the chosen task (`_current_task()`) and its logs (`_task_logs()`); the
steps run when its buttons and sliders say so.

Example (embeddings given, so no model is loaded; the subset follows the slider):
    >>> import numpy as np
    >>> from lmms_nb.lite_selection import TaskEmbeddings
    >>> from lmms_nb.tasks.synthbench import synthbench_task
    >>> from lmms_nb.widgets._lite_builder import LiteBuilder
    >>> task = synthbench_task("count", n_train=6, n_test=20)
    >>> emb = TaskEmbeddings(task=task.name, doc_ids=np.arange(20),
    ...                      vectors=np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32))
    >>> builder = LiteBuilder(task, embeddings=emb, budget=3)
    >>> len(builder.subset), builder.budget_slider.max
    (3, 10)
    >>> builder.budget_slider.value = 5
    >>> len(builder.subset), builder.subset.doc_ids.tolist() == builder.kcenter.picks[:5].tolist()
    (5, True)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lmms_nb.widgets._action_box import ActionBox

__all__ = ["LiteSteps"]


class LiteSteps(ActionBox):
    """`LiteBuilder`'s steps from embeddings to export (see the module doc for what the builder provides)."""

    # ---- embedding -------------------------------------------------------------------------------------------
    def _settings_changed(self) -> None:
        if self.embeddings is not None and not self._syncing:
            self._status("embedding settings changed: press <b>Embed &amp; pick</b> to apply them", raw=True)

    def embedding_models(self) -> tuple[str | None, str | None, str | None]:
        """(image_model, image_pretrained, text_model) that `embed` will use, from the preset or the fields."""
        return self._embedding.models()

    def embed(self) -> Any:
        """Embed the chosen task with the chosen models (`embed_task`, cached on disk) and pick; returns them."""
        from lmms_nb.lite_selection import embed_task

        task = self._current_task()
        image, pretrained, text = self.embedding_models()
        weight = float(self.image_weight_slider.value)
        self._status(f"embedding {task.name} …")
        self.progress_output.clear_output()
        with self.progress_output:  # tqdm.auto draws its bar here (a widget in Jupyter, text elsewhere)
            emb = embed_task(task, image_model=image, image_pretrained=pretrained, text_model=text,
                             image_weight=weight if image and text else 0.5,
                             text_weight=1.0 - weight if image and text else 0.5, progress=True)
        self.progress_output.clear_output()
        self._use_embeddings(task, emb)
        return emb

    def _use_embeddings(self, task: Any, emb: Any) -> None:
        from lmms_nb.lite_selection import TaskEmbeddings, budget_doc_count, kcenter_greedy

        if not isinstance(emb, TaskEmbeddings):
            raise TypeError(f"embeddings must be TaskEmbeddings, got {type(emb).__name__}")
        if emb.task != task.name:
            raise ValueError(f"the embeddings are of task {emb.task!r}, not {task.name!r}")
        n = len(emb)
        kmax = budget_doc_count(self._max_budget, n, "max_budget")
        k0 = min(budget_doc_count(self._budget, n, "budget"), kmax)
        self.kcenter = kcenter_greedy(emb.vectors, kmax)  # once; every budget <= kmax is a prefix of it
        self.task, self.embeddings = task, emb
        self.coords = self._doc_map.show_docs(task, emb)
        self._syncing = True
        try:
            self._budgets.set_range(kmax, k0)
        finally:
            self._syncing = False
        self.budget_slider.disabled = self.export_button.disabled = False
        parts = [f"image: {emb.image_model_id}" if emb.image_model_id else "",
                 f"text: {emb.text_model_id}" if emb.text_model_id else ""]
        self._status(f"{task.name}: {n} docs embedded ({emb.vectors.shape[1]}-d; "
                     f"{'; '.join(p for p in parts if p) or 'given'}); k-center picks up to {kmax}")
        self._refresh_fidelity(redraw_budget=False)
        self._show_budget(self.budget_slider.value)

    # ---- the subset at the slider's budget ---------------------------------------------------------------------
    def _show_budget(self, k: int) -> None:
        if self.embeddings is None or self._syncing:
            return
        sub, error = self._budgets.subset_at(k, self.embeddings, self.kcenter, self._task_logs(), task=self.task.name,
                                             metric=self.metric_select.value, filter=self.filter_select.value)
        if error is not None:
            self.error = error
            return
        self.subset = sub
        self._doc_map.show_subset(sub, self.embeddings.rows_of(sub.doc_ids))
        self._show_estimates()
        self._mark_budget()

    def _show_estimates(self) -> None:
        self._fidelity.estimate(self._task_logs(), self.subset, task=self.task.name if self.task else None,
                                metric=self.metric_select.value, filter=self.filter_select.value)

    # ---- fidelity ----------------------------------------------------------------------------------------------
    def _refresh_fidelity(self, redraw_budget: bool = True) -> None:
        """`lite_fidelity` for the task's logs with the chosen metric (and filter), then the curves."""
        if self._syncing or self.embeddings is None:
            return
        self._fidelity.compute(self.logs, self._task_logs(), self.embeddings, task=self.task.name,
                               metric=self.metric_select.value, filter=self.filter_select.value)
        self._draw_fidelity()
        if redraw_budget and self.method_select.value == "difficulty":  # drawn on the chosen metric's scores
            self._show_budget(self.budget_slider.value)
        elif redraw_budget and self.subset is not None:
            self._show_estimates()

    def _draw_fidelity(self) -> None:
        self._fidelity.draw(self.subset)

    def _mark_budget(self) -> None:
        self._fidelity.mark_budget(self.subset)

    # the fidelity panel's results, as attributes of the builder
    fidelity = property(lambda self: self._fidelity.fidelity)
    fidelity_figure = property(lambda self: self._fidelity.figure)
    estimates = property(lambda self: self._fidelity.estimates)
    verdict = property(lambda self: self._fidelity.verdict, doc="the current subset against random subsets of its size")

    # ---- export ------------------------------------------------------------------------------------------------
    def export(self, folder: str | os.PathLike | None = None, formats: Sequence[str] | None = None) -> dict[str, Path]:
        """Write the current subset to `folder` (default: `export_dir_text`) in `formats` (default: the ticked
        boxes) among "json", "dataset", "yaml" (a YAML needs the dataset folder, so it writes one).

        Returns {format: path}; also sets `exported`, `exported_task` (`lite_task`) and calls `on_export`.
        """
        return self._export.export(self.task, self.subset, folder, formats, self._progress_then_cleared())

    # what the last export wrote, as attributes of the builder
    exported = property(lambda self: self._export.exported, doc="{format: path} of the last export")
    exported_task = property(lambda self: self._export.exported_task, doc="the `lite_task` of the last export")

    def on_export(self, callback: Callable[[Any], None]) -> None:
        """Call `callback(subset)` after every export."""
        self._export.callbacks.append(callback)

    # ---- helpers -----------------------------------------------------------------------------------------------
    def show_doc(self, doc_id: int) -> None:
        """Show doc `doc_id`'s image (a PNG thumbnail) and prompt beside the map, as hovering its point does."""
        self._doc_map.show_doc(doc_id)
