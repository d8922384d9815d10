"""A zoo member's vision tower from the synthbench CLIP: open_clip weights copied into LLaVA's CLIP tower.

`lmms_nb.lite_selection._clip_training` trains a tiny open_clip ViT contrastively on synthbench images and
captions that name the answer ("ocr: What word is written in the image? cat"), so its image embedding (the CLS
token after the last layer) must tell the twelve words, the bar heights, the shapes and colours apart. A random
tower hands the language model patch features where the word is readable only position by position (a linear
probe on the 16 patch tokens flattened reads it on 0.66 of the test images, on their mean 0.26): a 2-layer
language model never finds it. `CLIP_TOWER_CONFIG` is the HF `CLIPVisionConfig` of the same architecture and
`load_synthbench_clip_tower` copies the weights in, so the model is an ordinary LLaVA checkpoint.

Example:
    >>> from lmms_nb.models._zoo_vision import CLIP_TOWER_CONFIG
    >>> CLIP_TOWER_CONFIG["num_attention_heads"], CLIP_TOWER_CONFIG["hidden_act"]
    (2, 'gelu')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["CLIP_TOWER_CONFIG", "load_synthbench_clip_tower"]

#: `build_tiny_clip`'s vision tower (width 64, 2 layers, head width 32, MLP ratio 4, exact GELU) as
#: `CLIPVisionConfig` fields (its 16 px patches: the zoo's default `patch_size`)
CLIP_TOWER_CONFIG: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "hidden_act": "gelu",
    "projection_dim": 64,
}


def load_synthbench_clip_tower(vision_tower: Any, clip_dir: str | Path) -> None:
    """Copy the open_clip vision weights saved in `clip_dir` into the HF `CLIPVisionModel` `vision_tower`
    (built with `CLIP_TOWER_CONFIG`); every tensor of the tower is overwritten, shapes checked."""
    import torch
    from safetensors.torch import load_file

    clip_dir = Path(str(clip_dir).removeprefix("local-dir:"))
    state = {k.removeprefix("visual."): v for k, v in load_file(clip_dir / "open_clip_model.safetensors").items()
             if k.startswith("visual.")}
    width = state["class_embedding"].shape[0]
    mapped = {
        "embeddings.class_embedding": state["class_embedding"],
        "embeddings.patch_embedding.weight": state["conv1.weight"],
        "embeddings.position_embedding.weight": state["positional_embedding"],
        "pre_layrnorm.weight": state["ln_pre.weight"],
        "pre_layrnorm.bias": state["ln_pre.bias"],
        "post_layernorm.weight": state["ln_post.weight"],
        "post_layernorm.bias": state["ln_post.bias"],
    }
    n_layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("transformer.resblocks."))
    for i in range(n_layers):
        src, dst = f"transformer.resblocks.{i}.", f"encoder.layers.{i}."
        # open_clip keeps q, k and v in one in_proj matrix (nn.MultiheadAttention), HF in three
        for name, w, b in zip(("q_proj", "k_proj", "v_proj"), state[src + "attn.in_proj_weight"].split(width),
                              state[src + "attn.in_proj_bias"].split(width)):
            mapped[f"{dst}self_attn.{name}.weight"], mapped[f"{dst}self_attn.{name}.bias"] = w, b
        for hf, oc in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"),
                       ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
            mapped[f"{dst}{hf}.weight"], mapped[f"{dst}{hf}.bias"] = state[src + oc + ".weight"], state[src + oc + ".bias"]
    # transformers 5 puts the parts on CLIPVisionModel itself, 4.x under .vision_model
    module = getattr(vision_tower, "vision_model", vision_tower)
    target = module.state_dict()
    if set(target) != set(mapped):
        raise ValueError(f"the synthbench CLIP in {clip_dir} does not match the zoo's tower: "
                         f"missing {sorted(set(target) - set(mapped))}, extra {sorted(set(mapped) - set(target))}")
    bad = [k for k in target if target[k].shape != mapped[k].shape]
    if bad:
        raise ValueError(f"the synthbench CLIP in {clip_dir}: shapes differ from the zoo's tower at {bad}")
    with torch.no_grad():
        module.load_state_dict(mapped)
