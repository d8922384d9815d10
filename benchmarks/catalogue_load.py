"""How much of lmms-eval's installed task catalogue loads through lmms-nb's public API, and why the rest does not.

Every YAML file of the catalogue is one of: a task (``task: name``), a group (``task: [list]``), a Python-class
task (``class:``) or a template (no ``task``, only read through ``include``). Each task and group file is
loaded through the public API (`lmms_nb.load_tasks(path)`: the same code path as a name,
`evaluate(model, ["mme"])`), and every name of the catalogue through `get_catalogue().load([name])`. The
script prints the counts by outcome, the failure reasons grouped, and every failure with its file:line,
key and reason.

    python benchmarks/catalogue_load.py                 # the installed lmms-eval (pip install 'lmms-nb[lmms-eval]')
    python benchmarks/catalogue_load.py --tasks-dir DIR # another copy of lmms-eval's tasks folder
    python benchmarks/catalogue_load.py --failures-only
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import time
import warnings
from pathlib import Path

# (outcome label, regex on the error message), first match wins
REASONS = [
    ("python-class task (class:)", r"Python-class tasks"),
    ("output_type not supported", r"output_type"),
    ("repeats that cannot be scored", r"repeats"),
    ("few-shot (num_fewshot > 0) not supported", r"num_fewshot"),
    ("video download flow (From_YouTube / builder_script)", r"From_YouTube|builder_script"),
    ("function not defined by its utils.py", r"has no '|defines no function"),
    ("utils import fails: missing module", r"ModuleNotFoundError|No module named"),
    ("utils import fails: other", r"importing .* failed"),
    ("unknown metric", r"unknown metric"),
    ("unsupported aggregation", r"aggregation"),
    ("unknown filter", r"unknown filter|filter "),
    ("unsupported key", r"unsupported (task|group) key"),
    ("unknown task name in a group", r"unknown task, tag or group"),
    ("invalid YAML", r"invalid YAML|include"),
    # e.g. an empty `-` item in metric_list (plm_videobench rcap): lmms-eval's TaskConfig fails on it too
    ("malformed metric_list entry", r"metric_list entry needs"),
]


def reason_of(message: str) -> str:
    for label, pattern in REASONS:
        if re.search(pattern, message):
            return label
    return "other"


# this checkout's lmms_nb, not an installed one (a script's sys.path starts at benchmarks/)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks-dir", help="lmms-eval's tasks folder (default: the installed lmms-eval's)")
    parser.add_argument("--failures-only", action="store_true", help="print only the failure list")
    parser.add_argument("--no-names", action="store_true", help="skip loading every name of the catalogue")
    args = parser.parse_args()

    from lmms_nb.tasks._yaml_config import TaskYamlError, read_task_yaml
    from lmms_nb.tasks.catalogue import TaskCatalogue, lmms_eval_tasks_dir
    from lmms_nb.tasks.yaml_loader import load_tasks

    root = Path(args.tasks_dir) if args.tasks_dir else lmms_eval_tasks_dir()
    if root is None or not root.is_dir():
        print("lmms-eval is not installed (pip install 'lmms-nb[lmms-eval]') and no --tasks-dir given")
        return 2
    import importlib.metadata as md

    try:
        version = md.version("lmms-eval")
    except md.PackageNotFoundError:
        version = "?"
    print(f"catalogue: {root} (lmms-eval {version})")
    warnings.simplefilter("ignore")

    files = sorted(p for p in root.rglob("*.yaml") if "__pycache__" not in p.parts)
    kinds: dict[str, list[Path]] = collections.defaultdict(list)
    unreadable: dict[Path, str] = {}
    for path in files:
        try:
            data = read_task_yaml(path).data
        except TaskYamlError as e:
            unreadable[path] = str(e)
            kinds["task or group (unreadable)"].append(path)
            continue
        if "class" in data and isinstance(data.get("task"), str):
            kinds["python-class task"].append(path)
        elif isinstance(data.get("task"), str):
            kinds["task"].append(path)
        elif isinstance(data.get("task"), list):
            kinds["group"].append(path)
        else:
            kinds["template (no task)"].append(path)

    start = time.perf_counter()
    outcomes: collections.Counter[str] = collections.Counter()
    failures: list[tuple[str, str]] = []
    n_loadable = 0
    for kind in ("task", "group", "python-class task", "task or group (unreadable)"):
        for path in kinds.get(kind, []):
            n_loadable += 1
            try:
                if path in unreadable:
                    raise TaskYamlError(unreadable[path])
                tasks = load_tasks(path)
                deferred = any(t.config.get("deferred_imports") for t in tasks)
                outcomes[f"loaded ({kind}{', utils import deferred to the run: needs a key or the hub' if deferred else ''})"] += 1
            except Exception as e:  # noqa: BLE001 - every failure is listed with its reason
                message = str(e) if isinstance(e, TaskYamlError) else f"{type(e).__name__}: {e}"
                outcomes[f"failed: {reason_of(message)}"] += 1
                failures.append((str(path.relative_to(root)), message.replace(str(root) + "/", "")))
    files_s = time.perf_counter() - start

    loaded = sum(v for k, v in outcomes.items() if k.startswith("loaded"))
    if not args.failures_only:
        print(f"\nYAML files: {len(files)}")
        for kind, paths in sorted(kinds.items()):
            print(f"  {kind:32s} {len(paths):5d}")
        print(f"\ntask and group YAMLs loaded through load_tasks(path): {loaded} / {n_loadable} "
              f"({100 * loaded / max(n_loadable, 1):.1f}%) in {files_s:.1f}s")
        for outcome, count in sorted(outcomes.items(), key=lambda kv: (not kv[0].startswith("loaded"), -kv[1])):
            print(f"  {outcome:58s} {count:5d}")

    if not args.no_names and not args.failures_only:
        start = time.perf_counter()
        catalogue = TaskCatalogue(include_path=[root] if args.tasks_dir else None, include_defaults=not args.tasks_dir)
        index_s = time.perf_counter() - start
        by_kind: collections.Counter[str] = collections.Counter()
        ok_kind: collections.Counter[str] = collections.Counter()
        for name in catalogue.names():
            kind = catalogue.index.entries[name].kind
            by_kind[kind] += 1
            try:
                catalogue.load([name])
                ok_kind[kind] += 1
            except Exception:  # noqa: BLE001
                pass
        print(f"\nnames in the catalogue (indexed in {index_s:.1f}s), loaded by name through TaskCatalogue.load:")
        for kind in ("task", "group", "tag"):
            print(f"  {kind:6s} {ok_kind[kind]:5d} / {by_kind[kind]:5d}")
        for name, kept, dropped in catalogue.index.duplicates:
            print(f"  duplicate name {name!r}: {Path(kept).relative_to(root)} used, "
                  f"{Path(dropped).relative_to(root)} not (as lmms-eval's index)")

    print(f"\nfailures ({len(failures)}):")
    for path, message in failures:
        print(f"  {path}: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
