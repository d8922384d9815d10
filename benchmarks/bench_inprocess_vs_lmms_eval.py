"""Where lmms-nb's in-process time goes on benchmarks/vs_lmms_eval's run, with the model already loaded.

    python benchmarks/bench_inprocess_vs_lmms_eval.py [--family qwen2_5_vl llava] [--n 8] [--batch-size 4]
        [--runs 7] [--threads 1 0] [--lmms-eval-python PATH] [--rounds 1] [--baseline] [--malloc-ab N]

The same data, tiny model and task YAMLs as `benchmarks/vs_lmms_eval/run.py` (built by its helpers), and the same
timed call: `evaluate(model, load_tasks(...), batch_size=B)` after a warm-up run. For each family and thread
count (0: torch's default) it prints the median wall and CPU seconds (this process's user + system time, which
other jobs on a shared machine do not inflate) of `--runs` runs, then one cProfile run split into stages:
task loading, planning and log writing (the runner), prompts (chat template), image resize (qwen_vl_utils
style), the processor (image preprocessing + tokenization), the vision tower (its conv3d patch embedding apart)
and the language model's generation, with the vision tower's attention modules (lmms-nb's batched form,
`lmms_nb.models._vision_attention`) a stage of their own. With `--lmms-eval-python` it also times lmms-eval
0.7.3's cold command line once (wall and CPU) and prints the in-process ratios against it, wall and CPU. With
`--rounds R` (with `--lmms-eval-python`) it repeats that pair R times, lmms-eval's cold run then the in-process
runs, and prints each round's ratios and their median: one cold run of either tool can be 1.5x off on a shared
host, so a single pair can land either side of a 30x line (measured: 27.3x-35.2x in four pairs within 3 minutes). With
`--baseline` it also times, in the same process and alternating run by run (so that a shared machine's load hits
both alike), a second copy of the model with issue #14's in-process speed-ups undone (`undo_speed_ups`, and
`speed_ups(False)` for the process-wide ones). One speed-up is not undone there: glibc's malloc thresholds, pinned
process-wide once a model is on the CPU (`lmms_nb.models._hf_malloc`: freed memory kept for reuse instead of coming back
as fresh zeroed pages) and impossible to put back as glibc's own dynamic rule had them; `--malloc-ab N` measures it in
N pairs of fresh processes, malloc as glibc sets it (LMMS_NB_KEEP_FREED_MEMORY=0) then pinned, alternating, and prints
CPU, wall and the minor page faults per run of each (every mode prints the faults per run). `--probe` times, after each
in-process run, `bench_host_speed.probe()` (a fixed Python loop and bf16 matmuls: no model, no allocation) and prints
its medians per round: the in-process time's two modes (~0.46 and ~0.62 s on a 2-vCPU cloud guest) are the
machine's, the probe slowing alike (`bench_host_speed.py` shows it run by run).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "vs_lmms_eval"))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_host_speed  # noqa: E402  the fixed-work probe of the machine's speed
import run as vs  # noqa: E402  benchmarks/vs_lmms_eval/run.py: data, model and task builders

#: stage -> (file name part, function name) whose cumulative time is the stage's, in the order printed
STAGES = {
    "load_tasks (YAML -> Task)": ("yaml_loader.py", "load_tasks"),
    "plan_run (datasets, identity)": ("_plan.py", "plan_run"),
    "model side (HFImageTextModel._generate_batch)": ("hf.py", "_generate_batch"),
    "  chat template (_prompt)": ("hf.py", "_prompt"),
    "  image resize (fetch_image)": ("_qwen_resize.py", "fetch_image"),
    "  processor call": ("/processing_utils.py", "__call__"),  # not image_processing_utils.py
    "    of which images": ("processing_utils.py", "_process_images"),
    "  model.generate": ("generation/utils.py", "generate"),
    "    vision tower": (None, "get_image_features"),
    "      patch embedding conv3d": ("~", "<built-in method torch.conv3d>"),
    "      attention (batched runs of windows)": ("_vision_attention.py", "_forward"),
    "    scaled_dot_product_attention": ("~", "<built-in method torch._C._nn.scaled_dot_product_attention>"),
    "score_batch (filters, metrics)": ("_score.py", "score_batch"),
    "log writes (SampleLogWriter.write)": ("writer.py", "write"),
}


def _env() -> None:
    os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                      TOKENIZERS_PARALLELISM="false")
    os.environ.setdefault("LMMS_NB_CACHE", str(vs.WORK / "cache"))


def stage_seconds(stats: pstats.Stats) -> dict[str, float]:
    """Cumulative seconds of each STAGES function (summed over its matches)."""
    out = dict.fromkeys(STAGES, 0.0)
    for (filename, _, func), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        for stage, (file_part, name) in STAGES.items():
            if func == name and (file_part is None or file_part in filename):
                out[stage] += cumulative
    return out


def undo_speed_ups(model: object) -> None:
    """Take back, on this model, the in-process speed-ups of issue #14: Qwen's vision attention back to
    transformers' per-chunk loop, its image processor's patchify back to float32 and its `_preprocess` back to
    transformers' own (with the concatenation), its processor's text side back to transformers' (`_qwen_text`);
    `speed_ups(False)` takes back the process-wide ones (the samples log's fsync in line, YAML parsed with no parse
    kept, the config's JSON built every run)."""
    from lmms_nb.logs.writer import SampleLogWriter
    from lmms_nb.models import _qwen_text

    for module in model.model.modules():  # type: ignore[attr-defined]
        if hasattr(module, "_lmms_nb_batched_checked"):
            del module.forward
    image_processor = getattr(model.processor, "image_processor", None)  # type: ignore[attr-defined]
    for hook in ("patchify", "_preprocess"):
        if image_processor is not None and hook in vars(image_processor):
            delattr(image_processor, hook)
    _qwen_text._VERDICTS[model.processor] = False  # type: ignore[attr-defined]
    SampleLogWriter._sync = lambda self, fsync: fsync()  # type: ignore[method-assign]


def speed_ups(on: bool) -> None:
    """The process-wide speed-ups on (lmms-nb's) or off (as before them): the samples log's background fsync, and
    the YAML parses and the config's JSON kept between runs (`bench_plan_and_tasks.repeat_savings`)."""
    from bench_plan_and_tasks import repeat_savings

    from lmms_nb.logs.writer import SampleLogWriter

    SampleLogWriter._sync = _BACKGROUND_SYNC if on else (lambda self, fsync: fsync())  # type: ignore[method-assign]
    repeat_savings(on)


def measure(family: str, *, n: int, batch_size: int, runs: int, threads: int) -> dict[str, object]:
    import torch

    from lmms_nb.models import get_model
    from lmms_nb.runner import evaluate
    from lmms_nb.tasks.yaml_loader import load_tasks

    torch.set_num_threads(threads or DEFAULT_THREADS)
    name = "llava_hf" if family == "llava" else family
    data = vs.build_data(n)
    model_path = vs.build_model("zoo", family)
    tasks_dir = vs.write_tasks(data)
    model = get_model(name, pretrained=str(model_path), device_map="cpu", device="cpu")
    evaluate(model, load_tasks(tasks_dir, model_type=name), output_dir=vs.WORK / "out_warmup", limit=2,
             progress=False, resume=False)

    def once() -> tuple[float, float, int]:
        faults, wall, cpu = _minor_faults(), time.perf_counter(), time.process_time()
        evaluate(model, load_tasks(tasks_dir, model_type=name), output_dir=vs.WORK / "out_bench_inprocess",
                 batch_size=batch_size, progress=False, resume=False)
        return time.perf_counter() - wall, time.process_time() - cpu, _minor_faults() - faults

    timings, baseline, probes = [], [], []
    if BASELINE:  # the same model without this session's speed-ups, its runs alternating with the others
        plain = get_model(name, pretrained=str(model_path), device_map="cpu", device="cpu")
        undo_speed_ups(plain)
        evaluate(plain, load_tasks(tasks_dir, model_type=name), output_dir=vs.WORK / "out_warmup", limit=2,
                 progress=False, resume=False)
    for _ in range(runs):
        if BASELINE:
            model, kept = plain, model
            speed_ups(False)
            baseline.append(once())
            model = kept
            speed_ups(True)
        timings.append(once())
        if PROBE:
            probes.append(bench_host_speed.probe())
    profiler = cProfile.Profile()
    profiler.enable()
    profiled_wall = once()[0]
    profiler.disable()
    out = {"wall": statistics.median(t[0] for t in timings), "cpu": statistics.median(t[1] for t in timings),
           "faults": statistics.median(t[2] for t in timings), "cpu_min": min(t[1] for t in timings),
           "walls": [t[0] for t in timings], "stages": stage_seconds(pstats.Stats(profiler)),
           "profiled": profiled_wall, "threads": torch.get_num_threads(),
           "probe": [statistics.median(p[k] for p in probes) for k in (0, 1)] if probes else None}
    if baseline:
        out["baseline"] = {"wall": statistics.median(t[0] for t in baseline),
                           "cpu": statistics.median(t[1] for t in baseline), "walls": [t[0] for t in baseline]}
    return out


def _minor_faults() -> int:
    """This process's minor page faults so far (fresh zeroed pages: what `_hf_malloc.keep_freed_memory` avoids)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def malloc_ab(args: argparse.Namespace, family: str, threads: int) -> None:
    """`--malloc-ab N`: N pairs of fresh processes, each timing `--runs` in-process runs, glibc's malloc left as it
    configures itself (LMMS_NB_KEEP_FREED_MEMORY=0) then pinned (`lmms_nb.models._hf_malloc`), alternating. Fresh
    processes because malloc's settings are process-wide and glibc's own (dynamic) ones cannot be restored."""
    import json
    import subprocess

    results: dict[str, list[dict]] = {"0": [], "1": []}
    argv = [sys.executable, __file__, "--family", family, "--threads", str(threads), "--runs", str(args.runs),
            "--n", str(args.n), "--batch-size", str(args.batch_size), "--child-json"]
    for _ in range(args.malloc_ab):
        for setting in results:
            done = subprocess.run(argv, env=dict(os.environ, LMMS_NB_KEEP_FREED_MEMORY=setting), check=True,
                                  capture_output=True, text=True)
            results[setting].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"\n{family}, {threads or 'default'} thread(s): {args.malloc_ab} pairs of fresh processes, median of "
          f"{args.runs} runs each (load average {os.getloadavg()[0]:.1f})")
    for setting, label in (("0", "malloc as glibc sets it"), ("1", "malloc thresholds pinned")):
        rows = results[setting]
        cpus = ", ".join(f"{row['cpu']:.3f}/{row['cpu_min']:.3f}" for row in rows)
        faults = ", ".join(str(int(row["faults"])) for row in rows)
        print(f"  {label:24}: CPU median/min per process {cpus} s, wall median "
              f"{statistics.median(r['wall'] for r in rows):.3f} s, minor page faults per run {faults}")
    for key, what in (("cpu", "medians"), ("cpu_min", "minima (the least a run took: other jobs only add)")):
        ratio = statistics.median(r[key] for r in results["0"]) / statistics.median(r[key] for r in results["1"])
        print(f"  -> pinned: {ratio:.2f}x less CPU, median over processes of their {what}")


def lmms_eval_cold(python: str, family: str, n: int) -> tuple[float, float]:
    """lmms-eval 0.7.3's cold command line on the same run (its batch size: 1 for llava_hf, 4 for qwen2_5_vl)."""
    data = vs.build_data(n)
    model_path = vs.build_model("zoo", family)
    tasks_dir = vs.write_tasks(data)
    out = vs.WORK / "out_lmms_eval_bench"
    argv = vs.command(family, model_path, tasks_dir, out, 1 if family == "llava" else 4)
    seconds, _ = vs.run_cli(python, "lmms_eval", argv, out)
    return seconds, vs.LAST_CPU_S[0]


def main() -> None:
    global DEFAULT_THREADS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", nargs="+", choices=("qwen2_5_vl", "llava"), default=["qwen2_5_vl", "llava"])
    parser.add_argument("--n", type=int, default=8, help="docs per task (default 8, as the issue's run)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per setting; medians are printed")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="torch threads; 0: torch's default")
    parser.add_argument("--lmms-eval-python", default=None, help="time lmms-eval 0.7.3's cold run with it too")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --lmms-eval-python: repeat (lmms-eval cold, in-process runs) this many times")
    parser.add_argument("--malloc-ab", type=int, default=0, metavar="N",
                        help="time N pairs of fresh processes with glibc's malloc thresholds as it sets them, then "
                             "pinned (lmms_nb.models._hf_malloc), alternating")
    parser.add_argument("--probe", action="store_true",
                        help="after each timed run, time bench_host_speed.probe() (fixed work, no model): a slow "
                             "round with a slow probe is a slow machine, not more work")
    parser.add_argument("--child-json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true",
                        help="also time, alternating in this process, the model without issue #14's speed-ups "
                             "(undo_speed_ups, speed_ups(False))")
    args = parser.parse_args()
    _env()
    import torch

    from lmms_nb.logs.writer import SampleLogWriter

    global _BACKGROUND_SYNC, BASELINE, PROBE
    _BACKGROUND_SYNC, BASELINE, PROBE = SampleLogWriter._sync, args.baseline, args.probe
    DEFAULT_THREADS = torch.get_num_threads()
    for family in args.family:
        for threads in args.threads:
            if args.child_json:  # one process of --malloc-ab
                import json

                result = measure(family, n=args.n, batch_size=args.batch_size, runs=args.runs, threads=threads)
                print(json.dumps({key: result[key] for key in ("wall", "cpu", "cpu_min", "faults")}))
                continue
            if args.malloc_ab:
                malloc_ab(args, family, threads)
                continue
            if args.lmms_eval_python and args.rounds > 1:
                print_rounds(args, family, threads)
                continue
            theirs = lmms_eval_cold(args.lmms_eval_python, family, args.n) if args.lmms_eval_python else None
            result = measure(family, n=args.n, batch_size=args.batch_size, runs=args.runs, threads=threads)
            load = os.getloadavg()[0]
            print(f"\n{family}, {result['threads']} thread(s), {args.n} docs x 2 tasks, batch {args.batch_size}, "
                  f"load average {load:.1f}")
            print(f"  in-process evaluate: median wall {result['wall']:.3f} s, median CPU {result['cpu']:.3f} s "
                  f"(walls: {', '.join(f'{w:.2f}' for w in result['walls'])}), {result['faults']:.0f} minor page "
                  f"faults per run")
            base = result.get("baseline")
            if base:
                print(f"  without the speed-ups (alternating): median wall {base['wall']:.3f} s, median CPU "
                      f"{base['cpu']:.3f} s (walls: {', '.join(f'{w:.2f}' for w in base['walls'])}) -> speed-ups "
                      f"{base['wall'] / result['wall']:.2f}x (wall), {base['cpu'] / result['cpu']:.2f}x (CPU)")
            if theirs is not None:
                print(f"  lmms-eval cold: wall {theirs[0]:.1f} s, CPU {theirs[1]:.1f} s -> in-process "
                      f"{theirs[0] / result['wall']:.1f}x faster (wall), {theirs[1] / result['cpu']:.1f}x less CPU")
                if base:
                    print(f"    without the speed-ups: {theirs[0] / base['wall']:.1f}x (wall), "
                          f"{theirs[1] / base['cpu']:.1f}x (CPU)")
            print(f"  one profiled run ({result['profiled']:.2f} s wall under cProfile), cumulative seconds:")
            for stage, seconds in result["stages"].items():
                print(f"    {stage:48} {seconds:7.3f}  {seconds / result['profiled']:6.1%}")


def print_rounds(args: argparse.Namespace, family: str, threads: int) -> None:
    """`--rounds`: lmms-eval's cold run and the in-process runs, alternating round by round; each round's ratios
    and their medians."""
    walls, cpus = [], []
    print(f"\n{family}, {args.rounds} rounds of (lmms-eval cold once, in-process median of {args.runs}), "
          f"{args.n} docs x 2 tasks, batch {args.batch_size}")
    for round_ in range(1, args.rounds + 1):
        theirs = lmms_eval_cold(args.lmms_eval_python, family, args.n)
        result = measure(family, n=args.n, batch_size=args.batch_size, runs=args.runs, threads=threads)
        walls.append(theirs[0] / result["wall"])
        cpus.append(theirs[1] / result["cpu"])
        print(f"  round {round_} (load average {os.getloadavg()[0]:.1f}, {result['threads']} thread(s)): lmms-eval "
              f"{theirs[0]:.1f} s wall / {theirs[1]:.1f} s CPU, in-process {result['wall']:.3f} s / "
              f"{result['cpu']:.3f} s -> {walls[-1]:.1f}x wall, {cpus[-1]:.1f}x CPU"
              + (f"; host probe python {result['probe'][0] * 1e3:.1f} ms, bf16 matmul {result['probe'][1] * 1e3:.1f} ms"
                 if result["probe"] else ""), flush=True)
    print(f"  median over {args.rounds} rounds: {statistics.median(walls):.1f}x wall (range {min(walls):.1f}-"
          f"{max(walls):.1f}), {statistics.median(cpus):.1f}x CPU (range {min(cpus):.1f}-{max(cpus):.1f})")


DEFAULT_THREADS = 1
BASELINE = False
PROBE = False
_BACKGROUND_SYNC = None

if __name__ == "__main__":
    main()
