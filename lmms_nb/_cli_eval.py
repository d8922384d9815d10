"""`lmms-nb eval` (and `lmms-nb --model ...`): lmms-eval 0.7.3's command line, run by lmms-nb.

The flags are lmms-eval's (`lmms_nb._cli_flags`); their checks are lmms-eval's too (--log_samples needs
--output_path, --fewshot_as_multiturn needs --apply_chat_template and --num_fewshot, --limit is -1, a count or a
fraction). The model name is checked, and every task resolved (and its dataset found), before any model loads.

Example (shell), lmms-eval's command with only the program name changed:
    lmms-nb --model llava_hf --model_args pretrained=DIR,device_map=cpu --tasks NAME --batch_size 1 \\
        --include_path DIR --log_samples --output_path OUT --device cpu
"""

from __future__ import annotations

import inspect
import logging
import math
import sys
from collections.abc import Sequence
from typing import Any

from lmms_nb._cli_flags import FlagError, parse_eval_argv, parse_kv_string

__all__ = ["run_eval"]

#: lmms-eval names whose class is a "chat" model: it builds its input from the task's messages (images, then
#: doc_to_text), so lmms-eval's --system_instruction (which only changes the text context) does not reach it
_CHAT_CLASSES = {"llava_hf", "qwen2_5_vl", "qwen3_vl", "openai", "openai_compatible", "internvl_hf"}
#: what --batch_size auto means here: lmms-nb's greedy answers do not depend on the batch size, so "auto" is a
#: throughput choice (lmms-eval probes memory; most of its VLM classes reject "auto")
_AUTO_BATCH = 8


def run_eval(argv: Sequence[str], prog: str = "lmms-nb eval") -> int:
    """Run one evaluation from lmms-eval-style argv; returns the exit status (see the module docstring)."""
    try:
        ns = parse_eval_argv(argv, prog=prog)
    except FlagError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logging.getLogger("lmms_nb").setLevel(ns.verbosity.upper() if isinstance(ns.verbosity, str) else "INFO")
    try:
        plan = _plan(ns)
    except (FlagError, KeyError, ValueError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2
    if plan is None:  # --tasks list
        return 0
    try:
        return _execute(ns, **plan)
    except (KeyError, ValueError, FileNotFoundError) as e:  # bad model args, files, datasets: one clear line
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2


def _plan(ns: Any) -> dict[str, Any] | None:
    """Every check that needs no model: flags, model name and args, tasks (with their datasets)."""
    if ns.predict_only:
        ns.log_samples = True
    if ns.log_samples and not ns.output_path:
        raise FlagError("Specify --output_path if providing --log_samples or --predict_only")
    if ns.fewshot_as_multiturn and not ns.apply_chat_template:
        raise FlagError("If fewshot_as_multiturn is set, apply_chat_template must be set to True.")
    if ns.fewshot_as_multiturn and not ns.num_fewshot:
        raise FlagError("If fewshot_as_multiturn is set, num_fewshot must be greater than 0.")
    if ns.limit is not None and ns.limit < 0 and ns.limit != -1:
        raise FlagError("--limit must be -1 or non-negative")
    if ns.tasks is None:
        raise FlagError("Need to specify task to evaluate (--tasks NAME[,NAME...]; `lmms-nb tasks` lists them)")
    if ns.tasks in ("list", "list_groups", "list_tags", "list_subtasks"):
        from lmms_nb.tasks import list_tasks

        print("\n".join(list_tasks()))
        return None

    from lmms_nb.models.registry import _check_model_args, model_factory

    factory = model_factory(ns.model)  # an unknown name fails here, with close matches
    model_args = parse_kv_string(ns.model_args)
    accepted = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    # lmms-eval hands --device (and --batch_size) to the model class beside --model_args
    if ns.device is not None and ("device" in accepted or takes_any):
        if model_args.get("device", ns.device) != ns.device:
            raise FlagError(f"--device {ns.device} and --model_args device={model_args['device']} disagree")
        model_args["device"] = ns.device
    _check_model_args(ns.model, factory, model_args)

    batch_size = _batch_size(ns.batch_size, ns.max_batch_size)
    from lmms_nb.tasks._run_overrides import run_overrides

    fewshot_seed = ns.seed[3]
    with run_overrides(num_fewshot=ns.num_fewshot, fewshot_seed=fewshot_seed):  # as lmms-eval's evaluator does
        tasks = _resolve_tasks(ns.tasks, ns.include_path, model_type=ns.model)
    gen_kwargs = parse_kv_string(ns.gen_kwargs) if ns.gen_kwargs else {}
    from lmms_nb.logs._lmms_eval_073 import DEFAULT_REASONING_TAGS

    for task in tasks:
        # lmms-eval's command line strips <think>/<analysis> blocks (--reasoning_tags default) unless the task says
        task.config.setdefault("reasoning_tags", DEFAULT_REASONING_TAGS)
        if task.config["reasoning_tags"] in ("none", False):
            task.config["reasoning_tags"] = None
        if gen_kwargs:  # lmms-eval: "these settings will be used over set parameters in yaml tasks"
            task.generation_kwargs = {**task.generation_kwargs, **gen_kwargs}
        if ns.system_instruction is not None and ns.model not in _CHAT_CLASSES:
            task.doc_to_text = _prefixed(task.doc_to_text, ns.system_instruction)
        if ns.num_fewshot:
            _check_fewshot(task, ns.num_fewshot, ns.model, fewshot_seed)
        if ns.predict_only:
            _bypass_metrics(task)
    for t in tasks:  # every dataset loads (and fails) now, before the model does
        t.dataset()
    return {"tasks": tasks, "model_args": model_args, "batch_size": batch_size, "gen_kwargs": gen_kwargs}


def _execute(ns: Any, *, tasks: list, model_args: dict[str, Any], batch_size: int, gen_kwargs: dict[str, Any]) -> int:
    import polars as pl

    from lmms_nb._cli_gc import resume_with_startup_frozen
    from lmms_nb.models import get_model
    from lmms_nb.runner import evaluate

    model = get_model(ns.model, **model_args)
    resume_with_startup_frozen(model)  # collection resumes for what the evaluation allocates (no-op unless paused)
    seed = ns.seed[0] if ns.seed[0] is not None else 0
    runs = [evaluate(model, tasks, limit=None if ns.limit in (None, -1) else ns.limit, batch_size=batch_size,
                     output_dir=ns.output_path or "outputs", resume=not getattr(ns, "no_resume", False),
                     retry_errors=getattr(ns, "retry_errors", True), seed=seed, model_type=ns.model,
                     run_config=_run_config(ns, model, gen_kwargs))]
    with pl.Config(tbl_rows=100, tbl_hide_dataframe_shape=True):
        print(pl.concat([r.scores for r in runs]))
    for run in runs:
        print(f"logs: {run.results_file}")
    n_docs = sum(r.n_samples for r in runs)
    n_errors = sum(r.n_errors for r in runs)
    if n_docs and n_errors >= n_docs:
        first = next(r.samples["error"].drop_nulls()[0] for r in runs if r.n_errors)
        print(f"error: every sample failed ({n_errors} of {n_docs}); first error: {first}", file=sys.stderr)
        return 1
    if n_errors:
        print(f"warning: {n_errors} of {n_docs} samples failed (see the 'error' field in the logs)", file=sys.stderr)
    return 0


def _run_config(ns: Any, model: Any, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
    """What lmms-eval 0.7.3 records about the run in its results JSON, from this command line."""
    import json

    resolved = {}
    for key, value in vars(ns).items():
        try:
            json.dumps(value)
            resolved[key] = value
        except (TypeError, ValueError):
            resolved[key] = str(value)
    seeds = list(ns.seed)
    return {
        "model_source": ns.model,
        "model_name": _lmms_eval_model_name(ns.model_args),
        "system_instruction": ns.system_instruction,
        "fewshot_as_multiturn": ns.fewshot_as_multiturn,
        "config": {
            "model": ns.model, "model_args": ns.model_args,
            "model_backend": f"{type(model).__module__}.{type(model).__name__} (lmms-nb)",
            "batch_size": ns.batch_size, "batch_sizes": [], "device": ns.device, "use_cache": None,
            "limit": ns.limit, "offset": 0, "bootstrap_iters": 100000, "process_docs_parallel": 4,
            "gen_kwargs": gen_kwargs or ns.gen_kwargs, "random_seed": seeds[0], "numpy_seed": seeds[1],
            "torch_seed": seeds[2], "fewshot_seed": seeds[3], "resolved_cli_args": resolved,
        },
    }


def _lmms_eval_model_name(model_args: str) -> str:
    """lmms-eval's GeneralConfigTracker._get_model_name: the value of the first of its keys in --model_args."""
    for prefix in ("peft=", "delta=", "pretrained=", "model=", "model_version=", "model_name=", "model_id=", "path=",
                   "engine="):
        if prefix in model_args:
            return model_args.split(prefix)[1].split(",")[0]
    return ""


def _batch_size(value: str, max_batch_size: int | None) -> int:
    """lmms-eval's --batch_size: N, "auto" or "auto:N" (capped by --max_batch_size)."""
    text = str(value).strip().lower()
    if text.startswith("auto"):
        size = _AUTO_BATCH
        return min(size, max_batch_size) if max_batch_size else size
    try:
        size = int(text)
    except ValueError:
        raise FlagError(f"--batch_size: expected an integer, 'auto' or 'auto:N', got {value!r}") from None
    if size < 1:
        raise FlagError(f"--batch_size must be >= 1, got {size}")
    return size


def _resolve_tasks(spec: str, include_path: str | None, *, model_type: str) -> list:
    """--tasks as lmms-eval reads it: a folder of YAMLs, or comma-separated names (tasks, groups, tags) and YAML
    paths; names resolve among lmms-nb's tasks, lmms-eval's installed catalogue and --include_path."""
    import os

    from lmms_nb.tasks.yaml_loader import load_tasks, resolve_tasks

    if os.path.isdir(spec):
        return load_tasks(spec, model_type=model_type)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    return resolve_tasks(names, model_type=model_type, include_path=include_path)


def _prefixed(doc_to_text: Any, prefix: str) -> Any:
    # lmms-eval's context for a simple model: system instruction, then the question (no separator)
    def wrapped(doc: dict) -> str:
        return prefix + doc_to_text(doc)

    return wrapped


def _check_fewshot(task: Any, n: int, model_type: str, seed: int | None) -> None:
    """--num_fewshot N on a built task: only YAML tasks have lmms-eval's few-shot prompts; lmms-eval's chat
    classes send a task with images doc_to_text alone (its `_auto_doc_to_messages`), so the examples go."""
    if "yaml_path" not in task.config:
        raise FlagError(f"--num_fewshot {n}: task {task.name!r} is one of lmms-nb's own tasks, which have no "
                        "few-shot examples; lmms-eval task YAMLs do")
    if task.prompt_at is not None and model_type in _CHAT_CLASSES and task.config.get("doc_to_visual") is not None:
        logging.getLogger("lmms_nb").warning(
            "%s: lmms-eval's chat class %s sends a task with images only its doc_to_text (no few-shot examples), "
            "and logs the few-shot context as its input; so does lmms-nb", task.name, model_type)
        task.config["fewshot_in_log_only"] = True
    if task.prompt_at is not None and seed is not None:
        task.config["fewshot_seed"] = seed  # in the run's fingerprint: another seed is another run


def _bypass_metrics(task: Any) -> None:
    """--predict_only: lmms-eval's `bypass` metric (per-sample null, aggregate 999) instead of the task's."""
    from lmms_nb.tasks.task import Metric

    task.metrics = [Metric("bypass", lambda prediction, target, doc: math.nan,
                           aggregate=lambda values, docs: (999.0, None))]
    task.process_results = lambda doc, prediction: {"bypass": None}
