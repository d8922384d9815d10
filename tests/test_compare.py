"""compare() on hand-made canonical tables whose answers are known: scores, pairwise tests, missing samples,
metric choice, run selection, slices, flips, bad input and the HTML summary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
import scipy.stats

import lmms_nb
from lmms_nb.analysis import Comparison, compare, flips
from lmms_nb.logs.schema import FIXED_COLUMNS


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))


def rows(
    model: str, values, *, task: str = "t", metric: str = "acc", run_id: str | None = None, start: int = 0, **columns
) -> pl.DataFrame:
    """A canonical table for one model: doc ids start.., predictions/targets derived from the doc id."""
    n = len(values)
    data = {
        "run_id": [run_id or f"{model}-run"] * n,
        "model": [model] * n,
        "task": [task] * n,
        "doc_id": list(range(start, start + n)),
        "input": [f"question {i}" for i in range(start, start + n)],
        "target": [f"answer {i}" for i in range(start, start + n)],
        "prediction": [f"{model} says {i}" for i in range(start, start + n)],
        "image_ref": [f"file:img/{i}.png" for i in range(start, start + n)],
        metric: [None if v is None else float(v) for v in values],
    }
    data.update({k: (v if isinstance(v, list) else [v] * n) for k, v in columns.items()})
    return pl.DataFrame(data)


# A right on 0-2 and B wrong; B right on 3 and A wrong; both right 4-5; both wrong 6-7.
A = [1, 1, 1, 0, 1, 1, 0, 0]
B = [0, 0, 0, 1, 1, 1, 0, 0]


def two_models() -> pl.DataFrame:
    return pl.concat([rows("A", A), rows("B", B)], how="diagonal_relaxed")


def test_mcnemar_three_vs_one_through_compare():
    cmp = compare(two_models())
    assert isinstance(cmp, Comparison) and cmp.models == ["A", "B"] and cmp.metrics == {"t": "acc"}
    assert cmp.pairwise.height == 1
    row = cmp.pairwise.row(0, named=True)
    assert (row["model_a"], row["model_b"], row["task"], row["filter"]) == ("A", "B", "t", "none")
    assert (row["n_both"], row["only_a"], row["only_b"]) == (8, 0, 0)
    assert (row["a_right_b_wrong"], row["b_right_a_wrong"]) == (3, 1)
    assert row["p_value"] == pytest.approx(0.625)
    assert row["p_holm"] == pytest.approx(0.625)  # one test in the family
    assert row["test"] == "mcnemar_exact"
    assert row["score_a"] == pytest.approx(5 / 8) and row["score_b"] == pytest.approx(3 / 8)
    assert row["diff"] == pytest.approx(2 / 8)
    assert row["ci_low"] < 2 / 8 < row["ci_high"]
    assert -1 <= row["ci_low"] and row["ci_high"] <= 1
    assert list(cmp.pairwise.columns[:14]) == [
        "model_a",
        "model_b",
        "task",
        "filter",
        "metric",
        "n_both",
        "only_a",
        "only_b",
        "a_right_b_wrong",
        "b_right_a_wrong",
        "score_a",
        "score_b",
        "diff",
        "ci_low",
    ]


def test_scores_table_counts_and_ci():
    cmp = compare(two_models())
    s = {r["model"]: r for r in cmp.scores.iter_rows(named=True)}
    assert s["A"]["n"] == 8 and s["A"]["score"] == pytest.approx(5 / 8) and s["A"]["n_unscored"] == 0
    assert s["B"]["score"] == pytest.approx(3 / 8)
    for r in s.values():
        assert r["ci_low"] <= r["score"] <= r["ci_high"]
        assert r["metric"] == "acc" and r["binary"] is True
    # The CI of a 0/1 mean is Wilson's, as scipy computes it.
    ref = scipy.stats.binomtest(5, 8).proportion_ci(method="wilson")
    assert (s["A"]["ci_low"], s["A"]["ci_high"]) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert s["A"]["ci_method"] == "wilson"


def test_slices_keep_what_a_browser_needs():
    cmp = compare(two_models())
    arbw = cmp.a_right_b_wrong("A", "B")
    assert arbw["doc_id"].to_list() == [0, 1, 2]
    assert cmp.b_right_a_wrong("A", "B")["doc_id"].to_list() == [3]
    assert cmp.both_wrong("A", "B")["doc_id"].to_list() == [6, 7]
    first = arbw.row(0, named=True)
    assert first["input"] == "question 0" and first["target"] == "answer 0"
    assert first["prediction_a"] == "A says 0" and first["prediction_b"] == "B says 0"
    assert first["image_ref"] == "file:img/0.png"
    assert (first["score_a"], first["score_b"], first["model_a"], first["model_b"]) == (1.0, 0.0, "A", "B")
    # Swapping the roles swaps the slices.
    assert cmp.a_right_b_wrong("B", "A")["doc_id"].to_list() == [3]
    with pytest.raises(ValueError, match="model\\(s\\) \\['C'\\] are not in this comparison"):
        cmp.a_right_b_wrong("A", "C")
    with pytest.raises(ValueError, match="task 'nope' is not in this comparison"):
        cmp.both_wrong("A", "B", task="nope")


def test_missing_samples_are_counted_and_listed_never_dropped():
    a = rows("A", [1, 0, 1, 1, 0, 1])  # docs 0-5
    b = rows("B", [1, 1, 0, None]).with_columns(error=pl.Series([None, None, None, "CUDA OOM"]))  # doc 3 unscored
    b_extra = rows("B", [1], start=7)  # doc 7: only B has it
    cmp = compare(pl.concat([a, b, b_extra], how="diagonal_relaxed"))
    row = cmp.pairwise.row(0, named=True)
    assert (row["n_both"], row["only_a"], row["only_b"]) == (3, 3, 1)  # shared 0-2; A only 3,4,5; B only 7
    assert (row["a_right_b_wrong"], row["b_right_a_wrong"]) == (1, 1)
    missing = cmp.missing.select("model", "doc_id", "reason", "error", "present_for").rows()
    assert missing == [
        ("A", 7, "absent", None, 1),
        ("B", 3, "unscored", "CUDA OOM", 1),
        ("B", 4, "absent", None, 1),
        ("B", 5, "absent", None, 1),
    ]
    s = {r["model"]: r for r in cmp.scores.iter_rows(named=True)}
    assert (s["B"]["n"], s["B"]["n_unscored"], s["B"]["score"]) == (4, 1, pytest.approx(3 / 4))
    # Paired statistics use the 3 shared docs only: A 2/3 (docs 0, 2), B 2/3 (docs 0, 1).
    assert row["score_a"] == pytest.approx(2 / 3) and row["score_b"] == pytest.approx(2 / 3)


def test_unpaired_models_get_no_test():
    cmp = compare(pl.concat([rows("A", [1, 0]), rows("B", [1, 1], start=10)]))
    row = cmp.pairwise.row(0, named=True)
    assert (row["n_both"], row["only_a"], row["only_b"]) == (0, 2, 2)
    assert row["p_value"] is None and row["ci_low"] is None and row["diff"] is None
    assert cmp.missing.height == 4


def test_pandas_input_gives_the_same_comparison():
    df = two_models()
    from_pandas = compare(df.to_pandas())
    from_polars = compare(df)
    assert from_pandas.pairwise.equals(from_polars.pairwise)
    assert from_pandas.scores.equals(from_polars.scores)


def test_lazy_public_exports():
    assert lmms_nb.compare is compare and lmms_nb.Comparison is Comparison


def test_several_tasks_with_their_own_metric_columns():
    df = pl.concat(
        [
            rows("A", A, task="vqa", metric="exact_match"),
            rows("B", B, task="vqa", metric="exact_match"),
            rows("A", [0.9, 0.2, 0.6], task="docvqa", metric="anls"),
            rows("B", [0.3, 0.4, 0.6], task="docvqa", metric="anls"),
        ],
        how="diagonal_relaxed",
    )
    cmp = compare(df)
    assert cmp.metrics == {"docvqa": "anls", "vqa": "exact_match"}
    assert cmp.binary == {"docvqa": False, "vqa": True}
    by_task = {r["task"]: r for r in cmp.pairwise.iter_rows(named=True)}
    assert by_task["vqa"]["test"] == "mcnemar_exact" and by_task["vqa"]["p_value"] == pytest.approx(0.625)
    cont = by_task["docvqa"]
    assert cont["test"] == "paired_t" and cont["metric"] == "anls"
    assert cont["diff"] == pytest.approx((0.9 + 0.2 + 0.6 - 0.3 - 0.4 - 0.6) / 3)
    ref = scipy.stats.ttest_rel([0.9, 0.2, 0.6], [0.3, 0.4, 0.6])
    assert cont["p_value"] == pytest.approx(ref.pvalue)
    assert cont["ci_low"] <= cont["diff"] <= cont["ci_high"]
    # Binary view of ANLS: correct at >= 0.5 -> A right on docs 0, 2; B right on doc 2.
    assert (cont["a_right_b_wrong"], cont["b_right_a_wrong"]) == (1, 0)
    assert cmp.a_right_b_wrong("A", "B", task="docvqa")["doc_id"].to_list() == [0]


def test_metric_choice_errors_list_the_candidates():
    df = two_models().with_columns(pl.col("acc").alias("f1"))
    with pytest.raises(ValueError, match=r"task 't' has several metric columns with values: \['acc', 'f1'\]"):
        compare(df)
    assert compare(df, metric="f1").metrics == {"t": "f1"}
    assert compare(df, metric={"t": "acc"}).metrics == {"t": "acc"}
    with pytest.raises(ValueError, match=r"metric 'bleu' is not a metric column; metric columns: \['acc', 'f1'\]"):
        compare(df, metric="bleu")
    with pytest.raises(ValueError, match="names task\\(s\\) \\['other'\\]"):
        compare(df, metric={"other": "acc"})


def test_model_and_task_selection_and_order():
    df = pl.concat(
        [two_models(), rows("C", [1] * 8), rows("A", [1], task="u"), rows("B", [0], task="u")], how="diagonal_relaxed"
    )
    cmp = compare(df, models=["C", "A"], tasks=["t"])
    assert cmp.models == ["C", "A"] and cmp.tasks == ["t"]
    assert cmp.scores["model"].to_list() == ["C", "A"]
    assert cmp.pairwise.select("model_a", "model_b").rows() == [("C", "A")]
    with pytest.raises(
        ValueError, match=r"model\(s\) \['Z'\] not in the sample table; models present: \['A', 'B', 'C'\]"
    ):
        compare(df, models=["A", "Z"])
    with pytest.raises(ValueError, match=r"task\(s\) \['x'\] not in the sample table"):
        compare(df, tasks=["x"])


def test_two_runs_of_one_model_are_ambiguous_unless_chosen():
    old = rows("A", [0, 0, 1, 0, 1, 1, 0, 0], run_id="A-20250101")
    new = rows("A", A, run_id="A-20250301")
    df = pl.concat([old, new, rows("B", B)])
    with pytest.raises(
        ValueError, match=r"model 'A' has rows from 2 runs for task 't' \(run ids: \['A-20250101', 'A-20250301'\]\)"
    ):
        compare(df)
    latest = compare(df, runs="latest")
    assert latest.pairwise["a_right_b_wrong"].to_list() == [3]
    assert latest.samples.filter(pl.col("model") == "A")["run_id"].unique().to_list() == ["A-20250301"]
    chosen = compare(df, runs={"A": "A-20250101"})
    assert chosen.scores.filter(pl.col("model") == "A")["score"].item() == pytest.approx(3 / 8)
    with pytest.raises(ValueError, match="runs= picks run 'nope' for model 'A'"):
        compare(df, runs={"A": "nope"})


def test_runs_on_different_tasks_are_not_ambiguous():
    df = pl.concat([rows("A", A, run_id="r1"), rows("A", [1, 0], task="u", run_id="r2"), rows("B", B)])
    cmp = compare(df)
    assert sorted(cmp.tasks) == ["t", "u"]


def test_duplicate_rows_name_the_sample():
    df = pl.concat([two_models(), rows("B", [1], start=5)])
    with pytest.raises(
        ValueError, match=r"model 'B' has 2 rows for the same sample \(task='t', doc_id=5, filter='none'\)"
    ):
        compare(df)


def test_bad_input_errors_name_the_field():
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['doc_id'\]"):
        compare(pl.DataFrame({"model": ["a"], "task": ["t"], "acc": [1.0]}))
    with pytest.raises(ValueError, match=r"doc_id must be an integer: row 1 has doc_id='x'"):
        compare(pd.DataFrame({"model": ["a", "a"], "task": ["t", "t"], "doc_id": ["1", "x"], "acc": [1.0, 0.0]}))
    with pytest.raises(ValueError, match="no metric column"):
        compare(pl.DataFrame({"model": ["a"], "task": ["t"], "doc_id": [0]}))
    with pytest.raises(TypeError, match="polars or pandas DataFrame"):
        compare([{"model": "a"}])
    with pytest.raises(ValueError, match=r"by= names column\(s\) \['nope'\]"):
        compare(two_models(), by="nope")


def test_filters_are_separate_samples_and_separate_tests():
    a = pl.concat([rows("A", A, filter="none"), rows("A", [1] * 8, filter="letter")])
    b = pl.concat([rows("B", B, filter="none"), rows("B", [1] * 8, filter="letter")])
    cmp = compare(pl.concat([a, b]))
    tests = {r["filter"]: r for r in cmp.pairwise.iter_rows(named=True)}
    assert set(tests) == {"none", "letter"}
    assert tests["none"]["p_value"] == pytest.approx(0.625) and tests["letter"]["p_value"] == 1.0
    assert cmp.scores.filter(pl.col("model") == "A").select("filter", "score").sort("filter").rows() == [
        ("letter", 1.0),
        ("none", 5 / 8),
    ]


def test_scores_by_category_and_by_any_column():
    cats = ["x", "x", "y", "y", "y", "z", "z", "z"]
    df = pl.concat([rows("A", A, category=cats), rows("B", B, category=cats)])
    cmp = compare(df)
    assert cmp.by == ["category"]
    got = {(r["model"], r["category"]): (r["n"], r["score"]) for r in cmp.scores_by_group.iter_rows(named=True)}
    assert (
        got[("A", "x")] == (2, 1.0)
        and got[("A", "y")] == (3, pytest.approx(2 / 3))
        and got[("A", "z")] == (3, pytest.approx(1 / 3))
    )
    assert got[("B", "x")] == (2, 0.0) and got[("B", "y")] == (3, pytest.approx(2 / 3))
    # by= a column outside the schema (kept as is, not mistaken for a metric)
    diff = ["easy"] * 4 + ["hard"] * 4
    cmp2 = compare(df.with_columns(difficulty=pl.Series(diff * 2)), by="difficulty")
    assert cmp2.metrics == {"t": "acc"}
    got2 = {(r["model"], r["difficulty"]): r["score"] for r in cmp2.scores_by_group.iter_rows(named=True)}
    assert got2 == {("A", "easy"): 0.75, ("A", "hard"): 0.5, ("B", "easy"): 0.25, ("B", "hard"): 0.5}


def test_three_models_holm_over_the_pairs_of_a_task():
    c = [1, 1, 1, 1, 1, 1, 1, 1]
    cmp = compare(pl.concat([rows("A", A), rows("B", B), rows("C", c)]))
    pw = {(r["model_a"], r["model_b"]): r for r in cmp.pairwise.iter_rows(named=True)}
    assert list(pw) == [("A", "B"), ("A", "C"), ("B", "C")]
    # By hand: A-B 3 vs 1; A-C 0 vs 3; B-C 0 vs 5.
    raw = {
        k: 2
        * scipy.stats.binom.cdf(
            min(r["a_right_b_wrong"], r["b_right_a_wrong"]), r["a_right_b_wrong"] + r["b_right_a_wrong"], 0.5
        )
        for k, r in pw.items()
    }
    assert raw[("A", "C")] == pytest.approx(0.25) and raw[("B", "C")] == pytest.approx(0.0625)
    assert pw[("A", "B")]["p_value"] == pytest.approx(0.625)
    # Holm: 0.0625*3 = 0.1875; 0.25*2 = 0.5; 0.625*1 -> 0.625
    assert pw[("B", "C")]["p_holm"] == pytest.approx(0.1875)
    assert pw[("A", "C")]["p_holm"] == pytest.approx(0.5)
    assert pw[("A", "B")]["p_holm"] == pytest.approx(0.625)


def test_all_fail_and_most_separating():
    # Strength: C (7/8) > A (5/8) > B (3/8).
    c = [1, 1, 1, 1, 1, 1, 1, 0]
    cmp = compare(pl.concat([rows("A", A), rows("B", B), rows("C", c)]))
    fail = cmp.all_fail()
    assert fail["doc_id"].to_list() == [7]  # doc 6: C right; doc 7: everyone wrong
    assert fail["n_models"].to_list() == [3]
    assert fail["prediction:A"].to_list() == ["A says 7"] and fail["input"].to_list() == ["question 7"]
    sep = cmp.most_separating(n=3)
    # docs 0-2: A, C right, B wrong -> (5/8 + 7/8)/2 - 3/8 = 0.375; doc 6: C right -> 7/8 - 1/2 = 0.375;
    # doc 3: B, C right, A wrong -> (3/8 + 7/8)/2 - 5/8 = 0. Ties go to the more even split (2 of 3 vs 1 of 3).
    got = {r["doc_id"]: r["separation"] for r in cmp.most_separating(n=10).iter_rows(named=True)}
    assert got == {
        0: pytest.approx(0.375),
        1: pytest.approx(0.375),
        2: pytest.approx(0.375),
        6: pytest.approx(0.375),
        3: pytest.approx(0.0),
    }
    assert sep.height == 3 and set(sep["doc_id"].to_list()) <= {0, 1, 2, 6}
    assert sep.row(0, named=True)["right"] == ["A", "C"] and sep.row(0, named=True)["wrong"] == ["B"]
    assert "prediction:B" in sep.columns and "target" in sep.columns


def test_agreement_by_hand():
    cmp = compare(two_models())
    ag = cmp.agreement().row(0, named=True)
    assert ag["n_both"] == 8 and ag["agreement"] == pytest.approx(4 / 8)  # docs 4-7 agree


def test_flips_between_two_runs_of_a_model():
    before = rows("m", [0, 1, 1, 0, 1], run_id="m-2025-01")
    after = rows("m-v2", [1, 0, 1, 1, 1, 1], run_id="m-2025-02")  # a renamed checkpoint; doc 5 is new
    df = pl.concat([before, after])
    f = flips(df, "m-2025-01", "m-2025-02")
    assert f.fixed["doc_id"].to_list() == [0, 3] and f.broken["doc_id"].to_list() == [1]
    assert (f.model_a, f.model_b) == ("m", "m-v2")
    row = f.summary.row(0, named=True)
    assert (row["n_both"], row["fixed"], row["broken"], row["net"], row["only_b"]) == (5, 2, 1, 1, 1)
    assert row["p_value"] == pytest.approx(scipy.stats.binomtest(1, 3, 0.5).pvalue)
    assert f.missing.select("run_id", "doc_id", "reason").rows() == [("m-2025-01", 5, "absent")]
    assert f.fixed.row(0, named=True)["prediction_a"] == "m says 0"
    assert f.fixed.row(0, named=True)["prediction_b"] == "m-v2 says 0"
    # the same through a Comparison built on the whole table (which itself uses one run per model)
    cmp = compare(pl.concat([df, rows("B", B)]), models=["B", "m"])
    assert cmp.flips("m-2025-01", "m-2025-02").fixed["doc_id"].to_list() == [0, 3]
    with pytest.raises(ValueError, match=r"run id\(s\) \['nope'\] not in the sample table"):
        flips(df, "m-2025-01", "nope")
    assert "2 fixed, 1 broken" in f._repr_html_()


def test_repr_html_escapes_every_name():
    evil_model = "<script>alert('m')</script>"
    evil_task = "<img src=x onerror=alert(1)>"
    df = pl.concat(
        [
            rows(evil_model, A, task=evil_task, category="<b>cat</b>"),
            rows("B", B, task=evil_task, category="<b>cat</b>"),
        ]
    )
    cmp = compare(df)
    page = cmp._repr_html_()
    assert "<script>" not in page and "<img" not in page and "<b>cat" not in page
    assert "&lt;script&gt;alert(&#x27;m&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    for fig in (
        cmp.bar_figure(),
        cmp.category_heatmap(),
        cmp.agreement_figure(),
        cmp.sample_heatmap(),
        cmp.scatter(evil_model, "B"),
    ):
        text = fig.to_json()
        assert "<script>" not in text and "<img" not in text
    # customdata keeps the raw names so a widget can filter on them
    assert cmp.bar_figure().data[0].customdata[0][0] == evil_model


def test_result_columns_are_canonical_plus_computed():
    cmp = compare(two_models())
    assert list(cmp.samples.columns[: len(FIXED_COLUMNS)]) == list(FIXED_COLUMNS)
    assert {"value", "correct"} <= set(cmp.samples.columns)
    assert cmp.scores.columns == [
        "model",
        "task",
        "filter",
        "metric",
        "binary",
        "n",
        "n_unscored",
        "score",
        "ci_low",
        "ci_high",
        "ci_method",
    ]
    assert not math.isnan(cmp.scores["ci_low"][0])
    assert np.all(cmp.scores["ci_low"].to_numpy() <= cmp.scores["ci_high"].to_numpy())


def test_selection_edge_cases_have_clear_errors():
    df = pl.concat([two_models(), rows("C", [1], task="u")])
    with pytest.raises(ValueError, match=r"model\(s\) \['C'\] have no samples in task\(s\) \['t'\]"):
        compare(df, models=["A", "C"], tasks=["t"])
    with pytest.raises(ValueError, match="the sample table has no rows"):
        compare(two_models().clear())
    with pytest.raises(ValueError, match="runs= names model 'Z', which is not compared"):
        compare(df, runs={"Z": "r"})
    single = compare(rows("A", A))
    assert single.pairwise.height == 0 and single.missing.height == 0
    assert single.scores["score"].to_list() == [pytest.approx(5 / 8)]
    assert "Comparison(models=['A']" in repr(single)
