"""Top failure slices of a real run: llava-v1.5-7b on scienceqa_img (lmms-eval logs in ../shared/realworld).

Run from the repository root: `python benchmarks/bench_slices_realworld.py [--text-embeddings]`. Prints the
table of slices find_slices() reports (confirmed on the held-out half, Holm-corrected), the number of
candidates tried, and the time taken. With --text-embeddings the prompts are also embedded with the offline
text model (all-MiniLM-L6-v2) and clustered.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import polars as pl

import lmms_nb
from lmms_nb.analysis import find_slices

RUN = Path(__file__).resolve().parents[2] / "shared" / "realworld" / "lmms_eval" / "shruum__lmms-eval" / "results" / (
    "liuhaotian__llava-v1.5-7b")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-embeddings", action="store_true", help="also cluster MiniLM embeddings of the prompts")
    parser.add_argument("--logs", type=Path, default=RUN)
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    df = lmms_nb.load_logs(args.logs)
    model = df["model"].unique().to_list()[0]
    print(f"{df.height} samples of {model} on {df['task'].unique().to_list()}; "
          f"accuracy {df['exact_match'].mean():.4f}")
    start = time.perf_counter()
    found = find_slices(df, model, embeddings="text" if args.text_embeddings else None)
    elapsed = time.perf_counter() - start
    print(found)
    print(f"find_slices: {elapsed:.2f} s")
    with pl.Config(tbl_rows=20, fmt_str_lengths=60, tbl_width_chars=200):
        print(found.table.select("slice_id", "label", "kind", "size", "n_confirm", "fail_rate", "ci_low", "ci_high",
                                 "rest_fail_rate", "p_adjusted", "significant").head(15))
    for row in found.significant.head(3).iter_rows(named=True):
        print(f"\n[{row['slice_id']}] {row['label']}: {row['size']} samples, fail rate {row['fail_rate']:.2f} "
              f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}] vs {row['rest_fail_rate']:.2f} elsewhere")
        for ex in row["examples"][:2]:
            question = ex["input"].replace("\n", " ")[:140]
            print(f"    doc {ex['doc_id']}: {question!r} -> predicted {ex['prediction']!r}, target {ex['target']!r}")


if __name__ == "__main__":
    main()
