"""Data-parallel execution: rank and world size from torchrun / accelerate, and the ranks' shard files.

Each rank writes its share of a task's docs to its own part file; rank 0 merges every part file it finds
into the samples file (sorted by doc id, as a single process writes them) once every rank is done.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lmms_nb.logs.writer import SampleLogWriter, heal_samples_file, read_samples_file

__all__ = ["Distributed", "merge_shards", "shard_path"]


class Distributed:
    """Rank, world size and the two collectives the runner needs, from torchrun / accelerate's environment.

    With WORLD_SIZE > 1 it joins (or reuses) a torch.distributed process group on the gloo backend, which only
    carries a few small Python objects here; model tensors never cross it.

    >>> Distributed().broadcast(["decided by rank 0"])
    ['decided by rank 0']
    """

    def __init__(self, rank: int = 0, world_size: int = 1):
        self.rank, self.world_size = rank, world_size

    @classmethod
    def from_env(cls) -> "Distributed":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as td

        if not td.is_initialized():
            td.init_process_group(backend="gloo")
        return cls(td.get_rank(), td.get_world_size())

    def broadcast(self, values: list[Any]) -> list[Any]:
        if self.world_size == 1:
            return values
        import torch.distributed as td

        td.broadcast_object_list(values, src=0)
        return values

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as td

            td.barrier()


def shard_path(samples_file: Path, rank: int) -> Path:
    # Not named *.jsonl, so log readers never mistake a shard in progress for a samples file.
    return samples_file.with_name(samples_file.name + f".rank{rank}.part")


def merge_shards(samples_file: Path, shards: list[Path], filters: dict[str, Any]) -> None:
    """Fold the ranks' part files into the samples file, ordered by doc id, then delete the parts."""
    records = heal_samples_file(samples_file, filters).records if samples_file.exists() else []
    for shard in shards:
        records.extend(read_samples_file(shard, filters).records)
    order = {name: i for i, name in enumerate(filters)}
    seen: set[tuple[int, str]] = set()
    merged = []
    for rec in sorted(records, key=lambda r: (int(r["doc_id"]), order.get(r.get("filter", "none"), 0))):
        key = (int(rec["doc_id"]), rec.get("filter", "none"))
        if key not in seen:
            seen.add(key)
            merged.append(rec)
    tmp = samples_file.with_name(samples_file.name + ".merge.tmp")
    tmp.unlink(missing_ok=True)  # a merge interrupted earlier
    with SampleLogWriter(tmp) as w:
        w.write(merged)
    os.replace(tmp, samples_file)
    for shard in shards:
        shard.unlink(missing_ok=True)
