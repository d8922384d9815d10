"""The human review: `ReviewSession` (decisions, cursor, journal, save) and `LiveReviewWidget` without a browser.

The widget is driven as a person would: typing letters into its key box (setting its value, which is what
the frontend sends), clicking buttons (`.click()`), editing the text areas. Expected decisions, counts and
saved rows are written out by hand; saved images are compared pixel by pixel with the screenshots.
"""

from __future__ import annotations

import dataclasses
import json

import datasets
import numpy as np
import pytest
from PIL import Image

from lmms_nb.live import Candidate, ReviewSession, load_live_dataset
from lmms_nb.widgets._live_review import LiveReviewWidget

pytestmark = pytest.mark.timeout(120)

XSS = '<img src=x onerror="window.__xss=1">'
COLOURS = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0), (0, 250, 250)]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def candidates(tmp_path):
    out = []
    for i, colour in enumerate(COLOURS):
        path = tmp_path / f"shot{i}.png"
        Image.new("RGB", (40 + i, 30), colour).save(path)
        out.append(Candidate(
            id=f"c{i}", subtask="Basic Understanding" if i % 2 == 0 else "Further Insights",
            question=f"Question {i}?", answer=f"Answer {i}", criteria=f"10 if answer {i}", image_path=str(path),
            url=f"http://127.0.0.1/page{i}", captured_at=f"2026-1{i % 2}-0{i + 1}T09:00:00+00:00",
            png_sha256=f"{i:064d}", html_sha256=f"{i + 1:064d}", drafted_by="drafter", draft_template="livebench-draft@1",
            reviewed_by="reviewer", review_template="livebench-review@1",
        ))
    # untrusted model output everywhere a person will see it
    out[1] = dataclasses.replace(out[1], question=f"Q {XSS}", review_notes=f"notes {XSS}", revised=True,
                                 draft={"subtask": "Further Insights", "question": f"draft {XSS}", "answer": "a",
                                        "criteria": "c"}, url=f"http://127.0.0.1/{XSS}")
    out[2] = dataclasses.replace(out[2], review_error=f"review failed {XSS}")
    return out


# ------------------------------------------------------------------------------------------------ session
def test_decisions_progress_and_cursor(candidates):
    s = ReviewSession(candidates)
    assert s.current.id == "c0" and s.progress()["remaining"] == 5
    assert s.accept().status == "accepted" and s.current.id == "c1"
    d = s.accept(question="  A better question?  ", subtask="further_insights")
    assert (d.status, d.fields["question"], d.fields["subtask"]) == ("edited", "A better question?", "Further Insights")
    assert s.reject().status == "rejected" and s.current.id == "c3"
    # the same values as the candidate's are not an edit
    assert s.accept(question="Question 3?").status == "accepted"
    s.go(0)
    assert s.reject().status == "rejected"  # re-deciding replaces the decision
    assert s.current.id == "c4"  # the next undecided one
    assert s.progress() == {"total": 5, "decided": 4, "accepted": 1, "edited": 1, "rejected": 2, "remaining": 1}
    assert not s.done
    s.undo(s.candidates[2])
    assert s.progress()["rejected"] == 1 and s.decision(s.candidates[2]) is None
    assert [c.id for c in s.accepted()] == ["c1", "c3"]
    assert s.accepted()[0].question == "A better question?"


def test_bad_edits_are_refused_with_the_field_named(candidates):
    s = ReviewSession(candidates)
    with pytest.raises(ValueError, match="candidate c0: answer cannot be empty"):
        s.accept(answer="   ")
    with pytest.raises(ValueError, match="candidate c0: subtask 'Gossip' is not one of"):
        s.accept(subtask="Gossip")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['rating'\]"):
        s.accept(rating="10")
    assert s.progress()["decided"] == 0 and s.current.id == "c0"
    with pytest.raises(ValueError, match="duplicate candidate id"):
        ReviewSession([candidates[0], candidates[0]])
    with pytest.raises(ValueError, match="no candidates"):
        ReviewSession([]).accept()


def test_journal_resumes_a_review(candidates, tmp_path):
    journal = tmp_path / "decisions.jsonl"
    s = ReviewSession(candidates, journal=journal)
    s.accept()
    s.accept(answer="Edited answer")
    s.reject()
    s.go(0)
    s.undo()
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [(r["candidate_id"], r["status"]) for r in lines] == [
        ("c0", "accepted"), ("c1", "edited"), ("c2", "rejected"), ("c0", None)]
    with journal.open("a") as fh:  # a crash in the middle of writing a decision
        fh.write('{"candidate_id": "c3", "sta')
    again = ReviewSession(candidates, journal=journal)
    assert {k: (d.status, d.fields["answer"]) for k, d in again.decisions.items()} == {
        "c1": ("edited", "Edited answer"), "c2": ("rejected", "Answer 2")}
    assert again.current.id == "c0"  # starts at the first undecided candidate
    # a journal over other candidates: their decisions are ignored
    assert ReviewSession(candidates[3:], journal=journal).decisions == {}
    journal.write_text('{"candidate_id": "c0", "status": "maybe", "fields": {}}\n{"candidate_id": "c1"}\n')
    with pytest.raises(ValueError, match=r"decisions\.jsonl:1: status 'maybe'"):
        ReviewSession(candidates, journal=journal)


def test_save_writes_the_accepted_set_tagged_with_its_month(candidates, tmp_path):
    s = ReviewSession(candidates)
    s.accept()
    s.accept(criteria="10 if it says green")
    s.reject()
    s.reject()
    s.accept()
    ds = s.save(tmp_path / "live")
    assert isinstance(ds, datasets.Dataset)
    assert ds["id"] == ["c0", "c1", "c4"]
    assert ds["review_status"] == ["accepted", "edited", "accepted"]
    assert ds["criteria"] == ["10 if answer 0", "10 if it says green", "10 if answer 4"]
    # the latest capture is c1's 2026-11-02 (c0 and c4 were in October): that is the month
    assert ds["month"] == ["2026-11"] * 3 and "month 2026-11" in ds.info.description
    assert ds["website"][0] == "http://127.0.0.1/page0" and ds["date_time"][2] == "2026-10-05T09:00:00+00:00"
    assert ds["data_generator"] == ["drafter"] * 3 and ds["checker"] == ["reviewer"] * 3
    assert ds["png_sha256"][2] == f"{4:064d}"
    for row, i in zip(ds, (0, 1, 4)):
        pixels = np.asarray(row["images"][0].convert("RGB"))
        assert pixels.shape == (30, 40 + i, 3) and (pixels == COLOURS[i]).all()
    reloaded = load_live_dataset(tmp_path / "live")
    assert reloaded["question"] == ds["question"] and reloaded.info.description == ds.info.description
    assert s.save(tmp_path / "live2", month="2027-01")["month"] == ["2027-01"] * 3
    with pytest.raises(ValueError, match="month must look like '2026-11'"):
        s.save(tmp_path / "live3", month="11/2026")
    with pytest.raises(ValueError, match="no candidates to save"):
        ReviewSession(candidates).save(tmp_path / "live4")


def test_load_live_dataset_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved dataset"):
        load_live_dataset(tmp_path)
    datasets.Dataset.from_dict({"question": ["q"]}).save_to_disk(str(tmp_path / "other"))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['id', 'images', 'answer', 'criteria', 'subtask', 'month'\]"):
        load_live_dataset(tmp_path / "other")


# ------------------------------------------------------------------------------------------------- widget
def shown(w: LiveReviewWidget) -> tuple:
    return (w.subtask_select.value, w.question_text.value, w.answer_text.value, w.criteria_text.value)


def test_widget_shows_the_screenshot_beside_the_candidate(candidates):
    w = LiveReviewWidget(candidates)
    with open(candidates[0].image_path, "rb") as fh:
        assert w.image.value == fh.read()
    assert shown(w) == ("Basic Understanding", "Question 0?", "Answer 0", "10 if answer 0")
    assert all(x.disabled for x in (w.question_text, w.answer_text, w.criteria_text, w.subtask_select))
    assert w.progress_bar.value == 0 and w.progress_bar.max == 5
    assert "0 / 5 decided" in w.progress_html.value
    assert "candidate 1 of 5" in w.meta_html.value and "http://127.0.0.1/page0" in w.meta_html.value


def test_keys_accept_edit_reject_and_move(candidates):
    w = LiveReviewWidget(candidates)
    w.key_box.value = "a"
    assert w.key_box.value == "" and w.session.decision(candidates[0]).status == "accepted"
    assert w.session.current.id == "c1" and w.progress_bar.value == 1
    w.key_box.value = "e"
    assert w.editing and not w.question_text.disabled
    w.question_text.value = "Which colour is the page?"
    w.key_box.value = "a"
    d = w.session.decision(candidates[1])
    assert d.status == "edited" and d.fields["question"] == "Which colour is the page?"
    assert not w.editing and w.question_text.disabled
    w.key_box.value = "r"
    assert w.session.decision(candidates[2]).status == "rejected"
    w.key_box.value = "p"
    assert w.session.current.id == "c2" and "data-status='rejected'" in w.meta_html.value
    w.key_box.value = "pp"  # two letters in one update (fast typing): both act
    assert w.session.current.id == "c0"
    w.key_box.value = "n"
    assert shown(w)[1] == "Which colour is the page?"  # a decided candidate shows its decided fields
    w.key_box.value = "x"
    assert "unknown key &#x27;x&#x27;" in w.status_html.value
    w.key_box.value = "?"
    assert "a accept" in w.status_html.value
    w.key_box.value = "A"  # caps lock on
    assert w.session.decision(candidates[1]).status == "edited" and w.session.current.id == "c3"
    assert w.progress_bar.value == 3 and "3 / 5 decided · 1 accepted · 1 edited · 1 rejected" in w.progress_html.value


def test_buttons_do_what_the_keys_do(candidates):
    w = LiveReviewWidget(candidates)
    w.reject_button.click()
    w.edit_button.click()
    w.answer_text.value = ""
    w.accept_button.click()  # an empty answer is refused, and said so
    assert w.session.decision(candidates[1]) is None and "answer cannot be empty" in w.status_html.value
    w.answer_text.value = "Answer one, fixed"
    w.accept_button.click()
    assert w.session.decision(candidates[1]).fields["answer"] == "Answer one, fixed"
    w.next_button.click()
    w.prev_button.click()
    assert w.session.current.id == "c2"
    assert w.session.progress()["decided"] == 2


def test_everything_from_the_models_is_escaped(candidates):
    w = LiveReviewWidget(candidates)
    w.next()
    page = w.meta_html.value + w.status_html.value + w.progress_html.value
    assert "<img" not in page and "onerror=&quot;" in page
    assert "notes &lt;img src=x" in page and "draft &lt;img src=x" in page and "127.0.0.1/&lt;img" in page
    assert w.question_text.value == f"Q {XSS}"  # a text area shows the characters, it renders no HTML
    w.next()
    assert "review failed &lt;img" in w.meta_html.value and "<img" not in w.meta_html.value
    w.save_path_text.value = str(candidates[0].image_path) + f"/{XSS}"
    w.accept()
    w.save()
    assert "<img" not in w.status_html.value and "not saved" in w.status_html.value


def test_save_button_writes_the_dataset(candidates, tmp_path):
    saved = []
    w = LiveReviewWidget(candidates, save_path=tmp_path / "month", on_saved=saved.append)
    w.save_button.click()
    assert "not saved: no candidates to save" in w.status_html.value and w.dataset is None
    w.key_box.value = "arara"
    assert w.session.done and "all candidates decided" in w.status_html.value
    w.month_text.value = "2026-12"
    w.save_button.click()
    assert saved and saved[0] is w.dataset and w.dataset["id"] == ["c0", "c2", "c4"]
    assert load_live_dataset(tmp_path / "month")["month"] == ["2026-12"] * 3
    assert "saved 3 question(s), month 2026-12" in w.status_html.value
    w.month_text.value = "December"
    w.save_button.click()
    assert "month must look like" in w.status_html.value
    w.save_path_text.value = ""
    w.save_button.click()
    assert "give a folder" in w.status_html.value


def test_widget_resumes_from_a_journal(candidates, tmp_path):
    journal = tmp_path / "j.jsonl"
    w = LiveReviewWidget(candidates, journal=journal)
    w.key_box.value = "ar"
    again = LiveReviewWidget(candidates, journal=journal)
    assert again.session.current.id == "c2" and again.progress_bar.value == 2
    assert LiveReviewWidget(ReviewSession(candidates)).progress_bar.value == 0
    empty = LiveReviewWidget([])
    empty.key_box.value = "a"
    assert "nothing to review" in empty.status_html.value and "no candidates" in empty.meta_html.value
