"""Response filters of lmms-eval's `filter_list`, with its semantics, and pipelines of them.

An lmms-eval filter has ``apply(resps, docs)``: `resps` holds one list of responses per doc, `docs` the docs
in the same order, and it returns the filtered lists. lmms-nb runs one doc at a time, so
`build_filter_pipeline` turns a list of steps into ``fn(response, doc) -> str``, the shape of
`Task.filters`. A custom filter written for lmms-eval (`function: !function utils.MyFilter`, a class with
``apply(resps, docs)``) runs unchanged, as long as it does not import lmms_eval itself.

Registered names (as in lmms-eval 0.7): ``take_first``, ``regex``, ``multi_choice_regex``,
``remove_whitespace``, ``lowercase``, ``uppercase``, ``map``, ``majority_vote``, ``take_first_k``,
``strip_thinking``; plus lmms-nb's ``choice_letter`` (`lmms_nb.metrics.extract_choice_letter`).

Example:
    >>> pipeline = build_filter_pipeline([("regex", {"regex_pattern": r"answer is \\(?([A-D])"}), ("take_first", {})])
    >>> pipeline("I think the answer is (B).", {})
    'B'
    >>> pipeline("no idea", {})
    '[invalid]'
    >>> maj = build_filter_pipeline([("majority_vote", {}), ("take_first", {})])  # with `repeats`
    >>> maj.many(["B", "A", "B"], {})
    'B'
    >>> mc = build_filter_pipeline([("multi_choice_regex", {"regex_pattern": r"\\(([A-D])\\)", "ignore_case": True})])
    >>> mc("It is a dog", {"choices": ["cat", "dog"]})
    '(B)'
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Doc = dict[str, Any]

__all__ = [
    "FILTERS",
    "ChoiceLetterFilter",
    "LowercaseFilter",
    "MajorityVoteFilter",
    "MapFilter",
    "MultiChoiceRegexFilter",
    "RegexFilter",
    "StripThinkingFilter",
    "TakeFirstFilter",
    "TakeKFilter",
    "UppercaseFilter",
    "WhitespaceFilter",
    "build_filter_pipeline",
    "keeps_several",
    "strip_reasoning",
    "DEFAULT_REASONING_TAGS",
]


class TakeFirstFilter:
    """Keep the first response of each doc ("" when there is none)."""

    def apply(self, resps: Iterable[list], docs: Sequence[Doc]) -> list:
        return [r[0] if r else "" for r in resps]


class TakeKFilter:
    """Keep the first `k` responses of each doc."""

    def __init__(self, k: int) -> None:
        self.k = int(k)

    def apply(self, resps: Iterable[list], docs: Sequence[Doc]) -> list:
        resps = list(resps)
        if resps and len(resps[0]) < self.k:
            raise ValueError(f"take_first_k: k={self.k} but only {len(resps[0])} response(s) per doc (repeats)")
        return [r[: self.k] for r in resps]


class MajorityVoteFilter:
    """The most frequent response of each doc, as a one-element list."""

    def apply(self, resps: Iterable[list], docs: Sequence[Doc]) -> list:
        return [[Counter(r).most_common(1)[0][0]] if r else [""] for r in resps]


def _first_match(regex: re.Pattern, text: str, group_select: int) -> str | None:
    """The `group_select`-th `findall` hit, stripped; for several groups the first non-empty one. None: no hit."""
    hits = regex.findall(text)
    if not hits:
        return None
    hit = hits[group_select]
    if isinstance(hit, tuple):
        hit = next((g for g in hit if g), "")
    return hit.strip()


class RegexFilter:
    """Replace each response by a regex match (`findall()[group_select]`), or `fallback` when none matches."""

    def __init__(self, regex_pattern: str = r"#### (\-?[0-9\.\,]+)", group_select: int = 0,
                 fallback: str = "[invalid]") -> None:
        self.regex_pattern = regex_pattern
        self.regex = re.compile(regex_pattern)
        self.group_select = int(group_select)
        self.fallback = fallback

    def apply(self, resps: Iterable[list], docs: Sequence[Doc]) -> list:
        out = []
        for r in resps:
            filtered = []
            for resp in r:
                match = _first_match(self.regex, resp, self.group_select)
                filtered.append(self.fallback if match is None else match)
            out.append(filtered)
        return out


@functools.lru_cache(maxsize=1)
def _unicode_punctuation_table() -> dict[int, None]:
    # every Unicode punctuation character (categories P*), deleted by str.translate
    return dict.fromkeys(i for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P"))


class MultiChoiceRegexFilter(RegexFilter):
    """Multiple-choice letter extraction as lmms-eval's `multi_choice_regex`; needs a ``choices`` list in the doc.

    Tried in order: `regex_pattern`; else the text of one of ``doc["choices"]`` found in the response
    (after `regexes_to_ignore`, `ignore_case`, `ignore_punctuation`), giving "(A)", "(B)", ...; else a
    ``": B"``-style letter after a colon, giving "(B)"; else `fallback`.
    """

    def __init__(self, regex_pattern: str = r"#### (\-?[0-9\.\,]+)", group_select: int = 0,
                 fallback: str = "[invalid]", ignore_case: bool = False, ignore_punctuation: bool = False,
                 regexes_to_ignore: Sequence[str] | None = None) -> None:
        super().__init__(regex_pattern, group_select, fallback)
        self.ignore_case = ignore_case
        self.ignore_punctuation = ignore_punctuation
        self.regexes_to_ignore = list(regexes_to_ignore or [])

    def _normalize(self, text: str) -> str:
        for pattern in self.regexes_to_ignore:
            text = re.sub(pattern, "", text)
        if self.ignore_case:
            text = text.lower()
        if self.ignore_punctuation:
            text = text.translate(_unicode_punctuation_table())
        return text

    def _match(self, regex: re.Pattern, text: str, convert: dict[str, str]) -> str:
        match = _first_match(regex, text, self.group_select)
        if not match:
            return ""
        return convert.get(match, match)

    def apply(self, resps: Iterable[list], docs: Sequence[Doc]) -> list:
        out = []
        for r, doc in zip(resps, docs):
            if "choices" not in doc:
                raise KeyError(f"multi_choice_regex needs a 'choices' field in each doc (fields: {', '.join(doc)})")
            letters = [chr(ord("A") + i) for i in range(len(doc["choices"]))]
            normalized = [self._normalize(str(c).strip()) for c in doc["choices"]]
            by_text = {text: f"({letter})" for text, letter in zip(normalized, letters)}
            by_letter = {letter: f"({letter})" for letter in letters}
            text_regex = re.compile("|".join(re.escape(t) for t in normalized))
            letter_regex = re.compile(r":[\s]*(" + "|".join(letters) + ")")
            filtered = []
            for resp in r:
                match = (self._match(self.regex, resp, {})
                         or self._match(text_regex, self._normalize(resp), by_text)
                         or self._match(letter_regex, resp, by_letter))
                filtered.append(match or self.fallback)
            out.append(filtered)
        return out


class WhitespaceFilter:
    """Drop one leading space of each response."""

    def apply(self, resps: Iterable[list], docs: Sequence[Doc]) -> list:
        return [[resp.removeprefix(" ") for resp in r] for r in resps]


class LowercaseFilter:
    def apply(self, resps: Iterable[list], docs: Sequence[Doc]) -> list:
        return [[resp.lower() for resp in r] for r in resps]


class UppercaseFilter:
    def apply(self, resps: Iterable[list], docs: Sequence[Doc]) -> list:
        return [[resp.upper() for resp in r] for r in resps]


class MapFilter:
    """Map each response through `mapping_dict` (`default_value` when absent)."""

    def __init__(self, mapping_dict: dict | None = None, default_value: Any = None) -> None:
        if mapping_dict is not None and not isinstance(mapping_dict, dict):
            raise TypeError(f"map: mapping_dict must be a mapping, got {type(mapping_dict).__name__}")
        self.mapping_dict = dict(mapping_dict or {})
        self.default_value = default_value

    def apply(self, resps: Iterable[list], docs: Sequence[Doc]) -> list:
        return [[self.mapping_dict.get(resp, self.default_value) for resp in r] for r in resps]


#: the lmms-eval CLI's default --reasoning_tags: applied to every filtered answer unless the task says otherwise
DEFAULT_REASONING_TAGS: list[list[str]] = [["<think>", "</think>"], ["<analysis>", "</analysis>"]]


def strip_reasoning(text: str, tag_pairs: Sequence[Sequence[str]] = (("<think>", "</think>"),
                                                                      ("<thinking>", "</thinking>"))) -> str:
    """Remove ``<think>...</think>`` blocks; a lone closing tag (the opening one was in the prompt) keeps what follows.

    >>> strip_reasoning("<think>hmm</think> B")
    'B'
    >>> strip_reasoning("long reasoning</think>A")
    'A'
    """
    for start_tag, end_tag in tag_pairs:
        while True:
            start = text.find(start_tag)
            end = text.find(end_tag, start) if start != -1 else -1
            if start == -1 or end == -1:
                break
            text = text[:start] + text[end + len(end_tag):]
        if end_tag in text and start_tag not in text:
            text = text.rsplit(end_tag, 1)[-1]
    return text.strip()


class StripThinkingFilter:
    """Remove reasoning blocks (see `strip_reasoning`) before answer extraction."""

    def __init__(self, tag_pairs: Sequence[Sequence[str]] | None = None) -> None:
        self.tag_pairs = [tuple(p) for p in (tag_pairs or (("<think>", "</think>"), ("<thinking>", "</thinking>")))]

    def apply(self, resps: Iterable[list], docs: Sequence[Doc]) -> list:
        return [[strip_reasoning(x, self.tag_pairs) if isinstance(x, str) else x for x in r] for r in resps]


class ChoiceLetterFilter:
    """lmms-nb extension: the option letter picked by a free-text answer (`lmms_nb.metrics.extract_choice_letter`).

    The options are ``doc[choices_field]`` when present. Not an lmms-eval filter: a YAML using it runs in
    lmms-nb only.
    """

    def __init__(self, choices_field: str = "choices", fallback: str = "[invalid]") -> None:
        self.choices_field = choices_field
        self.fallback = fallback

    def apply(self, resps: Iterable[list], docs: Sequence[Doc]) -> list:
        from lmms_nb.metrics import extract_choice_letter

        out = []
        for r, doc in zip(resps, docs):
            choices = doc.get(self.choices_field) if isinstance(doc, dict) else None
            out.append([extract_choice_letter(resp, choices) or self.fallback for resp in r])
        return out


#: filter name -> class, as lmms-eval's FILTER_REGISTRY (plus `choice_letter`)
FILTERS: dict[str, type] = {
    "take_first": TakeFirstFilter,
    "regex": RegexFilter,
    "majority_vote": MajorityVoteFilter,
    "take_first_k": TakeKFilter,
    "remove_whitespace": WhitespaceFilter,
    "lowercase": LowercaseFilter,
    "uppercase": UppercaseFilter,
    "map": MapFilter,
    "multi_choice_regex": MultiChoiceRegexFilter,
    "strip_thinking": StripThinkingFilter,
    "choice_letter": ChoiceLetterFilter,
}


def make_filter(function: str | type, kwargs: dict[str, Any] | None = None) -> Any:
    """One filter object from a registered name or a class with ``apply(resps, docs)``."""
    if isinstance(function, str):
        if function not in FILTERS:
            raise KeyError(f"unknown filter {function!r}; known filters: {', '.join(sorted(FILTERS))}")
        cls = FILTERS[function]
    elif callable(function):
        cls = function
    else:
        raise TypeError(f"a filter function must be a name or a class, got {type(function).__name__}")
    try:
        obj = cls(**(kwargs or {}))
    except TypeError as e:
        raise TypeError(f"filter {getattr(cls, '__name__', cls)!s}: bad options {sorted(kwargs or {})}: {e}") from e
    except re.error as e:
        raise ValueError(f"filter {getattr(cls, '__name__', cls)!s}: invalid regex: {e}") from e
    if not callable(getattr(obj, "apply", None)):
        raise TypeError(f"filter {getattr(cls, '__name__', cls)!s} has no apply(resps, docs) method")
    return obj


def build_filter_pipeline(steps: Sequence[tuple[str | type, dict[str, Any] | None]]) -> Callable[[str, Doc], str]:
    """``fn(response, doc) -> str`` applying the steps in order to one doc's response, as an lmms-eval ensemble.

    What comes out is what lmms-eval scores: a list (no ``take_first`` at the end) gives its first element,
    ``None`` gives "" and any other value its ``str``. See the module docstring for an example.
    """
    filters = [make_filter(function, kwargs) for function, kwargs in steps]

    def many(responses: Sequence[str], doc: Doc) -> Any:
        # one doc's responses (several with `repeats`) -> lmms-eval's `filtered_resps` for that doc: a string
        # after take_first / majority_vote + take_first, a list after take_first_k, regex, ...
        resps: Any = [list(responses)]
        for f in filters:
            resps = list(f.apply(resps, [doc]))
        return resps[0]

    def pipeline(response: str, doc: Doc) -> str:
        out = many([response], doc)
        if isinstance(out, (list, tuple)):
            out = out[0] if out else ""
        return "" if out is None else out if isinstance(out, str) else str(out)

    pipeline.steps = filters  # type: ignore[attr-defined]
    pipeline.many = many  # type: ignore[attr-defined]
    return pipeline


def keeps_several(pipeline: Callable[..., Any]) -> bool:
    """Whether a pipeline can hand several responses per doc to scoring: its last selection step is
    ``take_first_k`` with k > 1 (``take_first`` and ``majority_vote`` leave one)."""
    selections = [f for f in getattr(pipeline, "steps", []) if isinstance(f, (TakeFirstFilter, TakeKFilter,
                                                                             MajorityVoteFilter))]
    return bool(selections) and isinstance(selections[-1], TakeKFilter) and selections[-1].k > 1
