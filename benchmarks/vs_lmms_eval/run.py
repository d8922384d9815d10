"""lmms-nb side by side with lmms-eval 0.7.3 on the same task YAMLs, data and model.

    python benchmarks/vs_lmms_eval/run.py [--n 100] [--family llava|qwen2_5_vl] [--model zoo|random]
        [--batch-size 8] [--lmms-eval-python PATH]

1. Installs `lmms-eval==0.7.3` (with `filelock<4` and `decord`, after the same torch pin as lmms-nb) into
   benchmarks/vs_lmms_eval/.venv, once.
2. Builds a local dataset (synthbench count and multiple-choice test rows as `save_to_disk` DatasetDicts) and
   a tiny LLaVA: the synthbench-trained zoo member "base" (default, trained once into the cache, so answers
   are right about half the time) or a random one (`--model random`).
3. Writes two tasks in lmms-eval's format into _work/tasks: `vs_count` (metric_list exact_match + anls, a
   regex filter, lmms_eval_specific_kwargs with a llava_hf block) and `vs_mcq` (multi_choice_regex filter,
   process_results, a `!function` aggregation).
4. Runs lmms-eval's command line (`--model llava_hf|qwen2_5_vl --model_args pretrained=<folder>,device_map=cpu
   --tasks vs_count,vs_mcq --include_path <tasks> --batch_size B --log_samples --output_path OUT --device cpu`)
   with lmms-eval at its batch size (1 for llava_hf, whose chat class takes no other; 4 for qwen2_5_vl), and
   the same line with only the program name changed with lmms-nb (at --batch-size), each in a fresh process
   (cold start: imports, model and data loading, generation, logs), then lmms-nb once more in this process
   with the model already loaded (in-process: `get_model(<lmms-eval name>)` + `evaluate`).
5. Prints the per-sample agreement (raw answer, filtered answer, every metric value), both scores, a key-and-type
   diff of a sample line and of the results JSON against lmms-eval's, the cold wall- and CPU-time medians and
   ratios, the import floor both tools pay (_timing.py), and where lmms-nb's CPU time goes above it, stage by
   stage (one more lmms-nb run with timers around its stages, _stages.py). Both tools run with one CPU thread
   (OMP_NUM_THREADS=1) so the ratio is not who got more cores. lmms-eval exits 0 even when the evaluation
   raised, so success is its results file existing.

Family qwen2_5_vl uses a seeded random tiny Qwen2.5-VL (`--model` applies to llava only: the zoo is LLaVA).
`--lmms-eval-python` takes an existing lmms-eval 0.7.3 interpreter instead of installing one. `--catalogue-task pope`
(the default) also runs one real catalogue task (lmms-eval's installed YAML) on stand-in data with both tools
(_catalogue.py). Modules: _setup.py (venv, data, model, task YAMLs), _compare.py (agreement, key-and-type
diffs), _timing.py (cold runs, floor), _stages.py (lmms-nb's stages).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import statistics
import sys
import time
from pathlib import Path

from _compare import compare, key_type_diff, lmms_eval_samples, shape  # noqa: F401 - _catalogue uses them
from _setup import LMMS_EVAL_PY, REPO, WORK, build_data, build_model, ensure_lmms_eval, write_tasks
from _stages import print_stage_times, stage_times
from _timing import cold_runs, floor_times, print_cold_times


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", LMMS_NB_CACHE=str(WORK / "cache"),
               HF_HOME=str(WORK / "hf_home"), PYTHONPATH=str(REPO))
    return env


def command(family: str, model: Path, tasks: Path, out: Path, batch_size: int) -> list[str]:
    """lmms-eval's command line (after the program name), the same for both tools."""
    name = "llava_hf" if family == "llava" else family
    return ["--model", name, "--model_args", f"pretrained={model},device_map=cpu", "--tasks", "vs_count,vs_mcq",
            "--include_path", str(tasks), "--batch_size", str(batch_size), "--output_path", str(out),
            "--log_samples", "--device", "cpu", "--verbosity", "WARNING"]


#: CPU seconds (user + system) of the last run_cli child: on a shared machine the wall time also counts waiting
#: for a core, the CPU time only the tool's own work
LAST_CPU_S: list[float] = [0.0]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cli(python: str, module: str, argv: list[str], out: Path, cwd: Path = WORK) -> tuple[float, Path]:
    shutil.rmtree(out, ignore_errors=True)
    cpu_before = _children_cpu_s()
    start = time.perf_counter()
    proc = subprocess.run([python, "-m", module, *argv], capture_output=True, text=True, env=_env(), cwd=str(cwd),
                          check=False)
    seconds = time.perf_counter() - start
    LAST_CPU_S[0] = _children_cpu_s() - cpu_before
    results = sorted(out.glob("*/*_results.json"))
    if not results:  # lmms-eval exits 0 even when the evaluation raised
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise SystemExit(f"{module} wrote no results file (exit code {proc.returncode}); its output ends:\n{tail}")
    return seconds, results[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="docs per task (default 100)")
    parser.add_argument("--family", choices=("llava", "qwen2_5_vl"), default="llava")
    parser.add_argument("--model", choices=("zoo", "random"), default="zoo", help="llava: trained zoo or random")
    parser.add_argument("--batch-size", type=int, default=8, help="lmms-nb batch size")
    parser.add_argument("--lmms-eval-batch-size", type=int, default=None,
                        help="lmms-eval's (default: 1 for llava_hf, 4 for qwen2_5_vl)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="cold runs of each tool, alternating; medians count (default 3)")
    parser.add_argument("--lmms-eval-python", default=None, help="an interpreter with lmms-eval 0.7.3 installed")
    parser.add_argument("--catalogue-task", default="pope",
                        help="an lmms-eval catalogue task run on stand-in data too (default pope; 'none' skips it)")
    args = parser.parse_args()
    lmms_eval_py = Path(args.lmms_eval_python) if args.lmms_eval_python else LMMS_EVAL_PY
    their_batch = args.lmms_eval_batch_size or (1 if args.family == "llava" else 4)
    name = "llava_hf" if args.family == "llava" else args.family

    os.environ.update({k: v for k, v in _env().items() if k != "PYTHONPATH"})
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(1)
    from lmms_nb.models import get_model
    from lmms_nb.runner import evaluate
    from lmms_nb.tasks.yaml_loader import load_tasks

    if not args.lmms_eval_python:
        ensure_lmms_eval()
    data = build_data(args.n)
    model_path = build_model(args.model, args.family)
    tasks_dir = write_tasks(data)
    print(f"family {args.family} ({model_path}); {args.n} docs per task; lmms-eval at batch {their_batch}, "
          f"lmms-nb at batch {args.batch_size}", flush=True)

    def out(name: str) -> Path:  # each family its own output folders: two families can run at once
        return WORK / f"{name}_{args.family}"

    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    # the Qwen fast paths' verdicts from an earlier lmms-nb run here (lmms_nb/models/_fast_path_verdicts.py): without
    # them the first cold run checks both forms (~0.2 CPU-s) and stores them for the next ones
    verdicts = sorted((WORK / "cache" / "fast_path_verdicts").glob("*.json"))
    floor = floor_times({"lmms-eval": str(lmms_eval_py), "lmms-nb": sys.executable}, _env(), WORK, args.repeat)

    def cold(python: str, module: str, argv: list[str], out: Path):
        def run() -> tuple[float, float, Path]:
            seconds, results = run_cli(python, module, argv, out)
            return seconds, LAST_CPU_S[0], results
        return run

    times, results = cold_runs({
        "lmms-eval": cold(str(lmms_eval_py), "lmms_eval",
                          command(args.family, model_path, tasks_dir, out("out_lmms_eval"), their_batch),
                          out("out_lmms_eval")),
        "lmms-nb": cold(sys.executable, "lmms_nb",
                        command(args.family, model_path, tasks_dir, out("out_lmms_nb_cold"), args.batch_size)
                        + ["--no-resume"], out("out_lmms_nb_cold"))}, args.repeat)
    results_file, ours_results = results["lmms-eval"], results["lmms-nb"]

    model = get_model(name, pretrained=str(model_path), device_map="cpu", device="cpu")
    tasks = load_tasks(tasks_dir, model_type=name)
    evaluate(model, tasks, output_dir=out("out_warmup"), limit=2, progress=False, resume=False)
    warm_runs = []
    for _ in range(max(1, args.repeat)):  # as many in-process runs as cold runs per tool; the median counts, as there
        start = time.perf_counter()
        run = evaluate(model, load_tasks(tasks_dir, model_type=name), output_dir=out("out_lmms_nb"),
                       batch_size=args.batch_size, progress=False, resume=False)
        warm_runs.append(time.perf_counter() - start)
    ours_warm_s = statistics.median(warm_runs)
    print(f"in-process runs (s): {', '.join(f'{s:.2f}' for s in warm_runs)}")

    their_payload = json.loads(results_file.read_text())
    our_payload = json.loads(ours_results.read_text())
    print(f"\nfolders: lmms-eval {results_file.parent.name}, lmms-nb {ours_results.parent.name}")
    print(f"\n{'task':10} {'metric,filter':22} {'lmms-eval':>10} {'lmms-nb':>10}")
    for row in run.scores.iter_rows(named=True):
        key = f"{row['metric']},{row['filter']}"
        theirs = their_payload["results"].get(row["task"], {}).get(key)
        print(f"{row['task']:10} {key:22} {theirs if isinstance(theirs, str) else f'{theirs:10.4f}':>10} "
              f"{row['value']:10.4f}")
    print("\nper-sample agreement (lmms-nb cold CLI run vs lmms-eval; the in-process run checked too)")
    for task in tasks:
        theirs = lmms_eval_samples(results_file, task.name, list(task.filters))
        [ours_file] = ours_results.parent.glob(f"*_samples_{task.name}.jsonl")
        cold = compare(task, ours_file, theirs)
        warm = compare(task, run.sample_files[task.name], theirs)
        print(f"  {task.name}: raw answer {cold['raw']:.1%} of {cold['docs']} docs; filtered answer "
              f"{cold['filtered']:.1%} and metric values {cold['metrics']:.1%} of {cold['pairs']} (doc, filter) "
              f"pairs; in-process run: raw {warm['raw']:.1%}, metric values {warm['metrics']:.1%}")
        for key, what in cold["disagreements"]:
            print(f"    differs at {key}: {what}")
    print("\nkey-and-type diff against lmms-eval (lmms-nb's own extra keys not listed)")
    for task in tasks:
        [theirs_file] = results_file.parent.glob(f"*_samples_{task.name}.jsonl")
        [ours_file] = ours_results.parent.glob(f"*_samples_{task.name}.jsonl")
        their_line = json.loads(theirs_file.read_text().splitlines()[0])
        our_line = json.loads(ours_file.read_text().splitlines()[0])
        diff = key_type_diff(our_line, their_line)
        order_ok = [k for k in our_line if k in their_line] == list(their_line)
        print(f"  sample line of {task.name}: {len(diff)} difference(s){': ' + '; '.join(diff) if diff else ''}; "
              f"lmms-eval's key order {'kept' if order_ok else 'NOT kept'}")
    diff = key_type_diff(our_payload, their_payload)
    print(f"  results JSON: {len(diff)} difference(s){': ' + '; '.join(diff[:12]) if diff else ''}")
    print_cold_times(times, floor, ours_warm_s, load_before)
    if args.family != "llava":  # LLaVA has no such fast path
        print(f"  Qwen fast-path verdict files stored before the cold runs: {len(verdicts)} "
              f"({', '.join(p.name.split('-')[0] for p in verdicts) or 'none: the first run checked and stored them'})")
    stages = stage_times(sys.executable, command(args.family, model_path, tasks_dir, out("out_lmms_nb_stages"),
                                                 args.batch_size) + ["--no-resume"], _env(), WORK)
    print_stage_times(stages, floor["floor"].median("lmms-nb", "cpu"))
    if args.catalogue_task != "none":
        from _catalogue import compare_catalogue_task

        compare_catalogue_task(sys.modules[__name__], args.catalogue_task, args.family, model_path, str(lmms_eval_py),
                               their_batch, args.batch_size)


if __name__ == "__main__":
    main()
