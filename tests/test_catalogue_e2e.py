"""The rest of issue 13's catalogue tasks end to end, against lmms-eval 0.7.3's own evaluator.

As in tests/test_catalogue.py: stand-in datasets with each task's real columns (tests/catalogue_standins_e2e.py)
are read through the tasks' own `dataset_path` (and, for gqa, its `process_docs` joining a second config),
answered by a model that gives the target and one that always gives the same answer, and every per-sample
value and aggregate lmms-nb writes must equal what lmms-eval's evaluator gives on the same data and answers
(tests/lmms_eval_reference.py, run in a subprocess).

mathvista_testmini (a group of three tasks) and mmvet are judged by a GPT model: lmms-eval's judge client,
which both tools use, is pointed (OPENAI_API_URL, OPENAI_API_KEY, API_TYPE, MODEL_VERSION) at a real
OpenAI-compatible HTTP server on 127.0.0.1 (tests/_servers.py) that replies deterministically; both tools must
send it the same prompts and get the same scores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import pytest

import lmms_nb
from _servers import FakeOpenAIServer
from catalogue_standins_e2e import STANDINS, SUBTASKS, judge_answer, write_standins
from test_catalogue import ScriptedModel, assert_run_equals_reference

TESTS = Path(__file__).parent
NAMES = list(STANDINS)
CASES = [(name, task) for name in NAMES for task in SUBTASKS.get(name, (name,))]
#: answers ("oracle" / "constant"), "@" the lmms-eval model name whose prompt / target blocks the tasks use
#: (qwen_vl: ai2d asks in its "qa" format and scores the option's text, docvqa and gqa end with " Answer:")
POLICIES = ("oracle", "constant", "oracle@qwen_vl")


@pytest.fixture(scope="module")
def judge():
    with FakeOpenAIServer(answer=judge_answer, require_key="sk-local-judge") as server:  # no key: a 401
        env = {"OPENAI_API_URL": server.url, "OPENAI_API_KEY": "sk-local-judge", "API_TYPE": "openai",
               "MODEL_VERSION": "gpt-4o-local-judge"}
        yield server, env


@pytest.fixture(scope="module")
def standins(tmp_path_factory, judge):
    """Stand-in datasets, lmms-eval's own results on them for both scripted models, and the judge prompts."""
    server, judge_env = judge
    root = tmp_path_factory.mktemp("catalogue_e2e_more")
    answers = write_standins(root, NAMES)
    env = {**os.environ, **judge_env, "HF_HOME": str(root / "hf"), "HF_DATASETS_CACHE": str(root / "hf_datasets"),
           "LMMS_EVAL_CLI_DEFAULTS": "1"}  # as the lmms-eval command runs (its reasoning tags strip answers)
    server.reset()
    # one process for both models: lmms-eval's import and task index are most of its time
    proc = subprocess.run([sys.executable, str(TESTS / "lmms_eval_reference.py"), str(root / "answers.json"),
                           ",".join(POLICIES), str(root / "reference_{policy}.json"), *NAMES], cwd=root, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reference = {p: json.loads((root / f"reference_{p.replace('@', '-')}.json").read_text()) for p in POLICIES}
    prompts = Counter(c.prompt for c in server.completions())
    return root, answers, reference, prompts


@pytest.fixture(scope="module")
def ours(standins, judge):
    root, answers, _, _ = standins
    server, judge_env = judge
    import datasets

    runs = {}
    old, old_cache = os.getcwd(), datasets.config.HF_DATASETS_CACHE
    os.chdir(root)  # the tasks' dataset_path (e.g. lmms-lab-encoder/ai2d) resolves here, as for lmms-eval
    datasets.config.HF_DATASETS_CACHE = root / "hf_datasets_ours"
    # MathVista's evaluator class builds its judge client when lmms-eval's installed module is first imported;
    # a fresh process (as lmms-eval runs) imports it with the environment set here
    sys.modules.pop("lmms_eval.tasks.mathvista.mathvista_evals", None)
    try:
        with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
            warnings.simplefilter("ignore")
            for key, value in judge_env.items():
                mp.setenv(key, value)
            server.reset()
            for policy in POLICIES:
                answer_policy, _, model_type = policy.partition("@")
                model = ScriptedModel(answers, answer_policy)
                for name in NAMES:
                    runs[policy, name] = lmms_nb.evaluate(model, [name], model_type=model_type or None,
                                                          output_dir=root / "ours", progress=False, resume=False)
            prompts = Counter(c.prompt for c in server.completions())
    finally:
        os.chdir(old)
        datasets.config.HF_DATASETS_CACHE = old_cache
        sys.modules.pop("lmms_eval.tasks.mathvista.mathvista_evals", None)
    return runs, prompts


def _as_lmms_eval_logs_it(key, rec, theirs):
    """MathVista's aggregation flattens each per-sample dict in place (``result.update(result.pop("metadata"))``)
    and lmms-eval writes its samples after aggregating, so its log shows the flattened dict; lmms-nb logs the
    value process_results returned. Flatten ours the same way to compare the rest."""
    ours = rec[key]
    if isinstance(ours, dict) and isinstance(ours.get("metadata"), dict) and "metadata" not in theirs:
        return {**{k: v for k, v in ours.items() if k != "metadata"}, **ours["metadata"]}
    return ours


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(("name", "task"), CASES, ids=[t for _, t in CASES])
def test_catalogue_task_gives_lmms_evals_values_and_aggregates(standins, ours, name, task, policy):
    _, _, reference, _ = standins
    assert_run_equals_reference(ours[0][policy, name], reference[policy], task, value=_as_lmms_eval_logs_it)


def test_both_tools_send_the_judge_the_same_prompts(standins, ours):
    _, _, _, theirs = standins
    mine = ours[1]
    assert mine == theirs
    # MM-Vet asks one grade per doc; MathVista's three tasks ask an extraction wherever its quick paths (an
    # answer that is one of the choices, or parses as the integer / float asked for) do not apply: 3 of the
    # oracle's 5 answers (asked twice: as itself and as qwen_vl), all 5 of the constant's "The answer is (A)."
    assert sum(n for p, n in mine.items() if "Correctness\n--- |" in p) == 3 * 5
    assert sum(n for p, n in mine.items() if p.rstrip().endswith("Extracted answer:")) == 3 * (3 + 5 + 3)

@pytest.mark.parametrize("name", list(SUBTASKS))
def test_a_group_without_aggregate_metrics_runs_its_tasks_and_scores_no_group(standins, ours, name):
    # ok_vqa and mathvista_testmini list tasks but no aggregate_metric_list: lmms-eval gives the group no number
    _, _, reference, _ = standins
    for policy in POLICIES:
        run = ours[0][policy, name]
        assert sorted(run.tasks) == sorted(SUBTASKS[name])
        theirs = reference[policy]["results"][name]
        assert not [v for k, v in theirs.items() if k != "alias" and isinstance(v, (int, float))]
        assert run.scores.filter(run.scores["task"] == name).is_empty()


@pytest.mark.parametrize("task", ["ai2d", "docvqa_val", "gqa"])
def test_the_model_name_picks_the_tasks_prompt_blocks(standins, ours, task):
    # the "oracle@qwen_vl" cases above are not the default ones over again: these tasks have a qwen_vl block
    _, _, reference, _ = standins
    default = {s["doc_id"]: s["input"] for s in reference["oracle"]["samples"][task]}
    qwen = {s["doc_id"]: s["input"] for s in reference["oracle@qwen_vl"]["samples"][task]}
    assert all(qwen[i].endswith(" Answer:") and qwen[i] != default[i] for i in default)
    records = [json.loads(line) for line in ours[0]["oracle@qwen_vl", task].sample_files[task].read_text().splitlines()]
    assert {r["doc_id"]: r["input"] for r in records} == qwen
