"""Models: the `Model` protocol, the registry, and the built-in backends."""

from lmms_nb.models.base import Model, Request, Response
from lmms_nb.models.registry import get_model, list_models, register_model

__all__ = ["Model", "Request", "Response", "get_model", "list_models", "register_model", "OpenAIChatModel",
           "CLIPZeroShotModel", "HFImageTextModel", "FunctionModel", "MajorityModel"]

_LAZY = {
    "OpenAIChatModel": "lmms_nb.models.openai_compat",
    "CLIPZeroShotModel": "lmms_nb.models.clip_zeroshot",
    "HFImageTextModel": "lmms_nb.models.hf",
    "FunctionModel": "lmms_nb.models.baselines",
    "MajorityModel": "lmms_nb.models.baselines",
}


def __getattr__(name: str):
    # backends import torch/httpx; loaded only when asked for
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
