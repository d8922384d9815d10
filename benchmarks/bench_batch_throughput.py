"""Samples per second of a zoo model on synthbench at batch size 1 vs 8 (one CPU thread), side by side.

Batch 1 is the baseline. Both runs answer the same requests (every synthbench family, test split) and are
interleaved over several repeats so machine noise hits both alike; the median of the repeats is reported.
The script also checks that both batch sizes give the same greedy answers.

Usage:
    python benchmarks/bench_batch_throughput.py [--model base] [--per-family 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="base", help="zoo member name (trained first if not cached)")
    parser.add_argument("--per-family", type=int, default=40, help="test requests per synthbench family")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from lmms_nb.models import Request, get_model
    from lmms_nb.tasks.synthbench import FAMILIES, synthbench_task

    requests = []
    for family in FAMILIES:
        task = synthbench_task(family)
        ds = task.dataset().select(range(args.per_family))
        for i, doc in enumerate(ds):
            requests.append(
                Request(doc_id=i, task=task.name, images=task.doc_to_visual(doc), prompt=task.doc_to_text(doc),
                        generation_kwargs=dict(task.generation_kwargs))
            )
    model = get_model(f"zoo-{args.model}", progress=True)
    model.generate(requests[:8])  # warm-up: first-call allocations and lazy imports

    seconds: dict[int, list[float]] = {b: [] for b in args.batch_sizes}
    answers: dict[int, list[str | None]] = {}
    for _ in range(args.repeats):
        for b in args.batch_sizes:
            model.batch_size = b
            start = time.perf_counter()
            out = model.generate(requests)
            seconds[b].append(time.perf_counter() - start)
            answers[b] = [r.text for r in out]

    n = len(requests)
    base = args.batch_sizes[0]
    base_rate = n / statistics.median(seconds[base])
    print(f"model zoo-{args.model}, {n} requests ({args.per_family} per family), 1 thread, "
          f"median of {args.repeats} repeats")
    print(f"{'batch':>5}  {'samples/s':>10}  {'ms/sample':>10}  {'vs batch ' + str(base):>12}")
    for b in args.batch_sizes:
        rate = n / statistics.median(seconds[b])
        print(f"{b:>5}  {rate:>10.1f}  {1000 / rate:>10.2f}  {rate / base_rate:>11.2f}x")
    same = all(answers[b] == answers[base] for b in args.batch_sizes)
    print(f"identical greedy answers across batch sizes: {same}")


if __name__ == "__main__":
    main()
