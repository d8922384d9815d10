"""What a Lite subset and each of its picks stand for, in words: for a map's hover text and a summary line.

A k-center pick stands for its cell (the docs nearest to it); a pick of a difficulty subset stands for its share
of a difficulty stratum (the stratum's docs over the picks drawn from it), since no cells are formed there. These
are plain texts (HTML-escape them to show them in markup).

Example:
    >>> from lmms_nb.lite_selection import LiteSubset
    >>> sub = LiteSubset(task="t", doc_ids=[0, 2], cell_sizes=[2, 2], n_full=4, radius=1.0)
    >>> pick_notes(sub)
    [('cell', '2 docs (weight 0.500)'), ('cell', '2 docs (weight 0.500)')]
    >>> subset_summary(sub)
    '2 of 4 docs (50.0%) · coverage radius 1.000 · largest cell 2 docs'
"""

from __future__ import annotations

from lmms_nb.lite_selection._difficulty_subset import DifficultySubset
from lmms_nb.lite_selection._subset import LiteSubset

__all__ = ["pick_notes", "subset_summary"]


def pick_notes(subset: LiteSubset) -> list[tuple[str, str]]:
    """(what, how much) each pick stands for, in pick order: ("cell", "12 docs (weight 0.120)") for k-center,
    ("stratum share", "12.5 docs (weight 0.125)") for a `DifficultySubset` (its design weight x the task's docs),
    ("inclusion weight", "drawn with p=0.10, stands for 10.0 docs (weight 0.100)") for a `spread_cv` one."""
    if isinstance(subset, DifficultySubset) and subset.meta.get("method") == "anchor_corrected":
        return [("anchor cluster share", f"{w * subset.n_full:.1f} docs (weight {w:.3f})")
                for w in subset.design_weights]
    if isinstance(subset, DifficultySubset) and subset.meta.get("method") == "spread_cv":
        # a systematic PPS draw: each pick's weight is 1 / (n * pi), the docs it stands for 1 / pi
        return [("inclusion weight", f"drawn with p={1 / (w * subset.n_full):.2f}, stands for {w * subset.n_full:.1f} "
                 f"docs (weight {w:.3f})") for w in subset.design_weights]
    if isinstance(subset, DifficultySubset):
        return [("stratum share", f"{w * subset.n_full:.1f} docs (weight {w:.3f})") for w in subset.design_weights]
    return [("cell", f"{c} docs (weight {w:.3f})") for c, w in zip(subset.cell_sizes, subset.weights, strict=True)]


def subset_summary(subset: LiteSubset) -> str:
    """One line: how many docs of the task, how they were picked, and the most docs one pick stands for."""
    n = subset.n_full
    head = f"{len(subset)} of {n} docs ({len(subset) / n:.1%})"
    why = f" · estimator {subset.meta['estimator_reason']}" if isinstance(subset, DifficultySubset) and \
        subset.meta.get("estimator_reason") else ""
    if isinstance(subset, DifficultySubset) and subset.meta.get("method") == "anchor_corrected":
        most = float(subset.design_weights.max()) * n
        return (f"{head} · anchor points of {len(subset.train_models)} earlier models' answers · one pick stands "
                f"for up to {most:.1f} docs of its cluster{why}")
    if isinstance(subset, DifficultySubset) and subset.meta.get("method") == "spread_cv":
        most = float(subset.design_weights.max()) * n
        return (f"{head} · a systematic sample spread over category and difficulty, each doc drawn in proportion to "
                f"how far {len(subset.train_models)} earlier models' neighbours miss it · one pick stands for up "
                f"to {most:.1f} docs{why}")
    if isinstance(subset, DifficultySubset):
        kind = "prediction-error" if subset.meta.get("method") == "residual_cv" else "difficulty"
        strata = sum(a > 0 for a in subset.meta.get("stratum_alloc", ()))
        most = float(subset.design_weights.max()) * n
        return (f"{head} · drawn within {strata} {kind} strata of {len(subset.train_models)} earlier models · "
                f"one pick stands for up to {most:.1f} docs of its stratum{why}")
    return f"{head} · coverage radius {subset.radius:.3f} · largest cell {int(subset.cell_sizes.max())} docs"
