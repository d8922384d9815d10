"""A CLIP zero-shot baseline for multiple-choice tasks (open_clip).

For each multiple-choice request (``Request.choices``) it embeds the image and one text per option
("a photo of {option}" by default), and answers with the letter of the option whose text embedding has the
highest cosine similarity with the image's. It reads no question: it is the "what does the picture look
like" baseline an LMM should beat. Requests without choices or without an image get ``Response(error=...)``.

Weights load through open_clip's own loaders, so every form it supports works: a built-in architecture
with a `pretrained` tag or checkpoint file (``CLIPZeroShotModel("ViT-B-32", pretrained="openai")``), an
``hf-hub:`` repo, or a ``local-dir:`` folder holding ``open_clip_config.json`` and the weights.

Example (a tiny random-weight CLIP built offline):
    >>> import json, tempfile, pathlib, torch, open_clip
    >>> from safetensors.torch import save_file
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16,
    ...        "head_width": 16}, "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32,
    ...        "heads": 2, "layers": 1}}
    >>> _ = (d / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    >>> save_file(open_clip.create_model(f"local-dir:{d}").state_dict(), str(d / "open_clip_model.safetensors"))
    >>> from PIL import Image
    >>> from lmms_nb.models.base import Request
    >>> model = CLIPZeroShotModel(f"local-dir:{d}")
    >>> [r] = model.generate([Request(0, "t", [Image.new("RGB", (32, 32), "red")], "Colour?", choices=["red", "blue"])])
    >>> r.text in ("A", "B")
    True
"""

from __future__ import annotations

import re
import string
import time
from typing import Any, Sequence

import numpy as np

from lmms_nb._image_input import as_pil_image
from lmms_nb.models.base import Request, Response
from lmms_nb.models.registry import register_model

__all__ = ["CLIPZeroShotModel", "strip_option_label"]

_LETTERS = string.ascii_uppercase
# "A. cat", "(B) dog", "C) fish", "D: bird" -> the option text alone (the label would pollute the prompt)
_LABEL = re.compile(r"^\s*\(?[A-Z]\s*[.):]\s+")


def strip_option_label(option: str) -> str:
    """An option's text without a leading letter label.

    >>> strip_option_label("(B) a red circle"), strip_option_label("A cat")
    ('a red circle', 'A cat')
    """
    return _LABEL.sub("", option, count=1).strip()


class CLIPZeroShotModel:
    """Answers multiple-choice requests with the letter of the option most similar to the image (see module).

    Args:
        model_name: an open_clip architecture (``"ViT-B-32"``), ``"hf-hub:org/repo"`` or ``"local-dir:PATH"``.
        pretrained: a pretrained tag or a checkpoint file (ignored by open_clip for hf-hub: and local-dir:).
        template: the option prompt; ``{option}`` is replaced by the option text.
        strip_labels: remove a leading "A." / "(A)" label from option texts first.
        device: "cpu", "cuda"... (default: cuda when available).
        batch_size: images encoded at once.
        name: the name in logs and tables.
    """

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = "openai",
        *,
        template: str = "a photo of {option}",
        strip_labels: bool = True,
        device: str | None = None,
        batch_size: int = 32,
        name: str | None = None,
    ) -> None:
        import open_clip
        import torch

        if "{option}" not in template:
            raise ValueError(f"template must contain '{{option}}', got {template!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if model_name.startswith(("local-dir:", "hf-hub:")):
            pretrained = None  # open_clip ignores it there (and warns); record what was really used
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._model, _, self._preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=pretrained, device=self.device
        )
        self._model.eval()
        self._tokenizer = open_clip.get_tokenizer(model_name)
        self.template = template
        self.strip_labels = strip_labels
        self.batch_size = batch_size
        self.name = name or f"clip-zeroshot:{model_name.split('/')[-1]}"
        self.model_args: dict[str, Any] = {
            "model_name": model_name,
            "pretrained": pretrained,
            "template": template,
            "strip_labels": strip_labels,
            "batch_size": batch_size,
        }
        self._text_features: dict[str, Any] = {}  # option prompt -> normalised embedding (options repeat a lot)

    def __repr__(self) -> str:
        return f"CLIPZeroShotModel({self.model_args['model_name']!r}, pretrained={self.model_args['pretrained']!r})"

    def option_prompt(self, option: str) -> str:
        """The text embedded for one option."""
        return self.template.format(option=strip_option_label(option) if self.strip_labels else option)

    def similarities(self, images: Sequence[Any], options: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each image with each option prompt: an array of shape (len(images), len(options))."""
        img = self._encode_images([[self._preprocess(as_pil_image(im, mode="RGB"))] for im in images])
        txt = self._encode_texts([self.option_prompt(o) for o in options])
        return (img @ txt.T).cpu().numpy()

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """The option letter for each multiple-choice request; ``Response(error=...)`` for the others."""
        responses: list[Response | None] = [None] * len(requests)
        pixels: dict[int, list] = {}  # request index -> preprocessed image tensors
        for i, r in enumerate(requests):
            problem = self._problem(r)
            if problem is None:
                try:
                    pixels[i] = [self._preprocess(as_pil_image(im, mode="RGB")) for im in r.images]
                except Exception as e:  # an unreadable image fails its own sample only
                    problem = f"could not read the image: {e!r}"
            if problem is not None:
                responses[i] = Response(text=None, error=problem)
        valid = list(pixels)
        for start in range(0, len(valid), self.batch_size):
            chunk = valid[start : start + self.batch_size]
            started = time.perf_counter()
            image_features = self._encode_images([pixels[i] for i in chunk])
            letters = []
            for row, i in enumerate(chunk):
                text_features = self._encode_texts([self.option_prompt(o) for o in requests[i].choices or []])
                letters.append(_LETTERS[int((image_features[row] @ text_features.T).argmax())])
            per_request = (time.perf_counter() - started) / len(chunk)
            for i, letter in zip(chunk, letters):
                responses[i] = Response(text=letter, latency_s=per_request)
        return responses  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------------ internals
    @staticmethod
    def _problem(r: Request) -> str | None:
        if not r.choices:
            return (
                "CLIP zero-shot needs a multiple-choice request "
                "(Request.choices is empty: the task has no doc_to_choice)"
            )
        if len(r.choices) > len(_LETTERS):
            return f"CLIP zero-shot answers with a letter: at most {len(_LETTERS)} options, got {len(r.choices)}"
        if not r.images:
            return "CLIP zero-shot needs an image (the request has none)"
        return None

    def _encode_images(self, pixel_lists: Sequence[Sequence[Any]]):
        """One normalised embedding per request; several images of one request are averaged."""
        import torch

        flat = [t for tensors in pixel_lists for t in tensors]
        owner = [k for k, tensors in enumerate(pixel_lists) for _ in tensors]
        with torch.inference_mode():
            feats = self._model.encode_image(torch.stack(flat).to(self.device)).float()
            feats = feats / feats.norm(dim=-1, keepdim=True)
            index = torch.tensor(owner, device=self.device)
            pooled = torch.zeros(len(pixel_lists), feats.shape[1], device=self.device).index_add_(0, index, feats)
        return pooled / pooled.norm(dim=-1, keepdim=True)

    def _encode_texts(self, prompts: Sequence[str]):
        import torch

        missing = [p for p in dict.fromkeys(prompts) if p not in self._text_features]
        if missing:
            with torch.inference_mode():
                feats = self._model.encode_text(self._tokenizer(missing).to(self.device)).float()
                feats = feats / feats.norm(dim=-1, keepdim=True)
            self._text_features.update(zip(missing, feats))
        return torch.stack([self._text_features[p] for p in prompts])


register_model("clip_zeroshot", CLIPZeroShotModel)
