"""The synthbench zoo: tiny LLaVA models trained offline on synthbench, with different skills and blind spots.

Each member is a `ZooSpec` (size, steps, curriculum, what is frozen, which families it never saw). `build_zoo()`
trains the members that are not cached yet, deterministically (seeded init, seeded data order, one CPU thread
per model, so the same seed gives the same weights bit for bit) and in parallel processes when there are
several cores, and returns their folders under `cache_dir("zoo", "<name>-<config hash>")`. Each member is also
a registered model: `get_model("zoo-<name>")` trains-or-loads it and returns an `HFImageTextModel`.

The recipe, and why: a ~250k-parameter LLaVA trained from scratch on the five families mixed keeps answering
from the question alone (the language prior) for 1000+ steps; trained on counting first it learns within
~150 steps to read the image tokens, and keeps that skill when the other families are mixed in. So members
start with a short single-family curriculum, LLaVA-style alignment in miniature. The random CLIP tower stays
frozen by default: its random features are informative, and at the language model's learning rate Adam
destroys them before the model has learned to look.

Example:
    >>> from lmms_nb.models.zoo import ZOO
    >>> "base" in ZOO and "blind" in ZOO and ZOO["base"].total_steps > 0
    True
    >>> # build_zoo(["base"])  -> {"base": Path(".../zoo/base-1a2b3c4d5e")}   (trains in ~1 min the first time)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from lmms_nb.config import cache_dir
from lmms_nb.models.registry import register_model

__all__ = [
    "COMPLETE_MARKER",
    "ZOO",
    "ZOO_FAMILIES",
    "ZooSpec",
    "build_zoo",
    "register_zoo_member",
    "train_tiny_vlm",
    "train_zoo_member",
    "zoo_model_path",
]

#: bump when the training recipe changes, so cached members are retrained
_RECIPE_VERSION = 2
#: written last into a member's folder: a folder without it is an interrupted build
COMPLETE_MARKER = "zoo_complete.json"
ZOO_FAMILIES = ("count", "mcq", "ocr", "chart", "yesno")


@dataclass(frozen=True)
class ZooSpec:
    """How to build and train one zoo member."""

    name: str
    description: str
    hidden_size: int = 64
    num_layers: int = 2
    #: steps on the training families mixed, after the curriculum
    steps: int = 350
    #: first train this many steps on this family alone (None: no curriculum)
    curriculum_family: str | None = "count"
    curriculum_steps: int = 150
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 20
    #: the CLIP tower's learning rate as a multiple of `lr`; 0 keeps it frozen at its random init
    vision_lr_mult: float = 0.0
    #: image embeddings fixed at zero (in training and in the saved model): a language-prior-only model
    blind: bool = False
    #: synthbench families left out of training (the model never learns their answer format)
    exclude_families: tuple[str, ...] = ()
    #: use at most this many training rows per family (None: the whole train split)
    train_rows_per_family: int | None = None
    #: the size of the synthbench whose train split the member learns from
    synthbench_n_train: int = 2000
    vocab_size: int = 512
    #: a checkpoint along another member's training: the weights after this many steps (curriculum included)
    #: of the run described by the other fields; 0 means the end of training
    snapshot_step: int = 0
    #: for a snapshot: the name of the member whose run it is taken from (its cache folder is named after it)
    run_name: str = ""

    def __post_init__(self) -> None:
        unknown = [f for f in (*self.exclude_families, self.curriculum_family) if f and f not in ZOO_FAMILIES]
        if unknown:
            raise ValueError(f"ZooSpec {self.name!r}: unknown families {unknown}; families: {ZOO_FAMILIES}")
        if self.curriculum_family in self.exclude_families and self.curriculum_steps:
            raise ValueError(f"ZooSpec {self.name!r}: curriculum family {self.curriculum_family!r} is excluded")
        if min(self.steps, self.curriculum_steps) < 0 or self.total_steps < 1 or self.batch_size < 1:
            raise ValueError(f"ZooSpec {self.name!r}: needs at least one step and batch_size >= 1")
        if not 0 <= self.snapshot_step < self.total_steps:
            raise ValueError(f"ZooSpec {self.name!r}: snapshot_step must be in [0, {self.total_steps}), "
                             f"got {self.snapshot_step}")

    @property
    def run(self) -> ZooSpec:
        """The training run this member comes from: itself, or for a snapshot the full run (snapshot_step 0)."""
        if not self.snapshot_step:
            return self
        return replace(self, name=self.run_name or f"{self.name}-run", snapshot_step=0, run_name="",
                       description=f"the run {self.name} is a snapshot of")

    @property
    def total_steps(self) -> int:
        return self.steps + (self.curriculum_steps if self.curriculum_family else 0)

    def config_hash(self, seed: int = 0) -> str:
        """A short hash of everything that determines the trained weights (not the name or description)."""
        parts = {k: v for k, v in asdict(self).items() if k not in ("name", "description", "run_name")}
        if not self.snapshot_step:
            parts.pop("snapshot_step")  # members trained before snapshots existed keep their hash and cache
        parts.update(seed=seed, recipe=_RECIPE_VERSION)
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


ZOO: dict[str, ZooSpec] = {}  # filled below by register_zoo_member


# -- public API ----------------------------------------------------------------------------------------------


def zoo_model_path(name: str, *, seed: int = 0) -> Path:
    """The folder of zoo member `name` (trained or not yet): `cache_dir("zoo", "<name>-<config hash>")`."""
    spec = _spec(name)
    return cache_dir("zoo") / f"{spec.name}-{spec.config_hash(seed)}"


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
    specs = [_spec(n) for n in (names if names is not None else list(ZOO))]
    todo = [spec for spec in specs if not (_member_dir(spec, seed) / COMPLETE_MARKER).is_file()]
    if todo:
        from lmms_nb.tasks.synthbench import build_synthbench

        # built once here, not by each worker at the same time
        for n_train in sorted({spec.synthbench_n_train for spec in todo}):
            build_synthbench(seed=seed, n_train=n_train)
        runs = {spec.run.config_hash(seed): spec for spec in todo}  # one training run makes all its snapshots
        todo = list(runs.values())
        workers = min(len(todo), workers or _available_cores())
        if workers > 1:
            _train_in_processes(todo, seed=seed, workers=workers, progress=progress)
        else:
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
) -> Path:
    """Train `spec` into `root/<name>-<hash>` (default root: `cache_dir("zoo")`) unless already complete there.

    Training a run also saves every registered snapshot of it (`ZooSpec.snapshot_step`) that is not cached
    yet: checkpoints along training cost nothing extra. A snapshot whose run is already cached is made by
    training the run again in a scratch folder (same seed, so the same weights) and keeping only the snapshots.
    """
    final = _member_dir(spec, seed, root)
    if (final / COMPLETE_MARKER).is_file():
        return final
    run = spec.run
    run_hash = run.config_hash(seed)
    siblings = {s.config_hash(seed): s for s in (*ZOO.values(), spec)
                if s.snapshot_step and s.run.config_hash(seed) == run_hash}
    snapshots = {s.snapshot_step: _member_dir(s, seed, root) for s in siblings.values()
                 if not (_member_dir(s, seed, root) / COMPLETE_MARKER).is_file()}
    if spec.snapshot_step and (_member_dir(run, seed, root) / COMPLETE_MARKER).is_file():
        import tempfile

        with tempfile.TemporaryDirectory(prefix="zoo-rerun-") as scratch:
            _train_run(run, seed=seed, progress=progress, root=Path(scratch), on_step=on_step, snapshots=snapshots)
    else:
        _train_run(run, seed=seed, progress=progress, root=root, on_step=on_step, snapshots=snapshots)
    return final


def _train_run(spec: ZooSpec, *, seed: int, progress: bool, root: Path | None,
               on_step: Callable[[int, float], None] | None, snapshots: dict[int, Path]) -> Path:
    final = _member_dir(spec, seed, root)
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
        stats = train_tiny_vlm(tmp, tasks, spec, seed=seed, progress=progress, vocab_tasks=all_tasks,
                               on_step=on_step, snapshots=snapshots)
        (tmp / COMPLETE_MARKER).write_text(json.dumps({"spec": asdict(spec), "seed": seed, **stats}, indent=1))
        _move_into_place(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


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


def train_tiny_vlm(
    path: str | Path,
    tasks: Sequence[Any],
    spec: ZooSpec,
    *,
    seed: int = 0,
    progress: bool = True,
    vocab_tasks: Sequence[Any] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    snapshots: dict[int, Path] | None = None,
) -> dict[str, Any]:
    """Build a tiny LLaVA in `path` and train it on the rows of `tasks`, loss on the answer tokens only.

    Each task provides `dataset()`, `doc_to_visual`, `doc_to_text` and `doc_to_target` (a `Task`); the prompt is
    the task's text through the processor's chat template, exactly as `HFImageTextModel` builds it at evaluation
    time, and the target is the answer followed by EOS. Training runs `spec.curriculum_steps` on the
    curriculum family's rows, then `spec.steps` on all rows mixed. The tokenizer is trained on the prompts and
    answers of `vocab_tasks` (default: `tasks`). `on_step(step, loss)` is called after every step;
    `snapshots` maps a step count to a folder that receives the model as it is after that many steps. Returns
    training statistics (losses, seconds).
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from lmms_nb.models.tiny import build_tiny_llava

    path = Path(path)
    prepare_start = time.perf_counter()
    with _single_thread(), _quiet_transformers():
        docs = _training_docs(tasks, spec)
        vocab_texts = _vocab_texts(vocab_tasks if vocab_tasks is not None else tasks)
        build_tiny_llava(path, vocab_texts=vocab_texts, hidden_size=spec.hidden_size, num_layers=spec.num_layers,
                         seed=seed, vocab_size=spec.vocab_size)
        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
        examples = _encode(processor, docs)
        optimizer = _optimizer(model, spec)
        total = spec.total_steps

        def lr_at(step: int) -> float:  # linear warmup, cosine decay to 10%
            if step < spec.warmup_steps:
                return (step + 1) / spec.warmup_steps
            t = (step - spec.warmup_steps) / max(1, total - spec.warmup_steps)
            return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
        order = _training_order([d["family"] for d in docs], spec, seed)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        prepare_s = time.perf_counter() - prepare_start
        losses: list[float] = []
        start = time.perf_counter()
        model.train()
        bar = tqdm(range(total), desc=f"zoo {spec.name}", disable=not progress, leave=False)
        for step in bar:
            batch = [examples[i] for i in order[step * spec.batch_size : (step + 1) * spec.batch_size]]
            loss = model(**_collate(batch, processor)).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if snapshots and step + 1 in snapshots:
                _save_snapshot(model, path, Path(snapshots[step + 1]),
                               {"spec": asdict(spec), "seed": seed, "snapshot_step": step + 1,
                                "losses": [round(x, 4) for x in losses]})
            if on_step is not None:
                on_step(step, losses[-1])
            if step % 10 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
        bar.close()
        train_s = time.perf_counter() - start
        model.eval()
        model.save_pretrained(path)
    return {
        "prepare_seconds": round(prepare_s, 2),
        "train_seconds": round(train_s, 2),
        "steps": total,
        "examples": len(examples),
        "first_loss": float(np.mean(losses[:10])),
        "final_loss": float(np.mean(losses[-10:])),
        "losses": [round(x, 4) for x in losses],
    }


# -- internals -----------------------------------------------------------------------------------------------


def _member_dir(spec: ZooSpec, seed: int, root: Path | None = None) -> Path:
    return (Path(root) if root is not None else cache_dir("zoo")) / f"{spec.name}-{spec.config_hash(seed)}"


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    # from_pretrained / save_pretrained draw their own progress bars; the training bar is the one that matters
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _optimizer(model, spec: ZooSpec):
    import torch

    vision = model.model.vision_tower
    if spec.vision_lr_mult == 0 or spec.blind:
        vision.requires_grad_(False)
    if spec.blind:
        # A zero, frozen last projector layer: every image embeds to zeros, so the saved checkpoint is blind on
        # its own (at evaluation too) and can answer only from the question's wording.
        projector = model.model.multi_modal_projector
        with torch.no_grad():
            projector.linear_2.weight.zero_()
            projector.linear_2.bias.zero_()
        projector.requires_grad_(False)
    vision_ids = {id(p) for p in vision.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if id(p) not in vision_ids], "lr": spec.lr},
        {"params": [p for p in trainable if id(p) in vision_ids], "lr": spec.lr * spec.vision_lr_mult},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=0.0)


def _training_order(families: list[str], spec: ZooSpec, seed: int) -> list[int]:
    """Example indices for every step: the curriculum family's rows first, then all rows, shuffled per epoch."""
    order: list[int] = []
    if spec.curriculum_family and spec.curriculum_steps:
        rows = [i for i, f in enumerate(families) if f == spec.curriculum_family]
        if not rows:
            raise ValueError(f"zoo member {spec.name!r}: no training rows of {spec.curriculum_family!r}")
        order += [rows[i] for i in _data_order(len(rows), spec.curriculum_steps * spec.batch_size, seed)]
    return order + _data_order(len(families), spec.steps * spec.batch_size, seed + 1)


def _train_in_processes(specs: list[ZooSpec], *, seed: int, workers: int, progress: bool) -> None:
    """Train `specs` in `workers` fresh processes, with one progress bar over all their steps."""
    import multiprocessing
    import queue as queue_lib
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tqdm.auto import tqdm

    # "spawn": a forked child would inherit torch's thread pools mid-state (and can deadlock in them)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(workers, mp_context=context) as pool:
        steps_done = manager.Queue()
        futures = {pool.submit(_train_in_worker, spec, seed, steps_done): spec for spec in specs}
        bar = tqdm(total=sum(s.total_steps for s in specs), desc=f"training zoo ({workers} processes)",
                   disable=not progress)
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                with contextlib.suppress(queue_lib.Empty):
                    while True:
                        bar.update(steps_done.get_nowait())
                for future in done:
                    stats = future.result()  # a worker's exception is raised here
                    bar.write(f"zoo {futures[future].run.name}: {stats['steps']} steps in "
                              f"{stats['train_seconds']:.0f}s, loss {stats['first_loss']:.2f} -> "
                              f"{stats['final_loss']:.2f}")
        finally:
            bar.close()


def _train_in_worker(spec: ZooSpec, seed: int, steps_done) -> dict[str, Any]:
    def report(step: int, loss: float) -> None:  # every 10 steps: the bar needs no more, the queue is IPC
        done = step + 1
        if done % 10 == 0:
            steps_done.put(10)
        elif done == spec.total_steps:
            steps_done.put(done % 10)

    train_zoo_member(spec, seed=seed, progress=False, on_step=report)
    # the run's own statistics (a snapshot's marker holds only its losses so far)
    run_dir = _member_dir(spec.run, seed)
    if (run_dir / COMPLETE_MARKER).is_file():
        return json.loads((run_dir / COMPLETE_MARKER).read_text())
    return {"steps": spec.total_steps, "train_seconds": float("nan"), "first_loss": float("nan"),
            "final_loss": float("nan")}


def _spec(name: str) -> ZooSpec:
    key = name.removeprefix("zoo-")
    if key not in ZOO:
        raise KeyError(f"unknown zoo member {name!r}; known: {', '.join(ZOO)}")
    return ZOO[key]


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    # One intra-op thread: float reductions then happen in one fixed order, so training is bit-reproducible.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _vocab_texts(tasks: Sequence[Any]) -> list[str]:
    texts = []
    for task in tasks:
        ds = task.dataset()
        if task.image_column in ds.column_names:  # the text only: decoding the images is wasted time here
            ds = ds.remove_columns(task.image_column)
        for doc in ds:
            texts += [task.doc_to_text(doc), str(task.doc_to_target(doc))]
    return texts


def _training_docs(tasks: Sequence[Any], spec: ZooSpec) -> list[dict[str, Any]]:
    from PIL import Image

    docs = []
    for task in tasks:
        family = (getattr(task, "config", None) or {}).get("family", task.name)
        ds = task.dataset()
        n = len(ds) if spec.train_rows_per_family is None else min(len(ds), spec.train_rows_per_family)
        for doc in ds.select(range(n)):
            images = task.doc_to_visual(doc)
            docs.append(
                {"image": images[0] if images else Image.new("RGB", (64, 64)), "prompt": task.doc_to_text(doc),
                 "answer": str(task.doc_to_target(doc)), "family": family}
            )
    if not docs:
        raise ValueError(f"zoo member {spec.name!r}: no training rows (excluded: {spec.exclude_families})")
    return docs


def _encode(processor, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Token ids (prompt + answer + EOS) and labels (-100 on the prompt) of every training doc.

    Images stay PIL images here and are turned into pixel values one batch at a time (`_collate`): ten
    thousand 64 px images as float32 tensors would hold ~0.5 GB for the whole training run.
    """
    tokenizer = processor.tokenizer
    eos = tokenizer.eos_token_id
    # The processor replaces the one "<image>" placeholder with one token per image patch; the count depends
    # only on the image size, which is fixed, so every prompt expands the same way.
    expanded = processor.image_token * _image_seq_length(processor)
    prompts = [
        processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": d["prompt"]}]}],
            add_generation_prompt=True,
            tokenize=False,
        ).replace(processor.image_token, expanded)
        for d in docs
    ]
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    # The answer follows "ASSISTANT:" after a space, as the model writes it at evaluation time.
    answer_ids = tokenizer([" " + d["answer"] for d in docs], add_special_tokens=False)["input_ids"]
    return [
        {"input_ids": p + a + [eos], "labels": [-100] * len(p) + a + [eos], "image": d["image"]}
        for d, p, a in zip(docs, prompt_ids, answer_ids)
    ]


def _image_seq_length(processor) -> int:
    from PIL import Image

    probe = processor(text=[processor.image_token], images=[Image.new("RGB", (64, 64))], return_tensors="pt")
    return int((probe["input_ids"] == processor.image_token_id).sum())


def _data_order(n: int, total: int, seed: int) -> list[int]:
    """`total` indices into `n` examples: shuffled epochs from a seeded generator (no repeats within an epoch)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    order: list[int] = []
    while len(order) < total:
        order.extend(rng.permutation(n).tolist())
    return order[:total]


def _collate(batch: list[dict[str, Any]], processor) -> dict[str, Any]:
    import torch

    pad_id = processor.tokenizer.pad_token_id
    width = max(len(ex["input_ids"]) for ex in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    # left padding, as at generation time, so the model trains on the position layout it will be asked about
    for row, ex in enumerate(batch):
        n = len(ex["input_ids"])
        ids[row, width - n :] = torch.tensor(ex["input_ids"])
        labels[row, width - n :] = torch.tensor(ex["labels"])
        mask[row, width - n :] = 1
    pixels = processor.image_processor([ex["image"].convert("RGB") for ex in batch], return_tensors="pt")
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "pixel_values": pixels["pixel_values"]}


def _zoo_factory(name: str):
    def factory(*, seed: int = 0, progress: bool = True, **kwargs: Any):
        from lmms_nb.models.hf import HFImageTextModel

        path = train_zoo_member(ZOO[name], seed=seed, progress=progress)
        model = HFImageTextModel(path, name=f"zoo-{name}", **kwargs)
        model.model_args["zoo"] = name
        return model

    factory.__doc__ = f"zoo member {name!r}: {ZOO[name].description}"
    return factory


def register_zoo_member(spec: ZooSpec) -> None:
    """Add `spec` to `ZOO` and register it as the model "zoo-<name>" (trained on first use)."""
    ZOO[spec.name] = spec
    register_model(f"zoo-{spec.name}", _zoo_factory(spec.name))


_RUNS = (
    ZooSpec("base", "hidden 64, 2 layers: 150 counting steps, then 350 on all five families"),
    ZooSpec("large", "hidden 96, 3 layers, 200 counting steps then 500 mixed: the strongest member",
            hidden_size=96, num_layers=3, curriculum_steps=200, steps=500),
    ZooSpec("short", "the base recipe stopped early: 150 counting steps, then only 60 mixed", steps=60),
    ZooSpec("tuned-vision", "the base recipe with the CLIP tower trained too, at 3% of the learning rate",
            vision_lr_mult=0.03),
    ZooSpec("no-yesno", "the base recipe without the yes/no family: it never learned to answer yes or no",
            exclude_families=("yesno",)),
    ZooSpec("blind", "image embeddings fixed at zero: answers from the question's wording only", blind=True,
            curriculum_family=None, steps=250),
)
#: checkpoints along those runs (steps counted from the start, curriculum included): free members that differ
#: in how far each skill has got (the first ones after the counting curriculum know nothing else yet)
_SNAPSHOTS = {"base": (150, 200, 250, 350, 420), "large": (200, 300, 400, 550), "tuned-vision": (250, 350),
              "no-yesno": (250, 350), "blind": (100, 170), "short": (180,)}

for _member in _RUNS:
    register_zoo_member(_member)
    for _step in _SNAPSHOTS.get(_member.name, ()):
        register_zoo_member(replace(_member, name=f"{_member.name}-s{_step}", snapshot_step=_step,
                                    run_name=_member.name,
                                    description=f"{_member.name} after {_step} of its {_member.total_steps} steps"))
