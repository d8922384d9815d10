"""Which synthbench families does a zoo recipe learn, and how fast? Train one `ZooSpec`, score its snapshots.

Trains the spec given as JSON keyword arguments (one thread, deterministic, into a scratch folder), saving
snapshots at the given steps, and prints, for each snapshot and the end of training, the share of every
family's test rows whose first answer token is right (every synthbench answer is one token, so this is what
greedy decoding answers) and how many distinct first tokens it gave (1: a constant answer, the language prior).

Run (one thread; ~1-2 min per 300 steps on a free core):
    python benchmarks/bench_zoo_learning.py '{"name": "mcq-only", "curriculum_family": null, "steps": 700,
        "exclude_families": ["count", "ocr", "chart", "yesno"]}' --snapshots 300 500
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch


def first_token_scores(path: Path) -> dict[str, tuple[float, int]]:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from lmms_nb.models._zoo_data import _collate, _encode
    from lmms_nb.tasks.synthbench import FAMILIES, synthbench_task

    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    out = {}
    for family in FAMILIES:
        task = synthbench_task(family)
        docs = [{"image": task.doc_to_visual(d)[0], "prompt": task.doc_to_text(d),
                 "answer": str(task.doc_to_target(d)), "family": family, "category": d["category"]}
                for d in task.dataset()]
        examples = _encode(processor, docs)
        right, predicted, by_category = 0, Counter(), Counter()
        with torch.no_grad():
            for i in range(0, len(examples), 100):
                batch = examples[i : i + 100]
                # the prompt alone (labels -100), then the model's next token
                prompts = [{**ex, "input_ids": [t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab == -100],
                            "labels": []} for ex in batch]
                inputs = _collate([{**p, "labels": [-100] * len(p["input_ids"])} for p in prompts], processor)
                inputs.pop("labels")
                for ex, doc, token in zip(batch, docs[i : i + 100], model(**inputs).logits[:, -1].argmax(-1).tolist()):
                    hit = token == next(t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != -100)
                    right += hit
                    by_category[doc["category"], hit] += 1
                    predicted[token] += 1
        out[family] = (round(right / len(examples), 3), len(predicted))
        if family == "chart":  # the tallest / shortest bar's letter and the tallest bar's value apart
            for category in sorted({c for c, _ in by_category}):
                total = by_category[category, True] + by_category[category, False]
                out[f"chart:{category}"] = (round(by_category[category, True] / total, 3), total)
    return out


def main() -> None:
    from lmms_nb.models._zoo_build import member_dir, train_zoo_member
    from lmms_nb.models._zoo_spec import ZooSpec

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="ZooSpec keyword arguments as JSON (name required)")
    parser.add_argument("--snapshots", nargs="*", type=int, default=[])
    args = parser.parse_args()
    kwargs = json.loads(args.spec)
    spec = ZooSpec(**{"description": "", **kwargs})
    snapshots = [dataclasses.replace(spec, name=f"{spec.name}-s{k}", snapshot_step=k, run_name=spec.name)
                 for k in args.snapshots]
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="zoo-learning-"))
    start = time.perf_counter()
    train_zoo_member(spec, root=root, progress=False, snapshot_specs=snapshots)
    print(f"{spec.name}: {spec.total_steps} steps in {time.perf_counter() - start:.0f}s", flush=True)
    for member in (*snapshots, spec):
        scores = first_token_scores(member_dir(member, 0, root))
        print(member.name, "  ".join(f"{f} {acc:.3f} ({n} {'rows' if ':' in f else 'answers'})"
                                     for f, (acc, n) in scores.items()), flush=True)


if __name__ == "__main__":
    main()
