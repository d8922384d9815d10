"""lmms-nb side by side with lmms-eval 0.7.3 on the same task YAMLs, data and model.

    python benchmarks/vs_lmms_eval/run.py [--n 100] [--model zoo|random] [--batch-size 8]

1. Installs `lmms-eval==0.7.3` (with `filelock<4` and `decord`, after the same torch pin as lmms-nb) into
   benchmarks/vs_lmms_eval/.venv, once.
2. Builds a local dataset (synthbench count and multiple-choice test rows as `save_to_disk` DatasetDicts) and
   a tiny LLaVA: the synthbench-trained zoo member "base" (default, trained once into the cache, so answers
   are right about half the time) or a random one (`--model random`).
3. Writes two tasks in lmms-eval's format into _work/tasks: `vs_count` (metric_list exact_match + anls, a
   regex filter, lmms_eval_specific_kwargs with a llava_hf block) and `vs_mcq` (multi_choice_regex filter,
   process_results, a `!function` aggregation).
4. Runs lmms-eval (`--model llava_hf --model_args pretrained=<folder>,device=cpu,device_map=cpu`) and lmms-nb
   (`get_model("hf", pretrained=<folder>)` + `load_tasks(folder, model_type="llava_hf")`), each in a fresh
   process (cold start: imports, model and data loading, generation, logs), then lmms-nb once more in this
   process with the model already loaded (in-process).
5. Prints the per-sample agreement (raw answer, filtered answer, every metric value), both scores and the
   wall-time ratios. Both tools run with one CPU thread (OMP_NUM_THREADS=1) so the ratio is not who got
   more cores. lmms-eval exits 0 even when the evaluation raised, so success is its results file existing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VENV = HERE / ".venv"
WORK = HERE / "_work"
LMMS_EVAL_PY = VENV / "bin" / "python"
PINS = (["torch==2.14.1", "torchvision==0.29.1"], ["lmms-eval==0.7.3", "filelock<4", "decord"])

UTILS_PY = '''\
"""Task functions for the vs-lmms-eval benchmark, in lmms-eval's format."""


def vs_doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def vs_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}{kwargs.get('post_prompt', '')}"


def vs_mcq_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    options = "\\n".join(f"{letter}. {doc[letter]}" for letter in "ABCD")
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}\\n{options}{kwargs.get('post_prompt', '')}"


def vs_mcq_process_results(doc, results):
    prediction = results[0].strip().strip("()")
    return {"mcq_acc": float(prediction == doc["answer"])}


def vs_percent(items):
    return 100.0 * sum(items) / len(items)
'''

TEMPLATE_YAML = """\
dataset_kwargs:
  load_from_disk: true
test_split: test
output_type: generate_until
doc_to_visual: !function utils.vs_doc_to_visual
generation_kwargs:
  max_new_tokens: 8
  temperature: 0
  do_sample: false
metadata:
  version: 1.0
"""

COUNT_YAML = """\
include: _default_template_yaml
task: vs_count
dataset_path: {data}
doc_to_text: !function utils.vs_doc_to_text
doc_to_target: answer
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: "\\nAnswer with a single word or number."
  llava_hf:
    pre_prompt: ""
    post_prompt: "\\nAnswer with a single word or number."
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: true
  - metric: anls
    aggregation: mean
    higher_is_better: true
filter_list:
  - name: raw
    filter:
      - function: take_first
  - name: number
    filter:
      - function: regex
        regex_pattern: "(\\\\d+)"
      - function: take_first
"""

MCQ_YAML = """\
include: _default_template_yaml
task: vs_mcq
dataset_path: {data}
doc_to_text: !function utils.vs_mcq_doc_to_text
doc_to_target: answer
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: "\\nAnswer with the option's letter from the given choices directly."
process_results: !function utils.vs_mcq_process_results
metric_list:
  - metric: mcq_acc
    aggregation: !function utils.vs_percent
    higher_is_better: true
filter_list:
  - name: mc
    filter:
      - function: multi_choice_regex
        regex_pattern: "^\\\\(?([A-D])\\\\)?\\\\.?$"
        ignore_case: true
      - function: take_first
  - name: raw
    filter:
      - function: take_first
"""

LMMS_NB_COLD = """\
import json, sys, time
start = time.perf_counter()
import torch
torch.set_num_threads(1)
from lmms_nb.models import get_model
from lmms_nb.runner import evaluate
from lmms_nb.tasks.yaml_loader import load_tasks
model = get_model("hf", pretrained=sys.argv[1])
tasks = load_tasks(sys.argv[2], model_type="llava_hf")
run = evaluate(model, tasks, output_dir=sys.argv[3], batch_size=int(sys.argv[4]), progress=False, resume=False)
print(json.dumps({"seconds": time.perf_counter() - start, "files": {k: str(v) for k, v in run.sample_files.items()},
                  "errors": run.n_errors}))
"""


#: what both tools import before doing any work: torch, datasets and transformers' image stack (which pulls in
#: torchvision and torch._dynamo); its cold time is a floor neither tool can go below
IMPORT_FLOOR = ("import torch, datasets\n"
                "from transformers import AutoModelForImageTextToText, AutoProcessor\n"
                "import transformers.image_processing_utils\n")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", LMMS_NB_CACHE=str(WORK / "cache"),
               HF_HOME=str(WORK / "hf_home"), PYTHONPATH=str(REPO))
    return env


def ensure_lmms_eval() -> None:
    """Create the separate venv and install lmms-eval into it (skipped when it already imports)."""
    if LMMS_EVAL_PY.exists():
        probe = subprocess.run([str(LMMS_EVAL_PY), "-c", "import lmms_eval, decord"], capture_output=True, check=False)
        if probe.returncode == 0:
            return
    print(f"installing lmms-eval 0.7.3 into {VENV} (several GB, once) ...", flush=True)
    if not LMMS_EVAL_PY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    for pins in PINS:  # torch first, pinned: anything else makes pip pull another multi-GB torch
        subprocess.run([str(LMMS_EVAL_PY), "-m", "pip", "install", "-q", *pins], check=True)


def build_data(n: int) -> dict[str, Path]:
    """synthbench count / mcq test rows as DatasetDict folders (mcq gets lmms-eval's `choices` column)."""
    import datasets

    from lmms_nb.tasks.synthbench import load_synthbench

    out = {}
    for family in ("count", "mcq"):
        folder = WORK / "data" / f"{family}-{n}"
        if not (folder / "dataset_dict.json").is_file():
            rows = load_synthbench(family, n_test=max(n, 2)).select(range(n))
            if family == "mcq":
                rows = rows.map(lambda d: {"choices": [d[letter] for letter in "ABCD"]})
            datasets.DatasetDict({"test": rows}).save_to_disk(str(folder))
        out[family] = folder
    return out


def build_model(kind: str) -> Path:
    if kind == "zoo":
        from lmms_nb.models.zoo import build_zoo

        return build_zoo(["base"], progress=False)["base"]
    from lmms_nb.models.tiny import build_tiny_llava
    from lmms_nb.tasks.synthbench import load_synthbench

    folder = WORK / "random-llava"
    if not (folder / "config.json").is_file():
        texts = [r["question"] + " " + r["answer"] for f in ("count", "mcq") for r in load_synthbench(f, n_test=50)]
        build_tiny_llava(folder, vocab_texts=texts)
    return folder


def write_tasks(data: dict[str, Path]) -> Path:
    folder = WORK / "tasks"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "utils.py").write_text(UTILS_PY)
    (folder / "_default_template_yaml").write_text(TEMPLATE_YAML)
    (folder / "vs_count.yaml").write_text(COUNT_YAML.format(data=json.dumps(str(data["count"]))))
    (folder / "vs_mcq.yaml").write_text(MCQ_YAML.format(data=json.dumps(str(data["mcq"]))))
    return folder


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=_env(), cwd=str(WORK))
    return time.perf_counter() - start


def run_lmms_eval(model: Path, tasks: Path, out: Path) -> tuple[float, Path]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(LMMS_EVAL_PY), "-m", "lmms_eval", "eval", "--model", "llava_hf",
           "--model_args", f"pretrained={model},device=cpu,device_map=cpu", "--tasks", "vs_count,vs_mcq",
           "--include_path", str(tasks), "--batch_size", "1", "--output_path", str(out), "--log_samples",
           "--verbosity", "WARNING"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=str(WORK), check=False)
    seconds = time.perf_counter() - start
    results = sorted(out.glob("*/*_results.json"))
    if not results:  # lmms-eval exits 0 even when the evaluation raised
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise SystemExit(f"lmms-eval wrote no results file (exit code {proc.returncode}); its output ends:\n{tail}")
    return seconds, results[-1]


def run_lmms_nb_cold(model: Path, tasks: Path, out: Path, batch_size: int) -> tuple[float, dict[str, Any]]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-c", LMMS_NB_COLD, str(model), str(tasks), str(out), str(batch_size)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=str(WORK), check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"lmms-nb failed (exit code {proc.returncode}):\n{proc.stderr[-4000:]}")
    return seconds, json.loads(proc.stdout.strip().splitlines()[-1])


def lmms_eval_samples(results_file: Path, task: str, filters: list[str]) -> dict[tuple[int, str], dict]:
    """(doc_id, filter) -> sample. lmms-eval writes one block of lines per filter, in filter_list order."""
    [path] = results_file.parent.glob(f"{results_file.name.removesuffix('_results.json')}_samples_{task}.jsonl")
    seen: dict[int, int] = {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        sample = json.loads(line)
        k = seen.get(sample["doc_id"], 0)
        seen[sample["doc_id"]] = k + 1
        out[(sample["doc_id"], filters[k])] = sample
    return out


def _first(value: Any) -> Any:
    while isinstance(value, list):
        value = value[0] if value else ""
    return value


def compare(task, ours_file: Path, theirs: dict[tuple[int, str], dict]) -> dict[str, Any]:
    """Agreement per doc of the raw answer (lmms-eval logs it only as the `raw` take_first filter's output) and
    per (doc, filter) of the filtered answer and every metric value."""
    ours = {}
    for line in ours_file.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        ours[(rec["doc_id"], rec["filter"])] = rec
    their_raw = {doc: str(_first(s["filtered_resps"])) for (doc, f), s in theirs.items() if f == "raw"}
    our_raw = {doc: rec.get("raw_response") or "" for (doc, _), rec in ours.items()}
    docs = sorted(set(their_raw) | set(our_raw))
    same_raw = sum(our_raw.get(d, "\0").strip() == their_raw.get(d, "\1").strip() for d in docs)
    metrics = [m.name for m in task.metrics]
    keys = sorted(set(ours) | set(theirs))
    same_filtered = same_metrics = 0
    disagreements = []
    for key in keys:
        a, b = ours.get(key), theirs.get(key)
        if a is None or b is None:
            disagreements.append((key, "missing in " + ("lmms-nb" if a is None else "lmms-eval")))
            continue
        ours_filtered, theirs_filtered = str(_first(a["filtered_resps"])), str(_first(b["filtered_resps"]))
        filtered_ok = ours_filtered.strip() == theirs_filtered.strip()
        metric_ok = all(a.get(m) is not None and b.get(m) is not None and float(a[m]) == float(b[m]) for m in metrics)
        same_filtered += filtered_ok
        same_metrics += metric_ok
        if not (filtered_ok and metric_ok):
            disagreements.append((key, {"lmms-nb": [ours_filtered, [a.get(m) for m in metrics]],
                                        "lmms-eval": [theirs_filtered, [b.get(m) for m in metrics]]}))
    return {"docs": len(docs), "pairs": len(keys), "raw": same_raw / max(1, len(docs)),
            "filtered": same_filtered / max(1, len(keys)), "metrics": same_metrics / max(1, len(keys)),
            "disagreements": disagreements[:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="docs per task (default 100)")
    parser.add_argument("--model", choices=("zoo", "random"), default="zoo")
    parser.add_argument("--batch-size", type=int, default=8, help="lmms-nb batch size (lmms-eval's llava_hf: 1)")
    parser.add_argument("--repeat", type=int, default=1, help="cold runs of each tool, alternating; the fastest counts")
    args = parser.parse_args()

    os.environ.update({k: v for k, v in _env().items() if k != "PYTHONPATH"})
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(1)
    from lmms_nb.models import get_model
    from lmms_nb.runner import evaluate
    from lmms_nb.tasks.yaml_loader import load_tasks

    ensure_lmms_eval()
    data = build_data(args.n)
    model_path = build_model(args.model)
    tasks_dir = write_tasks(data)
    print(f"model: {args.model} ({model_path}); {args.n} docs per task; tasks in {tasks_dir}", flush=True)

    # warm the OS file cache of both environments (two separate installs of torch) before timing anything
    floor_s = {}
    for name, python in (("lmms-eval", str(LMMS_EVAL_PY)), ("lmms-nb", sys.executable)):
        timed([python, "-c", IMPORT_FLOOR])
        floor_s[name] = timed([python, "-c", IMPORT_FLOOR])
    theirs_s = ours_cold_s = float("inf")
    for _ in range(max(1, args.repeat)):
        seconds, results_file = run_lmms_eval(model_path, tasks_dir, WORK / "out_lmms_eval")
        theirs_s = min(theirs_s, seconds)
        seconds, ours_cold = run_lmms_nb_cold(model_path, tasks_dir, WORK / "out_lmms_nb_cold", args.batch_size)
        ours_cold_s = min(ours_cold_s, seconds)

    model = get_model("hf", pretrained=model_path)
    tasks = load_tasks(tasks_dir, model_type="llava_hf")
    evaluate(model, tasks, output_dir=WORK / "out_warmup", limit=2, progress=False, resume=False)
    start = time.perf_counter()
    run = evaluate(model, load_tasks(tasks_dir, model_type="llava_hf"), output_dir=WORK / "out_lmms_nb",
                   batch_size=args.batch_size, progress=False, resume=False)
    ours_warm_s = time.perf_counter() - start

    their_results = json.loads(results_file.read_text())["results"]
    print(f"\n{'task':10} {'metric,filter':22} {'lmms-eval':>10} {'lmms-nb':>10}")
    for row in run.scores.iter_rows(named=True):
        key = f"{row['metric']},{row['filter']}"
        theirs = their_results.get(row["task"], {}).get(key)
        print(f"{row['task']:10} {key:22} {theirs if isinstance(theirs, str) else f'{theirs:10.4f}':>10} "
              f"{row['value']:10.4f}")
    print("\nper-sample agreement (lmms-nb cold run vs lmms-eval; same answers in the in-process run checked too)")
    for task in tasks:
        theirs = lmms_eval_samples(results_file, task.name, list(task.filters))
        cold = compare(task, Path(ours_cold["files"][task.name]), theirs)
        warm = compare(task, run.sample_files[task.name], theirs)
        print(f"  {task.name}: raw answer {cold['raw']:.1%} of {cold['docs']} docs; filtered answer "
              f"{cold['filtered']:.1%} and metric values {cold['metrics']:.1%} of {cold['pairs']} (doc, filter) "
              f"pairs; in-process run: raw {warm['raw']:.1%}, metric values {warm['metrics']:.1%}")
        for key, what in cold["disagreements"]:
            print(f"    differs at {key}: {what}")
    print(f"\nwall time, one CPU thread each (fastest of {max(1, args.repeat)} cold run(s) per tool)")
    print(f"  lmms-eval, cold process:            {theirs_s:7.1f} s")
    print(f"  lmms-nb,   cold process:            {ours_cold_s:7.1f} s  {theirs_s / ours_cold_s:5.1f}x faster")
    print(f"  lmms-nb,   in-process (warm model): {ours_warm_s:7.1f} s  {theirs_s / ours_warm_s:5.1f}x faster")
    theirs_own, ours_own = theirs_s - floor_s["lmms-eval"], ours_cold_s - floor_s["lmms-nb"]
    print(f"  import floor, the same for both (torch, datasets, transformers' image stack incl. torchvision): "
          f"{floor_s['lmms-eval']:.1f} s in lmms-eval's venv, {floor_s['lmms-nb']:.1f} s in lmms-nb's")
    print(f"  cold time above each venv's floor:  lmms-eval {theirs_own:.1f} s, lmms-nb {ours_own:.1f} s  "
          f"{theirs_own / ours_own:5.1f}x faster" if ours_own > 0 else "  (lmms-nb's cold run is within the noise "
          "of its import floor)")

if __name__ == "__main__":
    main()
