"""Make the lmms-eval v0.1 / v0.2 fixtures of tests/fixtures/realtools/lmms_eval_legacy/ with those lmms-eval versions.

Each version in a virtual environment of its own (they pin datasets 2.16.1, numpy 1.x and an old transformers):

    python -m venv .venv-lmms-eval-0.1 && .venv-lmms-eval-0.1/bin/pip install torch "lmms-eval==0.1.2" \\
        "transformers==4.40.2" "pyarrow==15.0.2" "numpy<2"
    python -m venv .venv-lmms-eval-0.2 && .venv-lmms-eval-0.2/bin/pip install torch "lmms-eval==0.2.0" \
        "transformers==4.39.2" "tokenizers==0.15.2" "pyarrow==15.0.2" "numpy<2" loguru
    .venv-lmms-eval-0.1/bin/python scripts/realtools/lmms_eval_legacy_fixtures.py tests/fixtures/realtools/lmms_eval_legacy/v0.1.2
    .venv-lmms-eval-0.2/bin/python scripts/realtools/lmms_eval_legacy_fixtures.py tests/fixtures/realtools/lmms_eval_legacy/v0.2.0

(lmms-eval 0.2.3's PyPI wheel cannot make these: its `evaluate()` ends in a `while ... else: return None`, so
`simple_evaluate` fails with "'NoneType' object does not support item assignment" and writes no results.)

Offline, all through lmms-eval's own CLI (`python -m lmms_eval ... --log_samples`):
- the model is a tiny LLaVA-1.5 (`llava_hf`: CLIP vision tower + 2-layer Llama, random weights, seed 0) with a
  byte-level BPE tokenizer trained here, saved with the installed transformers' save_pretrained in a folder named
  `tiny-llava-1.5-hf` (lmms-eval 0.2 picks the LLaVA-1.5 class by that name);
- the data are two small datasets written here as Parquet (32-pixel generated images), read through
  `dataset_path: parquet` task YAMLs in a local `--include_path` folder: `shapes_mcq` (multiple_choice:
  lmms-eval's own `acc` over the choices' log-likelihoods) and `shapes_vqa` (generate_until with a
  `process_results` giving `exact_match` and a dict metric `shape_score` {question_id, category, score}, as MME does);
- lmms-eval 0.1.2's llava_hf reads `self.accelerator`, which it sets only in multi-process runs, and 0.2.3's
  evaluator writes a rank marker into its output folder before creating it: the script runs lmms-eval's CLI
  (`lmms_eval.__main__.cli_evaluate`) after giving that class a 1-process Accelerator (0.1) or creating the folder
  first (0.2);
- lmms-eval 0.1 loads HF evaluate's `exact_match` module when it is imported (from the Hub): the run folder holds a
  local module of that name (`exact_match/exact_match.py`, found before the Hub), which these tasks never call.
The run happens in a temporary folder (the model given by a relative path); the script replaces that folder's
absolute path in the outputs with "." so no path of this machine is committed, and writes `version.txt`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 60, 220), "yellow": (230, 220, 30)}
MCQ = [  # question, choices, label, colour of the image
    ("What colour is the square?", ["red", "green", "blue", "yellow"], 0, "red"),
    ("What colour is the square?", ["red", "green", "blue", "yellow"], 1, "green"),
    ("What colour is the square?", ["red", "green", "blue", "yellow"], 2, "blue"),
    ("What colour is the square?", ["red", "green", "blue", "yellow"], 3, "yellow"),
    ("Which colour fills the picture?", ["blue", "red"], 1, "red"),
    ("Which colour fills the picture?", ["green", "yellow"], 0, "green"),
    ("Is the picture warm or cold?", ["warm", "cold"], 1, "blue"),
    ("Is the picture warm or cold?", ["warm", "cold"], 0, "yellow"),
]
VQA = [  # question, answer, category, colour
    ("Is the square red? Answer Yes or No.", "Yes", "colour", "red"),
    ("Is the square red? Answer Yes or No.", "No", "colour", "blue"),
    ("Is there a square? Answer Yes or No.", "Yes", "existence", "green"),
    ("Is there a circle? Answer Yes or No.", "No", "existence", "yellow"),
    ("Name the colour.", "red", "colour", "red"),
    ("Name the colour.", "green", "colour", "green"),
]

UTILS = '''
def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def mcq_text(doc, model_specific_prompt_kwargs=None):
    return doc["question"] + "\\nAnswer with the colour or word."


def mcq_choices(doc):
    return list(doc["choices"])


def vqa_text(doc, model_specific_prompt_kwargs=None):
    return doc["question"]


def vqa_process_results(doc, results):
    prediction = results[0].strip()
    score = float(prediction.lower() == doc["answer"].lower())
    # partial credit for naming the answer anywhere (so the two metrics differ)
    shape = 1.0 if score else (0.5 if doc["answer"].lower() in prediction.lower() else 0.0)
    return {"exact_match": score,
            "shape_score": {"question_id": doc["question_id"], "category": doc["category"], "score": shape}}


def shape_score_agg(results):
    return sum(r["score"] for r in results) / len(results)
'''

MCQ_YAML = """task: shapes_mcq
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {data}/shapes_mcq.parquet
test_split: test
output_type: multiple_choice
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.mcq_text
doc_to_choice: !function utils.mcq_choices
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
VQA_YAML = """task: shapes_vqa
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {data}/shapes_vqa.parquet
test_split: test
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.vqa_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 4
  temperature: 0
  do_sample: false
process_results: !function utils.vqa_process_results
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
  - metric: shape_score
    aggregation: !function utils.shape_score_agg
    higher_is_better: true
"""

# HF evaluate's `exact_match` module, which lmms-eval 0.1 loads on import (from the Hub, unreachable here)
EXACT_MATCH_MODULE = '''
import datasets
import evaluate


class ExactMatch(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description="exact match", citation="", inputs_description="",
                                   features=datasets.Features({"predictions": datasets.Value("string"),
                                                               "references": datasets.Value("string")}))

    def _compute(self, predictions, references):
        return {"exact_match": sum(p == r for p, r in zip(predictions, references)) / max(len(predictions), 1)}
'''


# `python -m lmms_eval`, except that lmms-eval 0.1.2's llava_hf sets `self.accelerator` only in multi-process runs
# yet reads it in every run (AttributeError on one CPU): the class gets a 1-process Accelerator first; and 0.2.3
# writes `rank0_metric_eval_done.txt` into its output folder before making it: the folder is made first
RUN_LMMS_EVAL = """
import sys
from importlib.metadata import version
if version("lmms_eval").startswith("0.1."):
    import accelerate
    import lmms_eval.models.llava_hf as llava_hf
    llava_hf.LlavaHf.accelerator = accelerate.Accelerator()
else:  # 0.2.3 writes a rank marker into its output folder before it creates that folder
    import os
    import lmms_eval.evaluator as evaluator
    _evaluate = evaluator.evaluate
    def evaluate(*args, **kwargs):
        if kwargs.get("cli_args") is not None and kwargs["cli_args"].output_path:
            os.makedirs(kwargs["cli_args"].output_path, exist_ok=True)
        return _evaluate(*args, **kwargs)
    evaluator.evaluate = evaluate
import lmms_eval.models.llava_hf  # noqa: F401 - 0.2.0's model list forgets it; importing registers it
from lmms_eval.__main__ import cli_evaluate
sys.argv[0] = "lmms_eval"
cli_evaluate()
"""


def image(colour: str):
    from PIL import Image

    picture = Image.new("RGB", (32, 32), (245, 245, 245))
    picture.paste(Image.new("RGB", (16, 16), COLOURS[colour]), (8, 8))
    return picture


def write_data(folder: Path) -> None:
    import datasets

    folder.mkdir(parents=True, exist_ok=True)
    mcq = datasets.Dataset.from_dict(
        {"question_id": [f"mcq_{i}" for i in range(len(MCQ))], "question": [q for q, _, _, _ in MCQ],
         "choices": [c for _, c, _, _ in MCQ], "label": [lab for _, _, lab, _ in MCQ],
         "image": [image(col) for *_, col in MCQ]},
        features=datasets.Features({"question_id": datasets.Value("string"), "question": datasets.Value("string"),
                                    "choices": datasets.Sequence(datasets.Value("string")),
                                    "label": datasets.Value("int64"), "image": datasets.Image()}),
    )
    mcq.to_parquet(str(folder / "shapes_mcq.parquet"))
    vqa = datasets.Dataset.from_dict(
        {"question_id": [f"vqa_{i}" for i in range(len(VQA))], "question": [q for q, _, _, _ in VQA],
         "answer": [a for _, a, _, _ in VQA], "category": [c for _, _, c, _ in VQA],
         "image": [image(col) for *_, col in VQA]},
        features=datasets.Features({"question_id": datasets.Value("string"), "question": datasets.Value("string"),
                                    "answer": datasets.Value("string"), "category": datasets.Value("string"),
                                    "image": datasets.Image()}),
    )
    vqa.to_parquet(str(folder / "shapes_vqa.parquet"))


def build_model(folder: Path) -> None:
    """A tiny LLaVA-1.5 built with the installed (old) transformers, so its files are the ones it reads."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlamaTokenizerFast, LlavaForConditionalGeneration, LlavaProcessor)

    texts = ["USER: ", "ASSISTANT:", "A chat between a curious user and an artificial intelligence assistant."]
    texts += [q + " " + " ".join(c) for q, c, _, _ in MCQ] + [q + " " + a for q, a, _, _ in VQA]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(texts * 3, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<s>", "</s>", "<image>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tokenizer = LlamaTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>",
                                        eos_token="</s>", unk_token="<pad>", model_max_length=512)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    processor = LlavaProcessor(image_processor=CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}), tokenizer=tokenizer)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_index=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=-1)
    config.pad_token_id = tokenizer.pad_token_id
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def scrub(folder: Path, root: str) -> None:
    """Replace the temporary run folder's absolute path by "." in every text file written."""
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".txt", ".yaml", ".log"):
            text = path.read_text(encoding="utf-8")
            if root in text:
                path.write_text(text.replace(root, "."), encoding="utf-8")


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    import lmms_eval
    from importlib.metadata import version

    lmms_version = version("lmms_eval")
    with tempfile.TemporaryDirectory(prefix="lmms_eval_legacy_") as tmp:
        root = Path(tmp)
        write_data(root / "data")
        build_model(root / "tiny-llava-1.5-hf")
        tasks = root / "tasks"
        tasks.mkdir()
        (tasks / "utils.py").write_text(UTILS)
        (tasks / "shapes_mcq.yaml").write_text(MCQ_YAML.format(data=root / "data"))
        (tasks / "shapes_vqa.yaml").write_text(VQA_YAML.format(data=root / "data"))
        (root / "exact_match").mkdir()
        (root / "exact_match" / "exact_match.py").write_text(EXACT_MATCH_MODULE)
        env = dict(os.environ, HF_HOME=str(root / "hf_home"), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1",
                   TRANSFORMERS_OFFLINE="1", HF_EVALUATE_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                   PYTHONPATH=str(tasks))
        command = [sys.executable, "-c", RUN_LMMS_EVAL, "--model", "llava_hf",
                   "--model_args", "pretrained=./tiny-llava-1.5-hf,device=cpu,device_map=cpu,dtype=float32",
                   "--tasks", "shapes_mcq,shapes_vqa", "--include_path", str(tasks), "--batch_size", "1",
                   "--log_samples", "--log_samples_suffix", "legacy", "--output_path", "./logs"]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, cwd=root, env=env, check=True)
        logs = root / "logs"
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(logs, out)
        scrub(out, str(root))
        (out / "version.txt").write_text(f"lmms-eval {lmms_version} ({Path(lmms_eval.__file__).parent.name})\n")
    print(json.dumps(sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()), indent=1))


if __name__ == "__main__":
    main()
