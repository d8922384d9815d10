"""`LiteBuilder`: pick a Lite subset of a task in a notebook — embed, choose a budget, see it, check it, export it.

Every step is a call to the public API of `lmms_nb.lite_selection`; the widget only keeps the results and
draws them, each part in a module of its own:

- **Embed & pick** (`_lite_embedding_controls`): `embed_task` (its `tqdm.auto` progress shown in the widget),
  then `kcenter_greedy` once at the slider's largest budget.
- **Budget and method** (`_lite_budget`): farthest-first picks are nested, so every slider move is the first k
  of them and their cells (`build_lite_subset`), at no new k-center cost. With logs of earlier models, the
  subset can instead be drawn within difficulty strata of their answers (`build_difficulty_subset`); its
  estimates per model are then `difficulty_estimates`, by the estimator that cross-validation over the earlier
  models picks (spread_cv or anchor_corrected; difficulty_cv with under 6 models; the summary line says which and why).
- **The map** (`_lite_map`): the docs' embeddings by PCA, the picks coloured by cell size; hovering a point
  shows the doc's prompt, what a pick stands for (`pick_notes`) and the doc's image beside the map (`show_doc`).
- **Fidelity** (`_lite_fidelity`), with per-sample logs of at least 3 models on the task: `lite_fidelity` at a
  few budgets and `plot_fidelity` (k-center plain and cell-weighted, anchor points and gp-IRT on held-out
  models, vs random and stratified subsets), with the current budget marked; `lite_estimates` of the subset
  per model under a verdict from `subset_vs_random` (`.verdict`).
- **Export** (`_lite_export`): the chosen formats to a folder the user types (`save_lite_subset`,
  `save_lite_dataset`, `write_lmms_eval_yaml`); `lite_task` gives the `Task` to evaluate at once. The subset
  is `.subset`; `on_export` callbacks get it.

Example (embeddings given, so no model is loaded):
    >>> import numpy as np
    >>> from lmms_nb.lite_selection import TaskEmbeddings, build_lite_subset
    >>> from lmms_nb.tasks.synthbench import synthbench_task
    >>> task = synthbench_task("count", n_train=6, n_test=30)
    >>> emb = TaskEmbeddings(task=task.name, doc_ids=np.arange(30),
    ...                      vectors=np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32))
    >>> builder = LiteBuilder(task, embeddings=emb, budget=5)
    >>> builder.budget_slider.value = 7
    >>> picked = builder.map.data[1]
    >>> len(picked.x), list(picked.customdata) == build_lite_subset(emb, 7).doc_ids.tolist()
    (7, True)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import polars as pl

from lmms_nb.widgets._html import esc
from lmms_nb.widgets._lite_budget import SUBSET_METHODS, BudgetControls
from lmms_nb.widgets._lite_embedding_controls import CUSTOM, HUB, OFFLINE, EmbeddingControls
from lmms_nb.widgets._lite_export import ExportPanel
from lmms_nb.widgets._lite_fidelity import FidelityPanel
from lmms_nb.widgets._lite_map import DocMap
from lmms_nb.widgets._lite_steps import LiteSteps
from lmms_nb.widgets._lite_tasks import TaskChoices, registered_tasks

# CUSTOM, HUB and OFFLINE (the embedding presets) and SUBSET_METHODS are imported from here by the tests.
__all__ = ["CUSTOM", "HUB", "OFFLINE", "SUBSET_METHODS", "LiteBuilder"]


class LiteBuilder(LiteSteps):
    """Build a Lite subset of one task: embedding choice, budget slider, 2-D map, fidelity curves, export.

    Args:
        task: the task shown first: a `Task`, a registered name or an lmms-eval task YAML path.
        tasks: the other choices of the task dropdown (same kinds; default: `lmms_nb.list_tasks()`).
            Registered names are built only when chosen and embedded.
        logs: per-sample results of several models (a canonical table, polars or pandas, a `Run`, or log
            path(s) read by `lmms_nb.load_logs`); enables fidelity curves and per-model estimates.
        embeddings: `TaskEmbeddings` of `task`, already computed (then the map shows at once).
        image_model, image_pretrained, text_model: open_clip / sentence-transformers models for `embed_task`
            (names, ``local-dir:`` paths or folders). Default: the offline models of `local_embedding_models`.
        image_weight: the image part's weight (the text part gets ``1 - image_weight``).
        budget, max_budget: the slider's first value and its end, each a count or a fraction of the task.
        method: "kcenter" (k-center greedy over the embeddings) or "difficulty" (drawn within difficulty
            strata of the earlier models in `logs`, see `build_difficulty_subset`; needs `logs`).
        fidelity_budgets, n_random, metric: passed to `lite_fidelity` (metric: default the task's only one).
        export_dir: the folder the export writes to (editable in the widget).
        on_export: called with the `LiteSubset` after each export.

    Controls: `task_select`, `task_path_text` + `add_task_button` (a YAML path), `embedding_select`,
    `image_model_text`, `image_pretrained_text`, `text_model_text`, `image_weight_slider`, `embed_button`,
    `budget_slider`, `method_select`, `metric_select`, `filter_select`, `stat_select`, `export_dir_text`, `format_checks`
    ({format: Checkbox}), `export_button`. Shown: `progress_output`, `status_html`, `summary_html`, `map`
    (a plotly FigureWidget), `estimates_html`, `fidelity_figure`, `fidelity_html`, `export_html`.
    State: `task`, `embeddings`, `kcenter`, `coords` (the PCA map), `subset`, `estimates`, `fidelity`,
    `exported` ({format: path}), `exported_task` (the `lite_task`), `error` (of the last button press).
    """

    def __init__(
        self,
        task: Any = None,
        *,
        tasks: Sequence[Any] | None = None,
        logs: Any = None,
        embeddings: Any = None,
        image_model: str | None = None,
        image_pretrained: str | None = None,
        text_model: str | None = None,
        image_weight: float = 0.5,
        budget: int | float = 0.1,
        max_budget: int | float = 0.5,
        method: str = "kcenter",
        fidelity_budgets: Sequence[int | float] = (0.05, 0.1, 0.2, 0.3, 0.5),
        n_random: int = 100,
        metric: str | None = None,
        export_dir: str | os.PathLike = "lite",
        on_export: Callable[[Any], None] | None = None,
        **kwargs: Any,
    ):
        from lmms_nb.widgets._query import as_sample_table

        self._choices = TaskChoices(([task] if task is not None else [])
                                    + list(tasks if tasks is not None else registered_tasks()))
        if not self._choices.names():
            raise ValueError("LiteBuilder needs a task: pass task= or tasks=")
        self.logs: pl.DataFrame | None = None if logs is None else as_sample_table(logs)
        if method not in SUBSET_METHODS.values():
            raise ValueError(f"method must be one of {list(SUBSET_METHODS.values())}, got {method!r}")
        if method == "difficulty" and self.logs is None:
            raise ValueError("method='difficulty' draws the subset from earlier models' answers: give logs=")
        self._budget, self._max_budget, self._metric = budget, max_budget, metric
        self.task: Any = None
        self.embeddings: Any = None
        self.kcenter: Any = None
        self.coords: np.ndarray | None = None
        self.subset: Any = None
        self.error: BaseException | None = None
        self._syncing = False

        # ---- task and embedding choice
        self.task_select = widgets.Dropdown(options=self._choices.names(), description="task")
        self.task_path_text = widgets.Text(placeholder="or an lmms-eval task YAML path", description="YAML")
        self.add_task_button = widgets.Button(description="add task", icon="plus")
        self._embedding = EmbeddingControls(image_model, image_pretrained, text_model, image_weight,
                                            on_change=self._settings_changed)
        self.embedding_select = self._embedding.embedding_select
        self.image_model_text = self._embedding.image_model_text
        self.image_pretrained_text = self._embedding.image_pretrained_text
        self.text_model_text = self._embedding.text_model_text
        self.image_weight_slider = self._embedding.image_weight_slider
        self.embed_button = widgets.Button(description="Embed & pick", button_style="primary", icon="play")
        self.progress_output = widgets.Output()
        self.status_html = widgets.HTML()

        # ---- budget and map
        self._budgets = BudgetControls(method, has_logs=self.logs is not None)
        self.budget_slider, self.method_select = self._budgets.budget_slider, self._budgets.method_select
        self.summary_html = self._budgets.summary_html
        self._doc_map = DocMap()
        self.map, self.doc_preview = self._doc_map.figure, self._doc_map.doc_preview
        self._fidelity = FidelityPanel(fidelity_budgets, n_random)
        self.estimates_html = self._fidelity.estimates_html

        # ---- fidelity
        self.metric_select, self.filter_select = self._fidelity.metric_select, self._fidelity.filter_select
        self.stat_select = self._fidelity.stat_select
        self.fidelity_box, self.fidelity_html = self._fidelity.box, self._fidelity.html

        # ---- export
        self._export = ExportPanel(export_dir, on_export)
        self.export_dir_text, self.format_checks = self._export.dir_text, self._export.format_checks
        self.export_button, self.export_html = self._export.button, self._export.html

        self.add_task_button.on_click(self._pressed(self.add_task_path))
        self.embed_button.on_click(self._pressed(self.embed))
        self.export_button.on_click(self._pressed(self.export))
        self.task_select.observe(lambda _: self._task_changed(), names="value")
        self.budget_slider.observe(lambda change: self._show_budget(change["new"]), names="value")
        self.method_select.observe(lambda _: self._show_budget(self.budget_slider.value), names="value")
        self.metric_select.observe(lambda _: self._refresh_fidelity(), names="value")
        self.filter_select.observe(lambda _: self._refresh_fidelity(), names="value")
        self.stat_select.observe(lambda _: self._draw_fidelity(), names="value")

        super().__init__([
            widgets.HBox([self.task_select, self.task_path_text, self.add_task_button]),
            widgets.HBox([self.embedding_select, self.image_weight_slider]),
            widgets.HBox([self.image_model_text, self.image_pretrained_text, self.text_model_text]),
            self.embed_button, self.progress_output, self.status_html,
            widgets.HBox([self.budget_slider, self.method_select]), self.summary_html,
            widgets.HBox([self.map, self.doc_preview]), self.estimates_html,
            widgets.HBox([self.metric_select, self.filter_select, self.stat_select]),
            self.fidelity_box, self.fidelity_html,
            widgets.HBox([self.export_dir_text, *self.format_checks.values(), self.export_button]),
            self.export_html,
        ], **kwargs)
        self.add_class("lmms-nb-lite-builder")
        self._embedding.preset_changed()
        self._task_changed()
        if embeddings is not None:
            self._use_embeddings(self._current_task(), embeddings)

    # ---- tasks -------------------------------------------------------------------------------------------------
    def add_task_path(self, path: str | os.PathLike | None = None) -> str:
        """Add the task(s) of an lmms-eval YAML file or folder (default: `task_path_text`) and select the first."""
        path = path if path is not None else self.task_path_text.value.strip()
        if not path:
            raise ValueError("type the path of a task YAML file or folder")
        name = self._choices.add(Path(path))
        self.task_select.options = self._choices.names()
        self.task_select.value = name
        return name

    def _current_task(self) -> Any:
        return self._choices.task(self.task_select.value)

    def _task_changed(self) -> None:
        """A new task: forget the previous task's embeddings and subset, offer its metrics."""
        self.task = self.embeddings = self.kcenter = self.coords = self.subset = None
        self.budget_slider.disabled = self.export_button.disabled = True
        self._doc_map.clear()
        self.summary_html.value = ""
        self._fidelity.clear()
        self._offer_metrics()
        self._status(f"task {esc(self.task_select.value)}: press <b>Embed &amp; pick</b>", raw=True)

    def _task_logs(self) -> pl.DataFrame | None:
        from lmms_nb.lite_selection import task_log_rows

        return task_log_rows(self.logs, self.task_select.value)

    def _offer_metrics(self) -> None:
        # the metric asked for, else the task's first (its headline metric), else the table's first
        preferred = [self._metric, *(m.name for m in getattr(self._current_task(), "metrics", []))]
        self._syncing = True
        try:
            self._fidelity.offer_metrics(self._task_logs(), preferred)
        finally:
            self._syncing = False
