"""`repeats` (k answers per doc) with lmms-eval 0.7.3's semantics, checked against lmms-eval's own evaluator.

A toy task asks each doc 4 times; its filters reduce the 4 answers as lmms-eval's filter registry does
(take_first, regex + majority_vote + take_first, take_first_k + majority_vote, take_first_k kept as a list for
process_results). The same scripted answers (the k-th time a doc is asked it gets answer k) go to lmms-eval's
evaluator (tests/lmms_eval_reference.py, in a subprocess) and to lmms-nb; every logged `resps`,
`filtered_resps`, per-sample value and aggregate must agree.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import lmms_nb
from lmms_nb.models.baselines import FunctionModel
from lmms_nb.tasks import get_task
from lmms_nb.tasks.yaml_loader import TaskYamlError

TESTS = Path(__file__).parent

REPEATS_YAML = """\
task: repeats_toy
dataset_path: csv
dataset_kwargs:
  data_files: {test: test.csv}
test_split: test
doc_to_text: "Q: {{q}}\\nA:"
doc_to_target: a
generation_kwargs: {max_new_tokens: 8, do_sample: true, temperature: 0.7}
repeats: 4
# the lmms-eval CLI's default; set here because the reference calls simple_evaluate without the CLI
reasoning_tags: [["<think>", "</think>"]]
filter_list:
  - name: score-first
    filter:
      - function: take_first
  - name: maj@4
    filter:
      - function: regex
        regex_pattern: "answer is (\\\\d+)"
      - function: majority_vote
      - function: take_first
  - name: maj@2
    filter:
      - function: take_first_k
        k: 2
      - function: majority_vote
      - function: take_first
  - name: cov@3
    filter:
      - function: take_first_k
        k: 3
process_results: !function utils.process_results
metric_list:
  - {metric: exact_match, aggregation: mean, higher_is_better: true}
  - {metric: coverage, aggregation: mean, higher_is_better: true}
  - {metric: n_answers, aggregation: mean, higher_is_better: true}
"""

UTILS_PY = '''\
import re


def process_results(doc, results):
    found = [(re.findall(r"(\\d+)", r) or [r])[-1] for r in results]
    hits = [f == str(doc["a"]) for f in found]
    return {"exact_match": float(hits[0]), "coverage": float(any(hits)), "n_answers": len(results)}
'''

# the k-th time doc i is asked, the model answers ANSWERS[i][k]
ANSWERS = [
    ["<think>2+2</think> The answer is 4", "The answer is 5", "The answer is 4", "The answer is 4"],
    ["The answer is 7", "<think>hm</think>The answer is 6", "The answer is 6", "The answer is 9"],
    ["no idea", "The answer is 3", "The answer is 3", "The answer is 8"],
    ["The answer is 1", "The answer is 1", "The answer is 1", "The answer is 1"],
]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("repeats")
    folder = root / "tasks"
    folder.mkdir()
    (folder / "test.csv").write_text("q,a\n2+2,4\n3+3,6\n1+2,3\n0+1,1\n")
    (folder / "repeats.yaml").write_text(REPEATS_YAML)
    (folder / "utils.py").write_text(UTILS_PY)
    (root / "answers.json").write_text(json.dumps({"repeats_toy": {"scripted": ANSWERS}}))
    env = {**os.environ, "HF_HOME": str(root / "hf"), "HF_DATASETS_CACHE": str(root / "hf_datasets"),
           "LMMS_EVAL_INCLUDE": str(folder)}
    out = root / "reference.json"
    proc = subprocess.run([sys.executable, str(TESTS / "lmms_eval_reference.py"), str(root / "answers.json"),
                           "scripted", str(out), "repeats_toy"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder, json.loads(out.read_text())


def scripted_model() -> FunctionModel:
    asked: dict[int, int] = {}

    def answer(req):
        k = asked[req.doc_id] = asked.get(req.doc_id, -1) + 1
        return ANSWERS[req.doc_id][k]

    model = FunctionModel(answer, name="scripted")
    model.asked = asked  # type: ignore[attr-defined]
    return model


def tracker_shape(value):
    """What lmms-eval's tracker writes for a per-request list (sanitize_list, then a one-item list unwrapped)."""
    from lmms_eval.utils import sanitize_list

    value = sanitize_list(value)
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def test_repeats_ask_k_times_and_filters_reduce_as_lmms_eval(toy, tmp_path):
    folder, reference = toy
    model = scripted_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = lmms_nb.evaluate(model, folder / "repeats.yaml", output_dir=tmp_path, progress=False)
    assert model.asked == {0: 3, 1: 3, 2: 3, 3: 3}  # each doc asked 4 times
    records = [json.loads(line) for line in run.sample_files["repeats_toy"].read_text().splitlines()]
    ours = {(r["doc_id"], r["filter"]): r for r in records}
    # lmms-eval's samples carry no filter name: they come filter by filter (filter_list order), doc by doc
    filters = ["score-first", "maj@4", "maj@2", "cov@3"]
    ref_samples = reference["samples"]["repeats_toy"]
    ref_resps = reference["resps"]["repeats_toy"]
    assert len(ref_samples) == len(ours) == 16
    for i, sample in enumerate(ref_samples):
        sample["filter"] = filters[i // 4]
        assert ref_resps[i]["doc_id"] == sample["doc_id"]
        rec = ours[sample["doc_id"], sample["filter"]]
        assert rec["error"] is None
        assert rec["input"] == sample["input"]
        assert rec["filtered_resps"] == tracker_shape(sample["filtered_resps"]), sample
        # the tracker drops `resps` when it equals filtered_resps
        theirs = tracker_shape(ref_resps[i]["resps"])
        assert rec.get("resps", rec["filtered_resps"]) == theirs, sample
        for metric in ("exact_match", "coverage", "n_answers"):
            assert rec[metric] == sample[metric], (sample, metric)
        assert rec["raw_responses"] == ANSWERS[sample["doc_id"]]
    # the filters did reduce differently: a list of 3 is kept for cov@3, one answer elsewhere
    assert ours[0, "cov@3"]["n_answers"] == 3 and ours[0, "maj@4"]["filtered_resps"] == "4"
    assert ours[0, "cov@3"]["filtered_resps"] == ["The answer is 4", "The answer is 5", "The answer is 4"]
    assert ours[0, "cov@3"]["resps"][0] == "<think>2+2</think> The answer is 4"
    assert ours[2, "score-first"]["exact_match"] == 0 and ours[2, "maj@4"]["exact_match"] == 1
    results = reference["results"]["repeats_toy"]
    numeric = {k: v for k, v in results.items() if "stderr" not in k and isinstance(v, (int, float))}
    assert len(numeric) == 12
    for key, value in numeric.items():
        metric, filt = key.split(",")
        got = run.scores.filter((run.scores["metric"] == metric) & (run.scores["filter"] == filt))["value"].to_list()
        assert got and math.isclose(got[0], value, rel_tol=1e-12), (key, got, value)


def test_a_filter_keeping_several_answers_needs_process_results(tmp_path):
    text = REPEATS_YAML.replace("process_results: !function utils.process_results\n", "").replace(
        "metric_list:\n  - {metric: exact_match, aggregation: mean, higher_is_better: true}\n"
        "  - {metric: coverage, aggregation: mean, higher_is_better: true}\n"
        "  - {metric: n_answers, aggregation: mean, higher_is_better: true}\n",
        "metric_list:\n  - {metric: exact_match, aggregation: mean, higher_is_better: true}\n")
    (tmp_path / "t.yaml").write_text(text)
    with pytest.raises(TaskYamlError, match=r"t.yaml:\d+: filter 'cov@3' keeps several of the 4 answers"):
        lmms_nb.load_task(tmp_path / "t.yaml")
    (tmp_path / "bad.yaml").write_text(text.replace("repeats: 4", "repeats: 0"))
    with pytest.raises(TaskYamlError, match=r"bad.yaml:\d+: repeats must be a whole number >= 1"):
        lmms_nb.load_task(tmp_path / "bad.yaml")


@pytest.mark.parametrize("name, k", [("gsm8k_cot_self_consistency", 64), ("mmmu_val_pass64", 64),
                                     ("aime24_nofigures_agg8", 8), ("openai_math_maj64_cov64", 64)])
def test_catalogue_tasks_with_repeats_load_with_their_filters(name, k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = get_task(name)
    assert task.repeats == k and task.config["repeats"] == k
    assert list(task.filters) == [f["name"] for f in task.config["filter_list"]]
