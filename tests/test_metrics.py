"""Tests of lmms_nb.metrics: hand-computed values, reference-library cross-checks, hypothesis properties."""

from __future__ import annotations

import math
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmms_nb.metrics import (
    METRICS,
    anls,
    choice_accuracy,
    exact_match,
    extract_choice_letter,
    levenshtein_distance,
    mean_stderr,
    mme_acc_plus,
    normalize_yes_no,
    relaxed_accuracy,
    yes_no_accuracy,
)

# ---------------------------------------------------------------- exact_match


@pytest.mark.parametrize(
    "prediction, target, options, expected",
    [
        ("Paris", "Paris", {}, 1.0),
        ("  Paris\n", "Paris", {}, 1.0),  # whitespace stripped
        ("paris", "Paris", {}, 0.0),  # case matters by default
        ("paris", "Paris", {"ignore_case": True}, 1.0),
        ("Paris!", "Paris", {}, 0.0),
        ("Paris!", "Paris", {"ignore_punctuation": True}, 1.0),
        ("room 101", "room", {"ignore_numbers": True}, 1.0),  # "room " stripped -> "room"
        ("The answer is 4", "4", {"regexes_to_ignore": [r"^The answer is "]}, 1.0),
        # regexes run before lower-casing (HF evaluate order): a lower-case pattern misses "The"
        ("The answer is 4", "4", {"regexes_to_ignore": [r"^the answer is "], "ignore_case": True}, 0.0),
        # ...and punctuation is removed after the regexes, so a pattern may still rely on it
        ("a-b", "ab", {"regexes_to_ignore": ["-"]}, 1.0),
        ("3", ["1", "2", "3"], {}, 1.0),  # any-of
        ("4", ["1", "2", "3"], {}, 0.0),
        ("", "", {}, 1.0),
        (None, "", {}, 1.0),  # a failed generation reads as empty text
    ],
)
def test_exact_match_hand_cases(prediction, target, options, expected):
    assert exact_match(prediction, target, None, **options) == expected


def test_exact_match_all_normalisations_together():
    # "Pi=3.14" -> lower-case "pi=3.14" -> no punctuation "pi314" -> no digits "pi"
    assert exact_match("Pi=3.14", "pi", ignore_case=True, ignore_punctuation=True, ignore_numbers=True) == 1.0


# ---------------------------------------------------------------- Levenshtein / ANLS


@pytest.mark.parametrize(
    "a, b, distance",
    [("", "", 0), ("abc", "", 3), ("kitten", "sitting", 3), ("flaw", "lawn", 2), ("helo", "hello", 1), ("ab", "ba", 2)],
)
def test_levenshtein_hand_cases(a, b, distance):
    assert levenshtein_distance(a, b) == distance
    assert levenshtein_distance(b, a) == distance


def _reference_levenshtein(a: str, b: str) -> int:
    # Full-matrix Wagner-Fischer with numpy, written independently of the two-row version under test.
    d = np.zeros((len(a) + 1, len(b) + 1), dtype=int)
    d[:, 0] = np.arange(len(a) + 1)
    d[0, :] = np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    return int(d[-1, -1])


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="abcd ", max_size=12), st.text(alphabet="abcd ", max_size=12))
def test_levenshtein_matches_reference(a, b):
    assert levenshtein_distance(a, b) == _reference_levenshtein(a, b)


@pytest.mark.parametrize(
    "prediction, target, expected",
    [
        ("helo", "hello", 0.8),  # 1 - 1/5
        ("hello", "hello", 1.0),
        ("  HeLLo ", "hello", 1.0),  # lower/strip
        ("new  york", "New York", 1.0),  # inner whitespace collapsed
        ("hel", "hello", 0.6),  # 1 - 2/5
        ("abc", "xyz", 0.0),
        ("helo", ["world", "hello"], 0.8),  # max over targets
        ("", "", 1.0),
    ],
)
def test_anls_hand_cases(prediction, target, expected):
    assert anls(prediction, target) == pytest.approx(expected)


def test_anls_threshold_is_inclusive_at_one_half():
    # "ab" vs "abcd": distance 2, length 4 -> exactly 0.5, kept (lmms-eval zeroes only values < 0.5)
    assert anls("ab", "abcd") == 0.5
    # "a" vs "abc": 1 - 2/3 = 0.333 -> 0
    assert anls("a", "abc") == 0.0
    # 0.6 passes the default threshold and fails a stricter one
    assert anls("hel", "hello", threshold=0.61) == 0.0


# ---------------------------------------------------------------- relaxed accuracy (ChartQA)


@pytest.mark.parametrize(
    "prediction, target, expected",
    [
        ("104", "100", 1.0),
        ("106", "100", 0.0),
        ("95", "100", 1.0),  # exactly 5% below
        ("94.9", "100", 0.0),
        ("1,050", "1000", 1.0),
        ("12%", "0.12", 1.0),  # percent parsed as a fraction
        ("12%", "12", 0.0),  # 0.12 vs 12
        ("12%", "12.5%", 1.0),  # 0.12 vs 0.125: 4% off
        ("Yes", "yes", 1.0),  # text: case-insensitive exact
        ("blue", "Blue bar", 0.0),
        ("0", "0", 1.0),  # zero target: text comparison
        ("0.0", "0", 0.0),
        ("7", ["3", "7"], 1.0),
        ("seven", "7", 0.0),
    ],
)
def test_relaxed_accuracy_hand_cases(prediction, target, expected):
    assert relaxed_accuracy(prediction, target) == expected


def test_relaxed_accuracy_tolerance_option():
    assert relaxed_accuracy("110", "100", tolerance=0.1) == 1.0
    assert relaxed_accuracy("110", "100") == 0.0


# ---------------------------------------------------------------- multiple choice


@pytest.mark.parametrize(
    "response, expected",
    [
        ("B", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("B)", "B"),
        ("b", "B"),
        ("B. red", "B"),
        ("(B) red", "B"),
        ("B: red", "B"),
        ("The answer is B", "B"),
        ("The answer is B.", "B"),
        ("answer: (c)", "C"),
        ("Answer: D", "D"),
        ("The correct option is (A).", "A"),
        ("**C**", "C"),
        ("I think C is correct.", "C"),
        ("", ""),
        ("I am not sure", ""),
        ("B or C", ""),  # ambiguous
        ("Z", ""),  # not an option letter
    ],
)
def test_extract_choice_letter_without_choices(response, expected):
    assert extract_choice_letter(response) == expected


@pytest.mark.parametrize(
    "response, expected",
    [
        ("blue", "B"),
        ("It is blue.", "B"),
        ("A red circle", "A"),  # article "A" is skipped; "red" names option A
        ("dark red", "D"),  # the longer option wins over "red" inside it
        ("the answer is a green one", "C"),  # lower-case article after "answer is"
        ("E", ""),  # beyond the 4 options
        ("The answer is E", ""),
        ("purple", ""),
        ("red or blue", ""),  # two options named
    ],
)
def test_extract_choice_letter_with_choices(response, expected):
    assert extract_choice_letter(response, ["red", "blue", "green", "dark red"]) == expected


def test_extract_choice_letter_custom_letters():
    assert extract_choice_letter("2", ["x", "y", "z"], letters="123") == "2"
    assert extract_choice_letter("4", ["x", "y", "z"], letters="123") == ""


def test_choice_accuracy_reads_options_from_doc():
    doc = {"A": "circle", "B": "square", "C": "triangle", "D": "star", "answer": "C"}
    assert choice_accuracy("C", "C", doc) == 1.0
    assert choice_accuracy("(c) triangle", "C", doc) == 1.0
    assert choice_accuracy("triangle", "C", doc) == 1.0
    assert choice_accuracy("square", "C", doc) == 0.0
    assert choice_accuracy("", "C", doc) == 0.0
    assert choice_accuracy("C", "C", None) == 1.0


# ---------------------------------------------------------------- yes/no (MME)


@pytest.mark.parametrize(
    "response, expected",
    [
        ("Yes", "yes"),
        ("yes.", "yes"),
        ("NO", "no"),
        ("y", "yes"),
        ("n", "no"),
        ("Yes, there is a red circle.", "yes"),
        ("No, there is not.", "no"),
        ("Not at all", "no"),  # "no" within the first four characters
        ("There is no circle", "other"),  # MME only looks at the start
        ("x", "other"),
        ("", "other"),
    ],
)
def test_normalize_yes_no(response, expected):
    assert normalize_yes_no(response) == expected


def test_yes_no_accuracy():
    assert yes_no_accuracy("Yes.", "Yes") == 1.0
    assert yes_no_accuracy("no", "Yes") == 0.0
    assert yes_no_accuracy("maybe", "No") == 0.0
    assert yes_no_accuracy("", "") == 0.0  # "other" never scores


# ---------------------------------------------------------------- aggregations


def test_mean_stderr_matches_numpy():
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 0.25]
    mean, stderr = mean_stderr(values)
    assert mean == pytest.approx(np.mean(values))
    assert stderr == pytest.approx(np.std(values, ddof=1) / math.sqrt(len(values)))


def test_mean_stderr_edge_cases():
    assert mean_stderr([0.5]) == (0.5, None)
    mean, stderr = mean_stderr([])
    assert math.isnan(mean) and stderr is None
    mean, stderr = mean_stderr([None, float("nan")])
    assert math.isnan(mean) and stderr is None
    # None and NaN are ignored: the same as the two remaining values
    assert mean_stderr([1.0, None, 0.0, float("nan")]) == mean_stderr([1.0, 0.0])
    assert mean_stderr([1, 0]) == (0.5, 0.5)  # sd = sqrt(0.5), / sqrt(2)


def test_mme_acc_plus_hand_computed():
    docs = [{"image_id": i} for i in ["a", "a", "b", "b", "c", "c"]]
    values = [1, 1, 1, 0, 0, 0]
    # per image all-right: a=1, b=0, c=0 -> 1/3; sd of [1,0,0] = sqrt(1/3), / sqrt(3) = 1/3
    acc_plus, stderr = mme_acc_plus(values, docs)
    assert acc_plus == pytest.approx(1 / 3)
    assert stderr == pytest.approx(1 / 3)


def test_mme_acc_plus_custom_key_and_errors():
    docs = [{"qid": 1}, {"qid": 1}, {"qid": 2}, {"qid": 2}]
    assert mme_acc_plus([1, 1, 1, 1], docs, key="qid") == (1.0, 0.0)
    with pytest.raises(KeyError, match="doc 0 has no 'image_id'"):
        mme_acc_plus([1, 1, 1, 1], docs)
    with pytest.raises(ValueError, match="3 values but 4 docs"):
        mme_acc_plus([1, 1, 1], docs, key="qid")


def test_mme_acc_plus_skips_missing_values():
    docs = [{"image_id": i} for i in ["a", "a", "b", "b"]]
    # image a: one right and one missing -> right; image b: both missing -> left out
    assert mme_acc_plus([1.0, None, float("nan"), None], docs) == (1.0, None)


# ---------------------------------------------------------------- registry and properties


def test_registry_names_and_signature():
    assert set(METRICS) == {"exact_match", "anls", "relaxed_accuracy", "yes_no_accuracy", "choice_accuracy"}
    doc = {"A": "red", "B": "blue"}
    # every scorer takes (prediction, target, doc) positionally
    assert METRICS["exact_match"]("x", "x", doc) == 1.0
    assert METRICS["anls"]("x", "x", doc) == 1.0
    assert METRICS["relaxed_accuracy"]("1", "1", doc) == 1.0
    assert METRICS["yes_no_accuracy"]("yes", "Yes", doc) == 1.0
    assert METRICS["choice_accuracy"]("blue", "B", doc) == 1.0


text = st.text(alphabet=string.printable + "éß中", max_size=20)


@settings(max_examples=200, deadline=None)
@given(text, text)
def test_scores_are_in_unit_interval(prediction, target):
    for name, scorer in METRICS.items():
        value = scorer(prediction, target, None)
        assert 0.0 <= value <= 1.0, name


@settings(max_examples=200, deadline=None)
@given(text)
def test_a_prediction_equal_to_its_target_scores_one(value):
    assert exact_match(value, value) == 1.0
    assert anls(value, value) == 1.0
    assert relaxed_accuracy(value, value) == 1.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), max_size=30))
def test_mean_stderr_ignores_missing(values):
    mean, stderr = mean_stderr(values)
    finite = [v for v in values if v is not None]
    if not finite:
        assert math.isnan(mean)
    else:
        assert mean == pytest.approx(sum(finite) / len(finite))
        assert (stderr is None) == (len(finite) < 2)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from("ABCD"), st.sampled_from(["{}", "({})", "{}.", "The answer is {}", "Answer: ({})"]))
def test_extract_choice_letter_finds_every_format(letter, template):
    assert extract_choice_letter(template.format(letter), ["w", "x", "y", "z"]) == letter
    assert extract_choice_letter(template.format(letter.lower()), ["w", "x", "y", "z"]) == letter
