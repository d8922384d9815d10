"""The model registry: `register_model`, `list_models`, `get_model`.

Example:
    >>> from lmms_nb.models import get_model, list_models
    >>> "majority" in list_models()
    True
"""

from __future__ import annotations

import difflib
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


def get_model(name: str | Model, /, **kwargs: Any) -> Model:
    """Build the model registered as `name` with `kwargs` (a `Model` instance passes through).

    `name` is positional-only so a backend's own `name=` keyword (its display name) can be passed through.
    """
    if not isinstance(name, str):
        return name
    _ensure_builtin()
    if name not in _FACTORIES:
        close = difflib.get_close_matches(name, list(_FACTORIES), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown model {name!r}.{hint} Known models: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[name](**kwargs)


def _ensure_builtin() -> None:
    # Backends register themselves on import; imported lazily so `import lmms_nb` does not load torch.
    import importlib

    for mod in ("baselines", "hf", "zoo", "openai_compat", "clip_zeroshot"):
        try:
            importlib.import_module(f"lmms_nb.models.{mod}")
        except ModuleNotFoundError as e:  # a backend module not written yet
            if e.name != f"lmms_nb.models.{mod}":
                raise
