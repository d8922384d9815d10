"""The Parquet cache of parsed log files: a warm load gives the same table, only changed files are read again,
reads with problems are never cached, and scan_logs scans cached files lazily."""

from __future__ import annotations

import json
import os
import time

import polars as pl
from polars.testing import assert_frame_equal

from lmms_nb.logs import readers
from lmms_nb.logs._cache import clear_cache
from lmms_nb.logs.readers import load_logs, scan_logs


def _write(path, n, answer="A"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"doc_id": i, "target": "A", "filtered_resps": [answer], "acc": float(answer == "A")})
                            + "\n" for i in range(n)), encoding="utf-8")
    return path


def test_warm_loads_read_only_what_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    a = _write(tmp_path / "logs" / "m1" / "20250101_000000_samples_t.jsonl", 50)
    b = _write(tmp_path / "logs" / "m2" / "20250101_000000_samples_t.jsonl", 50, answer="B")
    reads = []
    original = readers.read_jsonl_samples
    monkeypatch.setattr(readers, "read_jsonl_samples",
                        lambda meta, *args, **kw: reads.append(meta.path) or original(meta, *args, **kw))
    cold = load_logs(tmp_path / "logs")
    assert sorted(reads) == [a, b]
    reads.clear()
    warm = load_logs(tmp_path / "logs")
    assert reads == [] and len(list((tmp_path / "cache" / "logs").glob("*.parquet"))) == 2
    assert_frame_equal(cold, warm)
    time.sleep(0.01)
    _write(b, 60)  # the second model's run changed: it alone is read again
    os.utime(b, ns=(time.time_ns(), time.time_ns()))
    again = load_logs(tmp_path / "logs")
    assert reads == [b] and again.height == 110
    assert again.filter(pl.col("model") == "m2")["acc"].sum() == 60
    reads.clear()
    assert_frame_equal(load_logs(tmp_path / "logs", cache=False), again) and reads == [a, b]
    # a lazy scan reads the cached Parquet
    plan = scan_logs(tmp_path / "logs").explain()
    assert "parquet" in plan.lower()
    assert_frame_equal(scan_logs(tmp_path / "logs").collect(), again)
    assert clear_cache() == 3  # two current entries and the stale one of the old m2 file


def test_reads_with_problems_are_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    path = _write(tmp_path / "logs" / "m" / "20250101_000000_samples_t.jsonl", 3)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("not json\n")
    for _ in range(2):  # the error is reported on every read, never hidden by a cache hit
        df, problems = load_logs(path, strict=False)
        assert df.height == 3 and [e.line for e in problems] == [4]
    assert not list((tmp_path / "cache" / "logs").glob("*.parquet"))


def test_results_json_change_invalidates_its_samples(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "logs" / "out"
    _write(folder / "20250101_000000_samples_t.jsonl", 3)
    results = folder / "20250101_000000_results.json"
    results.write_text(json.dumps({"results": {}, "model_name_sanitized": "first"}))
    assert set(load_logs(folder)["model"]) == {"first"}
    time.sleep(0.01)
    results.write_text(json.dumps({"results": {}, "model_name_sanitized": "second-name"}))
    assert set(load_logs(folder)["model"]) == {"second-name"}


def test_a_short_samples_file_warns_on_every_load_cached_or_not(tmp_path, monkeypatch):
    import pytest

    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "logs" / "m"
    _write(folder / "20250101_000000_samples_t.jsonl", 3)
    (folder / "20250101_000000_results.json").write_text(json.dumps({
        "results": {"t": {"acc,none": 1.0}}, "n-samples": {"t": {"original": 100, "effective": 100}}}))
    for _ in range(2):  # the second load comes from the cache
        with pytest.warns(UserWarning, match="holds 3 of the 100 docs"):
            df = load_logs(folder)
        assert set(df["run_status"]) == {"partial"}
    assert len(list((tmp_path / "cache" / "logs").glob("*.parquet"))) == 1
