"""Turn one lmms-eval task config (a merged `TaskYaml`) into an lmms-nb `Task`, with lmms-eval 0.7.3's semantics.

How lmms-eval builds a generate_until request, and so how this module does:

* prompt = `description` (a Jinja template, when set) + doc_to_text, where doc_to_text is a field name
  (``doc[field]``), a Jinja template, or a function called as ``fn(doc, lmms_eval_specific_kwargs)`` (just
  ``fn(doc)`` when the task has no such kwargs). pre_prompt / post_prompt reach the prompt only through such
  a function: lmms-eval never adds them to a field-name doc_to_text, and neither does lmms-nb.
* `lmms_eval_specific_kwargs`: the block named after the model type when there is one; otherwise the
  whole mapping updated with its `default` block (so the function sees ``pre_prompt`` at the top level).
* generation_kwargs get ``until: ["\\n\\n"]`` when they do not say, and ``{until, do_sample: False}`` when absent.
* the response is filtered by each `filter_list` pipeline (one log line per filter; a single one named
  "none" when there is no filter_list); then, as the lmms-eval CLI does by default (its --reasoning_tags),
  ``<think>...</think>`` and ``<analysis>...</analysis>`` blocks are removed and the answer stripped (a task's
  own `reasoning_tags` replaces the pairs; ``none`` turns it off); then it is scored by
  `process_results(doc, [prediction])` or by the metrics of `metric_list` against doc_to_target
  (``choices[target]`` with doc_to_choice; any of the targets when it is a list).
"""

from __future__ import annotations

import ast
import copy
import difflib
import functools
import inspect
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmms_nb.tasks._saved_splits import SavedSplit, open_saved_splits
from lmms_nb.tasks._yaml_choice import CHOICE_METRICS, DEFAULT_CHOICE_METRICS, choice_process_results
from lmms_nb.tasks._run_overrides import apply_num_fewshot
from lmms_nb.tasks._run_overrides import current as current_run_overrides
from lmms_nb.tasks._yaml_fewshot import FEWSHOT_SEED, SAMPLERS, FewShotSampler
from lmms_nb.tasks._yaml_config import TaskYaml
from lmms_nb.tasks._yaml_functions import DEFERRED_FILES, FunctionRef, TaskYamlError, fresh_modules, resolve_deferred
from lmms_nb.tasks._yaml_metrics import (
    AGGREGATIONS,
    BUILTIN_METRICS,
    DEFAULT_AGGREGATION,
    DEFAULT_HIGHER_IS_BETTER,
    custom_aggregation,
)
from lmms_nb.tasks.filters import (
    DEFAULT_REASONING_TAGS,
    FILTERS,
    StripThinkingFilter,
    build_filter_pipeline,
    keeps_several,
    strip_reasoning,
)
from lmms_nb.tasks.task import Metric, Task

Doc = dict[str, Any]

#: Keys of an lmms-eval task config that lmms-nb honours.
TASK_KEYS = frozenset({
    "task", "task_alias", "tag", "group", "group_alias",
    "dataset_path", "dataset_name", "dataset_kwargs", "training_split", "validation_split", "test_split",
    "fewshot_split", "process_docs",
    "doc_to_visual", "doc_to_text", "doc_to_target", "doc_to_choice", "process_results",
    "process_results_use_image", "description", "target_delimiter", "fewshot_delimiter",
    "metric_list", "output_type", "generation_kwargs", "filter_list", "metadata",
    "lmms_eval_specific_kwargs", "model_specific_generation_kwargs", "model_specific_target_kwargs",
    "cluster_key", "score_key", "reasoning_tags", "auto_strip_thinking",
    # lmms-eval 0.7.3 reads full_docs but its evaluator never passes the docs on: inert there, and here; its
    # evaluator never calls should_decontaminate / doc_to_decontamination_query either
    "full_docs", "should_decontaminate", "doc_to_decontamination_query",
    # accepted only with their inactive value (checked in `_check_inactive`)
    "num_fewshot", "fewshot_config", "repeats", "use_prompt", "doc_to_messages",
})
#: Keys of a group config (a YAML whose `task` is a list).
GROUP_KEYS = frozenset({"group", "group_alias", "task", "aggregate_metric_list", "metadata"})

# key -> (inactive values, why lmms-nb cannot honour another value)
_INACTIVE_ONLY: dict[str, tuple[tuple, str]] = {
    "use_prompt": ((None,), "promptsource templates are not supported"),
}
# dataset_kwargs lmms-eval consumes itself for downloads, not passed to `datasets.load_dataset`
_DOWNLOAD_ONLY_KWARGS = ("max_retries", "num_proc", "local_files_only", "force_download", "force_unzip",
                         "create_link")
# dataset_kwargs that only work by downloading from the hub or YouTube at load time
_DOWNLOAD_FLOWS = {
    "From_YouTube": "downloads the videos from YouTube with yt-dlp when the task loads",
    "builder_script": "runs a dataset builder script from a hub snapshot downloaded when the task loads",
}
_LOCAL_BUILDERS = frozenset({"csv", "json", "parquet", "text", "pandas", "arrow"})


def check_keys(cfg: TaskYaml, allowed: frozenset[str], kind: str) -> None:
    """Unknown keys are an error naming the key, its file and line, and the closest known key."""
    for key in cfg.data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TaskYamlError(f"{cfg.where(key)}: unsupported {kind} key {key!r}{hint}. "
                                f"Supported keys: {', '.join(sorted(allowed))}")


def _check_inactive(cfg: TaskYaml) -> None:
    for key, (inactive, why) in _INACTIVE_ONLY.items():
        if key in cfg.data and cfg.data[key] not in inactive:
            raise TaskYamlError(f"{cfg.where(key)}: {key}: {cfg.data[key]!r}: {why} by lmms-nb")
    output_type = cfg.data.get("output_type", "generate_until")
    if output_type not in ("generate_until", "multiple_choice"):
        why = _OUTPUT_TYPES_REFUSED.get(output_type, "it is not an lmms-eval 0.7.3 output type")
        raise TaskYamlError(f"{cfg.where('output_type')}: output_type {output_type!r} is not supported by lmms-nb: "
                            f"{why} (supported: generate_until, multiple_choice)")


_OUTPUT_TYPES_REFUSED = {
    "generate_visual_cot": "it needs a model that generates images (lmms-eval's generate_visual_cot backends)",
    "generate_until_multi_round": "multi-round dialogue with the model is not implemented",
    "generate_until_agentic": "agentic tool-use loops are not implemented",
    "loglikelihood": "a bare loglikelihood (perplexity) task is not implemented; multiple_choice is",
}


def _resolve(value: Any) -> Any:
    """A `!function` reference imported; any other value as is."""
    if isinstance(value, FunctionRef):
        return value.resolve()
    return value


#: template text -> the compiled template: a notebook builds the same tasks run after run, and a compiled Jinja
#: template holds no state of its own between renders (half a millisecond each to compile)
_COMPILED_TEMPLATES: dict[str, Any] = {}


@functools.lru_cache(maxsize=1)
def _jinja_environment() -> Any:
    import re

    import jinja2

    env = jinja2.Environment(loader=jinja2.BaseLoader(), undefined=jinja2.StrictUndefined)
    env.filters["regex_replace"] = lambda s, pattern, repl, count=0: re.sub(pattern, repl, s, count=count)
    return env


def _template(text: str, where: str) -> Callable[[Doc], str]:
    """A Jinja template rendered with the doc's fields, as lmms-eval (StrictUndefined, `regex_replace`)."""
    import jinja2

    compiled = _COMPILED_TEMPLATES.get(text)
    if compiled is None:
        try:
            compiled = _jinja_environment().from_string(text)
        except jinja2.TemplateError as e:
            raise TaskYamlError(f"{where}: invalid template {text!r}: {e}") from e
        if len(_COMPILED_TEMPLATES) < 4096:
            _COMPILED_TEMPLATES[text] = compiled

    def render(doc: Doc) -> str:
        try:
            return compiled.render(**doc)
        except jinja2.UndefinedError as e:
            raise KeyError(f"{where}: template {text!r}: {e.message} (doc fields: {', '.join(doc)})") from e

    return render


def _n_params(fn: Callable) -> int | None:
    try:
        return len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return None


def select_specific_kwargs(kwargs: Any, model_type: str | None, where: str) -> dict | None:
    """lmms-eval's choice of `lmms_eval_specific_kwargs` for a model type (see the module docstring).

    >>> blocks = {"default": {"pre_prompt": "", "post_prompt": "Answer:"}, "qwen": {"post_prompt": "Q:"}}
    >>> select_specific_kwargs(blocks, "qwen", "x.yaml")
    {'post_prompt': 'Q:'}
    >>> select_specific_kwargs(blocks, "llava_hf", "x.yaml")["post_prompt"]
    'Answer:'
    """
    if kwargs is None:
        return None
    if not isinstance(kwargs, dict):
        raise TaskYamlError(f"{where}: lmms_eval_specific_kwargs must be a mapping, got {type(kwargs).__name__}")
    kwargs = copy.deepcopy(kwargs)
    if model_type is not None and model_type in kwargs:
        return kwargs[model_type]
    for block in ("default", "dataset"):
        if block in kwargs:
            if not isinstance(kwargs[block], dict):
                raise TaskYamlError(f"{where}: lmms_eval_specific_kwargs.{block} must be a mapping")
            kwargs.update(kwargs[block])
            break
    return kwargs


def _model_block(value: Any, model_type: str | None, default: Any, where: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TaskYamlError(f"{where}: must be a mapping of model type -> settings")
    if model_type is not None and model_type in value:
        return copy.deepcopy(value[model_type])
    return copy.deepcopy(value.get("default", default))


class _LazyDataset:
    """Calls `loader` once (thread-safe) and returns its result ever after: a task's split is read once."""

    def __init__(self, loader: Callable[[], Any]) -> None:
        self._loader = loader
        self._value: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            if self._value is None:
                self._value = self._loader()
            return self._value


def build_task(cfg: TaskYaml, *, model_type: str | None = None, groups: tuple[str, ...] = ()) -> Task:
    """The `Task` for one merged task config; every error names the file, line and key.

    Its Python files are imported anew (`fresh_modules`): a task file's module state never outlives its task.
    """
    overrides = current_run_overrides()  # `lmms-nb eval --num_fewshot N` (lmms_nb.tasks._run_overrides)
    if overrides.get("num_fewshot") is not None:
        cfg = cfg.with_overrides({"num_fewshot": apply_num_fewshot(cfg.data, overrides["num_fewshot"])}, cfg)
    with fresh_modules():
        return _build_task(cfg, model_type=model_type, groups=groups)


def _build_task(cfg: TaskYaml, *, model_type: str | None, groups: tuple[str, ...]) -> Task:
    check_keys(cfg, TASK_KEYS, "task")
    _check_inactive(cfg)
    data = cfg.data
    name = data.get("task")
    if not isinstance(name, str) or not name:
        raise TaskYamlError(f"{cfg.where('task')}: `task` must be a task name (a string), got {name!r}")
    if data.get("group") is not None and data.get("tag") is not None:
        raise TaskYamlError(f"{cfg.where('group')}: a task config has both `group` and `tag`; use `tag`")
    tags = data.get("tag") if data.get("tag") is not None else data.get("group")
    tags = [tags] if isinstance(tags, str) else list(tags or [])

    specific = select_specific_kwargs(data.get("lmms_eval_specific_kwargs"), model_type,
                                      cfg.where("lmms_eval_specific_kwargs"))
    target_kwargs = _model_block(data.get("model_specific_target_kwargs"), model_type, None,
                                 cfg.where("model_specific_target_kwargs"))

    split = data.get("test_split") or data.get("validation_split")
    if not split:
        raise TaskYamlError(f"{cfg.path}: task {name!r} needs test_split (or validation_split)")
    split_key = "test_split" if data.get("test_split") else "validation_split"

    # -- functions and fields -------------------------------------------------------------------------------
    doc_to_choice = _choice_fn(cfg)
    doc_to_messages = _resolve(data.get("doc_to_messages"))
    if doc_to_messages is not None and not callable(doc_to_messages):
        raise TaskYamlError(f"{cfg.where('doc_to_messages')}: doc_to_messages must be a !function")
    doc_to_text = _text_fn(cfg, specific, doc_to_choice, messages_only=doc_to_messages is not None)
    doc_to_target = _target_fn(cfg, target_kwargs, doc_to_choice is not None)
    doc_to_visual, visual_field = _visual_fn(cfg, specific)
    process_docs = _resolve(data.get("process_docs"))
    if process_docs is not None and not callable(process_docs):
        raise TaskYamlError(f"{cfg.where('process_docs')}: process_docs must be a !function")

    generation_kwargs = _generation_kwargs(cfg, model_type)
    filters = _filters(cfg)
    is_choice = data.get("output_type", "generate_until") == "multiple_choice"
    if is_choice and doc_to_choice is None:
        raise TaskYamlError(f"{cfg.where('output_type')}: output_type multiple_choice needs doc_to_choice")
    metrics = _metrics(cfg, doc_to_choice, is_choice)
    process_results = _process_results(cfg, is_choice)
    if is_choice:
        process_results = choice_process_results(process_results,
                                                 doc_to_choice, doc_to_target, [m.name for m in metrics],
                                                 cfg.where("process_results"))
        filters = {"none": filters.get("none") or next(iter(filters.values()))} if filters else filters

    repeats = _repeats(cfg, filters, is_choice, process_results is not None)
    metadata = data.get("metadata")
    version = str(metadata["version"]) if isinstance(metadata, dict) and "version" in metadata else "Yaml"

    # -- the dataset, loaded lazily, once ------------------------------------------------------------------
    dataset_path = data.get("dataset_path")
    if not isinstance(dataset_path, str) or not dataset_path:
        raise TaskYamlError(f"{cfg.where('dataset_path')}: task {name!r} needs dataset_path (a hub name or folder)")
    resolved_path = _local_path(cfg.origins.get("dataset_path", (cfg.path,))[0], dataset_path)
    dataset_kwargs = copy.deepcopy(data.get("dataset_kwargs") or {})
    if not isinstance(dataset_kwargs, dict):
        raise TaskYamlError(f"{cfg.where('dataset_kwargs')}: dataset_kwargs must be a mapping")
    for key, why in _DOWNLOAD_FLOWS.items():
        if key in dataset_kwargs:
            raise TaskYamlError(f"{cfg.where('dataset_kwargs', key)}: dataset_kwargs.{key}: lmms-eval {why}; "
                                "lmms-nb never downloads at run time")
    video_dir = _video_dir(cfg, dataset_kwargs)
    load_from_disk = bool(dataset_kwargs.pop("load_from_disk", False))
    for key in _DOWNLOAD_ONLY_KWARGS:
        dataset_kwargs.pop(key, None)
    if dataset_path in _LOCAL_BUILDERS and "data_files" in dataset_kwargs:
        base = cfg.origins.get("dataset_kwargs", (cfg.path,))[0].parent
        dataset_kwargs["data_files"] = _local_data_files(dataset_kwargs["data_files"], base)

    task: Task  # assigned below; the loader records the dataset's columns on it

    def load_splits() -> Any:
        if load_from_disk and process_docs is None:  # a prepared folder: read without importing datasets
            saved = open_saved_splits(resolved_path)
            if saved is not None:
                return saved
        import datasets

        where = cfg.where("dataset_path")
        try:
            if load_from_disk:
                loaded = datasets.load_from_disk(resolved_path)
            else:
                loaded = datasets.load_dataset(resolved_path, name=data.get("dataset_name"), **dataset_kwargs)
        except Exception as e:
            how = "load_from_disk" if load_from_disk else "load_dataset"
            raise TaskYamlError(f"{where}: task {name!r}: {how}({resolved_path!r}) failed: "
                                f"{type(e).__name__}: {e}") from e
        if not isinstance(loaded, (datasets.DatasetDict, dict)):
            raise TaskYamlError(f"{where}: task {name!r}: {resolved_path!r} is a single Dataset; lmms-eval "
                                f"expects splits (a DatasetDict, e.g. DatasetDict({{{split!r}: ds}}))")
        return loaded

    def load_split(which: str, key: str) -> Any:
        splits = load_splits()
        if which not in splits:
            raise TaskYamlError(f"{cfg.where(key)}: task {name!r}: dataset has no split {which!r} "
                                f"(splits: {', '.join(splits)})")
        ds = splits[which]
        if process_docs is not None:
            ds = process_docs(ds)
        return ds

    def load() -> Any:
        # functions whose module needs an API key at import are imported now, before anything is generated
        resolve_deferred(data)
        if video_dir is not None and not Path(video_dir).is_dir():
            raise TaskYamlError(f"{cfg.where('dataset_kwargs', 'cache_dir')}: task {name!r}: its videos are read "
                                f"from {video_dir} (HF_HOME/cache_dir), which does not exist; lmms-eval downloads "
                                f"and unpacks them there from the hub repo {dataset_path!r}, lmms-nb does not")
        ds = load_split(split, split_key)
        _record_columns(task, ds, visual_field)
        return ds

    train_split = data.get("training_split")
    prompt_at = _fewshot_prompt(cfg, doc_to_text, doc_to_target, doc_to_choice, load_split)
    task = Task(
        name=name,
        load=_LazyDataset(load),
        doc_to_visual=doc_to_visual,
        doc_to_text=doc_to_text,
        doc_to_target=doc_to_target,
        doc_to_choice=doc_to_choice,
        metrics=metrics,
        generation_kwargs=generation_kwargs,
        filters=filters,
        category_column=None,
        split=split,
        image_column=visual_field,
        dataset_path=_disk_split_path(resolved_path, split) if load_from_disk and process_docs is None else None,
        version=version,
        description=str(data.get("task_alias") or ""),
        process_results=process_results,
        train_load=_LazyDataset(lambda: load_split(train_split, "training_split")) if train_split else None,
        config=_task_config(cfg, model_type, specific, tags, groups),
        doc_to_messages=_messages_fn(doc_to_messages, specific) if doc_to_messages is not None else None,
        prompt_at=prompt_at,
        output_type="multiple_choice" if is_choice else "generate_until",
        target_delimiter=str(data.get("target_delimiter", " ")),
        repeats=repeats,
    )
    if video_dir is not None:
        # the runner refuses, before generating, a backend that does not take video
        task.config.update(video=True, video_dir=video_dir)
    return task


def _fewshot_prompt(cfg: TaskYaml, doc_to_text: Callable, doc_to_target: Callable, doc_to_choice: Callable | None,
                    load_split: Callable[[str, str], Any]) -> Callable[[int, Doc], str] | None:
    """The k-th doc's prompt with lmms-eval's few-shot examples, or None for a zero-shot task."""
    data = cfg.data
    num_fewshot = data.get("num_fewshot")
    if num_fewshot is None or num_fewshot == 0:
        return None  # zero-shot: a fewshot_config is then inert, as in lmms-eval
    if not isinstance(num_fewshot, int) or isinstance(num_fewshot, bool) or num_fewshot < 0:
        raise TaskYamlError(f"{cfg.where('num_fewshot')}: num_fewshot must be a whole number >= 0, got {num_fewshot!r}")
    if not hasattr(doc_to_text, "bare"):
        raise TaskYamlError(f"{cfg.where('num_fewshot')}: few-shot prompts need doc_to_text (this task has only "
                            "doc_to_messages)")
    fewshot_config = data.get("fewshot_config") or {}
    if not isinstance(fewshot_config, dict):
        raise TaskYamlError(f"{cfg.where('fewshot_config')}: fewshot_config must be a mapping")
    # lmms-eval 0.7.3 reads only `sampler` (its samplers take doc_to_text / doc_to_target from the task and
    # ignore `samples`): the other keys are inert there, and here
    sampler = fewshot_config.get("sampler", "default")
    if sampler not in SAMPLERS:
        raise TaskYamlError(f"{cfg.where('fewshot_config')}: fewshot_config sampler {sampler!r} is not supported by "
                            f"lmms-nb (lmms-eval 0.7.3's samplers: {', '.join(SAMPLERS)})")
    for key in ("fewshot_split", "training_split", "validation_split", "test_split"):
        if data.get(key):
            source_key = key
            break
    split = data[source_key]
    fewshot = FewShotSampler(lambda: load_split(split, source_key), num_fewshot, sampler,
                             same_split=data.get("fewshot_split") == data.get("test_split"),
                             text=doc_to_text.raw, target=doc_to_target, choices=doc_to_choice,
                             target_delimiter=str(data.get("target_delimiter", " ")),
                             fewshot_delimiter=str(data.get("fewshot_delimiter", "\n\n")),
                             seed=current_run_overrides().get("fewshot_seed", FEWSHOT_SEED))
    describe = doc_to_text.describe
    # lmms-eval compares each drawn example with the evaluated doc read from its image-less copy of the data
    # (`dataset_no_image`, unless process_results_use_image): for a task with images they never compare equal,
    # so the doc itself can be one of its own examples
    keep_media = bool(data.get("process_results_use_image"))

    def prompt_at(k: int, doc: Doc) -> str:
        compared = doc if keep_media else {key: v for key, v in doc.items() if not _is_media(v)}
        return (describe(doc) if describe is not None else "") + fewshot.context(k, compared) + doc_to_text.bare(doc)

    return prompt_at


def _is_media(value: Any) -> bool:
    """An image (or a list of them): what lmms-eval's image-less copy of a dataset drops (Image features)."""
    from PIL import Image

    if isinstance(value, list) and value:
        return all(isinstance(v, Image.Image) for v in value)
    return isinstance(value, Image.Image)


def _repeats(cfg: TaskYaml, filters: dict[str, Callable], is_choice: bool, has_process_results: bool) -> int:
    """lmms-eval's `repeats` (answers asked per doc), checked so that every filter's output can be scored."""
    repeats = cfg.data.get("repeats")
    if repeats is None:
        return 1
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise TaskYamlError(f"{cfg.where('repeats')}: repeats must be a whole number >= 1, got {repeats!r}")
    if repeats > 1 and is_choice:
        raise TaskYamlError(f"{cfg.where('repeats')}: repeats: {repeats} with output_type multiple_choice: a "
                            "loglikelihood is the same every time; lmms-nb asks once")
    if repeats > 1 and not has_process_results:
        for name, pipeline in filters.items():
            if keeps_several(pipeline):
                raise TaskYamlError(f"{cfg.where('filter_list')}: filter {name!r} keeps several of the {repeats} "
                                    "answers (take_first_k) and the task has no process_results to score them; "
                                    "metric_list metrics score one answer")
    return repeats


def _messages_fn(fn: Callable, specific: Any) -> Callable[[Doc], list]:
    # lmms-eval calls doc_to_messages(doc, lmms_eval_specific_kwargs) when the task has such kwargs
    if specific is not None and (_n_params(fn) or 0) >= 2:
        return lambda doc: fn(doc, specific)
    return lambda doc: fn(doc)


def _video_dir(cfg: TaskYaml, dataset_kwargs: dict) -> str | None:
    """lmms-eval's video folder (HF_HOME/cache_dir) for `video: true`; both keys are consumed, as lmms-eval."""
    video = dataset_kwargs.pop("video", False)
    if not video:
        return None
    cache_dir = dataset_kwargs.pop("cache_dir", None)
    if not isinstance(cache_dir, str) or not cache_dir:
        raise TaskYamlError(f"{cfg.where('dataset_kwargs', 'video')}: dataset_kwargs.video needs a cache_dir "
                            "(the folder under HF_HOME that holds the videos)")
    import os

    hf_home = os.path.expanduser(os.getenv("HF_HOME", "~/.cache/huggingface/"))
    resolved = os.path.expanduser(os.path.expandvars(cache_dir))  # lmms_eval.utils.resolve_cache_dir
    return resolved if os.path.isabs(resolved) else os.path.join(hf_home, resolved)


def _task_config(cfg: TaskYaml, model_type: str | None, specific: Any, tags: list, groups: tuple) -> dict:
    """What results.json records about the YAML (JSON values only)."""
    out: dict[str, Any] = {
        "yaml_path": str(cfg.path),
        # the YAML files and the Python files their !function tags name: an edit to either changes the
        # task's fingerprint, so a run is never resumed with different prompts or scoring
        "yaml_sha256": cfg.digest(),
        "functions_sha256": _functions_digest(cfg.data),
        "model_type": model_type,
    }
    deferred = sorted(str(f) for f in _function_files(cfg.data) if f.resolve() in DEFERRED_FILES)
    if deferred:
        # imported when a run starts (they need an API key or the hub at import): see DeferredFunction
        out["deferred_imports"] = deferred
    if specific is not None:
        # as lmms-eval 0.7.3's `configs` shows it: a block named after the model is read without touching the
        # YAML's mapping (every block stays), while the default block is merged into that mapping in place
        raw = cfg.data.get("lmms_eval_specific_kwargs")
        out["lmms_eval_specific_kwargs"] = copy.deepcopy(raw) if model_type is not None and model_type in raw \
            else specific
    if tags:
        out["tag"] = tags
    if groups:
        out["group"] = list(groups)
    for key in ("task_alias", "dataset_path", "dataset_name", "score_key", "cluster_key"):
        if cfg.data.get(key) is not None:
            out[key] = cfg.data[key]
    # the rest of what lmms-eval 0.7.3 writes in `configs` (a !function as its "<function name>" text)
    for key in ("dataset_kwargs", "doc_to_visual", "doc_to_text", "doc_to_target", "doc_to_choice",
                "process_results", "description", "target_delimiter", "fewshot_delimiter", "num_fewshot",
                "fewshot_split", "fewshot_config", "repeats", "metric_list", "filter_list", "metadata"):
        if cfg.data.get(key) is not None and key not in out:
            out[key] = _as_json(cfg.data[key])
    return out


def _as_json(value: Any) -> Any:
    if isinstance(value, FunctionRef):
        return f"<function {value.dotted.rsplit('.', 1)[-1]}>"
    if isinstance(value, dict):
        return {str(k): _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    return value


def _functions_digest(data: Any) -> str:
    import hashlib

    h = hashlib.sha256()
    for f in sorted(_function_files(data)):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _function_files(data: Any) -> set[Path]:
    files: set[Path] = set()

    def walk(value: Any) -> None:
        if isinstance(value, FunctionRef):
            files.add(value.module_file())
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(data)
    return files


def _local_path(yaml_file: Path, dataset_path: str) -> str:
    # A relative local folder is read next to the YAML that names it; anything else (a hub name) as given.
    candidate = Path(yaml_file).parent / dataset_path
    return str(candidate) if not Path(dataset_path).is_absolute() and candidate.exists() else dataset_path


def _local_data_files(value: Any, base: Path) -> Any:
    if isinstance(value, str):
        if value and "://" not in value and not Path(value).is_absolute() and (base / value).is_file():
            return str(base / value)
        return value
    if isinstance(value, dict):
        return {k: _local_data_files(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_local_data_files(v, base) for v in value]
    return value


def _disk_split_path(path: str, split: str) -> str | None:
    folder = Path(path) / split
    return str(folder) if (folder / "dataset_info.json").is_file() else None


def _record_columns(task: Task, ds: Any, visual_field: str | None) -> None:
    """Remember the image column (kept out of requests' docs and of aggregation docs) and a category column."""
    if isinstance(ds, SavedSplit):  # its features without importing datasets
        image_columns, names = ds.image_columns, ds.column_names
    else:
        import datasets

        features = getattr(ds, "features", {}) or {}

        def is_image(feature: Any) -> bool:
            inner = feature[0] if isinstance(feature, list) and feature else getattr(feature, "feature", None)
            return isinstance(feature, datasets.Image) or isinstance(inner, datasets.Image)

        image_columns, names = [c for c, f in features.items() if is_image(f)], list(features)
    if visual_field is None:
        task.image_column = image_columns[0] if image_columns else None
    if "category" in names:
        task.category_column = "category"


# -- doc_to_* -------------------------------------------------------------------------------------------------

def _text_fn(cfg: TaskYaml, specific: Any, doc_to_choice: Callable | None,
             messages_only: bool = False) -> Callable[[Doc], str]:
    value = _resolve(cfg.data.get("doc_to_text"))
    where = cfg.where("doc_to_text")
    description = cfg.data.get("description") or ""
    describe = _template(description, cfg.where("description")) if description else None

    if value is None and messages_only:
        task_name = cfg.data.get("task")

        def no_text(doc: Doc) -> str:
            raise TypeError(f"{cfg.path}: task {task_name!r} defines doc_to_messages and no doc_to_text: "
                            "only a chat backend can run it")

        no_text.messages_only = True  # type: ignore[attr-defined]
        return no_text
    if value is None:
        raise TaskYamlError(f"{cfg.path}: task {cfg.data.get('task')!r} needs doc_to_text")
    if isinstance(value, int) and not isinstance(value, bool):
        base: Callable[[Doc], Any] = lambda doc: value
    elif isinstance(value, str):
        render = _template(value, where)

        def base(doc: Doc) -> Any:
            if value in doc:
                return doc[value]
            text = render(doc)
            # lmms-eval: a template rendering to digits with doc_to_choice is an index into the choices
            return int(text) if text.isdigit() and doc_to_choice is not None else text
    elif callable(value):
        fn = value
        base = (lambda doc: fn(doc, specific)) if specific is not None else (lambda doc: fn(doc))
    else:
        raise TaskYamlError(f"{where}: doc_to_text must be a field name, a template or a !function")

    def bare(doc: Doc) -> str:
        text = base(doc)
        if isinstance(text, int) and not isinstance(text, bool):
            text = doc_to_choice(doc)[text] if doc_to_choice is not None else str(text)
        if not isinstance(text, str):
            raise TypeError(f"{where}: doc_to_text returned {type(text).__name__}, not text")
        return text

    def doc_to_text(doc: Doc) -> str:
        text = bare(doc)
        return (describe(doc) + text) if describe is not None else text

    doc_to_text.__qualname__ = f"doc_to_text[{cfg.path.name}]"
    # few-shot prompts put the examples between the description and the text (see _yaml_fewshot)
    doc_to_text.bare = bare  # type: ignore[attr-defined]
    doc_to_text.describe = describe  # type: ignore[attr-defined]
    doc_to_text.raw = base  # type: ignore[attr-defined]
    return doc_to_text


def _target_fn(cfg: TaskYaml, target_kwargs: Any, has_choice: bool) -> Callable[[Doc], Any]:
    value = _resolve(cfg.data.get("doc_to_target"))
    where = cfg.where("doc_to_target")
    if value is None:
        raise TaskYamlError(f"{cfg.path}: task {cfg.data.get('task')!r} needs doc_to_target")
    if isinstance(value, (int, list)) and not isinstance(value, bool):
        return lambda doc: value
    if isinstance(value, str):
        render = _template(value, where)

        def doc_to_target(doc: Doc) -> Any:
            if value in doc:
                return doc[value]
            text = render(doc)
            if text.isdigit() and has_choice:
                return int(text)
            if len(text) >= 2 and text[0] == "[" and text[-1] == "]":
                try:
                    return ast.literal_eval(text)
                except (SyntaxError, ValueError):
                    return text
            return text

        return doc_to_target
    if callable(value):
        fn = value
        return (lambda doc: fn(doc, target_kwargs)) if target_kwargs is not None else (lambda doc: fn(doc))
    raise TaskYamlError(f"{where}: doc_to_target must be a field name, a template, a list or a !function")


def _choice_fn(cfg: TaskYaml) -> Callable[[Doc], list] | None:
    value = _resolve(cfg.data.get("doc_to_choice"))
    where = cfg.where("doc_to_choice")
    if value is None:
        return None
    if isinstance(value, list):
        return lambda doc: list(value)
    if isinstance(value, dict):
        return lambda doc: list(value.values())
    if isinstance(value, str):
        render = _template(value, where)

        def doc_to_choice(doc: Doc) -> list:
            if value in doc:
                return list(doc[value])
            text = render(doc)
            try:
                return list(ast.literal_eval(text))
            except (SyntaxError, ValueError) as e:
                raise ValueError(f"{where}: doc_to_choice template gave {text!r}, not a list") from e

        return doc_to_choice
    if callable(value):
        return lambda doc: value(doc)
    raise TaskYamlError(f"{where}: doc_to_choice must be a field name, a template, a list, a mapping or a !function")


def _visual_fn(cfg: TaskYaml, specific: Any) -> tuple[Callable[[Doc], list], str | None]:
    value = _resolve(cfg.data.get("doc_to_visual"))
    where = cfg.where("doc_to_visual")
    if value is None:
        return (lambda doc: []), None
    if isinstance(value, str):
        def doc_to_visual(doc: Doc) -> list:
            if value not in doc:
                raise KeyError(f"{where}: doc_to_visual field {value!r} is not in the doc (fields: {', '.join(doc)})")
            return [doc[value]]

        return doc_to_visual, value
    if callable(value):
        # lmms-eval passes the kwargs only to a two-parameter function
        if specific is not None and _n_params(value) == 2:
            return (lambda doc: list(value(doc, specific) or [])), None
        return (lambda doc: list(value(doc) or [])), None
    raise TaskYamlError(f"{where}: doc_to_visual must be a field name or a !function")


# -- generation, filters, metrics ---------------------------------------------------------------------------

def _generation_kwargs(cfg: TaskYaml, model_type: str | None) -> dict[str, Any]:
    data = cfg.data
    delimiter = data.get("fewshot_delimiter", "\n\n")
    gen = data.get("generation_kwargs")
    if gen is None:
        gen = {"until": None if delimiter is None else [delimiter], "do_sample": False}
    elif not isinstance(gen, dict):
        raise TaskYamlError(f"{cfg.where('generation_kwargs')}: generation_kwargs must be a mapping")
    else:
        gen = copy.deepcopy(gen)
        if "temperature" in gen:
            try:
                gen["temperature"] = float(gen["temperature"])
            except (TypeError, ValueError):
                raise TaskYamlError(f"{cfg.where('generation_kwargs', 'temperature')}: temperature must be a "
                                    f"number, got {gen['temperature']!r}") from None
        gen.setdefault("until", [delimiter])
    specific = _model_block(data.get("model_specific_generation_kwargs"), model_type, {},
                            cfg.where("model_specific_generation_kwargs"))
    if specific:
        gen.update(specific)
    until = gen.get("until")
    if until is not None and not isinstance(until, str) and not (
            isinstance(until, list) and all(isinstance(u, str) for u in until)):
        raise TaskYamlError(f"{cfg.where('generation_kwargs', 'until')}: until must be a string or a list of strings")
    return gen


def _reasoning_tags(cfg: TaskYaml) -> list | None:
    """lmms-eval's reasoning tags for a task: its `reasoning_tags`, else the CLI default; "none"/false: off."""
    tags = cfg.data.get("reasoning_tags")
    if tags is None:
        return DEFAULT_REASONING_TAGS
    if tags is False or tags == "none":
        return None
    if isinstance(tags, str):
        import json

        try:
            tags = json.loads(tags)
        except ValueError as e:
            raise TaskYamlError(f"{cfg.where('reasoning_tags')}: reasoning_tags is not JSON: {e}") from e
    if not (isinstance(tags, list) and all(isinstance(p, list) and len(p) == 2 and all(isinstance(t, str) for t in p)
                                           for p in tags)):
        raise TaskYamlError(f"{cfg.where('reasoning_tags')}: reasoning_tags must be a list of [start, end] tag pairs")
    return tags


def _filters(cfg: TaskYaml) -> dict[str, Callable[[str, Doc], str]]:
    data = cfg.data
    tags = _reasoning_tags(cfg)
    # auto_strip_thinking only acts when no reasoning tags are in force (they already strip), as in lmms-eval
    prepend = [(StripThinkingFilter, None)] if data.get("auto_strip_thinking") and tags is None else []
    filter_list = data.get("filter_list")
    pipelines: dict[str, Callable[[str, Doc], str]] = {}
    if filter_list is None:
        pipelines["none"] = build_filter_pipeline(prepend + [("take_first", None)])
    else:
        if not isinstance(filter_list, list):
            raise TaskYamlError(f"{cfg.where('filter_list')}: filter_list must be a list of {{name, filter}} entries")
        for i, entry in enumerate(filter_list):
            where = cfg.where("filter_list", i)
            if not isinstance(entry, dict) or "name" not in entry or "filter" not in entry:
                raise TaskYamlError(f"{where}: each filter_list entry needs `name` and `filter` (a list of steps)")
            extra = set(entry) - {"name", "filter"}
            if extra:
                raise TaskYamlError(f"{where}: unsupported filter_list key(s) {sorted(extra)}")
            steps = []
            for j, step in enumerate(entry["filter"] or []):
                swhere = cfg.where("filter_list", i, "filter", j)
                if not isinstance(step, dict) or "function" not in step:
                    raise TaskYamlError(f"{swhere}: each filter step needs `function`")
                function = _resolve(step["function"])
                if isinstance(function, str) and function not in FILTERS:
                    close = difflib.get_close_matches(function, sorted(FILTERS), n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise TaskYamlError(f"{swhere}: unknown filter {function!r}{hint}; known: {', '.join(sorted(FILTERS))}")
                steps.append((function, {k: v for k, v in step.items() if k != "function"}))
            try:
                pipeline = build_filter_pipeline(prepend + steps)
            except (TypeError, ValueError, KeyError) as e:
                raise TaskYamlError(f"{where}: filter {entry['name']!r}: {e}") from e
            if entry["name"] in pipelines:
                raise TaskYamlError(f"{where}: two filters named {entry['name']!r}")
            pipelines[str(entry["name"])] = pipeline
    if tags:
        pipelines = {n: _strip_after(p, tags) for n, p in pipelines.items()}
    return pipelines


def _strip_after(pipeline: Callable[[str, Doc], str], tags: list) -> Callable[[str, Doc], str]:
    # after the filters, as lmms-eval's evaluator: reasoning blocks removed and the answer stripped
    def strip(out: Any) -> Any:
        # with `repeats`: a kept list is stripped item by item, as lmms-eval's evaluator does
        if isinstance(out, list):
            return [strip_reasoning(x, tags) if isinstance(x, str) else x for x in out]
        return strip_reasoning(out, tags) if isinstance(out, str) else out

    def filtered(response: str, doc: Doc) -> str:
        return strip(pipeline(response, doc))

    def many(responses: list[str], doc: Doc) -> Any:
        return strip(pipeline.many(responses, doc))  # type: ignore[attr-defined]

    filtered.many = many  # type: ignore[attr-defined]
    filtered.steps = getattr(pipeline, "steps", [])  # type: ignore[attr-defined]
    filtered.before_strip = pipeline  # type: ignore[attr-defined]  # 0.7.3 logs this output as `resps`
    # the runner logs `before_strip`'s output and applies this to it, so the filters run once per doc
    filtered.strip = strip  # type: ignore[attr-defined]
    return filtered


def _process_results(cfg: TaskYaml, is_choice: bool = False) -> Callable[[Doc, str], dict[str, Any]] | None:
    fn = _resolve(cfg.data.get("process_results"))
    if fn is None:
        return None
    where = cfg.where("process_results")
    if not callable(fn):
        raise TaskYamlError(f"{where}: process_results must be a !function")
    if is_choice:
        return fn

    def process_results(doc: Doc, prediction: Any) -> dict[str, Any]:
        # lmms-eval hands over the list of (stripped) filtered responses: one per doc here, or the k that a
        # take_first_k filter keeps with `repeats`
        answers = prediction if isinstance(prediction, list) else [prediction]
        out = fn(doc, ["" if a is None else str(a).strip() for a in answers])
        if not isinstance(out, dict):
            raise TypeError(f"{where}: process_results returned {type(out).__name__}, not a dict of metric values")
        return out

    process_results.__qualname__ = f"process_results[{getattr(fn, '__name__', 'fn')}]"
    return process_results


def _metrics(cfg: TaskYaml, doc_to_choice: Callable | None, is_choice: bool = False) -> list[Metric]:
    data = cfg.data
    metric_list = data.get("metric_list")
    # multiple_choice values come from the loglikelihoods (lmms-eval's own process_results for that type)
    custom = data.get("process_results") is not None or is_choice
    if metric_list is None:
        metric_list = [{"metric": m} for m in DEFAULT_CHOICE_METRICS] if is_choice else [{"metric": "exact_match"}]
    if is_choice and data.get("process_results") is None:
        for i, entry in enumerate(metric_list if isinstance(metric_list, list) else []):
            name = entry.get("metric") if isinstance(entry, dict) else None
            if isinstance(name, str) and name not in CHOICE_METRICS:
                raise TaskYamlError(f"{cfg.where('metric_list', i, 'metric')}: metric {name!r} is not one lmms-nb "
                                    f"computes for multiple_choice (supported: {', '.join(CHOICE_METRICS)})")
    if not isinstance(metric_list, list):
        raise TaskYamlError(f"{cfg.where('metric_list')}: metric_list must be a list of {{metric: ...}} entries")
    metrics = []
    for i, entry in enumerate(metric_list):
        where = cfg.where("metric_list", i)
        if not isinstance(entry, dict) or "metric" not in entry:
            raise TaskYamlError(f"{where}: each metric_list entry needs `metric`")
        metric = _resolve(entry["metric"])
        name = getattr(metric, "__name__", None) if callable(metric) else metric
        if not isinstance(name, str):
            raise TaskYamlError(f"{where}: metric must be a name or a !function, got {metric!r}")
        options = {k: v for k, v in entry.items() if k not in ("metric", "aggregation", "higher_is_better")}
        if custom:
            scorer = _unused_scorer(name)  # process_results computes every value; lmms-eval ignores options here
        elif callable(metric):
            scorer = _callable_scorer(name, metric, options, doc_to_choice)
        elif name in BUILTIN_METRICS:
            fn, allowed, _, _, takes_doc = BUILTIN_METRICS[name]
            unknown = set(options) - allowed
            if unknown:
                raise TaskYamlError(f"{cfg.where('metric_list', i, min(unknown))}: metric {name}: unsupported "
                                    f"option(s) {sorted(unknown)}; it takes {sorted(allowed) or 'none'}")
            scorer = _builtin_scorer(name, fn, options, takes_doc, doc_to_choice)
        else:
            raise TaskYamlError(f"{cfg.where('metric_list', i, 'metric')}: unknown metric {name!r} "
                                f"(built in: {', '.join(sorted(BUILTIN_METRICS))}); other names need process_results")
        aggregation = _resolve(entry.get("aggregation"))
        if aggregation is None:
            if name not in DEFAULT_AGGREGATION:
                raise TaskYamlError(f"{where}: metric {name!r} has no default aggregation; add `aggregation: mean` "
                                    "(or a !function)")
            aggregate = AGGREGATIONS[DEFAULT_AGGREGATION[name]]
        elif isinstance(aggregation, str):
            if aggregation not in AGGREGATIONS:
                raise TaskYamlError(f"{cfg.where('metric_list', i, 'aggregation')}: unsupported aggregation "
                                    f"{aggregation!r} (supported: {', '.join(AGGREGATIONS)}, or a !function)")
            aggregate = AGGREGATIONS[aggregation]
        elif callable(aggregation):
            aggregate = custom_aggregation(aggregation)
        else:
            raise TaskYamlError(f"{cfg.where('metric_list', i, 'aggregation')}: aggregation must be a name or a !function")
        higher = entry.get("higher_is_better", DEFAULT_HIGHER_IS_BETTER.get(name, True))
        metrics.append(Metric(name=name, score=scorer, aggregate=aggregate, higher_is_better=bool(higher)))
    return metrics


def _unused_scorer(name: str) -> Callable[[str, Any, Doc], float]:
    def score(prediction: str, target: Any, doc: Doc) -> float:
        raise RuntimeError(f"metric {name!r} is computed by the task's process_results")

    return score


def _gold(target: Any, doc: Doc, doc_to_choice: Callable | None) -> Any:
    if doc_to_choice is None:
        return target
    choices = doc_to_choice(doc)
    if not isinstance(target, int) or isinstance(target, bool):
        raise TypeError(f"with doc_to_choice, doc_to_target must give an index into the choices, got {target!r}")
    return choices[target]


def _builtin_scorer(name: str, fn: Callable[..., float], options: dict, takes_doc: bool,
                    doc_to_choice: Callable | None) -> Callable[[str, Any, Doc], float]:
    extra = dict(options)

    def call(result: str, references: list, doc: Doc) -> float:
        return float(fn(result, references, doc, **extra) if takes_doc else fn(result, references, **extra))

    def score(prediction: str, target: Any, doc: Doc) -> float:
        result = "" if prediction is None else str(prediction).strip()
        gold = _gold(target, doc, doc_to_choice)
        if isinstance(gold, (list, tuple)) and name != "anls":
            # several acceptable answers: right when any of them matches (lmms-eval's multiple_target)
            return float(any(call(result, [g], doc) for g in gold))
        return call(result, list(gold) if isinstance(gold, (list, tuple)) else [gold], doc)

    score.__qualname__ = f"{name}_lmms_eval"
    return score


def _callable_scorer(name: str, fn: Callable, options: dict, doc_to_choice: Callable | None):
    def call(result: str, references: list) -> float:
        try:
            value = fn(references=references, predictions=[result], **options)
        except TypeError:  # lmms-eval's fallback for "items"-style metric functions
            value = fn([references, [result]])
        if isinstance(value, dict):
            value = value[name]
        return float(value)

    def score(prediction: str, target: Any, doc: Doc) -> float:
        result = "" if prediction is None else str(prediction).strip()
        gold = _gold(target, doc, doc_to_choice)
        if isinstance(gold, (list, tuple)):
            return float(any(call(result, [g]) for g in gold))
        return call(result, [gold])

    return score
