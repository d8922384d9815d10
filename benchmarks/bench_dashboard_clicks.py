"""Click-to-update times of `CompareDashboard` and `SampleBrowser` (kernel side), on demo-shaped logs and on 1M rows.

What a click costs in the kernel, median of `--repeats`:
- dashboard, deselect / reselect a model: `compare` + `summary` + figures updated in place + tables. Side by
  side with the baseline of building new `FigureWidget`s on every change (what the dashboard did before):
  the ratio, and the widget state the browser must receive for new figure models (each new plotly
  FigureWidget ships plotly.js, ~5 MB, and makes the browser build a new view: the seconds of stale plots);
- dashboard, click a bar: the browser opened on that model's wrong answers;
- browser: one keystroke of search-as-you-type, the table view, a page of cards.

Demo-shaped logs: `--logs PATH` (e.g. outputs/demo), else a synthetic table shaped like the demo (7 models x
5 tasks x 200 docs, categories). 1M rows: 4 models x 5 tasks x 50,000 docs (`bench_sample_browser.make_table`).

Run: python benchmarks/bench_dashboard_clicks.py [--logs outputs/demo] [--rows 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]  # this checkout first


def demo_shaped(seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    models = {"majority": None, "zoo-base": 0.55, "zoo-blind": 0.3, "zoo-large": 0.8, "zoo-no-yesno": 0.6,
              "zoo-short": 0.45, "zoo-tuned-vision": 0.65}
    for task in ("synthbench_chart", "synthbench_count", "synthbench_mcq", "synthbench_ocr", "synthbench_yesno"):
        for doc in range(200):
            target = "ABCD"[doc % 4] if task == "synthbench_mcq" else str(doc % 7)
            for m, skill in models.items():
                pred = ("B" if task == "synthbench_mcq" else "1") if skill is None else (
                    target if rng.random() < skill else "x")
                rows.append({"model": m, "task": task, "doc_id": doc, "input": f"question {doc}", "target": target,
                             "prediction": pred, "category": f"c{doc % 3}", "exact_match": float(pred == target)})
    return pl.DataFrame(rows)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(name: str, df: pl.DataFrame, repeats: int, n_resamples: int) -> None:
    from lmms_nb.widgets import CompareDashboard

    t0 = time.perf_counter()
    dash = CompareDashboard(df, n_resamples=n_resamples)
    build = time.perf_counter() - t0
    models = list(dash.index.models)
    state = {"flip": False}

    def toggle() -> None:  # deselect the first model, or select all again: one click each
        state["flip"] = not state["flip"]
        dash.model_select.value = tuple(models[1:] if state["flip"] else models)

    in_place = timed(toggle, repeats)

    def rebuild() -> None:  # the baseline: a new FigureWidget per figure on every change
        dash._figure_widgets.clear()
        toggle()

    baseline = timed(rebuild, repeats)
    fig_state_mb = sum(len(w.get_state().get("_esm", "")) for w in dash.figures.values()) / 1e6
    task = dash.index.tasks[0]
    click = timed(lambda: dash.show_samples(model=models[-1], task=task), repeats)
    browser = dash.browser
    keys = timed(lambda: setattr(browser.search_box, "value", browser.search_box.value + "q"
                                 if len(browser.search_box.value) < 3 else ""), repeats)
    browser.set_filter()

    def table() -> None:
        browser.view_buttons.value = "table" if browser.view_buttons.value == "cards" else "cards"

    view = timed(table, repeats)
    print(f"\n{name}: {df.height:,} rows, {len(models)} models, {len(dash.index.tasks)} tasks "
          f"(dashboard built in {build:.2f} s)")
    print(f"  deselect/reselect a model   in place {in_place * 1000:8.0f} ms   new FigureWidgets (baseline) "
          f"{baseline * 1000:8.0f} ms   ratio {baseline / in_place:5.2f}x")
    print(f"  state the browser receives per change: in place 0 new figure models; baseline {len(dash.figures)} "
          f"new FigureWidgets = {fig_state_mb:.1f} MB of plotly.js + their data")
    print(f"  click a bar -> samples      {click * 1000:8.0f} ms")
    print(f"  search keystroke            {keys * 1000:8.0f} ms")
    print(f"  cards <-> table view        {view * 1000:8.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", default=None, help="demo logs (default: a synthetic table shaped like the demo)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--resamples", type=int, default=200, help="bootstrap resamples of compare()")
    args = parser.parse_args()
    if args.logs:
        import lmms_nb

        demo, label = lmms_nb.load_logs(args.logs), f"demo logs ({args.logs})"
    else:
        demo, label = demo_shaped(), "demo-shaped synthetic logs"
    bench(label, demo, args.repeats, args.resamples)
    if args.rows:
        from bench_sample_browser import make_table

        bench(f"{args.rows:,} rows", make_table(args.rows), max(2, args.repeats // 2), args.resamples)


if __name__ == "__main__":
    main()
