"""Run identity: everything that determines a run's answers and scores, hashed part by part.

A run resumes only an earlier run whose identity is the same. The parts (each a short hash, kept in the
results JSON so that a mismatch can say what changed):

- each task's resolved config (name, split, version, generation kwargs, columns, `config`) and the code of
  every callable in it (doc_to_*, filters, metrics and their aggregations, process_results, an LLM judge):
  bytecode, constants, default values and closure cells, followed into the functions and classes they call
  that are defined in the same module, and the plain values (strings, numbers, containers) they read from it;
- each task's dataset fingerprint (`datasets`' own, which changes with the rows) and the selected doc ids;
- the model's name and args, its class's code, its weights, config and generation config when it holds a torch
  module (see `weights_fingerprint`), or what its `identity()` method returns (an endpoint and model id, for instance);
- the seed and lmms-nb's version.

A part that cannot be pinned down (a model that is an unnamed lambda) makes the identity *undetermined*:
such a run never resumes silently.

Example:
    >>> def answer(doc):
    ...     return "3"
    >>> def other(doc):
    ...     return "999"
    >>> callable_digest(answer) == callable_digest(answer) != callable_digest(other)
    True
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import sys
import types
from dataclasses import dataclass, field
from typing import Any

from lmms_nb.runner._weights_fingerprint import weights_fingerprint
from lmms_nb.tasks.task import Task

__all__ = ["RunIdentity", "callable_digest", "describe_changes", "run_identity", "weights_fingerprint"]

_PLAIN = (str, int, float, bool, type(None), bytes)
_MAX_DEPTH = 6


@dataclass
class RunIdentity:
    """The identity of a run: named parts, each a short hash; `key` hashes them all."""

    parts: dict[str, str]
    #: why the identity cannot be trusted for resuming (None when it can)
    undetermined: str | None = None
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = _digest(self.parts, 20)


def run_identity(model: Any, tasks: list[Task], datasets: dict[str, Any], doc_ids: dict[str, list[int]],
                 seed: int, version: str | None) -> RunIdentity:
    """The identity of evaluating `model` on these tasks' selected docs (see the module docstring)."""
    parts: dict[str, str] = {"model": _digest([model.name, _value(getattr(model, "model_args", {}), 0, set())]),
                             "model code": _digest(_model_code(model)), "seed": str(seed),
                             "lmms-nb version": str(version)}
    weights = _model_weights(model)
    if weights is not None:
        parts["model weights"] = weights
    for t in tasks:
        parts.update(_task_parts(t, datasets[t.name], doc_ids[t.name]))
    return RunIdentity(parts, undetermined=_undetermined(model))


def describe_changes(old: dict[str, str], new: dict[str, str]) -> str:
    """What differs between two identities' parts, in a few words.

    >>> describe_changes({"model": "a", "seed": "0"}, {"model": "b", "seed": "0", "task t: data": "c"})
    'model, task t: data (new)'
    """
    changed = [k for k in new if k in old and old[k] != new[k]]
    changed += [f"{k} (new)" for k in new if k not in old]
    changed += [f"{k} (gone)" for k in old if k not in new]
    return ", ".join(changed) or "nothing recorded"


# ----------------------------------------------------------------------------------------------- tasks
def _task_parts(task: Task, dataset: Any, doc_ids: list[int]) -> dict[str, str]:
    p = f"task {task.name}"
    config = {
        "split": task.split, "version": task.version, "generation_kwargs": task.generation_kwargs,
        "image_column": task.image_column, "category_column": task.category_column, "config": task.config,
        "filters": list(task.filters), "output_type": getattr(task, "output_type", None),
        "target_delimiter": getattr(task, "target_delimiter", None),
    }
    metrics = [[m.name, m.higher_is_better, m.per_sample, m.source, _code(m.score), _code(m.aggregate),
                _code(m.score_batch)] for m in task.metrics]
    return {
        f"{p}: config": _digest(config),
        f"{p}: prompt (doc_to_visual, doc_to_text, doc_to_choice)": _digest(
            [_code(task.doc_to_visual), _code(task.doc_to_text), _code(task.doc_to_choice),
             _code(getattr(task, "doc_to_messages", None)), _code(getattr(task, "prompt_at", None))]),
        f"{p}: target (doc_to_target)": _digest(_code(task.doc_to_target)),
        f"{p}: filters": _digest({name: _code(fn) for name, fn in task.filters.items()}),
        f"{p}: metrics": _digest([metrics, _code(task.process_results)]),
        f"{p}: data": _digest([getattr(dataset, "_fingerprint", None), len(dataset)]),
        f"{p}: doc ids": _digest(doc_ids),
    }


# ----------------------------------------------------------------------------------------------- model
def _model_code(model: Any) -> Any:
    fn = getattr(model, "fn", None)  # FunctionModel and the like: the function is the model
    out = [_code(type(model))]
    if callable(fn):
        out.append(_code(fn))
    if callable(getattr(model, "identity", None)):
        out.append(_value(model.identity(), 0, set()))
    return out


def _undetermined(model: Any) -> str | None:
    fn = getattr(model, "fn", None)
    if model.name == "<lambda>" or (getattr(fn, "__name__", None) == "<lambda>" and model.name == fn.__name__):
        return f"model {model.name!r} is an unnamed lambda (give it a name, e.g. FunctionModel(fn, name=...))"
    return None


def _model_weights(model: Any) -> str | None:
    """The fingerprint of the torch modules a model holds (directly or one attribute down), or None."""
    if "torch" not in sys.modules:
        return None
    import torch

    modules = [v for _, v in sorted(getattr(model, "__dict__", {}).items()) if isinstance(v, torch.nn.Module)]
    return _digest([weights_fingerprint(m) for m in modules]) if modules else None


# ----------------------------------------------------------------------------------------------- code
def callable_digest(fn: Any) -> str:
    """A short hash of what a callable does: its code, constants, defaults, closures and same-module callees."""
    return _digest(_code(fn))


def _code(obj: Any, depth: int = 0, seen: set[int] | None = None) -> Any:
    """A JSON-able description of a callable's behaviour (see the module docstring)."""
    seen = set() if seen is None else seen
    if obj is None:
        return None
    if id(obj) in seen or depth > _MAX_DEPTH:
        return f"<seen {getattr(obj, '__qualname__', type(obj).__name__)}>"
    seen.add(id(obj))
    if isinstance(obj, functools.partial):
        return ["partial", _code(obj.func, depth + 1, seen), _value(obj.args, depth, seen),
                _value(obj.keywords, depth, seen)]
    if isinstance(obj, types.MethodType):
        return ["method", _code(obj.__func__, depth + 1, seen), _value(obj.__self__, depth + 1, seen)]
    if isinstance(obj, types.FunctionType):
        return _function(obj, depth, seen)
    if isinstance(obj, type):
        return ["class", obj.__module__, obj.__qualname__,
                {k: _code(v, depth + 1, seen) for k, v in sorted(vars(obj).items())
                 if isinstance(v, (types.FunctionType, staticmethod, classmethod, property))}]
    if isinstance(obj, (staticmethod, classmethod)):
        return _code(obj.__func__, depth + 1, seen)
    if isinstance(obj, property):
        return _code(obj.fget, depth + 1, seen)
    if isinstance(obj, types.BuiltinFunctionType):
        return ["builtin", getattr(obj, "__module__", None), obj.__qualname__]
    if callable(obj):  # an object with __call__: its class's code and its state
        return ["object", _code(type(obj), depth + 1, seen), _value(obj, depth + 1, seen)]
    return _value(obj, depth, seen)


def _function(fn: types.FunctionType, depth: int, seen: set[int]) -> Any:
    code = fn.__code__
    closure = [_value(c.cell_contents, depth + 1, seen) if _cell_filled(c) else None for c in (fn.__closure__ or ())]
    callees = {}
    for name in _global_names(code):
        if name in fn.__globals__:
            target = fn.__globals__[name]
            if isinstance(target, _PLAIN + (list, tuple, dict, set, frozenset)):
                callees[name] = _value(target, depth + 1, seen)
            elif getattr(target, "__module__", None) == fn.__module__ and callable(target):
                callees[name] = _code(target, depth + 1, seen)
    return ["function", fn.__module__, fn.__qualname__, _code_object(code), _value(fn.__defaults__, depth, seen),
            _value(fn.__kwdefaults__, depth, seen), closure, callees]


def _code_object(code: types.CodeType) -> Any:
    consts = [_code_object(c) if isinstance(c, types.CodeType) else _const(c) for c in code.co_consts]
    return [hashlib.sha256(code.co_code).hexdigest()[:16], consts, list(code.co_names)]


def _const(c: Any) -> Any:
    # a frozenset's repr follows string hashing, which differs from process to process
    if isinstance(c, frozenset):
        return sorted(repr(x) for x in c)
    if isinstance(c, tuple):
        return [_const(x) for x in c]
    return repr(c)


def _global_names(code: types.CodeType) -> list[str]:
    names = list(code.co_names)
    for c in code.co_consts:  # nested functions and lambdas read globals too
        if isinstance(c, types.CodeType):
            names += _global_names(c)
    return sorted(set(names))


def _cell_filled(cell: types.CellType) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:
        return False
    return True


def _value(v: Any, depth: int, seen: set[int]) -> Any:
    """A JSON-able description of a value a callable depends on."""
    if isinstance(v, _PLAIN):
        return repr(v)
    if depth > _MAX_DEPTH:
        return f"<{type(v).__qualname__}>"
    if isinstance(v, (list, tuple, set, frozenset)):
        items = [_value(x, depth + 1, seen) for x in v]
        return sorted(items, key=repr) if isinstance(v, (set, frozenset)) else items
    if isinstance(v, dict):
        return {str(k): _value(x, depth + 1, seen) for k, x in sorted(v.items(), key=lambda kv: repr(kv[0]))}
    if isinstance(v, (types.FunctionType, types.MethodType, functools.partial, type)):
        return _code(v, depth + 1, seen)
    if isinstance(v, types.ModuleType):
        return f"<module {v.__name__}>"
    if hasattr(v, "tobytes") and hasattr(v, "dtype") and hasattr(v, "shape"):  # numpy arrays, tensors
        data = v.detach().cpu().numpy() if hasattr(v, "detach") else v
        return [str(v.dtype), list(v.shape), hashlib.sha256(data.tobytes()).hexdigest()[:16]]
    if id(v) in seen:
        return f"<seen {type(v).__qualname__}>"
    seen.add(id(v))
    if callable(getattr(v, "identity", None)):
        return [type(v).__qualname__, _value(v.identity(), depth + 1, seen)]
    if isinstance(getattr(v, "model_args", None), dict):  # a model (a judge's client): its name and args
        return [type(v).__qualname__, getattr(v, "name", None), _value(v.model_args, depth + 1, seen)]
    if dataclasses.is_dataclass(v) or hasattr(v, "__dict__"):
        state = {k: x for k, x in vars(v).items() if not k.startswith("_")}
        return [type(v).__qualname__, _value(state, depth + 1, seen)]
    # no state we can read (a lock, a connection, a C object): its type only
    return f"<{type(v).__module__}.{type(v).__qualname__}>"


def _digest(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()[:n]


def source_of(fn: Any) -> str | None:
    """The source of a callable when Python can find it (for messages), else None."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return None
