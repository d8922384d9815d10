"""`Task`: what to ask a model about each row of a dataset, and how to score the answer.

A task mirrors an lmms-eval task config: a loader returning a `datasets.Dataset`, doc_to_visual /
doc_to_text / doc_to_target / doc_to_choice, generation kwargs, response filters, metrics and an optional
category column.

Example:
    >>> import datasets
    >>> from lmms_nb.tasks.task import Task, Metric
    >>> from lmms_nb.metrics import exact_match
    >>> ds = datasets.Dataset.from_dict({"q": ["2+2?"], "a": ["4"]})
    >>> t = Task(name="toy", load=lambda: ds, doc_to_visual=lambda d: [], doc_to_text=lambda d: d["q"],
    ...          doc_to_target=lambda d: d["a"], metrics=[Metric("exact_match", exact_match)])
    >>> t.score(t.load()[0], "4")
    {'exact_match': 1.0}
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:  # a task's loader imports datasets when it needs it (a prepared folder does not: _saved_splits)
    import datasets

Doc = dict[str, Any]
#: per-sample scorer: (prediction, target, doc) -> float in [0, 1] (or any float)
Scorer = Callable[[str, str, Doc], float]
#: aggregation: (per-sample values, their docs) -> (value, stderr or None)
Aggregation = Callable[[Sequence[float], Sequence[Doc]], tuple[float, float | None]]


def mean_aggregation(values: Sequence[float], docs: Sequence[Doc] = ()) -> tuple[float, float | None]:
    """Mean and its standard error (sample sd / sqrt(n)), as lmms-eval's `mean` with `mean_stderr`."""
    from lmms_nb.metrics import mean_stderr

    return mean_stderr(values)


@dataclass
class Metric:
    """One metric of a task: a per-sample scorer and how per-sample values aggregate into the task score."""

    name: str
    score: Scorer
    aggregate: Aggregation = mean_aggregation
    higher_is_better: bool = True
    #: when False the metric is only an aggregate (e.g. MME acc+): it reuses `source`'s per-sample values.
    per_sample: bool = True
    source: str | None = None
    #: optional batched scorer (predictions, targets, docs) -> values, used instead of `score` when set: for
    #: scorers that call a model (an LLM judge), so one batch of samples is one batch of concurrent requests.
    score_batch: Callable[[Sequence[str], Sequence[str], Sequence[Doc]], Sequence[float]] | None = None


def _identity_filter(response: str, doc: Doc) -> str:
    return response


@dataclass
class Task:
    """A benchmark task. See the module docstring for an example."""

    name: str
    load: Callable[[], datasets.Dataset]
    doc_to_visual: Callable[[Doc], list]
    doc_to_text: Callable[[Doc], str]
    doc_to_target: Callable[[Doc], str]
    metrics: list[Metric]
    doc_to_choice: Callable[[Doc], list[str]] | None = None
    generation_kwargs: dict[str, Any] = field(default_factory=lambda: {"max_new_tokens": 16, "do_sample": False})
    #: response filters by name, applied before scoring; each makes one log line per doc (as lmms-eval).
    filters: dict[str, Callable[[str, Doc], str]] = field(default_factory=lambda: {"none": _identity_filter})
    category_column: str | None = None
    split: str = "test"
    #: the dataset column holding the image(s); checked before a run so a wrong dataset fails early (a dataset
    #: without it is accepted when `doc_to_visual` gives its first doc no image: a text-only task).
    image_column: str | None = "image"
    #: where the image bytes live, for image_ref (a `save_to_disk` folder); set by loaders that know it.
    dataset_path: str | None = None
    version: str = "1"
    description: str = ""
    #: optional per-doc process_results(doc, prediction) -> {metric: float}, overriding the scorers.
    process_results: Callable[[Doc, str], dict[str, Any]] | None = None
    #: the training split, when the task has one (baselines such as `majority` and the zoo learn from it)
    train_load: Callable[[], datasets.Dataset] | None = None
    #: lmms-eval's doc_to_messages(doc) -> chat messages, when the task defines it: what lmms-eval sends to
    #: chat backends instead of doc_to_visual + doc_to_text (which the other backends get)
    doc_to_messages: Callable[[Doc], list[dict[str, Any]]] | None = None
    #: prompt_at(k, doc): the prompt of the k-th doc (doc id k) when it depends on the position, as lmms-eval's
    #: few-shot prompts do (their examples are drawn in doc order); None: `doc_to_text(doc)`
    prompt_at: Callable[[int, Doc], str] | None = None
    #: "generate_until" (the model writes an answer) or "multiple_choice" (the model scores each choice's
    #: loglikelihood; see `lmms_nb.tasks._yaml_choice`), as lmms-eval's output_type
    output_type: str = "generate_until"
    #: what separates the prompt from each choice in a multiple_choice request (lmms-eval's default " ")
    target_delimiter: str = " "
    #: answers asked per doc (lmms-eval's `repeats`): the model is asked k times; each filter reduces the k
    #: responses (take_first, majority_vote, take_first_k, ...) before scoring
    repeats: int = 1
    doc_ids: Sequence[int] | None = None  # evaluate only these rows (a Lite subset); doc ids stay row indices
    config: dict[str, Any] = field(default_factory=dict)  # free-form, recorded in results.json

    def dataset(self) -> datasets.Dataset:
        """The whole evaluation split, checked: a missing image column is an error naming the task and column.

        Row i of this dataset is doc_id i; `selected_doc_ids()` says which rows a run evaluates.
        """
        ds = self.load()
        if self.image_column is not None and self.image_column not in ds.column_names and not self._text_only(ds):
            raise ValueError(
                f"task {self.name!r}: dataset has no image column {self.image_column!r} "
                f"(columns: {', '.join(ds.column_names)})"
            )
        if self.category_column is not None and self.category_column not in ds.column_names:
            raise ValueError(f"task {self.name!r}: dataset has no category column {self.category_column!r}")
        return ds

    def _text_only(self, ds: datasets.Dataset) -> bool:
        # A task without images needs no image column declared: its first doc asks for no image.
        try:
            return len(ds) == 0 or not list(self.doc_to_visual(ds[0]) or [])
        except Exception:  # noqa: BLE001 - doc_to_visual wants the missing column: the error below says so
            return False

    def selected_doc_ids(self, n_rows: int) -> list[int]:
        """The row indices (doc ids) this task evaluates: `doc_ids` when set (a Lite subset), else all rows."""
        if self.doc_ids is None:
            return list(range(n_rows))
        bad = [i for i in self.doc_ids if not 0 <= int(i) < n_rows]
        if bad:
            raise ValueError(f"task {self.name!r}: doc_ids out of range for {n_rows} rows: {bad[:5]}")
        return [int(i) for i in self.doc_ids]

    def prompt(self, doc_id: int, doc: Doc) -> str:
        """The prompt the model gets for doc `doc_id`: `doc_to_text(doc)`, or the few-shot prompt when set."""
        return self.prompt_at(doc_id, doc) if self.prompt_at is not None else self.doc_to_text(doc)

    def score(self, doc: Doc, prediction: str) -> dict[str, Any]:
        """Per-sample metric values for one filtered prediction (batched scorers are called with a batch of 1).

        Values are floats, except what an lmms-eval `process_results` returns, which is kept as it is (MME
        returns dicts such as {question_id, category, score} that its aggregation needs); the log keeps it too,
        and the canonical table takes its number (see `lmms_nb.tasks._yaml_metrics.metric_number`).
        """
        if self.process_results is not None:
            return dict(self.process_results(doc, prediction))
        target = self.doc_to_target(doc)
        out = {}
        for m in self.metrics:
            if not m.per_sample:
                continue
            if m.score_batch is not None:
                out[m.name] = float(m.score_batch([prediction], [target], [doc])[0])
            else:
                out[m.name] = float(m.score(prediction, target, doc))
        return out

    def batch_metrics(self) -> list[Metric]:
        """The per-sample metrics that score a whole batch at once (see `Metric.score_batch`)."""
        if self.process_results is not None:
            return []
        return [m for m in self.metrics if m.per_sample and m.score_batch is not None]

    def fingerprint(self) -> str:
        """A short hash of what determines this task's requests: name, version, prompts, kwargs, data size.

        Used to key caches and to refuse resuming a run whose task changed underneath it.
        """
        parts = {
            "name": self.name,
            "version": self.version,
            "split": self.split,
            **({"repeats": self.repeats} if self.repeats != 1 else {}),
            "generation_kwargs": self.generation_kwargs,
            "filters": sorted(self.filters),
            "metrics": [m.name for m in self.metrics],
            "doc_ids": list(self.doc_ids) if self.doc_ids is not None else None,
            "doc_to_text": function_source(self.doc_to_text),
            "config": self.config,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def function_source(fn: Callable) -> str:
    """A task function's source text (its qualified name when there is none), for cache keys that change with it."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", repr(fn))
