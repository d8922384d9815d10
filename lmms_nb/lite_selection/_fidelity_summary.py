"""The summary table of `lite_fidelity`: its draws (one row per budget, method and draw) condensed per method.

Example:
    >>> import polars as pl
    >>> nan = float("nan")
    >>> draws = pl.DataFrame({"k": [5, 5, 5], "budget": 0.1, "method": ["random", "random", "kcenter"],
    ...                       "draw": [0, 1, 0], "spearman": [0.5, 0.7, 0.9], "mae_points": [2.0, 3.0, 1.0],
    ...                       "spearman_lo": nan, "spearman_hi": nan, "mae_points_lo": 0.5, "mae_points_hi": 1.5})
    >>> out = summarise_draws(draws, {5: 0.3}, methods=["kcenter", "random"], drawn=["random"],
    ...                       stats=["spearman", "mae_points"], beats_share=0.8)
    >>> out.select("method", "n_draws", "beats_random_mae", "verdict").rows()
    [('kcenter', 1, 1.0, 'better than random'), ('random', 2, None, None)]
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

__all__ = ["summarise_draws"]


def summarise_draws(draws: pl.DataFrame, radius: dict[int, float], *, methods: Sequence[str], drawn: Sequence[str],
                    stats: Sequence[str], beats_share: float) -> pl.DataFrame:
    """One row per (k, method) of `draws`: each of `stats` (mean and sd over draws), 95% intervals, the shares of
    random and stratified draws beaten, a verdict against random (`beats_share`) and k-center's radius; rows in
    the order of `methods`. `drawn` names the methods whose draws are random subsets (the others have one)."""
    is_drawn = pl.col("method").is_in(list(drawn))
    agg = [pl.len().alias("n_draws")]
    for s in stats:
        agg += [pl.col(s).mean().alias(s), pl.col(s).std().alias(f"{s}_sd")]
    for s in ("spearman", "mae_points"):  # 95%: over draws, or the bootstrap over models of a single subset
        agg += [pl.when(is_drawn.first()).then(pl.col(s).quantile(0.025, "linear")).otherwise(pl.col(f"{s}_lo").first())
                .alias(f"{s}_lo"),
                pl.when(is_drawn.first()).then(pl.col(s).quantile(0.975, "linear")).otherwise(pl.col(f"{s}_hi").first())
                .alias(f"{s}_hi")]
    summary = draws.group_by("k", "budget", "method").agg(agg)
    beats = [_beats(draws, "random", "beats_random", drawn), _beats(draws, "stratified", "beats_stratified", drawn)]
    radii = pl.DataFrame({"k": list(radius), "radius": list(radius.values())})
    order = {m: i for i, m in enumerate(methods)}
    share = pl.col("beats_random_mae")
    out = summary
    for b in beats:
        out = out.join(b, on=["k", "method"], how="left")
    out = out.with_columns(
        pl.when(pl.col("method") == "random").then(None)
        .when(share >= beats_share).then(pl.lit("better than random"))
        .when(share <= 1 - beats_share).then(pl.lit("worse than random"))
        .when(share.is_not_null()).then(pl.lit("no better than random"))
        .alias("verdict"))
    return (out.join(radii, on="k", how="left")
            .with_columns(pl.when(pl.col("method").str.starts_with("kcenter")).then(pl.col("radius")).alias("radius"),
                          pl.col("method").replace_strict(order, return_dtype=pl.Int64).alias("_o"))
            .sort("k", "_o").drop("_o"))


def _beats(draws: pl.DataFrame, baseline: str, prefix: str, drawn: Sequence[str]) -> pl.DataFrame:
    """Per (k, method): the share of `baseline` draws each method strictly beats on Spearman and MAE.

    A single subset is compared with every baseline draw; a drawn method with the baseline draw of the same
    index (for random_irt: the same random subset).
    """
    base = draws.filter(pl.col("method") == baseline).select(
        "k", "draw", pl.col("spearman").fill_null(-2.0).alias("b_spearman"), pl.col("mae_points").alias("b_mae"))
    others = draws.filter(pl.col("method") != baseline).select(
        "k", "method", "draw", pl.col("spearman").fill_null(-2.0), "mae_points")
    single = others.filter(~pl.col("method").is_in(list(drawn))).drop("draw").join(base.drop("draw"), on="k")
    paired = others.filter(pl.col("method").is_in(list(drawn))).join(base, on=["k", "draw"]).drop("draw")
    both = pl.concat([single, paired])
    return both.group_by("k", "method").agg(
        (pl.col("spearman") > pl.col("b_spearman")).mean().alias(f"{prefix}_spearman"),
        (pl.col("mae_points") < pl.col("b_mae")).mean().alias(f"{prefix}_mae"))
