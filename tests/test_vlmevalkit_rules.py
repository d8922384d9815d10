"""VLMEvalKit's matching rules as lmms-nb rewrote them, on answers worked out by hand from VLMEvalKit's source
(vlmeval/utils/matching_util.py, dataset/utils/{yorn,vqa_eval,ocrbench}.py, image_vqa.py MTVQA). The same rules
are checked against VLMEvalKit's own evaluation in test_realtools_vlmevalkit.py."""

from __future__ import annotations

import polars as pl
import pytest

from lmms_nb.logs import rescore
from lmms_nb.logs._vlmevalkit_rules import (
    anls_distance,
    answers_of,
    match_option,
    mtvqa_hit,
    ocrbench_hit,
    process_answer,
    process_punctuation,
    unwrap_list_prediction,
    vqa_match,
    yes_or_no,
)
from lmms_nb.logs._vlmevalkit_scheme import dataset_rule

CHOICES = {"A": "cat", "B": "dog", "C": "bird", "D": "fish"}


@pytest.mark.parametrize("prediction, letter", [
    ("B", "B"),                      # a bare letter
    ("B.", "B"),                     # punctuation around it is a separator
    ("(C) bird", "C"),
    ("Answer: D", "D"),
    ("A dog is shown, so B", "B"),   # "A" is a letter too: two letters in the answer...
    ("The answer is **C**", "C"),    # the verbose-answer rule
    ("It is a dog.", "B"),           # no letter: the option text, when exactly one option's text is in it
    ("a cat or a dog", None),        # two option texts: a judge's job
    ("Cannot determine the answer", "Z"),  # a refusal VLMEvalKit knows: Z, wrong
    ("Z", "Z"),
    ("['A']", "A"),                  # a list stored as text: unwrapped (VLMEvalKit's judge reads it the same way)
    ("['B.']", "B"),
    ("", None),
    ("Failed to obtain answer via API", None),
])
def test_match_option(prediction, letter):
    assert match_option(prediction, CHOICES) == letter


def test_match_option_edge_rules():
    # two letters in the answer: can_infer_option finds 2 candidates, can_infer_text finds "dog" only
    assert match_option("A or B", CHOICES) is None
    # the one letter must be among the last 5 words
    assert match_option("B is what I would pick out of all these options here", CHOICES) is None
    # an answer more than twice as long as all option texts together is not searched for option text
    assert match_option("dog " * 20, CHOICES) is None
    assert unwrap_list_prediction("[1, 2]") == "[1, 2]" and unwrap_list_prediction("['a', 'b']") == "a\nb"


@pytest.mark.parametrize("prediction, said", [
    ("Yes", "Yes"), ("yes.", "Yes"), ("No, it is not.", "No"), ("Nope", None), ("Yes and no", None),
    ("I don't know", None), ("['No']", "No"), ("(yes)", "Yes"), ("yes/no", None),
])
def test_yes_or_no(prediction, said):
    assert yes_or_no(prediction) == said


def test_process_punctuation_quirks():
    # a mark beside a space is deleted, otherwise it becomes a space; a digit,digit comma deletes every mark
    assert process_punctuation("a-b") == "a b" and process_punctuation("a - b") == "a  b"
    assert process_punctuation("1,000 a-b") == "1000 ab"
    assert process_punctuation("end.") == "end" and process_punctuation("3.5") == "3.5"
    # re.sub(..., re.UNICODE) passes 32 as `count`: the 33rd period stays
    assert process_punctuation("a." * 33).count(".") == 1


def test_vqa_rules():
    assert process_answer("The Two dogs!") == "2 dogs"
    ten = str(["2"] * 8 + ["two"] * 2)  # all ten annotators agree after normalisation
    assert vqa_match("Two", ten, method="vqa_score") == 1.0
    assert vqa_match("coke", str(["coca cola"] * 6 + ["coke"] * 4), method="vqa_score") == pytest.approx(
        (6 * 1.0 + 4 * 1.0) / 10)  # each of 10 leave-one-out sets has >= 3 "coke": min(1, 3/3 or 4/3)
    assert vqa_match("coke", str(["coca cola"] * 8 + ["coke"] * 2), method="vqa_score") == pytest.approx(
        (8 * (2 / 3) + 2 * (1 / 3)) / 10)
    assert vqa_match("nike", "nike", method="vqa_score") == 0.0  # one answer: no other annotator agrees
    assert anls_distance("INV-1024", "inv-1024") == 0.0
    assert vqa_match("March 3 2020", str(["March 3, 2020", "3/3/2020"]), method="anls") == pytest.approx(1 - 1 / 13)
    assert vqa_match("forty two", "['42']", method="anls") == 0.0  # below the 0.5 threshold
    assert vqa_match("41", "42", method="relaxed_accuracy") == 1.0  # within 5%
    assert vqa_match("90", "100", method="relaxed_accuracy") == 0.0
    assert vqa_match("0.12", "12%", method="relaxed_accuracy") == 1.0
    assert vqa_match(" Cup", "cup", method="accuracy") == 1.0 and vqa_match("a cup", "cup", method="accuracy") == 0.0
    assert answers_of("['a', 'b']") == ["a", "b"] and answers_of("plain") == ["plain"] and answers_of("[1") == ["[1"]
    with pytest.raises(ValueError, match="unknown VQA method"):
        vqa_match("a", "a", method="bleu")


def test_ocrbench_and_mtvqa():
    assert ocrbench_hit("The sign says stop.", "['STOP']", "Regular Text Recognition") == 1.0
    assert ocrbench_hit("19 84", "['1984']", "Doc-oriented VQA") == 0.0
    hme = "Handwritten Mathematical Expression Recognition"
    assert ocrbench_hit("x^{2} + 1", "['x^{2}+1']", hme) == 1.0  # spaces ignored for handwritten math only
    assert mtvqa_hit("usa", "U.S.A") == 1.0 and mtvqa_hit("La Gare", "gare") == 1.0
    assert mtvqa_hit("München", "Berlin") == 0.0


def test_dataset_rules():
    assert dataset_rule("MMBench_DEV_EN", has_options=True, targets=[]) == "mcq_circular"
    assert dataset_rule("AI2D_TEST", has_options=True, targets=[]) == "mcq"
    assert dataset_rule("MME", has_options=False, targets=["Yes"]) == "yes_no"
    assert dataset_rule("MyYesNoSet", has_options=False, targets=["Yes", "No"]) == "yes_no"
    assert dataset_rule("OCRBench", has_options=False, targets=[]) == "ocrbench"
    assert dataset_rule("MathVista_MINI", has_options=False, targets=[]) == "judge"
    assert dataset_rule("ChartQA_TEST", has_options=False, targets=[]) == "vqa:relaxed_accuracy"
    assert dataset_rule("InfoVQA_VAL", has_options=False, targets=[]) == "vqa:anls"


def test_rescore_scheme_on_a_table_without_source_files():
    df = pl.DataFrame({
        "task": ["MME", "MME", "MME", "MathVista_MINI", "TextVQA_VAL"],
        "doc_id": [0, 1, 2, 0, 0],
        "prediction": ["Yes.", "yes and no", "No", "42", "Two"],
        "target": ["Yes", "No", "Yes", "42", str(["2"] * 10)],
        "error": [None, None, None, None, None],
    }, schema_overrides={"error": pl.String})
    out = rescore(df, scheme="vlmevalkit")
    assert out["score"].to_list() == [1.0, None, 0.0, None, 1.0]
    assert out["error"].to_list()[:2] == [None, "needs an LLM judge: the answer says both or neither of yes and no "
                                          "(VLMEvalKit YOrN)"]
    assert out["error"][3] == "needs an LLM judge: VLMEvalKit scores MathVista_MINI with one"
    # VLMEvalKit's exact-matching mode counts what it cannot settle as wrong
    assert out.filter(pl.col("task") == "MME")["score"].fill_null(0).mean() == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="unknown scheme"):
        rescore(df, scheme="opencompass")
    with pytest.raises(ValueError, match="scheme='vlmevalkit'"):
        rescore(df)  # no source_format column: no default scheme
    with pytest.raises(ValueError, match="not both"):
        rescore(df, "exact_match", scheme="vlmevalkit")


def test_default_scheme_rescores_only_vlmevalkit_rows():
    df = pl.DataFrame({
        "task": ["MME", "mme"], "doc_id": [0, 0], "prediction": ["Yes", "Yes"], "target": ["Yes", "No"],
        "source_format": ["vlmevalkit", "lmms_eval"], "source_file": [None, "x.jsonl"],
        "score": [None, 0.5], "error": [None, None],
    }, schema_overrides={"score": pl.Float64, "error": pl.String, "source_file": pl.String})
    out = rescore(df)
    assert out["score"].to_list() == [1.0, 0.5]  # the lmms-eval row keeps its own score
    assert out.columns == df.columns
