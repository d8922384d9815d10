"""Where lmms-nb's cold-start CPU time goes, stage by stage: one more cold run of `python -m lmms_nb ARGV` in a fresh
process, with process-CPU timers around the stages (measurement only: each wrapper calls the original and returns
its result unchanged).

    python benchmarks/vs_lmms_eval/_stages.py --model qwen2_5_vl --model_args ... (lmms-eval's argv)

prints one JSON line: {stage: [CPU s, wall s]} for

- `floor`: interpreter start + the import floor both tools pay (_timing.IMPORT_FLOOR, imported first here, with
  the garbage collector paused as `lmms-nb` pauses it: lmms_nb/_cli_gc.py, and transformers' import structure
  read from the cache dir as `lmms-nb` reads it: lmms_nb/_cli_import_cache.py);
- `cli`: lmms-nb's command line itself (flags parsed, ...);
- `imports`: every module imported for the first time after the floor, whichever stage imports it (lmms-nb's own
  modules, polars, yaml, the model family's transformers code, ...);
- `plan`: model-name check, task YAMLs resolved, datasets opened (before any model loads);
- `processor load`, `weights load`: AutoProcessor / AutoModelForImageTextToText.from_pretrained;
- `model rest`: the rest of building the model;
- `generate`: transformers' `generate` (the model's forward passes);
- `preprocess + decode`: chat template, image resize, the processor's tensors, decoding (the backend's batch minus
  `generate`);
- `runner`: the rest of `evaluate` (requests, filters, metrics, run identity, sample lines and results JSON);
- `report`: printing the scores table after the run;
- `total`: everything up to the end of `main`;
- `teardown` (from `stage_times`, which runs this file in a child): the child's CPU time as its parent counts it
  minus `total`: the exit, which ends as the program's does (exit handlers, then no interpreter teardown:
  lmms_nb/_cli_exit.py).

The floor is imported before lmms-nb so the stages after it hold only lmms-nb's own cost above it.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import IMPORT_FLOOR  # noqa: E402

STAGES = ("floor", "cli", "imports", "plan", "processor load", "weights load", "model rest", "generate",
          "preprocess + decode", "runner", "report", "total")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stage_times(python: str, argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, list[float]]:
    """{stage: [CPU s, wall s]} of one cold lmms-nb run of `argv` (lmms-eval's argv), `teardown` included."""
    cpu = _children_cpu_s()
    proc = subprocess.run([python, str(Path(__file__).resolve()), *argv], capture_output=True, text=True, env=env,
                          cwd=str(cwd), check=False)
    parent_cpu = _children_cpu_s() - cpu
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise SystemExit(f"the stage-timed lmms-nb run failed ({proc.returncode}):\n{tail}")
    stages = json.loads(lines[-1])
    stages["teardown"] = [round(parent_cpu - stages["total"][0], 3), 0.0]
    return stages


def print_stage_times(stages: dict[str, list[float]], floor_cpu: float) -> None:
    """The table: each stage's CPU and wall seconds; the stages above the floor summed."""
    above = sum(cpu for name, (cpu, _) in stages.items() if name not in ("floor", "total"))
    print(f"\nlmms-nb cold run, stage by stage (one more run, timers around each stage; {_load()} load average)")
    print(f"  {'stage':22} {'CPU s':>7} {'wall s':>7}")
    for name, (cpu, wall) in stages.items():
        if name != "total":
            print(f"  {name:22} {cpu:7.2f} {wall:7.2f}")
    print(f"  {'total (incl. teardown)':22} {stages['total'][0] + stages['teardown'][0]:7.2f} "
          f"{stages['total'][1]:7.2f}")
    print(f"  above the floor: {above:.2f} CPU s; the floor imported in lmms-nb's process (collector paused): "
          f"{stages['floor'][0]:.2f} CPU s, imported plainly in its venv: {floor_cpu:.2f}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class StageClock:
    """(CPU s, wall s) per stage, each moment charged to the innermost stage running (so stages never overlap)."""

    def __init__(self, first: str) -> None:
        self.cpu: dict[str, float] = {s: 0.0 for s in STAGES}
        self.wall: dict[str, float] = {s: 0.0 for s in STAGES}
        self.stack = [first]
        self.mark = (time.process_time(), time.perf_counter())

    def _charge(self) -> None:
        now = (time.process_time(), time.perf_counter())
        self.cpu[self.stack[-1]] += now[0] - self.mark[0]
        self.wall[self.stack[-1]] += now[1] - self.mark[1]
        self.mark = now

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._charge()
            self.stack.append(stage)
            try:
                return fn(*args, **kwargs)
            finally:
                self._charge()
                self.stack.pop()
        return timed


def main(argv: list[str]) -> dict[str, list[float]]:
    import importlib._bootstrap as bootstrap

    from lmms_nb._cli_gc import pause_until_model_loaded
    from lmms_nb._cli_import_cache import install

    pause_until_model_loaded()  # what `lmms-nb` does first (cli.main); the floor's imports then run as they do there
    install()  # and transformers' import structure from the cache dir, as the program does
    exec(IMPORT_FLOOR, {})  # noqa: S102 - the floor's fixed import lines
    clock = StageClock("cli")
    clock.cpu["floor"], clock.wall["floor"] = clock.mark[0], clock.mark[1] - START_WALL
    # every first-time import from here on (import statements and importlib.import_module both go through
    # _find_and_load, looked up on the module at each import)
    bootstrap._find_and_load = clock.wrap("imports", bootstrap._find_and_load)

    import lmms_nb._cli_eval as cli_eval
    import lmms_nb.cli as cli
    import lmms_nb.models as models
    import lmms_nb.runner as runner
    import transformers
    from transformers.generation.utils import GenerationMixin

    from lmms_nb.models.hf import HFImageTextModel

    for auto, stage in (("AutoProcessor", "processor load"), ("AutoModelForImageTextToText", "weights load")):
        cls = getattr(transformers, auto)
        setattr(cls, "from_pretrained", classmethod(clock.wrap(stage, cls.from_pretrained.__func__)))
    models.get_model = clock.wrap("model rest", models.get_model)
    GenerationMixin.generate = clock.wrap("generate", GenerationMixin.generate)
    HFImageTextModel._generate_batch = clock.wrap("preprocess + decode", HFImageTextModel._generate_batch)
    runner.evaluate = clock.wrap("runner", runner.evaluate)
    cli_eval._plan = clock.wrap("plan", cli_eval._plan)
    cli_eval._execute = clock.wrap("report", cli_eval._execute)  # its own share: printing the scores

    sys.argv = ["lmms-nb", *argv]
    status = cli.main()  # as the program calls it (the start-up's garbage collection: lmms_nb/_cli_gc.py)
    clock._charge()
    if status:
        raise SystemExit(f"lmms-nb exited with status {status}")
    clock.cpu["total"], clock.wall["total"] = clock.mark[0], clock.mark[1] - START_WALL
    return {s: [round(clock.cpu[s], 3), round(clock.wall[s], 3)] for s in STAGES}


if __name__ == "__main__":
    START_WALL = time.perf_counter() - time.process_time()  # the interpreter's start, as well as one can tell
    print(json.dumps(main(sys.argv[1:])), flush=True)
    from lmms_nb._cli_exit import exit_program

    exit_program(0)  # as the program ends (lmms_nb.cli.program): no interpreter teardown
