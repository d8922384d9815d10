"""lmms-eval 0.7.3's eval flags: spellings, abbreviations, refusals, did-you-mean, checks before any model loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lmms_nb._cli_flags import SUPPORTED, FlagError, parse_eval_argv, parse_kv_string


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lmms_nb", *args], capture_output=True, text=True, timeout=timeout,
                          env=os.environ.copy())


def test_every_flag_the_issue_lists_is_supported_with_lmms_eval_types():
    ns = parse_eval_argv([
        "--model", "llava_hf", "--model_args", "pretrained=x,device_map=cpu", "--tasks", "a,b", "--batch_size", "auto",
        "--limit", "0.5", "--output_path", "out", "--log_samples", "--include_path", "tasks", "--device", "cpu",
        "--gen_kwargs", "max_new_tokens=4,temperature=0", "--seed", "1,2,3", "--verbosity", "WARNING",
        "--predict_only", "--system_instruction", "Be brief.", "--apply_chat_template", "--fewshot_as_multiturn",
        "--num_fewshot", "2"])
    assert (ns.model, ns.tasks, ns.batch_size, ns.limit, ns.output_path) == ("llava_hf", "a,b", "auto", 0.5, "out")
    assert ns.log_samples and ns.predict_only and ns.apply_chat_template and ns.fewshot_as_multiturn
    assert ns.seed == [1, 2, 3, 1234]  # lmms-eval fills a missing fourth seed with its default
    assert (ns.include_path, ns.device, ns.num_fewshot, ns.verbosity) == ("tasks", "cpu", 2, "WARNING")
    assert set(SUPPORTED) >= {"--model", "--model_args", "--tasks", "--batch_size", "--limit", "--output_path",
                              "--log_samples", "--include_path", "--device", "--gen_kwargs", "--seed", "--verbosity",
                              "--predict_only", "--system_instruction", "--apply_chat_template",
                              "--fewshot_as_multiturn", "--num_fewshot"}


@pytest.mark.parametrize("argv, dest, value", [
    (["--out", "o"], "output_path", "o"),             # abbreviations resolve as lmms-eval's argparse resolves them
    (["--output=o"], "output_path", "o"),
    (["--model_a", "pretrained=p"], "model_args", "pretrained=p"),
    (["-b", "4"], "batch_size", "4"),
    (["-b4"], "batch_size", "4"),
    (["-x"], "predict_only", True),
    (["--pred"], "predict_only", True),
    (["--limit", "-1"], "limit", -1.0),
    (["--seed", "42"], "seed", [42, 42, 42, 42]),
    (["--seed", "0,None,8,52"], "seed", [0, None, 8, 52]),
    (["--model-args", "pretrained=p"], "model_args", "pretrained=p"),  # lmms-nb's own spellings, in full
    (["--batch-size", "2"], "batch_size", "2"),
])
def test_spellings_and_abbreviations(argv, dest, value):
    assert getattr(parse_eval_argv(argv), dest) == value


def test_lmms_eval_defaults():
    ns = parse_eval_argv([])
    assert (ns.model, ns.batch_size, ns.seed, ns.verbosity, ns.tasks, ns.limit) == (
        "hf", "1", [0, 1234, 1234, 1234], "INFO", None, None)


@pytest.mark.parametrize("argv, message", [
    (["--log"], "ambiguous option: --log could match --log_samples, --log_samples_suffix"),
    (["--modle", "x"], "unknown flag --modle. Did you mean --model"),
    (["--output_pth", "o"], "Did you mean --output_path"),
    (["--wandb_args", "project=x"], "--wandb_args: lmms-eval flag(s) that lmms-nb does not support"),
    (["--use_cache", "c.db", "--offset", "3"], "--offset, --use_cache: lmms-eval flag(s) that lmms-nb does not"),
    (["-c", "c.db"], "--use_cache"),
    (["--wandb_a", "x"], "--wandb_args"),  # an abbreviation of a refused flag is refused by its full name
    (["--wandb", "x"], "ambiguous option: --wandb could match --wandb_log_samples, --wandb_args"),
])
def test_unknown_ambiguous_and_unsupported_flags_are_named(argv, message):
    with pytest.raises(FlagError) as e:
        parse_eval_argv(argv)
    assert message in str(e.value)


def test_model_args_parse_as_lmms_eval_parses_them():
    assert parse_kv_string("pretrained=Qwen/Qwen2.5-VL-3B-Instruct,max_pixels=12845056,use_cache=False,t=0.5") == {
        "pretrained": "Qwen/Qwen2.5-VL-3B-Instruct", "max_pixels": 12845056, "use_cache": False, "t": 0.5}
    assert parse_kv_string('chat_template="{% a, b %}",x=1') == {"chat_template": '"{% a, b %}"', "x": 1}
    with pytest.raises(FlagError, match="expected key=value"):
        parse_kv_string("pretrained")


def test_cli_errors_are_one_line_and_come_before_any_model_loads(tmp_path):
    missing = str(tmp_path / "no-such-model")
    # an unknown model name: did you mean, exit 2
    r = _cli("--model", "llava_hff", "--tasks", "synthbench_count", "--output_path", str(tmp_path))
    assert r.returncode == 2 and "Did you mean llava_hf" in r.stderr and "Traceback" not in r.stderr
    # an unknown model arg: the accepted ones are listed (the model folder does not exist: nothing was loaded)
    r = _cli("--model", "qwen2_5_vl", "--model_args", f"pretrained={missing},max_pixel=100", "--tasks",
             "synthbench_count", "--output_path", str(tmp_path))
    assert r.returncode == 2 and "max_pixel (did you mean max_pixels" in r.stderr and "min_pixels" in r.stderr
    # an unknown task is reported although the model could never load: tasks are resolved first
    r = _cli("eval", "--model", "llava_hf", "--model_args", f"pretrained={missing}", "--tasks", "synthbench_cont",
             "--output_path", str(tmp_path))
    assert r.returncode == 2 and "unknown task 'synthbench_cont'" in r.stderr and "no-such-model" not in r.stderr
    # lmms-eval's own checks
    r = _cli("--model", "majority", "--tasks", "synthbench_count", "--log_samples")
    assert r.returncode == 2 and "Specify --output_path if providing --log_samples" in r.stderr
    r = _cli("--model", "majority", "--tasks", "synthbench_count", "--fewshot_as_multiturn", "--output_path", "o")
    assert r.returncode == 2 and "apply_chat_template must be set" in r.stderr
    r = _cli("--model", "majority", "--tasks", "synthbench_count", "--wandb_args", "project=x")
    assert r.returncode == 2 and "--wandb_args" in r.stderr and "--log_samples" in r.stderr  # names the supported
    assert not any(tmp_path.iterdir())


def test_limit_fraction_gen_kwargs_and_predict_only(tmp_path):
    import json

    r = _cli("--model", "majority", "--tasks", "synthbench_count,synthbench_yesno", "--limit", "0.05",
             "--gen_kwargs", "max_new_tokens=3", "--output_path", str(tmp_path), "--log_samples", "--predict_only")
    assert r.returncode == 0, r.stderr
    lines = {f.name.split("_samples_")[1]: f.read_text().splitlines() for f in tmp_path.rglob("*_samples_*.jsonl")}
    from lmms_nb.tasks import get_task

    for task, rows in lines.items():
        n = len(get_task(task.removesuffix(".jsonl")).dataset())
        assert len(rows) == -(-n * 5 // 100)  # ceil(5% of the task), as lmms-eval's get_sample_size
        assert all(json.loads(x)["bypass"] is None for x in rows)  # lmms-eval's predict-only metric
    (results,) = tmp_path.rglob("*_results.json")
    payload = json.loads(results.read_text())
    assert payload["results"]["synthbench_count"]["bypass,none"] == 999
    assert all(c["generation_kwargs"]["max_new_tokens"] == 3 for c in payload["configs"].values())


def test_num_fewshot_on_a_task_without_few_shot_examples_is_refused_before_any_model_loads():
    proc = _cli("eval", "--model", "qwen2_5_vl", "--model_args", "pretrained=/nonexistent", "--tasks",
                "synthbench_count", "--num_fewshot", "2", "--limit", "2")
    assert proc.returncode == 2
    assert "--num_fewshot 2: task 'synthbench_count' is one of lmms-nb's own tasks" in proc.stderr


def test_num_fewshot_applies_to_yaml_tasks_as_lmms_eval_sets_it(tmp_path):
    """lmms-eval's evaluator: --num_fewshot N on every task, except one whose YAML says 0; seed = 4th --seed."""
    import datasets

    from lmms_nb._cli_eval import _plan

    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"q": [f"{i}+{i}=" for i in range(6)],
                                                              "a": [str(2 * i) for i in range(6)]})}
                         ).save_to_disk(str(tmp_path / "data"))
    base = (f"dataset_path: {tmp_path / 'data'}\ndataset_kwargs:\n  load_from_disk: true\ntest_split: test\n"
            "output_type: generate_until\ndoc_to_text: q\ndoc_to_target: a\nfewshot_config:\n  sampler: first_n\n")
    (tmp_path / "t_any.yaml").write_text("task: t_any\n" + base)
    (tmp_path / "t_zero.yaml").write_text("task: t_zero\nnum_fewshot: 0\n" + base)
    ns = parse_eval_argv(["--model", "majority", "--tasks", "t_any,t_zero", "--include_path", str(tmp_path),
                          "--num_fewshot", "2", "--seed", "0,1,2,3"])
    tasks = {t.name: t for t in _plan(ns)["tasks"]}
    doc = tasks["t_any"].dataset()[5]
    assert tasks["t_any"].prompt(5, doc) == "0+0= 0\n\n1+1= 2\n\n5+5="  # first_n: the first two docs
    assert tasks["t_any"].config["num_fewshot"] == 2 and tasks["t_any"].config["fewshot_seed"] == 3
    assert tasks["t_zero"].prompt(5, doc) == "5+5=" and tasks["t_zero"].config["num_fewshot"] == 0
