"""Training one tiny LLaVA on synthbench rows: `train_tiny_vlm` and the pieces it is made of.

The recipe, and why (figures from runs on the 2000-row train split, scored on 100 test rows per family):
- every answer is one token: the tokenizer learns each answer with the leading space it has after "ASSISTANT:",
  so reading a word ("cat") is one 30-way decision instead of spelling "Ġc" "at" (at 512 tokens without it, 36
  of the 45 synthbench answers took two or three tokens);
- a curriculum first (one family alone, counting by default): a tiny model trained on the five families mixed
  keeps answering from the question alone (the language prior) for 1000+ steps; after a short single-family
  curriculum it reads the image tokens, and keeps that skill when the other families are mixed in;
- the frozen random CLIP tower's position embeddings can be redrawn larger (`ZooSpec.vision_position_std`):
  CLIP's init (std 0.02, a patch embeds at std ~1.0) hands over a bag of patches; the tallest bar of a chart
  went from 0.39 to 0.65 with positions visible (count+chart run, 150 + 450 steps), but the five-family base
  recipe then counted worse (0.29 after its 150 counting steps, 0.52 after 500), so only some runs see them;
- deterministic: seeded init and data order, one CPU thread (float reductions in one fixed order), so the same
  spec and seed give the same weights bit for bit.

Specialists: a family trained alone from the first step is learned far sooner than the five mixed. With synthbench
v2 (mcq options fixed per kind), mcq alone reached 0.58 on the test rows after 300 of 700 steps and 0.80 after
500, where 350 mixed steps after the counting curriculum still answered one constant letter; charts alone, 0.37
after 300 steps (majority ~0.22).

The vision tower (measured with `benchmarks/bench_zoo_probe.py` and `bench_zoo_learning.py`, synthbench v2): the
random, frozen CLIP tower does carry the ocr word, but only position by position (a logistic regression on its 16
patch tokens flattened reads it on 0.66 of the test images, on their mean 0.26), and a 2-layer language model does
not learn to read it so: 300 ocr-only steps answered one constant word, and so did 400 with the tower training at
0.3x the learning rate. Starting the tower from the synthbench CLIP (`ZooSpec.clip_init`; trained contrastively on
images and captions naming the answers, `lmms_nb.models._zoo_vision`) and handing over its CLS token too puts the
answer in one token: trained 1000 steps on the 2000-row split, a probe on its CLS token reads the word on 0.77 of
the test images (0.97 from the 16 patches); charts alone then reached 0.635 first-token accuracy after 500 steps
and 0.975 after 1400 (the random tower, positions visible, ~0.37 after 700), mcq 0.88 after 250 mcq + 450 mcq/yes-no steps. Training
that tower with the model (1x the learning rate) lost it: 500 ocr-only steps answered one constant word.

Yes/no, and why it is hard (`benchmarks/bench_zoo_yesno_probe.py`, `bench_zoo_learning.py`): every yes/no image
comes with a "yes" and a "no" question that differ in one word (a shape, a colour or a count), so neither the
image nor the question alone tells the answer, only their match. Each such word is one token of the member's
tokenizer, and the synthbench CLIP's features hold the property (a probe on its CLS token tells the colour on
1.0 of the test images, the shape on 0.55 and the count on 0.51; on the 16 patch tokens 0.94 / 1.0 / 0.89), and a
bilinear probe (CLS x the question's words) answers 0.755 of the test rows where a linear one on both gets 0.525.
Trained on the answer alone, the language model sits at exactly ln 2 (one constant answer): 300 yes/no steps from
the random tower, 450 after a counting curriculum, 800 (lr 5e-3) and 1200 with a 128-wide 4-layer model from the
CLIP tower, 800 with the question before the image (`ZooSpec.question_first`), 1000 with a row asking for the
named property beside each pair (`yesno_attribute_rows`), 600 with both questions of an image in one batch of 64
(`paired_yesno`): the answer's gradient reaches the comparison only through a product of two still-random
paths. A language-modelling loss on the prompt's text (`ZooSpec.question_loss`, the question's words among the
constant chat template and instruction: after "Is there a", the
picture predicts "red" half the time) trains reading the picture at the question's words from the first step,
and the answer then follows (first-token accuracy on the yes/no test rows, paired batches of 32): 0.625 at the
end of a 1200-step run; in a 3000-step run 0.565 after 1500 steps, 0.715 after 2500 and 0.78 at the end. The
same at lr 6e-3 for 2000 steps: 0.575; with the attribute rows too, 2500 steps: 0.545.

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

from lmms_nb.models._zoo_data import _collate, _data_order, _encode, _training_docs, _vocab_texts
from lmms_nb.models._zoo_spec import ZooSpec
from lmms_nb.models._zoo_vision import CLIP_TOWER_CONFIG, load_synthbench_clip_tower
from lmms_nb.models.tiny import CHAT_TEMPLATE

__all__ = ["QUESTION_FIRST_TEMPLATE", "train_tiny_vlm"]

#: `CHAT_TEMPLATE` with a user message's text written before its images (`ZooSpec.question_first`)
QUESTION_FIRST_TEMPLATE = CHAT_TEMPLATE.replace(
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>{{ '\\n' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}",
    "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{{ '\\n' }}{% endif %}"
    "{% endfor %}{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>{% endif %}{% endfor %}",
)


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
    """Build a tiny LLaVA in `path` and train it on the rows of `tasks`, loss on the answer tokens (and, for the rows
    of a `question_loss` member, on the prompt's text tokens too).

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
        clip_dir = None
        if spec.clip_init:
            from lmms_nb.lite_selection._clip_training import train_synthbench_clip

            clip_dir = train_synthbench_clip(seed=seed, steps=spec.clip_steps, n_train=spec.clip_n_train)
        build_tiny_llava(path, vocab_texts=vocab_texts, hidden_size=spec.hidden_size, num_layers=spec.num_layers,
                         seed=seed, vocab_size=spec.vocab_size, patch_size=spec.patch_size,
                         vision_config=CLIP_TOWER_CONFIG if spec.clip_init else None, keep_cls=spec.clip_init)
        if spec.question_first:
            (path / "chat_template.jinja").write_text(QUESTION_FIRST_TEMPLATE)
        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
        if clip_dir is not None:
            load_synthbench_clip_tower(model.model.vision_tower, clip_dir)
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
        order = _training_order([d["family"] for d in docs], spec, seed,
                                groups=[d["group"] for d in docs] if spec.paired_yesno else None)
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


def _training_order(families: list[str], spec: ZooSpec, seed: int, groups: list[Any] | None = None) -> list[int]:
    """Example indices for every step: the curriculum family's rows first, then all rows, shuffled per epoch
    (with `groups`, the rows sharing a group id stay next to each other, in a shuffled order of groups)."""
    order: list[int] = []
    if spec.curriculum_family and spec.curriculum_steps:
        rows = [i for i, f in enumerate(families) if f == spec.curriculum_family]
        if not rows:
            raise ValueError(f"zoo member {spec.name!r}: no training rows of {spec.curriculum_family!r}")
        order += [rows[i] for i in _data_order(len(rows), spec.curriculum_steps * spec.batch_size, seed)]
    if groups is None:
        return order + _data_order(len(families), spec.steps * spec.batch_size, seed + 1)
    members: dict[Any, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    units = list(members.values())
    mixed: list[int] = []
    for u in _data_order(len(units), spec.steps * spec.batch_size, seed + 1):
        mixed += units[u]
        if len(mixed) >= spec.steps * spec.batch_size:
            break
    return order + mixed[: spec.steps * spec.batch_size]




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


def _redraw_positions(model, std: float, seed: int) -> None:
    import torch

    embedding = model.model.vision_tower.embeddings.position_embedding
    generator = torch.Generator().manual_seed(seed + 7)
    with torch.no_grad():
        embedding.weight.copy_(torch.randn(embedding.weight.shape, generator=generator) * std)
