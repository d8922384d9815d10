"""Python's cyclic garbage collector in the `lmms-nb` process: paused while it starts up, then the start-up's objects
are frozen.

A cold `lmms-nb eval` creates ~0.5 M long-lived objects before its first sample (torch, transformers, the model):
classes, functions, module dicts. Each full collection walks all of them, so collections during the imports, the
later ones during generation, and the last one at interpreter exit cost about a second of CPU time for nothing:
those objects live until the process ends. As the `gc.freeze` documentation advises for a process that keeps what
it built at start-up, collection is disabled while starting, and once the model is loaded everything alive is moved
to the permanent generation (never scanned, never freed before exit) and collection resumes for what the evaluation
itself allocates. Reference counting, which frees nearly everything, is unaffected; numbers and answers are too.
Garbage cycles made during start-up would stay until exit once frozen. For a tiny model they are small (tiny LLaVA
and Qwen2.5-VL: ~13 k functions, cells and tuples of imports out of ~730 k objects, no tensor). A large model's
load could leave a cycle that holds a tensor (a traceback keeping a shard's state dict, say), so when the loaded
weights are not known to be small, one full collection runs before the freeze: ~0.6 CPU-s, little against loading
that much.

Only the command line's own process does this (`lmms_nb.cli.program_main`, i.e. the `lmms-nb` program and
`python -m lmms_nb`): code that calls `main(...)` or `evaluate` in its own process (a notebook kernel included)
keeps its collector as it was.

Example:
    >>> import gc
    >>> pause_until_model_loaded(); was_enabled = gc.isenabled(); resume_with_startup_frozen()
    >>> was_enabled, gc.isenabled(), gc.get_freeze_count() > 0
    (False, True, True)
    >>> gc.unfreeze()  # an example run in a test process gives its objects back to the collector
"""

from __future__ import annotations

import gc

from typing import Any

__all__ = ["end_pause", "pause_until_model_loaded", "resume_with_startup_frozen"]

#: whether this module disabled the collector (and so must freeze and re-enable it)
_PAUSED = [False]
#: weights up to this size skip the collection before the freeze (what it could leak is bounded by such a load)
SMALL_WEIGHTS_BYTES = 256 * 2**20


def pause_until_model_loaded() -> None:
    """Disable the cyclic collector for the start-up (a no-op when something else already disabled it)."""
    if gc.isenabled():
        gc.disable()
        _PAUSED[0] = True


def resume_with_startup_frozen(model: Any = None) -> None:
    """Move every object alive now to the permanent generation and re-enable the collector, if paused here.

    The start-up's garbage is collected first unless `model` (an lmms-nb model) holds a torch module whose weights
    are under SMALL_WEIGHTS_BYTES."""
    if _PAUSED[0]:
        _PAUSED[0] = False
        weights = _weights_bytes(model)
        if weights is None or weights > SMALL_WEIGHTS_BYTES:
            gc.collect()
        gc.freeze()
        gc.enable()


def end_pause() -> None:
    """Re-enable the collector without freezing, if still paused here (a start-up that stopped before its model)."""
    if _PAUSED[0]:
        _PAUSED[0] = False
        gc.enable()


def _weights_bytes(model: Any) -> int | None:
    module = getattr(model, "model", None)
    parameters = getattr(module, "parameters", None)
    if not callable(parameters):
        return None
    try:
        return sum(p.numel() * p.element_size() for p in parameters())
    except Exception:  # noqa: BLE001 - an odd wrapper: treat its size as unknown (and collect)
        return None
