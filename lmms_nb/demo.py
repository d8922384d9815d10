"""The main job, offline: build synthbench, train or load the zoo, evaluate the zoo and the baselines on every
synthbench task, print the score table and write the logs (and later the report).

Example (shell): `lmms-nb demo` (or `bash scripts/demo.sh` from a fresh clone).
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl


def run_demo(output_dir: str | Path = "outputs/demo", *, limit: int | None = None, zoo: list[str] | None = None,
             batch_size: int = 16, report_path: str | Path | None = "reports/demo.html") -> int:
    """Run the demo; returns a process exit code. Prints each stage's wall time."""
    import torch

    from lmms_nb.models import get_model
    from lmms_nb.models.zoo import ZOO, build_zoo
    from lmms_nb.runner import evaluate
    from lmms_nb.tasks.synthbench import SYNTHBENCH_TASKS, build_synthbench

    torch.set_num_threads(max(1, torch.get_num_threads()))
    output_dir = Path(output_dir)
    t0 = time.perf_counter()
    path = build_synthbench()
    print(f"[demo] synthbench ready at {path} ({time.perf_counter() - t0:.1f}s)")

    t1 = time.perf_counter()
    names = zoo or list(ZOO)
    build_zoo(names)
    print(f"[demo] zoo ready: {', '.join(names)} ({time.perf_counter() - t1:.1f}s)")

    t2 = time.perf_counter()
    runs = []
    for model_name in [f"zoo-{n}" for n in names] + ["majority"]:
        model = get_model(model_name)
        runs.append(evaluate(model, list(SYNTHBENCH_TASKS), limit=limit, batch_size=batch_size,
                             output_dir=output_dir, progress=True))
    print(f"[demo] evaluated {len(runs)} models ({time.perf_counter() - t2:.1f}s)")

    table = pl.concat([r.scores.with_columns(model=pl.lit(r.model)) for r in runs])
    wide = (table.with_columns(col=pl.col("task").str.replace("synthbench_", "") + ":" + pl.col("metric"))
                .pivot(on="col", index="model", values="value")
                .sort("model"))
    with pl.Config(tbl_cols=-1, tbl_rows=-1, tbl_hide_dataframe_shape=True, float_precision=3, tbl_width_chars=200):
        print(wide)
    print(f"[demo] logs under {output_dir.resolve()}")
    if report_path is not None:
        from lmms_nb.reporting import report

        t3 = time.perf_counter()
        out = report("compare_models", {"logs": str(output_dir), "title": "lmms-nb demo: the synthbench zoo",
                                        "lite_budget": 0.1}, report_path)
        print(f"[demo] report ({time.perf_counter() - t3:.1f}s): {Path(out).resolve()}")
    print(f"[demo] total {time.perf_counter() - t0:.1f}s")
    return 0
