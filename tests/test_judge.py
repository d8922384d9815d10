"""The LLM judge (LiveBench rubric) against a real local OpenAI-compatible server."""

from __future__ import annotations

import json
import math

import datasets
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from _servers import Call, FakeOpenAIServer, Fault, always_fail_if
from lmms_nb.judge import (
    LIVEBENCH_RUBRIC,
    JudgeParseError,
    Judgement,
    LLMJudge,
    judge_aggregation,
    judge_metric,
    judge_score,
    parse_judge_reply,
)
from lmms_nb.tasks.task import Task

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "lmms_nb_cache"))


def _completion(content: str) -> str:
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})


def _judge(srv: FakeOpenAIServer, tmp_path, **kw) -> LLMJudge:
    kw.setdefault("api_key_env", None)
    kw.setdefault("cache_dir", tmp_path / "judge_cache")
    kw.setdefault("backoff_base_s", 0.01)
    kw.setdefault("max_retries", 2)
    return LLMJudge("judge-model", base_url=srv.url, **kw)


# ------------------------------------------------------------------------------------------------ parsing
@pytest.mark.parametrize(
    "reply, expected",
    [
        ('{"Explanation": "ok", "Rating": 7}', (7.0, "ok")),
        ('```json\n{"Explanation": "ok", "Rating": "9"}\n```', (9.0, "ok")),
        ('Here you go:\n```\n{"rating": 3.5, "explanation": "half"}\n```\nCheers', (3.5, "half")),
        ('I weigh {both} sides. Final: {"Rating": 0, "Explanation": "wrong"} done.', (0.0, "wrong")),
        ('{"Rating": "10"}', (10.0, None)),
        ('{"Explanation": "uses {braces} inside", "Rating": " 4 "}', (4.0, "uses {braces} inside")),
    ],
)
def test_parse_judge_reply_accepts_real_world_shapes(reply, expected):
    assert parse_judge_reply(reply) == expected


@pytest.mark.parametrize(
    "reply, message",
    [
        ("The answer deserves a 7.", "no JSON object"),
        ('{"Explanation": "no score"}', "no 'Rating' key"),
        ('{"Rating": "seven"}', "not a number"),
        ('{"Rating": true}', "not a number"),
        ('{"Rating": 11}', "outside 0-10"),
        ('{"Rating": -1}', "outside 0-10"),
        ('{"Rating": "NaN"}', "not a number"),
        ("", "no JSON object"),
    ],
)
def test_parse_judge_reply_rejects_with_a_clear_error(reply, message):
    with pytest.raises(JudgeParseError, match=message):
        parse_judge_reply(reply)


@settings(max_examples=60, deadline=None)
@given(
    rating=st.integers(0, 10) | st.floats(0, 10, allow_nan=False),
    explanation=st.text(max_size=40),
    before=st.text(alphabet=st.characters(blacklist_characters="{`"), max_size=30),
    after=st.text(max_size=30),
    fenced=st.booleans(),
    as_string=st.booleans(),
)
def test_parse_judge_reply_round_trips_any_rating(rating, explanation, before, after, fenced, as_string):
    obj = json.dumps({"Explanation": explanation, "Rating": str(rating) if as_string else rating})
    reply = f"{before}\n```json\n{obj}\n```\n{after}" if fenced else f"{before} {obj}"
    parsed_rating, parsed_explanation = parse_judge_reply(reply)
    assert parsed_rating == float(rating) and parsed_explanation == explanation


# ---------------------------------------------------------------------------------------------- scoring
def test_judge_score_excludes_and_counts_failures():
    # by hand: ok ratings 10, 4, 7 -> mean(1.0, 0.4, 0.7) * 100 = 70
    score, n_ok, n_failed = judge_score([10, Judgement(rating=4.0), None, Judgement(rating=None, error="x"), 7.0, math.nan])
    assert (round(score, 10), n_ok, n_failed) == (70.0, 3, 3)
    assert math.isnan(judge_score([None, None])[0]) and judge_score([None, None])[1:] == (0, 2)


def test_judge_aggregation_matches_scipy_and_skips_nan():
    from scipy import stats

    values = [1.0, 0.3, float("nan"), 0.8, 0.0]
    ok = np.array([1.0, 0.3, 0.8, 0.0])
    score, stderr = judge_aggregation(values, [{}] * len(values))
    assert score == pytest.approx(ok.mean() * 100)
    assert stderr == pytest.approx(stats.sem(ok) * 100)


def test_template_fields_are_checked():
    with pytest.raises(ValueError, match="unknown field.*'answer'"):
        LLMJudge("j", base_url="http://127.0.0.1:9/v1", api_key_env=None, prompt_template="{question} {answer}")
    with pytest.raises(ValueError, match=r"\{response\}"):
        LLMJudge("j", base_url="http://127.0.0.1:9/v1", api_key_env=None, prompt_template="{question} only")


# ------------------------------------------------------------------------------------ against a server
def test_judge_many_rates_fails_and_reports_against_a_server(tmp_path):
    def plan(call: Call) -> Fault | None:
        if "UNPARSEABLE" in call.prompt:
            return Fault(status=200, body=_completion("I would rather not give a number."))
        return always_fail_if("DOWN", 500)(call)

    items = [
        {"question": "Colour of the sky?", "response": "Blue", "ground_truth": "blue", "criteria": "colour name"},
        {"question": "How many legs has a cat?", "response": "three", "ground_truth": "four", "criteria": "exact"},
        {"question": "Capital of France?", "response": "Paris", "ground_truth": "Paris"},
        {"question": "UNPARSEABLE question", "response": "x", "ground_truth": "x", "criteria": ""},
        {"question": "DOWN question", "response": "y", "ground_truth": "y", "criteria": ""},
        {"question": "Empty answer?", "response": "  ", "ground_truth": "z", "criteria": ""},
    ]
    with FakeOpenAIServer(plan=plan) as srv:
        judge = _judge(srv, tmp_path)
        judgements = judge.judge_many(items)
        calls = srv.completions()

        assert [j.rating for j in judgements] == [10.0, 0.0, 10.0, None, None, 0.0]
        assert "no JSON object" in judgements[3].error and "rather not" in judgements[3].error
        assert "judge request failed" in judgements[4].error and "HTTP 500" in judgements[4].error
        assert judgements[5].explanation == "No response"  # an empty answer is wrong, not a failed judgement
        assert judgements[0].raw.startswith("Here is my judgement")
        # by hand: ok ratings 10, 0, 10, 0 -> 50; two failures reported
        assert judge_score(judgements) == (50.0, 4, 2)

        # the request: the rubric filled in, greedy, JSON mode; the empty answer never reached the judge
        first = [c for c in calls if "Colour of the sky?" in c.prompt][0]
        assert first.prompt == LIVEBENCH_RUBRIC.format(
            question="Colour of the sky?", response="Blue", ground_truth="blue", criteria="colour name"
        )
        assert first.body["response_format"] == {"type": "json_object"}
        assert (first.body["temperature"], first.body["max_tokens"]) == (0.0, 1024)
        assert not any("Empty answer?" in c.prompt for c in calls)
        assert len([c for c in calls if "DOWN" in c.prompt]) == 3  # max_retries=2 -> 3 attempts

        # judgements are cached: a new judge pays only for the failed ones (a request that failed, a reply
        # without a rating: neither is ever cached)
        n_before = len(srv.completions())
        again = _judge(srv, tmp_path).judge_many(items)
        new_calls = srv.completions()[n_before:]
        assert [j.rating for j in again] == [j.rating for j in judgements]
        assert {c.prompt.split("\n")[2] for c in new_calls} == {"DOWN question", "UNPARSEABLE question"}


def test_judge_sees_the_images(tmp_path):
    image = Image.fromarray(np.full((8, 8, 3), 200, dtype=np.uint8))
    with FakeOpenAIServer() as srv:
        j = _judge(srv, tmp_path, json_mode=False).judge("What is it?", "grey", "grey", "", images=[image])
        [call] = srv.completions()
    assert j.rating == 10.0
    assert len(call.image_urls) == 1 and call.image_urls[0].startswith("data:image/png;base64,")
    assert "response_format" not in call.body


def _judge_task(judge_metric_obj) -> Task:
    rows = {
        "image": [Image.fromarray(np.full((8, 8, 3), 40 * i, dtype=np.uint8)) for i in range(6)],
        "question": [f"Q{i}: what is item {i}?" for i in range(6)],
        "answer": [f"item-{i}" for i in range(6)],
        "criteria": ["exact name"] * 6,
    }
    ds = datasets.Dataset.from_dict(rows)
    return Task(
        name="judged",
        load=lambda: ds,
        doc_to_visual=lambda d: [d["image"]],
        doc_to_text=lambda d: d["question"],
        doc_to_target=lambda d: d["answer"],
        metrics=[judge_metric_obj],
        image_column="image",
    )


def test_judge_metric_scores_a_task_end_to_end_with_evaluate(tmp_path, monkeypatch):
    """A model on the server answers; the judge on the same server rates; evaluate() aggregates."""
    from lmms_nb.models.openai_compat import OpenAIChatModel
    from lmms_nb.runner import evaluate

    def answer(prompt: str, n_images: int) -> str:
        i = int(prompt[1])
        return "wrong" if i == 4 else f"item-{i}"  # Q4 wrong, the others right

    def plan(call: Call) -> Fault | None:  # the judge cannot rate sample 5
        if "[Ground Truth Response]" in call.prompt and "Q5:" in call.prompt:
            return Fault(status=200, body=_completion('{"Rating": 42}'))
        return None

    key = "sk-judge-test-0123456789abcdef"
    monkeypatch.setenv("LMMS_NB_E2E_KEY", key)
    with FakeOpenAIServer(plan=plan, answer=answer, require_key=key) as srv:
        metric = judge_metric(model="judge-model", base_url=srv.url, api_key_env="LMMS_NB_E2E_KEY",
                              cache_dir=tmp_path / "judge_cache")
        model = OpenAIChatModel("vlm", base_url=srv.url, api_key_env="LMMS_NB_E2E_KEY", cache_dir=tmp_path / "vlm_cache")
        run = evaluate(model, _judge_task(metric), output_dir=tmp_path / "out", progress=False, batch_size=3)

    values = run.samples.sort("doc_id")["llm_judge"].to_list()
    assert values[:5] == [1.0, 1.0, 1.0, 1.0, 0.0] and (values[5] is None or math.isnan(values[5]))
    # by hand: mean(1, 1, 1, 1, 0) * 100 = 80 over the 5 rated; the failed one is missing, not 0
    assert run.score("judged", "llm_judge") == pytest.approx(80.0)
    assert len(metric.score.failures) == 1 and "outside 0-10" in metric.score.failures[0][1]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path


def test_judge_metric_needs_a_judge_or_its_arguments():
    with pytest.raises(TypeError, match="model="):
        judge_metric()
    with pytest.raises(KeyError, match="'question'"):
        judge_metric(model="j", base_url="http://127.0.0.1:9/v1", api_key_env=None).score("a", "a", {"q": "x"})
