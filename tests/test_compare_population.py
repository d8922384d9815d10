"""compare() on a synthetic population (5 models x 2 tasks, categories, gaps): every pairwise number and
Holm-adjusted p-value recomputed independently with pandas merges, scipy.stats.binomtest/ttest_rel and a
hand-written Holm; the plotly figures checked for their traces, error bars and customdata."""

from __future__ import annotations

import subprocess
import sys
from itertools import combinations

import numpy as np
import pandas as pd
import polars as pl
import pytest
import scipy.stats

from lmms_nb.analysis import compare

MODELS = ["m-weak", "m-mid", "m-mid2", "m-strong", "m-best"]
SKILL = {"m-weak": 0.35, "m-mid": 0.55, "m-mid2": 0.57, "m-strong": 0.7, "m-best": 0.8}
CATEGORIES = ["count", "color", "shape", "text"]
N_DOCS = 240


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    difficulty = rng.uniform(-0.3, 0.3, N_DOCS)
    category = np.array(CATEGORIES)[np.arange(N_DOCS) % len(CATEGORIES)]
    frames = []
    for model in MODELS:
        p = np.clip(SKILL[model] - difficulty + np.where(category == "text", -0.2, 0.05), 0.02, 0.98)
        right = (rng.random(N_DOCS) < p).astype(float)
        anls = np.clip(p + rng.normal(0, 0.2, N_DOCS), 0, 1).round(3)
        for task, metric, values in (("vqa", "exact_match", right), ("docvqa", "anls", anls)):
            keep = rng.random(N_DOCS) > 0.03  # ~3% of the samples missing per model and task
            frames.append(
                pd.DataFrame(
                    {
                        "run_id": f"{model}-20250101",
                        "model": model,
                        "task": task,
                        "doc_id": np.arange(N_DOCS)[keep],
                        "category": category[keep],
                        "input": [f"q{i}" for i in np.arange(N_DOCS)[keep]],
                        "target": "t",
                        "prediction": "p",
                        "image_ref": [f"file:{i}.png" for i in np.arange(N_DOCS)[keep]],
                        metric: values[keep],
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def holm_by_hand(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def expected_pairwise(pop: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for task, metric in (("vqa", "exact_match"), ("docvqa", "anls")):
        t = pop[pop.task == task]
        for a, b in combinations(MODELS, 2):
            ta, tb = t[t.model == a].set_index("doc_id")[metric], t[t.model == b].set_index("doc_id")[metric]
            shared = ta.index.intersection(tb.index)
            xa, xb = ta.loc[shared].to_numpy(), tb.loc[shared].to_numpy()
            ra, rb = (xa == 1, xb == 1) if metric == "exact_match" else (xa >= 0.5, xb >= 0.5)
            n_ab, n_ba = int((ra & ~rb).sum()), int((~ra & rb).sum())
            if metric == "exact_match":
                p = scipy.stats.binomtest(n_ab, n_ab + n_ba, 0.5).pvalue if n_ab + n_ba else 1.0
            else:
                p = scipy.stats.ttest_rel(xa, xb).pvalue
            rows.append(
                dict(
                    model_a=a,
                    model_b=b,
                    task=task,
                    n_both=len(shared),
                    only_a=len(ta.index.difference(tb.index)),
                    only_b=len(tb.index.difference(ta.index)),
                    a_right_b_wrong=n_ab,
                    b_right_a_wrong=n_ba,
                    diff=xa.mean() - xb.mean(),
                    p_value=p,
                )
            )
    out = pd.DataFrame(rows)
    out["p_holm"] = out.groupby("task")["p_value"].transform(
        lambda s: pd.Series(holm_by_hand(s.tolist()), index=s.index)
    )
    return out


def test_pairwise_and_holm_match_an_independent_computation(population):
    cmp = compare(population, models=MODELS)
    got = cmp.pairwise.to_pandas()
    assert len(got) == 2 * len(list(combinations(MODELS, 2)))
    exp = expected_pairwise(population)
    merged = got.merge(exp, on=["model_a", "model_b", "task"], suffixes=("", "_exp"))
    assert len(merged) == len(exp)
    for col in ("n_both", "only_a", "only_b", "a_right_b_wrong", "b_right_a_wrong"):
        assert (merged[col] == merged[f"{col}_exp"]).all(), col
    for col in ("diff", "p_value", "p_holm"):
        np.testing.assert_allclose(merged[col], merged[f"{col}_exp"], rtol=1e-9, atol=1e-12, err_msg=col)
    assert set(got.loc[got.task == "vqa", "test"]) == {"mcnemar_exact"}
    assert set(got.loc[got.task == "docvqa", "test"]) == {"paired_t"}
    assert (got.ci_low <= got["diff"]).all() and (got["diff"] <= got.ci_high).all()
    # weakest vs best must be a clear, Holm-surviving difference on both tasks
    extreme = got[(got.model_a == "m-weak") & (got.model_b == "m-best")]
    assert (extreme.p_holm < 1e-6).all() and (extreme.ci_high < 0).all()
    # missing samples: one listed row per (sample, model without it), consistent with only_a/only_b
    per_model = cmp.missing.group_by("model", "task").len()
    assert per_model["len"].sum() == cmp.missing.height > 0
    assert set(cmp.missing["reason"].unique()) == {"absent"}


def test_scores_by_task_and_category_match_pandas(population):
    cmp = compare(population, models=MODELS)
    pop = population.assign(value=population.exact_match.fillna(population.anls))
    exp = pop.groupby(["model", "task"]).value.agg(["mean", "size"])
    for r in cmp.scores.iter_rows(named=True):
        assert r["score"] == pytest.approx(exp.loc[(r["model"], r["task"]), "mean"])
        assert r["n"] == exp.loc[(r["model"], r["task"]), "size"]
        assert r["ci_low"] <= r["score"] <= r["ci_high"]
    exp_cat = pop.groupby(["model", "task", "category"]).value.mean()
    assert cmp.scores_by_group.height == len(exp_cat)
    for r in cmp.scores_by_group.iter_rows(named=True):
        assert r["score"] == pytest.approx(exp_cat.loc[(r["model"], r["task"], r["category"])])
    assert cmp.scores["model"].to_list()[:2] == ["m-weak", "m-weak"]  # model order as given


def test_bar_figure_traces_error_bars_and_customdata(population):
    cmp = compare(population, models=MODELS)
    fig = cmp.bar_figure()
    assert [t.name for t in fig.data] == MODELS and all(t.type == "bar" for t in fig.data)
    assert fig.layout.barmode == "group"
    for trace, model in zip(fig.data, MODELS, strict=True):
        s = cmp.scores.filter(pl.col("model") == model)
        assert list(trace.x) == s["task"].to_list()
        np.testing.assert_allclose(trace.y, s["score"].to_numpy())
        assert trace.error_y.symmetric is False
        np.testing.assert_allclose(trace.error_y.array, (s["ci_high"] - s["score"]).to_numpy())
        np.testing.assert_allclose(trace.error_y.arrayminus, (s["score"] - s["ci_low"]).to_numpy())
        assert [list(c) for c in trace.customdata] == [[model, t, None] for t in s["task"].to_list()]
    grouped = cmp.bar_figure(groups=True)
    assert len(grouped.data[0].x) == 2 * len(CATEGORIES)
    # tasks in sorted order, then categories in sorted order
    assert list(grouped.data[0].customdata[0]) == ["m-weak", "docvqa", "color"]
    assert grouped.data[0].x[0] == "docvqa / color"


def test_category_heatmap_values_and_customdata(population):
    cmp = compare(population, models=MODELS)
    fig = cmp.category_heatmap(task="vqa")
    heat = fig.data[0]
    assert heat.type == "heatmap" and np.asarray(heat.z).shape == (len(MODELS), len(CATEGORIES))
    assert list(heat.y) == MODELS
    pop = population[population.task == "vqa"]
    exp = pop.groupby(["model", "category"]).exact_match.mean()
    for i, model in enumerate(MODELS):
        for j, cell in enumerate(heat.customdata[i]):
            assert cell[0] == model and cell[1] == "vqa"
            assert heat.z[i][j] == pytest.approx(exp.loc[(model, cell[2])])
    both = cmp.category_heatmap()
    assert np.asarray(both.data[0].z).shape == (len(MODELS), 2 * len(CATEGORIES))
    assert {c[1] for c in both.data[0].customdata[0]} == {"vqa", "docvqa"}


def test_sample_heatmap_sorted_by_difficulty_with_keys(population):
    cmp = compare(population, models=MODELS)
    fig = cmp.sample_heatmap(task="vqa", max_samples=100)
    heat = fig.data[0]
    z = np.asarray(heat.z, dtype=float)
    assert z.shape == (len(MODELS), 100)
    easiness = np.nanmean(z, axis=0)
    assert np.all(np.diff(easiness) <= 1e-12)  # easiest first
    assert "100 of 240" in fig.layout.title.text
    # customdata leads back to the sample: its correctness in the table is the cell's value
    lookup = population[population.task == "vqa"].set_index(["model", "doc_id"]).exact_match
    for j in (0, 50, 99):
        for i, model in enumerate(MODELS):
            m, task, doc_id, filter_ = heat.customdata[i][j]
            assert (m, task, filter_) == (model, "vqa", "none")
            expected = lookup.get((model, doc_id), np.nan)
            assert (np.isnan(z[i, j]) and np.isnan(expected)) or z[i, j] == expected


def test_scatter_and_agreement(population):
    cmp = compare(population, models=MODELS)
    fig = cmp.scatter("m-weak", "m-best")
    points = fig.data[0]
    assert len(points.x) == 2 * len(CATEGORIES)
    sc = cmp.scores_by_group
    for x, y, (task, category, a, b) in zip(points.x, points.y, points.customdata, strict=True):
        assert (a, b) == ("m-weak", "m-best")
        pick = sc.filter((pl.col("task") == task) & (pl.col("category") == category))
        assert x == pytest.approx(pick.filter(pl.col("model") == a)["score"].item())
        assert y == pytest.approx(pick.filter(pl.col("model") == b)["score"].item())
    assert fig.data[1].mode == "lines"  # the diagonal

    agree = cmp.agreement_figure().data[0]
    z = np.asarray(agree.z, dtype=float)
    assert z.shape == (len(MODELS), len(MODELS)) and np.allclose(np.diag(z), 1) and np.allclose(z, z.T)
    # by hand: share of shared samples (both tasks pooled, binary view) with the same correctness
    pop = population.assign(
        right=np.where(population.task == "vqa", population.exact_match == 1, population.anls >= 0.5)
    )
    wide = pop.pivot_table(index=["task", "doc_id"], columns="model", values="right", aggfunc="first")
    for i, j in combinations(range(len(MODELS)), 2):
        both = wide[[MODELS[i], MODELS[j]]].dropna()
        assert z[i, j] == pytest.approx((both[MODELS[i]] == both[MODELS[j]]).mean())
        assert list(agree.customdata[i][j]) == [MODELS[i], MODELS[j]]


def test_core_import_does_not_load_plotly_or_ipywidgets():
    code = (
        "import sys, lmms_nb.analysis; c = lmms_nb.analysis.compare; "
        "print('plotly' in sys.modules, 'ipywidgets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
