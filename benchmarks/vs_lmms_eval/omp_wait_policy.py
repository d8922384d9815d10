"""Does OMP_WAIT_POLICY=PASSIVE help or hurt? CPU and wall time with torch's default threads, policy unset vs PASSIVE.

    python benchmarks/vs_lmms_eval/omp_wait_policy.py [--repeat 3] [--layers 4] [--cold-argv-file FILE]

OpenMP worker threads that finish a parallel region spin for a while before sleeping (the default, "active"
waiting, bounded by GOMP_SPINCOUNT); with PASSIVE they sleep at once. Spinning buys latency when the next region
comes soon and costs CPU time that another process on a shared machine could have used. Each workload runs in a
fresh process (OpenMP reads the variable at start), alternating policies, `--repeat` times; medians are printed:

- `prefill`: a 0.5B-shape decoder's matmuls (Qwen2-0.5B: hidden 896, MLP 4864, `--layers` layers) over a
  256-token prompt, float32: compute-bound, large parallel regions;
- `decode`: the same layers one token at a time for 64 steps: many small regions back to back, where spinning
  workers are the cheapest to wake;
- `cold eval` (with `--cold-argv-file`, a file holding lmms-nb's argv one per line, e.g. the vs-lmms-eval
  benchmark's command): a whole cold `python -m lmms_nb` run of a tiny model.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORKLOAD = r"""
import sys, time, torch
torch.manual_seed(0)
layers, mode = int(sys.argv[1]), sys.argv[2]
hidden, mlp = 896, 4864
weights = [(torch.randn(3 * hidden, hidden) / 30, torch.randn(hidden, hidden) / 30, torch.randn(2 * mlp, hidden) / 30,
            torch.randn(hidden, mlp) / 70) for _ in range(layers)]

def forward(x):
    for qkv, o, up, down in weights:
        q, k, v = torch.nn.functional.linear(x, qkv).chunk(3, dim=-1)
        att = torch.softmax(q @ k.transpose(-1, -2) / 30, dim=-1) @ v
        x = x + torch.nn.functional.linear(att, o)
        g, u = torch.nn.functional.linear(x, up).chunk(2, dim=-1)
        x = x + torch.nn.functional.linear(torch.nn.functional.silu(g) * u, down)
    return x

with torch.inference_mode():
    if mode == "prefill":
        for _ in range(3):
            out = forward(torch.randn(1, 256, hidden))
    else:
        x = torch.randn(1, 1, hidden)
        for _ in range(64):
            x = forward(x) / 10
print(torch.get_num_threads())
"""


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], policy: str | None, cwd: str | None = None) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    cpu, wall = _children_cpu_s(), time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=cwd)
    return time.perf_counter() - wall, _children_cpu_s() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--cold-argv-file", default=None)
    args = parser.parse_args()
    workloads = {"prefill": [sys.executable, "-c", WORKLOAD, str(args.layers), "prefill"],
                 "decode": [sys.executable, "-c", WORKLOAD, str(args.layers), "decode"]}
    if args.cold_argv_file:
        argv = Path(args.cold_argv_file).read_text().splitlines()
        workloads["cold eval"] = [sys.executable, "-m", "lmms_nb", *argv]
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs; torch's default threads; load average before {load_before}")
    print(f"{'workload':10} {'policy':8} {'wall s':>7} {'CPU s':>7}   all wall / all CPU")
    for name, cmd in workloads.items():
        runs: dict[str, list[tuple[float, float]]] = {"unset": [], "PASSIVE": []}
        for _ in range(args.repeat):
            for policy in runs:
                runs[policy].append(timed(cmd, None if policy == "unset" else policy))
        for policy, times in runs.items():
            walls, cpus = [w for w, _ in times], [c for _, c in times]
            print(f"{name:10} {policy:8} {statistics.median(walls):7.2f} {statistics.median(cpus):7.2f}   "
                  f"{' '.join(f'{w:.2f}' for w in walls)} / {' '.join(f'{c:.2f}' for c in cpus)}")
        (uw, uc), (pw, pc) = [[statistics.median(t[i] for t in runs[p]) for i in (0, 1)] for p in ("unset", "PASSIVE")]
        print(f"{'':10} PASSIVE / unset: wall {pw / uw:.2f}x, CPU {pc / uc:.2f}x")
    print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
