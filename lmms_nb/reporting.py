"""Reports (`lmms_nb.report`): execute a parameterized notebook with papermill, then write a standalone HTML with nbconvert.

The notebook runs in a kernel of *this* Python environment (a kernelspec written to a temporary folder), so
a report always sees the same lmms-nb and packages as the caller. The HTML hides code by default and embeds
plotly.js and every image, so it opens with no network.

Example (shell):
    lmms-nb report compare_models --param logs=outputs/demo --param title="Weekly review" -o reports/weekly.html
"""

from __future__ import annotations

import html
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["report", "ReportError", "template_path", "show_figure", "show_table", "show_examples",
           "show_lite_fidelity", "TEMPLATES", "anchor", "show_heading", "show_metadata", "show_summary",
           "show_task_section", "show_title", "show_toc"]

from lmms_nb._report_parts import (
    anchor,
    show_heading,
    show_metadata,
    show_summary,
    show_task_section,
    show_title,
    show_toc,
)

_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
#: built-in templates by name
TEMPLATES = {"compare_models": _TEMPLATE_DIR / "compare_models.ipynb"}
_KERNEL_NAME = "lmms-nb-python"


class ReportError(RuntimeError):
    """A cell of the report notebook failed; `cell` is its source and `error` what it raised."""

    def __init__(self, message: str, *, cell: str = "", error: str = "", notebook: Path | None = None):
        super().__init__(message)
        self.cell, self.error, self.notebook = cell, error, notebook


def template_path(template: str | Path) -> Path:
    """A built-in template's path by name, or the given notebook path (checked)."""
    if str(template) in TEMPLATES:
        return TEMPLATES[str(template)]
    path = Path(template)
    if not path.is_file():
        raise FileNotFoundError(f"report template not found: {template} (built-in: {', '.join(TEMPLATES)})")
    return path


def _kernel_dir() -> Path:
    """A kernelspec running this interpreter, in a temp JUPYTER_PATH entry (never touches the user's kernels)."""
    root = Path(tempfile.mkdtemp(prefix="lmms_nb_kernel_"))
    spec = root / "kernels" / _KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "lmms-nb (this environment)",
        "language": "python",
    }))
    return root


def report(template: str | Path, params: dict[str, Any] | None = None, output: str | Path = "reports/report.html",
           *, show_code: bool = False, timeout_s: int = 1800, keep_notebook: bool = True) -> Path:
    """Execute `template` with `params` and write a standalone HTML to `output`; returns its path.

    The executed notebook is kept beside the HTML (`<output>.ipynb`) when `keep_notebook`. A failing cell raises
    `ReportError` naming the cell and its error; the partly executed notebook is still written for inspection.
    """
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    src = template_path(template)
    # the page title is the report's title (nbconvert escapes it); untrusted text like every parameter
    title = str((params or {}).get("title") or "Model comparison")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    executed = output.with_suffix(".ipynb")
    kernel_root = _kernel_dir()
    old_path = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(kernel_root)] + ([old_path] if old_path else []))
    try:
        pm.execute_notebook(
            str(src), str(executed), parameters=dict(params or {}), kernel_name=_KERNEL_NAME,
            progress_bar=False, execution_timeout=timeout_s, cwd=str(Path.cwd()), log_output=False,
        )
    except pm.PapermillExecutionError as e:
        nb = nbformat.read(str(executed), as_version=4)
        # papermill's cell_index can be off by its injected-parameters cell; the execution count is not
        failed = [c for c in nb.cells if c.get("execution_count") == e.exec_count and c.cell_type == "code"]
        cell = failed[0].source if failed else ""
        _write_html(nb, output, show_code=True, title=title)
        raise ReportError(
            f"report cell {e.exec_count} failed: {e.ename}: {e.evalue}\n--- cell source ---\n{cell}",
            cell=cell, error=f"{e.ename}: {e.evalue}", notebook=executed,
        ) from None
    finally:
        if old_path is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old_path
    nb = nbformat.read(str(executed), as_version=4)
    _write_html(nb, output, show_code=show_code, title=title)
    if not keep_notebook:
        executed.unlink(missing_ok=True)
    _ = HTMLExporter  # imported above so a missing nbconvert fails before the (slow) execution
    return output


def _write_html(nb: Any, output: Path, *, show_code: bool, title: str = "Model comparison") -> None:
    from nbconvert import HTMLExporter

    nb.metadata["title"] = title  # the <title>; the lab template escapes it (escape_html_keep_quotes)
    exporter = HTMLExporter(template_name="lmms_nb_offline", extra_template_basedirs=[str(_TEMPLATE_DIR / "nbconvert")])
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    output.write_text(body, encoding="utf-8")


# --- display helpers used inside report notebooks (they only format; the analysis is the public API's) ---

_plotlyjs_shown = False


def show_figure(fig: Any) -> None:
    """Display a plotly figure so that it renders offline: plotly.js is embedded once, with the first figure."""
    from IPython.display import HTML, display

    from lmms_nb.analysis import plotly_template

    global _plotlyjs_shown
    fig.update_layout(template=plotly_template("light"))  # a report is a white page
    display(HTML(fig.to_html(full_html=False, include_plotlyjs=not _plotlyjs_shown,
                             config={"displaylogo": False})))
    _plotlyjs_shown = True


def show_table(df: Any, *, caption: str | None = None, max_rows: int = 50, float_digits: int = 3) -> None:
    """Display a polars/pandas table as escaped HTML (model output never becomes markup)."""
    from IPython.display import HTML, display

    import polars as pl

    if not isinstance(df, pl.DataFrame):
        df = pl.from_pandas(df)
    from lmms_nb._html_table import table_cells

    # p-values: scientific below 0.001, never "0.000"
    head, rows = table_cells(df, digits=float_digits, max_rows=max_rows,
                             p_columns=[c for c in df.columns if str(c).startswith("p_")])
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    more = f"<p><small>{df.height - max_rows} more rows not shown</small></p>" if df.height > max_rows else ""
    display(HTML(f"<div class='lmms-nb-wrap'><table class='lmms-nb-table'>{cap}<thead><tr>{head}</tr></thead>"
                 f"<tbody>{rows}</tbody></table></div>{more}"))


def _answers_of(row: dict[str, Any], columns: list[str]) -> list[tuple[str, Any, str | None, Any]]:
    """(model, answer, state, value) of each answer in a `Comparison` slice row: an aligned pair (model_a /
    model_b with prediction_a/_b, correct_a/_b, score_a/_b) or a browse frame (`prediction:<model>`, with
    `right` / `wrong` lists of models when present)."""
    if "model_a" in columns and "prediction_a" in columns:
        return [(row[f"model_{s}"], row[f"prediction_{s}"],
                 None if row.get(f"correct_{s}") is None else ("right" if row[f"correct_{s}"] else "wrong"),
                 row.get(f"score_{s}")) for s in ("a", "b")]
    right, wrong = set(row.get("right") or []), set(row.get("wrong") or [])
    out = []
    for c in columns:
        if c.startswith("prediction:"):
            model = c.split(":", 1)[1]
            out.append((model, row[c], "right" if model in right else ("wrong" if model in wrong else None), None))
    return out


def show_examples(rows: Any, *, title: str, max_rows: int = 5, thumb: int = 160,
                  colors: dict[str, str] | None = None) -> None:
    """Display disagreement examples (a `Comparison` slice): image, question, target, and each answer labelled
    by its model (in the model's colour) and marked right / wrong with an icon.

    Every string is HTML-escaped; images are inline PNGs, so the page needs no network.
    """
    from IPython.display import HTML, display

    from lmms_nb.analysis import STATE_ICONS, model_colors
    from lmms_nb.images import ImageRefError, thumbnail_data_uri

    def thumbnail(ref: Any) -> str | None:
        try:
            return thumbnail_data_uri(ref, thumb) if ref else None
        except ImageRefError:  # shown as "no image"; the report goes on
            return None

    parts = [f"<h4>{html.escape(title)}</h4>"]
    if rows.height == 0:
        parts.append("<p><i>none</i></p>")
    columns = list(rows.columns)
    for row in rows.head(max_rows).iter_rows(named=True):
        url = thumbnail(row.get("image_ref"))
        img = f"<img src='{url}' style='max-width:{thumb}px' alt='sample image'>" if url else "<div><i>no image</i></div>"
        answers = _answers_of(row, columns)
        palette = colors or model_colors([m for m, *_ in answers])
        chips = "".join(
            f"<span class='lmms-nb-chip {state or ''}' style='--m:{html.escape(palette.get(m, '#888'))}'>"
            f"{STATE_ICONS.get(state or 'unscored')} <b>{html.escape(str(m))}</b> "
            + ("" if value is None else f"<small>{value:.2f}</small> ")
            + f"{html.escape(str(pred))}</span>"
            for m, pred, state, value in answers
        )
        parts.append(
            "<div class='lmms-nb-example' style='display:flex;gap:12px;margin:8px 0;border-top:1px solid #ddd'>"
            f"<div>{img}</div><div><div><small>{html.escape(str(row.get('task')))} #{row.get('doc_id')}</small></div>"
            f"<div><b>question</b>: {html.escape(str(row.get('input') or ''))}</div>"
            f"<div><b>target</b>: {html.escape(str(row.get('target')))}</div><div>{chips}</div></div></div>"
        )
    if rows.height > max_rows:
        parts.append(f"<p><small>{rows.height - max_rows} more not shown</small></p>")
    display(HTML("".join(parts)))


def show_lite_fidelity(df: Any, cmp: Any, *, budget: float, image_model: str | None = None,
                       text_model: str | None = None, n_random: int = 100) -> None:
    """The Lite section: for each compared task that lmms-nb can load, how well a k-center subset of `budget`
    keeps the full set's scores and ranking, against random and stratified subsets of the same size.

    Embedding models default to ones that load offline (`local_embedding_models`). Tasks the logs name but
    lmms-nb cannot load (e.g. another tool's custom task) are listed as skipped, never silently dropped.
    """
    from IPython.display import Markdown, display

    import polars as pl

    from lmms_nb.lite_selection import (embed_task, fidelity_verdicts, lite_fidelity, local_embedding_models,
                                        plot_fidelity)
    from lmms_nb.tasks import get_task

    if image_model is None or text_model is None:
        local_image, local_text = local_embedding_models()
        image_model, text_model = image_model or local_image, text_model or local_text
    budgets = sorted({min(1.0, max(0.02, b)) for b in (budget / 2, budget, budget * 2, budget * 4)})
    for name in cmp.tasks:
        try:
            task = get_task(name)
        except (KeyError, ValueError) as e:
            display(Markdown(f"_{html.escape(name)}: skipped, its task definition is not available here ({html.escape(str(e)[:120])})._"))
            continue
        if len(cmp.models) < 3:
            display(Markdown(f"_{html.escape(name)}: skipped, fidelity across models needs at least 3 models._"))
            continue
        samples = cmp.samples.filter(pl.col("task") == name)
        emb = embed_task(task, image_model=image_model, text_model=text_model, progress=False)
        fid = lite_fidelity(samples, emb, budgets, metric=cmp.metrics[name], task=name, n_random=n_random)
        display(Markdown(f"### {html.escape(name)}"))
        verdicts = fidelity_verdicts(fid, budget)  # plain words first: does any subset beat random here?
        display(Markdown(f"**{html.escape(verdicts[0])}**\n\n" + "\n".join(f"- {html.escape(v)}" for v in verdicts[1:])))
        show_table(fid.summary, caption=f"Lite fidelity across {len(cmp.models)} models (points = metric x 100)",
                   max_rows=40)
        show_figure(plot_fidelity(fid, "spearman", goal=0.95))
        show_figure(plot_fidelity(fid, "mae_points", goal=1.5))
