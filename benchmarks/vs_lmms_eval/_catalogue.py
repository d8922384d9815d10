"""The catalogue part of the vs-lmms-eval benchmark: one real lmms-eval catalogue task (its installed YAML and
utils.py) on stand-in data, run by both tools with the same command line (`--tasks pope`, no --include_path).

The stand-in dataset (tests/catalogue_standins.py: the task's real columns, generated rows) is written where the
task's `dataset_path` resolves as a local folder, and both tools run from there, so each reads it through its own
`load_dataset(dataset_path)`, the task's real loading path.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["compare_catalogue_task"]


def compare_catalogue_task(bench: ModuleType, task_name: str, family: str, model_path: Path, lmms_eval_py: str,
                           their_batch: int, our_batch: int) -> dict[str, Any]:
    """Run `task_name` cold with both tools; print agreement and key-and-type diffs; return the wall times."""
    sys.path.insert(0, str(bench.REPO / "tests"))
    from catalogue_standins import write_standins

    from lmms_nb.tasks import get_task

    root = bench.WORK / "standins"
    write_standins(root, [task_name])
    argv = bench.command(family, model_path, root, root / "out", 1)
    at = argv.index("--tasks")
    argv[at + 1] = task_name
    include = argv.index("--include_path")
    del argv[include:include + 2]
    batch = argv.index("--batch_size")
    out_theirs, out_ours = root / "out_lmms_eval", root / "out_lmms_nb"
    theirs_argv, ours_argv = list(argv), list(argv)
    theirs_argv[batch + 1], ours_argv[batch + 1] = str(their_batch), str(our_batch)
    theirs_argv[argv.index("--output_path") + 1], ours_argv[argv.index("--output_path") + 1] = (
        str(out_theirs), str(out_ours))
    their_s, their_results = bench.run_cli(lmms_eval_py, "lmms_eval", theirs_argv, out_theirs, cwd=root)
    their_cpu = bench.LAST_CPU_S[0]
    our_s, our_results = bench.run_cli(sys.executable, "lmms_nb", ours_argv + ["--no-resume"], out_ours, cwd=root)
    our_cpu = bench.LAST_CPU_S[0]
    task = get_task(task_name)
    theirs = bench.lmms_eval_samples(their_results, task_name, list(task.filters))
    [ours_file] = our_results.parent.glob(f"*_samples_{task_name}.jsonl")
    agreement = bench.compare(task, ours_file, theirs)
    print(f"\ncatalogue task {task_name} (lmms-eval's installed YAML, stand-in data under {root.name}/), "
          f"lmms-eval at batch {their_batch}, lmms-nb at batch {our_batch}")
    print(f"  per-sample agreement: raw answer {agreement['raw']:.1%} of {agreement['docs']} docs; filtered answer "
          f"{agreement['filtered']:.1%} and metric values {agreement['metrics']:.1%} of {agreement['pairs']} "
          "(doc, filter) pairs")
    for key, what in agreement["disagreements"]:
        print(f"    differs at {key}: {what}")
    their_payload, our_payload = json.loads(their_results.read_text()), json.loads(our_results.read_text())
    print(f"  scores: lmms-eval {_scores(their_payload, task_name)}; lmms-nb {_scores(our_payload, task_name)}")
    [their_lines] = their_results.parent.glob(f"*_samples_{task_name}.jsonl")
    diff = bench.key_type_diff(json.loads(ours_file.read_text().splitlines()[0]),
                               json.loads(their_lines.read_text().splitlines()[0]))
    print(f"  sample line: {len(diff)} difference(s){': ' + '; '.join(diff) if diff else ''}")
    diff = bench.key_type_diff(our_payload, their_payload)
    print(f"  results JSON: {len(diff)} difference(s){': ' + '; '.join(diff[:12]) if diff else ''}")
    print(f"  cold wall: lmms-eval {their_s:.1f} s, lmms-nb {our_s:.1f} s  {their_s / our_s:.1f}x faster; CPU time: "
          f"lmms-eval {their_cpu:.1f} s, lmms-nb {our_cpu:.1f} s  {their_cpu / our_cpu:.1f}x less")
    return {"lmms_eval_s": their_s, "lmms_nb_s": our_s, "at": time.time()}


def _scores(payload: dict, task: str) -> str:
    row = payload["results"].get(task, {})
    return ", ".join(f"{k} {v:.4f}" for k, v in row.items() if "stderr" not in k and isinstance(v, (int, float)))
