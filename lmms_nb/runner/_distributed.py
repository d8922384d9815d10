"""Data-parallel execution: rank and world size from torchrun / accelerate, and the ranks' shard files.

Each rank writes its share of a task's docs to its own part file; rank 0 merges every part file it finds
into the samples file (sorted by doc id, as a single process writes them) once every rank is done. Before the
ranks start, rank 0 alone heals the samples file and merges the parts an interrupted run left behind (of any
world size, so a run resumed on fewer ranks loses none); the others wait for it at a barrier.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lmms_nb.logs.writer import heal_samples_file, read_samples_file, rewrite_samples_file

__all__ = ["Distributed", "found_shards", "merge_shards", "names_in", "shard_path"]


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


def names_in(folder: Path) -> list[str]:
    """The names in `folder` (none when it does not exist): what `Path.glob` matched against, listed without its
    per-name Python pattern matching, which grew to milliseconds per run in a model folder of a few hundred runs.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "20250101_000000_results.json").write_text("{}")
    >>> names_in(folder), names_in(folder / "no such folder")
    (['20250101_000000_results.json'], [])
    """
    try:
        with os.scandir(folder) as entries:
            return [entry.name for entry in entries]
    except (FileNotFoundError, NotADirectoryError):
        return []


def found_shards(samples_file: Path) -> list[Path]:
    """Every rank's part file of this samples file, whatever the world size that wrote it."""
    prefix, suffix = samples_file.name + ".rank", ".part"
    return sorted(samples_file.parent / n for n in names_in(samples_file.parent)
                  if n.startswith(prefix) and n.endswith(suffix) and len(n) >= len(prefix) + len(suffix))


def merge_shards(samples_file: Path, shards: list[Path], filters: dict[str, Any]) -> None:
    """Fold the ranks' part files into the samples file, ordered by doc id, then delete the parts.

    A doc already in the samples file keeps its lines there; the file is replaced atomically before any part
    is deleted, so an interrupted merge loses nothing and a repeated one duplicates nothing.
    """
    if not shards:
        return
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
    rewrite_samples_file(samples_file, merged)
    for shard in shards:
        shard.unlink(missing_ok=True)
