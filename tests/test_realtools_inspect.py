"""inspect_ai logs written by inspect_ai itself (tests/fixtures/realtools/inspect_ai, made by
scripts/realtools/inspect_fixtures.py: a real `inspect_ai.eval()` against a stub OpenAI-compatible server on
127.0.0.1), in both of its formats, through our reader and through inspect_ai's own, against the scores inspect_ai
wrote in the same logs."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lmms_nb.images import load_image
from lmms_nb.logs import load_logs
from lmms_nb.logs._errors import LogFormatError, Problems
from lmms_nb.logs._inspect import read_inspect_log

FIXTURES = Path(__file__).parent / "fixtures" / "realtools" / "inspect_ai"
EVAL_FILES = sorted((FIXTURES / "eval").glob("*.eval"))
JSON_FILES = sorted((FIXTURES / "json").glob("*.json"))


def reported(json_log: Path) -> dict[str, float]:
    """The per-scorer accuracy / mean inspect_ai wrote in the log's results."""
    results = json.loads(json_log.read_text(encoding="utf-8"))["results"]["scores"]
    return {s["name"]: next(m["value"] for k, m in s["metrics"].items() if k in ("accuracy", "mean")) for s in results}


def test_both_formats_load_with_inspects_own_scores():
    df = load_logs(FIXTURES)
    assert len(EVAL_FILES) == len(JSON_FILES) == 2
    assert set(df["source_format"]) == {"inspect_ai"} and set(df["model"]) == {"tiny-vlm"}
    assert set(df["run_status"]) == {"finished"}
    assert df.height == 2 * (4 * 2 + 3)  # shapes_vqa: 4 samples x 2 epochs; shapes_mcq: 3 samples; two formats
    for json_log in JSON_FILES:
        task = json.loads(json_log.read_text(encoding="utf-8"))["eval"]["task"]
        for fmt in ("eval", "json"):
            rows = df.filter((pl.col("task") == task) & pl.col("source_file").str.contains(f"/{fmt}/"))
            for name, value in reported(json_log).items():
                # inspect reduces epochs per sample (mean) then averages: equal to the mean over every epoch row
                assert rows[name].mean() == pytest.approx(value), (task, fmt, name)
    vqa = df.filter((pl.col("task") == "shapes_vqa") & pl.col("source_file").str.ends_with(".json")).sort(
        "filter", "doc_id")
    assert vqa["filter"].to_list() == ["epoch_1"] * 4 + ["epoch_2"] * 4
    assert vqa["doc_id"].to_list() == [1, 2, 3, 4] * 2
    assert vqa["prediction"].to_list()[:4] == ["3", "Red", "a triangle", "No"]
    assert vqa["prediction"].to_list()[4:] == ["There are 3 circles.", "red", "circle", "no"]
    assert vqa["input"][1] == "What colour is the square?" and vqa["target"][1] == "red"
    assert vqa["category"].to_list()[:2] == ["counting", "attributes"]  # from the sample metadata
    assert vqa["output_tokens"].to_list() == [3] * 8
    # string sample ids: their position in the dataset's sample_ids
    mcq = df.filter((pl.col("task") == "shapes_mcq") & pl.col("source_file").str.ends_with(".eval")).sort("doc_id")
    assert mcq.select("doc_id", "target", "prediction", "choice").rows() == [
        (0, "A", "ANSWER: A", 1.0), (1, "C", "ANSWER: B", 0.0), (2, "D", "ANSWER: D", 1.0)]


def test_images_from_attachments_resolve():
    df = load_logs(EVAL_FILES + JSON_FILES)
    refs = df.filter(pl.col("task") == "shapes_vqa")["image_ref"]
    assert refs.null_count() == 0 and refs.str.starts_with("inspect:").all()
    assert load_image(refs[0]).size == (32, 32)  # inspect moved the data URI into the sample's attachments
    with pytest.raises(ValueError, match="no image"):
        load_image(refs[0].rsplit("#", 1)[0] + "#99/1")


def test_our_reader_equals_inspects_reader():
    pytest.importorskip("inspect_ai")  # installed by the test extra (lmms-nb[inspect] for users)
    for path in EVAL_FILES + JSON_FILES:
        ours = read_inspect_log(path, Problems(strict=True), use_inspect=False)
        theirs = read_inspect_log(path, Problems(strict=True), use_inspect=True)
        assert_frame_equal(ours, theirs)


def test_partial_run_warns_and_bad_files_are_named(tmp_path):
    # a run killed after two samples: inspect's journal start record and those samples, no header.json
    killed = tmp_path / "killed.eval"
    source = next(p for p in EVAL_FILES if "vqa" in p.name)
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(killed, "w") as dst:
        for name in ("_journal/start.json", "samples/1_epoch_1.json", "samples/2_epoch_1.json"):
            dst.writestr(name, _raw(src, name))
    df, problems = load_logs(killed, strict=False)
    assert df.height == 2 and set(df["run_status"]) == {"partial"}
    assert [(e.severity, e.problem) for e in problems] == [
        ("warning", "a partial run (status 'started'): 2 sample(s) logged of 8")]
    assert load_logs(killed).height == 2  # a warning never stops a strict read
    broken = tmp_path / "broken.json"
    shutil.copy(JSON_FILES[0], broken)
    broken.write_text(broken.read_text()[:5000], encoding="utf-8")
    with pytest.raises(LogFormatError, match="unknown log format|cannot read the log"):
        load_logs(broken)
    not_zip = tmp_path / "x.eval"
    not_zip.write_text("hello")
    with pytest.raises(LogFormatError, match="unknown log format"):
        load_logs(not_zip)


def _raw(archive: zipfile.ZipFile, name: str) -> bytes:
    from lmms_nb.logs._inspect import _member

    return _member(archive, name)
