"""VLMEvalKit's own outputs (tests/fixtures/realtools/vlmevalkit, made by scripts/realtools/vlmevalkit_fixtures.py
with VLMEvalKit's inference loop and its datasets' evaluate()): lmms-nb loads them as one run per model and
dataset with the judged files merged, and `rescore(scheme="vlmevalkit")` gives the numbers VLMEvalKit reported."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest

import lmms_nb
from lmms_nb.logs import load_logs, load_scores, rescore

FIXTURES = Path(__file__).parent / "fixtures" / "realtools" / "vlmevalkit"
RUN = FIXTURES / "ScriptedVLM"
REPORTED = json.loads((FIXTURES / "reported_scores.json").read_text(encoding="utf-8"))["scores"]


@pytest.fixture(scope="module")
def loaded():
    df, problems = load_logs(FIXTURES, strict=False)
    return df, problems


def task(df: pl.DataFrame, name: str) -> pl.DataFrame:
    return df.filter(pl.col("task") == name).sort("doc_id")


def test_one_run_per_model_and_dataset_with_judged_files_merged(loaded):
    df, problems = loaded
    runs = df.select("model", "task", "run_id").unique()
    assert runs.height == len(REPORTED) == df.select("task").n_unique()
    assert set(df["model"]) == {"ScriptedVLM"}
    # the judged copies are not runs of their own: every row comes from the plain prediction file
    assert {Path(p).name for p in df["source_file"]} == {f"ScriptedVLM_{t}.xlsx" for t in REPORTED}
    ai2d = task(df, "AI2D_TEST")
    assert ai2d.height == 10
    # two judges scored AI2D: the LLM's verdicts are `hit`; VLMEvalKit's exact-matching verdicts (which rescore
    # recomputes) are set aside with a warning
    assert set(ai2d["judge"]) == {"openai"}
    openai = pl.read_excel(RUN / "ScriptedVLM_AI2D_TEST_openai_result.xlsx", engine="openpyxl").sort("index")
    assert ai2d["hit"].to_list() == openai["hit"].cast(pl.Float64).to_list()
    assert not [c for c in ai2d.columns if c.startswith("hit.")]
    warned = [e for e in problems if e.severity == "warning" and "exact matching" in e.problem]
    assert [Path(e.path).name for e in warned] == ["ScriptedVLM_AI2D_TEST_exact_matching_result.xlsx"]
    assert not [e for e in problems if e.severity == "error"]
    # MME's Yes/No verdicts from `_auxmatch.xlsx` (True/False cells)
    mme = task(df, "MME")
    aux = pl.read_excel(RUN / "ScriptedVLM_MME_auxmatch.xlsx", engine="openpyxl").sort("index")
    assert mme["score"].to_list() == [float(x) for x in aux["score"].to_list()] and set(mme["judge"]) == {"auxmatch"}
    # circular MMBench: the verdict of each question sits on its main row (index < 1e6), the rotations have none
    mmb = task(df, "MMBench_DEV_EN")
    assert mmb.filter(pl.col("doc_id") < 1_000_000)["hit"].null_count() == 0
    assert mmb.filter(pl.col("doc_id") >= 1_000_000)["hit"].null_count() == mmb.filter(
        pl.col("doc_id") >= 1_000_000).height
    # prediction files without verdicts compare once rescored
    cmp = lmms_nb.compare(rescore(df, scheme="vlmevalkit"), models=["ScriptedVLM"])
    assert set(cmp.scores["task"]) == set(REPORTED)


def _vlmevalkit_rows(path: Path) -> pl.DataFrame:
    return pl.read_excel(path, engine="openpyxl").sort("index")


def test_multiple_choice_equals_vlmevalkit(loaded):
    df, _ = loaded
    # AI2D: VLMEvalKit's exact matching leaves list predictions (['A']) and hedges unsettled and counts them 0;
    # its LLM judge settles them. lmms-nb's rules settle the lists themselves and leave the hedge to the judge.
    ai2d = rescore(task(df, "AI2D_TEST").drop("hit"), scheme="vlmevalkit")
    exact = _vlmevalkit_rows(RUN / "ScriptedVLM_AI2D_TEST_exact_matching_result.xlsx")
    settled = ~exact["log"].str.contains("no GPT-based answer matching")
    assert ai2d.filter(settled.to_list())["hit"].to_list() == exact.filter(settled)["hit"].cast(pl.Float64).to_list()
    unsettled = ai2d.filter((~settled).to_list())
    assert unsettled["prediction"].to_list() == ["['A']", "['C.']", "Both the frog and the whale could be."]
    assert unsettled["hit"].to_list() == [1.0, 1.0, None]
    assert unsettled["error"][2].startswith("needs an LLM judge")
    judged = REPORTED["AI2D_TEST"]["chatgpt-0125"][0]
    assert ai2d["hit"].fill_null(0).mean() == pytest.approx(judged["Overall"])  # 0.6, VLMEvalKit with its judge
    # with the judge's verdicts merged in, rescore keeps the judge's word where its rules cannot settle a row
    kept = rescore(task(df, "AI2D_TEST"), scheme="vlmevalkit")
    assert kept["hit"].null_count() == 0 and kept["hit"].mean() == pytest.approx(judged["Overall"])
    for category, value in judged.items():
        if category not in ("split", "Overall"):
            assert kept.filter(pl.col("category") == category)["hit"].mean() == pytest.approx(value), category

    mmmu = rescore(task(df, "MMMU_DEV_VAL").drop("hit"), scheme="vlmevalkit")  # open questions included
    assert mmmu["hit"].fill_null(0).mean() == pytest.approx(REPORTED["MMMU_DEV_VAL"]["exact_matching"][0]["Overall"])
    assert mmmu.filter(pl.col("doc_id") == 6)["hit"].item() == 1.0  # "The capital is Paris." vs the open answer
    assert mmmu["hit"].null_count() == 2  # "newton or joule" (two options named), "It is grey." (neither)

    mmb = rescore(task(df, "MMBench_DEV_EN").drop("hit"), scheme="vlmevalkit")
    main = mmb.filter(pl.col("doc_id") < 1_000_000)
    reported = REPORTED["MMBench_DEV_EN"]["exact_matching"][0]
    assert main["hit"].fill_null(0).mean() == pytest.approx(reported["Overall"])
    theirs = _vlmevalkit_rows(RUN / "ScriptedVLM_MMBench_DEV_EN_exact_matching_result.xlsx")
    settled = ~theirs["log"].str.contains("no GPT-based answer matching")
    assert main.filter(settled.to_list())["hit"].to_list() == theirs.filter(settled)["hit"].cast(pl.Float64).to_list()
    assert main.filter((~settled).to_list())["hit"].to_list() == [None]  # "I cannot tell.", other rotation right
    for category in ("image_scene", "image_style", "object_localization", "spatial_relationship"):
        assert main.filter(pl.col("category") == category)["hit"].fill_null(0).mean() == pytest.approx(
            reported[category])


def test_yes_no_equals_vlmevalkit_mme(loaded):
    df, _ = loaded
    mme = rescore(task(df, "MME").drop("score"), scheme="vlmevalkit")
    assert mme["score"].null_count() == 9  # "Yes and no.", "I am not sure.", "Nope" (3 each): left to a judge
    theirs = _vlmevalkit_rows(RUN / "ScriptedVLM_MME_auxmatch.xlsx")
    settled = (theirs["extracted"] != "Unknown").to_list()
    assert mme.filter(settled)["score"].to_list() == [float(x) for x in theirs.filter(settled)["score"]]
    # the rows VLMEvalKit's rules could not read and lmms-nb's could: list answers, ['Yes'] (right)
    lists = mme.filter([not s for s in settled]).filter(pl.col("score").is_not_null())
    assert lists.select("category", "prediction", "target", "score").rows() == [
        ("color", "['Yes']", "Yes", 1.0), ("position", "['Yes']", "Yes", 1.0),
        ("commonsense_reasoning", "['Yes']", "Yes", 1.0)]
    mme = mme.with_columns(pl.col("score").fill_null(0))  # VLMEvalKit's exact matching counts them wrong
    # VLMEvalKit's MME_rating: per category, 100 x (accuracy + accuracy+ over the two questions of each image)
    per_category = {}
    for category, rows in mme.group_by("category"):
        pairs = rows.group_by("image_ref").agg(pl.col("score").min())
        per_category[category[0]] = 100 * rows["score"].mean() + 100 * pairs["score"].mean()
    reported = dict(REPORTED["MME"]["exact_matching"][0])
    for category in ("color", "position", "commonsense_reasoning"):
        reported[category] += 50  # each list answer: accuracy +1/2 (x 100), accuracy+ unchanged (its pair is wrong)
    reported["perception"] += 100
    reported["reasoning"] += 50
    for category, value in per_category.items():
        assert value == pytest.approx(reported[category]), category
    perception = ["OCR", "artwork", "celebrity", "color", "count", "existence", "landmark", "position", "posters",
                  "scene"]
    assert sum(per_category[c] for c in perception) == pytest.approx(reported["perception"])
    assert sum(v for c, v in per_category.items() if c not in perception) == pytest.approx(reported["reasoning"])


def test_vqa_sets_equal_vlmevalkit(loaded):
    df, _ = loaded
    for name in ("TextVQA_VAL", "DocVQA_VAL", "ChartQA_TEST", "GQA_TestDev_Balanced"):
        scored = rescore(task(df, name), scheme="vlmevalkit")
        assert scored["score"].null_count() == 0
        assert 100 * scored["score"].mean() == pytest.approx(REPORTED[name]["exact_matching"][0]["Overall"]), name
    ocr = rescore(task(df, "OCRBench"), scheme="vlmevalkit")
    reported = REPORTED["OCRBench"]["exact_matching"]
    assert ocr["score"].sum() == reported["Final Score"]
    by_category = dict(ocr.group_by("category").agg(pl.col("score").sum()).rows())
    assert by_category["Doc-oriented VQA"] == reported["Doc-oriented VQA"]
    assert by_category["Handwritten Mathematical Expression Recognition"] == reported[
        "Handwritten Mathematical Expression Recognition"]
    mtvqa = rescore(task(df, "MTVQA_TEST"), scheme="vlmevalkit")
    reported = REPORTED["MTVQA_TEST"]["exact_matching"]
    assert 100 * mtvqa["score"].mean() == pytest.approx(reported["Average"])
    for language, value in dict(mtvqa.group_by("category").agg(pl.col("score").mean() * 100).rows()).items():
        assert value == pytest.approx(reported[language]), language


def test_rescore_defaults_to_vlmevalkit_for_vlmevalkit_rows(loaded):
    df, _ = loaded
    gqa = task(df, "GQA_TestDev_Balanced")
    assert rescore(gqa)["score"].to_list() == rescore(gqa, scheme="vlmevalkit")["score"].to_list()


def test_load_scores_reads_every_score_layout():
    scores = load_scores(FIXTURES)
    got = {(t, m): v for t, m, v in scores.select("task", "metric", "value").rows()}
    assert got[("MMBench_DEV_EN", "Overall/dev")] == pytest.approx(0.2)  # a `split` column labels the row
    assert got[("AI2D_TEST", "Overall/none")] == pytest.approx(REPORTED["AI2D_TEST"]["chatgpt-0125"][0]["Overall"])
    assert got[("MME", "perception")] == REPORTED["MME"]["exact_matching"][0]["perception"]
    assert got[("OCRBench", "Final Score")] == 4.0  # JSON scores
    assert got[("MTVQA_TEST", "Average")] == REPORTED["MTVQA_TEST"]["exact_matching"]["Average"]
    assert got[("DocVQA_VAL", "Overall")] == pytest.approx(REPORTED["DocVQA_VAL"]["exact_matching"][0]["Overall"])
    assert set(scores["model"]) == {"ScriptedVLM"} and set(scores["source_format"]) == {"vlmevalkit_score"}


def test_older_score_table_layouts(tmp_path):
    """Layouts of older VLMEvalKit versions (2023-2024), written the way their code wrote them: prefetch tables
    labelled by `Category` (vlmeval/inference.py prefetch_acc), MMVet-style `Category` + numbers, a pandas index
    written as an unnamed column, MathVista's `Task&Skill`."""
    import pandas as pd

    folder = tmp_path / "GPT4V"
    folder.mkdir()
    res = defaultdict(list)
    for category, tot, match, hit in [("Overall", 10, 8, 6), ("OCR", 4, 4, 3)]:
        res["Category"].append(category)
        res["tot"].append(tot)
        res["match"].append(match)
        res["hit"].append(hit)
        res["match_rate"].append(match / tot * 100)
        res["acc"].append(hit / match * 100)  # the 2023 prefetch accuracy: hit / match
    pd.DataFrame(res).to_excel(folder / "GPT4V_MMMU_DEV_VAL_prefetch.xlsx", index=False)
    pd.DataFrame({"field": ["Overall", "art"], "acc": [55.5, 60.0]}).to_csv(folder / "GPT4V_MMVet_score.csv")
    pd.DataFrame({"Task&Skill": ["Overall"], "acc": [48.1]}).to_csv(folder / "GPT4V_MathVista_MINI_gpt-4-turbo_score.csv",
                                                                   index=False)
    pd.DataFrame({"Overall": [71.0]}).to_csv(folder / "GPT4V_TextVQA_VAL_acc.csv")  # index column, one row
    scores = load_scores(folder)
    got = {(t, m): v for t, m, v in scores.select("task", "metric", "value").rows()}
    assert got[("MMMU_DEV_VAL", "acc/Overall")] == 75.0 and got[("MMMU_DEV_VAL", "hit/OCR")] == 3.0
    assert got[("MMVet", "acc/Overall")] == 55.5 and got[("MMVet", "acc/art")] == 60.0
    assert got[("MathVista_MINI", "acc/Overall")] == 48.1
    assert got[("TextVQA_VAL", "Overall")] == 71.0
    assert len(got) == scores.height == 6 * 2 - 2 + 2 + 1 + 1  # no index number became a metric
