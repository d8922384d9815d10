"""Original-format InternVL checkpoints (OpenGVLab's `InternVLChatModel`) run as lmms-eval 0.7.3's `internvl2`,
`internvl3` and `internvl3_5` classes run them, on transformers' `InternVLForConditionalGeneration`.

lmms-eval's classes load such a checkpoint with its remote code (`trust_remote_code=True`) and call its `chat()`;
lmms-nb converts it in memory (`_internvl_convert`) and reproduces both: bfloat16; each image cut into 448 px tiles
by the classes' own `dynamic_preprocess` (at most `max_num` tiles, for internvl3 `min(max_num, total_max_num //
n_images)`, plus a thumbnail) and normalised with ImageNet's mean / std after a bicubic resize; `<image>`
placeholders put before the question (internvl3 keeps them where the text already has one per image); the
checkpoint's conversation template (`template` in config.json: `internvl2_5`, `Hermes-2`...) with its system
message; each `<image>` replaced by `<img>`, `num_image_token` x tiles `<IMG_CONTEXT>` and `</img>`; greedy
generation stopping at the template's separator, decoded without special tokens, cut at the separator, stripped.
One request at a time (the classes assert batch 1); no loglikelihood (the classes do not implement it).

Example:
    >>> conversation_prompt("internvl2_5", "<image>\\nHow many?").split("<|im_end|>")[1:]
    ['\\n<|im_start|>user\\n<image>\\nHow many?', '\\n<|im_start|>assistant\\n']
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from lmms_nb.models._internvl_convert import build_model, check_supported, is_internvl_chat_checkpoint
from lmms_nb.models._llava_next_convert import local_folder, read_json_config
from lmms_nb.models.base import Request, Response, generate_each

__all__ = ["CONV_TEMPLATES", "InternVLChatOriginalModel", "conversation_prompt", "dynamic_preprocess",
           "is_internvl_chat_checkpoint"]

_SYSTEM_2 = "你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, 是一个有用无害的人工智能助手。"
#: OpenGVLab's conversation.py templates of the MPT style (system, then role + message + sep per turn), as
#: (system_template, system_message, user role, assistant role, sep)
CONV_TEMPLATES = {
    "internvl2_5": ("<|im_start|>system\n{system_message}",
                    "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。",
                    "<|im_start|>user\n", "<|im_start|>assistant\n", "<|im_end|>\n"),
    "Hermes-2": ("<|im_start|>system\n{system_message}", _SYSTEM_2, "<|im_start|>user\n", "<|im_start|>assistant\n",
                 "<|im_end|>"),
    "internlm2-chat": ("<|im_start|>system\n{system_message}", _SYSTEM_2, "<|im_start|>user\n",
                       "<|im_start|>assistant\n", "<|im_end|>"),
    "phi3-chat": ("<|system|>\n{system_message}", _SYSTEM_2, "<|user|>\n", "<|assistant|>\n", "<|end|>"),
}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TILE = 448  # lmms-eval's load_image(input_size=448), whatever the checkpoint says


def conversation_prompt(template: str, question: str, system_message: str | None = None) -> str:
    """The query `chat()` builds: the template's system prompt, the question as the user's turn, the assistant's
    role open."""
    system_template, default_system, user, assistant, sep = CONV_TEMPLATES[template]
    system = system_template.format(system_message=default_system if system_message is None else system_message)
    return system + sep + user + question + sep + assistant


def _closest_aspect_ratio(aspect_ratio: float, ratios: list, width: int, height: int, size: int) -> tuple:
    best_diff, best = float("inf"), (1, 1)
    for ratio in ratios:  # iterated as the class iterates them: ties fall the same way
        diff = abs(aspect_ratio - ratio[0] / ratio[1])
        if diff < best_diff:
            best_diff, best = diff, ratio
        elif diff == best_diff and width * height > 0.5 * size * size * ratio[0] * ratio[1]:
            best = ratio
    return best


def dynamic_preprocess(image: Any, max_num: int, size: int = TILE, min_num: int = 1, as_set: bool = True) -> list:
    """lmms-eval's InternVL `dynamic_preprocess` with use_thumbnail=True: the tiles, then a thumbnail if >1 tile.
    The candidate grids are searched as a set (internvl3's module) or sorted by area (internvl2's): where two
    grids are equally close, the order decides."""
    width, height = image.size
    ratios = set((i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
                 if min_num <= i * j <= max_num)
    ratios = sorted(ratios, key=lambda x: x[0] * x[1])
    if as_set:
        ratios = set(ratios)
    cols, rows = _closest_aspect_ratio(width / height, ratios, width, height, size)
    resized = image.resize((size * cols, size * rows))
    tiles = [resized.crop(((i % cols) * size, (i // cols) * size, (i % cols + 1) * size, (i // cols + 1) * size))
             for i in range(cols * rows)]
    if len(tiles) != 1:
        tiles.append(image.resize((size, size)))
    return tiles


def _pixels(image: Any, max_num: int, as_set: bool) -> Any:
    import torch
    import torchvision.transforms as T
    from torchvision.transforms.functional import InterpolationMode

    transform = T.Compose([T.Lambda(lambda img: img.convert("RGB") if img.mode != "RGB" else img),
                           T.Resize((TILE, TILE), interpolation=InterpolationMode.BICUBIC), T.ToTensor(),
                           T.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD)])
    return torch.stack([transform(tile) for tile in dynamic_preprocess(image, max_num, as_set=as_set)])


def _load_tokenizer(folder: Any, family: str) -> Any:
    """The checkpoint's tokenizer as the classes load it (internvl3 asks for the slow one, internvl2 for the default)
    with no remote code run: InternLM2's (InternVL2-2B / 8B / 26B) by lmms-nb's port of it; any other remote-code
    tokenizer transformers does not ship is refused naming tokenizer_config.json's field."""
    import json

    import transformers

    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text()) if path.is_file() else {}
    name = config.get("tokenizer_class")
    remote = (config.get("auto_map") or {}).get("AutoTokenizer")
    if remote and name and not hasattr(transformers, name):
        from lmms_nb.models._internlm2_tokenizer import (check_slow_internlm2, is_internlm2_tokenizer,
                                                         load_internlm2_tokenizer)

        if is_internlm2_tokenizer(config) and (folder / "tokenizer.model").is_file():
            check_slow_internlm2(config, path, use_fast=family != "internvl3")
            return load_internlm2_tokenizer(folder)
        raise ValueError(f"{path}: field 'tokenizer_class' is {name!r}, remote code ({remote!r} in auto_map) that "
                         "lmms-nb does not run and transformers does not ship (lmms-nb has InternLM2Tokenizer, "
                         "with a tokenizer.model)")
    # trust_remote_code=False: config.json's auto_map names remote code, which is never run here
    return transformers.AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False,
                                                      **({"use_fast": False} if family == "internvl3" else {}))


class InternVLChatOriginalModel:
    """An original-format InternVL checkpoint with lmms-eval's `internvl2` / `internvl3` conventions (see module)."""

    accepts_video = False

    def __init__(self, pretrained: str, *, family: str, name: str | None = None, device: str = "cpu",
                 max_num: int = 12, total_max_num: int = 64, max_new_tokens: int = 1024,
                 revision: str | None = None) -> None:
        import torch

        from lmms_nb.models.hf import lmms_eval_model_name

        folder = local_folder(pretrained, revision=revision)
        path = folder / "config.json"
        self.config = read_json_config(path)
        check_supported(self.config, path)
        self.template = self.config.get("template")
        if self.template not in CONV_TEMPLATES:
            raise ValueError(f"{path}: field 'template' is {self.template!r}; lmms-nb knows "
                             f"{', '.join(CONV_TEMPLATES)}")
        self.family, self.max_num, self.total_max_num = family, int(max_num), int(total_max_num)
        self.pretrained, self.name = str(pretrained), name or lmms_eval_model_name(str(pretrained))
        self.max_new_tokens = int(max_new_tokens)
        self.model_args: dict[str, Any] = {"pretrained": self.pretrained, "dtype": "bfloat16", "device": device,
                                           "max_num": self.max_num, "format": "internvl original"}
        if family == "internvl3":
            self.model_args["total_max_num"] = self.total_max_num
        self.tokenizer = _load_tokenizer(folder, family)
        self.model = build_model(folder, self.config, dtype=torch.bfloat16, attn_implementation=None,
                                 n_tokens=len(self.tokenizer)).to(device)
        self.device = self.model.device
        vision = self.config["vision_config"]
        size = int(self.config.get("force_image_size") or vision["image_size"])
        ratio = float(self.config.get("downsample_ratio", 0.5))
        self.num_image_token = int((size // int(vision["patch_size"])) ** 2 * ratio ** 2)
        self.context_id = self.tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
        self.sep = CONV_TEMPLATES[self.template][4].strip()
        self.eos_id = self.tokenizer.convert_tokens_to_ids(self.sep)

    def __repr__(self) -> str:
        return f"InternVLChatOriginalModel(name={self.name!r}, pretrained={self.pretrained!r})"

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """One response per request, in order, each generated alone; a failing request gets `error` set."""
        return generate_each(requests, self._generate_one)

    def _question(self, prompt: str, n_images: int) -> str:
        """The text the class passes to chat(): `<image>` placeholders put before the question (internvl3 keeps
        the text as it is when it already holds one per image), then chat()'s own `<image>\\n` rule."""
        if n_images and not (self.family == "internvl3" and prompt.count("<image>") == n_images):
            prompt = " ".join(["<image>"] * n_images) + "\n" + prompt
        return prompt

    def _generate_one(self, req: Request) -> Response:
        import torch

        from lmms_nb.models._hf_inputs import as_rgb

        start = time.perf_counter()
        images = [as_rgb(img, req, k) for k, img in enumerate(req.images)]
        max_num = self.max_num if self.family == "internvl2" else max(1, min(self.max_num,
                                                                             self.total_max_num // max(len(images), 1)))
        tiles = [_pixels(image, max_num, as_set=self.family == "internvl3") for image in images]
        query = conversation_prompt(self.template, self._question(req.prompt, len(images)),
                                    self.config.get("system_message"))
        for t in tiles:
            query = query.replace("<image>", "<img>" + "<IMG_CONTEXT>" * self.num_image_token * len(t) + "</img>", 1)
        inputs = self.tokenizer(query, return_tensors="pt")
        ids = inputs["input_ids"].to(self.device)
        with torch.inference_mode():
            embeds = self.model.get_input_embeddings()(ids)
            if tiles:
                pixels = torch.cat(tiles).to(self.device, torch.bfloat16)
                features = self.model.model.get_image_features(
                    pixel_values=pixels, vision_feature_layer=-1, vision_feature_select_strategy="default").pooler_output
                selected = ids[0] == self.context_id
                if int(selected.sum()) != features.shape[0] * features.shape[1]:
                    raise ValueError(f"doc {req.doc_id}: the prompt holds {int(selected.sum())} image tokens for "
                                     f"{features.shape[0] * features.shape[1]} image features")
                embeds[0, selected] = features.reshape(-1, embeds.shape[-1]).to(embeds.dtype)
            gen = dict(req.generation_kwargs or {})
            kwargs = {"max_new_tokens": int(gen.get("max_new_tokens", self.max_new_tokens)),
                      "num_beams": int(gen.get("num_beams", 1)), "do_sample": bool(gen.get("do_sample", False)),
                      "eos_token_id": self.eos_id, "pad_token_id": self.eos_id, "use_cache": True}
            if not kwargs["do_sample"]:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            out = self.model.generate(inputs_embeds=embeds, attention_mask=inputs["attention_mask"].to(self.device),
                                      **kwargs)
        row = out[0].tolist()
        text = self.tokenizer.decode(row, skip_special_tokens=True).split(self.sep)[0].strip()
        n_out = next((i for i, t in enumerate(row) if t == self.eos_id), len(row))
        return Response(text=text, latency_s=time.perf_counter() - start, output_tokens=n_out)
