"""Setup of the vs-lmms-eval benchmark: lmms-eval 0.7.3's own venv, the data (synthbench rows as save_to_disk
DatasetDicts), the tiny model, and the two tasks written in lmms-eval's format (see run.py's docstring)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["HERE", "LMMS_EVAL_PY", "REPO", "WORK", "build_data", "build_model", "ensure_lmms_eval", "write_tasks"]

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
    files = {"utils.py": UTILS_PY, "_default_template_yaml": TEMPLATE_YAML,
             "vs_count.yaml": COUNT_YAML.format(data=json.dumps(str(data["count"]))),
             "vs_mcq.yaml": MCQ_YAML.format(data=json.dumps(str(data["mcq"])))}
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():  # only these files; the ones already right stay untouched (another run may read them)
        if path.name not in files and path.name != "__pycache__":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for name, text in files.items():
        if not (folder / name).is_file() or (folder / name).read_text() != text:
            (folder / name).write_text(text)
    return folder
