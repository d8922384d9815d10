"""rescore(): recomputing metrics from logged predictions reproduces what lmms-eval logged on real runs, and the
vectorised polars paths agree exactly with the Python scorers of lmms_nb.metrics."""

from __future__ import annotations

import json
import string

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lmms_nb
from lmms_nb.logs._rescore import rescore
from lmms_nb.metrics import METRICS, anls, exact_match, yes_no_accuracy

from conftest import REALWORLD  # noqa: E402 - the one definition of where ../shared/realworld is

LMMS = REALWORLD / "lmms_eval"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))


def test_rescore_reproduces_scienceqa_exact_match(realworld):
    folder = LMMS / "shruum__lmms-eval/results/liuhaotian__llava-v1.5-7b"
    df = lmms_nb.load_logs(folder)
    config = json.loads(next(folder.glob("*_results.json")).read_text())["configs"]["scienceqa_img"]["metric_list"][0]
    options = {k: config[k] for k in ("ignore_case", "ignore_punctuation")}
    assert options == {"ignore_case": True, "ignore_punctuation": True}
    again = rescore(df.drop("exact_match"), "exact_match", **options)
    assert again["exact_match"].to_list() == df["exact_match"].to_list()  # all 2017 rows
    assert again.columns == df.drop("exact_match").columns + ["exact_match"]
    # the row-by-row Python scorer gives the same numbers as the vectorised path
    slow = rescore(df, lambda p, t, doc: exact_match(p, t, **options), name="exact_match")
    assert slow["exact_match"].to_list() == df["exact_match"].to_list()
    assert round(slow["exact_match"].mean(), 5) == 0.69509
    assert rescore(df, "exact_match")["exact_match"].mean() <= df["exact_match"].mean()


def test_rescore_reproduces_mme_yes_no(realworld):
    df = lmms_nb.load_logs(LMMS / "michalszczepanski91__lmms-eval/jetson/results-thor")
    again = rescore(df, "yes_no_accuracy")
    assert again["yes_no_accuracy"].to_list() == df["mme_cognition_score"].to_list()
    assert again["yes_no_accuracy"].sum() == 14  # 7 of 8 right for each model


def test_rescore_reproduces_motion_bench_choices(realworld):
    out = LMMS / "shaydamoezzi__lmms-eval/output"
    df = lmms_nb.load_logs([out / "smoke_test", out / "smoke_test_qwen"])
    again = rescore(df, "choice_accuracy")
    assert again["choice_accuracy"].to_list() == df["motion_analysis_bench_acc"].to_list()  # "D." and "E. C stirring..."
    means = again.group_by("model").agg(pl.col("choice_accuracy").mean() * 100).sort("model")["choice_accuracy"]
    assert [round(x, 2) for x in means] == [46.15, 61.54]


def test_names_options_errors_and_list_targets():
    df = pl.DataFrame({
        "doc_id": [0, 1, 2, 3],
        "prediction": ["helo", "Hello", "bye", None],
        "target": ["hello", json.dumps(["hi", "hello"]), "bye", "x"],
        "error": [None, None, "timeout", None],
        "exact_match": [9.0, 9.0, 9.0, 9.0],
    })
    out = rescore(df, "exact_match")
    assert out["exact_match"].to_list() == [0.0, 0.0, None, 0.0]  # replaced in place; error row -> null
    assert out.columns == df.columns
    assert rescore(df, "exact_match", ignore_case=True)["exact_match"].to_list() == [0.0, 1.0, None, 0.0]  # any target
    assert rescore(df, "anls")["anls"].to_list() == [0.8, 1.0, None, 0.0]  # 1 - 1/5; "Hello" ~ "hello"
    assert rescore(df, "anls", threshold=0.9)["anls"].to_list() == [0.0, 1.0, None, 0.0]
    assert rescore(df, "anls", name="anls_strict", threshold=0.9).columns[-1] == "anls_strict"
    seen = []

    def longer(prediction, target, doc):
        seen.append(doc["doc_id"])
        return float(len(prediction or "") > len(target))

    assert rescore(df, longer)["longer"].to_list() == [0.0, 1.0, None, 0.0]
    assert seen == [0, 1, 3]  # the doc is the row; error rows are not scored
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        rescore(df, "bleu")
    with pytest.raises(ValueError, match="name="):
        rescore(df, lambda p, t, d: 1.0)
    with pytest.raises(ValueError, match="no column 'answer'"):
        rescore(df, "exact_match", target="answer")
    with pytest.raises(TypeError, match="polars DataFrame"):
        rescore(df.to_pandas(), "exact_match")
    assert rescore(df, "exact_match", regexes_to_ignore=[r"^h"])["exact_match"].to_list() == [0.0, 0.0, None, 0.0]


TEXT = st.text(alphabet=st.sampled_from(list(string.printable) + ["\x1c", "\x85", "é", "İ", "Σ", "\u1c89", "ǅ"]), max_size=8)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(st.tuples(TEXT, st.one_of(TEXT, st.sampled_from(["Yes", "no", "A", "4"]))), min_size=1, max_size=20),
    st.booleans(), st.booleans(), st.booleans(),
)
def test_vectorised_exact_match_equals_python(pairs, ignore_case, ignore_punctuation, ignore_numbers):
    df = pl.DataFrame({"prediction": [p for p, _ in pairs], "target": [t for _, t in pairs]})
    options = dict(ignore_case=ignore_case, ignore_punctuation=ignore_punctuation, ignore_numbers=ignore_numbers)
    got = rescore(df, "exact_match", **options)["exact_match"].to_list()
    assert got == [exact_match(p, json.loads(t) if t.startswith("[") and _is_json_list(t) else t, **options) for p, t in pairs]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.one_of(TEXT, st.sampled_from(["Yes.", " no", "N", "yess", "Not", "y"])),
                          st.sampled_from(["Yes", "No", "yes", "maybe", "n"])), min_size=1, max_size=20))
def test_vectorised_yes_no_equals_python(pairs):
    df = pl.DataFrame({"prediction": [p for p, _ in pairs], "target": [t for _, t in pairs]})
    assert rescore(df, "yes_no_accuracy")["yes_no_accuracy"].to_list() == [yes_no_accuracy(p, t) for p, t in pairs]


def _is_json_list(text: str) -> bool:
    try:
        return isinstance(json.loads(text), list)
    except ValueError:
        return False


def test_every_registered_metric_gives_the_values_worked_out_by_hand():
    df = pl.DataFrame({"prediction": ["B", "(c)", "12%"], "target": ["B", "C", "0.12"]})
    expected = {
        "exact_match": [1.0, 0.0, 0.0],  # only the identical string; "(c)" is not "C", "12%" not "0.12"
        "anls": [1.0, 0.0, 0.0],  # "(c)" vs "c": similarity 1/3, under the 0.5 threshold -> 0
        "relaxed_accuracy": [1.0, 0.0, 1.0],  # ChartQA reads "12%" as 0.12
        "yes_no_accuracy": [0.0, 0.0, 0.0],  # no target is a yes or a no
        "choice_accuracy": [1.0, 1.0, 0.0],  # "(c)" is option C; "12%" is no option letter
    }
    assert set(METRICS) == set(expected), "a new metric needs its hand-worked values here"
    for name, values in expected.items():
        assert rescore(df, name)[name].to_list() == values, name
    assert anls("B", "B") == 1.0
