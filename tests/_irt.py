"""A population of models with a known item response model, for the tests of difficulty-stratified Lite subsets.

The full scores of every model are known, so an estimator from a subset's answers can be checked against them.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from lmms_nb.logs.schema import conform


def irt_population(n_models: int, n_docs: int, seed: int = 0) -> np.ndarray:
    """0/1 correctness (models x docs) from a 2PL model: abilities N(0, 1), difficulties spread wide (many docs
    nearly every model gets right or wrong, as on real benchmarks), discriminations log-normal around 1.5."""
    rng = np.random.default_rng(seed)
    skill = rng.normal(size=n_models)
    a = np.exp(rng.normal(np.log(1.5), 0.3, size=n_docs))
    b = rng.normal(-1.0, 2.5, size=n_docs)
    p = 1 / (1 + np.exp(-(a * (skill[:, None] - b))))
    return (rng.random((n_models, n_docs)) < p).astype(float)


def model_names(n: int) -> list[str]:
    """The models' names, in row order: m00, m01, ..."""
    return [f"m{i:02d}" for i in range(n)]


def samples_of(correct: np.ndarray, doc_ids: np.ndarray | None = None) -> pl.DataFrame:
    """The canonical per-sample table of `correct` (task "t", metric "acc"); doc ids default to 0..n_docs-1."""
    n_models, n_docs = correct.shape
    ids = np.arange(n_docs) if doc_ids is None else doc_ids
    return conform(pl.DataFrame({"model": np.repeat(model_names(n_models), n_docs), "task": "t",
                                 "doc_id": np.tile(ids, n_models), "acc": correct.ravel()}))
