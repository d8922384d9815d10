"""lmms-eval's `output_type: multiple_choice` in lmms-nb: the transformers backend's loglikelihood and a full run.

The backend's (loss, is_greedy) is checked against a separate computation from the model's logits; the run's
per-doc acc / acc_norm against lmms-eval's rule (argmin of the losses, of losses / choice length) applied by hand
to the backend's own answers. A backend without loglikelihood is refused before anything is generated.
"""

from __future__ import annotations

import textwrap

import datasets
import pytest
import torch
from PIL import Image

import lmms_nb
from lmms_nb.models import get_model
from lmms_nb.models.base import LoglikelihoodRequest
from lmms_nb.models.baselines import FunctionModel
from lmms_nb.models.tiny import build_tiny_llava
from lmms_nb.tasks._yaml_choice import decode_results

CHOICES = ["red", "green", "blue", "yellow"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = build_tiny_llava(tmp_path_factory.mktemp("tiny_llava"),
                            vocab_texts=["What colour is the square? Answer:", *CHOICES])
    return get_model("hf", pretrained=path)


def test_loss_is_the_mean_nll_of_the_continuation_and_greedy_is_exact(tiny):
    image = Image.new("RGB", (64, 64), (200, 30, 30))
    req = LoglikelihoodRequest(0, "t", [image], "What colour is the square? Answer:", " red")
    [(loss, greedy)] = tiny.loglikelihood([req])
    # the same numbers from the logits, computed here without labels
    context = tiny._prompt(lmms_nb.models.base.Request(0, "t", [image], req.context))
    n_context = tiny.processor(text=[context], images=[image], return_tensors="pt")["input_ids"].shape[1]
    inputs = tiny.processor(text=[context + " red"], images=[image], return_tensors="pt")
    with torch.inference_mode():
        logits = tiny.model(**inputs).logits[0].float()
    ids = inputs["input_ids"][0]
    logp = torch.log_softmax(logits[n_context - 1:-1], dim=-1)
    cont = ids[n_context:]
    expected = -logp.gather(1, cont[:, None]).mean().item()
    assert loss == pytest.approx(expected, rel=1e-5)
    assert greedy == bool((logp.argmax(-1) == cont).all())


@pytest.fixture()
def colour_task(tmp_path):
    rows = {"image": [Image.new("RGB", (64, 64), c) for c in [(255, 0, 0), (0, 128, 0), (0, 0, 255), (255, 255, 0)]],
            "question": ["What colour is the square?"] * 4, "answer": [0, 1, 2, 3]}
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows)}).save_to_disk(str(tmp_path / "data"))
    (tmp_path / "mc.yaml").write_text(textwrap.dedent(f"""\
        task: colour_mc
        dataset_path: data
        dataset_kwargs: {{load_from_disk: true}}
        test_split: test
        output_type: multiple_choice
        doc_to_visual: image
        doc_to_text: "{{{{question}}}} Answer:"
        doc_to_choice: {CHOICES}
        doc_to_target: answer
        metric_list:
          - metric: acc
          - metric: acc_norm
        """))
    return tmp_path / "mc.yaml"


def test_a_multiple_choice_yaml_runs_on_the_transformers_backend(tiny, colour_task, tmp_path):
    run = lmms_nb.evaluate(tiny, colour_task, output_dir=tmp_path / "out", progress=False)
    task = lmms_nb.load_task(colour_task)
    ds = task.dataset()
    accs, norms = [], []
    for rec in sorted(run.samples.iter_rows(named=True), key=lambda r: r["doc_id"]):
        doc = ds[rec["doc_id"]]
        results = decode_results(rec["raw_response"])
        # the backend's own answers for this doc, asked again: the logged ones
        again = tiny.loglikelihood([LoglikelihoodRequest(rec["doc_id"], "colour_mc", [doc["image"]],
                                                         f"{doc['question']} Answer:", f" {c}") for c in CHOICES])
        assert [r[0] for r in results] == pytest.approx([a[0] for a in again], rel=1e-6)
        losses = [r[0] for r in results]
        pred = losses.index(min(losses))
        norm = [loss / len(c) for loss, c in zip(losses, CHOICES)]
        accs.append(float(pred == doc["answer"]))
        norms.append(float(norm.index(min(norm)) == doc["answer"]))
        assert rec["acc"] == accs[-1] and rec["acc_norm"] == norms[-1]
    assert run.score("colour_mc", "acc") == pytest.approx(sum(accs) / 4)
    assert run.score("colour_mc", "acc_norm") == pytest.approx(sum(norms) / 4)


def test_a_backend_without_loglikelihood_is_refused_before_generation(colour_task, tmp_path):
    calls = []
    model = FunctionModel(lambda req: calls.append(req) or "red", name="text-only")
    with pytest.raises(ValueError, match="multiple_choice.*has no loglikelihood"):
        lmms_nb.evaluate(model, colour_task, output_dir=tmp_path / "out", progress=False)
    assert calls == [] and not list((tmp_path / "out").rglob("*.jsonl"))
