"""The verdicts of lmms-nb's CPU fast paths (`_patch_embed`, `_vision_attention`) kept on disk, so that a fresh
process does not compute both forms again to learn what an earlier process on this machine already learnt.

Each fast path is used for a key (thread count, dtype, shapes, chunk count) only where a check found it gives bit
for bit the numbers of transformers' own form. The check runs both forms on the real input and on a seeded random
tensor: in a cold Qwen2.5-VL run at one thread, a quarter of a CPU-second in the first batch, the largest first-call
cost left. Whether the forms agree depends only on the kernels PyTorch and oneDNN pick, so the verdict holds for
any later process whose environment is the same, and that is what the file records: it lives under the cache dir
(`cache_dir("fast_path_verdicts")`), one file per fast path and environment, its name a hash of that environment,
its content the environment again and a `{key: true/false}` map. The environment is everything besides the key
that can change the kernels: torch's version and build, transformers' version (its forward is the reference),
the CPU (model, ISA flags, cache sizes, core count, PyTorch's CPU capability), the oneDNN / ATen / MKL
environment variables that pick kernels, the float32 matmul precision, whether mkldnn is on, and the source of the fast path's own
module (a changed fast form must be checked again).

Never trusted beyond that: a file that is missing, unreadable, not JSON, of another format, or recorded for
another environment (copied from another machine, left by another torch) counts as empty, so the checks run
again and rewrite it. Writes go to a temporary file in the same folder, then `os.replace`, atomic on POSIX and
Windows: a reader sees the old file or the new one, never a half-written one. Two processes writing at once may
drop one's new entries (checked again later), never mix them; where two verdicts for one key disagree, false
(the plain form) wins. A cache folder that cannot be written only costs the checks.

Example:
    >>> import tempfile
    >>> store = VerdictStore(tempfile.mkdtemp(), "example", __file__)
    >>> store.get("1 thread|bfloat16|1024") is None
    True
    >>> store.put({"1 thread|bfloat16|1024": True}); store.get("1 thread|bfloat16|1024")
    True
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["VerdictStore", "environment", "forget_if_switched", "kernel_settings"]

log = logging.getLogger(__name__)

#: the file's layout; another value in a file makes it count as empty
FORMAT = 1
#: environment variables that steer which CPU kernels PyTorch, oneDNN and MKL run (ISA caps, fp math modes)
#: (thread counts are not here: the torch thread count is part of every key)
_KERNEL_ENV_PREFIXES = ("ONEDNN_", "DNNL_", "ATEN_", "MKL_CBWR", "MKL_ENABLE", "TORCH_MKLDNN")


@lru_cache(maxsize=1)
def _cpu() -> dict[str, str]:
    """The CPU as the kernels see it: model name, ISA flags, cache sizes (oneDNN blocks by them), core count."""
    info = {"machine": platform.machine(), "processor": platform.processor(), "cores": str(os.cpu_count())}
    try:
        first = Path("/proc/cpuinfo").read_text(errors="replace").split("\n\n", 1)[0]
    except OSError:  # not Linux: the processor string and torch's CPU capability must do
        first = ""
    for line in first.splitlines():
        name, _, value = line.partition(":")
        name = name.strip()
        if name in ("vendor_id", "model name", "cache size", "flags", "Features", "CPU implementer", "CPU part"):
            info[name] = " ".join(sorted(value.split())) if name in ("flags", "Features") else value.strip()
    caches = sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"))
    for path in caches:
        try:
            info[f"cache {path.parent.name}"] = path.read_text().strip()
        except OSError:
            pass
    return info


@lru_cache(maxsize=8)
def _source_digest(source_file: str) -> str:
    try:
        return hashlib.sha256(Path(source_file).read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def kernel_settings() -> str:
    """The process-wide torch switches that pick CPU kernels and can be flipped at any time (SDPA backends, the
    math backend's reduced-precision reduction, oneDNN's float32 precision, mkldnn on/off, float32 matmul
    precision): part of every verdict's key, in process and on disk, so a verdict learnt under one setting is
    never used under another (SDPA without flash runs the math kernel, which rounds differently in bfloat16)."""
    import torch

    backends = torch.backends
    return "|".join(str(value) for value in (
        backends.cuda.flash_sdp_enabled(), backends.cuda.math_sdp_enabled(),
        backends.cuda.mem_efficient_sdp_enabled(), backends.cuda.fp16_bf16_reduction_math_sdp_allowed(),
        getattr(backends, "fp32_precision", None), getattr(getattr(backends.mkldnn, "conv", None), "fp32_precision",
                                                           None),
        getattr(backends.mkldnn, "fp32_precision", None), backends.mkldnn.enabled,
        torch.get_float32_matmul_precision()))


def forget_if_switched(module: Any, checked: dict) -> None:
    """Empty a fast path's in-process verdicts `checked` when the kernel switches (`kernel_settings`) changed since
    `module` last ran: verdicts learnt under other switches say nothing about these."""
    settings = kernel_settings()
    if getattr(module, "_lmms_nb_kernel_settings", settings) != settings:
        checked.clear()
    module._lmms_nb_kernel_settings = settings


def environment(source_file: str) -> dict[str, Any]:
    """Everything besides a verdict's own key that can change it (see the module docstring), for the fast path
    computed in `source_file`."""
    import torch
    import transformers

    return {
        "format": FORMAT,
        "torch": torch.__version__,
        "torch_git": getattr(torch.version, "git_version", ""),
        "transformers": transformers.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cpu": _cpu(),
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(_KERNEL_ENV_PREFIXES)},
        "code": _source_digest(source_file),
    }


class VerdictStore:
    """The verdicts of one fast path in one folder (see the module docstring).

    Args:
        folder: where the files go (lmms-nb uses `cache_dir("fast_path_verdicts")`).
        kind: the fast path's name, the start of its file names ("patch_embed", "vision_attention").
        source_file: the module computing the fast form; its content is part of the environment.
    """

    def __init__(self, folder: str | Path, kind: str, source_file: str) -> None:
        self.folder = Path(folder)
        self.kind = kind
        self.source_file = source_file

    @classmethod
    def in_cache(cls, kind: str, source_file: str) -> VerdictStore:
        """The store under lmms-nb's cache dir (`LMMS_NB_CACHE`, default ~/.cache/lmms_nb)."""
        from lmms_nb.config import cache_dir

        try:
            folder = cache_dir("fast_path_verdicts")
        except OSError:  # a cache folder that cannot be made: reads find nothing, writes fail quietly
            folder = Path(os.environ.get("LMMS_NB_CACHE") or Path.home() / ".cache" / "lmms_nb") / "fast_path_verdicts"
        return cls(folder, kind, source_file)

    def path(self, env: dict[str, Any] | None = None) -> Path:
        """This environment's file."""
        env = env if env is not None else environment(self.source_file)
        digest = hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:20]
        return self.folder / f"{self.kind}-{digest}.json"

    def _read(self, env: dict[str, Any]) -> dict[str, bool]:
        """The file's verdicts, or {} where it is missing, unreadable, malformed or of another environment."""
        path = self.path(env)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            log.debug("fast-path verdicts %s ignored (%s): checking again", path, e)
            return {}
        verdicts = data.get("verdicts") if isinstance(data, dict) else None
        if (not isinstance(verdicts, dict) or data.get("environment") != json.loads(json.dumps(env))
                or not all(isinstance(v, bool) for v in verdicts.values())):
            log.debug("fast-path verdicts %s ignored (not this environment's, or malformed): checking again", path)
            return {}
        return verdicts

    def get(self, key: str) -> bool | None:
        """The stored verdict for `key`, or None where none is (the caller then checks)."""
        verdict = self._read(environment(self.source_file)).get(key)
        return verdict if isinstance(verdict, bool) else None

    def put(self, verdicts: dict[str, bool]) -> None:
        """Add `verdicts` to the file (atomically replaced); a failure to write is logged, never raised."""
        env = environment(self.source_file)
        merged = self._read(env)
        for key, same in verdicts.items():
            merged[key] = bool(same) and merged.get(key, True)  # two verdicts that disagree: the plain form
        path = self.path(env)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump({"environment": env, "verdicts": merged}, fh, sort_keys=True, indent=1)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as e:
            log.debug("fast-path verdicts not saved to %s (%s)", path, e)
