"""Score tables written by a January-2024 VLMEvalKit (commit 8382989c; tests/fixtures/realtools/vlmevalkit_2024, made by
scripts/realtools/vlmevalkit_2024_fixtures.py): MMBench's `_acc.csv` labels its rows by `split`, MM-Vet's `_score.csv`
by `Category` beside `tot` / `acc` columns. load_scores must keep every label and give the numbers VLMEvalKit wrote."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from lmms_nb.logs import load_scores

FIXTURES = Path(__file__).parent / "fixtures" / "realtools" / "vlmevalkit_2024"
REPORTED = json.loads((FIXTURES / "reported_scores.json").read_text(encoding="utf-8"))


def _value(scores: pl.DataFrame, task: str, metric: str) -> float:
    row = scores.filter((pl.col("task") == task) & (pl.col("metric") == metric))
    assert row.height == 1, (task, metric, scores.filter(pl.col("task") == task)["metric"].to_list())
    return row["value"][0]


def test_mmbench_split_rows_keep_their_labels():
    scores = load_scores(FIXTURES)
    (table,) = REPORTED["MMBench_DEV_EN"]
    assert table["split"] == "dev"
    for column, value in table.items():
        if column != "split":
            assert _value(scores, "MMBench_DEV_EN", f"{column}/dev") == pytest.approx(value), column
    assert set(scores.filter(pl.col("task") == "MMBench_DEV_EN")["model"]) == {"ScriptedVLM"}


def test_mmvet_category_rows_keep_their_labels():
    scores = load_scores(FIXTURES)
    rows = REPORTED["MMVet"]
    assert [r["Category"] for r in rows][-1] == "Overall"
    for row in rows:
        for column in ("tot", "acc"):
            assert _value(scores, "MMVet", f"{column}/{row['Category']}") == pytest.approx(row[column])
    # "Overall" is findable by its label, as compare() and users look for it
    overall = scores.filter((pl.col("task") == "MMVet") & pl.col("metric").str.ends_with("/Overall"))
    assert sorted(overall["metric"]) == ["acc/Overall", "tot/Overall"]
