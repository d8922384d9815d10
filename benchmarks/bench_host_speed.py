"""Whether a slow in-process run is lmms-nb's doing or the machine's: each run beside a fixed probe that allocates
nothing and reads no model.

    python benchmarks/bench_host_speed.py [--seconds 100] [--threads 1] [--every] [--ab-text]
    python benchmarks/bench_host_speed.py --other-vcpu [--repeats 2]
    python benchmarks/bench_host_speed.py --both-vcpus [--seconds 60]

`bench_inprocess_vs_lmms_eval.py --rounds` on a 2-vCPU cloud guest showed the in-process time of the same run in two
modes, about 0.46 s and 0.62 s of CPU, a mode lasting seconds to a minute. Here one process loads the tiny
Qwen2.5-VL of `benchmarks/vs_lmms_eval` once, then for `--seconds` alternates one timed `evaluate` (thread CPU
time) with `probe()`: a fixed pure-Python loop and a fixed bfloat16 matmul loop (AMX/AVX-512 on such a CPU), which
touch no model, allocate nothing per step, and do the same instructions every time. If the probe slows down in
step with the evaluation, the machine was slower (fewer instructions per second for everyone), not lmms-nb's
work larger. It prints, for the runs whose probe was within 25% of the fastest probes ("host fast") and the others
("host slow"): how many, the median evaluation CPU, the probe's medians, this process's huge pages
(AnonHugePages) and the steal time the guest kernel saw; then the correlations. `--every` prints each step.
`--ab-text` alternates the runs between Qwen's processor as transformers
has it and with the pad runs put in as ids (`lmms_nb.models._qwen_text`), and prints both per host state: an A/B
at equal machine speed. `--both-vcpus` runs the probe alone on each vCPU at once (two pinned processes) and prints
3-second medians side by side (and how often each probe was preempted by another task of the guest): whether the
slow periods are the whole guest's or one vCPU's at a time, and whether sharing a vCPU inside the guest goes with
them.
`--other-vcpu` instead pins the probe to vCPU 0 while a child process on vCPU 1 sleeps, runs Python, or runs
bfloat16 or float32 matmuls, in turns: whether the guest's other vCPU shares the probe's core (a busy sibling
would slow it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "vs_lmms_eval"))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

#: the probe's sizes: about 45 ms of Python and 20 ms of matmuls per call on the 2-vCPU Sapphire Rapids guest
PY_STEPS, MATMULS, SIDE = 600_000, 400, 256
_MATRIX: list = []


def probe() -> tuple[float, float]:
    """(Python seconds, bfloat16 matmul seconds) of thread CPU time for a fixed amount of work."""
    import torch

    if not _MATRIX:
        _MATRIX.append(torch.randn(SIDE, SIDE, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16))
    start, total = time.thread_time(), 0
    for i in range(PY_STEPS):
        total += i * i % 7
    python = time.thread_time() - start
    start, matrix = time.thread_time(), _MATRIX[0]
    for _ in range(MATMULS):
        matrix @ matrix
    return python, time.thread_time() - start


def _steal_ticks() -> int:
    """The whole guest's steal time so far (/proc/stat, USER_HZ ticks): time the host ran something else instead."""
    try:
        return int(Path("/proc/stat").read_text().split("\n", 1)[0].split()[8])
    except (OSError, IndexError, ValueError):
        return 0


def _anon_huge_mib() -> int:
    try:
        for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return -1


def _cpu_now() -> str:
    try:
        return Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[36]
    except (OSError, IndexError):
        return "?"


def timeline(seconds: float, threads: int, every: bool, ab_text: bool = False) -> None:
    import numpy as np
    import torch

    import bench_inprocess_vs_lmms_eval as bench
    from lmms_nb.models import _qwen_text, get_model
    from lmms_nb.runner import evaluate
    from lmms_nb.tasks.yaml_loader import load_tasks

    bench._env()
    torch.set_num_threads(threads)
    vs = bench.vs
    tasks_dir = vs.write_tasks(vs.build_data(8))
    model = get_model("qwen2_5_vl", pretrained=str(vs.build_model("zoo", "qwen2_5_vl")), device_map="cpu",
                      device="cpu")

    def run(limit: int | None = None) -> float:
        start = time.thread_time()
        evaluate(model, load_tasks(tasks_dir, model_type="qwen2_5_vl"), output_dir=vs.WORK / "out_host_speed",
                 batch_size=4, limit=limit, progress=False, resume=False)
        return time.thread_time() - start

    run(limit=2)  # warm-up: the first processor call checks the fast text form against transformers' own
    if ab_text and _qwen_text._VERDICTS.get(model.processor) is not True:
        raise SystemExit("the fast text form did not match transformers' own processor here: nothing to compare")
    rows, began = [], time.perf_counter()
    while time.perf_counter() - began < seconds:
        arm = len(rows) % 2 if ab_text else 1  # 0: the processor as transformers has it, 1: lmms-nb's
        if ab_text:
            _qwen_text._VERDICTS[model.processor] = bool(arm)
        steal = _steal_ticks()
        cpu = run()
        python, matmul = probe()
        rows.append((cpu, python, matmul, _steal_ticks() - steal, _anon_huge_mib(), arm))
        if every:
            print(f"  {time.perf_counter() - began:6.1f} s vCPU {_cpu_now()}: evaluate {cpu:.3f} s CPU, probe python "
                  f"{python * 1e3:.1f} ms, bf16 matmul {matmul * 1e3:.1f} ms, steal {rows[-1][3]} ticks", flush=True)
    table = np.array(rows)
    fastest = np.percentile(table[:, 1], 20), np.percentile(table[:, 2], 20)
    slow = (table[:, 1] > 1.25 * fastest[0]) | (table[:, 2] > 1.25 * fastest[1])
    print(f"\nqwen2_5_vl in-process evaluate (8 docs x 2 tasks, batch 4, {threads} thread(s)) beside a fixed probe, "
          f"{len(rows)} runs in {seconds:.0f} s, load average {os.getloadavg()[0]:.1f}")
    for name, mask in (("host fast", ~slow), ("host slow", slow)):
        if not mask.any():
            print(f"  {name}: no runs")
            continue
        part = table[mask]
        print(f"  {name} ({mask.sum():3d} runs): evaluate median {np.median(part[:, 0]):.3f} s CPU | probe python "
              f"{np.median(part[:, 1]) * 1e3:.1f} ms, bf16 matmul {np.median(part[:, 2]) * 1e3:.1f} ms | steal "
              f"{part[:, 3].sum():.0f} ticks | AnonHugePages {np.median(part[:, 4]):.0f} MiB")
    if slow.any() and (~slow).any():
        ratios = [np.median(table[slow][:, k]) / np.median(table[~slow][:, k]) for k in range(3)]
        print(f"  slow / fast: evaluate {ratios[0]:.2f}x, probe python {ratios[1]:.2f}x, bf16 matmul {ratios[2]:.2f}x")
    if ab_text:
        for name, mask in (("host fast", ~slow), ("host slow", slow)):
            plain, fast = (table[mask & (table[:, 5] == arm)][:, 0] for arm in (0, 1))
            if len(plain) and len(fast):
                print(f"  {name}: evaluate with transformers' text side {np.median(plain):.3f} s CPU ({len(plain)} "
                      f"runs), pad runs put in as ids {np.median(fast):.3f} s ({len(fast)} runs) -> "
                      f"{np.median(plain) / np.median(fast):.3f}x")
    print(f"  correlation over runs: evaluate ~ probe python {np.corrcoef(table[:, 0], table[:, 1])[0, 1]:.2f}, "
          f"evaluate ~ bf16 matmul {np.corrcoef(table[:, 0], table[:, 2])[0, 1]:.2f}")


def other_vcpu(phase_seconds: float, repeats: int) -> None:
    """The probe pinned to vCPU 0 while a child on vCPU 1 sleeps / runs Python / bf16 / fp32 matmuls, in turns."""
    os.sched_setaffinity(0, {0})
    child = ("import os, sys, time, torch\ntorch.set_num_threads(1)\nos.sched_setaffinity(0, {1})\n"
             "kind, end = sys.argv[1], time.time() + float(sys.argv[2])\n"
             "a, f = torch.randn(512, 512).to(torch.bfloat16), torch.randn(512, 512)\n"
             "while time.time() < end:\n"
             "    if kind == 'bf16': a @ a\n    elif kind == 'fp32': f @ f\n"
             "    elif kind == 'python': sum(range(100000))\n    else: time.sleep(0.05)\n")
    print(f"probe pinned to vCPU 0, a child on vCPU 1, {phase_seconds:.0f} s per phase (load average "
          f"{os.getloadavg()[0]:.1f})")
    for _ in range(repeats):
        for kind in ("sleep", "python", "bf16", "fp32"):
            proc = subprocess.Popen([sys.executable, "-c", child, kind, str(phase_seconds)])
            time.sleep(0.5)
            samples = []
            while proc.poll() is None:
                samples.append(probe())
            print(f"  vCPU 1 {kind:6}: probe python median {statistics.median(s[0] for s in samples) * 1e3:.1f} ms "
                  f"(min {min(s[0] for s in samples) * 1e3:.1f}), bf16 matmul median "
                  f"{statistics.median(s[1] for s in samples) * 1e3:.1f} ms (min "
                  f"{min(s[1] for s in samples) * 1e3:.1f}), {len(samples)} probes", flush=True)


def both_vcpus(seconds: float) -> None:
    """The probe alone on vCPU 0 and on vCPU 1 at once (two pinned processes), in 3-second medians."""
    import numpy as np

    start = time.time() + 2  # both children are up by then
    children = [subprocess.Popen([sys.executable, __file__, "--probe-on", str(cpu), str(start), str(seconds)],
                                 stdout=subprocess.PIPE, text=True) for cpu in (0, 1)]
    tables = [np.array([[float(x) for x in line.split()] for line in child.communicate()[0].splitlines()])
              for child in children]
    print(f"probe alone on each vCPU at once, {seconds:.0f} s (load average {os.getloadavg()[0]:.1f}); medians of 3 s "
          f"windows, ms")
    for low in range(0, int(seconds) - 2, 3):
        cells = []
        for cpu, table in enumerate(tables):
            part = table[(table[:, 0] >= low) & (table[:, 0] < low + 3)]
            cells.append(f"vCPU {cpu} python {np.median(part[:, 1]):5.1f}, bf16 matmul {np.median(part[:, 2]):5.1f}, "
                         f"preempted {part[:, 3].mean():4.1f}x" if len(part) else f"vCPU {cpu} -")
        print(f"  {low:3d}-{low + 3:3d} s: " + " | ".join(cells))
    for cpu, table in enumerate(tables):  # slow: a probe 25% above the fastest fifth's
        slow = table[:, 1] > 1.25 * np.percentile(table[:, 1], 20)
        if slow.any() and (~slow).any():
            print(f"  vCPU {cpu}: {slow.sum()} of {len(table)} probes slow; involuntary context switches per probe: "
                  f"{table[slow, 3].mean():.1f} in the slow ones, {table[~slow, 3].mean():.1f} in the others")


def _probe_on(cpu: int, start: float, seconds: float) -> None:
    import resource

    os.sched_setaffinity(0, {cpu})
    time.sleep(max(0.0, start - time.time()))
    while time.time() < start + seconds:
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        python, matmul = probe()
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - switches
        print(f"{time.time() - start:.2f} {python * 1e3:.2f} {matmul * 1e3:.2f} {switches}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=100.0, help="how long the timeline runs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--every", action="store_true", help="print every run of the timeline")
    parser.add_argument("--other-vcpu", action="store_true", help="the sibling test instead of the timeline")
    parser.add_argument("--repeats", type=int, default=2, help="with --other-vcpu: rounds of the four phases")
    parser.add_argument("--ab-text", action="store_true",
                        help="alternate the runs: Qwen's processor as transformers has it / pad runs put in as ids")
    parser.add_argument("--both-vcpus", action="store_true", help="the probe on each vCPU at once")
    parser.add_argument("--probe-on", nargs=3, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.probe_on:
        _probe_on(int(args.probe_on[0]), args.probe_on[1], args.probe_on[2])
    elif (args.both_vcpus or args.other_vcpu) and not {0, 1} <= os.sched_getaffinity(0):
        parser.error("--both-vcpus and --other-vcpu need vCPUs 0 and 1 available to this process")
    elif args.both_vcpus:
        both_vcpus(args.seconds)
    elif args.other_vcpu:
        other_vcpu(7.0, args.repeats)
    else:
        timeline(args.seconds, args.threads, args.every, args.ab_text)


if __name__ == "__main__":
    main()
