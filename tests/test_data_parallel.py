"""Data parallel under torchrun: 2 CPU processes each evaluate a shard; rank 0 merges; equal to one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent("""
    import os, sys, json
    sys.path.insert(0, {tests!r})
    import lmms_nb
    from lmms_nb.models.baselines import FunctionModel
    from _toy import colour_of, toy_task

    def model(images, prompt):
        i = int(prompt[1:prompt.index(":")])
        if i == 13:
            raise RuntimeError("fails on doc 13")
        return colour_of(images, prompt) if i % 5 else "purple"

    run = lmms_nb.evaluate(FunctionModel(model, name="dp"), toy_task(41, path=__import__("pathlib").Path({ds!r}),
                           two_filters=True), output_dir={out!r}, batch_size=4, progress=False)
    rank = int(os.environ.get("RANK", "0"))
    # one file per rank: torchrun merges the ranks' stdout, and two lines can interleave there
    report = {{"rank": rank, "rows": run.samples.height, "score": run.score("toy_colour", "exact_match")}}
    (__import__("pathlib").Path({out!r}) / f"report_rank{{rank}}.json").write_text(json.dumps(report))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lines(out: Path) -> list[dict]:
    (path,) = (out / "dp").glob("*_samples_toy_colour.jsonl")
    drop = {"latency_s", "run_id"}
    return [{k: v for k, v in json.loads(x).items() if k not in drop} for x in path.read_text().splitlines()]


@pytest.mark.slow
def test_two_process_run_equals_single_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent), "OMP_NUM_THREADS": "1"}
    single, multi = tmp_path / "single", tmp_path / "multi"
    for out in (single, multi):
        (tmp_path / f"{out.name}.py").write_text(SCRIPT.format(tests=str(TESTS), ds=str(tmp_path / "ds"), out=str(out)))
    r1 = subprocess.run([sys.executable, tmp_path / "single.py"], env=env, capture_output=True, text=True, timeout=300)
    assert r1.returncode == 0, r1.stderr
    r2 = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(_free_port()), str(tmp_path / "multi.py")],
        env=env, capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0, r2.stderr[-3000:]
    reports = [json.loads(p.read_text()) for p in sorted(multi.glob("report_rank*.json"))]
    assert sorted(r["rank"] for r in reports) == [0, 1]
    single_report = json.loads((single / "report_rank0.json").read_text())
    assert all(r["rows"] == single_report["rows"] == 82 for r in reports)
    assert all(r["score"] == single_report["score"] for r in reports)
    # the merged log equals the single-process log line for line (but for timings and run ids)
    assert _lines(multi) == _lines(single)
    assert not list((multi / "dp").glob("*.part")), "shards are removed after the merge"
    res = json.loads(next((multi / "dp").glob("*_results.json")).read_text())
    ref = json.loads(next((single / "dp").glob("*_results.json")).read_text())
    assert res["results"] == ref["results"] and res["config"]["world_size"] == 2


RESUME_SCRIPT = textwrap.dedent("""
    import os, sys, json, pathlib
    sys.path.insert(0, {tests!r})
    import lmms_nb
    from lmms_nb.models.baselines import FunctionModel
    from _toy import colour_of, toy_task

    class Model(FunctionModel):
        def generate(self, requests):
            rank = os.environ.get("RANK", "0")
            with open(pathlib.Path({out!r}) / f"asked_{{os.environ['PHASE']}}_rank{{rank}}.txt", "a") as fh:
                fh.write("".join(f"{{r.doc_id}}\\n" for r in requests))
            # phase 1: rank 2 dies (a kill, an OOM) after its second batch; torchrun then stops the others
            if os.environ["PHASE"] == "1" and rank == "2" and self.calls == 2:
                os._exit(1)
            self.calls += 1
            return super().generate(requests)

    model = Model(colour_of, name="dp")
    model.calls = 0
    run = lmms_nb.evaluate(model, toy_task(41, path=pathlib.Path({ds!r}), two_filters=True), output_dir={out!r},
                           batch_size=2, progress=False)
""")


def _torchrun(script: Path, nproc: int, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1",
         "--master_port", str(_free_port()), str(script)],
        env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_resume_on_fewer_ranks_merges_every_shard_and_redoes_nothing(tmp_path):
    """Killed on 3 ranks, resumed on 2: rank 2's part file is merged too, and no finished doc is asked again."""
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent), "OMP_NUM_THREADS": "1"}
    out, single = tmp_path / "multi", tmp_path / "single"
    out.mkdir()
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT.format(tests=str(TESTS), ds=str(tmp_path / "ds"), out=str(out)))
    first = _torchrun(script, 3, {**env, "PHASE": "1"})
    assert first.returncode != 0, "rank 2 was meant to die"
    parts = sorted((out / "dp").glob("*.part"))
    assert "rank2" in parts[-1].name, [p.name for p in parts]
    done_before = set()
    for part in parts:
        done_before |= {json.loads(x)["doc_id"] for x in part.read_text().splitlines() if x.endswith("}")}
    assert len(done_before) >= 4

    second = _torchrun(script, 2, {**env, "PHASE": "2"})
    assert second.returncode == 0, second.stderr[-3000:]
    asked = [int(x) for p in out.glob("asked_2_rank*.txt") for x in p.read_text().split()]
    assert sorted(asked) == sorted(set(range(41)) - done_before), "a finished doc was asked again, or one was lost"
    assert not list((out / "dp").glob("*.part"))

    single.mkdir()
    (tmp_path / "single.py").write_text(RESUME_SCRIPT.format(tests=str(TESTS), ds=str(tmp_path / "ds"),
                                                             out=str(single)))
    ref = subprocess.run([sys.executable, tmp_path / "single.py"], env={**env, "PHASE": "0"}, capture_output=True,
                         text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-3000:]
    assert _lines(out) == _lines(single)
