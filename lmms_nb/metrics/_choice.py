"""Multiple-choice answer extraction (the option-letter filters of lmms-eval / VLMEvalKit) and its scorer."""

from __future__ import annotations

import re
from typing import Any, Sequence

Doc = dict[str, Any]

# Markdown emphasis and quotes models wrap answers in ("**B**", "`B`", '"B"').
_WRAPPERS = "*`'\"_ \t\n"


def extract_choice_letter(
    response: str,
    choices: Sequence[str] | None = None,
    letters: str = "ABCDEFGHIJ",
) -> str:
    """The option letter a free-text answer picks, or "" when none can be found.

    Tried in order (the first rule that matches wins):

    1. the whole answer is a letter, "(b)", "B." or "B)";
    2. the answer starts with a letter and a delimiter: "B. red", "(B) red", "B: red", "B) red";
    3. an explicit phrase: "The answer is B", "answer: (c)", "Option D", "choice (a)";
    4. exactly one distinct capital option letter stands alone in the text ("I think C is right");
       a capital "A" or "I" followed by a lower-case word is read as an article/pronoun, not an option;
    5. exactly one option's text appears in the answer ("It is red." with choices ["red", "blue", ...]);
       an option contained in a longer matching option ("red" in "dark red") gives way to it.

    With `choices`, only the first ``len(choices)`` letters count as options.

    >>> [extract_choice_letter(r) for r in ["B", "(B)", "B.", "B. red", "The answer is B", "answer: (c)"]]
    ['B', 'B', 'B', 'B', 'B', 'C']
    >>> extract_choice_letter("It is blue.", ["red", "blue", "green", "yellow"])
    'B'
    >>> extract_choice_letter("A red circle", ["blue", "red", "green", "yellow"])
    'B'
    >>> extract_choice_letter("no idea", ["red", "blue"])
    ''
    """
    text = "" if response is None else str(response)
    text = text.strip().strip(_WRAPPERS).strip()
    allowed = letters[: len(choices)] if choices else letters
    if not text or not allowed:
        return ""
    options = re.escape(allowed)
    options_any_case = re.escape(allowed + allowed.lower())

    # 1. the whole answer is one letter, bare or in brackets, maybe with a trailing delimiter
    match = re.fullmatch(rf"[(\[]?([{options_any_case}])[)\]]?[.:)]?", text)
    if match:
        return match.group(1).upper()

    # 2. leading letter with a delimiter ("B. red", "(B) red", "B: red"); lower case only in brackets
    match = re.match(rf"(?:[(\[]([{options_any_case}])[)\]]|([{options}])[.:)])(?:\s|$)", text)
    if match:
        return (match.group(1) or match.group(2)).upper()

    # 3. "answer is B", "answer: (c)", "option D", "correct choice is (a)"
    match = re.search(
        rf"\b(?:answer|option|choice)\b\s*(?:is\s*|:\s*|=\s*)?(?:option\s*|letter\s*)?"
        rf"[(\[]?([{options_any_case}])\b[)\]]?(?![\w'])",
        text,
        flags=re.IGNORECASE,
    )
    if match and not (
        # "the answer is a red one": a bare lower-case "a" followed by a word is an article
        match.group(1).islower() and "(" not in match.group(0) and re.match(r"\s+[a-z]", text[match.end() :])
    ):
        return match.group(1).upper()

    # 4. a single distinct standalone capital option letter
    found = set()
    for m in re.finditer(rf"(?<![\w'])([{options}])(?![\w'])", text):
        letter = m.group(1)
        if letter in "AI" and re.match(r"\s+[a-z]", text[m.end() :]):
            continue  # "A red circle", "I think": an article or pronoun
        found.add(letter)
    if len(found) == 1:
        return found.pop()
    if len(found) > 1:
        return ""  # ambiguous: several letters named

    # 5. the text of exactly one option appears in the answer
    if choices:
        lowered = text.lower()
        hits = [
            (letter, str(choice).strip().lower())
            for letter, choice in zip(allowed, choices)
            if str(choice).strip()
            and re.search(rf"(?<!\w){re.escape(str(choice).strip().lower())}(?!\w)", lowered)
        ]
        # drop options that are part of a longer matching option ("red" inside "dark red")
        hits = [(letter, c) for letter, c in hits if not any(c != other and c in other for _, other in hits)]
        if len(hits) == 1:
            return hits[0][0]
    return ""


def _choices_from_doc(doc: Doc | None, letters: str = "ABCDEFGHIJ") -> list[str] | None:
    """Option texts stored as columns "A", "B", ... (MMBench layout), or None."""
    if not doc:
        return None
    choices = []
    for letter in letters:
        value = doc.get(letter)
        if value is None or (isinstance(value, float) and value != value):  # missing or NaN option
            break
        choices.append(str(value))
    return choices or None


def choice_accuracy(prediction: str, target: str | Sequence[str], doc: Doc | None = None) -> float:
    """1.0 when the option letter extracted from the prediction equals the target letter.

    The option texts are read from the doc's "A".."J" columns when present, so an answer that names the
    option instead of its letter still counts.

    >>> choice_accuracy("(b)", "B"), choice_accuracy("blue", "B", {"A": "red", "B": "blue"})
    (1.0, 1.0)
    """
    letter = extract_choice_letter(prediction, _choices_from_doc(doc))
    targets = target if isinstance(target, (list, tuple)) else [target]
    return float(bool(letter) and any(letter == str(t).strip().upper() for t in targets))
