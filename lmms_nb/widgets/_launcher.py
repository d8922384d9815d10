"""`EvalLauncher`: choose a model and tasks, Run, watch a progress bar and partial scores per task, Stop.

The launcher calls `lmms_nb.evaluate()` in a background thread (so the notebook stays responsive and the
Stop button can be pressed), with `on_batch` driving the progress bars and `stop_event` wired to Stop.
Stopping ends the run after the batch in flight; everything written stays on disk, and pressing Run again
with the same choices resumes it (evaluate's `resume=True` finds the run by its key).

Example:
    >>> import tempfile
    >>> from lmms_nb.models.baselines import FunctionModel
    >>> launcher = EvalLauncher(models=[FunctionModel(lambda r: "3", name="always-3")],
    ...                         tasks=["synthbench_count"], output_dir=tempfile.mkdtemp(), limit=6)
    >>> launcher.task_select.value = ("synthbench_count",)
    >>> launcher.run_button.click(); run = launcher.wait()
    >>> run.completed, launcher.bars["synthbench_count"].value, launcher.bars["synthbench_count"].max
    (True, 6, 6)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from lmms_nb.widgets._html import esc, table_html
from lmms_nb.widgets._launcher_form import argument_row

__all__ = ["EvalLauncher"]


class EvalLauncher(widgets.VBox):
    """A form around `lmms_nb.evaluate()`; the finished `Run` is `.run` and is passed to `on_finished` callbacks.

    Args:
        models: the choices of the model dropdown: registered names and/or `Model` objects (default: every
            registered model, `lmms_nb.list_models()`).
        tasks: the task choices: registered names and/or `Task` objects (default: `lmms_nb.list_tasks()`).
        output_dir, limit (None = all docs), batch_size: initial values of the form.
        on_finished: called with the `Run` when a run ends (complete or stopped).

    A registered model gets a form of its arguments (from `lmms_nb.models.arguments.model_arguments`: each
    argument's default and help, required ones marked *), rebuilt when the model changes; `model_args_text`
    takes extra arguments as JSON. A missing required argument or a failure is said in one line.

    Controls: `model_select`, `arg_widgets` ({argument: widget} of the form), `model_args_text` (extra JSON
    arguments, for registered models), `task_select`, `limit_input`
    (0 = all), `batch_size_input`, `output_dir_text`, `run_button`, `stop_button`. Shown: `bars` and
    `score_labels` ({task: widget}), `status_html`, `scores_html`. After a run: `run` (or `error`).
    """

    def __init__(self, *, models: Sequence[Any] | None = None, tasks: Sequence[Any] | None = None,
                 output_dir: str | Path = "outputs", limit: int | None = None, batch_size: int = 8,
                 on_finished: Callable[[Any], None] | None = None, **kwargs: Any):
        import lmms_nb

        self._models = {_name(m): m for m in (models if models is not None else lmms_nb.list_models())}
        self._tasks = {_name(t): t for t in (tasks if tasks is not None else lmms_nb.list_tasks())}
        self.run: Any = None
        self.error: BaseException | None = None
        self._callbacks: list[Callable[[Any], None]] = [on_finished] if on_finished else []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

        label = {"description_width": "initial"}
        self.model_select = widgets.Dropdown(options=list(self._models), description="model", style=label)
        self.model_args_text = widgets.Text(value="", placeholder='{"key": "value"}', description="extra args (JSON)",
                                            style=label)
        self.arg_widgets: dict[str, widgets.Widget] = {}
        self._arg_specs: dict[str, Any] = {}
        self.args_box = widgets.VBox()
        self.args_box.add_class("lmms-nb-model-form")
        self.task_select = widgets.SelectMultiple(options=list(self._tasks), value=(), description="tasks",
                                                  rows=min(8, max(3, len(self._tasks))))
        self.limit_input = widgets.BoundedIntText(value=limit or 0, min=0, max=10**9, description="limit (0 = all)",
                                                  tooltip="docs per task; 0 = all", style=label)
        self.batch_size_input = widgets.BoundedIntText(value=batch_size, min=1, max=4096, description="batch size",
                                                       style=label)
        self.output_dir_text = widgets.Text(value=str(output_dir), description="output dir", style=label)
        self.run_button = widgets.Button(description="Run", button_style="success", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.status_html = widgets.HTML("<small>choose a model and tasks, then Run</small>")
        self.progress_box = widgets.VBox()
        self.scores_html = widgets.HTML()
        self.bars: dict[str, widgets.IntProgress] = {}
        self.score_labels: dict[str, widgets.Label] = {}

        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.model_select.observe(lambda _: self._build_form(), names="value")
        self._build_form()
        form = widgets.VBox([
            widgets.HBox([self.model_select, self.model_args_text]),
            self.args_box,
            widgets.HBox([self.task_select, widgets.VBox([self.limit_input, self.batch_size_input,
                                                          self.output_dir_text])]),
            widgets.HBox([self.run_button, self.stop_button, self.status_html]),
        ])
        super().__init__([form, self.progress_box, self.scores_html], **kwargs)
        self.add_class("lmms-nb-eval-launcher")
        for widget, name in ((self.model_select, "model"), (self.task_select, "tasks"), (self.limit_input, "limit"),
                             (self.batch_size_input, "batch-size"), (self.run_button, "run"),
                             (self.stop_button, "stop"), (self.status_html, "status"), (self.scores_html, "scores")):
            widget.add_class(f"lmms-nb-{name}")

    # ---- public actions ------------------------------------------------------------------------------------
    def on_finished(self, callback: Callable[[Any], None]) -> None:
        """Call `callback(run)` whenever a run ends (also a stopped one: check `run.completed`)."""
        self._callbacks.append(callback)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """What the Run button does: check the form, then evaluate in a background thread."""
        if self.running:
            return
        try:
            model, model_args = self._chosen_model()
            tasks = [self._tasks[t] for t in self.task_select.value]
            if not tasks:
                raise ValueError("choose at least one task (tasks)")
        except ValueError as e:
            self._show_status(f"cannot run: {e}", "error")
            return
        self.run, self.error = None, None
        self._stop.clear()
        self._make_bars([_name(t) for t in tasks])
        self.scores_html.value = ""
        self.run_button.disabled, self.stop_button.disabled = True, False
        self._show_status(f"running {_name(model)} on {len(tasks)} task(s)…", "running")
        kwargs = {"limit": self.limit_input.value or None, "batch_size": self.batch_size_input.value,
                  "output_dir": self.output_dir_text.value, "resume": True, "progress": False,
                  "on_batch": self._on_batch, "stop_event": self._stop, "model_args": model_args}
        self._thread = threading.Thread(target=self._work, args=(model, tasks, kwargs), daemon=True,
                                        name="lmms-nb-eval-launcher")
        self._thread.start()

    def stop(self) -> None:
        """What the Stop button does: end after the batch in flight; what was written stays (Run resumes)."""
        if self.running:
            self._stop.set()
            self.stop_button.disabled = True
            self._show_status("stopping after the current batch…", "running")

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the current run ends; return its `Run` (None if it failed: see `error`)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.run

    # ---- internals -----------------------------------------------------------------------------------------
    def _build_form(self) -> None:
        """One field per argument of the chosen registered model: its default, its help, required ones marked *."""
        from lmms_nb.models.arguments import model_arguments

        name = self.model_select.value
        self.arg_widgets, self._arg_specs, rows = {}, {}, []
        if not isinstance(self._models.get(name), str):
            self.args_box.children = []
            return
        try:
            specs = model_arguments(name)
        except KeyError:  # a name given to the launcher but not registered: get_model will say so
            specs = []
        for a in specs:
            field, row = argument_row(a)
            if field is not None:
                self.arg_widgets[a.name] = field
            self._arg_specs[a.name] = a
            rows.append(row)
        self.args_box.children = rows

    def _chosen_model(self) -> tuple[Any, dict[str, Any] | None]:
        from lmms_nb.models.arguments import form_model_args

        name = self.model_select.value
        if name is None:
            raise ValueError("no model to choose (model)")
        model = self._models[name]
        text = self.model_args_text.value.strip()
        if not isinstance(model, str):
            if text:
                raise ValueError(f"model args apply to registered model names; {name!r} is already built")
            return model, None
        values = {arg: w.value for arg, w in self.arg_widgets.items()}  # (python-only arguments have no widget)
        return model, form_model_args(name, self._arg_specs.values(), values, text) or None

    def _make_bars(self, task_names: list[str]) -> None:
        self.bars, self.score_labels, rows = {}, {}, []
        for name in task_names:
            bar = widgets.IntProgress(value=0, min=0, max=1, description=name, bar_style="info",
                                      style={"description_width": "initial"}, layout=widgets.Layout(width="420px"))
            label = widgets.Label("waiting")
            bar.add_class("lmms-nb-progress")
            label.add_class("lmms-nb-partial-scores")
            self.bars[name], self.score_labels[name] = bar, label
            rows.append(widgets.HBox([bar, label]))
        self.progress_box.children = rows

    def _on_batch(self, progress: Any) -> None:
        bar, label = self.bars.get(progress.task), self.score_labels.get(progress.task)
        if bar is None:
            return
        bar.max = max(1, progress.total)
        bar.value = progress.done
        scores = " · ".join(f"{m} {v:.3f}" for m, v in sorted(progress.partial_scores.items()))
        errors = f" · {progress.n_errors} errors" if progress.n_errors else ""
        label.value = f"{progress.done}/{progress.total}" + (f" · {scores}" if scores else "") + errors

    def _work(self, model: Any, tasks: list[Any], kwargs: dict[str, Any]) -> None:
        from lmms_nb import evaluate

        try:
            run = evaluate(model, tasks, **kwargs)
        except Exception as e:  # noqa: BLE001 - shown in the widget; the notebook must not lose the error
            self.error = e
            first = (str(e).strip().splitlines() or [""])[0]  # one line; the whole error is in `.error`
            self._show_status(f"failed: {type(e).__name__}: {first[:300]}", "error")
            for bar in self.bars.values():
                if bar.bar_style != "success":
                    bar.bar_style = "danger"
            run = None
        else:
            self.run = run
            self._show_finished(run)
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True
        if run is not None:
            for callback in list(self._callbacks):
                try:
                    callback(run)
                except Exception as e:  # noqa: BLE001 - it runs in the worker thread: show it, or it is lost
                    self.error = e
                    self._show_status(f"the run finished, but on_finished callback {_name(callback)} failed: "
                                      f"{type(e).__name__}: {e}", "error")

    def _show_finished(self, run: Any) -> None:
        import polars as pl

        counts = run.docs_per_task()
        for name, bar in self.bars.items():
            n = counts.get(name, 0)
            if run.completed:
                # a task resumed with nothing left to do sends no batch: its bar is filled from the Run
                bar.max, bar.value = max(1, n), n
            bar.bar_style = "success" if run.completed or n >= bar.max else "warning"
            scores = run.scores.filter(pl.col("task") == name)
            text = " · ".join(f"{m} {v:.3f}" for m, v in scores.select("metric", "value").iter_rows() if not math.isnan(v))
            self.score_labels[name].value = f"{n} samples" + (f" · {text}" if text else "")
        state = "complete" if run.completed else "stopped: what was written is kept; Run again to resume"
        self._show_status(f"{run.model}: {state} — {run.samples.height} rows, {run.n_errors} errors", "done")
        self.scores_html.value = table_html(run.scores)

    def _show_status(self, text: str, kind: str) -> None:
        colour = {"error": "#d62728", "running": "#1f77b4", "done": "#2ca02c"}.get(kind, "#444")
        self.status_html.value = f'<span class="lmms-nb-status-text" data-kind="{kind}" style="color:{colour}">{esc(text)}</span>'


def _name(obj: Any) -> str:
    return obj if isinstance(obj, str) else str(getattr(obj, "name", None) or getattr(obj, "__name__", obj))
