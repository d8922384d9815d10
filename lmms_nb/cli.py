"""`lmms-nb` command line: eval, report, demo, tasks, models.

`eval` takes lmms-eval 0.7.3's flags (see `lmms_nb._cli_eval`); `lmms-nb --model ...` is `lmms-nb eval --model ...`,
as `lmms-eval --model ...` is `lmms-eval eval --model ...`.

Example (shell):
    lmms-nb tasks
    lmms-nb eval --model majority --tasks synthbench_count,synthbench_mcq --limit 50 --output_path outputs
    lmms-nb --model llava_hf --model_args pretrained=DIR --tasks NAME --log_samples --output_path OUT
    lmms-nb demo
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, Sequence


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

    # parsed by lmms_nb._cli_flags (lmms-eval's flags and abbreviations); listed here for `lmms-nb --help`
    sub.add_parser("eval", help="evaluate a model on tasks with lmms-eval's flags (`lmms-nb eval --help`)",
                   add_help=False)

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
    """Run `lmms-nb` with `argv` (default: sys.argv[1:]) in the caller's process; returns the exit status.

    Example:
        >>> main(["eval", "--model", "no_such_model", "--tasks", "synthbench_count"])  # the error goes to stderr
        2
    """
    return _main(list(sys.argv[1:] if argv is None else argv), as_program=False)


def program_main() -> int:
    """What the `lmms-nb` program (`program()`: console script and `python -m lmms_nb`) runs: as `main()`, plus what
    only a process of its own may do to itself (the start-up's garbage collection, OpenMP's wait policy)."""
    return _main(sys.argv[1:], as_program=True)


def program() -> NoReturn:
    """The `lmms-nb` console script and `python -m lmms_nb`: `program_main()`, then the process ends with its
    exit handlers run and streams flushed but no interpreter teardown (_cli_exit)."""
    status = program_main()
    from lmms_nb._cli_exit import exit_program

    exit_program(status)


def _main(argv: list[str], *, as_program: bool) -> int:
    # lmms-eval's two spellings of an evaluation: `lmms-eval eval --model X ...` and `lmms-eval --model X ...`
    if argv and (argv[0] == "eval" or (argv[0].startswith("-") and argv[0] not in ("-h", "--help"))):
        from lmms_nb._cli_eval import run_eval

        if not as_program:
            return run_eval(argv[1:] if argv[0] == "eval" else argv)
        from lmms_nb._cli_gc import end_pause, pause_until_model_loaded
        from lmms_nb._cli_import_cache import install

        # the start-up's objects live until exit: no collector passes over them (_cli_gc)
        pause_until_model_loaded()
        install()  # transformers' map of its models read from the cache dir, not from their sources (_cli_import_cache)
        # OpenMP workers sleep as soon as a parallel region ends instead of spinning (read once, when torch
        # loads its OpenMP runtime, which has not happened yet here): measured with torch's default threads by
        # benchmarks/vs_lmms_eval/omp_wait_policy.py, a 0.5B-shape prefill takes the same time, a decode loop
        # and a cold tiny-model eval about half the wall and CPU time on a shared 2-core machine
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            return run_eval(argv[1:] if argv[0] == "eval" else argv)
        finally:
            end_pause()  # stopped before its model loaded (a bad flag, task or model): collect as usual
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
