"""What arguments a registered model takes: name, required or default, type and help (for forms such as
`EvalLauncher`'s), read from the factory's signature and the "Args:" section of its docstring.

`form_model_args` turns what such a form holds (one text or value per field, plus extra JSON) into the
arguments to build the model with, or a one-line error naming the field.

Example:
    >>> args = {a.name: a for a in model_arguments("hf")}
    >>> args["pretrained"].required, args["dtype"].default
    (True, 'float32')
    >>> missing_arguments("hf", {})
    ['pretrained']
    >>> form_model_args("hf", args.values(), {"pretrained": " org/model ", "dtype": "float32",
    ...                                       "max_new_tokens": "7"}, '{"device": "cpu"}')
    {'pretrained': 'org/model', 'max_new_tokens': 7, 'device': 'cpu'}
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ModelArgument", "form_model_args", "missing_arguments", "model_arguments"]

#: Parameters a form never asks for (display names, progress bars, or the Python callable of `function`).
_HIDDEN = {"name", "progress", "self"}
#: Parameters that take a Python object (a callable): a form cannot give them.
_PYTHON_ONLY = {"fn"}


@dataclass(frozen=True)
class ModelArgument:
    """One constructor argument: `kind` is "str", "int", "float", "bool", "json" (anything else) or "python"
    (a Python object such as a callable, which only code can pass)."""

    name: str
    required: bool
    default: Any
    kind: str
    help: str


def _kind(annotation: Any, default: Any) -> str:
    text = str(annotation)
    for kind in ("bool", "int", "float"):
        if text == kind or text.startswith(f"{kind} |") or isinstance(default, {"bool": bool, "int": int,
                                                                                 "float": float}[kind]):
            if not (kind == "int" and isinstance(default, bool)):
                return kind
    if any(t in text for t in ("Mapping", "dict", "list", "Sequence")):
        return "json"
    return "str"


def _docs(obj: Any) -> dict[str, str]:
    """{parameter: help} from a Google-style "Args:" section (class and __init__ docstrings)."""
    text = "\n".join(filter(None, [inspect.getdoc(obj) or "", inspect.getdoc(getattr(obj, "__init__", None)) or ""]))
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^\s{0,8}([A-Za-z_][\w, ]*):\s+(.*)$", line)
        if m and all(p.strip().isidentifier() for p in m.group(1).split(",")):
            names = [p.strip() for p in m.group(1).split(",")]
            for name in names:
                out[name] = m.group(2).strip()
            current = names
        elif current and line.startswith(" " * 8) and line.strip():
            for name in current:
                out[name] += " " + line.strip()
        else:
            current = None
    return out


def model_arguments(name: str) -> list[ModelArgument]:
    """The arguments of the model registered as `name`, required ones first (raises KeyError if unknown)."""
    from lmms_nb.models.registry import _FACTORIES, list_models

    if name not in list_models():
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    factory = _FACTORIES[name]
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return []
    docs = _docs(factory)
    out = []
    for p in signature.parameters.values():
        if p.name in _HIDDEN or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        required = p.default is inspect.Parameter.empty
        default = None if required else p.default
        kind = "python" if p.name in _PYTHON_ONLY else _kind(p.annotation, default)
        out.append(ModelArgument(p.name, required, default, kind, docs.get(p.name, "")))
    return sorted(out, key=lambda a: not a.required)


def missing_arguments(name: str, given: Mapping[str, Any]) -> list[str]:
    """The required arguments of model `name` that `given` lacks (or gives as empty text)."""
    return [a.name for a in model_arguments(name) if a.required and given.get(a.name) in (None, "")]


def form_model_args(name: str, specs: Iterable[ModelArgument], values: Mapping[str, Any],
                    extra_json: str = "") -> dict[str, Any]:
    """The arguments a form gives model `name`, checked; raises ValueError in one line naming the field.

    `specs`: the arguments the form shows (from `model_arguments`); `values`: {argument: its field's value}
    (Python-object arguments have no field). Text is parsed as the argument's kind, a blank field keeps the
    default, and a value equal to the default is left out (unless the argument is required). `extra_json`, a
    JSON object, adds or overrides arguments. A required Python-object argument, or a required argument
    still missing, is an error.
    """
    specs = {a.name: a for a in specs}
    unknown = [arg for arg in values if arg not in specs]
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not an argument of {name}; it takes {', '.join(specs) or 'none'}")
    args = _changed_values(specs, values)
    text = extra_json.strip()
    if text:
        try:
            extra = json.loads(text)
        except ValueError as e:
            raise ValueError(f"model args: not valid JSON ({e})") from None
        if not isinstance(extra, dict):  # a form field's value: reported in the widget like the other errors
            raise ValueError(f"model args: expected a JSON object such as {{\"path\": \"...\"}}, got {text!r}")  # noqa: TRY004
        args.update(extra)
    python_only = [a.name for a in specs.values() if a.kind == "python" and a.required]
    if python_only:
        raise ValueError(f"{name} needs {', '.join(python_only)} (a Python object), which a form cannot give: "
                         f"build the model in code and pass it in models=[...]")
    missing = [a for a in specs.values() if a.required and a.name not in args]
    if missing:
        first = missing[0]
        raise ValueError(f"{name} needs {', '.join(a.name for a in missing)}"
                         + (f" ({first.name}: {first.help})" if first.help else ""))
    return args


_BOOL_TEXT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _changed_values(specs: Mapping[str, ModelArgument], values: Mapping[str, Any]) -> dict[str, Any]:
    """The fields' values that differ from the defaults, text parsed as its kind (a blank field keeps the default)."""
    out: dict[str, Any] = {}
    for arg, value in values.items():
        spec = specs[arg]
        if isinstance(value, str):
            value = value.strip()
            if value == "":
                continue
            try:
                if spec.kind == "json":
                    value = json.loads(value)
                elif spec.kind == "int":
                    value = int(value)
                elif spec.kind == "float":
                    value = float(value)
                elif spec.kind == "bool":  # "false" as text must not reach the model as a truthy string
                    value = _BOOL_TEXT[value.lower()]
            except (ValueError, KeyError):
                raise ValueError(f"{arg}: {value!r} is not a valid {spec.kind}") from None
        if value != spec.default or spec.required:
            out[arg] = value
    return out
