"""`lmms-nb` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys



def _cli(*args: str, cwd=None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lmms_nb", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env={**os.environ, "OPENAI_API_KEY": "sk-test-not-a-secret"})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connections are refused


def test_tasks_and_models_are_listed():
    tasks = _cli("tasks")
    assert tasks.returncode == 0
    assert "synthbench_count" in tasks.stdout and "exact_match" in tasks.stdout
    models = _cli("models")
    assert models.returncode == 0 and {"majority", "hf", "openai", "zoo-base"} <= set(models.stdout.split())


def test_eval_writes_lmms_eval_logs_and_prints_scores(tmp_path):
    out = tmp_path / "out"
    r = _cli("eval", "--model", "majority", "--tasks", "synthbench_count,synthbench_yesno", "--limit", "20",
             "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert "synthbench_count" in r.stdout and "acc_plus" in r.stdout
    (results,) = (out / "majority").glob("*_results.json")
    payload = json.loads(results.read_text())
    assert set(payload["results"]) == {"synthbench_count", "synthbench_yesno"}
    assert payload["lmms_nb"]["status"] == "complete"
    assert len((out / "majority").glob("*_samples_synthbench_count.jsonl").__next__().read_text().splitlines()) == 20


def test_unknown_task_is_one_clear_line_and_exit_2(tmp_path):
    r = _cli("eval", "--model", "majority", "--tasks", "synthbench_cont", "--output", str(tmp_path))
    assert r.returncode == 2
    assert "unknown task 'synthbench_cont'" in r.stderr and "Traceback" not in r.stderr


def test_a_run_where_every_sample_failed_exits_non_zero(tmp_path):
    # an OpenAI-compatible endpoint that refuses every connection: each sample gets an error, the run goes on
    r = _cli("eval", "--model", "openai", "--model-args",
             f"model=m,base_url=http://127.0.0.1:{_closed_port()}/v1,max_retries=0,use_cache=false",
             "--tasks", "synthbench_count", "--limit", "3", "--output", str(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "every sample failed (3 of 3)" in r.stderr
    lines = [json.loads(x) for f in tmp_path.rglob("*_samples_*.jsonl") for x in f.read_text().splitlines()]
    assert len(lines) == 3 and all(x["error"] for x in lines)
    assert not any("sk-test-not-a-secret" in p.read_text() for p in tmp_path.rglob("*") if p.is_file())
