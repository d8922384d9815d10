"""An LLM judge with LiveBench's rubric: (question, response, ground truth, criteria) -> a 0-10 rating.

The judge is any OpenAI-compatible endpoint, reached through `OpenAIChatModel` (so it shares its
concurrency, retries, Retry-After handling and write-through response cache: a judgement is paid for once).
Its reply is parsed robustly (a ```json fence, chatter around the object, a rating given as a string);
a reply without a usable 0-10 rating is a *failed* judgement: its rating is None, it is excluded from the
score and counted, never scored 0. The task score is ``mean(rating / 10) * 100`` over successful ones.

Example (a local judge server; see tests/_servers.py):
    >>> import sys; sys.path.insert(0, "tests")
    >>> from _servers import FakeOpenAIServer
    >>> from lmms_nb.judge import LLMJudge, judge_score
    >>> with FakeOpenAIServer() as srv:
    ...     judge = LLMJudge("judge", base_url=srv.url, api_key_env=None, use_cache=False)
    ...     j = judge.judge("How many cats?", "two", "Two", criteria="exact count")
    >>> j.rating, j.error
    (10.0, None)
    >>> judge_score([j, 0.0, None])
    (50.0, 2, 1)
"""

from __future__ import annotations

import logging
import string
from typing import Any, Iterable, Mapping, Sequence

from lmms_nb._judge_reply import (
    JudgeParseError,
    Judgement,
    has_rating,
    judge_aggregation,
    judge_score,
    judgement_from_reply,
    parse_judge_reply,
)
from lmms_nb.models.base import Request
from lmms_nb.models.openai_compat import OpenAIChatModel
from lmms_nb.tasks.task import Doc, Metric

# the reply parsing and the scoring (JudgeParseError, Judgement, parse_judge_reply, judge_score,
# judge_aggregation) live in _judge_reply and are public here
__all__ = [
    "LIVEBENCH_RUBRIC",
    "JudgeParseError",
    "Judgement",
    "LLMJudge",
    "judge_aggregation",
    "judge_metric",
    "judge_score",
    "judge_scorer",
    "parse_judge_reply",
]

log = logging.getLogger(__name__)

#: LiveBench's judging rubric (as lmms-eval's live_bench task applies it), in our words: the same sections,
#: the same 0-10 scale (0 incorrect, 10 correct), per-question criteria and a JSON reply with Explanation and
#: Rating. Pass lmms-eval's exact text as `prompt_template` to reproduce its numbers to the letter.
LIVEBENCH_RUBRIC = """\
[Question]

{question}

[Assistant Response]

{response}

[Ground Truth Response]

{ground_truth}

[System]

Judge whether the assistant response matches the ground truth response, with reference to the image(s) above.

Give a rating from 0 to 10, where 0 means incorrect and 10 means correct.

Rate according to these criteria:

{criteria}

Reply in JSON:
```json
{{
    "Explanation": "<your explanation>",
    "Rating": <an integer from 0 to 10>
}}
```
"""

_TEMPLATE_FIELDS = {"question", "response", "ground_truth", "criteria"}


class LLMJudge:
    """A LiveBench-style judge on an OpenAI-compatible endpoint.

    Args:
        model: the judge model id at the endpoint.
        prompt_template: a `str.format` template with the fields question, response, ground_truth, criteria.
        json_mode: ask the endpoint for a JSON object (``response_format``), as LiveBench does.
        max_tokens, temperature: the judge's generation parameters (greedy by default, for reproducibility).
        **endpoint: passed to `OpenAIChatModel` (base_url, api_key_env, concurrency, max_retries, timeout_s,
            backoff_base_s, backoff_max_s, cache_dir, use_cache...).
    """

    def __init__(
        self,
        model: str,
        *,
        prompt_template: str = LIVEBENCH_RUBRIC,
        json_mode: bool = True,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        **endpoint: Any,
    ) -> None:
        fields = {f for _, f, _, _ in string.Formatter().parse(prompt_template) if f is not None}
        unknown = fields - _TEMPLATE_FIELDS
        if unknown:
            raise ValueError(
                f"prompt_template has unknown field(s) {sorted(unknown)}; allowed: {sorted(_TEMPLATE_FIELDS)}"
            )
        missing = {"response"} - fields
        if missing:
            raise ValueError("prompt_template must contain a {response} field: the judge has to see the answer")
        self.prompt_template = prompt_template
        self.generation_kwargs = {"max_new_tokens": max_tokens, "temperature": temperature}
        extra = dict(endpoint.pop("extra_body", None) or {})
        if json_mode:
            extra.setdefault("response_format", {"type": "json_object"})
        endpoint.setdefault("name", f"judge:{model}")
        # a reply without a usable rating is a failed judgement: never cached, so the next call asks again
        self.client = OpenAIChatModel(model, extra_body=extra, accept=has_rating, **endpoint)

    def identity(self) -> dict[str, Any]:
        """What determines this judge's ratings: endpoint, model, generation settings and prompt template."""
        return {"model_args": self.model_args, "prompt_template": self.prompt_template}

    @property
    def model_args(self) -> dict[str, Any]:
        """The judge's endpoint arguments (never the key), for results and reports."""
        return {**self.client.model_args, "generation_kwargs": self.generation_kwargs}

    def prompt(self, question: str, response: str, ground_truth: str, criteria: str = "") -> str:
        """The judge prompt for one sample."""
        return self.prompt_template.format(
            question=question, response=response, ground_truth=ground_truth, criteria=criteria
        )

    def judge(
        self, question: str, response: str | None, ground_truth: str, criteria: str = "", images: Sequence[Any] = ()
    ) -> Judgement:
        """Judge one response (see `judge_many`)."""
        item = {"question": question, "response": response, "ground_truth": ground_truth, "criteria": criteria}
        return self.judge_many([{**item, "images": images}])[0]

    def judge_many(self, items: Iterable[Mapping[str, Any]]) -> list[Judgement]:
        """Judge many responses concurrently; each item has question, response, ground_truth, criteria, images.

        An empty response is rated 0 without asking the judge (as LiveBench does): it is a wrong answer, not
        a failed judgement. A judge reply that cannot be parsed is a failed judgement (rating None).
        """
        items = list(items)
        judgements: list[Judgement | None] = [None] * len(items)
        requests: list[Request] = []
        positions: list[int] = []
        for i, item in enumerate(items):
            missing = {"question", "response", "ground_truth"} - set(item)
            if missing:
                raise KeyError(f"judge item {i} lacks {sorted(missing)} (has {sorted(item)})")
            if item["response"] is None or not str(item["response"]).strip():
                judgements[i] = Judgement(rating=0.0, explanation="No response", raw=None)
                continue
            prompt = self.prompt(
                str(item["question"]), str(item["response"]), str(item["ground_truth"]), str(item.get("criteria") or "")
            )
            requests.append(Request(doc_id=i, task="llm_judge", images=list(item.get("images") or ()), prompt=prompt,
                                    generation_kwargs=dict(self.generation_kwargs)))
            positions.append(i)
        for pos, reply in zip(positions, self.client.generate(requests)):
            judgements[pos] = judgement_from_reply(reply.text, reply.error)
        failed = sum(1 for j in judgements if j is not None and not j.ok)
        if failed:
            log.warning("%d of %d judgements failed (excluded from the score, not scored 0)", failed, len(items))
        return judgements  # type: ignore[return-value]


class _JudgeScorer:
    """A per-sample scorer ``(prediction, target, doc) -> rating / 10`` (NaN when the judgement failed)."""

    def __init__(self, judge: LLMJudge, question_key: str, criteria_key: str | None, images_key: str | None) -> None:
        self.judge = judge
        self.question_key = question_key
        self.criteria_key = criteria_key
        self.images_key = images_key
        #: the failed judgements so far, as (question, error): what `judge_score` counts as n_failed
        self.failures: list[tuple[str, str]] = []

    def identity(self) -> dict[str, Any]:
        """What determines this scorer's values (for a run's identity): the judge and the doc fields it reads."""
        return {"judge": self.judge.identity(), "keys": [self.question_key, self.criteria_key, self.images_key]}

    def __call__(self, prediction: str, target: str, doc: Doc) -> float:
        if self.question_key not in doc:
            raise KeyError(f"llm judge: the doc has no {self.question_key!r} field (fields: {sorted(doc)})")
        question = str(doc[self.question_key])
        criteria = str(doc.get(self.criteria_key) or "") if self.criteria_key else ""
        images = list(doc.get(self.images_key) or ()) if self.images_key else []
        j = self.judge.judge(question, prediction, str(target), criteria, images=images)
        if not j.ok:
            self.failures.append((question, j.error or "unknown error"))
        return j.score

    def batch(self, predictions: Sequence[str], targets: Sequence[str], docs: Sequence[Doc]) -> list[float]:
        """Score a whole batch with one concurrent `judge_many` call (the runner's `Metric.score_batch`)."""
        items = []
        for prediction, target, doc in zip(predictions, targets, docs):
            if self.question_key not in doc:
                raise KeyError(f"llm judge: the doc has no {self.question_key!r} field (fields: {sorted(doc)})")
            items.append({
                "question": str(doc[self.question_key]), "response": prediction, "ground_truth": str(target),
                "criteria": str(doc.get(self.criteria_key) or "") if self.criteria_key else "",
                "images": list(doc.get(self.images_key) or ()) if self.images_key else [],
            })
        judgements = self.judge.judge_many(items)
        for item, j in zip(items, judgements):
            if not j.ok:
                self.failures.append((item["question"], j.error or "unknown error"))
        return [j.score for j in judgements]


def judge_scorer(
    judge: LLMJudge,
    *,
    question_key: str = "question",
    criteria_key: str | None = "criteria",
    images_key: str | None = None,
) -> _JudgeScorer:
    """A per-sample scorer for `Metric`: ``(prediction, target, doc) -> rating / 10``, NaN when it failed.

    The doc carries the question (`question_key`), the criteria (`criteria_key`) and, when the judge should
    see them as LiveBench's does, the images (`images_key`). Failures are kept in ``scorer.failures``.
    """
    return _JudgeScorer(judge, question_key, criteria_key, images_key)


def judge_metric(
    judge: LLMJudge | None = None,
    *,
    name: str = "llm_judge",
    question_key: str = "question",
    criteria_key: str | None = "criteria",
    images_key: str | None = None,
    **judge_kwargs: Any,
) -> Metric:
    """A task `Metric`: per sample rating/10 (NaN when failed), aggregated to ``mean * 100`` over the ok ones.

    Pass a ready `LLMJudge`, or its arguments (``model=..., base_url=..., api_key_env=...``).

    >>> m = judge_metric(model="gpt-4o-mini", base_url="http://127.0.0.1:9/v1", api_key_env=None, use_cache=False)
    >>> m.name, m.aggregate([1.0, 0.0, float("nan")])[0]
    ('llm_judge', 50.0)
    """
    if judge is None:
        if "model" not in judge_kwargs:
            raise TypeError("judge_metric needs a judge=LLMJudge(...) or the judge's model=... and endpoint arguments")
        judge = LLMJudge(judge_kwargs.pop("model"), **judge_kwargs)
    elif judge_kwargs:
        raise TypeError(f"pass either judge= or judge arguments, not both (got {sorted(judge_kwargs)})")
    scorer = judge_scorer(judge, question_key=question_key, criteria_key=criteria_key, images_key=images_key)
    return Metric(name=name, score=scorer, aggregate=judge_aggregation, higher_is_better=True,
                  score_batch=scorer.batch)

