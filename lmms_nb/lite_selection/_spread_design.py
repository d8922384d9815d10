"""A spread sample for a difference estimator: docs drawn with probability in proportion to their expected
residual, spread evenly over category, difficulty and how earlier models disagree (systematic PPS sampling).

`residual_cv` (`_residual_design`) draws at random within a few dozen strata (category x 4 bins of the expected
residual). `spread_design` keeps its aim, each doc's inclusion probability in proportion to how far the
neighbour predictions miss there (`_residual_design.doc_residuals`, at least `RESIDUAL_FLOOR`), and draws by
systematic sampling (Madow, 1949) along an order of the docs: by category, then `DIFFICULTY_BINS` bins of the
earlier models' mean score within it, and within each bin along the category's main axis of disagreement: the
first principal component of the earlier models' answers, double-centred (each model's mean and each doc's own
mean taken out, so the axis says which models get a doc right, not how hard it is, which the bins already
say), every other bin reversed (a serpentine, so the order runs on across a bin edge; docs tied on all of it,
such as the many every earlier model got right, in a random order per draw). One
random start picks docs at equal steps of cumulative probability, so every stretch of the order gets its share:
an implicit stratification as fine as the budget (about one doc per stretch), so no run of alike docs, where a
new model's prediction errors tend to lean the same way, is over- or under-drawn by chance. Each doc is still
drawn with its probability
`pi`, so the design-weighted difference estimate (weights ``1 / (n * pi)``, `FoldEstimators.control_variate`
with ``design_weights=True``) is unbiased for the full set up to the neighbour predictions' own dependence on the
drawn docs (as for `residual_cv`, whose per-category shrinkage `group_prior` it also reuses).

`spread_cv` in `lite_fidelity` draws its subsets from this design and scores them as `residual_cv` does
(`bench_lite_fidelity.py` prints both).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> skill, hard = rng.normal(size=10), rng.normal(size=300)
    >>> correct = (rng.random((10, 300)) < 1 / (1 + np.exp(hard - skill[:, None]))).astype(float)
    >>> design = spread_design(correct, 30, np.repeat(["a", "b"], 150))
    >>> docs = design.draw(np.random.default_rng(1))
    >>> len(docs), bool(np.isclose(design.pi.sum(), 30)), bool(np.isclose(design.doc_weights(docs).sum(), 1, atol=0.2))
    (30, True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmms_nb.lite_selection._residual_design import RESIDUAL_FLOOR, doc_residuals

__all__ = ["DIFFICULTY_BINS", "SpreadDesign", "inclusion_probabilities", "spread_design", "spread_keys"]

#: difficulty bins per category in the order
DIFFICULTY_BINS = 3
#: a doc whose mean score equals a bin edge goes to the harder bin (side of `np.searchsorted`)
_BIN_SIDE = "left"


@dataclass(frozen=True)
class SpreadDesign:
    """Systematic sampling with inclusion probabilities `pi` (one per doc, summing to the budget `k`, each in
    (0, 1]) along the docs sorted by `keys` (most significant first, e.g. category, difficulty bin, position on
    the principal axis); docs tied on every key are put in a random order at each draw, so the sample's spread
    does not hinge on one arbitrary order of alike docs (such as the many that every earlier model got right)."""

    keys: tuple[np.ndarray, ...]
    pi: np.ndarray

    @property
    def k(self) -> int:
        return int(round(float(self.pi.sum())))

    def order(self, rng: np.random.Generator) -> np.ndarray:
        """The docs sorted by `keys`, ties in a random order from `rng` (the first thing `draw` takes from it)."""
        return np.lexsort((rng.random(len(self.pi)), *reversed(self.keys)))

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Doc indices (sorted) of one sample: along `order`, the docs whose stretch of cumulative probability
        holds one of the points ``u, u + 1, ..., u + k - 1`` (``u`` uniform in [0, 1)); exactly `k` docs."""
        order = self.order(rng)
        cum = np.cumsum(self.pi[order])
        cum *= self.k / cum[-1]  # exact total: float sums must not add or lose a doc
        u = rng.random()
        hit = np.floor(cum - u) > np.floor(np.concatenate([[0.0], cum[:-1]]) - u)
        return np.sort(order[hit])

    def doc_weights(self, docs: np.ndarray) -> np.ndarray:
        """Each doc's design weight in the sample `docs`, ``1 / (n * pi)`` (0 off it): its share of the full set
        over its inclusion probability, so ``scores @ doc_weights`` is an unbiased (Horvitz-Thompson) mean."""
        w = np.zeros(len(self.pi))
        w[docs] = 1.0 / (len(self.pi) * self.pi[docs])
        return w


def inclusion_probabilities(size: np.ndarray, k: int) -> np.ndarray:
    """Probabilities in proportion to `size` (all > 0) summing to `k`, none above 1: a doc whose share would pass
    1 is always drawn and the rest of the budget is shared by the others (the usual PPS capping)."""
    size = np.asarray(size, dtype=np.float64)
    if not 0 < k <= len(size):
        raise ValueError(f"budget k={k} must be in 1..{len(size)}")
    sure = np.zeros(len(size), dtype=bool)
    while True:
        pi = np.ones(len(size))
        rest = ~sure
        pi[rest] = size[rest] / size[rest].sum() * (k - sure.sum())
        over = rest & (pi > 1)
        if not over.any():
            return pi
        sure |= over


def spread_keys(train: np.ndarray, groups: np.ndarray | None = None, n_bins: int = DIFFICULTY_BINS
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The keys the docs are sorted by: category; `n_bins` quantile bins of the earlier models' mean score within
    it (hardest first); the position along the category's first principal component of the earlier models'
    answers (docs as points, double-centred: a doc's difficulty does not move it), reversed in every other bin.
    The position is rounded to 9 decimals: docs with the same answers get the same key, whatever the last bits of
    the SVD on this machine, so `SpreadDesign.order` puts them in its random order."""
    t = np.asarray(train, dtype=np.float64)
    labels = np.zeros(t.shape[1], dtype=np.int64) if groups is None else np.unique(groups, return_inverse=True)[1]
    labels = labels.reshape(-1)
    p = t.mean(axis=0)
    bins, axis = np.zeros(len(p), dtype=np.int64), np.zeros(len(p))
    for g in range(int(labels.max()) + 1):
        docs = np.nonzero(labels == g)[0]
        edges = np.quantile(p[docs], np.linspace(0, 1, n_bins + 1)[1:-1])
        bins[docs] = np.searchsorted(edges, p[docs], side=_BIN_SIDE)
        points = t[:, docs].T  # docs as points in model space
        # double centring: each model's mean and each doc's own mean (its difficulty, already a key) taken out,
        # so the first component is how the models disagree, not how hard the doc is
        centred = points - points.mean(axis=0) - points.mean(axis=1, keepdims=True) + points.mean()
        pc = np.linalg.svd(centred, full_matrices=False)[0][:, 0] if len(docs) > 1 else np.zeros(len(docs))
        # a principal axis has no sign: its largest entry is made positive, whatever the SVD's convention
        axis[docs] = -pc if len(pc) and pc[np.argmax(np.abs(pc))] < 0 else pc
    return labels, bins, np.round(np.where(bins % 2 == 0, axis, -axis), 9)


def spread_design(train: np.ndarray, k: int, groups: np.ndarray | None = None, *,
                  floor: float = RESIDUAL_FLOOR) -> SpreadDesign:
    """The spread design for budget `k` from the earlier models' scores `train` (models x docs, in [0, 1]):
    inclusion probabilities in proportion to each doc's expected residual (`doc_residuals`, at least `floor`),
    drawn systematically along the order of `spread_keys`."""
    t = np.asarray(train, dtype=np.float64)
    pi = inclusion_probabilities(np.maximum(doc_residuals(t, groups), floor), k)
    return SpreadDesign(keys=spread_keys(t, groups), pi=pi)
