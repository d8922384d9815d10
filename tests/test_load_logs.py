"""load_logs / scan_logs / load_scores: real logs from ../shared/realworld, and generated logs for every layout
and line variant the real files do not cover, each checked against values computed independently (with the
json/csv modules, by hand, or by lmms-nb's own runner), and every fast-path read checked against the
line-by-line reference reading."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import lmms_nb
from lmms_nb.logs import readers
from lmms_nb.logs._detect import discover, expand_results
from lmms_nb.logs._errors import LogFormatError, Problems
from lmms_nb.logs._samples import scan_fast
from lmms_nb.logs.readers import load_logs, load_scores, scan_logs
from lmms_nb.logs.schema import FIXED_COLUMNS

from conftest import REALWORLD  # noqa: E402 - the one definition of where ../shared/realworld is

LMMS = REALWORLD / "lmms_eval"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))


def write_jsonl(path: Path, records: list, *, tail: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records)
    path.write_text(text + tail, encoding="utf-8")
    return path


def write_json(path: Path, payload: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return path


def fast_and_slow(path: Path) -> tuple[pl.DataFrame, pl.DataFrame, bool]:
    """Read one file through both paths (the fast one when its layout allows it)."""
    problems = Problems(strict=True)
    context = readers._RunContext(problems)
    (item,) = [f for f in expand_results(discover(path, problems), problems)]
    meta = context.meta(item)
    used_fast = scan_fast(meta) is not None
    fast = readers._read_one(item, context, problems, fast=True)
    slow = readers._read_one(item, context, problems, fast=False)
    return fast, slow, used_fast


def assert_canonical(df: pl.DataFrame) -> None:
    assert df.columns[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    for name, dtype in FIXED_COLUMNS.items():
        assert df.schema[name] == dtype, name
    for name in df.columns[len(FIXED_COLUMNS):]:
        assert df.schema[name] == pl.Float64, name


# --------------------------------------------------------------------------- realworld


def test_realworld_scienceqa_matches_its_results_json(realworld):
    folder = LMMS / "shruum__lmms-eval/results/liuhaotian__llava-v1.5-7b"
    df = load_logs(folder)
    results = json.loads((folder / "20260218_234435_results.json").read_text())
    assert df.height == 2017 == results["n-samples"]["scienceqa_img"]["effective"]
    assert df["exact_match"].mean() == pytest.approx(results["results"]["scienceqa_img"]["exact_match,none"], abs=1e-12)
    assert round(df["exact_match"].mean(), 5) == 0.69509
    assert set(df["model"]) == {"liuhaotian__llava-v1.5-7b"}
    assert set(df["task"]) == {"scienceqa_img"} and set(df["split"]) == {"test"}
    assert set(df["source_format"]) == {"lmms_eval"} and set(df["filter"]) == {"none"}
    assert df["doc_id"].to_list() == list(range(2017))
    # values straight from the file with the json module
    lines = [json.loads(x) for x in (folder / "20260218_234435_samples_scienceqa_img.jsonl").read_text().splitlines()]
    assert df["prediction"].to_list() == [x["filtered_resps"][0] for x in lines]
    assert df["raw_response"].to_list() == df["prediction"].to_list()  # no `resps`: equal to filtered_resps
    assert df["input"].to_list() == [x["input"] for x in lines]
    assert df["target"].to_list() == [x["target"] for x in lines]
    assert_canonical(df)


def test_realworld_motion_bench_two_models_disagree_on_four(realworld):
    out = LMMS / "shaydamoezzi__lmms-eval/output"
    df = load_logs([out / "smoke_test", out / "smoke_test_qwen"])
    acc = {m: round(v * 100, 2) for m, v in df.group_by("model").agg(pl.col("motion_analysis_bench_acc").mean()).rows()}
    assert acc == {"OpenGVLab__InternVL2-2B": 46.15, "Qwen__Qwen2-VL-7B-Instruct": 61.54}
    for folder, model in [("smoke_test", "OpenGVLab__InternVL2-2B"), ("smoke_test_qwen", "Qwen__Qwen2-VL-7B-Instruct")]:
        (results_file,) = (out / folder).rglob("*_results.json")
        overall = json.loads(results_file.read_text())["results"]["motion_analysis_bench"]["motion_analysis_bench_acc,none"]
        assert acc[model] == overall["overall_acc"]
    wide = df.pivot(on="model", index="doc_id", values="motion_analysis_bench_acc")
    disagree = wide.filter(pl.col("OpenGVLab__InternVL2-2B") != pl.col("Qwen__Qwen2-VL-7B-Instruct"))
    assert disagree.height == 4
    # the dict metric's `correct` flag, read independently
    qwen_lines = [json.loads(x) for x in next((out / "smoke_test_qwen").rglob("*.jsonl")).read_text().splitlines()]
    qwen = df.filter(pl.col("model") == "Qwen__Qwen2-VL-7B-Instruct").sort("doc_id")
    assert qwen["motion_analysis_bench_acc"].to_list() == [float(x["motion_analysis_bench_acc"]["correct"]) for x in qwen_lines]
    assert set(qwen["category"]) == {"Reasoning"}  # from the dict's question_type
    assert qwen.filter(pl.col("doc_id") == 11)["prediction"].item() == "E. C stirring the food in the pot."


def test_realworld_mme_dict_metric_token_counts_and_media(realworld):
    folder = LMMS / "michalszczepanski91__lmms-eval/jetson/results-thor"
    df = load_logs(folder)
    assert set(df["model"]) == {"Qwen__Qwen2.5-VL-3B-Instruct", "Qwen__Qwen2.5-VL-7B-Instruct"}  # from the HF cache path
    assert "mme_cognition_score" in df.columns  # metric names kept as written
    small = df.filter(pl.col("model") == "Qwen__Qwen2.5-VL-3B-Instruct").sort("doc_id")
    lines = [json.loads(x) for x in next((folder / "Qwen2.5-VL-3B-Instruct").rglob("*.jsonl")).read_text().splitlines()]
    assert small["prediction"].to_list() == [x["filtered_resps"] for x in lines]  # a bare string in this version
    assert small["output_tokens"].to_list() == [x["token_counts"][0]["output_tokens"] for x in lines]
    assert small["latency_s"].to_list() == [x["token_counts"][0]["generation_seconds"] for x in lines]
    assert small["image_ref"].to_list() == [f"file:{x['input_media'][0]}" for x in lines]
    assert set(small["category"]) == {"code_reasoning"}
    assert small["mme_cognition_score"].to_list() == [x["mme_cognition_score"]["score"] for x in lines]
    # MME cognition score = 100 x per-category (accuracy + accuracy+): 162.5 in its results.json
    per_image = small.group_by("image_ref").agg(pl.col("mme_cognition_score").min().alias("both"))
    score = 100 * (small["mme_cognition_score"].mean() + per_image["both"].mean())
    results = json.loads(next((folder / "Qwen2.5-VL-3B-Instruct").rglob("*_results.json")).read_text())
    assert score == pytest.approx(results["results"]["mme"]["mme_cognition_score,none"])


def test_realworld_fork_with_doc_filter_key_and_judge_dict(realworld):
    folder = LMMS / "cgl-MM-Dev__lmms-eval/test_lmm_eval"
    df = load_logs(folder)  # dataset_test.jsonl (a dataset, not a log) is skipped
    assert set(df["source_file"]) == {str(p) for p in folder.rglob("*_samples_*.jsonl")}
    judged = dict(df.select("model", "LLM_JUDGE").rows())
    for results_file in folder.rglob("*_results.json"):
        payload = json.loads(results_file.read_text())
        assert judged[payload["model_name_sanitized"]] == payload["results"]["task1"]["LLM_JUDGE,none"]["LLM_JUDGE"]
    assert sorted(judged.values()) == [0.0, 0.0, 1.0, 1.0]  # the four models disagree
    assert set(df["filter"]) == {"none"} and set(df["split"]) == {"train"}
    assert df["input"].str.starts_with("<video>You are an expert").all()  # from the doc's chat messages
    assert "api_key" not in " ".join(df["model"])  # model_args are read for the name only


def test_every_realworld_file_loads(realworld):
    df = load_logs(realworld)
    assert_canonical(df)
    samples_files = {str(p) for p in realworld.rglob("*_samples_*.jsonl")}
    assert set(df["source_file"]) == samples_files
    counts = dict(df.group_by("source_file").len().rows())
    for path in samples_files:
        assert counts[path] == sum(1 for line in Path(path).read_text().splitlines() if line.strip())
    scores = load_scores(realworld)
    results_files = {str(p) for p in realworld.rglob("*_results.json")}
    vlmeval_files = {str(p) for p in realworld.rglob("*_score.csv")}
    assert set(scores["source_file"]) == results_files | vlmeval_files
    # a VLMEvalKit score table, compared with the csv module
    path = realworld / "vlmevalkit/zenjieli__VLMEvalKit/outputs/InternVL2-2B/InternVL2-2B_MME_score.csv"
    (row,) = list(csv.DictReader(path.open()))
    mine = scores.filter(pl.col("source_file") == str(path))
    assert set(mine["model"]) == {"InternVL2-2B"} and set(mine["task"]) == {"MME"}
    assert set(mine["source_format"]) == {"vlmevalkit_score"}
    assert dict(mine.select("metric", "value").rows()) == {k: float(v) for k, v in row.items()}
    assert dict(mine.select("metric", "value").rows())["perception"] == pytest.approx(1443.74, abs=0.01)
    # the dict-valued aggregate of the results file that has no samples file
    bias = scores.filter(pl.col("task") == "vlms_are_biased")
    assert dict(bias.select("metric", "value").rows())["accuracy_by_topic.Flags"] == 0.2375
    assert bias.filter(pl.col("metric") == "accuracy")["stderr"].item() == pytest.approx(0.007505707110995228)
    sqa = scores.filter((pl.col("task") == "scienceqa_img") & (pl.col("metric") == "exact_match"))
    assert sqa["value"].item() == pytest.approx(df.filter(pl.col("task") == "scienceqa_img")["exact_match"].mean())
    assert sqa["run_id"].item() in set(df["run_id"])  # scores and samples join on run_id


def test_realworld_fast_path_equals_reference_reading(realworld):
    used = 0
    for path in sorted(realworld.rglob("*_samples_*.jsonl")):
        fast, slow, used_fast = fast_and_slow(path)
        assert_frame_equal(fast, slow)
        used += used_fast
    assert used >= 7  # the v0.6+ files take the polars path


def test_explicit_non_logs_are_refused(realworld):
    table = realworld / "published/lmms_eval_paper_2407.12772v2_table1.csv"
    with pytest.raises(LogFormatError, match="unknown log format"):
        load_logs(table)
    score = next(realworld.rglob("*_MME_score.csv"))
    with pytest.raises(LogFormatError, match="load_scores") as info:
        load_logs(score)
    assert info.value.path == str(score) and info.value.line is None


def test_explicit_results_file_loads_its_run(realworld):
    results = LMMS / "shruum__lmms-eval/results/liuhaotian__llava-v1.5-7b/20260218_234435_results.json"
    assert load_logs(results).height == 2017
    lonely = next((LMMS / "shruum__lmms-eval/results/results_bias").rglob("*_results.json"))
    df, errors = load_logs(lonely, strict=False)
    assert df.height == 0 and [e.severity for e in errors] == ["warning"]
    assert load_logs(lonely).height == 0  # a warning, not an error


# --------------------------------------------------------------------------- generated layouts


def _results(task: str, *, model_args: str = "pretrained=org/model-7b", split: str = "test",
             filters: list[str] | None = None, sanitized: str | None = "org__model-7b", extra: dict | None = None) -> dict:
    config = {"task": task, "test_split": split}
    if filters:
        config["filter_list"] = [{"name": f, "filter": [{"function": "take_first"}]} for f in filters]
    payload = {"results": {task: {"alias": task}}, "configs": {task: config},
               "config": {"model": "llava", "model_args": model_args}}
    if sanitized:
        payload["model_name_sanitized"] = sanitized
    payload.update(extra or {})
    return payload


def test_lmms_eval_v01_layout(tmp_path):
    run = tmp_path / "llava" / "model_args_a1b2c3" / "0315_1200_llava_mme"
    write_json(run / "results.json", {"results": {"mme": {}}, "config": {"model": "llava", "model_args": "pretrained=liuhaotian/llava-v1.5-7b"}})
    logs = [
        {"doc_id": 1, "doc": {"question": "Is it red?", "category": "color"}, "target": "Yes",
         "arguments": ["Is it red?\nAnswer yes or no.", {"max_new_tokens": 16}, "<function mme_doc_to_visual at 0x7f>", 1, "mme", "test"],
         "resps": [["Yes, it is."]], "filtered_resps": ["Yes"], "mme_percetion_score": {"question_id": "a.png", "category": "color", "score": 1}},
        {"doc_id": 0, "doc": {"question": "Is it blue?", "category": "color"}, "target": 2,
         "arguments": ["Is it blue?\nAnswer yes or no.", {"max_new_tokens": 16}, "<function f>", 0, "mme", "test"],
         "resps": [["No"]], "filtered_resps": ["No"], "mme_percetion_score": {"question_id": "b.png", "category": "color", "score": 0}},
    ]
    write_json(run / "mme.json", {"args": {"model": "llava", "model_args": "pretrained=liuhaotian/llava-v1.5-7b", "limit": None},
                                  "model_configs": {"task": "mme", "test_split": "test"}, "logs": logs})
    df = load_logs(tmp_path)
    assert_canonical(df)
    assert df.select("model", "task", "doc_id", "split", "target", "prediction", "raw_response", "input", "category").rows() == [
        ("liuhaotian__llava-v1.5-7b", "mme", 0, "test", "2", "No", "No", "Is it blue?\nAnswer yes or no.", "color"),
        ("liuhaotian__llava-v1.5-7b", "mme", 1, "test", "Yes", "Yes", "Yes, it is.", "Is it red?\nAnswer yes or no.", "color"),
    ]
    assert df["mme_percetion_score"].to_list() == [0.0, 1.0]  # old spelling kept as written
    assert set(df["run_id"]) == {"model_args_a1b2c3/0315_1200_llava_mme"}
    assert set(df["source_format"]) == {"lmms_eval"}


def test_lmms_eval_v020_layout_model_from_folder(tmp_path):
    run = tmp_path / "0402_0930_mysuffix_llava_model_args_0f0f0f"
    write_json(run / "results.json", {"results": {"pope": {}}})
    logs = [{"doc_id": i, "doc": {"question": f"q{i}"}, "target": "yes", "arguments": [f"prompt {i}", {}],
             "resps": [["yes"]], "filtered_resps": ["yes"], "pope_accuracy": {"question_id": i, "score": 1.0, "prediction": "yes"}}
            for i in range(3)]
    write_json(run / "pope.json", {"args": {"model": "llava"}, "model_configs": {"task": "pope"}, "logs": logs, "time": "0402_0930"})
    df = load_logs(tmp_path)
    assert set(df["model"]) == {"mysuffix_llava"}  # `<MMDD_HHMM>_<suffix>_<model>_model_args_<hash>` fallback
    assert df["pope_accuracy"].to_list() == [1.0, 1.0, 1.0]
    assert df["input"].to_list() == ["prompt 0", "prompt 1", "prompt 2"]


def test_lmms_eval_v024_arguments_are_generation_kwargs_only(tmp_path):
    folder = tmp_path / "org__model-7b"
    write_json(folder / "20240610_101010_results.json", _results("ocrbench"))
    lines = [{"doc_id": i, "doc": {"question": f"What is written? ({i})", "question_type": "Text Recognition"},
              "target": "['STOP', 'stop']", "arguments": [{"max_new_tokens": 128, "temperature": 0}],
              "resps": [[f"stop {i}"]], "filtered_resps": [f"stop {i}"], "doc_hash": "x",
              "ocrbench_accuracy": {"question_type": "Text Recognition", "score": i % 2}}
             for i in range(4)]
    path = write_jsonl(folder / "20240610_101010_samples_ocrbench.jsonl", lines)
    df = load_logs(tmp_path)
    assert df["input"].to_list() == [f"What is written? ({i})" for i in range(4)]  # from the doc
    assert df["ocrbench_accuracy"].to_list() == [0.0, 1.0, 0.0, 1.0]
    assert set(df["category"]) == {"Text Recognition"} and set(df["split"]) == {"test"}
    assert set(df["model"]) == {"org__model-7b"} and set(df["run_id"]) == {"org__model-7b/20240610_101010"}
    fast, slow, used_fast = fast_and_slow(path)
    assert not used_fast and fast.equals(slow)


@pytest.mark.parametrize("variant", ["v04_resps_nested", "v07_bare_string", "resps_flat"])
def test_lmms_eval_v04_plus_line_variants(tmp_path, variant):
    folder = tmp_path / "org__model-7b"
    write_json(folder / "20250101_000000_results.json", _results("textvqa", split="validation"))
    raws = ["The answer is 4", "cat", "  dog", "7"]
    preds = ["4", "cat", "dog", "7"]
    lines = []
    for i, (raw, pred) in enumerate(zip(raws, preds)):
        line = {"doc_id": i, "target": json.dumps(["4", "four"]) if i == 0 else preds[i], "doc_hash": "h", "prompt_hash": "p"}
        if variant == "v07_bare_string":
            line["filtered_resps"] = pred
            if raw != pred:
                line["resps"] = [raw]
        elif variant == "resps_flat":
            line["filtered_resps"] = [pred]
            if raw != pred:
                line["resps"] = [raw]
        else:
            line["filtered_resps"] = [pred]
            if raw != pred:
                line["resps"] = [[raw]]
        line["exact_match"] = 1.0
        line["input"] = f"Question {i}\nAnswer briefly."
        lines.append(line)
    path = write_jsonl(folder / "20250101_000000_samples_textvqa.jsonl", lines)
    df = load_logs(path)
    assert df["prediction"].to_list() == preds
    assert df["raw_response"].to_list() == raws
    assert df["input"].to_list() == [f"Question {i}\nAnswer briefly." for i in range(4)]
    assert df["target"][0] == '["4", "four"]'
    assert set(df["split"]) == {"validation"}
    fast, slow, used_fast = fast_and_slow(path)
    assert used_fast
    assert_frame_equal(fast, slow)


def test_several_filters_named_and_unnamed(tmp_path):
    folder = tmp_path / "org__model-7b"
    # newer lmms-eval names the filter on each line
    named = [{"doc_id": d, "filter": f, "target": "B", "filtered_resps": [p], "resps": [["(B) because"]], "exact_match": float(p == "B")}
             for d in range(3) for f, p in [("strict-match", "B" if d else ""), ("flexible-extract", "B")]]
    write_json(folder / "20250102_000000_results.json", _results("mmmu", filters=["strict-match", "flexible-extract"]))
    path = write_jsonl(folder / "20250102_000000_samples_mmmu.jsonl", named)
    df = load_logs(path)
    assert df.height == 6 and set(df["filter"]) == {"strict-match", "flexible-extract"}
    means = dict(df.group_by("filter").agg(pl.col("exact_match").mean()).rows())
    assert means == {"strict-match": pytest.approx(2 / 3), "flexible-extract": 1.0}
    assert_frame_equal(*fast_and_slow(path)[:2])
    # lmms-eval <= v0.3 wrote one line per doc and filter without naming it, in filter_list order
    unnamed = [{k: v for k, v in line.items() if k != "filter"} for line in named]
    write_json(folder / "20250103_000000_results.json", _results("mmmu", filters=["strict-match", "flexible-extract"]))
    path2 = write_jsonl(folder / "20250103_000000_samples_mmmu.jsonl", unnamed)
    df2 = load_logs(path2)
    assert df2.select("doc_id", "filter", "prediction").rows() == df.select("doc_id", "filter", "prediction").rows()


def test_doc_ids_out_of_order_bypass_and_livebench(tmp_path):
    folder = tmp_path / "org__model-7b"
    order = [1, 3, 5, 0, 2, 4]  # two GPUs: odd then even doc_ids
    lines = [{"doc_id": d, "target": "", "filtered_resps": [f"answer {d}"], "bypass": None,
              "gpt4_eval_score": {"rating": d % 3 + 5, "explanation": "ok", "category": "Basic Understanding" if d < 3 else "Reasoning"},
              "input": f"Describe {d}"} for d in order]
    path = write_jsonl(folder / "20250104_000000_samples_live_bench.jsonl", lines)
    df = load_logs(path)
    assert df["doc_id"].to_list() == [0, 1, 2, 3, 4, 5]
    assert "bypass" not in df.columns  # predict-only runs have no metric
    assert df["gpt4_eval_score"].to_list() == [5.0, 6.0, 7.0, 5.0, 6.0, 7.0]
    assert df["category"].to_list() == ["Basic Understanding"] * 3 + ["Reasoning"] * 3
    assert df["prediction"].to_list() == [f"answer {d}" for d in range(6)]
    fast, slow, used_fast = fast_and_slow(path)
    assert used_fast
    assert_frame_equal(fast, slow)


def test_base64_media_stays_out_of_the_table(tmp_path):
    import base64

    blob = base64.b64encode(os.urandom(3000)).decode()
    lines = [{"doc_id": i, "target": "A", "filtered_resps": "A", "input_media": [blob], "acc": 1.0} for i in range(2)]
    lines.append({"doc_id": 2, "target": "A", "filtered_resps": "B", "input_media": ["data:image/png;base64," + blob[:40]], "acc": 0.0})
    path = write_jsonl(tmp_path / "m" / "20250105_000000_samples_ai2d.jsonl", lines)
    df = load_logs(path)
    assert df["image_ref"].to_list() == [f"b64:{path}#1", f"b64:{path}#2", f"b64:{path}#3"]
    assert not any(blob[:100] in str(v) for row in df.rows() for v in row)
    # the reference points at the line that holds the image
    line = path.read_text().splitlines()[int(df["image_ref"][1].rsplit("#", 1)[1]) - 1]
    assert json.loads(line)["input_media"][0] == blob
    assert_frame_equal(*fast_and_slow(path)[:2])


def test_backslashes_and_control_characters_survive_the_fast_path(tmp_path):
    # polars' list-to-text coercion does not escape backslashes: responses are read as typed lists, and a
    # media path with a backslash sends load_logs to the reference reading
    answers = ["\\frac{1}{2}", "tab\there", "quote \" and \\n", "\x1f"]
    lines = [{"doc_id": i, "target": "x", "filtered_resps": [a], "resps": [[a + " raw"]],
              "input_media": ["C:\\data\\new.png" if i == 1 else f"img/{i}.png"], "acc": 0.0} for i, a in enumerate(answers)]
    path = write_jsonl(tmp_path / "m" / "20250106_000000_samples_math.jsonl", lines)
    df = load_logs(path)
    assert df["prediction"].to_list() == answers
    assert df["raw_response"].to_list() == [a + " raw" for a in answers]
    assert df["image_ref"].to_list() == ["file:img/0.png", "file:C:\\data\\new.png", "file:img/2.png", "file:img/3.png"]
    assert scan_logs(path, cache=False).collect()["image_ref"].to_list() == [
        "file:img/0.png", None, "file:img/2.png", "file:img/3.png"]
    # once load_logs has parsed (and cached) the file, scan_logs reads its exact rows
    assert scan_logs(path).collect()["image_ref"].to_list() == df["image_ref"].to_list()
    fast, slow, used_fast = fast_and_slow(path)
    assert used_fast
    assert_frame_equal(fast, slow)


def test_lm_evaluation_harness(tmp_path):
    folder = tmp_path / "EleutherAI__pythia-70m"
    date = "2024-05-01T12-30-45.123456"
    write_json(folder / f"results_{date}.json", {
        "results": {"arc_easy": {"alias": "arc_easy", "acc,none": 0.5, "acc_stderr,none": 0.25}},
        "configs": {"arc_easy": {"task": "arc_easy", "test_split": "test", "output_type": "multiple_choice"}},
        "config": {"model": "hf", "model_args": "pretrained=EleutherAI/pythia-70m"},
        "model_name": "EleutherAI/pythia-70m", "model_name_sanitized": "EleutherAI__pythia-70m",
    })
    mc = [
        {"doc_id": 0, "doc": {"question": "Which is a fruit?"}, "target": 2,
         "arguments": {"gen_args_0": {"arg_0": "Question: Which is a fruit?\nAnswer:", "arg_1": " rock"},
                       "gen_args_1": {"arg_0": "Question: Which is a fruit?\nAnswer:", "arg_1": " apple"}},
         "resps": [[["-9.5", "False"]], [["-1.25", "True"]], [["-3.0", "False"]]],
         "filtered_resps": [["-9.5", "False"], ["-1.25", "True"], ["-3.0", "False"]],
         "filter": "none", "metrics": ["acc"], "doc_hash": "a", "prompt_hash": "b", "target_hash": "c", "acc": 0.0},
        {"doc_id": 1, "doc": {"question": "Which is blue?"}, "target": 0,
         "arguments": {"gen_args_0": {"arg_0": "Question: Which is blue?\nAnswer:", "arg_1": " sky"}},
         "resps": [[[-0.5, False]], [[-2.0, False]]], "filtered_resps": [[-0.5, False], [-2.0, False]],
         "filter": "none", "metrics": ["acc"], "doc_hash": "a", "prompt_hash": "b", "target_hash": "c", "acc": 1.0},
    ]
    write_jsonl(folder / f"samples_arc_easy_{date}.jsonl", mc)
    gen = [{"doc_id": 0, "doc": {}, "target": "18", "arguments": {"gen_args_0": {"arg_0": "Q: 9+9?\nA:", "arg_1": {"until": ["\n"]}}},
            "resps": [["The answer is 18"]], "filtered_resps": ["18"], "filter": "flexible-extract", "metrics": ["exact_match"], "exact_match": 1.0}]
    write_jsonl(folder / f"samples_gsm8k_{date}.jsonl", gen)
    df = load_logs(tmp_path)
    assert set(df["source_format"]) == {"lm_eval_harness"}
    assert set(df["model"]) == {"EleutherAI__pythia-70m"}
    arc = df.filter(pl.col("task") == "arc_easy")
    assert arc["prediction"].to_list() == ["1", "0"]  # argmax of the log-likelihoods
    assert arc["target"].to_list() == ["2", "0"]
    assert arc["acc"].to_list() == [0.0, 1.0]
    assert arc["input"][0] == "Question: Which is a fruit?\nAnswer:" and set(arc["split"]) == {"test"}
    gsm = df.filter(pl.col("task") == "gsm8k")
    assert gsm.select("prediction", "raw_response", "filter", "input").row(0) == ("18", "The answer is 18", "flexible-extract", "Q: 9+9?\nA:")
    scores = load_scores(tmp_path)
    assert scores.select("model", "task", "metric", "value", "stderr", "source_format").rows() == [
        ("EleutherAI__pythia-70m", "arc_easy", "acc", 0.5, 0.25, "lm_eval_harness")]
    assert scores["run_id"].item() == arc["run_id"][0]


def test_vlmevalkit_prediction_tables(tmp_path):
    import pandas as pd

    folder = tmp_path / "outputs" / "MiniCPM-V-2_6"
    rows = {"index": [3, 1, 2], "question": ["Q3", "Q1", "Q2"], "A": ["x", "y", "z"], "answer": ["A", "B", "C"],
            "category": ["ocr", "count", "ocr"], "prediction": ["A", "C", "C. z"], "hit": [1, 0, 1]}
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_excel(folder / "MiniCPM-V-2_6_MMBench_DEV_EN.xlsx", index=False)
    tsv = dict(rows, image=["aGVsbG8=" * 100] * 3, split=["dev"] * 3)
    tsv.pop("hit")
    pd.DataFrame(tsv).to_csv(folder / "MiniCPM-V-2_6_SEEDBench_IMG.tsv", sep="\t", index=False)
    pd.DataFrame({"index": [0, 1], "question": ["a", "b"], "answer": ["Yes", "No"], "prediction": ["yes", "no"],
                  "score": ["True", "False"]}).to_csv(folder / "MiniCPM-V-2_6_HallusionBench.csv", index=False)
    df = load_logs(tmp_path)
    assert_canonical(df)
    assert set(df["source_format"]) == {"vlmevalkit"} and set(df["model"]) == {"MiniCPM-V-2_6"}
    mmb = df.filter(pl.col("task") == "MMBench_DEV_EN")
    assert mmb.select("doc_id", "input", "target", "prediction", "category", "hit").rows() == [
        (1, "Q1", "B", "C", "count", 0.0), (2, "Q2", "C", "C. z", "ocr", 1.0), (3, "Q3", "A", "A", "ocr", 1.0)]
    seed = df.filter(pl.col("task") == "SEEDBench_IMG")
    tsv_path = folder / "MiniCPM-V-2_6_SEEDBench_IMG.tsv"
    # data row r sits on line r + 1 of the TSV (after the header); rows are sorted by index
    assert seed.select("doc_id", "image_ref", "split").rows() == [
        (1, f"b64:{tsv_path}#3", "dev"), (2, f"b64:{tsv_path}#4", "dev"), (3, f"b64:{tsv_path}#2", "dev")]
    assert df.filter(pl.col("task") == "HallusionBench")["score"].to_list() == [1.0, 0.0]


def test_our_own_runs_through_the_runner(tmp_path):
    """lmms-nb's runner writes real logs; load_logs must give back the table the runner itself built."""
    from _toy import toy_task

    from lmms_nb.models.baselines import FunctionModel

    answers = ["red", "Green", "blue", "maybe blue", "red", "green"]
    model = FunctionModel(lambda images, prompt: answers[int(prompt[1:prompt.index(":")]) % len(answers)], name="org/flaky")
    run = lmms_nb.evaluate(model, toy_task(12, two_filters=True), output_dir=tmp_path / "out", progress=False)
    df = lmms_nb.load_logs(tmp_path / "out")
    assert set(df["source_format"]) == {"lmms_nb"} and df.height == 24
    key = ["task", "doc_id", "filter"]
    mine = df.sort(key)
    theirs = run.samples.sort(key)
    for column in ["run_id", "model", "doc_id", "filter", "split", "input", "target", "prediction", "raw_response",
                   "category", "image_ref", "error", "output_tokens", "exact_match"]:
        assert mine[column].to_list() == theirs[column].to_list(), column
    score = df.filter(pl.col("filter") == "none")["exact_match"].mean()
    assert score == pytest.approx(run.score("toy_colour", "exact_match", "none"))
    scores = load_scores(tmp_path / "out")
    assert set(scores["source_format"]) == {"lmms_nb"} and set(scores["run_id"]) == {run.run_id}
    # an interrupted run leaves a torn last line: tolerated silently when strict, reported as a warning when lenient
    samples_file = run.sample_files["toy_colour"]
    with open(samples_file, "a", encoding="utf-8") as fh:
        fh.write('{"doc_id": 12, "target": "re')
    assert load_logs(tmp_path / "out").height == 24
    df2, errors = load_logs(tmp_path / "out", strict=False)
    assert df2.height == 24
    assert [(e.severity, e.line) for e in errors] == [("warning", 25)]
    assert str(errors[0]).startswith(f"{samples_file}:25: truncated last line")


# --------------------------------------------------------------------------- bad input


def _good(n: int) -> list[dict]:
    return [{"doc_id": i, "target": "A", "filtered_resps": ["A"], "exact_match": 1.0, "input": f"q{i}"} for i in range(n)]


def test_truncated_last_line_of_lmms_eval_is_an_error(tmp_path):
    lines = [json.dumps(x) for x in _good(3)] + ['{"doc_id": 3, "tar']
    path = write_jsonl(tmp_path / "m" / "20250101_000000_samples_t.jsonl", lines, tail="")
    with pytest.raises(LogFormatError) as info:
        load_logs(path)
    err = info.value
    assert (err.path, err.line) == (str(path), 4)
    assert str(err).startswith(f"{path}:4: truncated last line") and "expected one JSON object per line" in str(err)
    df, errors = load_logs(path, strict=False)
    assert df["doc_id"].to_list() == [0, 1, 2] and [e.line for e in errors] == [4]


@pytest.mark.parametrize(
    "content, line, message, good_rows",
    [
        (b"", None, "empty file", 0),
        (b"\n \n", None, "empty file", 0),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", 1, "not UTF-8 text", 0),
        (b'{"doc_id": 0, "filtered_resps": ["A"]}\n[1, 2, 3]\n', 2, "a JSON list instead of an object", 1),
        (b'{"doc_id": 0, "filtered_resps": ["A"]}\n{"doc_id": "seven", "filtered_resps": ["A"]}\n', 2, 'doc_id is "seven"', 1),
        (b'{"doc_id": 0, "filtered_resps": ["A"]}\n{"doc_id": 1.5, "filtered_resps": ["A"]}\n', 2, "doc_id is 1.5", 1),
        (b'{"doc_id": 0, "filtered_resps": ["A"]}\n{"filtered_resps": ["A"]}\n', 2, "no doc_id", 1),
        (b'{"doc_id": 0, "filtered_resps": ["A"]}\n{"doc_id": 0, "filtered_resps": ["B"]}\n', 2,
         "duplicate doc_id 0 (filter 'none'), first at line 1", 1),
        (b'{"doc_id": 0, "filtered_resps": ["A"]}\n{"doc_id": 1, "filtered_resps": ["B"]\n{"doc_id": 2}\n', 2, "invalid JSON", 2),
    ],
)
def test_bad_samples_files_name_file_and_line(tmp_path, content, line, message, good_rows):
    path = tmp_path / "m" / "20250101_000000_samples_t.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(LogFormatError) as info:
        load_logs(path)
    assert info.value.path == str(path) and info.value.line == line
    assert message in info.value.problem
    assert str(info.value).startswith(f"{path}:{line}: " if line else f"{path}: ")
    df, errors = load_logs(path, strict=False)
    assert errors and all(isinstance(e, LogFormatError) and e.severity == "error" for e in errors)
    assert df.height == good_rows


def test_unknown_and_missing_inputs(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(LogFormatError, match="unknown log format"):
        load_logs(junk)
    with pytest.raises(LogFormatError, match="no such file or folder"):
        load_logs(tmp_path / "missing")
    with pytest.raises(LogFormatError, match="the glob matches no file"):
        load_logs(str(tmp_path / "*.jsonl"))
    with pytest.raises(LogFormatError, match="no log files found"):
        load_logs(tmp_path)  # a folder with nothing that looks like a log
    config = write_json(tmp_path / "config.json", {"hidden_size": 64})
    with pytest.raises(LogFormatError, match="unknown log format"):
        load_logs(config)
    bad_table = tmp_path / "x_MMBench.csv"
    bad_table.write_text("a,b\n1,2\n")
    with pytest.raises(LogFormatError, match="unknown log format"):
        load_logs(bad_table)
    df, errors = load_logs([junk, tmp_path / "missing"], strict=False)
    assert df.height == 0 and [e.path for e in errors] == [str(junk), str(tmp_path / "missing")]


def test_lenient_keeps_the_good_files_and_lines(tmp_path):
    good = write_jsonl(tmp_path / "a" / "20250101_000000_samples_t.jsonl", _good(4))
    bad_lines = [json.dumps(x) for x in _good(5)]
    bad_lines[2] = '{"doc_id": [2], "filtered_resps": ["A"]}'
    bad_lines[4] = "garbage"
    bad = write_jsonl(tmp_path / "b" / "20250101_000000_samples_t.jsonl", bad_lines)
    empty = tmp_path / "c" / "20250101_000000_samples_t.jsonl"
    empty.parent.mkdir()
    empty.touch()
    df, errors = load_logs(tmp_path, strict=False)
    assert df.group_by("source_file").len().sort("source_file").rows() == [(str(good), 4), (str(bad), 3)]
    assert [(e.path, e.line) for e in errors] == [(str(bad), 3), (str(bad), 5), (str(empty), None)]
    with pytest.raises(LogFormatError) as info:
        load_logs(tmp_path)
    assert (info.value.path, info.value.line) == (str(bad), 3)


def test_globs_and_lists(tmp_path):
    for name in ["m1", "m2"]:
        write_jsonl(tmp_path / name / "20250101_000000_samples_t.jsonl", _good(2))
    assert load_logs(str(tmp_path / "*" / "*_samples_*.jsonl")).height == 4
    assert load_logs(str(tmp_path / "**" / "m1")).height == 2
    assert set(load_logs([tmp_path / "m1", tmp_path / "m1" / "20250101_000000_samples_t.jsonl"])["model"]) == {"m1"}


# --------------------------------------------------------------------------- scan_logs


def test_scan_logs_is_lazy_and_equals_load_logs(tmp_path, realworld):
    lazy = scan_logs(realworld)
    assert isinstance(lazy, pl.LazyFrame)
    eager = load_logs(realworld)
    assert_frame_equal(lazy.collect(), eager)
    filtered = lazy.filter(pl.col("task") == "scienceqa_img").select(pl.col("exact_match").mean()).collect()
    assert filtered.item() == pytest.approx(0.6950917203767972)


def test_scan_logs_generated(tmp_path):
    write_jsonl(tmp_path / "m" / "20250101_000000_samples_t.jsonl", _good(5))
    run = tmp_path / "llava" / "model_args_a1b2c3" / "0315_1200_x"
    write_json(run / "t.json", {"args": {}, "model_configs": {"task": "t"},
                                "logs": [{"doc_id": 0, "target": "A", "resps": [["A"]], "filtered_resps": ["A"], "exact_match": 1.0}]})
    lazy = scan_logs(tmp_path)
    assert isinstance(lazy, pl.LazyFrame)
    assert_frame_equal(lazy.collect(), load_logs(tmp_path))
    assert lazy.select(pl.len()).collect().item() == 6
