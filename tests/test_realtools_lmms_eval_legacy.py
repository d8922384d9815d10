"""lmms-eval v0.1 / v0.2 logs written by those versions themselves (tests/fixtures/realtools/lmms_eval_legacy, made by
scripts/realtools/lmms_eval_legacy_fixtures.py: a tiny local LLaVA-1.5 through lmms-eval's `llava_hf` on two local
YAML tasks, one multiple choice and one generative with a dict metric), against the scores lmms-eval wrote in its
results.json."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from lmms_nb.logs import load_logs, load_scores

FIXTURES = Path(__file__).parent / "fixtures" / "realtools" / "lmms_eval_legacy"
VERSIONS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def _results(version: str) -> tuple[Path, dict]:
    (results_file,) = (FIXTURES / version).rglob("results.json")
    return results_file, json.loads(results_file.read_text(encoding="utf-8"))


def test_fixtures_cover_both_legacy_versions():
    assert {v.rsplit(".", 1)[0] for v in VERSIONS} == {"v0.1", "v0.2"}
    for version in VERSIONS:
        assert (FIXTURES / version / "version.txt").read_text().startswith(f"lmms-eval {version[1:]}")


@pytest.mark.parametrize("version", VERSIONS)
def test_legacy_samples_give_lmms_evals_scores(version):
    results_file, results = _results(version)
    df = load_logs(FIXTURES / version, cache=False)
    assert set(df["source_format"]) == {"lmms_eval"}
    assert set(df["model"]) == {"tiny-llava-1.5-hf"}  # from `args.model_args`, not the run folder's name
    assert df.group_by("task").len().sort("task").rows() == [("shapes_mcq", 8), ("shapes_vqa", 6)]
    checked = 0
    for task, metrics in results["results"].items():
        rows = df.filter(pl.col("task") == task)
        for key, value in metrics.items():
            metric, sep, filt = key.partition(",")
            if sep and not metric.endswith("_stderr"):
                assert rows.filter(pl.col("filter") == filt)[metric].mean() == pytest.approx(value), (task, metric)
                checked += 1
    assert checked == 3  # acc; exact_match; shape_score (a dict metric {question_id, category, score})


@pytest.mark.parametrize("version", VERSIONS)
def test_legacy_multiple_choice_prediction_is_lmms_evals_choice(version):
    df = load_logs(FIXTURES / version, cache=False)
    mcq = df.filter(pl.col("task") == "shapes_mcq").sort("doc_id")
    (log_file,) = (FIXTURES / version).rglob("shapes_mcq.json")
    logs = json.loads(log_file.read_text(encoding="utf-8"))["logs"]
    # lmms-eval scores acc with numpy's argmax over the choices' log-likelihoods (the first NaN when there is one)
    import numpy as np

    best = [str(int(np.argmax([pair[0] for pair in x["filtered_resps"]]))) for x in logs]
    assert mcq["prediction"].to_list() == best
    assert mcq["acc"].to_list() == [float(p == t) for p, t in zip(best, mcq["target"])]
    assert mcq["input"][0] == "What colour is the square?\nAnswer with the colour or word."
    assert mcq["split"][0] == "test"


@pytest.mark.parametrize("version", VERSIONS)
def test_legacy_generation_rows(version):
    df = load_logs(FIXTURES / version, cache=False)
    vqa = df.filter(pl.col("task") == "shapes_vqa").sort("doc_id")
    (log_file,) = (FIXTURES / version).rglob("shapes_vqa.json")
    logs = json.loads(log_file.read_text(encoding="utf-8"))["logs"]
    assert vqa["prediction"].to_list() == [x["filtered_resps"][0] for x in logs]
    assert vqa["target"].to_list() == [x["target"] for x in logs]
    assert vqa["category"].to_list() == [x["shape_score"]["category"] for x in logs]
    assert vqa["shape_score"].to_list() == [x["shape_score"]["score"] for x in logs]


@pytest.mark.parametrize("version", VERSIONS)
def test_legacy_results_json_scores_join_the_samples(version):
    results_file, results = _results(version)
    scores = load_scores(FIXTURES / version)
    assert set(scores["model"]) == {"tiny-llava-1.5-hf"}
    acc = scores.filter((pl.col("task") == "shapes_mcq") & (pl.col("metric") == "acc"))
    expected = results["results"]["shapes_mcq"]
    assert acc.select("value", "stderr").row(0) == pytest.approx((expected["acc,none"], expected["acc_stderr,none"]))
    samples = load_logs(FIXTURES / version, cache=False)
    assert set(scores["run_id"]) == set(samples["run_id"])
