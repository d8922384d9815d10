"""doc_to_messages for chat backends, doc_to_text for the others, as lmms-eval 0.7.3 chooses.

mmmu_val defines both. lmms-nb's OpenAI-compatible backend (a chat backend, as lmms-eval's `openai` chat model)
sends the task's doc_to_messages to a real HTTP server on 127.0.0.1; the messages the server receives must equal
what lmms-eval builds for a chat model on the same stand-in data (its `ConfigurableMessagesTask.doc_to_messages`
through `ChatMessages.to_openai_messages`, run in a subprocess), images compared pixel for pixel. A text backend
gets doc_to_text. Each sample line says which prompt source was used.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import lmms_nb
from lmms_nb.models.baselines import FunctionModel
from lmms_nb.models.openai_compat import OpenAIChatModel

from _servers import FakeOpenAIServer
from catalogue_standins import write_standins

REFERENCE = """\
import json, sys
from lmms_eval.protocol import ChatMessages
from lmms_eval.tasks import TaskManager, get_task_dict

task = get_task_dict(["mmmu_val"], TaskManager(), task_type="chat")["mmmu_val"]
out = [ChatMessages(messages=task.doc_to_messages(doc)).to_openai_messages() for doc in task.test_docs()]
json.dump(out, open(sys.argv[1], "w"))
"""


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    root = tmp_path_factory.mktemp("messages")
    write_standins(root, ["mmmu_val"])
    env = {**os.environ, "HF_HOME": str(root / "hf"), "HF_DATASETS_CACHE": str(root / "hf_datasets")}
    proc = subprocess.run([sys.executable, "-c", REFERENCE, str(root / "reference.json")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, json.loads((root / "reference.json").read_text())


def _pixels(url: str):
    from PIL import Image

    assert url.startswith("data:image/png;base64,")
    im = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    return im.mode, im.size, im.tobytes()


def _comparable(messages):
    """Messages with each image data URL replaced by its pixels (PNG encoders may compress differently)."""
    out = []
    for m in messages:
        parts = []
        for p in m["content"]:
            if p["type"] == "image_url":
                parts.append({"type": "image_url", "pixels": _pixels(p["image_url"]["url"])})
            else:
                parts.append(p)
        out.append({"role": m["role"], "content": parts})
    return out


def _run(root: Path, model, out: Path):
    import datasets

    old, old_cache = os.getcwd(), datasets.config.HF_DATASETS_CACHE
    os.chdir(root)  # mmmu_val's dataset_path resolves to the stand-in here, as for lmms-eval
    datasets.config.HF_DATASETS_CACHE = root / "hf_datasets_ours"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return lmms_nb.evaluate(model, ["mmmu_val"], output_dir=out, progress=False, resume=False)
    finally:
        os.chdir(old)
        datasets.config.HF_DATASETS_CACHE = old_cache


def test_a_chat_backend_sends_lmms_evals_doc_to_messages(standins, tmp_path):
    root, reference = standins
    assert len(reference) == 5 and any(p["type"] == "image_url" for p in reference[0][0]["content"])
    with FakeOpenAIServer() as server:
        model = OpenAIChatModel("m", base_url=server.url, api_key_env=None, use_cache=False, concurrency=1)
        run = _run(root, model, tmp_path / "chat")
        received = [c.body["messages"] for c in server.calls if c.status == 200]
    assert len(received) == 5
    # requests may arrive in any order: match them by the text they carry
    key = lambda msgs: json.dumps([p.get("text") for m in msgs for p in m["content"]])  # noqa: E731
    assert sorted(map(key, received)) == sorted(map(key, reference))
    ref_by_key = {key(m): m for m in reference}
    for messages in received:
        assert _comparable(messages) == _comparable(ref_by_key[key(messages)])
    records = [json.loads(line) for line in run.sample_files["mmmu_val"].read_text().splitlines()]
    assert {r["prompt_source"] for r in records} == {"doc_to_messages"}
    assert all(r["error"] is None for r in records)


def test_a_text_backend_gets_doc_to_text(standins, tmp_path):
    root, reference = standins
    prompts = []

    def answer(req):
        prompts.append((req.prompt, req.messages))
        return "A"

    run = _run(root, FunctionModel(answer, name="text"), tmp_path / "text")
    assert len(prompts) == 5 and all(messages is None for _, messages in prompts)
    # doc_to_text's prompt: the question with its options and the post-prompt, no chat structure
    assert all(prompt.endswith("Answer with the option's letter from the given choices directly.")
               or prompt.endswith("Answer the question using a single word or phrase.") for prompt, _ in prompts)
    records = [json.loads(line) for line in run.sample_files["mmmu_val"].read_text().splitlines()]
    assert {r["prompt_source"] for r in records} == {"doc_to_text"}
    # the log keeps which prompt was used; the sample table has no all-null metric column for it
    assert "prompt_source" not in run.samples.columns and "mmmu_acc" in run.samples.columns


HF_REFERENCE = """\
import json, sys
from transformers import AutoProcessor
from lmms_eval.protocol import ChatMessages
from lmms_eval.tasks import TaskManager, get_task_dict

processor = AutoProcessor.from_pretrained(sys.argv[2])
task = get_task_dict(["mmmu_val"], TaskManager(), task_type="chat")["mmmu_val"]
out = []
for doc in task.test_docs():
    messages = ChatMessages(messages=task.doc_to_messages(doc))
    text = processor.apply_chat_template([messages.to_hf_messages()], tokenize=False, add_generation_prompt=True)
    out.append({"text": text[0] if isinstance(text, list) else text, "n_images": len(messages.extract_media()[0])})
json.dump(out, open(sys.argv[1], "w"))
"""


def test_a_chat_class_transformers_backend_templates_lmms_evals_doc_to_messages(standins, tmp_path):
    """lmms-eval's qwen2_5_vl (a chat class) templates the task's doc_to_messages; lmms-nb's alias does the same."""
    import torch

    from lmms_nb.models import get_model
    from lmms_nb.models.tiny import build_tiny_qwen2_5_vl
    from lmms_nb.runner._generate import make_request
    from lmms_nb.tasks import get_task

    root, _ = standins
    torch.set_num_threads(1)
    path = build_tiny_qwen2_5_vl(tmp_path / "tiny", vocab_texts=["Which is the asset? What colour"] * 4, seed=0)
    env = {**os.environ, "HF_HOME": str(root / "hf"), "HF_DATASETS_CACHE": str(root / "hf_datasets")}
    out = tmp_path / "hf_reference.json"
    proc = subprocess.run([sys.executable, "-c", HF_REFERENCE, str(out), str(path)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reference = json.loads(out.read_text())
    model = get_model("qwen2_5_vl", pretrained=str(path), device="cpu", device_map=None)
    text_model = get_model("hf", pretrained=str(path), device="cpu")
    assert model.accepts_messages and not text_model.accepts_messages  # lmms-eval's simple classes take text
    import datasets

    old, old_cache = os.getcwd(), datasets.config.HF_DATASETS_CACHE
    os.chdir(root)
    datasets.config.HF_DATASETS_CACHE = root / "hf_datasets_ours"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            task = get_task("mmmu_val")
            ds = task.dataset()
            requests = [make_request(task, i, ds[i], chat=True) for i in range(len(ds))]
    finally:
        os.chdir(old)
        datasets.config.HF_DATASETS_CACHE = old_cache
    assert [model._prompt(r) for r in requests] == [r["text"] for r in reference]
    assert [len(r.images) for r in requests] == [r["n_images"] for r in reference]
    # the prompt interleaves as the task's messages do, not images-then-doc_to_text
    assert all(r.messages is not None for r in requests)
