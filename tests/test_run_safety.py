"""Failures are retried, concurrent runs never collide, logs are strict and durable, nothing leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import datasets
import polars as pl
import pytest
from PIL import Image

import lmms_nb
from lmms_nb.models.baselines import FunctionModel
from lmms_nb.tasks import Metric, Task

from _servers import FakeOpenAIServer
from _toy import colour_of, toy_task

TESTS = Path(__file__).resolve().parent


class FlakyModel(FunctionModel):
    """Right on every doc, except that the docs in `failing` raise (a 429 that outlived the retries)."""

    def __init__(self, failing: set[int]):
        super().__init__(colour_of, name="flaky")
        self.failing = failing
        self.asked: list[int] = []

    def generate(self, requests):
        self.asked += [r.doc_id for r in requests]
        out = super().generate(requests)
        for r, resp in zip(requests, out):
            if r.doc_id in self.failing:
                resp.text, resp.error = None, "HTTP 429: rate limited (after 6 attempts)"
        return out


def test_errored_samples_are_retried_and_the_earlier_error_is_kept(tmp_path):
    task = toy_task(12)
    model = FlakyModel({3, 7})
    first = lmms_nb.evaluate(model, task, output_dir=tmp_path, progress=False, batch_size=4)
    assert first.n_errors == 2 and first.completed
    payload = json.loads(first.results_file.read_text())["lmms_nb"]
    assert payload["status"] == "complete_with_errors" and payload["n_errors"] == 2

    # retry_errors=False: the holes stay
    model.asked.clear()
    kept = lmms_nb.evaluate(model, task, output_dir=tmp_path, progress=False, retry_errors=False)
    assert model.asked == [] and kept.n_errors == 2 and kept.run_id == first.run_id

    model.failing = set()  # the endpoint recovered
    again = lmms_nb.evaluate(model, task, output_dir=tmp_path, progress=False)
    assert sorted(model.asked) == [3, 7], "only the failed docs are asked again"
    assert again.run_id == first.run_id and again.n_errors == 0 and again.score("toy_colour") == 1.0
    assert json.loads(again.results_file.read_text())["lmms_nb"]["status"] == "complete"
    lines = [json.loads(x) for x in again.sample_files["toy_colour"].read_text().splitlines()]
    assert sorted(r["doc_id"] for r in lines) == list(range(12))  # no duplicate, nothing lost
    retried = {r["doc_id"]: r for r in lines if "history" in r}
    assert sorted(retried) == [3, 7]
    assert retried[3]["history"] == [{"run_id": first.run_id, "error": "HTTP 429: rate limited (after 6 attempts)",
                                      "failed_metrics": None, "raw_response": None}]
    # the earlier attempt's full lines stay beside the log, where readers do not take them for samples
    history = again.sample_files["toy_colour"].with_name(again.sample_files["toy_colour"].name + ".history")
    assert sorted(json.loads(x)["doc_id"] for x in history.read_text().splitlines()) == [3, 7]
    assert lmms_nb.load_logs(tmp_path).height == 12


def test_cli_retry_errors_flag(tmp_path):
    from lmms_nb._cli_flags import parse_eval_argv  # `lmms-nb eval`'s own parser (lmms-eval's flags and ours)

    assert parse_eval_argv(["--model", "m", "--tasks", "t"]).retry_errors is True
    assert parse_eval_argv(["--model", "m", "--tasks", "t", "--no-retry-errors"]).retry_errors is False


def test_failed_judgements_count_as_errors_are_retried_never_cached_and_the_json_is_strict(tmp_path):
    from _servers import Fault

    from lmms_nb.judge import LLMJudge, judge_metric

    garbage = json.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                       "message": {"role": "assistant", "content": "I'd rather not rate."}}]})
    with FakeOpenAIServer(plan=lambda c: Fault(status=200, body=garbage)) as judges:  # an outage: no ratings
        judge = LLMJudge("judge", base_url=judges.url, api_key_env=None, cache_dir=tmp_path / "cache", max_retries=0)
        task = toy_task(6)
        task.metrics = [judge_metric(judge, criteria_key=None)]
        model = FlakyModel(set())
        run = lmms_nb.evaluate(model, task, output_dir=tmp_path / "out", progress=False)
        text = run.results_file.read_text()
        payload = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
        assert payload["results"]["toy_colour"]["llm_judge,none"] is None  # no judgement: null, never NaN
        assert payload["lmms_nb"]["status"] == "complete_with_errors" and payload["lmms_nb"]["n_errors"] == 6
        assert run.n_errors == 6 and run.samples["error"].null_count() == 6  # the model itself did not fail
        line = json.loads(run.sample_files["toy_colour"].read_text().splitlines()[0])
        assert line["failed_metrics"] == ["llm_judge"] and line["llm_judge"] is None

        judges.plan = None  # the judge is back: the failed judgements are asked again, on the next call
        model.asked.clear()
        again = lmms_nb.evaluate(model, task, output_dir=tmp_path / "out", progress=False)
        assert again.run_id == run.run_id and len(model.asked) == 6 and again.n_errors == 0
        assert again.score("toy_colour", "llm_judge") == 100.0
        assert len(judges.completions()) == 12
        # even a fresh run: the malformed replies were never cached, the good ones were
        lmms_nb.evaluate(model, task, output_dir=tmp_path / "out", progress=False, resume=False)
        assert len(judges.completions()) == 12


def test_earlier_scores_stay_in_the_results_file_until_the_resumed_run_completes(tmp_path):
    task = toy_task(12)
    stop = threading.Event()
    model = FlakyModel(set())
    part = lmms_nb.evaluate(model, task, output_dir=tmp_path, progress=False, batch_size=4, stop_event=stop,
                            on_batch=lambda p: stop.set())
    assert json.loads(part.results_file.read_text())["results"]["toy_colour"]["exact_match,none"] == 1.0
    seen = []
    lmms_nb.evaluate(model, task, output_dir=tmp_path, progress=False, batch_size=4,
                     on_batch=lambda p: seen.append(json.loads(part.results_file.read_text())))
    assert [s["lmms_nb"]["status"] for s in seen] == ["running"] * 2
    assert all(s["results"]["toy_colour"]["exact_match,none"] == 1.0 for s in seen)


# ------------------------------------------------------------------------------------------------ concurrency
def test_two_threads_starting_in_the_same_second_get_two_runs(tmp_path):
    start = threading.Barrier(2)
    runs = {}

    def go(limit):
        start.wait()
        runs[limit] = lmms_nb.evaluate(FunctionModel(colour_of, name="same"), toy_task(12), limit=limit,
                                       output_dir=tmp_path, progress=False)

    threads = [threading.Thread(target=go, args=(n,)) for n in (5, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runs[5].results_file != runs[7].results_file
    assert len(list((tmp_path / "same").glob("*_results.json"))) == 2
    for n, run in runs.items():  # each file holds its own run, complete, and resumes as itself
        payload = json.loads(run.results_file.read_text())
        assert payload["lmms_nb"]["run_id"] == run.run_id and payload["n-samples"]["toy_colour"]["effective"] == n
        again = lmms_nb.evaluate(FunctionModel(colour_of, name="same"), toy_task(12), limit=n, output_dir=tmp_path,
                                 progress=False)
        assert again.run_id == run.run_id and again.samples.height == n


def test_the_same_run_started_twice_at_once_never_writes_one_file_twice(tmp_path):
    """Two threads resuming the same run: one resumes it, the other (finding it busy) starts its own."""
    task = toy_task(16, path=tmp_path / "ds")
    lmms_nb.evaluate(FunctionModel(colour_of, name="same"), task, limit=4, output_dir=tmp_path / "out", progress=False)
    start = threading.Barrier(2)
    runs = []

    class Slow(FunctionModel):
        def generate(self, requests):
            time.sleep(0.05)
            return super().generate(requests)

    def go():
        start.wait()
        runs.append(lmms_nb.evaluate(Slow(colour_of, name="same"), task, output_dir=tmp_path / "out",
                                     progress=False, batch_size=2))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.run_id for r in runs}) == 2
    for run in runs:
        lines = [json.loads(x) for x in run.sample_files["toy_colour"].read_text().splitlines()]
        assert sorted(r["doc_id"] for r in lines) == list(range(16))


PROCESS_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    import lmms_nb
    from lmms_nb.models.baselines import FunctionModel
    from _toy import colour_of, toy_task

    limit = int(sys.argv[1])
    task = toy_task(12, path=__import__("pathlib").Path({ds!r}))
    task.dataset()
    while time.time() < {go}:  # both processes start their run in the same second
        time.sleep(0.001)
    run = lmms_nb.evaluate(FunctionModel(colour_of, name="same"), task, limit=limit, output_dir={out!r},
                           progress=False)
    print(run.results_file.name, run.run_id)
""")


def test_two_processes_starting_in_the_same_second_get_two_runs(tmp_path):
    toy_task(12, path=tmp_path / "ds").dataset()
    go = time.time() + 15
    go = int(go) + 0.05  # early in a second, so both land in it
    script = tmp_path / "p.py"
    script.write_text(PROCESS_SCRIPT.format(tests=str(TESTS), ds=str(tmp_path / "ds"), out=str(tmp_path / "out"),
                                            go=go))
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
    procs = [subprocess.Popen([sys.executable, script, str(n)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for n in (5, 7)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for _, e in outs]
    files = [o.split()[0] for o, _ in outs]
    assert len(set(files)) == 2
    for n, name in zip((5, 7), files):
        payload = json.loads((tmp_path / "out" / "same" / name).read_text())
        assert payload["n-samples"]["toy_colour"]["effective"] == n and payload["lmms_nb"]["status"] == "complete"


# ------------------------------------------------------------------------------------------ tasks, API, cache
def test_a_text_only_task_needs_no_image_column(tmp_path):
    ds = datasets.Dataset.from_dict({"q": ["1+1?", "2+2?"], "a": ["2", "4"]})
    task = Task(name="arith", load=lambda: ds, doc_to_visual=lambda d: [], doc_to_text=lambda d: d["q"],
                doc_to_target=lambda d: d["a"], metrics=[Metric("exact_match", lambda p, t, d: float(p == t))])
    run = lmms_nb.evaluate(FunctionModel(lambda r: "4", name="four"), task, output_dir=tmp_path, progress=False)
    assert run.score("arith") == 0.5
    # a task that does use images still fails early when the column is missing
    task.doc_to_visual = lambda d: [d["image"]]
    with pytest.raises(ValueError, match="arith.*no image column 'image'"):
        lmms_nb.evaluate(FunctionModel(lambda r: "4", name="four"), task, output_dir=tmp_path, progress=False)


def test_api_backend_keeps_concurrency_requests_in_flight_whatever_the_batch_size(tmp_path):
    from lmms_nb.models.openai_compat import OpenAIChatModel

    with FakeOpenAIServer(reply_delay_s=0.2) as srv:
        model = OpenAIChatModel("m", base_url=srv.url, api_key_env=None, concurrency=12, use_cache=False)
        run = lmms_nb.evaluate(model, toy_task(24), output_dir=tmp_path, progress=False, batch_size=4)
        assert srv.max_in_flight == 12
    assert run.samples.height == 24 and run.n_errors == 0


def test_api_cache_serves_only_deterministic_requests_and_rows_say_cached_and_truncated(tmp_path):
    from lmms_nb.models.openai_compat import OpenAIChatModel

    def model(**kw):
        return OpenAIChatModel("m", base_url=srv.url, api_key_env=None, cache_dir=tmp_path / "cache", **kw)

    task = toy_task(4)
    with FakeOpenAIServer() as srv:
        task.generation_kwargs = {"max_new_tokens": 16, "temperature": 1.5}
        for i in range(5):  # five samples at temperature 1.5 are five requests, never one answer five times
            lmms_nb.evaluate(model(), task, output_dir=tmp_path / "sampled", progress=False, resume=False)
        assert len(srv.completions()) == 20
        lmms_nb.evaluate(model(cache_sampled=True), task, output_dir=tmp_path / "asked", progress=False)
        lmms_nb.evaluate(model(cache_sampled=True), task, output_dir=tmp_path / "asked", progress=False,
                         resume=False)
        assert len(srv.completions()) == 24  # asked for: cached

        task.generation_kwargs = {"max_new_tokens": 1, "do_sample": False}  # greedy, cut at one token
        first = lmms_nb.evaluate(model(), task, output_dir=tmp_path / "greedy", progress=False)
        second = lmms_nb.evaluate(model(), task, output_dir=tmp_path / "greedy", progress=False, resume=False)
        assert len(srv.completions()) == 28
    lines = [json.loads(x) for x in first.sample_files["toy_colour"].read_text().splitlines()]
    assert {(r["cached"], r["truncated"]) for r in lines} == {(False, True)}
    lines = [json.loads(x) for x in second.sample_files["toy_colour"].read_text().splitlines()]
    assert {(r["cached"], r["truncated"]) for r in lines} == {(True, True)}
    assert "cached" not in second.samples.columns  # flags, not metrics


def test_a_refused_reply_is_an_error_and_never_cached(tmp_path):
    from _servers import Fault

    from lmms_nb.models.base import Request
    from lmms_nb.models.openai_compat import OpenAIChatModel

    refusal = json.dumps({"choices": [{"index": 0, "finish_reason": "content_filter",
                                       "message": {"role": "assistant", "content": None, "refusal": "I can't."}}]})
    with FakeOpenAIServer(plan=lambda c: Fault(status=200, body=refusal)) as srv:
        model = OpenAIChatModel("m", base_url=srv.url, api_key_env=None, cache_dir=tmp_path, max_retries=0)
        req = Request(doc_id=0, task="t", images=[], prompt="q", generation_kwargs={"temperature": 0})
        (r,) = model.generate([req])
        assert r.text is None and "refused" in r.error and "I can't." in r.error
        srv.plan = None
        (r,) = model.generate([req])
        assert r.error is None and r.cached is False and len(model.cache) == 1


# ------------------------------------------------------------------------------------------- image roots
def test_image_refs_outside_the_allowed_roots_are_never_read(tmp_path):
    from lmms_nb.images import ImageRefError, allowed_image_roots, load_image, thumbnail_data_uri

    secret = tmp_path / "home" / "secret.png"
    secret.parent.mkdir()
    Image.new("RGB", (8, 8), "red").save(secret)
    logs = tmp_path / "shared_logs" / "someone__model"
    logs.mkdir(parents=True)
    Image.new("RGB", (8, 8), "blue").save(logs / "own.png")
    line = {"doc_id": 0, "target": "x", "filtered_resps": ["y"], "exact_match": 0.0}
    rows = [dict(line, doc_id=i, input_media=[str(p)]) for i, p in enumerate([secret, logs / "own.png"])]
    (logs / "20240101_000000_samples_t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    opened = []
    sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" and args else None)
    df = lmms_nb.load_logs(tmp_path / "shared_logs")
    refs = df.sort("doc_id")["image_ref"].to_list()
    assert refs == [f"file:{secret}", f"file:{logs / 'own.png'}"]
    assert logs.resolve() in allowed_image_roots()  # the log's own folder
    opened.clear()
    for read in (load_image, thumbnail_data_uri):
        with pytest.raises(ImageRefError, match="outside the allowed image roots"):
            read(refs[0])
    assert str(secret) not in opened, "the file outside the roots was opened"
    assert load_image(refs[1]).getpixel((0, 0)) == (0, 0, 255)
    for ref in (f"dataset:{tmp_path / 'home'}#0", f"b64:{tmp_path / 'home' / 'x.jsonl'}#1"):
        with pytest.raises(ImageRefError, match="outside the allowed image roots"):
            load_image(ref)
    # a symlink inside an allowed folder that points out of it is outside too
    (logs / "link.png").symlink_to(secret)
    with pytest.raises(ImageRefError, match="outside"):
        load_image(f"file:{logs / 'link.png'}")
    # the widgets show it as a missing image, with the reason
    from lmms_nb.widgets import SampleBrowser

    html = SampleBrowser(df).samples_html.value
    assert "image unavailable" in html and "outside the allowed image roots" in html


# ------------------------------------------------------------------------------------------- run status
def test_load_logs_exposes_run_status_and_warns_on_missing_docs(tmp_path):
    stop = threading.Event()
    part = lmms_nb.evaluate(FunctionModel(colour_of, name="partial"), toy_task(12), output_dir=tmp_path,
                            progress=False, batch_size=4, stop_event=stop, on_batch=lambda p: stop.set())
    done = lmms_nb.evaluate(FunctionModel(colour_of, name="finished"), toy_task(12), output_dir=tmp_path,
                            progress=False)
    failed = lmms_nb.evaluate(FlakyModel(set(range(12))), toy_task(12), output_dir=tmp_path, progress=False)
    df = lmms_nb.load_logs(tmp_path)
    status = dict(df.group_by("model").agg(pl.col("run_status").first()).iter_rows())
    assert status == {"partial": "partial", "finished": "finished", "flaky": "failed"}
    assert not part.completed and done.completed and failed.n_errors == 12

    # a samples file that lost docs its results JSON counts: a warning naming the file, and "partial"
    path = done.sample_files["toy_colour"]
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:5]))
    with pytest.warns(UserWarning, match=rf"{path.name}.*5 of the 12 docs"):
        df = lmms_nb.load_logs(tmp_path)
    assert df.filter(pl.col("model") == "finished")["run_status"].unique().to_list() == ["partial"]
