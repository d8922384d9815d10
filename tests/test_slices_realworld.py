"""find_slices() on a real lmms-eval log: llava-v1.5-7b on scienceqa_img (2017 samples, ../shared/realworld).

What is checked does not come from find_slices itself: each reported slice's rule is re-applied to the raw
JSONL (read with plain polars), its rates are recomputed there on the held-out half, and the same log with
its exact_match values shuffled across docs (same accuracy, no structure) yields no significant slice.
"""

from __future__ import annotations

import html
import re

import numpy as np
import polars as pl
import pytest

import lmms_nb
from lmms_nb.analysis import find_slices

RUN = "lmms_eval/shruum__lmms-eval/results/liuhaotian__llava-v1.5-7b"
SAMPLES = "20260218_234435_samples_scienceqa_img.jsonl"


@pytest.fixture(scope="module")
def llava(realworld):
    df = lmms_nb.load_logs(realworld / RUN)
    raw = pl.read_ndjson(realworld / RUN / SAMPLES).select("doc_id", "input", "target", "exact_match")
    return df, raw


def test_real_failure_slices_hold_on_the_raw_log(llava):
    df, raw = llava
    model = df["model"].unique().item()
    found = find_slices(df, model)
    assert df.height == raw.height == 2017
    assert found.n_candidates > 100 and 0 < found.n_tested <= 50
    assert found.significant.height >= 1
    confirm = found.samples.filter(pl.col("half") == "confirm")["doc_id"].to_list()
    for row in found.significant.iter_rows(named=True):
        members = set(found.members.filter(pl.col("slice_id") == row["slice_id"])["doc_id"].to_list())
        if row["kind"] == "word":  # re-apply the rule to the raw prompts
            word = row["rule"].split('"')[1]
            has = raw.filter(pl.col("input").str.to_lowercase().str.contains(rf"(^|[^a-z']){re.escape(word)}($|[^a-z'\-])"))
            assert set(has["doc_id"].to_list()) == members, row["rule"]
        held = raw.filter(pl.col("doc_id").is_in(confirm))
        inside = held.filter(pl.col("doc_id").is_in(list(members)))
        outside = held.filter(~pl.col("doc_id").is_in(list(members)))
        assert row["n_confirm"] == inside.height
        assert row["fail_rate"] == pytest.approx(1 - inside["exact_match"].mean())
        assert row["rest_fail_rate"] == pytest.approx(1 - outside["exact_match"].mean())
        assert row["fail_rate"] > row["rest_fail_rate"] and row["p_adjusted"] <= 0.05
        assert row["ci_low"] <= row["fail_rate"] <= row["ci_high"]
        for example in row["examples"]:  # examples are real failures of the slice, as logged
            logged = raw.filter(pl.col("doc_id") == example["doc_id"]).row(0, named=True)
            assert example["doc_id"] in members and logged["exact_match"] == 0.0
            assert example["target"] == logged["target"]


def test_the_same_log_with_shuffled_scores_has_no_slice(llava):
    df, _ = llava
    model = df["model"].unique().item()
    rng = np.random.default_rng(11)
    for _ in range(3):
        shuffled = df.with_columns(pl.Series("exact_match", rng.permutation(df["exact_match"].to_numpy())))
        found = find_slices(shuffled, model)
        assert found.significant.height == 0, found.significant


def test_the_report_has_a_where_it_fails_section(llava, realworld, tmp_path):
    from lmms_nb.reporting import report

    df, _ = llava
    model = df["model"].unique().item()
    found = find_slices(df, model, runs="latest")
    out = report("compare_models", {"logs": str(realworld / RUN), "title": "llava"}, tmp_path / "llava.html")
    page = out.read_text()
    start = page.rindex("Where it fails")  # the heading, after the table of contents
    section = page[start:page.index("Lite subset fidelity", start)]
    assert f"{found.significant.height} significant slices of {found.n_tested} tested" in section
    for label in found.significant["label"].head(10).to_list():
        assert html.escape(label, quote=False) in section, label
    assert "failures in the top slice" in section
