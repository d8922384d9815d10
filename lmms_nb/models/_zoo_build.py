"""Building zoo members into the cache: `build_zoo` (parallel processes) and `train_zoo_member` (one member).

A member's folder is `cache_dir("zoo", "<name>-<config hash>")`; it is built in a private sibling folder and
renamed into place with a completion marker written last, so a crash never leaves a folder that looks complete.
One training run saves all its registered snapshots (checkpoints along training) on the way.

Example:
    >>> from lmms_nb.models._zoo_build import member_dir
    >>> from lmms_nb.models._zoo_spec import ZooSpec
    >>> member_dir(ZooSpec("x", ""), seed=0, root="/tmp/zoo").name.startswith("x-")
    True
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lmms_nb.config import cache_dir
from lmms_nb.models._zoo_spec import ZOO, ZOO_FAMILIES, ZooSpec
from lmms_nb.models._zoo_train import train_tiny_vlm

__all__ = ["COMPLETE_MARKER", "available_cores", "build_zoo", "member_dir", "spec_of", "train_zoo_member"]

#: written last into a member's folder: a folder without it is an interrupted build
COMPLETE_MARKER = "zoo_complete.json"


def spec_of(name: str) -> ZooSpec:
    """The registered spec of member `name` ("zoo-" prefix optional)."""
    key = name.removeprefix("zoo-")
    if key not in ZOO:
        raise KeyError(f"unknown zoo member {name!r}; known: {', '.join(ZOO)}")
    return ZOO[key]


def build_zoo(
    names: Sequence[str] | None = None,
    *,
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
) -> dict[str, Path]:
    """Train (or find in the cache) the zoo members `names` (default: all) and return their folders.

    Members not cached yet train in `workers` processes (default: one per available core, at most one per
    member), each on one thread, so the result does not depend on `workers`.
    """
    specs = [spec_of(n) for n in (names if names is not None else list(ZOO))]
    todo = [spec for spec in specs if not (member_dir(spec, seed) / COMPLETE_MARKER).is_file()]
    if todo:
        from lmms_nb.tasks.synthbench import build_synthbench

        # built once here, not by each worker at the same time
        sizes = {spec.synthbench_n_train for spec in todo} | {spec.clip_n_train for spec in todo if spec.clip_init}
        for n_train in sorted(sizes):
            build_synthbench(seed=seed, n_train=n_train)
        runs = {spec.run.config_hash(seed): spec for spec in todo}  # one training run makes all its snapshots
        todo = list(runs.values())
        workers = min(len(todo), workers or available_cores())
        if workers > 1:
            _train_in_processes(todo, seed=seed, workers=workers, progress=progress)
        else:
            for steps, n_train in _clips_needed(todo, seed):  # before the members that start from them
                _train_clip(seed, steps, n_train)
            for spec in todo:
                train_zoo_member(spec, seed=seed, progress=progress)
    return {spec.name: train_zoo_member(spec, seed=seed, progress=False) for spec in specs}


def train_zoo_member(
    spec: ZooSpec,
    *,
    seed: int = 0,
    progress: bool = True,
    root: Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
    snapshot_specs: Sequence[ZooSpec] | None = None,
) -> Path:
    """Train `spec` into `root/<name>-<hash>` (default root: `cache_dir("zoo")`) unless already complete there.

    Training a run also saves every registered snapshot of it (`ZooSpec.snapshot_step`; `snapshot_specs`
    overrides which are registered: a spawned worker's `ZOO` holds only what its imports register) that is not cached
    yet: checkpoints along training cost nothing extra. A snapshot whose run is already cached is made by
    training the run again in a scratch folder (same seed, so the same weights) and keeping only the snapshots.
    """
    final = member_dir(spec, seed, root)
    if (final / COMPLETE_MARKER).is_file():
        return final
    run = spec.run
    run_hash = run.config_hash(seed)
    siblings = {s.config_hash(seed): s for s in (*_snapshots_of(spec, seed, snapshot_specs), spec)
                if s.snapshot_step and s.run.config_hash(seed) == run_hash}
    snapshots = {s.snapshot_step: member_dir(s, seed, root) for s in siblings.values()
                 if not (member_dir(s, seed, root) / COMPLETE_MARKER).is_file()}
    if spec.snapshot_step and (member_dir(run, seed, root) / COMPLETE_MARKER).is_file():
        import tempfile

        with tempfile.TemporaryDirectory(prefix="zoo-rerun-") as scratch:
            _train_run(run, seed=seed, progress=progress, root=Path(scratch), on_step=on_step, snapshots=snapshots)
    else:
        _train_run(run, seed=seed, progress=progress, root=root, on_step=on_step, snapshots=snapshots)
    return final


def _train_run(spec: ZooSpec, *, seed: int, progress: bool, root: Path | None,
               on_step: Callable[[int, float], None] | None, snapshots: dict[int, Path]) -> Path:
    final = member_dir(spec, seed, root)
    if (final / COMPLETE_MARKER).is_file():
        return final
    from lmms_nb.tasks.synthbench import synthbench_task

    all_tasks = [
        synthbench_task(family, split="train", seed=seed, n_train=spec.synthbench_n_train)
        for family in ZOO_FAMILIES
    ]
    tasks = [t for f, t in zip(ZOO_FAMILIES, all_tasks) if f not in spec.exclude_families]
    # Build in a private folder and move it into place at the end: a crash never leaves a half-written member
    # that looks complete, and two processes building the same member do not write into the same files.
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        # the tokenizer learns the words of all five families even when a member trains on fewer of them: an
        # excluded family is then a skill the model lacks, not text it cannot even write
        def save_snapshot(model: Any, step: int, losses: list[float]) -> None:
            _save_snapshot(model, tmp, snapshots[step], {"spec": asdict(spec), "seed": seed, "snapshot_step": step,
                                                         "losses": [round(x, 4) for x in losses]})

        stats = train_tiny_vlm(tmp, tasks, spec, seed=seed, progress=progress, vocab_tasks=all_tasks,
                               on_step=on_step, snapshot_steps=sorted(snapshots), on_snapshot=save_snapshot)
        (tmp / COMPLETE_MARKER).write_text(json.dumps({"spec": asdict(spec), "seed": seed, **stats}, indent=1))
        _move_into_place(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _snapshots_of(spec: ZooSpec, seed: int, candidates: Sequence[ZooSpec] | None = None) -> list[ZooSpec]:
    run_hash = spec.run.config_hash(seed)
    pool = ZOO.values() if candidates is None else candidates
    return [s for s in pool if s.snapshot_step and s.run.config_hash(seed) == run_hash]


def _move_into_place(tmp: Path, final: Path) -> None:
    if final.exists():  # an interrupted build (no marker) or a concurrent one that finished first
        if (final / COMPLETE_MARKER).is_file():
            return
        shutil.rmtree(final)
    os.replace(tmp, final)


def _save_snapshot(model, run_dir: Path, dest: Path, info: dict[str, Any]) -> None:
    """The run's files (config, tokenizer, processor) with the weights as they are now, moved into `dest`."""
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(run_dir, tmp)
        model.save_pretrained(tmp)
        (tmp / COMPLETE_MARKER).write_text(json.dumps(info, indent=1))
        _move_into_place(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)



def member_dir(spec: ZooSpec, seed: int, root: str | Path | None = None) -> Path:
    """The folder of `spec`: `<root>/<name>-<config hash>` (default root: `cache_dir("zoo")`)."""
    return (Path(root) if root is not None else cache_dir("zoo")) / f"{spec.name}-{spec.config_hash(seed)}"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)



def _train_in_processes(specs: list[ZooSpec], *, seed: int, workers: int, progress: bool) -> None:
    """Train `specs` in `workers` fresh processes, with one progress bar over all their steps.

    The synthbench CLIPs that members start from (`ZooSpec.clip_init`) are trained first, each once, in the same
    pool: the members with a random tower train meanwhile, those that need a CLIP are queued once it is cached.
    """
    import multiprocessing
    import queue as queue_lib
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tqdm.auto import tqdm

    clips = _clips_needed(specs, seed)
    # "spawn": a forked child would inherit torch's thread pools mid-state (and can deadlock in them)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(workers, mp_context=context) as pool:
        steps_done = manager.Queue()
        clip_jobs = {pool.submit(_train_clip, seed, *clip): clip for clip in clips}
        waiting = [spec for spec in specs if spec.clip_init and (spec.clip_steps, spec.clip_n_train) in clips]
        # At most `workers` jobs in flight, the longest ready run submitted next: a long run queued behind the
        # short ones would finish alone while the other worker idles. Each run seeds itself and trains on one
        # thread, so the order changes no weights.
        ready = _longest_first([spec for spec in specs if spec not in waiting])
        futures: dict[Any, ZooSpec] = {}
        bar = tqdm(total=sum(s.total_steps for s in specs), desc=f"training zoo ({workers} processes)",
                   disable=not progress)
        pending = set(clip_jobs)
        try:
            while pending or ready:
                while ready and len(pending) < workers:
                    spec = ready.pop(0)
                    job = pool.submit(_train_in_worker, spec, seed, steps_done, _snapshots_of(spec, seed))
                    futures[job] = spec
                    pending.add(job)
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                with contextlib.suppress(queue_lib.Empty):
                    while True:
                        bar.update(steps_done.get_nowait())
                for future in done:
                    stats = future.result()  # a worker's exception is raised here
                    if future in clip_jobs:
                        ready = _longest_first(ready + [spec for spec in waiting
                                                        if (spec.clip_steps, spec.clip_n_train) == clip_jobs[future]])
                        bar.write(f"zoo: synthbench CLIP {clip_jobs[future]} (steps, rows) ready")
                        continue
                    bar.write(f"zoo {futures[future].run.name}: {stats['steps']} steps in "
                              f"{stats['train_seconds']:.0f}s, loss {stats['first_loss']:.2f} -> "
                              f"{stats['final_loss']:.2f}")
        finally:
            bar.close()


def _longest_first(specs: list[ZooSpec]) -> list[ZooSpec]:
    return sorted(specs, key=lambda spec: -spec.total_steps)


def _clips_needed(specs: Sequence[ZooSpec], seed: int) -> list[tuple[int, int]]:
    """(steps, rows per family) of the synthbench CLIPs `specs` start from that are not cached yet."""
    from lmms_nb.lite_selection._clip_training import CLIP_COMPLETE_MARKER, synthbench_clip_dir

    wanted = sorted({(spec.clip_steps, spec.clip_n_train) for spec in specs if spec.clip_init})
    return [(steps, n_train) for steps, n_train in wanted
            if not (synthbench_clip_dir(seed=seed, steps=steps, n_train=n_train) / CLIP_COMPLETE_MARKER).is_file()]


def _train_clip(seed: int, steps: int, n_train: int) -> str:
    from lmms_nb.lite_selection._clip_training import train_synthbench_clip

    return train_synthbench_clip(seed=seed, steps=steps, n_train=n_train)


def _train_in_worker(spec: ZooSpec, seed: int, steps_done, snapshot_specs: list[ZooSpec]) -> dict[str, Any]:
    def report(step: int, loss: float) -> None:  # every 10 steps: the bar needs no more, the queue is IPC
        done = step + 1
        if done % 10 == 0:
            steps_done.put(10)
        elif done == spec.total_steps:
            steps_done.put(done % 10)

    train_zoo_member(spec, seed=seed, progress=False, on_step=report, snapshot_specs=snapshot_specs)
    # the run's own statistics (a snapshot's marker holds only its losses so far)
    run_dir = member_dir(spec.run, seed)
    if (run_dir / COMPLETE_MARKER).is_file():
        return json.loads((run_dir / COMPLETE_MARKER).read_text())
    return {"steps": spec.total_steps, "train_seconds": float("nan"), "first_loss": float("nan"),
            "final_loss": float("nan")}


