"""VLMEvalKit's rule-based scoring, rewritten from its source (vlmeval/utils/matching_util.py,
vlmeval/dataset/utils/{multiple_choice,yorn,vqa_eval,ocrbench}.py, vlmeval/dataset/image_vqa.py MTVQA; read at
open-compass/VLMEvalKit e8e78f05, 2026-08). Each function returns a `Verdict`: a value, or None when VLMEvalKit's
rules cannot settle the answer and it would ask an LLM judge (its `exact_matching` mode then scores the row 0).

Differences from VLMEvalKit, on purpose:
- a prediction stored as the text of a Python list of strings (`"['B.']"`, written when a model returns a list:
  VLMEvalKit stores `str(response)`) is unwrapped and matched again when the rules cannot read it as it is;
  VLMEvalKit's rules leave it to its LLM judge (exact matching counts it wrong), which reads the option inside.
- nothing here is random: VLMEvalKit picks a random option when its judge fails three times; we leave that row
  to a judge.

Example:
    >>> choices = {"A": "cat", "B": "dog", "C": "bird"}
    >>> [match_option(p, choices) for p in ["B", "(C) bird", "It is a dog.", "['A.']", "a cat or a dog"]]
    ['B', 'C', 'B', 'A', None]
    >>> match_option("The answer is a dog.", choices)  # VLMEvalKit's verbose-answer rule reads "a" as option A
    'A'
    >>> [yes_or_no(p) for p in ["Yes, it is.", "No.", "yes and no", "maybe"]]
    ['Yes', 'No', None, None]
    >>> vqa_match("Two", "['2', '2', 'two']", method="vqa_score")
    0.6666666666666666
"""

from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = [
    "Verdict", "match_option", "yes_or_no", "process_punctuation", "process_answer", "vqa_match", "anls_distance",
    "ocrbench_hit", "mtvqa_hit", "answers_of", "unwrap_list_prediction",
]

_VERBOSE_ANSWER = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")
_REFUSALS = (
    "Sorry, I can't help with images of people yet.", "I can't process this file.",
    "I'm sorry, but without the image provided", "Cannot determine the answer",
)
_OPTION_SEPARATORS = str.maketrans({c: " " for c in ".()[],:;!*#{}"})


@dataclass(frozen=True)
class Verdict:
    """A per-sample score, or `value=None` with the reason a judge is needed."""

    value: float | None
    reason: str | None = None


def unwrap_list_prediction(prediction: str) -> str:
    """`"['B.']"` -> `"B."`: the text of a Python/JSON list of strings, joined; anything else unchanged."""
    text = prediction.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return prediction
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return prediction
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return prediction


def _option_letter(answer: str, choices: Mapping[str, str]) -> str | None:
    # vlmeval.utils.matching_util.can_infer_option
    if "Failed to obtain answer via API" in answer:
        return None
    if any(refusal in answer for refusal in _REFUSALS):
        return "Z"
    splits = [x.strip() for x in answer.translate(_OPTION_SEPARATORS).split()]
    count = sum(1 for c in choices if c in splits)
    if count == 1:
        for ch in choices:
            if ch in splits and splits.index(ch) > len(splits) - 5:
                return ch
    elif count == 0 and sum(1 for c in ("Z", "") if c in splits) == 1:
        return "Z"
    match = _VERBOSE_ANSWER.search(answer)
    if match and match.group(1).upper() in choices:
        return match.group(1).upper()
    return None


def _option_text(answer: str, choices: Mapping[str, str]) -> str | None:
    # vlmeval.utils.matching_util.can_infer_text: the one option whose text the answer contains
    answer = answer.lower()
    if len(answer) > 2 * sum(len(str(v)) for v in choices.values()):
        return None
    found = [k for k, v in choices.items() if str(v).lower() in answer]
    return found[0] if len(found) == 1 else None


def match_option(prediction: Any, choices: Mapping[str, str]) -> str | None:
    """The option letter (or "Z": none of them) VLMEvalKit's `can_infer` reads in a prediction; None: a judge's job.

    `choices` maps letters to option texts, in order ({"A": "cat", "B": "dog"}).
    """
    answer = str(prediction)
    found = _option_letter(answer, choices) or _option_text(answer, choices)
    unwrapped = unwrap_list_prediction(answer)
    if found is None and unwrapped != answer:
        found = _option_letter(unwrapped, choices) or _option_text(unwrapped, choices)
    return found


def process_punctuation(text: str) -> str:
    """vlmeval.smp.process_punctuation (the VQA evaluation's), including its quirks: a punctuation mark next to a
    space (or any text with a digit,digit comma) is deleted, otherwise it becomes a space; and `re.sub(..., 32)`
    (re.UNICODE passed as `count`) removes only the first 32 periods that are not between digits."""
    out = text
    comma_strip = re.search(r"(\d)(,)(\d)", text) is not None
    for p in (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"):
        if (p + " " in text or " " + p in text) or comma_strip:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return re.sub(r"(?<!\d)\.(?!\d)", "", out, count=32)


def yes_or_no(prediction: Any) -> str | None:
    """vlmeval YOrN_Extraction: "Yes" / "No" when exactly one of the words appears; None (Unknown) otherwise."""
    for text in dict.fromkeys((str(prediction), unwrap_list_prediction(str(prediction)))):
        words = process_punctuation(text.lower()).split()
        if "yes" in words and "no" not in words:
            return "Yes"
        if "no" in words and "yes" not in words:
            return "No"
    return None


_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
            "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
    "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
    "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at",
    "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", "somebodyll": "somebody'll",
    "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're", "whys": "why's",
    "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd",
    "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're", "youve": "you've",
}


def process_answer(answer: str) -> str:
    """vlmeval vqa_eval.process_answer: whitespace, punctuation, number words, articles, contractions."""
    answer = process_punctuation(answer.replace("\n", " ").replace("\t", " ").strip())
    words = [_NUMBERS.get(w, w) for w in answer.lower().split()]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


def answers_of(target: Any) -> list[str]:
    """VLMEvalKit's gold answers: the `answer` cell evaluated when it is the text of a list, else that one answer."""
    text = str(target)
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return [text]
    return [str(v) for v in value] if isinstance(value, list) else [text]


def _levenshtein(a: str, b: str) -> int:
    if len(a) > len(b):
        a, b = b, a
    distances = list(range(len(a) + 1))
    for i2, c2 in enumerate(b):
        row = [i2 + 1]
        for i1, c1 in enumerate(a):
            row.append(distances[i1] if c1 == c2 else 1 + min(distances[i1], distances[i1 + 1], row[-1]))
        distances = row
    return distances[-1]


def anls_distance(gold: str, prediction: str) -> float:
    """vlmeval vqa_eval.anls_compute: normalised edit distance (0 = identical)."""
    dist = _levenshtein(" ".join(gold.strip().lower().split()), " ".join(prediction.strip().lower().split()))
    length = max(len(gold.upper()), len(prediction.upper()))
    return 0.0 if length == 0 else dist / length


def _relaxed(target: str, prediction: str) -> bool:
    def number(text: str) -> float | None:
        try:
            return float(text.rstrip("%")) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            return None

    p, t = number(prediction), number(target)
    if p is not None and t:
        return abs(p - t) / abs(t) <= 0.05
    return prediction.lower() == target.lower()


def vqa_match(prediction: Any, target: Any, *, method: str) -> float:
    """One VQA sample as VLMEvalKit's `process_line` + `hit_calculate` score it.

    method: "vqa_score" (TextVQA and the default: min(1, #other annotators agreeing / 3), averaged),
    "anls" (DocVQA, InfoVQA: 1 - the smallest distance, 0 below 0.5), "relaxed_accuracy" (ChartQA: the best),
    "accuracy" (OCRVQA, GQA: case-insensitive exact, the best).
    """
    prediction = str(prediction)
    answers = answers_of(target)
    if method == "vqa_score":
        gold = [process_answer(a) for a in answers]
        pred = process_answer(prediction)
        matches = [min(1.0, sum(1 for j, g in enumerate(gold) if j != i and g == pred) / 3) for i in range(len(gold))]
        return sum(matches) / len(matches)
    if method == "anls":
        best = 1 - min(anls_distance(a, prediction) for a in answers)
        return 0.0 if best < 0.5 else best
    if method == "relaxed_accuracy":
        return max(float(_relaxed(a, prediction.strip())) for a in answers)
    if method == "accuracy":
        return max(1.0 if a.strip().lower() == prediction.strip().lower() else 0.0 for a in answers)
    raise ValueError(f"unknown VQA method {method!r} (expected vqa_score, anls, relaxed_accuracy or accuracy)")


def ocrbench_hit(prediction: Any, target: Any, category: str | None) -> float:
    """vlmeval OCRBench_eval: an answer contained in the prediction (spaces ignored for handwritten math)."""
    prediction = str(prediction)
    for answer in answers_of(target):
        if category == "Handwritten Mathematical Expression Recognition":
            if answer.strip().replace("\n", " ").replace(" ", "") in prediction.strip().replace("\n", " ").replace(" ", ""):
                return 1.0
        elif answer.lower().strip().replace("\n", " ") in prediction.lower().strip().replace("\n", " "):
            return 1.0
    return 0.0


def mtvqa_hit(prediction: Any, target: Any) -> float:
    """vlmeval MTVQADataset.evaluate: the lower-cased answer without periods contained in the prediction."""
    answer = str(target).strip().lower().replace(".", "")
    return 1.0 if answer in str(prediction).strip().lower().replace(".", "") else 0.0


def option_letters(row: Mapping[str, Any]) -> dict[str, str]:
    """vlmeval build_choices: the non-empty single-letter columns of a row, in letter order."""
    out = {}
    for letter in string.ascii_uppercase:
        value = row.get(letter)
        if value is not None and not (isinstance(value, float) and value != value) and str(value) != "":
            out[letter] = str(value)
    return out
