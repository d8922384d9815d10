"""The main job, offline: build synthbench, train or load the zoo, evaluate the zoo and the baselines on every
synthbench task, print the score table and how much of the gap between `majority` and a perfect score the
best member closes on each family, and write the logs (and the report).

Example (shell): `lmms-nb demo` (or `bash scripts/demo.sh` from a fresh clone).

    >>> import polars as pl
    >>> scores = pl.DataFrame({"model": ["majority", "zoo-a", "zoo-b"], "task": ["synthbench_count"] * 3,
    ...                        "metric": ["exact_match"] * 3, "filter": ["none"] * 3, "value": [0.2, 0.6, 0.9]})
    >>> round(gap_closed_table(scores).row(0, named=True)["gap_closed"], 3)
    0.875
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl

from lmms_nb.tasks.synthbench import _FAMILY_SPECS, FAMILIES

__all__ = ["PRIMARY_METRICS", "gap_closed_table", "run_demo"]

#: the score each synthbench family is read by: its task's first metric (yesno also reports acc_plus)
PRIMARY_METRICS = {family: _FAMILY_SPECS[family]["metrics"]()[0].name for family in FAMILIES}


def gap_closed_table(scores: pl.DataFrame, baseline: str = "majority") -> pl.DataFrame:
    """Per synthbench family: `baseline`'s score, the best other model, its score and the share of the gap
    between `baseline` and a perfect score (1.0) it closes. `scores` has columns model, task, metric, value."""
    rows = []
    for family, metric in PRIMARY_METRICS.items():
        part = scores.filter((pl.col("task") == f"synthbench_{family}") & (pl.col("metric") == metric))
        base = part.filter(pl.col("model") == baseline)["value"]
        # a model whose every sample failed has a null (or NaN) score: it cannot be the best
        others = part.filter((pl.col("model") != baseline) & pl.col("value").is_not_null() & pl.col("value").is_not_nan()
                             ).sort("value", descending=True)
        if base.is_empty() or others.is_empty():
            continue
        best = others.row(0, named=True)
        gap = 1.0 - base[0]
        rows.append({"family": family, "metric": metric, baseline: base[0], "best_model": best["model"],
                     "best": best["value"], "gap_closed": (best["value"] - base[0]) / gap if gap > 0 else None})
    return pl.DataFrame(rows)


def _evaluate_one(model_name: str, output_dir: str, limit: int | None, batch_size: int) -> pl.DataFrame:
    """One model on every synthbench task (run in a worker process, one thread): its score rows."""
    import torch

    from lmms_nb.models import get_model
    from lmms_nb.models._zoo_train import _quiet_transformers
    from lmms_nb.runner import evaluate
    from lmms_nb.tasks.synthbench import SYNTHBENCH_TASKS

    torch.set_num_threads(1)
    with _quiet_transformers():  # one "Loading weights" bar per model would bury the bar that counts models
        model = get_model(model_name)
    run = evaluate(model, list(SYNTHBENCH_TASKS), limit=limit, batch_size=batch_size, output_dir=output_dir,
                   progress=False)
    return run.scores.with_columns(model=pl.lit(run.model))


def _evaluate_all(names: list[str], output_dir: Path, limit: int | None, batch_size: int, workers: int) -> list[Any]:
    """Every model in `names`, in `workers` processes (tiny models use one core poorly at two threads)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    args = (str(output_dir), limit, batch_size)
    if workers <= 1:
        return [_evaluate_one(name, *args) for name in tqdm(names, desc="evaluating")]
    context = multiprocessing.get_context("spawn")  # a forked child would inherit torch's thread pools mid-state
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_evaluate_one, name, *args) for name in names]
        for _ in tqdm(as_completed(futures), total=len(futures), desc=f"evaluating ({workers} processes)"):
            pass
        return [f.result() for f in futures]  # a worker's exception is raised here


def run_demo(output_dir: str | Path = "outputs/demo", *, limit: int | None = None, zoo: list[str] | None = None,
             batch_size: int = 16, report_path: str | Path | None = "reports/demo.html",
             workers: int | None = None) -> int:
    """Run the demo; returns a process exit code. Prints each stage's wall time."""
    from lmms_nb.models._zoo_build import available_cores
    from lmms_nb.models.zoo import ZOO, build_zoo
    from lmms_nb.tasks.synthbench import build_synthbench

    output_dir = Path(output_dir)
    workers = workers or available_cores()
    t0 = time.perf_counter()
    path = build_synthbench()
    print(f"[demo] synthbench ready at {path} ({time.perf_counter() - t0:.1f}s)")

    t1 = time.perf_counter()
    names = zoo or list(ZOO)
    build_zoo(names, workers=workers)
    print(f"[demo] zoo ready: {len(names)} members ({time.perf_counter() - t1:.1f}s)")

    t2 = time.perf_counter()
    models = [f"zoo-{n}" for n in names] + ["majority"]
    table = pl.concat(_evaluate_all(models, output_dir, limit, batch_size, workers), how="diagonal_relaxed")
    print(f"[demo] evaluated {len(models)} models ({time.perf_counter() - t2:.1f}s)")

    wide = (table.with_columns(col=pl.col("task").str.replace("synthbench_", "") + ":" + pl.col("metric"))
                .pivot(on="col", index="model", values="value")
                .sort("model"))
    with pl.Config(tbl_cols=-1, tbl_rows=-1, tbl_hide_dataframe_shape=True, float_precision=3, tbl_width_chars=200):
        print(wide)
        print("[demo] the best zoo member per family, and the share of the gap majority -> 1.0 it closes:")
        print(gap_closed_table(table))
    print(f"[demo] logs under {output_dir.resolve()}")
    if report_path is not None:
        from lmms_nb.reporting import report

        t3 = time.perf_counter()
        out = report("compare_models", {"logs": str(output_dir), "title": "lmms-nb demo: the synthbench zoo",
                                        "lite_budget": 0.1}, report_path)
        print(f"[demo] report ({time.perf_counter() - t3:.1f}s): {Path(out).resolve()}")
    print(f"[demo] total {time.perf_counter() - t0:.1f}s")
    return 0
