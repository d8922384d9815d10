"""The zoo's training data: synthbench rows -> token ids, labels and uint8 images, batched for the model.

Example:
    >>> from lmms_nb.models._zoo_data import _data_order
    >>> _data_order(3, 7, seed=0) == _data_order(3, 7, seed=0) and sorted(_data_order(3, 3, seed=0)) == [0, 1, 2]
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmms_nb.models._zoo_spec import ZooSpec

__all__: list[str] = []  # internals of lmms_nb.models.zoo


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
            image = images[0] if images else Image.new("RGB", (64, 64))
            group = doc.get("image_id") or len(docs)  # the rows of one yes/no image share its id
            docs.append({"image": image, "prompt": task.doc_to_text(doc), "answer": str(task.doc_to_target(doc)),
                         "family": family, "group": group, "question_loss": spec.question_loss and family == "yesno"})
            if spec.yesno_attribute_rows and family == "yesno" and str(doc["answer"]) == "Yes":
                docs.append({"image": image, **_yes_no_attribute_doc(doc), "family": family, "group": group})
    if not docs:
        raise ValueError(f"zoo member {spec.name!r}: no training rows (excluded: {spec.exclude_families})")
    return docs


def _yes_no_attribute_doc(doc: dict[str, Any]) -> dict[str, str]:
    """A question asking for the property a synthbench yes/no pair names, answered from the pair's "yes" question:
    "Is there a red square in the image?" -> ("What color are the shapes in the image?", "red")."""
    from lmms_nb.tasks.synthbench import SHORT_ANSWER_PROMPT

    words = doc["question"].rstrip("?").split()
    if doc["category"] == "count":  # "Are there exactly 2 shapes ..." / "Is there exactly 1 shape ..."
        question, answer = "How many shapes are in the image?", words[words.index("exactly") + 1]
    elif doc["category"] == "color":  # "Is there a <color> <shape> in the image?"
        question, answer = "What color are the shapes in the image?", words[3]
    else:  # existence: "Is there a <shape> in the image?"
        question, answer = "What shape is in the image?", words[3]
    return {"prompt": f"{question}\n{SHORT_ANSWER_PROMPT}", "answer": answer}


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
    image_id = processor.image_token_id
    return [
        {"input_ids": p + a + [eos], "image": _rgb(d["image"]),
         # `question_loss`: the prompt's text tokens are targets too (not the image's, and not the first token)
         "labels": ([-100] + [-100 if t == image_id else t for t in p[1:]] if d.get("question_loss") else
                    [-100] * len(p)) + a + [eos]}
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
