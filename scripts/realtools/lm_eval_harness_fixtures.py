"""Make the lm-evaluation-harness fixtures of tests/fixtures/realtools/lm_eval_harness/ with lm-eval itself.

    python -m venv .venv-lm-eval && .venv-lm-eval/bin/pip install torch "lm-eval[hf]==0.4.13"
    .venv-lm-eval/bin/python scripts/realtools/lm_eval_harness_fixtures.py tests/fixtures/realtools/lm_eval_harness

Offline: the model is a 2-layer GPT-2 with random weights (seed 0) and a byte-level BPE tokenizer trained here,
saved with save_pretrained; the two tasks are YAML task configs over local JSONL files (`--include_path`):
`tiny_qa` (generate_until, exact_match) and `tiny_mc` (multiple_choice, acc / acc_norm). `lm_eval` runs with
`--log_samples`. The run happens in a temporary folder with the model given by a relative path, and the
script replaces that folder's absolute path in the outputs with "." so no path of this machine is committed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

QA = [("What is 2 + 2?", "4"), ("Name the colour of the sky.", "blue"), ("What do bees make?", "honey"),
      ("How many legs has a cat?", "4"), ("Opposite of hot?", "cold"), ("First letter of the alphabet?", "a")]
MC = [("The sun rises in the", ["east", "west", "north"], 0), ("Water freezes at zero degrees", ["Celsius", "Kelvin"], 0),
      ("A baby dog is a", ["kitten", "puppy", "calf", "foal"], 1), ("Grass is usually", ["purple", "green"], 1),
      ("Two plus three is", ["four", "five", "six"], 1)]

QA_YAML = """task: tiny_qa
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}/tiny_qa.jsonl
test_split: test
output_type: generate_until
doc_to_text: "Q: {{{{question}}}}\\nA:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 8
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
"""
MC_YAML = """task: tiny_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}/tiny_mc.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{prompt}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
"""


def build_model(folder: Path) -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    corpus = [q + " " + a for q, a in QA] + [p + " " + " ".join(c) for p, c, _ in MC] * 3
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(fast), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)


def main(out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="lm_eval_fixture_"))
    data = work / "data"
    data.mkdir()
    (data / "tiny_qa.jsonl").write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in QA))
    (data / "tiny_mc.jsonl").write_text(
        "".join(json.dumps({"prompt": p, "choices": c, "label": y}) + "\n" for p, c, y in MC))
    tasks = work / "tasks"
    tasks.mkdir()
    (tasks / "tiny_qa.yaml").write_text(QA_YAML.format(data="./data"))
    (tasks / "tiny_mc.yaml").write_text(MC_YAML.format(data="./data"))
    build_model(work / "tiny-gpt2")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", HF_DATASETS_CACHE=str(work / "hf_cache"))
    subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
                    "pretrained=./tiny-gpt2,dtype=float32", "--tasks", "tiny_qa,tiny_mc", "--include_path", "./tasks",
                    "--device", "cpu", "--batch_size", "1", "--log_samples", "--output_path", "./output",
                    "--seed", "0"], cwd=work, env=env, check=True)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(work / "output", out)
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            path.write_text(text.replace(str(work), "."), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    for path in sorted(out.rglob("*")):
        print(path.relative_to(out), path.stat().st_size if path.is_file() else "")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/realtools/lm_eval_harness"))
