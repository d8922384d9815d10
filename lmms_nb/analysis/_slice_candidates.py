"""Candidate slices for `find_slices`: boolean sample masks from metadata, question words and embedding clusters.

Every candidate is one column of a sparse (samples x candidates) 0/1 matrix, so scoring thousands of
candidates on a half of the samples is one sparse matrix product. Candidates never look at correctness:
they depend on the samples' content only, which is what makes the discover-then-confirm split of
`find_slices` honest.

Example:
    >>> import polars as pl
    >>> rows = pl.DataFrame({"input": ["how many cats"] * 30 + ["read the word"] * 30,
    ...                      "target": ["1"] * 60, "category": ["a", "b"] * 30})
    >>> c = build_candidates(rows, {}, [], min_size=10)
    >>> sorted(r for r in c.rule if r.startswith("category"))
    ['category = a', 'category = b']
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import polars as pl
import scipy.sparse as sp

#: Words too common in English prompts to name a slice.
STOPWORDS = frozenset(
    "the and for are was were with that this which what who whom whose when where why how from into onto "
    "about above below between there their them they then than these those your you our its it's is be been "
    "being have has had does did doing not but can could would should will shall may might must any all each "
    "other some such only own same too very just also one two answer question options option choices choice "
    "following given directly letter single word image picture shown please".split()
)
_WORD_PATTERN = r"[a-z][a-z'\-]{2,}"
_NUMERIC_BINS = 4
_MAX_CATEGORICAL = 50  # a column with more distinct values is not a slicing column (an id, free text)


@dataclass
class Candidates:
    """Column j of `matrix` is candidate j: `kind` (metadata, pair, word, cluster), `rule` (readable definition),
    `source` (the column, "words" or the embedding part) and, for pairs, the two metadata `parents`."""

    matrix: sp.csc_matrix
    kind: list[str] = field(default_factory=list)
    rule: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    parents: list[tuple[int, int] | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rule)


def _codes_matrix(labels: np.ndarray, keep: Sequence[int], n: int) -> sp.csc_matrix:
    """0/1 columns for the codes in `keep` of a code-per-row array."""
    index = {code: j for j, code in enumerate(keep)}
    cols = np.array([index.get(int(c), -1) for c in range(int(labels.max(initial=-1)) + 1)] or [-1])
    col_of = cols[labels] if len(labels) else np.array([], dtype=int)
    rows = np.nonzero(col_of >= 0)[0]
    return sp.csc_matrix((np.ones(len(rows), np.float32), (rows, col_of[rows])), shape=(n, len(keep)))


def _categorical(values: pl.Series, name: str, min_size: int) -> tuple[sp.csc_matrix, list[str]]:
    n = len(values)
    cats, codes = np.unique(values.cast(pl.Utf8).fill_null("(none)").to_numpy().astype(str), return_inverse=True)
    counts = np.bincount(codes, minlength=len(cats))
    if len(cats) > _MAX_CATEGORICAL or len(cats) < 2:
        return sp.csc_matrix((n, 0), dtype=np.float32), []
    keep = [c for c in range(len(cats)) if min_size <= counts[c] <= n - min_size]
    return _codes_matrix(codes, keep, n), [f"{name} = {cats[c]}" for c in keep]


def _numeric(values: np.ndarray, name: str, min_size: int) -> tuple[sp.csc_matrix, list[str]]:
    """Quantile bins of a number per sample (prompt length...): [lo, hi] per bin with at least min_size rows."""
    n = len(values)
    ok = np.isfinite(values)
    if ok.sum() < 2 * min_size:
        return sp.csc_matrix((n, 0), dtype=np.float32), []
    edges = np.unique(np.quantile(values[ok], np.linspace(0, 1, _NUMERIC_BINS + 1)))
    if len(edges) < 3:
        return sp.csc_matrix((n, 0), dtype=np.float32), []
    codes = np.full(n, -1, np.int64)
    codes[ok] = np.clip(np.searchsorted(edges, values[ok], side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(codes[ok], minlength=len(edges) - 1)
    keep = [b for b in range(len(edges) - 1) if min_size <= counts[b] <= n - min_size]
    safe = np.where(codes >= 0, codes, len(edges))  # out-of-range code: in no bin
    rules = [f"{name} in [{edges[b]:g}, {edges[b + 1]:g}{']' if b == len(edges) - 2 else ')'}" for b in keep]
    return _codes_matrix(safe, keep, n), rules


def metadata_columns(rows: pl.DataFrame, by: Sequence[str]) -> list[tuple[str, pl.Series | np.ndarray]]:
    """(name, values) of the columns a slice may be defined on: task (several tasks), category, the answer
    (few distinct targets: answer letters, yes/no), the user's `by` columns, prompt and answer lengths."""
    out: list[tuple[str, pl.Series | np.ndarray]] = []
    if "task" in rows.columns and rows["task"].n_unique() > 1:
        out.append(("task", rows["task"]))
    for col, name in (("category", "category"), ("target", "answer")):
        if col in rows.columns and col not in by and rows[col].null_count() < rows.height:
            out.append((name, rows[col]))
    for col in by:
        values = rows[col]
        if values.dtype.is_numeric() and values.n_unique() > _MAX_CATEGORICAL:
            out.append((col, values.cast(pl.Float64).fill_null(np.nan).to_numpy()))
        else:
            out.append((col, values))
    for col, name in (("input", "prompt length"), ("target", "answer length")):
        if col in rows.columns and rows[col].null_count() < rows.height:
            out.append((name, rows[col].str.len_chars().cast(pl.Float64).fill_null(np.nan).to_numpy()))
    return out


def word_matrix(inputs: pl.Series, min_size: int, *, max_share: float = 0.5,
                max_words: int = 300) -> tuple[sp.csc_matrix, list[str]]:
    """0/1 (samples x words): which prompts contain each word seen in at least `min_size` and at most
    `max_share` of them (the most frequent `max_words`; stopwords and 1-2 letter tokens left out)."""
    n = len(inputs)
    tokens = (
        pl.DataFrame({"row": np.arange(n), "word": inputs.fill_null("").str.to_lowercase().str.extract_all(_WORD_PATTERN)})
        .explode("word")
        .drop_nulls("word")
        .unique(["row", "word"])
    )
    counts = tokens.group_by("word").len().filter(
        (pl.col("len") >= min_size) & (pl.col("len") <= max_share * n) & ~pl.col("word").is_in(list(STOPWORDS))
    ).sort(["len", "word"], descending=[True, False]).head(max_words)
    vocabulary = counts["word"].to_list()
    hits = tokens.join(pl.DataFrame({"word": vocabulary, "col": np.arange(len(vocabulary))},
                                     schema={"word": pl.Utf8, "col": pl.Int64}), on="word")
    matrix = sp.csc_matrix(
        (np.ones(hits.height, np.float32), (hits["row"].to_numpy(), hits["col"].to_numpy())), shape=(n, len(vocabulary))
    )
    return matrix, vocabulary


_CLUSTER_MEMO: OrderedDict[tuple, np.ndarray] = OrderedDict()


def cluster_labels(vectors: np.ndarray, k: int, seed: int, *, fit_rows: int = 5_000, digest: str | None = None) -> np.ndarray:
    """k-means cluster of each row (scikit-learn). Above `fit_rows` rows the centres are fitted on a seeded
    sample of that many rows and every row is then assigned to its nearest centre: k <= 32 clusters are well
    placed by 5k points, and fitting on all of 100k rows would cost twenty times more for the same map.
    Clusters depend on the vectors only, so they are memoised by content: slicing ten models of one table
    clusters its embeddings once."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    digest = digest or hashlib.blake2b(x.view(np.uint8), digest_size=16).hexdigest()
    key = (digest, x.shape, k, seed, fit_rows)
    if key in _CLUSTER_MEMO:
        _CLUSTER_MEMO.move_to_end(key)
        return _CLUSTER_MEMO[key]
    fit = x if len(x) <= fit_rows else x[np.random.default_rng(seed).choice(len(x), fit_rows, replace=False)]
    km = KMeans(n_clusters=k, random_state=seed, n_init=1, max_iter=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct points than k: fewer clusters
        km.fit(fit)
    labels = km.predict(x).astype(np.int64)
    _CLUSTER_MEMO[key] = labels
    while len(_CLUSTER_MEMO) > 32:
        _CLUSTER_MEMO.popitem(last=False)
    return labels


def build_candidates(
    rows: pl.DataFrame,
    embeddings: Mapping[str, np.ndarray],
    by: Sequence[str],
    *,
    min_size: int,
    cluster_sizes: Sequence[int] = (4, 8, 16, 32),
    pairs: bool = True,
    words: bool = True,
    seed: int = 0,
) -> Candidates:
    """All candidate slices of the per-sample table `rows` (see the module docstring)."""
    n = rows.height
    blocks: list[sp.csc_matrix] = []
    out = Candidates(matrix=sp.csc_matrix((n, 0), dtype=np.float32))

    def add(matrix: sp.csc_matrix, rules: list[str], kind: str, source: str, parents=None) -> None:
        blocks.append(matrix)
        out.kind += [kind] * len(rules)
        out.rule += rules
        out.source += [source] * len(rules)
        out.parents += parents if parents is not None else [None] * len(rules)

    meta_sources: list[int] = []  # per metadata candidate: which column it comes from
    for i, (name, values) in enumerate(metadata_columns(rows, by)):
        if isinstance(values, np.ndarray):
            matrix, rules = _numeric(values, name, min_size)
        else:
            matrix, rules = _categorical(values, name, min_size)
        add(matrix, rules, "metadata", name)
        meta_sources += [i] * len(rules)
    n_meta = len(out.rule)
    if pairs and n_meta > 1:
        meta = sp.hstack(blocks, format="csc") if blocks else sp.csc_matrix((n, 0))
        overlap = (meta.T @ meta).toarray()
        sizes = np.diag(overlap)
        src = np.asarray(meta_sources)
        a, b = np.nonzero(np.triu(overlap >= min_size, k=1) & (src[:, None] != src[None, :]))
        # a pair is a candidate only when it is smaller than both its parents (otherwise it is one of them)
        strict = (overlap[a, b] < sizes[a]) & (overlap[a, b] < sizes[b])
        a, b = a[strict], b[strict]
        if len(a):
            matrix = meta[:, a].multiply(meta[:, b]).tocsc()
            add(matrix, [f"{out.rule[i]} & {out.rule[j]}" for i, j in zip(a, b)], "pair", "metadata",
                [(int(i), int(j)) for i, j in zip(a, b)])
    if words and "input" in rows.columns and rows["input"].null_count() < n:
        matrix, vocabulary = word_matrix(rows["input"], min_size)
        add(matrix, [f'prompt has "{w}"' for w in vocabulary], "word", "words")
    for part, vectors in embeddings.items():
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if float(np.ptp(vectors, axis=0).max(initial=0.0)) < 1e-6:
            continue  # the same vector for every sample (e.g. one prompt for all): nothing to cluster
        digest = hashlib.blake2b(vectors.view(np.uint8), digest_size=16).hexdigest()
        for k in cluster_sizes:
            if n < k * min_size:
                continue
            labels = cluster_labels(vectors, k, seed, digest=digest)
            counts = np.bincount(labels, minlength=k)
            keep = [c for c in range(k) if min_size <= counts[c] <= n - min_size]
            add(_codes_matrix(labels, keep, n), [f"{part} cluster {c + 1} of {k}" for c in keep], "cluster", part)
    out.matrix = sp.hstack(blocks, format="csc").astype(np.float32) if blocks else out.matrix
    return out


__all__ = ["Candidates", "STOPWORDS", "build_candidates", "cluster_labels", "metadata_columns", "word_matrix"]
