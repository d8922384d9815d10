"""lm-evaluation-harness logs written by lm-eval 0.4.13 itself (tests/fixtures/realtools/lm_eval_harness, made by
scripts/realtools/lm_eval_harness_fixtures.py: a tiny local GPT-2 on two local YAML tasks, one generative and one
multiple choice), against the scores lm-eval wrote in its results JSON."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from lmms_nb.logs import load_logs, load_scores

FIXTURES = Path(__file__).parent / "fixtures" / "realtools" / "lm_eval_harness"


def test_harness_samples_give_the_harness_scores():
    df = load_logs(FIXTURES)  # lm-eval names the folder of `pretrained=./tiny-gpt2` `.__tiny-gpt2`: not hidden
    (results_file,) = FIXTURES.rglob("results_*.json")
    results = json.loads(results_file.read_text(encoding="utf-8"))
    assert set(df["source_format"]) == {"lm_eval_harness"}
    assert df.group_by("task").len().sort("task").rows() == [("tiny_mc", 5), ("tiny_qa", 6)]
    for task, metrics in results["results"].items():
        rows = df.filter(pl.col("task") == task)
        assert rows.height == results["n-samples"][task]["effective"]
        for key, value in metrics.items():
            metric, sep, filt = key.partition(",")
            if sep and not metric.endswith("_stderr"):
                assert rows.filter(pl.col("filter") == filt)[metric].mean() == pytest.approx(value), (task, metric)
    mc = df.filter(pl.col("task") == "tiny_mc").sort("doc_id")
    lines = [json.loads(x) for x in next(FIXTURES.rglob("samples_tiny_mc_*.jsonl")).read_text().splitlines()]
    # the prediction of a loglikelihood task is the choice with the highest log-likelihood
    best = [str(max(range(len(x["filtered_resps"])), key=lambda i: float(x["filtered_resps"][i][0]))) for x in lines]
    assert mc["prediction"].to_list() == best
    assert mc["acc"].to_list() == [float(p == t) for p, t in zip(best, mc["target"])]
    assert mc["input"][0] == "The sun rises in the"
    qa = df.filter(pl.col("task") == "tiny_qa").sort("doc_id")
    qa_lines = [json.loads(x) for x in next(FIXTURES.rglob("samples_tiny_qa_*.jsonl")).read_text().splitlines()]
    assert qa["prediction"].to_list() == [x["filtered_resps"][0] for x in qa_lines]
    assert qa["input"][0] == "Q: What is 2 + 2?\nA:" and qa["target"][0] == "4"
    scores = load_scores(FIXTURES)
    acc = scores.filter((pl.col("task") == "tiny_mc") & (pl.col("metric") == "acc"))
    assert acc.select("value", "stderr").row(0) == pytest.approx((0.6, results["results"]["tiny_mc"]["acc_stderr,none"]))
    assert set(scores["run_id"]) == set(df["run_id"])
