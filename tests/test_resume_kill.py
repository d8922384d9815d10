"""A run killed with SIGKILL at arbitrary moments, then resumed: no sample lost or duplicated, same scores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lmms_nb.logs.writer import heal_samples_file, read_samples_file

TESTS = Path(__file__).resolve().parent

#: kills per test run, each at a random moment (the seed is printed, so a failure can be replayed)
N_KILLS = 20
N_DOCS = 320  # 80 batches of 4; each killed attempt gets through at most 3 of them, so 20 kills never finish it

# A real zoo model (a tiny LLaVA trained on synthbench) answering synthbench "mcq" in batches of 4. Each batch
# is announced on stdout, so the test can kill inside generation, scoring or writing.
SCRIPT = textwrap.dedent("""
    import sys
    import lmms_nb
    from lmms_nb.models.hf import HFImageTextModel
    from lmms_nb.tasks.synthbench import synthbench_task

    print("START", flush=True)
    model = HFImageTextModel({model!r}, name="zoo-kill", max_new_tokens=4)
    task = synthbench_task("mcq", n_train=40, n_test={n_docs})
    run = lmms_nb.evaluate(model, task, output_dir={out!r}, batch_size=4, progress=False,
                           on_batch=lambda p: print("BATCH", p.done, flush=True))
    print("DONE", run.samples.height, run.n_errors, run.score(task.name), flush=True)
""")

ZOO_SPEC = dict(hidden_size=32, num_layers=1, curriculum_steps=10, steps=10, batch_size=8, lr=1e-2,
                synthbench_n_train=40)


def _script(tmp_path: Path, model: Path, out: Path) -> Path:
    path = tmp_path / f"run_{out.name}.py"
    path.write_text(SCRIPT.format(model=str(model), n_docs=N_DOCS, out=str(out)))
    return path


def _log(out: Path) -> tuple[list[dict], dict]:
    (samples,) = (out / "zoo-kill").glob("*_samples_synthbench_mcq.jsonl")
    (results,) = (out / "zoo-kill").glob("*_results.json")
    return [json.loads(x) for x in samples.read_text().splitlines()], json.loads(results.read_text())


def _comparable(lines: list[dict]) -> list[tuple]:
    return sorted((r["doc_id"], r["filter"], r["raw_response"], r["filtered_resps"], r["choice_accuracy"], r["error"])
                  for r in lines)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_loses_and_duplicates_nothing(tmp_path):
    import random

    from lmms_nb.models.zoo import ZooSpec, train_zoo_member
    from lmms_nb.tasks.synthbench import build_synthbench

    build_synthbench(n_train=40, n_test=N_DOCS)  # before the timed reference run, which must not build it
    model = train_zoo_member(ZooSpec("kill-test", "for the SIGKILL test", **ZOO_SPEC), root=tmp_path / "zoo",
                             progress=False)
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent), "OMP_NUM_THREADS": "1"}
    reference_out, killed_out = tmp_path / "reference", tmp_path / "killed"
    # the uninterrupted reference, timed: how long the start takes and how long one batch takes
    started = time.monotonic()
    ref = subprocess.Popen([sys.executable, _script(tmp_path, model, reference_out)], env=env, text=True,
                           stdout=subprocess.PIPE, stderr=open(tmp_path / "reference.err", "w"))
    batch_times = [time.monotonic() - started for line in ref.stdout if line.startswith("BATCH")]
    assert ref.wait(timeout=600) == 0, (tmp_path / "reference.err").read_text()[-3000:]
    assert len(batch_times) == N_DOCS // 4
    startup, per_batch = batch_times[0], (batch_times[-1] - batch_times[0]) / (len(batch_times) - 1)

    seed = random.randrange(10**6)
    rng = random.Random(seed)
    print(f"kill schedule seed: {seed}; startup {startup:.1f}s, {per_batch:.3f}s per batch")
    script = _script(tmp_path, model, killed_out)
    moments = []
    for attempt in range(N_KILLS):
        proc = subprocess.Popen([sys.executable, script], env=env, stdout=subprocess.PIPE,
                                stderr=open(tmp_path / f"attempt{attempt}.err", "w"), text=True)
        if attempt % 5 == 0:  # anywhere from the start: importing, planning, healing, the first batches
            time.sleep(rng.uniform(0.0, startup + 2 * per_batch))
            moments.append("from start")
        else:  # after the k-th batch of this attempt, a random fraction of a batch later
            k, seen = rng.randint(1, 2), 0
            for line in proc.stdout:
                seen += line.startswith("BATCH")
                if seen >= k or line.startswith("DONE"):
                    break
            time.sleep(rng.uniform(0.0, per_batch))
            moments.append(f"after batch {k}")
        err = tmp_path / f"attempt{attempt}.err"
        assert proc.poll() is None, f"attempt {attempt} ended before its kill: {err.read_text()[-2000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    final = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]
    assert f"DONE {N_DOCS} 0 " in final.stdout and len(moments) == N_KILLS

    lines, results = _log(killed_out)
    keys = [(r["doc_id"], r["filter"]) for r in lines]
    assert len(keys) == len(set(keys)) == N_DOCS, "a doc was lost or duplicated"
    assert len(list((killed_out / "zoo-kill").glob("*_results.json"))) == 1, "every attempt resumed the same run"
    ref_lines, ref_results = _log(reference_out)
    assert _comparable(lines) == _comparable(ref_lines)
    assert results["results"] == ref_results["results"]
    assert results["lmms_nb"]["status"] == "complete" and results["lmms_nb"]["n_errors"] == 0


def test_heal_drops_torn_last_line_and_partial_docs(tmp_path):
    path = tmp_path / "x_samples_t.jsonl"
    good = [{"doc_id": 0, "filter": "a"}, {"doc_id": 0, "filter": "b"}, {"doc_id": 1, "filter": "a"},
            {"doc_id": 1, "filter": "b"}, {"doc_id": 2, "filter": "a"}]
    text = "".join(json.dumps(r) + "\n" for r in good) + '{"doc_id": 2, "fil'
    path.write_text(text)
    found = heal_samples_file(path, ["a", "b"])
    assert found.truncated_tail and found.dropped == 1
    assert sorted({r["doc_id"] for r in found.records}) == [0, 1]
    # healed on disk: only complete docs, every line valid
    again = read_samples_file(path, ["a", "b"])
    assert not again.truncated_tail and again.dropped == 0 and len(again.records) == 4


def test_corrupt_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "x_samples_t.jsonl"
    path.write_text('{"doc_id": 0}\nnot json\n{"doc_id": 1}\n')
    with pytest.raises(ValueError, match=r"x_samples_t.jsonl:2: invalid sample line"):
        read_samples_file(path)
