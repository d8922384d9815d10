"""Versioned, user-editable prompt templates for drafting and reviewing live-benchmark questions.

A template is a frozen dataclass: a `name`, a `version` and the `text`, whose placeholders are written
``$field`` or ``${field}`` (`string.Template` syntax, so the JSON examples inside a prompt need no brace
escaping; write ``$$`` for a literal dollar sign). Every candidate records the ``name@version`` of the
templates that made it, so a benchmark can say exactly which prompts produced which question. Edit a template
with `PromptTemplate.edited(text)`: the copy gets a new version derived from the text, so two different
texts never share a ``name@version``.

The subtask categories are LiveBench's (lmms-eval's ``live_bench`` task groups its scores by them).

Example:
    >>> t = PromptTemplate("greet", "1", "Hello $name, month ${month}.")
    >>> t.render(name="Ada", month="2026-11")
    'Hello Ada, month 2026-11.'
    >>> t.fields
    ('month', 'name')
    >>> t2 = t.edited("Hi $name.")
    >>> t2.id.startswith("greet@1+"), t2.render(name="Bo")
    (True, 'Hi Bo.')
"""

from __future__ import annotations

import dataclasses
import hashlib
import string
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DRAFT_TEMPLATE",
    "REVIEW_TEMPLATE",
    "SUBTASKS",
    "SUBTASK_DESCRIPTIONS",
    "PromptTemplate",
    "TemplateError",
    "normalize_subtask",
]

#: LiveBench's rubric categories, in lmms-eval's order (``lmms_eval/tasks/live_bench/utils.py``).
SUBTASKS: tuple[str, ...] = (
    "Basic Understanding",
    "Contextual Analysis",
    "Deeper Implications",
    "Broader Implications",
    "Further Insights",
)

#: What each category asks for, in our words; shown to the drafting and reviewing models.
SUBTASK_DESCRIPTIONS: dict[str, str] = {
    "Basic Understanding": "facts read directly off the page: names, numbers, headlines, what an image shows",
    "Contextual Analysis": "the background or circumstances of a story, which need reading several elements together",
    "Deeper Implications": "consequences, causes or unstated meaning of a story, reasoned from what the page shows",
    "Broader Implications": "the wider effect of a story on society, other fields or other regions",
    "Further Insights": "connections to knowledge beyond the page that the page invites",
}


class TemplateError(ValueError):
    """A template rendered with missing or unknown fields, or with a malformed placeholder."""


@dataclass(frozen=True)
class PromptTemplate:
    """A named, versioned prompt with ``$field`` placeholders (see the module docstring)."""

    name: str
    version: str
    text: str

    def __post_init__(self) -> None:
        if not self.name or not str(self.version):
            raise TemplateError("a PromptTemplate needs a non-empty name and version")
        self.fields  # noqa: B018 - validate placeholders now, not at the first render

    @property
    def id(self) -> str:
        """``name@version``: what candidates record."""
        return f"{self.name}@{self.version}"

    @property
    def sha256(self) -> str:
        """The sha256 of the text, to tell apart two texts that were given the same version by hand."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def fields(self) -> tuple[str, ...]:
        """The placeholder names of the text, sorted."""
        names: set[str] = set()
        for match in string.Template.pattern.finditer(self.text):
            if match.group("invalid") is not None:
                line = self.text.count("\n", 0, match.start()) + 1
                raise TemplateError(
                    f"template {self.id}: malformed placeholder at line {line} "
                    f"(write $$ for a literal dollar sign): {self.text.splitlines()[line - 1][:80]!r}"
                )
            name = match.group("named") or match.group("braced")
            if name:
                names.add(name)
        return tuple(sorted(names))

    def render(self, **values: Any) -> str:
        """The prompt with every placeholder filled; missing or unknown fields are an error naming them."""
        needed = set(self.fields)
        missing = needed - set(values)
        if missing:
            raise TemplateError(f"template {self.id} needs field(s) {sorted(missing)} (given: {sorted(values)})")
        unknown = set(values) - needed
        if unknown:
            raise TemplateError(f"template {self.id} has no field(s) {sorted(unknown)} (its fields: {sorted(needed)})")
        return string.Template(self.text).substitute({k: str(v) for k, v in values.items()})

    def edited(self, text: str, version: str | None = None) -> "PromptTemplate":
        """A copy with new `text`; its version is `version`, or this one's plus a hash of the new text."""
        if version is None:
            version = f"{self.version}+{hashlib.sha256(text.encode()).hexdigest()[:8]}"
        return dataclasses.replace(self, text=text, version=version)


def normalize_subtask(value: Any, subtasks: tuple[str, ...] = SUBTASKS) -> str | None:
    """The canonical spelling of a subtask name (case, spaces, ``_`` and ``-`` ignored), or None if unknown.

    >>> normalize_subtask("deeper_implications")
    'Deeper Implications'
    >>> normalize_subtask("trivia") is None
    True
    """
    if not isinstance(value, str):
        return None
    key = " ".join(value.replace("_", " ").replace("-", " ").split()).lower()
    for name in subtasks:
        if name.lower() == key:
            return name
    return None


def subtask_list(subtasks: tuple[str, ...] = SUBTASKS) -> str:
    """The bullet list of categories (with descriptions when known) that the templates' ``$subtasks`` shows."""
    return "\n".join(
        f"- {s}: {SUBTASK_DESCRIPTIONS[s]}" if s in SUBTASK_DESCRIPTIONS else f"- {s}" for s in subtasks
    )


DRAFT_TEMPLATE = PromptTemplate(
    name="livebench-draft",
    version="1",
    text="""\
You write questions for a benchmark of multimodal models. The image is a full-page screenshot of
$url, taken at $captured_at (UTC): a news or forum front page that may hold several stories.

Write $n_questions question(s) about what this page shows. Each question must:
- be answerable from the screenshot alone (with general knowledge for the deeper categories);
- focus on one story or one image of the page, not on menus, headers or advertisements;
- have a reference answer that a grader can check, and grading criteria for a 0-10 score
  (10 for a fully correct answer), saying what earns and what loses points;
- avoid political opinion: ask about what the page shows, not what to think of it.

Spread the questions over these categories, naming each question's category exactly as written:
$subtasks

Reply with JSON only, in this shape:
```json
{
  "questions": [
    {"subtask": "<one category>", "question": "<the question>", "answer": "<the reference answer>",
     "criteria": "<how to grade an answer from 0 to 10>"}
  ]
}
```
""",
)

REVIEW_TEMPLATE = PromptTemplate(
    name="livebench-review",
    version="1",
    text="""\
You review a drafted benchmark question about the attached screenshot of $url.

Category: $subtask
Question: $question
Reference answer: $answer
Grading criteria: $criteria

Check that the question can be answered from the screenshot, that the reference answer is correct
according to the screenshot, that the criteria let a grader score an answer from 0 to 10, and that the
question fits its category. Improve whatever falls short: make the question clearer, checkable and
challenging; fix the answer; sharpen the criteria. If the question does not fit its category, change the
question rather than the category. Keep the category unless it is not one of:
$subtasks

Reply with JSON only, in this shape:
```json
{"subtask": "<category>", "question": "<revised question>", "answer": "<revised reference answer>",
 "criteria": "<revised grading criteria>", "notes": "<what you changed and why, or 'no change'>"}
```
""",
)
