"""Run lmms-eval 0.7.3's own evaluator on catalogue tasks with a scripted model; print per-sample values as JSON.

    [LMMS_EVAL_INCLUDE=folder] [LMMS_EVAL_CLI_DEFAULTS=1] python tests/lmms_eval_reference.py ANSWERS_JSON POLICY \
        OUT_JSON TASK [TASK ...]

POLICY may name several policies, comma-separated ("oracle,constant"): one process (lmms-eval's import and
task index take most of a run's time) then evaluates each in turn, writing OUT_JSON with "{policy}" replaced.
A policy "oracle@qwen_vl" answers as "oracle" with lmms-eval's model name set to qwen_vl (the name its
`lmms_eval_specific_kwargs` / `model_specific_target_kwargs` blocks are chosen by); "{policy}" is then
"oracle-qwen_vl".

Run from the folder that holds the stand-in datasets (see tests/catalogue_standins.py): the tasks'
`dataset_path`s resolve there. The model answers doc `doc_id` of `task` with ``answers[task][policy][doc_id]``,
exactly what lmms-nb's scripted model answers, so the two tools' values can be compared sample by sample.

With LMMS_EVAL_CLI_DEFAULTS=1 the evaluator gets the `lmms-eval` command's defaults (`cli_args`): its
reasoning tags, which also strip the whitespace around each answer before scoring, and process_results
seeing docs without their media columns. `simple_evaluate` called bare does neither; lmms-nb does what the
command does.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    answers_file, policies, out_file, *tasks = sys.argv[1:]
    policies = policies.split(",")
    if len(policies) > 1 and "{policy}" not in out_file:
        sys.exit("with several policies, OUT_JSON must contain {policy}")
    answers = json.loads(open(answers_file).read())

    import lmms_eval.evaluator as lmms_eval_evaluator
    from lmms_eval.api.model import lmms

    # lmms-eval 0.7.3 turns every loglikelihood answer (loss, is_greedy) into its str() before scoring
    # (api/instance.py unwrap_generation_output), so its own multiple_choice tasks fail there with
    # "ValueError: too many values to unpack"; the reference undoes only that, so that its process_results
    # scores the pairs as it is written to
    unwrap = lmms_eval_evaluator.unwrap_generation_output

    def unwrap_keeping_loglikelihoods(output):
        if isinstance(output, tuple) and len(output) == 2 and isinstance(output[0], float):
            return output, None
        return unwrap(output)

    lmms_eval_evaluator.unwrap_generation_output = unwrap_keeping_loglikelihoods
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    asked: dict = {}

    class ScriptedLM(lmms):
        def __init__(self, policy):
            super().__init__()
            self.policy = policy.split("@")[0]

        def generate_until(self, requests):
            out = []
            for r in requests:
                answer = answers[r.args[4]][self.policy][r.args[3]]
                if isinstance(answer, list):  # a task with `repeats`: the k-th time a doc is asked, answer k
                    k = asked[r.args[4], r.args[3]] = asked.get((r.args[4], r.args[3]), -1) + 1
                    answer = answer[k]
                out.append(answer)
            return out

        def loglikelihood(self, requests):
            # multiple_choice: request `idx` is the choice; the scripted answer is each choice's loss
            out = []
            for r in requests:
                losses = answers[r.args[4]][self.policy][r.args[3]]
                out.append((float(losses[r.idx]), r.idx == losses.index(min(losses))))
            return out

        def generate_until_multi_round(self, requests):
            raise NotImplementedError

    import os

    include = os.environ.get("LMMS_EVAL_INCLUDE") or None
    cli_args = None
    if os.environ.get("LMMS_EVAL_CLI_DEFAULTS"):
        import argparse

        cli_args = argparse.Namespace(reasoning_tags='[["<think>", "</think>"], ["<analysis>", "</analysis>"]]',
                                      process_with_media=False, output_path=None, agentic_trace_mode="basic")
    task_manager = TaskManager(include_path=include)
    for policy in policies:
        asked.clear()
        task_manager.model_name = policy.split("@")[1] if "@" in policy else None  # read as each task is built
        result = simple_evaluate(model=ScriptedLM(policy), tasks=list(tasks), task_manager=task_manager,
                                 bootstrap_iters=0, log_samples=True, random_seed=0, numpy_random_seed=1234,
                                 torch_random_seed=1234, fewshot_random_seed=1234, cli_args=cli_args)
        write(result, out_file.replace("{policy}", policy.replace("@", "-")))


def write(result: dict, out_file: str) -> None:
    out = {"results": result["results"], "samples": {}}
    for task, samples in result["samples"].items():
        out["samples"][task] = [
            {"doc_id": s["doc_id"], "filter": s.get("filter", "none"),
             "filtered_resps": s.get("filtered_resps"), "input": (s.get("arguments") or [None])[0],
             **{k: v for k, v in s.items() if k not in ("doc", "arguments", "resps", "filtered_resps", "doc_id",
                                                         "doc_hash", "prompt_hash", "target_hash", "filter",
                                                         "target", "input", "metrics")}}
            for s in samples
        ]
    # the evaluator's own `resps` (what the filter gave before reasoning tags were stripped), per sample
    out["resps"] = {task: [{"doc_id": s["doc_id"], "filter": s.get("filter", "none"), "resps": s.get("resps")}
                           for s in samples] for task, samples in result["samples"].items()}
    with open(out_file, "w") as f:
        json.dump(out, f, default=str)


if __name__ == "__main__":
    main()
