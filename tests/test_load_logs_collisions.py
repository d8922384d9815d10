"""Metric names that collide with canonical columns, dict metrics, and VLMEvalKit files that only exist judged:
nothing is dropped silently, in strict or lenient mode."""

from __future__ import annotations

import json

import polars as pl
from polars.testing import assert_frame_equal

from lmms_nb.logs.readers import load_logs


def _lines(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_a_metric_named_prediction_goes_in_prefixed_with_a_warning(tmp_path):
    # an lmms-eval fork's task logs a per-sample metric called `prediction` (a dict with its own score)
    records = [{"doc_id": i, "target": "B", "filtered_resps": ["B" if i else "C"],
                "prediction": {"prediction": "B" if i else "C", "correct_answer": "B", "score": float(i > 0)},
                "error": 0}
               for i in range(3)]
    path = _lines(tmp_path / "fork" / "20250101_000000_samples_mmmu.jsonl", records)
    for strict in (True, False):
        result = load_logs(path, strict=strict, cache=False)
        df = result if strict else result[0]
        assert df["prediction"].to_list() == ["C", "B", "B"]  # the canonical column: the filtered response
        assert df["metric_prediction"].to_list() == [0.0, 1.0, 1.0]  # the metric, renamed
        assert df["metric_error"].to_list() == [0.0, 0.0, 0.0] and df["error"].null_count() == 3
    _, problems = load_logs(path, strict=False, cache=False)
    assert sorted(e.problem.split(",")[0] for e in problems) == [
        "a per-sample metric is named 'error'", "a per-sample metric is named 'prediction'"]
    assert {e.severity for e in problems} == {"warning"}
    import lmms_nb

    cmp = lmms_nb.compare(load_logs(path, cache=False), metric="metric_prediction")
    assert cmp.scores["score"].item() == 2 / 3


def test_dict_metrics_flatten_every_number(tmp_path):
    records = [{"doc_id": i, "target": "x", "filtered_resps": ["x"],
                "f1_scores": {"f1": 0.5 * i, "precision": 1, "recall": 0.25, "question_id": 40 + i, "note": "n"}}
               for i in range(3)]
    path = _lines(tmp_path / "m" / "20250101_000000_samples_t.jsonl", records)
    df = load_logs(path, cache=False)
    assert df["f1_scores"].to_list() == [0.0, 0.5, 1.0]  # the score field of the dict (`f1`: its first float)
    assert df["f1_scores.precision"].to_list() == [1.0] * 3 and df["f1_scores.recall"].to_list() == [0.25] * 3
    assert "f1_scores.question_id" not in df.columns  # ids are not measurements


def test_a_judged_vlmevalkit_file_alone_is_one_run_with_its_judge(tmp_path):
    import pandas as pd

    folder = tmp_path / "GPT4o"
    folder.mkdir()
    rows = {"index": [0, 1], "question": ["q0", "q1"], "A": ["x", "y"], "B": ["z", "w"], "answer": ["A", "B"],
            "prediction": ["A", "I am not sure"], "hit": [1, 0], "log": ["ok", "judged"]}
    pd.DataFrame(rows).to_excel(folder / "GPT4o_MMStar_gpt-4o-mini_result.xlsx", index=False)
    df = load_logs(tmp_path, cache=False)
    assert df.select("model", "task", "judge", "hit").rows() == [
        ("GPT4o", "MMStar", "gpt-4o-mini", 1.0), ("GPT4o", "MMStar", "gpt-4o-mini", 0.0)]
    # with the plain prediction file beside it, the judged one merges into it: still one run
    plain = {k: v for k, v in rows.items() if k not in ("hit", "log")}
    pd.DataFrame(plain).to_excel(folder / "GPT4o_MMStar.xlsx", index=False)
    merged = load_logs(tmp_path, cache=False)
    assert merged.select("run_id").n_unique() == 1 and merged.height == 2
    assert merged["hit"].to_list() == [1.0, 0.0] and set(merged["judge"]) == {"gpt-4o-mini"}
    # the judged file named explicitly brings its plain file with it, and the plain file its judged copy
    assert_frame_equal(load_logs(folder / "GPT4o_MMStar_gpt-4o-mini_result.xlsx", cache=False), merged)
    assert_frame_equal(load_logs(folder / "GPT4o_MMStar.xlsx", cache=False), merged)
    # rescore keeps the LLM judge's verdict on the row its rules cannot settle
    from lmms_nb.logs import rescore

    again = rescore(merged, scheme="vlmevalkit")
    assert again["hit"].to_list() == [1.0, 0.0] and again["error"].null_count() == 2
    assert pl.Series(again["error"]).null_count() == 2
