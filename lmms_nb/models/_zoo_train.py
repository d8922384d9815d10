"""Training one tiny LLaVA on synthbench rows: `train_tiny_vlm` and the pieces it is made of.

The recipe, and why (measured figures: `python -m lmms_nb.models.zoo`, and the issue's closing note):
- every answer is one token: the tokenizer learns each answer with the leading space it has after "ASSISTANT:",
  so reading a word ("cat") is one 30-way decision instead of spelling "Ġc" "at";
- a curriculum first (one family alone, counting by default): a tiny model trained on the five families mixed
  keeps answering from the question alone (the language prior) for 1000+ steps; after a short single-family
  curriculum it reads the image tokens, and keeps that skill when the other families are mixed in;
- deterministic: seeded init and data order, one CPU thread (float reductions in one fixed order), so the same
  spec and seed give the same weights bit for bit.

Example:
    >>> from lmms_nb.models._zoo_train import _data_order
    >>> _data_order(3, 7, seed=0) == _data_order(3, 7, seed=0) and sorted(_data_order(3, 3, seed=0)) == [0, 1, 2]
    True
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lmms_nb.models._zoo_spec import ZooSpec

__all__ = ["train_tiny_vlm"]


def train_tiny_vlm(
    path: str | Path,
    tasks: Sequence[Any],
    spec: ZooSpec,
    *,
    seed: int = 0,
    progress: bool = True,
    vocab_tasks: Sequence[Any] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    snapshot_steps: Sequence[int] = (),
    on_snapshot: Callable[[Any, int, list[float]], None] | None = None,
) -> dict[str, Any]:
    """Build a tiny LLaVA in `path` and train it on the rows of `tasks`, loss on the answer tokens only.

    Each task provides `dataset()`, `doc_to_visual`, `doc_to_text` and `doc_to_target` (a `Task`); the prompt is
    the task's text through the processor's chat template, exactly as `HFImageTextModel` builds it at evaluation
    time, and the target is the answer followed by EOS. Training runs `spec.curriculum_steps` on the
    curriculum family's rows, then `spec.steps` on all rows mixed. The tokenizer is trained on the prompts and
    answers of `vocab_tasks` (default: `tasks`). `on_step(step, loss)` is called after every step,
    `on_snapshot(model, steps_done, losses)` after each of `snapshot_steps` steps (to save the model as it is
    then). Returns training statistics (losses, seconds).
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
                         seed=seed, vocab_size=spec.vocab_size, patch_size=spec.patch_size)
        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
        if spec.vision_position_std is not None:
            _redraw_positions(model, spec.vision_position_std, seed)
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
            if on_snapshot is not None and step + 1 in snapshot_steps:
                on_snapshot(model, step + 1, losses)
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
    """Every prompt and answer of `tasks`; each answer also as " answer", the way it follows "ASSISTANT:", so
    the BPE learns it as one token (without it, 36 of the 45 answers are two or three tokens at 512 tokens)."""
    texts = []
    for task in tasks:
        ds = task.dataset()
        if task.image_column in ds.column_names:  # the text only: decoding the images is wasted time here
            ds = ds.remove_columns(task.image_column)
        for doc in ds:
            answer = str(task.doc_to_target(doc))
            texts += [task.doc_to_text(doc), answer, " " + answer]
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

    Images are kept as uint8 RGB arrays and normalised one batch at a time (`_collate`): ten thousand 64 px
    images as float32 tensors would hold ~0.5 GB for the whole training run, and the image processor itself
    costs ~80 ms a batch where the arithmetic it does on a 64 px image costs ~1 ms.
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
        {"input_ids": p + a + [eos], "labels": [-100] * len(p) + a + [eos], "image": _rgb(d["image"])}
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


def _redraw_positions(model, std: float, seed: int) -> None:
    import torch

    embedding = model.model.vision_tower.embeddings.position_embedding
    generator = torch.Generator().manual_seed(seed + 7)
    with torch.no_grad():
        embedding.weight.copy_(torch.randn(embedding.weight.shape, generator=generator) * std)


def _rgb(image) -> Any:
    import numpy as np

    if image.size != (64, 64):  # synthbench's size: the processor's resize and crop leave it as it is
        raise ValueError(f"zoo training expects 64x64 px images, got {image.size}")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _pixel_values(images: list[Any], image_processor) -> Any:
    """What `image_processor` makes of 64 px RGB images (rescale, normalise, channels first), without PIL."""
    import numpy as np
    import torch

    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() * image_processor.rescale_factor
    mean = torch.tensor(image_processor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(image_processor.image_std).view(1, 3, 1, 1)
    return (x - mean) / std


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
    pixels = _pixel_values([ex["image"] for ex in batch], processor.image_processor)
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "pixel_values": pixels}


