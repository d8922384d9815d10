"""lmms-eval 0.7.3's command line, with only the program name changed, against what the real lmms-eval wrote.

The fixtures under tests/fixtures/lmms_eval_073 were written by lmms-eval 0.7.3 itself (make.py) on tiny seeded
models and generated data; this test rebuilds the same models and data (their weights must hash the same), runs
`lmms-nb` with the same arguments and compares folder, files, every answer and score, and the keys and types of
sample lines and results JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "lmms_eval_073"
sys.path.insert(0, str(FIXTURES))


def _load_spec():
    # by path, under its own name: the video fixtures' folder has a `spec` module too
    import importlib.util

    found = importlib.util.spec_from_file_location("lmms_eval_073_spec", FIXTURES / "spec.py")
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


spec = _load_spec()
from _servers import FakeOpenAIServer  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vs073")
    hashes = spec.build(root)
    recorded = json.loads((FIXTURES / "versions.json").read_text())["weights_sha256"]
    assert hashes == recorded, "the tiny models no longer build identically: regenerate the fixtures (make.py)"
    return root


def _run(root: Path, argv: list[str], env: dict[str, str] | None = None) -> None:
    proc = subprocess.run([sys.executable, "-m", "lmms_nb", *argv], cwd=root, capture_output=True, text=True,
                          timeout=1200, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]),
                                             "HF_HUB_CACHE": spec.HF_CACHE, **(env or {})})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _lines(folder: Path) -> dict[str, list[dict]]:
    return {f.name.split("_samples_")[1].removesuffix(".jsonl"): [json.loads(x) for x in f.read_text().splitlines()]
            for f in sorted(folder.glob("*_samples_*.jsonl"))}


def _types(value):
    """A value's JSON shape: dict keys with their shapes, lists of shapes, scalar type names (int and float
    count as one: lmms-eval writes 0.0 where a mean is whole)."""
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value[:1]]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return type(value).__name__
    return "number"


@pytest.mark.slow
@pytest.mark.parametrize("run, batch_size", [("llava_hf", 1), ("qwen2_5_vl", 1), ("qwen2_5_vl", 8), ("qwen2_vl", 1),
                                            ("qwen2_vl_2shot", 1), ("llava_hf_2shot", 1), ("openai_compatible", 1),
                                            ("internvl_hf", 1), ("qwen3_vl", 1), ("idefics2", 1),
                                            ("llava_onevision", 1), ("internvl3", 1), ("internvl2", 1),
                                            ("internvl3_5", 1), ("internvl2_internlm2", 1),
                                            ("internvl2_phi3", 1), ("internvl2_llama", 1)])
def test_same_command_same_folder_files_answers_scores_keys_and_types(root, run, batch_size):
    out = f"out_{run}_{batch_size}"
    model, extra = spec.RUNS[run]
    # the InternVL runs: one CPU thread, as make.py ran lmms-eval (bfloat16 sums are ordered by the thread count,
    # which flips a near tie of the tiny model's logits: 1 of 96 answers at 2 threads)
    env = {"OPENAI_API_KEY": spec.API_KEY, **({"OMP_NUM_THREADS": "1"} if run in spec.INTERNVL_CHAT_RUNS else {})}
    with FakeOpenAIServer() as server:  # a real HTTP server on 127.0.0.1, for the openai_compatible run
        _run(root, spec.command(model, out, batch_size, extra, base_url=server.url), env)
    (theirs_dir,) = (FIXTURES / run).iterdir()
    (ours_dir,) = (root / out).iterdir()
    assert ours_dir.name == theirs_dir.name  # lmms-eval's folder: the last two parts of pretrained, sanitized
    theirs, ours = _lines(theirs_dir), _lines(ours_dir)
    assert sorted(theirs) == sorted(ours)
    for task in theirs:
        assert len(ours[task]) == len(theirs[task])
        for a, b in zip(ours[task], theirs[task]):  # same order: per filter, by doc id
            assert a["doc_id"] == b["doc_id"]
            assert a["filtered_resps"] == b["filtered_resps"], (task, a["doc_id"])
            assert a.get("resps") == b.get("resps"), (task, a["doc_id"])
            metrics = [k for k in b if k not in ("doc_id", "target", "resps", "filtered_resps", "token_counts",
                                                 "doc_hash", "input")]
            assert {m: a[m] for m in metrics} == {m: b[m] for m in metrics}
            assert (a["target"], a["input"], a["doc_hash"]) == (b["target"], b["input"], b["doc_hash"])
            lmms_eval_keys = [k for k in a if k in b]
            assert lmms_eval_keys == list(b), "0.7.3's keys, in 0.7.3's order, before ours"
            # token_counts: a list with one entry per request in both; lmms-eval's simple classes (qwen2_vl)
            # report no counts (null) where lmms-nb always has them
            assert len(a["token_counts"]) == len(b["token_counts"])
            assert _types({k: a[k] for k in b if k != "token_counts"}) == _types(
                {k: v for k, v in b.items() if k != "token_counts"})
            if b["token_counts"][0] is not None:
                assert _types(a["token_counts"]) == _types(b["token_counts"])
    (their_results,) = theirs_dir.glob("*_results.json")
    (our_results,) = ours_dir.glob("*_results.json")
    a, b = json.loads(our_results.read_text()), json.loads(their_results.read_text())
    assert set(b) <= set(a), f"missing top-level keys: {sorted(set(b) - set(a))}"
    for key in ("results", "group_subtasks", "versions", "n-shot", "higher_is_better", "n-samples", "task_hashes"):
        assert a[key] == b[key] if key != "results" else _types(a[key]) == _types(b[key]), key
    assert {t: {k: v for k, v in r.items() if "stderr" not in k} for t, r in a["results"].items()} == {
        t: {k: v for k, v in r.items() if "stderr" not in k} for t, r in b["results"].items()}
    for key in set(b) - {"configs", "config", "throughput", "efficiency", "usage"}:
        assert _types(a[key]) == _types(b[key]), key
    for task, config in b["configs"].items():
        assert set(config) <= set(a["configs"][task]), sorted(set(config) - set(a["configs"][task]))
    assert set(b["config"]) <= set(a["config"]), sorted(set(b["config"]) - set(a["config"]))
    for key in ("model_name", "model_name_sanitized", "model_source"):
        assert a[key] == b[key]


@pytest.mark.slow
def test_both_tools_runs_are_one_model_in_load_logs_and_compare(root):
    import lmms_nb

    out = "out_llava_hf_names"
    _run(root, spec.command("llava_hf", out, 8))  # lmms-nb at its own batch size
    df = lmms_nb.load_logs([FIXTURES / "llava_hf", root / out])
    assert set(df["source_format"]) == {"lmms_eval", "lmms_nb"}
    assert df["model"].unique().to_list() == ["models__tiny_llava"]  # one name, whichever tool wrote the log
    run_ids = df.group_by("source_format").agg(pl_first("run_id")).sort("source_format")["run_id"].to_list()
    from lmms_nb.analysis import flips

    change = flips(df, *run_ids)  # the same model's two runs: nothing changed between the tools
    assert change.fixed.height == change.broken.height == change.missing.height == 0
    assert change.summary["n_both"].sum() == df.height // 2  # every (task, doc, filter) of one run has its pair


def pl_first(column: str):
    import polars as pl

    return pl.col(column).first()


@pytest.mark.slow
def test_llava_onevision_loglikelihoods_equal_the_real_class(root, monkeypatch):
    """(loss, is_greedy) of lmms-nb's llava_onevision on the original-format checkpoint, bit for bit what lmms-eval
    0.7.3's class computed with LLaVA-NeXT (make_loglikelihood.py: 0.7.3 cannot score multiple_choice end to end,
    so its class's loglikelihood was called directly with the requests its evaluator sends)."""
    import datasets
    import huggingface_hub.constants

    from lmms_nb.models import get_model
    from lmms_nb.models.base import LoglikelihoodRequest

    monkeypatch.chdir(root)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root / spec.HF_CACHE))
    recorded = json.loads((FIXTURES / "llava_onevision_loglikelihood.json").read_text())
    docs = datasets.load_from_disk(str(root / "data" / "vs_mcq"))["test"]
    model = get_model("llava_onevision", pretrained=recorded["model"], device="cpu")
    requests = [LoglikelihoodRequest(doc_id=r["doc_id"], task="vs_mcq", images=[docs[r["doc_id"]]["image"]],
                                     context=r["context"], continuation=r["continuation"])
                for r in recorded["answers"]]
    assert len(requests) == 4 * spec.N_DOCS
    ours = model.loglikelihood(requests)
    assert ours == [(r["loss"], r["is_greedy"]) for r in recorded["answers"]]
