"""Python's cyclic garbage collector in the `lmms-nb` process: paused while it starts up, then the start-up's objects
are frozen.

A cold `lmms-nb eval` creates ~0.5 M long-lived objects before its first sample (torch, transformers, the model):
classes, functions, module dicts. Each full collection walks all of them, so collections during the imports, the
later ones during generation, and the last one at interpreter exit cost about a second of CPU time for nothing:
those objects live until the process ends. As the `gc.freeze` documentation advises for a process that keeps what
it built at start-up, collection is disabled while starting, and once the model is loaded everything alive is moved
to the permanent generation (never scanned, never freed before exit) and collection resumes for what the evaluation
itself allocates. Reference counting, which frees nearly everything, is unaffected; numbers and answers are too.
The price: garbage cycles made during start-up stay until exit (for the tiny LLaVA, 13 k small objects out of
730 k: functions, cells, tuples of imports; no tensor).

Only the command line's own process does this (`lmms_nb.cli.main()` called without argv, i.e. the `lmms-nb`
program and `python -m lmms_nb`): code that calls `main([...])` or `evaluate` in its own process keeps its
collector as it was.

Example:
    >>> import gc
    >>> pause_until_model_loaded(); was_enabled = gc.isenabled(); resume_with_startup_frozen()
    >>> was_enabled, gc.isenabled(), gc.get_freeze_count() > 0
    (False, True, True)
    >>> gc.unfreeze()  # an example run in a test process gives its objects back to the collector
"""

from __future__ import annotations

import gc

__all__ = ["pause_until_model_loaded", "resume_with_startup_frozen"]

#: whether this module disabled the collector (and so must freeze and re-enable it)
_PAUSED = [False]


def pause_until_model_loaded() -> None:
    """Disable the cyclic collector for the start-up (a no-op when something else already disabled it)."""
    if gc.isenabled():
        gc.disable()
        _PAUSED[0] = True


def resume_with_startup_frozen() -> None:
    """Move every object alive now to the permanent generation and re-enable the collector, if paused here."""
    if _PAUSED[0]:
        _PAUSED[0] = False
        gc.freeze()
        gc.enable()
