"""glibc's malloc told to keep the memory a CPU forward pass frees, for the next pass to reuse: the same computation
without the page faults.

A CPU forward pass allocates and frees tensors of a few MB over and over (Qwen2.5-VL's patches, float32 copies in its
norms and rotary embedding, attention outputs). glibc serves an allocation above its mmap threshold with a fresh
`mmap` and hands the top of its heap back to the kernel once more than its trim threshold is free there; either way the
memory comes back as new zeroed pages, one minor page fault per 4 KiB touched. Both thresholds start at 128 KiB and a
"dynamic" rule raises them (the mmap one to the size of a freed mmapped block larger than it, up to 32 MiB on 64-bit;
the trim one to twice that), so where a process ends up depends on the order of its allocations and frees: on
`benchmarks/bench_inprocess_vs_lmms_eval.py`'s run (`--malloc-ab` runs each setting in fresh processes and prints
the faults per run) some processes settle with a few dozen faults per run, others keep tens of thousands, with their
system time and cache misses (6 pairs, one thread: 19,626-34,828 faults and 0.440-0.463 s of CPU per run, the least
of 7, in 3 of 6 processes; 47-78 faults and 0.380-0.419 s in the other 3; pinned, 47-54 faults and 0.382-0.426 s in
all 6).
`keep_freed_memory` pins the thresholds where the dynamic rule can at most take them, 32 MiB and 64 MiB, from the start.

The numbers stay the same by construction: only where freed memory goes changes; every kernel gets the same inputs
in the same order. The cost: up to 64 MiB of freed heap the process keeps instead of returning it; blocks of 32 MiB
and more (model weights) still get their own mapping, returned when freed. Only glibc has these knobs (musl, macOS:
nothing is done), and `LMMS_NB_KEEP_FREED_MEMORY=0` leaves malloc alone. lmms-nb's transformers backend calls it once
its model is on the CPU.

Example:
    >>> import os, platform
    >>> keep_freed_memory() == (platform.libc_ver()[0] == "glibc" and os.environ.get(OPT_OUT_ENV) != "0")
    True
"""

from __future__ import annotations

import logging
import os
from typing import Any

__all__ = ["MMAP_THRESHOLD", "OPT_OUT_ENV", "TRIM_THRESHOLD", "keep_freed_memory"]

log = logging.getLogger(__name__)

#: glibc's `mallopt` parameter numbers (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: the dynamic rule's ceiling for the mmap threshold on 64-bit (glibc's DEFAULT_MMAP_THRESHOLD_MAX) ...
MMAP_THRESHOLD = 32 << 20
#: ... and the trim threshold it sets beside it (twice the mmap threshold)
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
#: set to "0" to leave malloc as glibc configures it
OPT_OUT_ENV = "LMMS_NB_KEEP_FREED_MEMORY"

_done: list[bool] = []  # the process-wide outcome, once decided (malloc's settings are the whole process's)


def _glibc() -> Any:
    """The process's own C library if it is glibc (it has `gnu_get_libc_version` and `mallopt`), else None."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):  # no dlopen of the running process (Windows: CDLL(None) is refused)
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def keep_freed_memory() -> bool:
    """Pin glibc's mmap threshold at `MMAP_THRESHOLD` and its trim threshold at `TRIM_THRESHOLD` (see the module
    docstring), once per process. Returns whether they are pinned: False when `LMMS_NB_KEEP_FREED_MEMORY=0`, when
    the C library is not glibc, or when glibc refused a value."""
    if os.environ.get(OPT_OUT_ENV, "1").strip() == "0":
        return False
    if not _done:
        libc = _glibc()
        pinned = (libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                  and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
        log.debug("malloc thresholds %s", "pinned (32 MiB mmap, 64 MiB trim)" if pinned else "left alone (no glibc)")
        _done.append(pinned)
    return _done[0]
