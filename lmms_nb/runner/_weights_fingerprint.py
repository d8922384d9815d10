"""The fingerprint of a torch module: its config, its generation config and its weights (see `weights_fingerprint`).

Part of a run's identity (`_identity.run_identity`): a run resumes only an earlier run of the same weights and the
same configuration. Split from `_identity` because it is the one part that knows about torch and transformers.

Example:
    >>> import torch
    >>> m = torch.nn.Linear(2, 2)
    >>> before = weights_fingerprint(m)
    >>> with torch.no_grad():
    ...     _ = m.weight.add_(1)
    >>> weights_fingerprint(m) != before
    True
"""

from __future__ import annotations

import hashlib
import sys
import weakref
from typing import Any

__all__ = ["weights_fingerprint"]


def weights_fingerprint(module: Any) -> str:
    """A hash of a torch module's config, generation config and weights: every tensor's name, shape and dtype, and
    its values (whole for tensors up to 64k elements; for larger ones an even sample of 64k values plus their sum),
    so it costs well under a second even for a 7B model on a GPU.

    The generation config (transformers' `model.generation_config`) counts because `generate` reads it for what a
    task does not pass: repetition_penalty, no_repeat_ngram_size, eos_token_id... change the answers.

    >>> import torch
    >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    >>> weights_fingerprint(a) == weights_fingerprint(a) != weights_fingerprint(b)
    True
    """
    import torch

    h = hashlib.sha256()
    config = getattr(module, "config", None)
    if config is not None and hasattr(config, "to_json_string"):
        h.update(_config_json(config).encode())
    generation = getattr(module, "generation_config", None)
    if generation is not None and hasattr(generation, "to_json_string"):
        # only a module that has one hashes it: a fingerprint without one is what it was before
        h.update(b"generation_config|" + _config_json(generation).encode())
    # every run hashes the values again: no cheaper sign of an in-place edit is reliable (`p.data.add_()` leaves
    # the Parameter's `_version` as it was, and numpy views of a tensor bypass torch altogether)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            flat = tensor.detach().reshape(-1)
            h.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
            if flat.numel() > 65536:
                step = flat.numel() // 65536
                h.update(repr(float(flat.double().sum())).encode())
                flat = flat[::step]
            h.update(flat.cpu().contiguous().view(torch.uint8).numpy())  # the buffer itself: no bytes copy
    return h.hexdigest()[:16]


#: id(config) -> (a weak reference to it, its `_config_state`, its `to_json_string()`)
_CONFIG_JSON: dict[int, tuple[Any, list[Any], str]] = {}


def _config_json(config: Any) -> str:
    """`config.to_json_string()`, reused while the config's state (`_config_state`) is the same: transformers builds
    a default config to diff against on every call (1.6 ms for a tiny Qwen2.5-VL, 50x the state walk)."""
    state: list[Any] = []
    if not _config_state(config, state):
        return config.to_json_string()
    kept = _CONFIG_JSON.get(id(config))
    if kept is not None and kept[0]() is config and kept[1] == state:
        return kept[2]
    text = config.to_json_string()
    key = id(config)
    try:
        ref = weakref.ref(config, lambda _: _CONFIG_JSON.pop(key, None))
    except TypeError:
        return text
    _CONFIG_JSON[key] = (ref, state, text)
    return text


def _config_state(value: Any, out: list[Any]) -> bool:
    """Append every value a config holds (its attributes, sub-configs' too) to `out`, each with its type (1, 1.0
    and True compare equal, their JSON does not); False for a value this cannot compare exactly (then no reuse)."""
    kind = type(value)
    if kind in (str, int, bool, type(None)):
        out.append((kind, value))
    elif kind is float:
        out.append((kind, repr(value)))  # -0.0 == 0.0 and nan != nan: compare the text
    elif kind in (list, tuple, dict):
        out.append((kind, len(value)))
        items = value.items() if kind is dict else enumerate(value)
        for key, item in items:
            out.append((type(key), key))
            if not _config_state(item, out):
                return False
    elif "torch" in sys.modules and isinstance(value, sys.modules["torch"].dtype):
        out.append(("dtype", str(value)))
    elif callable(getattr(value, "to_json_string", None)) and hasattr(value, "__dict__"):
        out.append(("config", type(value).__module__, type(value).__qualname__))
        return _config_state(vars(value), out)
    else:
        return False
    return True
