"""Draft and review against a real local OpenAI-compatible server standing in for the two models.

The server (tests/_servers.py) answers drafting prompts with replies of every shape models produce: fenced
JSON, JSON inside chatter with odd key spellings, truncated JSON, prose without JSON, items lacking fields or
with an unknown category, and a 500 on every attempt. Expected candidates and failures are written out by
hand from those replies; the images the server received are decoded and compared with the screenshots.
"""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from _servers import FakeOpenAIServer, always_fail_if
from lmms_nb.live import (
    DRAFT_TEMPLATE,
    REVIEW_TEMPLATE,
    SUBTASK_DESCRIPTIONS,
    SUBTASKS,
    Candidate,
    DraftResult,
    PromptTemplate,
    ReplyParseError,
    TemplateError,
    draft_questions,
    extract_json,
    load_candidates,
    parse_draft_reply,
    parse_review_reply,
    review_candidates,
    save_candidates,
    screenshot_from_file,
)
from lmms_nb.models.openai_compat import OpenAIChatModel

pytestmark = pytest.mark.timeout(120)

COLOURS = {"good": (200, 30, 30), "chatty": (30, 200, 30), "broken": (30, 30, 200), "partial": (200, 200, 30),
           "prose": (30, 200, 200), "fail": (200, 30, 200)}

GOOD_REPLY = """```json
{"questions": [
  {"subtask": "Basic Understanding", "question": "What is the top headline?", "answer": "Rain on Tuesday",
   "criteria": ["10: names the rain forecast", "0: anything else"]},
  {"subtask": "Deeper Implications", "question": "Why might schools close?", "answer": "Flooding",
   "criteria": "10 if it links the rain to flooding"}
]}
```"""
CHATTY_REPLY = """Of course! Here are the questions you asked for:
{"Questions": [{"Category": "contextual analysis", "Question": "Which city is the story about?",
 "Reference Answer": "Lyon", "Grading Criteria": "10 for Lyon, 0 otherwise"}]}
Let me know if you want more."""
BROKEN_REPLY = '{"questions": [{"subtask": "Basic Understanding", "question": "cut off'
PARTIAL_REPLY = json.dumps([
    {"subtask": "Basic Understanding", "question": "How many posts?", "answer": "12"},
    {"subtask": "Trivia", "question": "Who won?", "answer": "Nobody", "criteria": "10 if nobody"},
    {"subtask": "Further Insights", "question": "What could the forum add?", "answer": 3,
     "criteria": "10 for a search box"},
])
PROSE_REPLY = "I am sorry, I cannot write questions about this page."


def drafting_and_reviewing(prompt: str, n_images: int) -> str:
    """What the stand-in drafting/reviewing model says, decided by the page in the prompt."""
    if prompt.startswith("You write questions"):
        for name, reply in (("good", GOOD_REPLY), ("chatty", CHATTY_REPLY), ("broken", BROKEN_REPLY),
                            ("partial", PARTIAL_REPLY), ("prose", PROSE_REPLY)):
            if f"127.0.0.1/{name}" in prompt:
                return reply
    if prompt.startswith("You review"):
        fields = dict(re.findall(r"^(Category|Question|Reference answer): (.*)$", prompt, re.M))
        fields["Grading criteria"] = _criteria_block(prompt)  # may span several lines
        question = fields["Question"]
        if "headline" in question:  # a good question: the reviewer keeps it as it is
            return json.dumps({"subtask": fields["Category"], "question": question,
                               "answer": fields["Reference answer"], "criteria": fields["Grading criteria"],
                               "notes": "no change"})
        if "schools" in question:
            return "Looks fine to me, but {this is not JSON"
        return "```json\n" + json.dumps({"Subtask": fields["Category"], "Question": question + " (be specific)",
                                         "Answer": fields["Reference answer"], "Criteria": fields["Grading criteria"],
                                         "Notes": "asked for specifics"}) + "\n```"
    return "unexpected prompt"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def server():
    with FakeOpenAIServer(answer=drafting_and_reviewing, plan=always_fail_if("127.0.0.1/fail", status=500)) as srv:
        yield srv


def model(srv: FakeOpenAIServer, name: str) -> OpenAIChatModel:
    return OpenAIChatModel(name, base_url=srv.url, api_key_env=None, use_cache=False, max_retries=1,
                           backoff_base_s=0.01, concurrency=4)


@pytest.fixture
def shots(tmp_path):
    out = []
    for name, colour in COLOURS.items():
        path = tmp_path / f"{name}.png"
        Image.new("RGB", (64, 48), colour).save(path)
        out.append(screenshot_from_file(path, url=f"http://127.0.0.1/{name}", captured_at="2026-11-02T08:00:00+00:00"))
    return out


def decode_data_url(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


# -------------------------------------------------------------------------------------------------- draft
def test_draft_keeps_good_items_and_lists_every_failure(server, shots):
    result = draft_questions(shots, model(server, "drafter-x"), n_questions=2, batch_size=4, progress=False)
    got = [(c.url.rsplit("/", 1)[1], c.subtask, c.question, c.answer, c.criteria) for c in result.candidates]
    assert got == [
        ("good", "Basic Understanding", "What is the top headline?", "Rain on Tuesday",
         "10: names the rain forecast\n0: anything else"),
        ("good", "Deeper Implications", "Why might schools close?", "Flooding", "10 if it links the rain to flooding"),
        ("chatty", "Contextual Analysis", "Which city is the story about?", "Lyon", "10 for Lyon, 0 otherwise"),
        ("partial", "Further Insights", "What could the forum add?", "3", "10 for a search box"),
    ]
    failures = {(f.url.rsplit("/", 1)[1], f.stage): f for f in result.failures}
    assert len(result.failures) == 5
    messages = [f.error for f in result.failures]
    assert any("broken.png" in m and "no JSON object or list" in m for m in messages)
    assert any("prose.png" in m and "no JSON object or list" in m and "I am sorry" in m for m in messages)
    assert any("partial.png" in m and "question 0 lacks ['criteria']" in m for m in messages)
    assert any("partial.png" in m and "question 1 has subtask 'Trivia'" in m for m in messages)
    assert any("fail.png" in m and "drafting request failed: HTTP 500" in m for m in messages)
    assert failures[("broken", "draft")].raw == BROKEN_REPLY
    # provenance on every candidate
    for c in result.candidates:
        assert c.drafted_by == "drafter-x" and c.draft_template == "livebench-draft@1"
        assert c.captured_at == "2026-11-02T08:00:00+00:00" and len(c.png_sha256) == 64
    assert len({c.id for c in result.candidates}) == 4


def test_draft_requests_carry_the_screenshot_and_the_rendered_template(server, shots):
    draft_questions(shots[:2], model(server, "drafter"), n_questions=5, progress=False)
    calls = sorted(server.completions(), key=lambda c: c.prompt)
    assert len(calls) == 2
    for call in calls:
        name = re.search(r"127\.0\.0\.1/(\w+)", call.prompt).group(1)
        categories = "\n".join(f"- {s}: {SUBTASK_DESCRIPTIONS[s]}" for s in SUBTASKS)
        assert call.prompt == DRAFT_TEMPLATE.render(url=f"http://127.0.0.1/{name}", n_questions=5,
                                                    captured_at="2026-11-02T08:00:00+00:00", subtasks=categories)
        assert "Write 5 question(s)" in call.prompt
        assert len(call.image_urls) == 1
        sent = np.asarray(decode_data_url(call.image_urls[0]))
        assert sent.shape == (48, 64, 3) and (sent == COLOURS[name]).all()
        assert call.body["max_tokens"] == 2048
    for s in SUBTASKS:
        assert f"- {s}: " in calls[0].prompt


def _subtask_lines(prompt: str) -> str:
    return "\n".join(line for line in prompt.splitlines() if line.startswith("- ") and ":" in line
                     and line[2:].split(":")[0] in SUBTASKS)


def test_an_edited_template_is_used_and_recorded(server, shots):
    mine = DRAFT_TEMPLATE.edited("You write questions. Page: $url. Categories:\n$subtasks\nReply in JSON.")
    assert mine.version.startswith("1+") and mine.version != "1"
    result = draft_questions([shots[0]], model(server, "drafter"), template=mine, progress=False)
    assert [c.draft_template for c in result.candidates] == [mine.id, mine.id]
    (call,) = server.completions()
    assert call.prompt.startswith("You write questions. Page: http://127.0.0.1/good. Categories:\n- Basic Understanding")


def test_a_template_with_a_field_the_step_cannot_fill_fails_before_any_request(server, shots):
    bad = PromptTemplate("mine", "1", "Questions about $url in $language")
    with pytest.raises(TemplateError, match=r"template mine@1 uses \$language"):
        draft_questions(shots, model(server, "drafter"), template=bad, progress=False)
    assert server.completions() == []


def test_a_model_that_raises_fails_only_the_culprit_request(shots):
    """The runner's safe-generate helper: a raising batch is retried one request at a time."""
    culprit = shots[1].url

    class Flaky:
        name, model_args, calls = "flaky", {}, 0

        def generate(self, requests):
            self.calls += 1
            if any(culprit in r.prompt for r in requests):
                raise ConnectionError("endpoint went away")
            return [type("R", (), {"text": GOOD_REPLY, "error": None})() for _ in requests]

    model = Flaky()
    result = draft_questions(shots[:4], model, batch_size=2, progress=False)
    assert [(f.url, f.error.split(": ", 2)[-1]) for f in result.failures] == [
        (culprit, "ConnectionError: endpoint went away")]
    assert len(result.candidates) == 6  # three screenshots x two questions
    assert model.calls == 2 + 2  # two batches, then the failing batch's two requests alone


# ------------------------------------------------------------------------------------------------- review
def test_review_revises_keeps_and_flags_failed_reviews(server, shots):
    drafted = draft_questions(shots, model(server, "drafter"), progress=False)
    server.reset()
    reviewed = review_candidates(drafted, model(server, "reviewer-y"), progress=False)
    assert [c.id for c in reviewed.candidates] == [c.id for c in drafted.candidates]
    by_q = {c.draft["question"] if c.draft else c.question: c for c in reviewed.candidates}
    kept = by_q["What is the top headline?"]
    assert not kept.revised and kept.draft is None and kept.review_notes == "no change"
    assert kept.fields() == drafted.candidates[0].fields()
    failed = by_q["Why might schools close?"]
    assert failed.review_error and "no JSON object" in failed.review_error and "schools" not in failed.review_error
    assert failed.fields() == drafted.candidates[1].fields()  # kept as drafted
    revised = by_q["Which city is the story about?"]
    assert revised.revised and revised.question == "Which city is the story about? (be specific)"
    assert revised.draft == drafted.candidates[2].fields() and revised.review_notes == "asked for specifics"
    for c in reviewed.candidates:
        assert c.reviewed_by == "reviewer-y" and c.review_template == "livebench-review@1"
    assert [(f.stage, f.candidate_id) for f in reviewed.failures] == [("review", drafted.candidates[1].id)]
    assert "chatty.png" not in reviewed.failures[0].error and "good.png" in reviewed.failures[0].error
    # one request per candidate, each with its screenshot
    calls = server.completions()
    assert len(calls) == len(drafted.candidates)
    assert all(len(c.image_urls) == 1 for c in calls)
    assert all(c.prompt == REVIEW_TEMPLATE.render(**_review_fields(c.prompt)) for c in calls)


def _review_fields(prompt: str) -> dict[str, str]:
    f = dict(re.findall(r"^(Category|Question|Reference answer|Grading criteria): (.*)$", prompt, re.M))
    url = re.search(r"screenshot of (\S+)\.\n", prompt).group(1)
    return {"url": url, "subtask": f["Category"], "question": f["Question"], "answer": f["Reference answer"],
            "criteria": _criteria_block(prompt), "subtasks": _subtask_lines(prompt)}


def _criteria_block(prompt: str) -> str:
    return prompt.split("Grading criteria: ", 1)[1].split("\n\nCheck that", 1)[0]


# ------------------------------------------------------------------------------------------------ parsing
@pytest.mark.parametrize("reply, message", [
    ("", "empty reply"),
    ("just words", "no JSON object or list"),
    ('{"answer": "x"}', "no 'questions' list"),
    ('{"questions": []}', "empty or not a list"),
    ('{"questions": "none"}', "empty or not a list"),
])
def test_draft_reply_errors_name_the_screenshot(reply, message):
    with pytest.raises(ReplyParseError, match=message) as info:
        parse_draft_reply(reply, source="screenshot p.png")
    assert str(info.value).startswith("screenshot p.png: ")


def test_review_reply_shapes():
    one = {"subtask": "broader implications", "question": "Q", "answer": "A", "criteria": "C"}
    assert parse_review_reply(json.dumps([one]), source="s")["subtask"] == "Broader Implications"
    assert parse_review_reply(json.dumps({"revised": one}), source="s")["question"] == "Q"
    with pytest.raises(ReplyParseError, match=r"s: review lacks \['answer'\]"):
        parse_review_reply('{"subtask": "Further Insights", "question": "Q", "criteria": "C"}', source="s")
    with pytest.raises(ReplyParseError, match="list of 2 items"):
        parse_review_reply(json.dumps([one, one]), source="s")


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="`"), min_size=1,
               max_size=40).filter(lambda s: s.strip())


@settings(max_examples=60, deadline=None)
@given(items=st.lists(st.fixed_dictionaries({"subtask": st.sampled_from(SUBTASKS), "question": text,
                                              "answer": text, "criteria": text}), min_size=1, max_size=4),
       before=st.sampled_from(["", "Here you go:\n", "Sure! {not json} then "]),
       fenced=st.booleans())
def test_any_wellformed_reply_round_trips(items, before, fenced):
    body = json.dumps({"questions": items}, ensure_ascii=False)
    reply = before + (f"```json\n{body}\n```" if fenced else body) + "\nThanks."
    parsed, problems = parse_draft_reply(reply, source="s")
    assert problems == []
    assert parsed == [{k: v.strip() for k, v in item.items()} for item in items]


def test_extract_json_prefers_the_fenced_block():
    assert extract_json('{"a": 1} and ```json\n{"b": 2}\n```') == {"b": 2}


# --------------------------------------------------------------------------------------------- templates
def test_template_render_and_errors():
    t = PromptTemplate("t", "3", "A $x and ${y}, costs $$5.")
    assert t.fields == ("x", "y") and t.id == "t@3"
    assert t.render(x=1, y="two") == "A 1 and two, costs $5."
    with pytest.raises(TemplateError, match=r"t@3 needs field\(s\) \['y'\]"):
        t.render(x=1)
    with pytest.raises(TemplateError, match=r"t@3 has no field\(s\) \['z'\]"):
        t.render(x=1, y=2, z=3)
    with pytest.raises(TemplateError, match="malformed placeholder at line 2"):
        PromptTemplate("bad", "1", "fine\ncosts $5")
    assert t.edited("B $x", version="4").id == "t@4"
    assert t.edited("B $x").version == t.edited("B $x").version != t.edited("C $x").version
    assert set(DRAFT_TEMPLATE.fields) == {"url", "captured_at", "n_questions", "subtasks"}
    assert set(REVIEW_TEMPLATE.fields) == {"url", "subtask", "question", "answer", "criteria", "subtasks"}


# ---------------------------------------------------------------------------------------------- on disk
def test_candidates_save_and_load(server, shots, tmp_path):
    drafted = draft_questions(shots, model(server, "drafter"), progress=False)
    path = save_candidates(drafted, tmp_path / "candidates.jsonl")
    assert load_candidates(path) == drafted.candidates
    assert str(tmp_path) not in path.read_text()  # images below the file's folder are stored relative
    lines = path.read_text().splitlines()
    broken = json.loads(lines[1])
    del broken["criteria"]
    path.write_text("\n".join([lines[0], json.dumps(broken)]) + "\n")
    with pytest.raises(ValueError, match=r"candidates\.jsonl:2: candidate lacks field\(s\) \['criteria'\]"):
        load_candidates(path)
    path.write_text(lines[0] + "\n{oops\n")
    with pytest.raises(ValueError, match=r"candidates\.jsonl:2: not valid JSON"):
        load_candidates(path)


def test_draft_result_tables(server, shots):
    result = draft_questions(shots, model(server, "drafter"), progress=False)
    table = result.to_polars()
    assert table.height == len(result.candidates) and table["subtask"].to_list()[0] == "Basic Understanding"
    assert result.failures_to_polars().height == len(result.failures)
    assert isinstance(result, DraftResult) and all(isinstance(c, Candidate) for c in result.candidates)
