"""Plotly figures of a `Comparison`. plotly is imported inside each function, never at module import.

Every trace carries in `customdata` the keys that lead from a clicked bar, cell or point back to the
samples: bars and category cells [model, task, group], sample cells [model, task, doc_id, filter],
scatter points [task, group, model_a, model_b], agreement cells [model_a, model_b]. Names shown on the
figure (models, tasks, categories come from logs and may hold anything) are HTML-escaped, since plotly
renders a subset of HTML in labels; customdata keeps the raw values for lookups.

Example:
    >>> import polars as pl
    >>> from lmms_nb.analysis import compare
    >>> df = pl.DataFrame({"model": ["A", "B"] * 2, "task": ["t"] * 4, "doc_id": [0, 0, 1, 1], "acc": [1, 0, 1, 1]})
    >>> fig = compare(df).bar_figure()
    >>> [t.name for t in fig.data], list(fig.data[0].customdata[0])
    (['A', 'B'], ['A', 't', None])
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from lmms_nb.analysis._palette import MODEL_PALETTE, STATE_COLORS

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from lmms_nb.analysis._comparison import Comparison


def _e(value: Any) -> str:
    return html.escape(str(value))


def _group_label(row: dict[str, Any], by: list[str], with_task: bool) -> str:
    parts = [row["task"]] if with_task else []
    parts += ["(none)" if row[c] is None else str(row[c]) for c in by]
    return " / ".join(parts)


def _group_key(row: dict[str, Any], by: list[str]) -> str | None:
    values = [row[c] for c in by]
    if not by or all(v is None for v in values):
        return None
    return " / ".join("(none)" if v is None else str(v) for v in values)


def _metric_label(cmp: "Comparison", tasks: list[str] | None = None) -> str:
    names = sorted({cmp.metrics[t] for t in (tasks or cmp.tasks) if t in cmp.metrics})
    return ", ".join(names)


def bar_figure(cmp: "Comparison", *, groups: bool = False, chance: Mapping[str, float] | bool = True) -> "go.Figure":
    """Grouped bars: x = task (or task / group), one trace per model in its fixed colour, CI error bars, and
    per task a dotted line at `chance` (default: the most-frequent-target score of `summarize`)."""
    import plotly.graph_objects as go

    use_groups = groups and bool(cmp.by)
    table = cmp.scores_by_group if use_groups else cmp.scores
    by = cmp.by if use_groups else []
    several_filters = table["filter"].n_unique() > 1 if table.height else False
    colors = cmp.model_colors()
    fig = go.Figure()
    x_order: list[str] = []
    x_task: dict[str, str] = {}
    for model in cmp.models:
        rows = table.filter(pl.col("model") == model).to_dicts()
        labels = []
        for r in rows:
            label = _group_label(r, by, with_task=True) if use_groups else r["task"]
            label = _e(f"{label} [{r['filter']}]" if several_filters else label)
            labels.append(label)
            if label not in x_task:
                x_order.append(label)
                x_task[label] = r["task"]
        score = np.array([np.nan if r["score"] is None else r["score"] for r in rows], dtype=float)
        low = np.array([np.nan if r["ci_low"] is None else r["ci_low"] for r in rows], dtype=float)
        high = np.array([np.nan if r["ci_high"] is None else r["ci_high"] for r in rows], dtype=float)
        fig.add_trace(
            go.Bar(
                name=_e(model),
                x=labels,
                y=score,
                marker_color=colors[model],
                error_y=dict(type="data", symmetric=False, array=high - score, arrayminus=score - low),
                customdata=[[model, r["task"], _group_key(r, by)] for r in rows],
                text=[f"n={r['n']}" for r in rows],
                hovertemplate="%{x}<br>score %{y:.3f}<br>%{text}<extra>" + _e(model) + "</extra>",
            )
        )
    if chance is True:
        from lmms_nb.analysis._summary import chance_levels

        chance = chance_levels(cmp)
    chance = chance or {}
    for i, label in enumerate(x_order):
        level = chance.get(x_task[label])
        if level is not None:
            fig.add_shape(type="line", xref="x", yref="y", x0=i - 0.45, x1=i + 0.45, y0=level, y1=level,
                          line=dict(color="#888888", width=2, dash="dot"))
    labelled = [(i, chance[x_task[label]]) for i, label in enumerate(x_order) if chance.get(x_task[label]) is not None]
    if labelled:  # one label explains the dotted lines (no legend entry: the legend lists models only)
        i, level = labelled[0]
        fig.add_annotation(x=i, y=level, xref="x", yref="y", text="chance (most frequent target)", showarrow=False,
                           yshift=9, font=dict(size=10, color="#888888"))
    methods = sorted(set(table["ci_method"].drop_nulls().to_list())) if "ci_method" in table.columns else []
    fig.update_layout(
        barmode="group",
        title=_e(f"Score per {'task / ' + ' / '.join(by) if by else 'task'} ({_metric_label(cmp)}) with "
                 f"{int(round(cmp.confidence * 100))}% CIs "
                 f"({', '.join(sorted({m.split(' ')[0].replace('wilson', 'Wilson') for m in methods})) or 'none'})"),
        yaxis_title=_e(_metric_label(cmp)),
        legend_title="model",
    )
    return fig


def category_heatmap(cmp: "Comparison", *, task: str | None = None) -> "go.Figure":
    """Heatmap of scores: y = models, x = groups (prefixed by the task when several tasks are shown)."""
    import plotly.graph_objects as go

    if not cmp.by:
        raise ValueError("this comparison has no category column; pass by='<column>' to compare()")
    table = cmp.scores_by_group if task is None else cmp.scores_by_group.filter(pl.col("task") == task)
    with_task = table["task"].n_unique() > 1
    columns: dict[tuple, str] = {}
    for r in table.iter_rows(named=True):
        columns.setdefault((r["task"], r["filter"], _group_key(r, cmp.by)), _group_label(r, cmp.by, with_task))
    keys = list(columns)
    pos = {k: i for i, k in enumerate(keys)}
    z = np.full((len(cmp.models), len(keys)), np.nan)
    n = np.zeros((len(cmp.models), len(keys)), dtype=int)
    for r in table.iter_rows(named=True):
        i, j = cmp.models.index(r["model"]), pos[(r["task"], r["filter"], _group_key(r, cmp.by))]
        z[i, j] = np.nan if r["score"] is None else r["score"]
        n[i, j] = r["n"]
    custom = [[[m, k[0], k[2]] for k in keys] for m in cmp.models]
    finite = z[~np.isnan(z)]
    unit_scale = all(cmp.binary.get(k[0], False) for k in keys) or bool(
        finite.size and finite.min() >= 0 and finite.max() <= 1
    )
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[_e(columns[k]) for k in keys],
            y=[_e(m) for m in cmp.models],
            customdata=custom,
            text=[[f"n={v}" for v in row] for row in n],
            texttemplate="%{z:.2f}",
            colorscale="Viridis",
            # one 0-1 scale for every heatmap of [0, 1] scores, so the same colour means the same score on
            # every task (a per-figure scale made the weakest model look best on a hard task)
            zmin=0,
            zmax=1 if unit_scale else None,
            hovertemplate="%{y}<br>%{x}<br>score %{z:.3f} (%{text})<extra></extra>",
            colorbar=dict(title="score"),
        )
    )
    tasks = list(dict.fromkeys(k[0] for k in keys))
    where = task if task is not None else ", ".join(tasks)
    fig.update_layout(title=_e(f"{where}: {_metric_label(cmp, tasks)} per model and {' / '.join(cmp.by)}"),
                      xaxis_tickangle=-45)
    return fig


def sample_heatmap(cmp: "Comparison", *, task: str | None = None, max_samples: int = 300) -> "go.Figure":
    """Correctness per sample (x, easiest first) and model (y); white = not scored for that model.

    With more than `max_samples` samples, evenly spaced ones along the difficulty order are shown, so the
    picture keeps the difficulty profile of the whole set (the title says how many are shown).
    """
    import plotly.graph_objects as go

    k = len(cmp.models)
    correct = [pl.col(f"correct_{i}") for i in range(k)]
    wide = cmp.wide if task is None else cmp.wide.filter(pl.col("task") == task)
    wide = wide.with_columns(
        pl.mean_horizontal(correct).alias("_easiness"),
    ).sort(["_easiness", "task", "filter", "doc_id"], descending=[True, False, False, False], nulls_last=True)
    total = wide.height
    if total > max_samples:
        wide = wide[np.unique(np.linspace(0, total - 1, max_samples).round().astype(int)).tolist()]
    z = wide.select(c.cast(pl.Float64) for c in correct).to_numpy().T  # models x samples, NaN = absent
    keys = wide.select("task", "doc_id", "filter").rows()
    several_tasks = len({t for t, _, _ in keys}) > 1
    x = [_e(f"{t}#{d}" if several_tasks else f"#{d}") + ("" if f == "none" else _e(f" [{f}]")) for t, d, f in keys]
    custom = [[[m, t, d, f] for t, d, f in keys] for m in cmp.models]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=[_e(m) for m in cmp.models],
            customdata=custom,
            zmin=0,
            zmax=1,
            colorscale=[[0.0, STATE_COLORS["wrong"]], [1.0, STATE_COLORS["right"]]],  # colour-blind safe
            showscale=False,
            hovertemplate="%{y}<br>%{x}<br>correct %{z}<extra></extra>",
            xgap=0,
            ygap=1,
        )
    )
    shown = f"{len(keys)} of {total}" if total > len(keys) else f"{total}"
    fig.update_layout(
        title=_e(f"{task + ': ' if task else ''}per-sample correctness ({shown} samples, easiest first; "
                 f"blue right, orange wrong)"),
        xaxis=dict(showticklabels=len(keys) <= 60, title="sample"),
    )
    return fig


def scatter(cmp: "Comparison", a: str, b: str) -> "go.Figure":
    """Score of `a` (x) against `b` (y), one point per task x group; points above the diagonal favour `b`."""
    import plotly.graph_objects as go

    table = cmp.scores_by_group if cmp.by else cmp.scores
    by = cmp.by if cmp.by else []
    keys = ["task", "filter", *by]
    pa = table.filter(pl.col("model") == a).select(*keys, pl.col("score").alias("x"), pl.col("n").alias("n_a"))
    pb = table.filter(pl.col("model") == b).select(*keys, pl.col("score").alias("y"), pl.col("n").alias("n_b"))
    both = pa.join(pb, on=keys, how="inner", nulls_equal=True)
    rows = both.to_dicts()
    with_task = both["task"].n_unique() > 1 or not by
    labels = [_e(_group_label(r, by, with_task)) for r in rows]
    sizes = np.sqrt(np.array([min(r["n_a"], r["n_b"]) for r in rows], dtype=float))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[r["x"] for r in rows],
            y=[r["y"] for r in rows],
            mode="markers",
            name=_e(f"{a} vs {b}"),
            text=labels,
            customdata=[[r["task"], _group_key(r, by), a, b] for r in rows],
            marker=dict(size=6 + 14 * sizes / max(1.0, sizes.max() if sizes.size else 1.0)),
            hovertemplate="%{text}<br>x %{x:.3f}<br>y %{y:.3f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="equal", line=dict(dash="dash", color="grey"), hoverinfo="skip"
        )
    )
    fig.update_layout(
        title=_e(f"{b} vs {a} per " + (" / ".join(by) if by else "task")),
        xaxis_title=_e(a),
        yaxis_title=_e(b),
    )
    return fig


def agreement_figure(cmp: "Comparison") -> "go.Figure":
    """Models x models heatmap of agreement: share of samples scored for both with the same correctness."""
    import plotly.graph_objects as go

    k = len(cmp.models)
    z = np.eye(k)
    n = np.zeros((k, k), dtype=int)
    for r in cmp.agreement().iter_rows(named=True):
        i, j = cmp.models.index(r["model_a"]), cmp.models.index(r["model_b"])
        value = np.nan if r["agreement"] is None else r["agreement"]
        z[i, j] = z[j, i] = value
        n[i, j] = n[j, i] = r["n_both"]
    for i in range(len(cmp.models)):
        n[i, i] = int(cmp.wide[f"correct_{i}"].is_not_null().sum())
    labels = [_e(m) for m in cmp.models]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            customdata=[[[a, b] for b in cmp.models] for a in cmp.models],
            text=[[f"n={v}" for v in row] for row in n],
            zmin=0,
            zmax=1,
            colorscale="Blues",
            hovertemplate="%{y} / %{x}<br>agreement %{z:.3f} (%{text})<extra></extra>",
        )
    )
    fig.update_layout(title="Agreement (both right or both wrong)", yaxis_autorange="reversed")
    return fig


def plotly_template(theme: str = "auto") -> "go.layout.Template":
    """A plotly template for JupyterLab's "light" or "dark" theme, or "auto": transparent backgrounds and
    mid-grey text and grid lines that read on either (a widget cannot know the page's theme from Python)."""
    import plotly.graph_objects as go

    if theme not in ("auto", "light", "dark"):
        raise ValueError(f"theme must be 'auto', 'light' or 'dark', got {theme!r}")
    text = {"auto": "#8a8a8a", "light": "#333333", "dark": "#e0e0e0"}[theme]
    grid = {"auto": "rgba(128,128,128,0.25)", "light": "#e5e5e5", "dark": "#444444"}[theme]
    background = {"auto": "rgba(0,0,0,0)", "light": "#ffffff", "dark": "#111111"}[theme]
    axis = dict(gridcolor=grid, linecolor=grid, zerolinecolor=grid, tickfont=dict(color=text),
                title=dict(font=dict(color=text)))
    return go.layout.Template(layout=dict(
        paper_bgcolor=background, plot_bgcolor=background, font=dict(color=text),
        title=dict(font=dict(color=text)), legend=dict(font=dict(color=text)),
        xaxis=axis, yaxis=axis, colorway=list(MODEL_PALETTE),
    ))
