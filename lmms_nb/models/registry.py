"""The model registry: `register_model`, `list_models`, `get_model`.

Example:
    >>> from lmms_nb.models import get_model, list_models
    >>> "majority" in list_models()
    True
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable

from lmms_nb.models.base import Model

_FACTORIES: dict[str, Callable[..., Model]] = {}


def register_model(name: str, factory: Callable[..., Model] | None = None):
    """Register `factory(**kwargs) -> Model` under `name`; usable as a decorator."""

    def deco(f: Callable[..., Model]) -> Callable[..., Model]:
        _FACTORIES[name] = f
        return f

    return deco(factory) if factory is not None else deco


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _ensure_builtin()
    return sorted(_FACTORIES)


def check_model_name(name: str) -> None:
    """Raise a KeyError with close matches when no model is registered as `name` (loads nothing)."""
    _ensure_builtin()
    if name not in _FACTORIES:
        close = difflib.get_close_matches(name, list(_FACTORIES), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown model {name!r}.{hint} Known models: {', '.join(sorted(_FACTORIES))}")


def model_factory(name: str) -> Callable[..., Model]:
    """The factory registered as `name` (its signature lists the model args it takes)."""
    check_model_name(name)
    return _FACTORIES[name]


def get_model(name: str | Model, /, **kwargs: Any) -> Model:
    """Build the model registered as `name` with `kwargs` (a `Model` instance passes through).

    `name` is positional-only so a backend's own `name=` keyword (its display name) can be passed through.
    lmms-eval's model names (llava_hf, qwen2_5_vl, ...) are registered too, with the model args and defaults of
    lmms-eval's classes (`lmms_nb.models.lmms_eval_aliases`).
    """
    if not isinstance(name, str):
        return name
    factory = model_factory(name)
    _check_model_args(name, factory, kwargs)
    return factory(**kwargs)


def _check_model_args(name: str, factory: Callable[..., Model], kwargs: dict[str, Any]) -> None:
    """An argument the factory does not take is an error that lists the ones it takes (not a TypeError)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C factory: let the call decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [k for k, p in params.items()
                if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        hints = [f"{k} (did you mean {', '.join(c)}?)" if (c := difflib.get_close_matches(k, accepted, n=2)) else k
                 for k in unknown]
        raise ValueError(f"model {name!r} does not take the model arg(s) {', '.join(hints)}; "
                         f"it takes: {', '.join(accepted)}")


def _ensure_builtin() -> None:
    # Backends register themselves on import; imported lazily so `import lmms_nb` does not load torch.
    # openai_compat (httpx, asyncio) is not among them: lmms_eval_aliases registers `openai` and
    # `openai_compatible` with factories that import it when called, so local-model runs never load httpx.
    import importlib

    for mod in ("baselines", "hf", "zoo", "clip_zeroshot", "lmms_eval_aliases"):
        try:
            importlib.import_module(f"lmms_nb.models.{mod}")
        except ModuleNotFoundError as e:  # a backend module not written yet
            if e.name != f"lmms_nb.models.{mod}":
                raise
