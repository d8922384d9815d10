"""Models: the `Model` protocol, the registry, and the built-in backends."""

from lmms_nb.models.base import Model, Request, Response
from lmms_nb.models.registry import get_model, list_models, register_model

__all__ = ["Model", "Request", "Response", "get_model", "list_models", "register_model"]
