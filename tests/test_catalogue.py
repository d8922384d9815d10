"""lmms-eval's own task catalogue (installed by the `lmms-eval` extra) through lmms-nb, against lmms-eval itself.

* names: lmms-nb's index of the installed tasks folder has exactly the names (and, for duplicated names,
  the files) of lmms-eval 0.7.3's own `TaskManager`, including with an `include_path`;
* folders load every task they can and list the others; `strict=True` raises;
* end to end: catalogue tasks run on stand-in datasets (the tasks' real columns, a few generated rows and
  images, read through the tasks' own `dataset_path`; see tests/catalogue_standins.py) with a model that
  answers the target and one that always gives the same answer, and every per-sample value and aggregate
  equals what lmms-eval's own evaluator gives on the same data with the same answers (run here, in a
  subprocess: tests/lmms_eval_reference.py).
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
from lmms_nb.tasks._yaml_choice import decode_results
from lmms_nb.tasks.catalogue import TaskCatalogue, get_catalogue, lmms_eval_tasks_dir
from lmms_nb.tasks.yaml_loader import TaskYamlError, load_tasks

from catalogue_standins import GROUP_YAML, STANDINS, write_standins

TESTS = Path(__file__).parent
E2E_TASKS = list(STANDINS)


@pytest.fixture(scope="module")
def task_manager():
    from lmms_eval.tasks import TaskManager

    return TaskManager()


def test_the_extra_installs_lmms_eval_and_its_catalogue():
    import importlib.metadata as md

    assert md.version("lmms-eval") == "0.7.3"
    assert lmms_eval_tasks_dir() is not None and (lmms_eval_tasks_dir() / "mme" / "mme.yaml").is_file()


def test_index_has_lmms_evals_names_kinds_and_duplicate_choices(task_manager):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = TaskCatalogue()
    theirs = task_manager.task_index
    assert set(ours.index.entries) == set(theirs)
    kind = {"task": "task", "group": "group", "tag": "tag", "python_task": "task"}
    assert {n: e.kind for n, e in ours.index.entries.items()} == {n: kind[v["type"]] for n, v in theirs.items()}
    assert len(ours.index.duplicates) == 3  # lmms-eval 0.7.3 defines three task names twice
    for name, kept, _dropped in ours.index.duplicates:
        assert Path(kept) == Path(theirs[name]["yaml_path"])  # the same file wins
    for name, entry in ours.index.entries.items():
        if entry.kind == "tag":
            assert sorted(entry.tasks) == sorted(theirs[name]["task"])


def test_include_path_precedence_matches_lmms_eval(tmp_path):
    from lmms_eval.tasks import TaskManager

    (tmp_path / "mine.yaml").write_text("task: my_own_task\ndataset_path: x\ntest_split: test\n"
                                        "doc_to_text: q\ndoc_to_target: a\n")
    (tmp_path / "mme.yaml").write_text("task: mme\ndataset_path: x\ntest_split: test\ndoc_to_text: q\n"
                                       "doc_to_target: a\n")
    theirs = TaskManager(include_path=str(tmp_path)).task_index
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = TaskCatalogue(include_path=[tmp_path])
    assert Path(ours.index.entries["my_own_task"].path) == Path(theirs["my_own_task"]["yaml_path"])
    # lmms-eval 0.7.3 merges {**later, **earlier}: the installed catalogue's mme wins over the user's
    assert Path(ours.index.entries["mme"].path) == Path(theirs["mme"]["yaml_path"])
    assert any("'mme' is defined in" in str(w.message) for w in caught)
    assert ours.load(["my_own_task"])[0].name == "my_own_task"


def test_names_resolve_groups_expand_and_unknown_names_say_so():
    mme = get_task("mme")
    assert mme.name == "mme" and Path(mme.config["yaml_path"]).parent.name == "mme"
    tasks = get_catalogue().load(["mmbench_en"])  # a group: its subtasks, with its aggregate settings
    assert tasks and all("mmbench_en" in t.config.get("groups", {}) for t in tasks)
    with pytest.raises(KeyError, match="unknown task 'mmee'.*Did you mean mme"):
        get_task("mmee")


def test_a_folder_loads_what_it_can_and_lists_the_rest_with_file_line_and_reason():
    folder = lmms_eval_tasks_dir() / "aime"  # aime_2024_rebase.yaml names a function its utils.py lacks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tasks = load_tasks(folder)
    names = [t.name for t in tasks]
    assert "aime24_nofigures" in names and "aime24_nofigures_agg8" in names
    assert tasks.failures and all(f.path.endswith(".yaml") for f in tasks.failures)
    failure = next(f for f in tasks.failures if f.name == "aime_2024_rebase")
    assert "aime_2024_rebase.yaml:" in failure.reason and "has no 'doc_to_text_aime_2024'" in failure.reason
    with pytest.raises(TaskYamlError, match=r"aime.*\.yaml:\d+"):
        load_tasks(folder, strict=True)


def test_zero_shot_fewshot_config_and_doc_to_messages_tasks_load():
    # mmmu_val defines doc_to_messages beside doc_to_text; text backends get doc_to_text, as in lmms-eval
    mmmu = get_task("mmmu_val")
    assert mmmu.doc_to_messages is not None and mmmu.prompt_at is None


def test_tasks_needing_an_api_key_at_import_load_and_ask_for_it_when_run(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
    task = get_task("mmvet")  # its utils.py builds an OpenAI client at import
    assert task.config.get("deferred_imports")
    with pytest.raises(TaskYamlError, match="needs an API key.*OPENAI_API_KEY"):
        task.dataset()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")  # now the module imports; the data is the next step
    with pytest.raises(TaskYamlError, match=r"mmvet.yaml:\d+: task 'mmvet': load_dataset"):
        task.dataset()


# -- end to end against lmms-eval's own evaluator ------------------------------------------------------------

@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """Stand-in datasets, and lmms-eval's own results on them for both scripted models."""
    root = tmp_path_factory.mktemp("catalogue_e2e")
    answers = write_standins(root, E2E_TASKS)
    env = {**os.environ, "HF_HOME": str(root / "hf"), "HF_DATASETS_CACHE": str(root / "hf_datasets")}
    reference = {}
    for policy in ("oracle", "constant"):
        out = root / f"reference_{policy}.json"
        proc = subprocess.run([sys.executable, str(TESTS / "lmms_eval_reference.py"), str(root / "answers.json"),
                               policy, str(out), *E2E_TASKS], cwd=root, env=env, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        reference[policy] = json.loads(out.read_text())
    return root, answers, reference


@pytest.fixture(scope="module")
def ours(standins):
    root, answers, _ = standins
    import datasets

    runs = {}
    old, old_cache = os.getcwd(), datasets.config.HF_DATASETS_CACHE
    os.chdir(root)  # the tasks' dataset_path (e.g. lmms-lab-encoder/MME) resolves here, as for lmms-eval
    datasets.config.HF_DATASETS_CACHE = root / "hf_datasets_ours"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for policy in ("oracle", "constant"):
                model = ScriptedModel(answers, policy)
                for task in E2E_TASKS:
                    runs[policy, task] = lmms_nb.evaluate(model, [task], output_dir=root / "ours", progress=False,
                                                          resume=False)
    finally:
        os.chdir(old)
        datasets.config.HF_DATASETS_CACHE = old_cache
    return runs


class ScriptedModel(FunctionModel):
    """Answers doc `doc_id` of `task` with the scripted answer, as tests/lmms_eval_reference.py's model does; for
    multiple_choice the scripted answer is each choice's loss (requests of one doc come in choice order)."""

    def __init__(self, answers: dict, policy: str) -> None:
        super().__init__(lambda req: answers[req.task][policy][req.doc_id], name=f"scripted-{policy}")
        self.answers, self.policy = answers, policy

    def loglikelihood(self, requests):
        out, seen = [], {}
        for r in requests:
            k = seen[r.task, r.doc_id] = seen.get((r.task, r.doc_id), -1) + 1
            losses = self.answers[r.task][self.policy][r.doc_id]
            out.append((float(losses[k]), k == losses.index(min(losses))))
        return out


def _normal(value):
    """Values as JSON; lists of strings sorted: MMMU's parse_open_response returns list(set(...)), whose order
    follows Python's per-process string hashing, so lmms-eval itself orders them differently run to run."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_normal(v) for v in value]
        return sorted(items, key=json.dumps) if all(isinstance(v, (str, list)) for v in items) else items
    return value


def assert_run_equals_reference(run, ref: dict, task: str, *, answer=None, value=None) -> None:
    """Every sample line of our run `run` has lmms-eval's prompt, filtered answer and per-sample values (from the
    reference run `ref`), and every numeric aggregate equals its results. `answer(record)` and
    `value(key, record, theirs)` put ours in lmms-eval's form where a task logs differently."""
    records = sorted((json.loads(line) for line in run.sample_files[task].read_text().splitlines()),
                     key=lambda r: r["doc_id"])
    ref_samples = sorted(ref["samples"][task], key=lambda s: s["doc_id"])
    assert [r["doc_id"] for r in records] == [s["doc_id"] for s in ref_samples]
    for rec, sample in zip(records, ref_samples):
        assert rec["error"] is None
        assert rec["input"] == sample["input"]  # the same prompt
        # lmms-eval's tracker writes a one-item filtered_resps list as its item; the reference is the evaluator's
        theirs = sample["filtered_resps"]
        if answer is not None:
            assert answer(rec) == theirs
        else:
            assert rec["filtered_resps"] == (theirs[0] if isinstance(theirs, list) and len(theirs) == 1 else theirs)
        metrics = {k: v for k, v in sample.items()
                   if k not in ("doc_id", "filter", "filtered_resps", "input", "token_counts", "input_media")}
        assert metrics
        for key, expected in metrics.items():
            ours = value(key, rec, expected) if value is not None else rec[key]
            assert _normal(ours) == _normal(expected), (task, rec["doc_id"], key)
    numeric = {k: v for k, v in ref["results"][task].items()
               if "stderr" not in k and k != "alias" and isinstance(v, (int, float))}
    assert numeric
    for key, expected in numeric.items():
        metric, filt = key.split(",")
        got = run.scores.filter((run.scores["metric"] == metric) & (run.scores["filter"] == filt))["value"].to_list()
        assert got and math.isclose(got[0], expected, rel_tol=1e-9, abs_tol=1e-12), (task, key, got, expected)


def _mmmu_submission(key, rec, theirs):
    """MMMU's `submission` is the first of the (hash-ordered) parsed candidates (see _normal): the same keys, and
    values among our own parsed candidates."""
    if key != "submission":
        return rec[key]
    assert list(rec[key]) == list(theirs)
    assert all(v in json.dumps(rec["mmmu_acc"]["parsed_pred"]) for v in rec[key].values())
    return theirs


@pytest.mark.parametrize("policy", ["oracle", "constant"])
@pytest.mark.parametrize("task", E2E_TASKS)
def test_catalogue_task_gives_lmms_evals_values_and_aggregates(standins, ours, task, policy):
    _, _, reference = standins
    answer = value = None
    if task == "seedbench_ppl":  # multiple_choice: our answer text carries the (loss, is_greedy) pairs
        def answer(rec):
            return [list(x) for x in decode_results(rec["filtered_resps"])]
    if task == "mmmu_val":
        value = _mmmu_submission
    assert_run_equals_reference(ours[policy, task], reference[policy], task, answer=answer, value=value)


def test_a_group_from_an_include_path_gets_lmms_evals_group_score(standins):
    root, answers, _ = standins
    include = root / "my_tasks"
    include.mkdir(exist_ok=True)
    (include / "group.yaml").write_text(GROUP_YAML)
    env = {**os.environ, "HF_HOME": str(root / "hf"), "HF_DATASETS_CACHE": str(root / "hf_datasets"),
           "LMMS_EVAL_INCLUDE": str(include)}
    out = root / "reference_group.json"
    proc = subprocess.run([sys.executable, str(TESTS / "lmms_eval_reference.py"), str(root / "answers.json"),
                           "constant", str(out), "sqa_and_textvqa"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reference = json.loads(out.read_text())["results"]
    import datasets

    old, old_cache = os.getcwd(), datasets.config.HF_DATASETS_CACHE
    os.chdir(root)
    datasets.config.HF_DATASETS_CACHE = root / "hf_datasets_ours"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = lmms_nb.evaluate(ScriptedModel(answers, "constant"), ["sqa_and_textvqa"], include_path=[include],
                                   output_dir=root / "ours_group", progress=False, resume=False)
    finally:
        os.chdir(old)
        datasets.config.HF_DATASETS_CACHE = old_cache
    scores = {(r["task"], r["metric"]): r["value"] for r in run.scores.iter_rows(named=True)}
    for task in ("scienceqa_img", "textvqa_val", "sqa_and_textvqa"):
        assert scores[task, "exact_match"] == pytest.approx(reference[task]["exact_match,none"], rel=1e-12)


FEWSHOT_YAML = """\
task: fewshot_toy
dataset_path: csv
dataset_kwargs:
  data_files: {train: train.csv, test: test.csv}
training_split: train
test_split: test
num_fewshot: 2
fewshot_config: {sampler: default}
description: "Answer with a number.\\n\\n"
doc_to_text: "Q: {{q}}\\nA:"
doc_to_target: a
generation_kwargs: {max_new_tokens: 4}
metric_list:
  - {metric: exact_match, aggregation: mean, higher_is_better: true}
"""


def test_few_shot_prompts_are_lmms_evals_example_for_example(tmp_path):
    folder = tmp_path / "fewshot"
    folder.mkdir()
    # text answers: lmms-eval's sampler joins text + delimiter + target, so an int target fails there
    (folder / "train.csv").write_text("q,a\n" + "".join(f"{i}+1,{i + 1} units\n" for i in range(7)))
    (folder / "test.csv").write_text("q,a\n" + "".join(f"{i}*2,{2 * i} units\n" for i in range(6)))
    (folder / "fewshot.yaml").write_text(FEWSHOT_YAML)
    answers = {"fewshot_toy": {"constant": ["4 units"] * 6}}
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets"),
           "LMMS_EVAL_INCLUDE": str(folder)}
    out = tmp_path / "reference.json"
    proc = subprocess.run([sys.executable, str(TESTS / "lmms_eval_reference.py"), str(tmp_path / "answers.json"),
                           "constant", str(out), "fewshot_toy"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reference = json.loads(out.read_text())
    prompts = {s["doc_id"]: s["input"] for s in reference["samples"]["fewshot_toy"]}
    task = lmms_nb.load_task(folder / "fewshot.yaml")
    ds = task.dataset()
    ours = {i: task.prompt(i, ds[i]) for i in reversed(range(len(ds)))}  # any order: draws replay by doc id
    assert ours == prompts
    # the description is a Jinja template (its last newline dropped, as Jinja does), then 2 examples
    assert prompts[0].startswith("Answer with a number.\nQ: ") and prompts[0].count(" units\n\n") == 2
    run = lmms_nb.evaluate(FunctionModel(lambda req: "4 units", name="fours"), folder / "fewshot.yaml",
                           output_dir=tmp_path / "out", progress=False)
    assert run.score("fewshot_toy", "exact_match") == reference["results"]["fewshot_toy"]["exact_match,none"]


def test_results_json_configs_carry_the_yamls_metadata_as_lmms_eval_reads_it(ours):
    """0.7.3 writes each task's `metadata` exactly as its YAML loader reads it (pope's is a list)."""
    from lmms_eval.utils import load_yaml_config

    for task in ("pope", "mme"):
        run = ours["oracle", task]
        written = json.loads(run.results_file.read_text())["configs"][task]["metadata"]
        yaml_path = get_task(task).config["yaml_path"]
        assert written == load_yaml_config(yaml_path, mode="simple")["metadata"], task
