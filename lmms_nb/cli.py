"""`lmms-nb` command line: eval, report, demo, tasks, models.

Example (shell):
    lmms-nb tasks
    lmms-nb eval --model majority --tasks synthbench_count,synthbench_mcq --limit 50 --output outputs
    lmms-nb demo
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _parse_model_args(text: str | None) -> dict[str, object]:
    """`k=v,k2=v2` (lmms-eval's --model_args syntax) -> dict, with ints/floats/bools converted."""
    out: dict[str, object] = {}
    if not text:
        return out
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise SystemExit(f"--model-args: expected key=value, got {part!r}")
        key, value = part.split("=", 1)
        out[key.strip()] = _convert(value.strip())
    return out


def _convert(value: str) -> object:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def _cmd_eval(args: argparse.Namespace) -> int:
    import polars as pl

    from lmms_nb.runner import evaluate

    tasks = [t for t in args.tasks.split(",") if t]
    run = evaluate(args.model, tasks, limit=args.limit, batch_size=args.batch_size, output_dir=args.output,
                   resume=not args.no_resume, retry_errors=args.retry_errors, seed=args.seed,
                   model_args=_parse_model_args(args.model_args))
    with pl.Config(tbl_rows=100, tbl_hide_dataframe_shape=True):
        print(run.scores)
    print(f"logs: {run.results_file}")
    n_docs = run.n_samples
    if n_docs and run.n_errors >= n_docs:
        print(f"error: every sample failed ({run.n_errors} of {n_docs}); first error: "
              f"{run.samples['error'].drop_nulls()[0]}", file=sys.stderr)
        return 1
    if run.n_errors:
        print(f"warning: {run.n_errors} of {n_docs} samples failed (see the 'error' field in the logs)",
              file=sys.stderr)
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    from lmms_nb.tasks import get_task, list_tasks

    for name in list_tasks():
        task = get_task(name)
        metrics = ", ".join(m.name for m in task.metrics)
        print(f"{name:28s} {metrics}")
    _print_catalogue()
    return 0


def _print_catalogue() -> None:
    """lmms-eval's installed catalogue: its groups and tags (with their tasks), then its tasks."""
    import warnings

    from lmms_nb.tasks.catalogue import get_catalogue

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names: lmms-eval's choice is kept, listed once
        table = get_catalogue().table()
    if table.is_empty():
        print("\n(lmms-eval's task catalogue is not installed: pip install 'lmms-nb[lmms-eval]')")
        return
    for kind in ("group", "tag", "task"):
        rows = table.filter(table["kind"] == kind)
        print(f"\nlmms-eval {kind}s ({rows.height}):")
        for row in rows.iter_rows(named=True):
            members = f" ({', '.join(row['members'])})" if row["members"] else ""
            print(f"  {row['name']}{members}")


def _cmd_models(args: argparse.Namespace) -> int:
    from lmms_nb.models import list_models

    print("\n".join(list_models()))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from lmms_nb.demo import run_demo

    return run_demo(output_dir=args.output, limit=args.limit)


def _parse_params(items: list[str]) -> dict[str, object]:
    """`--param k=v`: v is read as JSON when it parses (numbers, lists, null), else kept as a string."""
    import json

    params: dict[str, object] = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--param: expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            params[key.strip()] = json.loads(value)
        except ValueError:
            params[key.strip()] = value
    return params


def _cmd_report(args: argparse.Namespace) -> int:
    from lmms_nb.reporting import ReportError, report

    try:
        out = report(args.template, _parse_params(args.param), args.output, show_code=args.show_code)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.notebook:
            print(f"the executed notebook (with the failing cell) is at {e.notebook}", file=sys.stderr)
        return 1
    print(f"report written to {out.resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmms-nb", description="Evaluate large multimodal models.")
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("eval", help="evaluate a model on tasks")
    ev.add_argument("--model", required=True, help="a registered model name (see `lmms-nb models`)")
    ev.add_argument("--model-args", "--model_args", default=None, help="k=v,k2=v2 passed to the model")
    ev.add_argument("--tasks", required=True, help="comma-separated task names (see `lmms-nb tasks`)")
    ev.add_argument("--limit", type=int, default=None)
    ev.add_argument("--batch-size", "--batch_size", type=int, default=8)
    ev.add_argument("--output", "--output_path", default="outputs")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--no-resume", action="store_true", help="start a new run instead of resuming a matching one")
    ev.add_argument("--retry-errors", action=argparse.BooleanOptionalAction, default=True,
                    help="on a resumed run, ask again for the samples that failed (default: yes)")
    ev.set_defaults(func=_cmd_eval)

    sub.add_parser("tasks", help="list tasks").set_defaults(func=_cmd_tasks)
    sub.add_parser("models", help="list models").set_defaults(func=_cmd_models)

    rep = sub.add_parser("report", help="execute a report notebook with parameters and write standalone HTML")
    rep.add_argument("template", nargs="?", default="compare_models", help="a built-in name or a notebook path")
    rep.add_argument("--param", "-p", action="append", default=[], help="key=value (JSON values allowed); repeat")
    rep.add_argument("--output", "-o", default="reports/report.html")
    rep.add_argument("--show-code", action="store_true", help="keep code cells in the HTML")
    rep.set_defaults(func=_cmd_report)

    demo = sub.add_parser("demo", help="synthbench + zoo + baselines, end to end, offline")
    demo.add_argument("--output", default="outputs/demo")
    demo.add_argument("--limit", type=int, default=None, help="docs per task (default: all)")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (KeyError, ValueError, FileNotFoundError) as e:
        # User errors (unknown task, bad dataset, bad file) get one clear line, not a traceback.
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
