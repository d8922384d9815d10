"""Peak memory of loading an original-format InternVL checkpoint (OpenGVLab's `InternVLChatModel` layout, InternLM2 LLM,
weights in shards as on the hub): lmms-nb's loader now (the model built on the meta device, each shard's converted
tensors assigned as its weights, shard by shard) against the loader before (the model built with random weights, every
converted tensor of every shard gathered in one dict, then `load_state_dict`: the weights held twice and more).

    python benchmarks/bench_internvl_load_memory.py [--layers 12] [--shards 4] [--work DIR]

Builds the checkpoint with the fixture builder's InternLM2 layout scaled up (hidden 1024, 12 layers: ~290 MB of
bfloat16 weights) under a temporary folder, then loads it once with each loader, each in a fresh process
(its peak resident set is /proc/self/status's VmHWM, Linux's; `resource.getrusage`'s ru_maxrss would carry this
process's own peak across fork and exec), and prints the peak resident memory above the
process's resident memory after its imports, against the weights' size on disk, and the ratio of the two loaders.
Both loaders' logits on a short sequence are compared (they must be equal).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "lmms_eval_073"

CHILD = r'''
import json, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
import transformers  # imported before the baseline: the figure is the loading alone
from lmms_nb.models import _internvl_convert
sys.path.insert(0, sys.argv[3])
from bench_internvl_load_memory import build_model_before

def high_water_kib():  # this process's peak resident set (a new one per exec, unlike ru_maxrss: fork keeps it)
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])

folder, which = Path(sys.argv[1]), sys.argv[2]
config = json.loads((folder / "config.json").read_text())
vocab = config["llm_config"]["vocab_size"]
before = high_water_kib()
load = build_model_before if which == "before" else _internvl_convert.build_model
model = load(folder, config, dtype=torch.bfloat16, attn_implementation=None, n_tokens=vocab)
peak = high_water_kib()
with torch.inference_mode():
    logits = model(input_ids=torch.tensor([[(5 * i + 3) % (vocab - 16) for i in range(16)]])).logits
print(json.dumps({"baseline_kib": before, "peak_kib": peak, "logits": logits.float().flatten().tolist()}))
'''


def build_model_before(folder: Path, config: dict, *, dtype, attn_implementation, n_tokens: int):
    """lmms-nb's `build_model` before the shard-by-shard loading (commit c690b8d), kept for the side-by-side figure."""
    from safetensors.torch import load_file
    from transformers import InternVLForConditionalGeneration

    from lmms_nb.models._internvl_convert import (_ATTENTION, InternLM2RotaryEmbedding, _hf_config,
                                                  _register_attention, check_supported, convert_key,
                                                  convert_llm_weight, default_attention)

    path = folder / "config.json"
    check_supported(config, path)
    files = sorted(folder.glob("*.safetensors"))
    model = InternVLForConditionalGeneration._from_config(_hf_config(config, path, n_tokens), dtype=dtype)
    _register_attention()
    model.model.vision_tower.config._attn_implementation = _ATTENTION
    model.model.language_model.config._attn_implementation = attn_implementation or default_attention(
        config["llm_config"])
    state = {}
    for file in files:
        for key, value in load_file(str(file)).items():
            value = value.to(dtype)
            if key.endswith((".attn.qkv.weight", ".attn.qkv.bias")):
                new = convert_key(key.replace(".attn.qkv.", ".attn.proj."))
                q, k, v = value.chunk(3, dim=0)
                for name, part in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
                    state[new.replace(".projection_layer.", f".{name}.")] = part.contiguous()
            elif key.startswith("language_model."):
                state.update((convert_key(k), v) for k, v in convert_llm_weight(key, value, config["llm_config"]))
            else:
                state[convert_key(key)] = value
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{folder}: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    if config["llm_config"]["architectures"][0] == "InternLM2ForCausalLM":
        model.model.language_model.rotary_emb = InternLM2RotaryEmbedding.make(config["llm_config"])
    return model.eval()


def build_checkpoint(folder: Path, layers: int, shards: int) -> int:
    """The scaled-up InternLM2 checkpoint in `shards` safetensors files; returns the weights' bytes on disk."""
    import torch
    from safetensors.torch import load_file, save_file

    torch.set_num_threads(1)
    found = importlib.util.spec_from_file_location("tiny_internvl_chat_bench", FIXTURES / "_tiny_internvl_chat.py")
    tiny = importlib.util.module_from_spec(found)
    found.loader.exec_module(tiny)
    text = {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": layers, "num_attention_heads": 16,
            "num_key_value_heads": 8}
    tiny.build_tiny_internvl_chat(folder, vocab_texts=["How many squares are in the image? 3"], seed=0,
                                  llm="internlm2", template="internlm2-chat", text=text)
    weights = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    keys = list(weights)  # as built: the vision tower, the projector, then the LLM layer by layer
    per = -(-len(keys) // shards)
    for i in range(shards):
        part = {k: weights.pop(k) for k in keys[i * per:(i + 1) * per]}
        save_file(part, str(folder / f"model-{i + 1:05d}-of-{shards:05d}.safetensors"), metadata={"format": "pt"})
    return sum(f.stat().st_size for f in folder.glob("*.safetensors"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--work", default=None, help="where the checkpoint is written (default: a temporary folder)")
    args = parser.parse_args()
    folder = Path(args.work or tempfile.mkdtemp(prefix="bench_internvl_load_")) / "internvl2_internlm2_scaled"
    size = build_checkpoint(folder, args.layers, args.shards)
    print(f"checkpoint: {size / 2**20:.0f} MiB of bfloat16 weights in {args.shards} shards ({folder})")
    results = {}
    for which in ("before", "now"):
        proc = subprocess.run([sys.executable, "-c", CHILD, str(folder), which, str(Path(__file__).parent)],
                              capture_output=True, text=True, check=False, cwd=str(ROOT),
                              env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                                   "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
        if proc.returncode:
            sys.exit(f"{which}: {proc.stderr[-3000:]}")
        results[which] = json.loads(proc.stdout.strip().splitlines()[-1])
        grown = (results[which]["peak_kib"] - results[which]["baseline_kib"]) * 1024
        results[which]["grown"] = grown
        print(f"{which:6s}: peak RSS {results[which]['peak_kib'] / 2**10:.0f} MiB, {grown / 2**20:.0f} MiB above the "
              f"imports = {grown / size:.2f}x the weights")
    print(f"ratio now / before (memory above the imports): {results['now']['grown'] / results['before']['grown']:.2f}")
    print(f"logits equal: {results['now']['logits'] == results['before']['logits']}")


if __name__ == "__main__":
    main()
