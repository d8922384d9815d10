"""The cold-start part of the vs-lmms-eval benchmark: both tools' command lines run in fresh processes, alternating,
`repeat` times; medians of wall and CPU time (user + system of the child: on a shared machine the wall time also
counts waiting for a core, the CPU time only the tool's own work), and the import floor both tools pay.

The floor is what any evaluation of a transformers VLM imports before doing work: torch, and transformers'
model and image-processor stack (which imports torchvision for the fast image processors, and torchvision imports
torch._dynamo). `datasets` is timed apart: lmms-eval imports it on every run, lmms-nb only when a task's data is
not a prepared `save_to_disk` folder (lmms_nb/tasks/_saved_splits.py).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

__all__ = ["IMPORT_FLOOR", "ColdTimes", "cold_runs", "floor_times", "print_cold_times"]

IMPORT_FLOOR = ("import torch\n"
                "from transformers import AutoModelForImageTextToText, AutoProcessor\n"
                "import transformers.image_processing_utils, transformers.modeling_utils\n")
DATASETS = "import datasets\n"


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one child process that must succeed."""
    cpu, start = _children_cpu_s(), time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=str(cwd))
    return time.perf_counter() - start, _children_cpu_s() - cpu


class ColdTimes:
    """Wall and CPU seconds of each cold run, per tool."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def add(self, tool: str, wall: float, cpu: float) -> None:
        self.wall.setdefault(tool, []).append(wall)
        self.cpu.setdefault(tool, []).append(cpu)

    def median(self, tool: str, what: str = "wall") -> float:
        return statistics.median(getattr(self, what)[tool])


def floor_times(pythons: dict[str, str], env: dict[str, str], cwd: Path, repeat: int) -> dict[str, ColdTimes]:
    """Median-able times of the import floor and of `import datasets` in each tool's interpreter (the first run of
    each is a warm-up of the OS file cache: two separate installs of torch)."""
    out = {"floor": ColdTimes(), "datasets": ColdTimes()}
    for tool, python in pythons.items():
        timed([python, "-c", IMPORT_FLOOR + DATASETS], env, cwd)
        for _ in range(repeat):
            out["floor"].add(tool, *timed([python, "-c", IMPORT_FLOOR], env, cwd))
            with_datasets = timed([python, "-c", IMPORT_FLOOR + DATASETS], env, cwd)
            out["datasets"].add(tool, *(a - b for a, b in zip(with_datasets, (out["floor"].wall[tool][-1],
                                                                            out["floor"].cpu[tool][-1]))))
    return out


def cold_runs(runs: dict[str, Callable[[], tuple[float, float, Any]]], repeat: int) -> tuple[ColdTimes, dict[str, Any]]:
    """Each tool's run `repeat` times, alternating; `runs[tool]()` returns (wall s, CPU s, its results file).
    Returns the times and each tool's last results file."""
    times, results = ColdTimes(), {}
    for _ in range(max(1, repeat)):
        for tool, run in runs.items():
            wall, cpu, results[tool] = run()
            times.add(tool, wall, cpu)
    return times, results


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_cold_times(times: ColdTimes, floor: dict[str, ColdTimes], warm_s: float, load_before: str) -> None:
    """The wall and CPU medians, the ratios, and the floor both tools pay."""
    n = len(times.wall["lmms-eval"])
    ew, nw = times.median("lmms-eval"), times.median("lmms-nb")
    ec, nc = times.median("lmms-eval", "cpu"), times.median("lmms-nb", "cpu")
    print(f"\ncold start, one CPU thread each: medians of {n} run(s) per tool, alternating "
          f"(load average before {load_before}, after {_load()})")
    print(f"  {'':34} {'wall s':>8} {'CPU s':>8}   all wall / all CPU")
    for tool in ("lmms-eval", "lmms-nb"):
        print(f"  {tool + ', cold process':34} {times.median(tool):8.1f} {times.median(tool, 'cpu'):8.1f}   "
              f"{' '.join(f'{x:.1f}' for x in times.wall[tool])} / {' '.join(f'{x:.1f}' for x in times.cpu[tool])}")
    print(f"  lmms-nb cold is {ew / nw:.2f}x faster in wall time, {ec / nc:.2f}x less CPU time")
    print(f"  lmms-nb in-process (warm model): {warm_s:.1f} s wall, {ew / warm_s:.1f}x faster than lmms-eval cold")
    fe, fn = floor["floor"].median("lmms-eval", "cpu"), floor["floor"].median("lmms-nb", "cpu")
    de, dn = floor["datasets"].median("lmms-eval", "cpu"), floor["datasets"].median("lmms-nb", "cpu")
    print(f"  import floor both pay (torch, transformers' model + image stack incl. torchvision and torch._dynamo), "
          f"CPU s: {fe:.1f} in lmms-eval's venv, {fn:.1f} in lmms-nb's; `import datasets` on top: {de:.1f} / {dn:.1f} "
          "(lmms-eval always imports it, lmms-nb not for a prepared save_to_disk folder)")
    print(f"  CPU above each venv's floor: lmms-eval {ec - fe:.1f} s, lmms-nb {nc - fn:.1f} s (the lmms-nb program "
          f"imports the floor for less: collector paused, transformers' import map cached); "
          f"ratio at lmms-nb = plain floor alone: {ec / fn:.2f}x")
