"""compare() on real lmms-eval logs: InternVL2-2B vs Qwen2-VL-7B on the same 13 motion_analysis_bench docs.

The table comes from `lmms_nb.load_logs`; one test also builds it with a plain polars read of the JSONL
files (doc_id, target, filtered_resps[0], input and the dict metric motion_analysis_bench_acc.correct),
independently of lmms_nb's readers, and checks that both give the same comparison. The expected numbers
come from reading those files by hand: InternVL2-2B right on docs 2, 3, 4, 7, 11, 12
(6/13), Qwen2-VL-7B on 0, 2, 3, 4, 5, 7, 9, 11 (8/13); they disagree on 0, 5, 9 (Qwen right) and 12
(InternVL right).
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

import lmms_nb

from lmms_nb.analysis import compare

OUTPUT = Path("lmms_eval/shaydamoezzi__lmms-eval/output")
INTERNVL, QWEN = "OpenGVLab__InternVL2-2B", "Qwen__Qwen2-VL-7B-Instruct"  # lmms-eval's sanitized model names
LOGS = {
    INTERNVL: "smoke_test/OpenGVLab__InternVL2-2B/20251022_112322_samples_motion_analysis_bench.jsonl",
    QWEN: "smoke_test_qwen/Qwen__Qwen2-VL-7B-Instruct/20251024_233356_samples_motion_analysis_bench.jsonl",
}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))


def wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval from its textbook formula (z of a two-sided 95% level)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def read_lmms_eval_samples(path: Path, model: str) -> pl.DataFrame:
    raw = pl.read_ndjson(path)
    return raw.select(
        pl.lit(path.name.split("_samples_")[0]).alias("run_id"),
        pl.lit(model).alias("model"),
        pl.lit("motion_analysis_bench").alias("task"),
        pl.col("doc_id").cast(pl.Int64),
        pl.lit("none").alias("filter"),
        pl.col("input"),
        pl.col("target"),
        pl.col("filtered_resps").list.first().alias("prediction"),
        pl.col("motion_analysis_bench_acc").struct.field("question_type").alias("category"),
        pl.lit(str(path)).alias("source_file"),
        pl.col("motion_analysis_bench_acc").struct.field("correct").cast(pl.Float64).alias("motion_analysis_bench_acc"),
    )


@pytest.fixture()
def table(realworld: Path) -> pl.DataFrame:
    return lmms_nb.load_logs([realworld / OUTPUT / "smoke_test", realworld / OUTPUT / "smoke_test_qwen"])


@pytest.fixture()
def independent_table(realworld: Path) -> pl.DataFrame:
    return pl.concat(
        [read_lmms_eval_samples(realworld / OUTPUT / rel, model) for model, rel in LOGS.items()], how="diagonal_relaxed"
    )


def test_load_logs_and_an_independent_read_give_the_same_comparison(table, independent_table):
    ours, independent = compare(table), compare(independent_table)
    assert ours.models == independent.models == [INTERNVL, QWEN]
    assert ours.scores.select("model", "n", "score", "ci_low", "ci_high").equals(
        independent.scores.select("model", "n", "score", "ci_low", "ci_high")
    )
    cols = ["n_both", "a_right_b_wrong", "b_right_a_wrong", "p_value", "ci_low", "ci_high"]
    assert ours.pairwise.select(cols).equals(independent.pairwise.select(cols))


def test_scores_and_mcnemar_on_real_logs(table):
    cmp = compare(table, models=[INTERNVL, QWEN])
    scores = {r["model"]: r for r in cmp.scores.iter_rows(named=True)}
    assert scores[INTERNVL]["n"] == 13 and scores[QWEN]["n"] == 13
    assert round(100 * scores[INTERNVL]["score"], 2) == 46.15
    assert round(100 * scores[QWEN]["score"], 2) == 61.54
    # The CI of a 0/1 mean is the Wilson interval, by hand:
    for model, k in ((INTERNVL, 6), (QWEN, 8)):
        low, high = wilson_by_hand(k, 13)
        assert (scores[model]["ci_low"], scores[model]["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert scores[INTERNVL]["ci_method"] == "wilson"
    row = cmp.pairwise.row(0, named=True)
    assert (row["n_both"], row["only_a"], row["only_b"]) == (13, 0, 0)
    assert (row["a_right_b_wrong"], row["b_right_a_wrong"]) == (1, 3)
    assert row["p_value"] == pytest.approx(0.625) and row["test"] == "mcnemar_exact"
    assert row["diff"] == pytest.approx(6 / 13 - 8 / 13)
    assert row["ci_low"] < row["diff"] < row["ci_high"]
    assert cmp.missing.height == 0


def test_disagreement_slices_on_real_logs(table):
    cmp = compare(table)
    a, b = INTERNVL, QWEN
    assert cmp.a_right_b_wrong(a, b)["doc_id"].to_list() == [12]
    fixed = cmp.b_right_a_wrong(a, b)
    assert fixed["doc_id"].to_list() == [0, 5, 9]
    doc9 = fixed.row(2, named=True)
    assert (doc9["target"], doc9["prediction_a"], doc9["prediction_b"]) == ("A", "B", "A.")
    assert doc9["input"].startswith("While performing repetitive actions, were there any key deviations")
    assert cmp.both_wrong(a, b)["doc_id"].to_list() == [1, 6, 8, 10]
    assert cmp.all_fail()["doc_id"].to_list() == [1, 6, 8, 10]
    assert cmp.agreement().row(0, named=True)["agreement"] == pytest.approx(9 / 13)
    # every doc is a "Reasoning" question in this smoke test
    assert cmp.by == ["category"] and cmp.scores_by_group["category"].unique().to_list() == ["Reasoning"]


def test_figures_on_real_logs(table):
    cmp = compare(table)
    bar = cmp.bar_figure()
    assert [t.name for t in bar.data] == [INTERNVL, QWEN]
    assert list(bar.data[1].y) == [pytest.approx(8 / 13)]
    heat = cmp.sample_heatmap()
    assert heat.data[0].z.shape == (2, 13)
    # easiest first: the 4 docs both get right, then the 4 split ones, then the 4 both miss... (mean per column)
    col_means = heat.data[0].z.mean(axis=0)
    assert list(col_means) == sorted(col_means, reverse=True)
    assert cmp._repr_html_().count("<tr>") >= 3
