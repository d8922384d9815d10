"""The whole live loop, every part real: pages served from 127.0.0.1 and shot by headless Chromium, a drafting
and a reviewing model, a person's decisions (the review widget's key box), the month's dataset, and a run
of an answering model scored by an LLM judge through `lmms_nb.evaluate`.

The three models are local OpenAI-compatible servers (tests/_servers.py). The answering model answers some
questions right, one wrong, fails on one; the judge (LiveBench's rubric: 10 when the answer equals the
reference, else 0) gives one unusable reply. The expected table is worked out by hand below, and the stderr
by scipy.stats.sem.
"""

from __future__ import annotations

import os
import base64
import functools
import http.server
import io
import json
import re
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image
from scipy import stats

import lmms_nb
from _servers import FakeOpenAIServer, Fault, always_fail_if
from lmms_nb.judge import LLMJudge
from lmms_nb.live import (
    ReviewSession,
    capture_pages,
    draft_questions,
    live_scores,
    live_task,
    load_live_dataset,
    month_of,
    review_candidates,
)
from lmms_nb.logs.schema import FIXED_COLUMNS
from lmms_nb.models.openai_compat import OpenAIChatModel
from lmms_nb.widgets._live_review import LiveReviewWidget

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (CI must run these: scripts/test.sh installs it)")]

PAGES = {
    "weather.html": "<html><body style='margin:0;background:rgb(20,60,200)'><h1>Storm Ada reaches the coast</h1>"
                    "<div style='height:1200px'></div></body></html>",
    "market.html": "<html><body style='margin:0;background:rgb(220,200,40)'><h1>Wheat prices up 4%</h1>"
                   "<div style='height:900px'></div></body></html>",
}
# what the drafting model proposes, per page: (subtask, question, answer, criteria)
DRAFTS = {
    "weather.html": [
        ("Basic Understanding", "What is the storm called?", "Ada", "10 if it names Ada"),
        ("Deeper Implications", "What should coastal towns expect?", "Flooding", "10 for flooding"),
        ("Basic Understanding", "Where does the storm arrive?", "The coast", "10 for the coast"),
        ("Broader Implications", "Which trade suffers?", "Fishing", "10 for fishing"),
    ],
    "market.html": [
        ("Contextual Analysis", "By how much did wheat prices rise?", "4%", "10 for 4 percent"),
        ("Further Insights", "What could bread cost next month?", "More", "10 if it says more"),
    ],
}
# what the answering model says to each (final) question; "FAIL" questions get an HTTP 400
ANSWERS = {
    "What is the storm called?": "Ada",  # right -> 10
    "What should coastal towns expect?": "Snow",  # wrong -> 0
    "Where does the storm arrive? Name the place.": "The shore",  # the judge's reply is unusable -> failed
    "By how much did wheat prices rise?": "4 %",  # the edited reference is "4 %": right -> 10
}
MODEL_FAILS_ON = "What could bread cost"

#: Chromium keeps its sandbox unless told otherwise; as root (a CI container) it cannot start one, so these
#: tests opt out, explicitly.
SANDBOX = os.geteuid() != 0


def drafting_reply(prompt: str, n_images: int) -> str:
    if prompt.startswith("You write questions"):
        page = re.search(r"127\.0\.0\.1:\d+/(\w+\.html)", prompt).group(1)
        items = [dict(zip(("subtask", "question", "answer", "criteria"), d)) for d in DRAFTS[page]]
        return "Here they are:\n```json\n" + json.dumps({"questions": items}) + "\n```"
    if prompt.startswith("You review"):
        fields = dict(re.findall(r"^(Category|Question|Reference answer|Grading criteria): (.*)$", prompt, re.M))
        question = fields["Question"]
        if question == "Where does the storm arrive?":
            question += " Name the place."
        return json.dumps({"subtask": fields["Category"], "question": question, "answer": fields["Reference answer"],
                           "criteria": fields["Grading criteria"], "notes": "ok"})
    raise AssertionError(f"unexpected prompt {prompt[:80]!r}")


def answering_reply(prompt: str, n_images: int) -> str:
    return ANSWERS.get(prompt, "no idea")


def completion(content: str) -> str:
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})


def judge_plan(call):
    # the judge cannot rate this one: a reply without a rating is a failed judgement, not a 0
    if "[Ground Truth Response]" in call.prompt and "The shore" in call.prompt:
        return Fault(body=completion("I would rather not give a number."))
    return None


def decode(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    for name, body in PAGES.items():
        (root / name).write_text(body)
    handler = functools.partial(QuietHandler, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


def test_capture_draft_review_by_hand_save_and_score(site, tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    # 1. capture
    capture = capture_pages([f"{site}/weather.html", f"{site}/market.html"], tmp_path / "shots", progress=False,
                            sandbox=SANDBOX)
    assert capture.ok and len(capture.screenshots) == 2
    # 2-3. draft, review
    with FakeOpenAIServer(answer=drafting_reply) as models:
        endpoint = dict(base_url=models.url, api_key_env=None, use_cache=False)
        drafted = draft_questions(capture, OpenAIChatModel("drafter", **endpoint), n_questions=4, progress=False)
        reviewed = review_candidates(drafted, OpenAIChatModel("reviewer", **endpoint), progress=False)
    assert drafted.failures == [] and reviewed.failures == []
    assert [c.question for c in reviewed.candidates] == [
        "What is the storm called?", "What should coastal towns expect?", "Where does the storm arrive? Name the place.",
        "Which trade suffers?", "By how much did wheat prices rise?", "What could bread cost next month?"]
    assert [c.revised for c in reviewed.candidates] == [False, False, True, False, False, False]
    # 4. a person reviews with the keyboard: reject "Which trade suffers?", edit the wheat answer
    widget = LiveReviewWidget(reviewed, save_path=str(tmp_path / "live"))
    widget.key_box.value = "aaar"
    widget.key_box.value = "e"
    widget.answer_text.value = "4 %"
    widget.key_box.value = "aa"
    assert widget.session.done and widget.session.progress()["edited"] == 1
    widget.save_button.click()
    month = month_of(capture.screenshots[0].captured_at)
    ds = load_live_dataset(tmp_path / "live")
    assert ds["month"] == [month] * 5 and len(ds) == 5 and ds["answer"][3] == "4 %"
    assert ds["review_status"] == ["accepted", "accepted", "accepted", "edited", "accepted"]
    # 5. score: the set as a task, through evaluate, judged by the LLM judge
    with FakeOpenAIServer(answer=answering_reply, plan=always_fail_if(MODEL_FAILS_ON, status=400)) as answers, \
            FakeOpenAIServer(plan=judge_plan) as judges:
        judge = LLMJudge("judge", base_url=judges.url, api_key_env=None, cache_dir=tmp_path / "judge-cache",
                         max_retries=0)
        task = live_task(tmp_path / "live", judge)
        model = OpenAIChatModel("answerer", base_url=answers.url, api_key_env=None, use_cache=False, max_retries=0)
        run = lmms_nb.evaluate(model, task, output_dir=tmp_path / "runs", progress=False)
        judge_calls = judges.completions()
        answer_calls = answers.completions()

    assert task.name == f"live_bench_{month.replace('-', '_')}"
    # the canonical table, like any run
    samples = run.samples
    assert samples.columns[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    assert samples["category"].to_list() == ["Basic Understanding", "Deeper Implications", "Basic Understanding",
                                             "Contextual Analysis", "Further Insights"]
    assert samples["image_ref"].to_list() == [f"dataset:{tmp_path / 'live'}#{i}" for i in range(5)]
    got = samples["llm_judge"].to_list()
    # the failed judgement is missing (null, as the runner logs NaN), never 0; so is the model's error
    assert got == [1.0, 0.0, None, 1.0, None]
    assert samples["error"][4].startswith("HTTP 400") and samples["error"][:4].is_null().all()

    # LiveBench's table, by hand: scored = [1, 0, 1] -> 66.67; one failed judgement; one model error
    table = live_scores(run)
    assert table["subtask"].to_list() == ["Basic Understanding", "Contextual Analysis", "Deeper Implications",
                                          "Further Insights", "Total"]
    rows = {r["subtask"]: r for r in table.iter_rows(named=True)}
    assert (rows["Total"]["n"], rows["Total"]["n_scored"], rows["Total"]["n_judge_failed"],
            rows["Total"]["n_model_errors"]) == (5, 3, 1, 1)
    assert rows["Total"]["score"] == pytest.approx(200 / 3)
    assert rows["Total"]["stderr"] == pytest.approx(stats.sem([1.0, 0.0, 1.0]) * 100)
    assert (rows["Basic Understanding"]["score"], rows["Basic Understanding"]["n_judge_failed"]) == (100.0, 1)
    assert rows["Deeper Implications"]["score"] == 0.0 and rows["Contextual Analysis"]["score"] == 100.0
    assert rows["Further Insights"]["score"] is None and rows["Further Insights"]["n_model_errors"] == 1
    # the run's own aggregate is the same mean, failed judgements excluded rather than counted as 0
    assert run.score(task.name, "llm_judge") == pytest.approx(200 / 3)

    # what the models saw: the screenshot with the question; the judge the screenshot, reference and criteria
    shot_pixels = {s.url.rsplit("/", 1)[1]: np.asarray(s.image()) for s in capture.screenshots}
    by_question = {c.prompt: c for c in answer_calls}
    assert set(by_question) == set(ds["question"])
    assert (decode(by_question["By how much did wheat prices rise?"].image_urls[0]) == shot_pixels["market.html"]).all()
    assert len(judge_calls) == 4  # the model error is not judged
    wheat = next(c for c in judge_calls if "wheat" in c.prompt)
    assert "[Ground Truth Response]\n\n4 %" in wheat.prompt and "10 for 4 percent" in wheat.prompt
    assert (decode(wheat.image_urls[0]) == shot_pixels["market.html"]).all()

    # the logs on disk read back into the same table
    logged = lmms_nb.load_logs(tmp_path / "runs").sort("doc_id")
    assert logged["prediction"].to_list() == samples["prediction"].to_list()
    assert live_scores(logged).filter(pl.col("subtask") == "Total")["score"][0] == pytest.approx(200 / 3)


def test_live_task_without_a_judge_records_answers_only(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    from lmms_nb.live import Candidate
    from lmms_nb.models.baselines import FunctionModel

    png = tmp_path / "p.png"
    Image.new("RGB", (16, 16), (1, 2, 3)).save(png)
    cands = [Candidate(id=f"c{i}", subtask="Basic Understanding", question=f"Q{i}", answer="A", criteria="C",
                       image_path=str(png), url="http://127.0.0.1/", captured_at="2026-03-01T00:00:00+00:00",
                       png_sha256="0" * 64, html_sha256="", drafted_by="d", draft_template="livebench-draft@1")
             for i in range(3)]
    s = ReviewSession(cands)
    for _ in cands:
        s.accept()
    s.save(tmp_path / "live")
    seen = []
    task = live_task(tmp_path / "live", name="my_live", pre_prompt="Look. ", post_prompt=" Be brief.")
    run = lmms_nb.evaluate(FunctionModel(lambda images, prompt: seen.append((images, prompt)) or "A", name="m"),
                           task, output_dir=tmp_path / "runs", progress=False)
    assert [p for _, p in seen] == ["Look. Q0 Be brief.", "Look. Q1 Be brief.", "Look. Q2 Be brief."]
    assert all(np.asarray(imgs[0]).tolist() == [[[1, 2, 3]] * 16] * 16 for imgs, _ in seen)
    assert run.scores.height == 0 and run.samples["task"].unique().to_list() == ["my_live"]
    with pytest.raises(KeyError, match="no 'llm_judge' column"):
        live_scores(run)
    # a set whose questions changed is another task: a run of the old one is not resumed on it
    s.go(1)
    s.accept(question="Q1, reworded")
    s.save(tmp_path / "live")
    changed = live_task(tmp_path / "live", name="my_live", pre_prompt="Look. ", post_prompt=" Be brief.")
    assert changed.fingerprint() != task.fingerprint()
    assert live_task(tmp_path / "live", name="my_live", pre_prompt="Look. ", post_prompt=" Be brief.").fingerprint() \
        == changed.fingerprint()
