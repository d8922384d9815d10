"""`find_slices`: the coherent groups of samples where a model fails, or does worse than a baseline, found for you.

Candidates (see `_slice_candidates`) are metadata values and their pairs, words of the prompts and k-means
clusters of the Lite embeddings (image, text and both: `_slice_embeddings`). Honest by construction: the
samples' docs are split at random into two halves; candidates are ranked on the *discovery* half, the best
`max_tests` are tested once on the *confirmation* half, and only those tests are corrected for multiplicity
(Holm). Because the candidates never see correctness and the halves are disjoint, a model that fails uniformly
at random gets a significant slice with probability at most `alpha`. Rates, CIs and p-values are all read on
the confirmation half (no winner's curse); `size` counts all samples.

Example:
    >>> import polars as pl
    >>> rows = [{"model": "m", "task": "t", "doc_id": i, "category": "hard" if i % 4 == 0 else "easy",
    ...          "acc": float(i % 4 != 0)} for i in range(400)]
    >>> found = find_slices(pl.DataFrame(rows), "m")
    >>> found.table.filter("significant")["rule"].to_list()
    ['category = hard']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl
import scipy.sparse as sp

from lmms_nb.analysis._prepare import RunChoice, as_canonical, prepare
from lmms_nb.analysis._slice_candidates import Candidates, build_candidates
from lmms_nb.analysis._slice_embeddings import embedding_parts, map_coordinates
from lmms_nb.analysis._slice_selection import discovery_ranking, one_sided_p, prune_merges, prune_overlaps
from lmms_nb.analysis._stats import binary_mean_ci, holm_adjust, paired_binary_diff_ci

_KEY = ["task", "doc_id", "filter"]
_TEXT = ["input", "target", "category", "prediction"]


@dataclass
class Slices:
    """What `find_slices` found. `table`: one row per slice tested on the confirmation half, best first
    (`significant` marks the reported ones); `members`: slice_id, task, doc_id, filter of every slice's
    samples; `samples`: one row per sample with its outcome, its half and (with embeddings) map_x / map_y."""

    model: str
    baseline: str | None
    table: pl.DataFrame
    members: pl.DataFrame
    samples: pl.DataFrame
    n_candidates: int
    n_tested: int
    n_pruned: int
    alpha: float

    @property
    def significant(self) -> pl.DataFrame:
        """The reported slices: significant after Holm correction, merges of smaller ones pruned."""
        return self.table.filter(pl.col("significant"))

    def filter(self, df: Any, slice_id: int) -> pl.DataFrame:
        """The rows of `df` (any table with task and doc_id, e.g. the sample table) that belong to a slice.

        >>> import polars as pl
        >>> rows = pl.DataFrame({"model": "m", "task": "t", "doc_id": range(400), "acc": [float(i % 5 > 0) for i in range(400)],
        ...                      "category": ["x" if i % 5 == 0 else "y" for i in range(400)]})
        >>> found = find_slices(rows, "m")
        >>> found.filter(rows, 0)["category"].unique().to_list()
        ['x']
        """
        if slice_id not in set(self.table["slice_id"].to_list()):
            raise ValueError(f"no slice {slice_id!r}; slice ids: {self.table['slice_id'].to_list()}")
        table = df.collect() if isinstance(df, pl.LazyFrame) else df
        if not isinstance(table, pl.DataFrame):
            table = pl.from_pandas(table)
        on = [c for c in _KEY if c in table.columns]
        keys = self.members.filter(pl.col("slice_id") == slice_id).select(on).unique()
        return table.join(keys, on=on, how="semi")

    def map_figure(self, *, top: int = 5) -> Any:
        """Plotly map of the samples (2-D PCA of their embeddings), coloured by outcome, top slices outlined."""
        from lmms_nb.analysis._slice_figures import slice_map_figure

        return slice_map_figure(self, top=top)

    def __repr__(self) -> str:
        what = f"{self.model} vs {self.baseline}" if self.baseline else self.model
        return (f"Slices({what}: {self.significant.height} significant of {self.n_tested} tested on the held-out "
                f"half; {self.n_candidates} candidates tried, {self.n_pruned} pruned as merges or duplicates)")


def _sample_rows(scored: pl.DataFrame, model: str, baseline: str | None, by: list[str]) -> pl.DataFrame:
    cols = list(dict.fromkeys(["_key", *_KEY, *_TEXT, *by]))
    rows = scored.filter((pl.col("model") == model) & pl.col("value").is_not_null()).select(*cols, "correct")
    if baseline is not None:
        other = scored.filter((pl.col("model") == baseline) & pl.col("value").is_not_null()).select(
            "_key", pl.col("correct").alias("baseline_correct"), pl.col("prediction").alias("baseline_prediction"))
        rows = rows.join(other, on="_key", how="inner")
        # +1: the model is wrong where the baseline is right; -1: the reverse; 0: they agree
        outcome = pl.col("baseline_correct").cast(pl.Int8) - pl.col("correct").cast(pl.Int8)
    else:
        outcome = (~pl.col("correct")).cast(pl.Int8)
    return rows.sort("_key").with_columns(outcome.cast(pl.Float64).alias("outcome"))


def _label(cands: Candidates, j: int, mask: np.ndarray, rows: pl.DataFrame, words: sp.csc_matrix,
           vocabulary: list[str]) -> str:
    """The slice's dominant task and category (>= 50% of it) and its most over-represented words, after its rule
    for metadata and word slices (a cluster's rule, "image cluster 3 of 16", says little by itself)."""
    parts = [] if cands.kind[j] == "cluster" else [cands.rule[j]]
    for col in ("task", "category"):
        if col in rows.columns and (col != "task" or rows["task"].n_unique() > 1):
            counts = rows.filter(pl.Series(mask))[col].value_counts(sort=True)
            value, count = counts.row(0)
            if count >= 0.5 * mask.sum() and value is not None and f"{col} = {value}" not in cands.rule[j]:
                parts.append(f"{col} {value} ({count / mask.sum():.0%})")
    if words.shape[1]:
        inside = np.asarray(words[mask].mean(axis=0)).ravel()
        overall = np.asarray(words.mean(axis=0)).ravel()
        lift = np.where(inside >= 0.3, inside / np.maximum(overall, 1e-9), 0)
        top = [vocabulary[w] for w in np.argsort(-lift)[:4] if lift[w] >= 1.5
               and f'"{vocabulary[w]}"' not in cands.rule[j]][:3]
        if top:
            parts.append("words: " + ", ".join(top))
    return "; ".join(parts) or cands.rule[j]


def find_slices(
    df: Any,
    model: str,
    baseline: str | None = None,
    embeddings: Any = None,
    by: str | Sequence[str] | None = None,
    *,
    tasks: Sequence[str] | None = None,
    metric: str | Mapping[str, str] | None = None,
    runs: RunChoice = None,
    min_size: int = 20,
    alpha: float = 0.05,
    max_tests: int = 50,
    cluster_sizes: Sequence[int] = (4, 8, 16, 32),
    n_examples: int = 5,
    seed: int = 0,
) -> Slices:
    """Slices of the samples where `model` fails more than on the rest (with `baseline`: where it loses more
    often to the baseline), each with its size, rate, CI, Holm-adjusted p-value, label and example failures.

    df: the canonical sample table. embeddings: None (no cluster candidates), Lite `TaskEmbeddings` (one, a
    list or {task: ...}), `Task`s (embedded with `local_embedding_models()`, cached) or "text" (the prompts,
    embedded with the offline text model). by: extra columns of df to slice on (question type, image size...).
    Unscored samples (null metric) are left out, as in `compare`. See the module docstring for the method.

    Table columns: slice_id, label, rule, kind (metadata, pair, word, cluster), size, share, then on the
    confirmation half n_confirm and fail_rate, ci_low, ci_high, rest_fail_rate (with a baseline: accuracy,
    baseline_accuracy, gap = accuracy - baseline_accuracy with its paired CI, rest_gap), p_value,
    p_adjusted, significant, examples (failures: task, doc_id, filter, input, target, prediction).
    """
    if baseline is not None and baseline == model:
        raise ValueError(f"baseline must differ from model (both are {model!r})")
    if min_size < 2:
        raise ValueError(f"min_size must be >= 2, got {min_size}")
    by_list = [] if by is None else [by] if isinstance(by, str) else list(by)
    canonical = as_canonical(df, keep=by_list)
    models = [model] if baseline is None else [model, baseline]
    scored, _ = prepare(canonical, models=models, tasks=tasks, metric=metric, by=by_list, runs=runs)
    rows = _sample_rows(scored, model, baseline, by_list)
    if rows.height < 4 * min_size:
        raise ValueError(f"{rows.height} scored samples{' shared with ' + baseline if baseline else ''} for "
                         f"{model!r}: too few to split in halves and find slices of min_size={min_size}")
    parts = embedding_parts(embeddings, rows)
    cands = build_candidates(rows, parts, by_list, min_size=min_size, cluster_sizes=cluster_sizes, seed=seed)

    # halves by doc (a doc's filters stay together), from a seeded coin per doc
    doc_index = rows.select(pl.struct("task", "doc_id").rank("dense")).to_series().to_numpy() - 1
    # salted: a plain default_rng(seed) would replay the stream a user may have drawn their own data from
    discover = (np.random.default_rng([seed, 0x5_11CE]).random(int(doc_index.max()) + 1) < 0.5)[doc_index]
    y = rows["outcome"].to_numpy()
    chosen = discovery_ranking(cands, y, discover, min_size, max_tests)

    confirm = ~discover
    m = cands.matrix[:, chosen].tocsr()[confirm].tocsc()
    yc = y[confirm]
    in_slice = m.toarray() > 0
    n_in = in_slice.sum(axis=0)
    n_out = len(yc) - n_in
    worse_in = (in_slice & (yc > 0)[:, None]).sum(axis=0)  # failures (with a baseline: losses to it)
    worse_out = int((yc > 0).sum()) - worse_in
    better_in = (in_slice & (yc < 0)[:, None]).sum(axis=0)  # with a baseline: wins over it
    better_out = int((yc < 0).sum()) - better_in
    p = np.array([one_sided_p(yc[in_slice[:, i]], yc[~in_slice[:, i]], baseline is not None) for i in range(len(chosen))])
    p_adj = holm_adjust(p) if len(p) else p
    significant = p_adj <= alpha

    full = cands.matrix[:, chosen].tocsc()
    sig = [i for i in range(len(chosen)) if significant[i]]
    dropped = {sig[i] for i in prune_merges(full[:, sig], confirm, y, baseline is not None, alpha)} if len(sig) > 1 else set()
    keep = [i for i in range(len(chosen)) if i not in dropped]
    keep.sort(key=lambda i: (not significant[i], p_adj[i], -(worse_in[i] / max(n_in[i], 1))))
    overlapping = prune_overlaps(full, [i for i in keep if significant[i]], confirm, y, baseline is not None, alpha)
    keep = [i for i in keep if i not in overlapping]
    dropped |= overlapping

    word_cols = [j for j, k in enumerate(cands.kind) if k == "word"]
    words = cands.matrix[:, word_cols].tocsr()
    vocabulary = [cands.rule[j].split('"')[1] for j in word_cols]
    rng = np.random.default_rng(seed)
    records, member_parts = [], []
    with np.errstate(divide="ignore", invalid="ignore"):
        for rank, i in enumerate(keep):
            j = chosen[i]
            mask = full[:, i].toarray().ravel() > 0
            failures = np.nonzero(mask & (y > 0))[0]
            picks = np.sort(rng.permutation(failures)[:n_examples])
            example_cols = [*_KEY, "input", "target", "prediction", *(["baseline_prediction"] if baseline else [])]
            record: dict[str, Any] = {
                "slice_id": rank, "label": _label(cands, j, mask, rows, words, vocabulary), "rule": cands.rule[j],
                "kind": cands.kind[j], "size": int(mask.sum()), "share": float(mask.mean()), "n_confirm": int(n_in[i]),
            }
            if baseline is None:
                low, high = binary_mean_ci([worse_in[i]], [n_in[i]])
                record |= {"fail_rate": worse_in[i] / n_in[i], "ci_low": float(low[0]), "ci_high": float(high[0]),
                           "rest_fail_rate": worse_out[i] / n_out[i]}
            else:
                acc = rows["correct"].to_numpy()[confirm][in_slice[:, i]].mean()
                base = rows["baseline_correct"].to_numpy()[confirm][in_slice[:, i]].mean()
                low, high = paired_binary_diff_ci(int(better_in[i]), int(worse_in[i]), int(n_in[i]), seed=seed)
                record |= {"accuracy": float(acc), "baseline_accuracy": float(base),
                           "gap": (better_in[i] - worse_in[i]) / n_in[i], "ci_low": low, "ci_high": high,
                           "rest_gap": (better_out[i] - worse_out[i]) / n_out[i]}
            record |= {"p_value": float(p[i]), "p_adjusted": float(p_adj[i]), "significant": bool(significant[i]),
                       "examples": rows[picks].select(example_cols).with_columns(
                           pl.col("input").str.slice(0, 300)).to_dicts()}
            records.append(record)
            member_parts.append(rows.filter(pl.Series(mask)).select(pl.lit(rank).alias("slice_id"), *_KEY))
    table = pl.DataFrame(records) if records else _empty_table(baseline)
    members = pl.concat(member_parts) if member_parts else pl.DataFrame(
        schema={"slice_id": pl.Int64, "task": pl.Utf8, "doc_id": pl.Int64, "filter": pl.Utf8})
    samples = rows.drop("_key").with_columns(pl.Series("half", np.where(discover, "discover", "confirm")))
    if parts:
        samples = samples.with_columns(*map_coordinates(parts, seed))
    return Slices(model, baseline, table, members, samples, len(cands), len(chosen), len(dropped), alpha)


def _empty_table(baseline: str | None) -> pl.DataFrame:
    rates = (["fail_rate", "ci_low", "ci_high", "rest_fail_rate"] if baseline is None
             else ["accuracy", "baseline_accuracy", "gap", "ci_low", "ci_high", "rest_gap"])
    schema: dict[str, Any] = {"slice_id": pl.Int64, "label": pl.Utf8, "rule": pl.Utf8, "kind": pl.Utf8,
                              "size": pl.Int64, "share": pl.Float64, "n_confirm": pl.Int64}
    schema |= {c: pl.Float64 for c in rates}
    schema |= {"p_value": pl.Float64, "p_adjusted": pl.Float64, "significant": pl.Boolean, "examples": pl.List(pl.Null)}
    return pl.DataFrame(schema=schema)


__all__ = ["Slices", "find_slices"]
