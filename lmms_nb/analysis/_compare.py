"""`compare()`: scores with bootstrap CIs, paired tests between models, disagreement slices and figures.

How the work is split, so that 10 models x 100k samples take well under a second (benchmarks/bench_compare.py):
- one polars group-by summarises the samples per model x run x task x filter (x category): the metric
  choice, the run checks and every score come from that small table;
- samples are aligned on (task, doc_id, filter) by polars joins on one integer key into a wide table
  (one value and one correct column per model; null = not scored for that model);
- every pairwise count (n_both, only_a, a_right_b_wrong, ...) of every model pair is an entry of a product
  of that wide table's presence / correctness matrices (one BLAS call per task);
- scipy sees only counts (exact McNemar, Wilson intervals) and, for continuous metrics,
  the paired differences (scipy.stats.bootstrap, ttest).

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({
    ...     "model": ["A"] * 6 + ["B"] * 6, "task": ["t"] * 12, "doc_id": list(range(6)) * 2,
    ...     "acc": [1, 1, 1, 0, 1, 0] + [0, 0, 0, 1, 1, 0]})
    >>> cmp = compare(df)
    >>> row = cmp.pairwise.row(0, named=True)
    >>> row["a_right_b_wrong"], row["b_right_a_wrong"], row["p_value"], row["test"]
    (3, 1, 0.625, 'mcnemar_exact')
    >>> cmp.a_right_b_wrong("A", "B")["doc_id"].to_list()
    [0, 1, 2]
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import polars as pl

from lmms_nb.analysis import _stats
from lmms_nb.analysis._alignment import missing_samples, wide_table
from lmms_nb.analysis._comparison import Comparison
from lmms_nb.analysis._pairwise import pairwise_table
from lmms_nb.analysis._prepare import RunChoice, as_canonical, prepare
from lmms_nb.analysis._score_intervals import block_scores, continuous_intervals

__all__ = ["compare"]


def compare(
    df: Any,
    *,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    metric: str | Mapping[str, str] | None = None,
    by: str | Sequence[str] | None = None,
    runs: RunChoice = None,
    confidence: float = 0.95,
    n_resamples: int = _stats.DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Comparison:
    """Compare models on a canonical sample table (polars or pandas).

    Args:
        df: the canonical sample table (`lmms_nb.load_logs(...)` or `Run.samples`).
        models, tasks: the models (in display order) and tasks to compare; default all (sorted).
        metric: a metric column for every task, or {task: column}. Default: per task, the only metric column
            with values on that task's rows; with several, an error lists them.
        by: column(s) for `scores_by_group` and the category figures; default "category" when it has values.
        runs: which run of a model to use when several runs cover one task: {model: run_id} or "latest"
            (the run id that sorts last); otherwise that case raises.
        confidence, n_resamples, seed: of the percentile bootstrap CIs (fixed seed: reproducible numbers).

    `scores` / `scores_by_group`: n (scored samples), n_unscored (rows whose metric is null, e.g. a model
    error), score (mean of the metric) and a CI named by `ci_method`: the Wilson score interval for 0/1
    metrics (never a point: 5 of 5 right is [0.57, 1]), a percentile bootstrap for continuous ones (Wilson
    of the mean when all values are equal and in [0, 1], where the bootstrap would give a point).

    "Correct" (slices, flips, agreement, the sample heatmap) is value == 1 for 0/1 metrics and value >= 0.5
    (`CONTINUOUS_CORRECT_THRESHOLD`) for continuous ones such as ANLS.

    `pairwise` has one row per model pair (a before b in model order) x task x filter: n_both, only_a/only_b
    (samples scored for one side only: counted here, listed in `missing`), a_right_b_wrong, b_right_a_wrong,
    score_a/score_b on the shared samples, diff = score_a - score_b with its paired bootstrap CI (pairs
    resampled; n_resamples draws seeded by seed and the pair's counts), and p_value from McNemar's exact test
    (0/1 metrics: binomial test on the discordant pairs) or a paired t-test (continuous metrics), p_holm
    adjusted (Holm) over all model pairs of the same task and filter, and `test` naming the test.

    >>> import polars as pl
    >>> df = pl.DataFrame({"model": ["A", "A", "B"], "task": ["t"] * 3, "doc_id": [0, 1, 0], "acc": [1, 0, 1]})
    >>> cmp = compare(df)
    >>> cmp.scores.select("model", "n", "score").rows()
    [('A', 2, 0.5), ('B', 1, 1.0)]
    >>> cmp.missing.select("model", "doc_id", "reason").rows()
    [('B', 1, 'absent')]
    """
    source = as_canonical(df, keep=[by] if isinstance(by, str) else list(by or []))
    scored, info = prepare(source, models=models, tasks=tasks, metric=metric, by=by, runs=runs)
    stats: dict[str, Any] = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    wide = wide_table(scored, info)
    task_cis, group_cis, pair_cis = continuous_intervals(wide, scored, info, **stats)
    scores = block_scores(info, ["model", "task", "filter"], task_cis, confidence=confidence)
    if info.by:
        by_scores = block_scores(info, ["model", "task", "filter", *info.by], group_cis, confidence=confidence)
    else:
        by_scores = pl.DataFrame(schema=scores.schema)
    return Comparison(
        models=info.models,
        tasks=info.tasks,
        metrics=info.metrics,
        binary=info.binary,
        by=info.by,
        scores=scores,
        scores_by_group=by_scores,
        pairwise=pairwise_table(wide, info, pair_cis, **stats),
        missing=missing_samples(wide, scored, info.models),
        samples=scored,
        wide=wide,
        source=source,
        **stats,
    )
