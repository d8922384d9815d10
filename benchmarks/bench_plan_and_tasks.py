"""The per-run costs around the model that issue #14's in-process goal met, before and after, side by side.

    python benchmarks/bench_plan_and_tasks.py [--family qwen2_5_vl] [--n 8] [--runs 30]

On benchmarks/vs_lmms_eval's run (its data, tiny model and task YAMLs; the model loaded once, one torch thread), it
times, alternating call by call in this process (so that a shared machine's load hits both alike):

- `load_tasks(folder)`: now (libyaml's C parser, each file's parse kept per process by path and content hash) vs
  before (PyYAML's pure-Python parser, every file parsed on every call);
- `plan_run` (datasets, doc ids, run identity incl. the weights' hash): now (the config's JSON reused while its state
  is the same, tensor buffers hashed without a copy) vs before (`to_json_string()` every run), in a fresh folder;
- `plan_run` in a model folder holding `--earlier-runs` runs' files whose timestamps run ahead of the clock (as
  back-to-back sub-second runs leave them): now (one listing of the folder) vs before (one listing per taken second,
  `_claim_per_second`);
- the processor call on one batch of the run (Qwen only): now (each image's patches straight into the batch's one
  tensor) vs before (transformers' `_preprocess`, then its concatenation).

and prints the median milliseconds (wall and CPU) and the ratio. "Before" is the same code with those speed-ups
switched off in place (`_before`), so both sides run on the same data in the same process.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "vs_lmms_eval"))
sys.path.insert(0, str(HERE.parent))

import run as vs  # noqa: E402  benchmarks/vs_lmms_eval/run.py: data, model and task builders
from bench_inprocess_vs_lmms_eval import _env  # noqa: E402


_SAVED: dict[str, object] = {}


def repeat_savings(on: bool) -> None:
    """Switch, for the whole process, the YAML parse (libyaml + each file's parse kept) and the config's JSON reuse
    on (lmms-nb's) or off (PyYAML's pure-Python parser on every call, `to_json_string()` every run, as before)."""
    import yaml

    from lmms_nb.runner import _weights_fingerprint
    from lmms_nb.tasks import _yaml_config

    if not _SAVED:
        _SAVED.update(loader=_yaml_config._TaskLoader, kept=_yaml_config._PARSED_MAX, json=_weights_fingerprint._config_json)
    if on:
        _yaml_config._TaskLoader, _yaml_config._PARSED_MAX = _SAVED["loader"], _SAVED["kept"]
        _weights_fingerprint._config_json = _SAVED["json"]
        return

    class PurePythonLoader(yaml.SafeLoader):
        yaml_file = Path("<string>")

    PurePythonLoader.add_constructor("!function", _yaml_config._construct_function)
    _yaml_config._TaskLoader, _yaml_config._PARSED_MAX = PurePythonLoader, 0
    _yaml_config._PARSED.clear()
    _weights_fingerprint._config_json = lambda config: config.to_json_string()


@contextlib.contextmanager
def _before(model: object):
    """The speed-ups switched off: `repeat_savings(False)`, and transformers' own `_preprocess` (with its
    concatenation) on this model's image processor."""
    repeat_savings(False)
    image_processor = getattr(model.processor, "image_processor", None)  # type: ignore[attr-defined]
    hook = vars(image_processor).pop("_preprocess", None) if image_processor is not None else None
    try:
        yield
    finally:
        repeat_savings(True)
        if hook is not None:
            image_processor._preprocess = hook


def _claim_per_second(model_dir: Path) -> str:
    """`_plan._claim_fresh_timestamp` as it was: the folder listed (globbed) once per second already taken."""
    import datetime as dt
    import os

    from lmms_nb.logs.writer import results_path

    t = dt.datetime.now()
    while True:
        stamp = t.strftime("%Y%m%d_%H%M%S")
        if not any(model_dir.glob(f"{stamp}_*")):
            try:
                os.close(os.open(results_path(model_dir, stamp), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                return stamp
            except FileExistsError:
                pass
        t += dt.timedelta(seconds=1)


def _earlier_runs(folder: Path, n: int, tasks: list[str]) -> None:
    """`n` runs' files (a results JSON and a samples file per task), one second apart, the newest 10 s ahead."""
    import datetime as dt

    start = dt.datetime.now() + dt.timedelta(seconds=10 - n)
    for i in range(n):
        stamp = (start + dt.timedelta(seconds=i)).strftime("%Y%m%d_%H%M%S")
        (folder / f"{stamp}_results.json").write_text("{}")
        for task in tasks:
            (folder / f"{stamp}_samples_{task}.jsonl").write_text("")


def _time(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=("qwen2_5_vl", "llava"), default="qwen2_5_vl")
    parser.add_argument("--n", type=int, default=8, help="docs per task (default 8, as the issue's run)")
    parser.add_argument("--runs", type=int, default=30, help="timed calls per side; medians are printed")
    parser.add_argument("--earlier-runs", type=int, default=300,
                        help="runs already in the model folder for the second plan_run line (default 300)")
    args = parser.parse_args()
    _env()
    import torch

    from lmms_nb import __version__
    from lmms_nb.models import get_model
    from lmms_nb.models._hf_inputs import as_rgb
    from lmms_nb.models.base import Request
    from lmms_nb.runner._distributed import Distributed
    from lmms_nb.runner._plan import plan_run
    from lmms_nb.tasks.yaml_loader import load_tasks

    torch.set_num_threads(1)
    name = "llava_hf" if args.family == "llava" else args.family
    tasks_dir = vs.write_tasks(vs.build_data(args.n))
    model = get_model(name, pretrained=str(vs.build_model("zoo", args.family)), device_map="cpu", device="cpu")
    tasks = load_tasks(tasks_dir, model_type=name)
    out = Path(tempfile.mkdtemp(prefix="bench_plan_"))

    def plan(output_dir: Path | None = None) -> None:
        plan_run(model, tasks, limit=None, seed=0, output_dir=output_dir or Path(tempfile.mkdtemp(dir=out)),
                 resume=False, dist=Distributed(), version=__version__).release()

    from lmms_nb.logs.writer import sanitize_model_name
    from lmms_nb.runner import _plan

    busy = out / "busy"
    (busy / sanitize_model_name(model.name)).mkdir(parents=True)
    _earlier_runs(busy / sanitize_model_name(model.name), args.earlier_runs, [t.name for t in tasks])
    new_claim = _plan._claim_fresh_timestamp

    @contextlib.contextmanager
    def claim_before(_model: object):
        _plan._claim_fresh_timestamp = _claim_per_second
        try:
            yield
        finally:
            _plan._claim_fresh_timestamp = new_claim

    task = tasks[0]
    docs = [task.dataset()[i] for i in range(4)]
    requests = [Request(doc_id=i, task=task.name, images=list(task.doc_to_visual(doc)), prompt=task.doc_to_text(doc))
                for i, doc in enumerate(docs)]
    images = [as_rgb(image, req, k, model.style.image_transform) for req in requests
              for k, image in enumerate(req.images)]
    texts = [model._prompt(req) for req in requests]

    def processor() -> None:
        model.processor(text=texts, images=images, padding=True, return_tensors="pt",
                        **dict(model.style.image_processor_kwargs))

    stages = {"load_tasks (2 task YAMLs + include)": (lambda: load_tasks(tasks_dir, model_type=name), _before),
              "plan_run (datasets, run identity)": (plan, _before),
              f"plan_run, folder of {args.earlier_runs} runs ahead": (lambda: plan(busy), claim_before)}
    if getattr(model.processor, "image_processor", None) is not None and "_preprocess" in vars(
            model.processor.image_processor):
        stages["processor call (one batch of 4 images)"] = (processor, _before)
    for fn, before_of in stages.values():  # warm both sides: imports, first-call checks, the OS file cache
        fn()
        with before_of(model):
            fn()
    try:
        _print_stages(stages, args, model)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _print_stages(stages: dict, args: argparse.Namespace, model: object) -> None:
    print(f"{args.family}, 1 thread, {args.n} docs x 2 tasks; median of {args.runs} alternating calls "
          f"(ms; wall / CPU)")
    print(f"  {'':42} {'before':>15} {'now':>15} {'ratio (wall, CPU)':>20}")
    for label, (fn, before_of) in stages.items():
        before, now = [], []
        for _ in range(args.runs):
            with before_of(model):
                before.append(_time(fn))
            now.append(_time(fn))
        b = [statistics.median(t[i] for t in before) * 1000 for i in (0, 1)]
        a = [statistics.median(t[i] for t in now) * 1000 for i in (0, 1)]
        print(f"  {label:42} {b[0]:6.2f} / {b[1]:6.2f} {a[0]:6.2f} / {a[1]:6.2f} "
              f"{b[0] / a[0]:8.2f}x {b[1] / a[1]:6.2f}x")


if __name__ == "__main__":
    main()
