"""lmms-eval 0.7.3's few-shot prompts (`num_fewshot > 0`): the same examples, in the same order, as its sampler.

lmms-eval builds the prompt of the k-th evaluated doc as ``description + examples + doc_to_text(doc)``, where
`examples` joins ``doc_to_text(ex) + target_delimiter + target(ex)`` of the chosen docs with
`fewshot_delimiter`, and ends with one more delimiter. The docs come from `fewshot_split`, else the training,
else the validation, else the test split (process_docs applied). Its default sampler draws
``rnd.sample(docs, n)`` from one ``random.Random(1234)`` (its fewshot seed) shared by all docs in order, drawing
one extra when the few-shot split is the test split and dropping the doc itself; `first_n` takes the first n.
Only text is shown from the examples (lmms-eval's default is not multimodal).

Because the draws depend only on the number of candidate docs, the k-th doc's examples are found by replaying
k draws (`FewShotSampler.indices`), so a resumed or sharded run gives every doc the same prompt.

Example:
    >>> docs = [{"q": f"{i}+{i}=", "a": str(2 * i)} for i in range(5)]
    >>> s = FewShotSampler(lambda: docs, 2, "first_n", same_split=False, text=lambda d: d["q"],
    ...                    target=lambda d: d["a"], choices=None, target_delimiter="", fewshot_delimiter="\\n")
    >>> s.context(0, {"q": "9+9=", "a": "18"})
    '0+0=0\\n1+1=2\\n'
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["FEWSHOT_SEED", "FewShotSampler"]

#: lmms-eval's default --fewshot_random_seed (simple_evaluate's fewshot_random_seed)
FEWSHOT_SEED = 1234
SAMPLERS = ("default", "first_n")


class FewShotSampler:
    """The few-shot examples of the k-th doc, as lmms-eval's ContextSampler / FirstNSampler pick them."""

    def __init__(self, docs: Callable[[], Any], num_fewshot: int, sampler: str, *, same_split: bool,
                 text: Callable[[dict], Any], target: Callable[[dict], Any], choices: Callable[[dict], list] | None,
                 target_delimiter: str, fewshot_delimiter: str, seed: int = FEWSHOT_SEED) -> None:
        self._docs_loader = docs
        self._docs: list[dict] | None = None
        self.num_fewshot = num_fewshot
        self.sampler = sampler
        self.n_draw = num_fewshot + 1 if same_split else num_fewshot
        self.text, self.target, self.choices = text, target, choices
        self.target_delimiter, self.fewshot_delimiter = target_delimiter, fewshot_delimiter
        self._rnd = random.Random(seed)
        self._draws: list[list[int]] = []
        self._lock = threading.Lock()

    def docs(self) -> list[dict]:
        if self._docs is None:
            self._docs = list(self._docs_loader())
        return self._docs

    def indices(self, k: int) -> list[int]:
        """Positions (in the few-shot docs) of the k-th draw."""
        n = len(self.docs())
        if self.sampler == "first_n":
            if self.n_draw > n:
                raise ValueError(f"num_fewshot {self.num_fewshot}: only {n} few-shot docs")
            return list(range(self.n_draw))
        with self._lock:
            while len(self._draws) <= k:
                self._draws.append(self._rnd.sample(range(n), self.n_draw))
            return self._draws[k]

    def _example(self, doc: dict) -> str:
        text = self.text(doc)
        if self.choices is not None and not isinstance(text, str):
            text = self.choices(doc)[text]
        target = self.target(doc)
        if isinstance(target, list):
            target = str(target[0])
        elif self.choices is not None and not isinstance(target, str):
            target = str(self.choices(doc)[target])
        return f"{text}{self.target_delimiter}{target}"

    def context(self, k: int, doc: dict) -> str:
        """The examples for the k-th evaluated doc `doc`, ending with the few-shot delimiter."""
        docs = self.docs()
        chosen = [docs[i] for i in self.indices(k)]
        chosen = [d for d in chosen if d != doc][: self.num_fewshot]
        return self.fewshot_delimiter.join(self._example(d) for d in chosen) + self.fewshot_delimiter
