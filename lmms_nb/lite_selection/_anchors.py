"""Anchor points (Vivek et al., 2023): a subset chosen from how earlier models answered, not from what docs look like.

Each doc is a point whose coordinates are the earlier models' scores on it; docs that the same models get
right and wrong behave alike, so a few representatives of those groups predict a new model's full score.
`anchor_points` clusters the docs (k-means on those vectors, seeded), keeps in each cluster the doc nearest
its centre, and weights it by the cluster's share of the docs: the estimate is ``sum(weight * score)``.

k-means finds a local optimum, and which one matters: anchor sets from different k-means seeds give
`anchor_corrected` different errors on held-out models. `selected_anchor_points` clusters from `ANCHOR_SETS`
seeds and keeps the set whose linear correction (`_corrections.linear_correction`, the estimator
anchor_corrected uses) has the lowest leave-one-model-out error on the earlier models (each model estimated by
a correction refitted without it, `_corrections.correction_loo_error`): the set that best predicts models its
correction was not fitted on, rather than the one of lowest k-means inertia. The `anchor` and `anchor_irt`
baselines keep `anchor_points` as published (3 starts, lowest inertia).

Example:
    >>> import numpy as np
    >>> scores = np.array([[1, 1, 0, 0, 1, 1], [1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]], dtype=float)
    >>> docs, weights = anchor_points(scores, 3)
    >>> sorted(weights.tolist()), sorted(int(d) // 2 for d in docs)
    ([0.3333333333333333, 0.3333333333333333, 0.3333333333333333], [0, 1, 2])
"""

from __future__ import annotations

import warnings

import numpy as np

from lmms_nb.lite_selection._corrections import correction_loo_error
from lmms_nb.lite_selection._memo import memoised

__all__ = ["ANCHOR_SETS", "anchor_points", "selected_anchor_points"]

#: anchor sets (k-means seeds, one start each) `selected_anchor_points` compares: about twice the k-means work of
#: one set of 3 starts
ANCHOR_SETS = 6


@memoised()  # deterministic given the training models; nested folds repeat them (see _memo)
def selected_anchor_points(scores: np.ndarray, k: int, *, seed: int = 0, n_sets: int = ANCHOR_SETS
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Of `n_sets` `anchor_points` sets (k-means seeded ``seed + 1000 * s``, one init each), the one whose
    linear correction has the lowest leave-one-model-out error on the models of `scores`
    (`_corrections.correction_loo_error`); ties go to the earlier seed. With fewer than 3 models there is no
    error to compare sets by: the set of `anchor_points` (3 starts).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> skill, hard = rng.normal(size=8), rng.normal(size=120)
        >>> scores = (rng.random((8, 120)) < 1 / (1 + np.exp(hard - skill[:, None]))).astype(float)
        >>> docs, weights = selected_anchor_points(scores, 12)
        >>> len(docs), round(float(weights.sum()), 9)
        (12, 1.0)
    """
    if not isinstance(n_sets, (int, np.integer)) or n_sets < 1:
        raise ValueError(f"selected_anchor_points: n_sets must be an int >= 1, got {n_sets!r}")
    if len(scores) < 3:
        return anchor_points(scores, k, seed=seed)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # once for every set: finding the thread pools costs more than a k-means here
        sets = [_anchor_points(scores, k, seed=seed + 1000 * s, n_init=1) for s in range(n_sets)]
    errors = np.array([correction_loo_error(scores, docs, weights) for docs, weights in sets])
    # NaN errors (non-finite scores) never win; if every one is NaN, the first set
    return sets[int(np.argmin(np.where(np.isnan(errors), np.inf, errors)))]


def anchor_points(scores: np.ndarray, k: int, *, seed: int = 0, n_init: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """`k` anchor docs (column indices of `scores`, models x docs) and their weights (cluster shares, sum 1).

    Clusters docs by k-means (scikit-learn, `n_init` starts, seeded) on their score vectors across the models;
    each cluster's anchor is its doc nearest the centre (lowest index on ties). When the docs have fewer than
    `k` distinct score vectors, the rest of the budget goes to the largest clusters' next-nearest docs (the
    weights still sum to 1: a cluster's share is split over its anchors).
    """
    from threadpoolctl import threadpool_limits

    # one thread: on a few hundred docs sklearn's thread pool costs far more than the work
    with threadpool_limits(1):
        return _anchor_points(scores, k, seed=seed, n_init=n_init)


def _anchor_points(scores: np.ndarray, k: int, *, seed: int, n_init: int) -> tuple[np.ndarray, np.ndarray]:
    """`anchor_points` within the caller's thread limits."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    x = np.asarray(scores, dtype=np.float64).T  # docs x models
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"anchor_points: budget {k} must be between 1 and the number of docs ({n})")
    distinct = len(np.unique(x, axis=0))
    n_clusters = min(k, distinct)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct points than clusters asked
        km = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit(x)
    labels = km.labels_
    dist = np.linalg.norm(x - km.cluster_centers_[labels], axis=1)
    sizes = np.bincount(labels, minlength=n_clusters)
    # how many anchors each cluster gets: one each, then extra ones to the largest clusters (never more than
    # the cluster holds)
    quota = np.ones(n_clusters, dtype=np.int64)
    quota[sizes == 0] = 0
    for c in np.argsort(-sizes, kind="stable"):
        if quota.sum() >= k:
            break
        quota[c] = min(sizes[c], quota[c] + (k - quota.sum()))
    docs, weights = [], []
    for c in range(n_clusters):
        if quota[c] == 0:
            continue
        members = np.nonzero(labels == c)[0]
        nearest = members[np.lexsort((members, dist[members]))][: quota[c]]
        docs += nearest.tolist()
        weights += [sizes[c] / n / quota[c]] * quota[c]
    return np.asarray(docs, dtype=np.int64), np.asarray(weights, dtype=np.float64)
