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
   diff of a sample line and of the results JSON against lmms-eval's, and the wall-time ratios. Both tools run
   with one CPU thread (OMP_NUM_THREADS=1) so the ratio is not who got more cores. lmms-eval exits 0 even when
   the evaluation raised, so success is its results file existing.

Family qwen2_5_vl uses a seeded random tiny Qwen2.5-VL (`--model` applies to llava only: the zoo is LLaVA).
`--lmms-eval-python` takes an existing lmms-eval 0.7.3 interpreter instead of installing one. `--catalogue-task pope`
(the default) also runs one real catalogue task (lmms-eval's installed YAML) on stand-in data with both tools
(benchmarks/vs_lmms_eval/_catalogue.py).
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


def build_model(kind: str, family: str = "llava") -> Path:
    if family == "qwen2_5_vl":
        from lmms_nb.models.tiny import build_tiny_qwen2_5_vl
        from lmms_nb.tasks.synthbench import load_synthbench

        folder = WORK / "models" / "tiny_qwen2_5_vl"
        if not (folder / "config.json").is_file():
            texts = [r["question"] + " " + r["answer"] for f in ("count", "mcq") for r in load_synthbench(f, n_test=50)]
            build_tiny_qwen2_5_vl(folder, vocab_texts=texts, seed=0)
        return folder
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
    import resource

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


def shape(value: Any) -> Any:
    """A JSON value's keys and types (numbers as one type), for the key-and-type diff."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


def key_type_diff(ours: dict, theirs: dict, where: str = "") -> list[str]:
    """Keys lmms-eval writes that lmms-nb lacks, and values whose type differs (lmms-nb's extra keys are fine)."""
    out = []
    for key, value in theirs.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in ours:
            out.append(f"missing {path}")
        elif isinstance(value, dict) and isinstance(ours[key], dict):
            out.extend(key_type_diff(ours[key], value, path))
        elif value is not None and ours[key] is not None and shape(ours[key]) != shape(value):
            out.append(f"type of {path}: lmms-nb {shape(ours[key])} vs lmms-eval {shape(value)}")
    return out


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


def _same(a: Any, b: Any) -> bool:
    """Metric values equal: numbers as floats (0 and 0.0), anything else (a process_results dict) as JSON."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def compare(task, ours_file: Path, theirs: dict[tuple[int, str], dict]) -> dict[str, Any]:
    """Agreement per doc of the raw answer (lmms-eval logs it only as the `raw` take_first filter's output) and
    per (doc, filter) of the filtered answer and every metric value."""
    ours = {}
    for line in ours_file.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        ours[(rec["doc_id"], rec["filter"])] = rec
    # the raw answer: the `raw` (take_first) filter's output, or the only filter's when the task has one (pope)
    filters = {f for _, f in theirs}
    raw_filter = filters.pop() if len(filters) == 1 else "raw"
    their_raw = {doc: str(_first(s["filtered_resps"])) for (doc, f), s in theirs.items() if f == raw_filter}
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
        metric_ok = all(a.get(m) is not None and _same(a[m], b.get(m)) for m in metrics)
        same_filtered += filtered_ok
        same_metrics += metric_ok
        if not (filtered_ok and metric_ok):
            disagreements.append((key, {"lmms-nb": [ours_filtered, [a.get(m) for m in metrics]],
                                        "lmms-eval": [theirs_filtered, [b.get(m) for m in metrics]]}))
    return {"docs": len(docs), "pairs": len(keys), "raw": same_raw / max(1, len(docs)),
            "filtered": same_filtered / max(1, len(keys)), "metrics": same_metrics / max(1, len(keys)),
            "disagreements": disagreements[:5]}


def main() -> None:
    global LMMS_EVAL_PY
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="docs per task (default 100)")
    parser.add_argument("--family", choices=("llava", "qwen2_5_vl"), default="llava")
    parser.add_argument("--model", choices=("zoo", "random"), default="zoo", help="llava: trained zoo or random")
    parser.add_argument("--batch-size", type=int, default=8, help="lmms-nb batch size")
    parser.add_argument("--lmms-eval-batch-size", type=int, default=None,
                        help="lmms-eval's (default: 1 for llava_hf, 4 for qwen2_5_vl)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="cold runs of each tool (alternating) and in-process runs; the fastest counts")
    parser.add_argument("--lmms-eval-python", default=None, help="an interpreter with lmms-eval 0.7.3 installed")
    parser.add_argument("--catalogue-task", default="pope",
                        help="an lmms-eval catalogue task run on stand-in data too (default pope; 'none' skips it)")
    args = parser.parse_args()
    if args.lmms_eval_python:
        LMMS_EVAL_PY = Path(args.lmms_eval_python)
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

    # warm the OS file cache of both environments (two separate installs of torch) before timing anything
    floor_s = {}
    for tool, python in (("lmms-eval", str(LMMS_EVAL_PY)), ("lmms-nb", sys.executable)):
        timed([python, "-c", IMPORT_FLOOR])
        floor_s[tool] = timed([python, "-c", IMPORT_FLOOR])
    theirs_s = ours_cold_s = theirs_cpu = ours_cpu = float("inf")
    for _ in range(max(1, args.repeat)):
        out = WORK / "out_lmms_eval"
        seconds, results_file = run_cli(str(LMMS_EVAL_PY), "lmms_eval",
                                        command(args.family, model_path, tasks_dir, out, their_batch), out)
        theirs_s, theirs_cpu = min(theirs_s, seconds), min(theirs_cpu, LAST_CPU_S[0])
        out = WORK / "out_lmms_nb_cold"
        seconds, ours_results = run_cli(sys.executable, "lmms_nb",
                                        command(args.family, model_path, tasks_dir, out, args.batch_size)
                                        + ["--no-resume"], out)
        ours_cold_s, ours_cpu = min(ours_cold_s, seconds), min(ours_cpu, LAST_CPU_S[0])

    model = get_model(name, pretrained=str(model_path), device_map="cpu", device="cpu")
    tasks = load_tasks(tasks_dir, model_type=name)
    evaluate(model, tasks, output_dir=WORK / "out_warmup", limit=2, progress=False, resume=False)
    ours_warm_s = float("inf")
    for _ in range(max(1, args.repeat)):  # as many in-process runs as cold runs per tool; the fastest counts
        start = time.perf_counter()
        run = evaluate(model, load_tasks(tasks_dir, model_type=name), output_dir=WORK / "out_lmms_nb",
                       batch_size=args.batch_size, progress=False, resume=False)
        ours_warm_s = min(ours_warm_s, time.perf_counter() - start)

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
    print(f"\nwall time, one CPU thread each (fastest of {max(1, args.repeat)} run(s) per tool and way)")
    print(f"  lmms-eval, cold process:            {theirs_s:7.1f} s")
    print(f"  lmms-nb,   cold process:            {ours_cold_s:7.1f} s  {theirs_s / ours_cold_s:5.1f}x faster")
    print(f"  lmms-nb,   in-process (warm model): {ours_warm_s:7.1f} s  {theirs_s / ours_warm_s:5.1f}x faster")
    print(f"  CPU time (user + system) of the cold processes: lmms-eval {theirs_cpu:.1f} s, lmms-nb {ours_cpu:.1f} s  "
          f"{theirs_cpu / ours_cpu:5.1f}x less")
    theirs_own, ours_own = theirs_s - floor_s["lmms-eval"], ours_cold_s - floor_s["lmms-nb"]
    print(f"  import floor, the same for both (torch, datasets, transformers' image stack incl. torchvision): "
          f"{floor_s['lmms-eval']:.1f} s in lmms-eval's venv, {floor_s['lmms-nb']:.1f} s in lmms-nb's")
    print(f"  cold time above each venv's floor:  lmms-eval {theirs_own:.1f} s, lmms-nb {ours_own:.1f} s  "
          f"{theirs_own / ours_own:5.1f}x faster" if ours_own > 0 else "  (lmms-nb's cold run is within the noise "
          "of its import floor)")
    if args.catalogue_task != "none":
        sys.path.insert(0, str(HERE))
        from _catalogue import compare_catalogue_task

        compare_catalogue_task(sys.modules[__name__], args.catalogue_task, args.family, model_path, str(LMMS_EVAL_PY),
                               their_batch, args.batch_size)


if __name__ == "__main__":
    main()
