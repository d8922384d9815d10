"""`plot_fidelity`: curves of one fidelity statistic over budgets, one per Lite method (plotly, imported here only).

Example:
    >>> import numpy as np, polars as pl
    >>> from lmms_nb.lite_selection import lite_fidelity
    >>> rng = np.random.default_rng(0)
    >>> correct = (rng.random((4, 60)) < np.linspace(0.3, 0.9, 4)[:, None]).astype(float)
    >>> samples = pl.DataFrame({"model": np.repeat(list("abcd"), 60), "task": "t",
    ...                         "doc_id": np.tile(np.arange(60), 4), "acc": correct.ravel()})
    >>> fig = plot_fidelity(lite_fidelity(samples, (np.arange(60), rng.normal(size=(60, 3))), [6, 12], n_random=5))
    >>> sorted(t.name for t in fig.data if t.name)[:2]
    ['k-center (cell-weighted)', 'k-center (plain mean)']
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from lmms_nb.lite_selection._fidelity import _DRAWN, _STATS, METHODS, LiteFidelity

__all__ = ["plot_fidelity"]


#: one colour and legend name per lite_fidelity method (a test keeps them in step with METHODS)
_COLORS = {"kcenter": "#1f77b4", "kcenter_weighted": "#2ca02c", "kcenter_irt": "#17becf", "anchor": "#9467bd",
           "anchor_irt": "#e377c2", "random": "#7f7f7f", "random_irt": "#8c564b", "random_calibrated": "#bcbd22",
           "stratified": "#ff7f0e", "difficulty": "#d62728", "kcenter_corrected": "#003f7f",
           "anchor_corrected": "#5b2a86", "random_corrected": "#4d4d4d", "random_cv": "#a05a2c",
           "difficulty_cv": "#8b0000", "residual_cv": "#e6550d", "spread_cv": "#31a354",
           "chosen": "#000000"}
_NAMES = {"kcenter": "k-center (plain mean)", "kcenter_weighted": "k-center (cell-weighted)",
          "kcenter_irt": "k-center (gp-IRT)", "anchor": "anchor points", "anchor_irt": "anchor points (gp-IRT)",
          "random": "random (mean ± sd)", "random_irt": "random (gp-IRT, mean ± sd)",
          "random_calibrated": "random (calibrated, mean ± sd)", "stratified": "stratified (mean ± sd)",
          "difficulty": "difficulty-stratified (mean ± sd)",
          "kcenter_corrected": "k-center (cell-weighted + linear correction)",
          "anchor_corrected": "anchor points (+ linear correction)",
          "random_corrected": "random (+ linear correction, mean ± sd)",
          "random_cv": "random (control variate, mean ± sd)",
          "difficulty_cv": "difficulty-stratified (control variate, mean ± sd)",
          "residual_cv": "prediction-error-stratified (control variate, mean ± sd)",
          "spread_cv": "spread by prediction error (control variate, mean ± sd)",
          "chosen": "chosen by nested cross-validation (mean ± sd)"}


def plot_fidelity(fidelity: LiteFidelity, stat: str = "spearman", *, x: Literal["budget", "k"] = "budget",
                  goal: float | None = None):
    """Curves of `stat` over budgets: k-center (plain and weighted) vs random and stratified (mean +- sd band).

    `stat` is one of spearman, kendall, pearson, mae_points, max_abs_error_points; `goal` draws a dashed line.
    Returns a plotly Figure (plotly is imported here only).
    """
    import plotly.graph_objects as go

    if stat not in _STATS:
        raise ValueError(f"stat must be one of {list(_STATS)}, got {stat!r}")
    fig = go.Figure()
    for method in METHODS:
        rows = fidelity.summary.filter(pl.col("method") == method).sort("k")
        if rows.height == 0:
            continue
        xs = rows[x].to_list()
        ys = rows[stat].to_list()
        if method in _DRAWN:
            sd = rows[f"{stat}_sd"].fill_null(0.0).to_list()
            hi = [(y or 0) + s for y, s in zip(ys, sd)]
            lo = [(y or 0) - s for y, s in zip(ys, sd)]
            fig.add_trace(go.Scatter(x=xs + xs[::-1], y=hi + lo[::-1], fill="toself", line={"width": 0},
                                     fillcolor=_COLORS[method], opacity=0.2, hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=_NAMES[method],
                                 line={"color": _COLORS[method], "dash": "dot" if method == "stratified" else None},
                                 hovertemplate=f"{x}=%{{x}}<br>{stat}=%{{y:.3f}}<extra>{_NAMES[method]}</extra>"))
    if goal is not None:
        fig.add_hline(y=goal, line_dash="dash", line_color="#d62728", annotation_text=f"goal {goal}")
    fig.update_layout(
        title=f"Lite fidelity on {fidelity.task} ({fidelity.metric}, {len(fidelity.models)} models): {stat}",
        xaxis_title="budget (share of the full set)" if x == "budget" else "docs kept (k)",
        yaxis_title=stat, template="plotly_white", legend={"orientation": "h", "y": -0.2},
    )
    if x == "budget":
        fig.update_xaxes(tickformat=".0%")
    return fig
