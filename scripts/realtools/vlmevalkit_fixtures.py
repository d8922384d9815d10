"""Make the VLMEvalKit fixtures of tests/fixtures/realtools/vlmevalkit/ with VLMEvalKit itself.

Run with a Python that has VLMEvalKit installed (it is not on PyPI; install its repository, e.g.
`pip install -e VLMEvalKit` in a virtual environment of its own), offline:

    python scripts/realtools/vlmevalkit_fixtures.py tests/fixtures/realtools/vlmevalkit

What it does, all through VLMEvalKit's own code:
1. writes small datasets as VLMEvalKit TSVs (generated 32-pixel images, questions, options, answers) under a
   temporary LMUData folder, and registers their md5 so VLMEvalKit loads them instead of downloading;
2. runs VLMEvalKit's inference loop (`vlmeval.inference.infer_data_job`) with a scripted model: a VLMEvalKit
   `BaseModel` whose answers come from the table below, in the forms real models answer ("B", "(C) bird",
   "The answer is D", a Python list such as ['A'], option text, refusals, hedges, yes-and-no...);
3. runs each dataset's own `evaluate()` (exact matching: no LLM), and for AI2D_TEST once more with an LLM judge
   served by a stub OpenAI-compatible server on 127.0.0.1 (it answers with the option letter the answer holds,
   or Z), so VLMEvalKit writes its judged files (`*_exact_matching_result.xlsx`, `*_openai_result.xlsx`,
   `*_auxmatch.xlsx`, `*_score.csv`, `*_acc.csv`, `*_score.json`, `*_acc.json`);
4. records what each `evaluate()` returned in `reported_scores.json`, and removes VLMEvalKit's pickles.

The tests read these outputs: lmms-nb's `rescore(scheme="vlmevalkit")` must give the numbers VLMEvalKit reported.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MODEL = "ScriptedVLM"
MME_CATEGORIES = ["OCR", "artwork", "celebrity", "color", "count", "existence", "landmark", "position", "posters",
                  "scene", "code_reasoning", "commonsense_reasoning", "numerical_calculation", "text_translation"]


def png(seed: int) -> str:
    from PIL import Image

    image = Image.new("RGB", (32, 32), ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def mcq_rows(questions):
    """questions: (question, [options], answer letter, category, l2, response)."""
    rows = []
    for i, (question, options, answer, category, l2, response) in enumerate(questions):
        row = {"index": i, "question": question, "answer": answer, "category": category, "image": png(i),
               "response": response}
        if l2:
            row["l2-category"] = l2
        for letter, text in zip("ABCDE", options):
            row[letter] = text
        rows.append(row)
    return rows


def mmbench_rows():
    """Circular MMBench: every question once per rotation of its options (index = question + k * 1e6)."""
    base = [
        ("What animal is shown?", ["cat", "dog", "bird", "fish"], 0, "image_scene", "coarse_perception",
         ["A", "(B) cat", "C. cat", "The answer is D"]),       # right in every rotation, four answer styles
        ("Which colour dominates?", ["red", "blue"], 1, "image_style", "coarse_perception",
         ["B", "A"]),                                          # right in both rotations
        ("How many objects?", ["one", "two", "three"], 2, "object_localization", "finegrained_perception (instance-level)",
         ["C", "C", "B"]),                                     # wrong in the second rotation
        ("Where is the ball?", ["left", "right", "top", "bottom"], 3, "spatial_relationship", "relation_reasoning",
         ["D", "I am not sure about this one.", "B", "C"]),  # a hedge in one rotation, right elsewhere
        ("Is it day or night?", ["day", "night"], 0, "image_scene", "coarse_perception",
         ["I cannot tell.", "B"]),                            # unreadable main rotation
    ]
    rows = []
    for g, (question, options, answer, category, l2, responses) in enumerate(base):
        n = len(options)
        for k in range(n):
            rotated = options[k:] + options[:k]
            index = g + k * 1_000_000
            row = {"index": index, "question": question, "answer": "ABCD"[(answer - k) % n], "category": category,
                   "l2-category": l2, "split": "dev", "image": png(g), "response": responses[k]}
            for letter, text in zip("ABCD", rotated):
                row[letter] = text
            rows.append(row)
    return rows


AI2D = mcq_rows([
    ("Which organ pumps blood?", ["lungs", "heart", "liver", "kidney"], "B", "biology", None, "B"),
    ("Which planet is largest?", ["Mars", "Venus", "Jupiter", "Earth"], "C", "space", None, "(C) Jupiter"),
    ("What eats grass?", ["cow", "lion", "shark", "eagle"], "A", "food chains", None, ["A"]),
    ("Which is a liquid?", ["ice", "steam", "water", "rock"], "C", "matter", None, ["C."]),
    ("Which stage follows larva?", ["egg", "pupa", "adult", "nymph"], "B", "life cycles", None, "pupa"),
    ("What does the arrow show?", ["energy", "water", "light", "heat"], "A", "food chains", None,
     "The answer is B"),
    ("Which layer is outermost?", ["core", "mantle", "crust", "ocean"], "C", "earth", None,
     "Cannot determine the answer from the image."),
    ("Which one is a mammal?", ["frog", "whale", "trout", "snake"], "B", "biology", None,
     "Both the frog and the whale could be."),
    ("How many legs has an insect?", ["four", "six", "eight", "ten"], "B", "biology", None, "D"),
    ("What causes tides?", ["wind", "moon", "rain", "sand"], "B", "space", None, "['B', 'the moon']"),
])

MMMU = mcq_rows([
    ("What is the derivative of x^2? <image 1>", ["x", "2x", "x^2", "2"], "B", "Math", None, "B"),
    ("Which gas do plants absorb? <image 1>", ["oxygen", "nitrogen", "carbon dioxide", "helium"], "C", "Biology",
     None, "carbon dioxide"),
    ("Which year did WWII end? <image 1>", ["1918", "1945", "1939", "1950"], "B", "History", None, "(A)"),
    ("What is the unit of force? <image 1>", ["joule", "watt", "newton", "pascal"], "C", "Physics", None,
     "I would say newton or joule."),
]) + [
    {"index": 4, "question": "How many sides has a hexagon? <image 1>", "answer": "6", "category": "Math",
     "image": png(4), "response": "6"},
    {"index": 5, "question": "What colour is the sky? <image 1>", "answer": "blue", "category": "Art",
     "image": png(5), "response": "It is grey."},
    {"index": 6, "question": "Name the capital of France. <image 1>", "answer": "Paris", "category": "History",
     "image": png(6), "response": "The capital is Paris."},
]
for row in MMMU:
    row["split"] = "validation"


def mme_rows():
    styles = [("Yes", "Yes"), ("No.", "No"), ("yes, it is", "Yes"), ("No, there is no such thing.", "Yes"),
              ("Yes and no.", "No"), ("I am not sure.", "Yes"), ("['Yes']", "Yes"), ("Nope", "No")]
    rows = []
    for c, category in enumerate(MME_CATEGORIES):
        for q in range(2):
            i = 2 * c + q
            response, answer = styles[i % len(styles)]
            rows.append({"index": i, "question": f"Is this a {category} picture number {i}? Please answer yes or no.",
                         "answer": answer, "category": category, "image_path": f"{category}/{c}.png",
                         "image": png(c), "response": response})
    return rows


OCRBENCH_CATEGORIES = ["Regular Text Recognition", "Scene Text-centric VQA", "Doc-oriented VQA",
                       "Key Information Extraction", "Handwritten Mathematical Expression Recognition"]
OCRBENCH = [
    {"index": i, "question": f"What is written in picture {i}?", "answer": str(answers), "category": category,
     "image": png(i), "response": response}
    for i, (answers, category, response) in enumerate([
        (["STOP"], OCRBENCH_CATEGORIES[0], "The sign says stop."),
        (["exit", "way out"], OCRBENCH_CATEGORIES[1], "Way Out"),
        (["1984"], OCRBENCH_CATEGORIES[2], "19 84"),
        (["$12.50"], OCRBENCH_CATEGORIES[3], "Total: $12.50"),
        (["x^{2}+1"], OCRBENCH_CATEGORIES[4], "x^{2} + 1"),
        (["a+b"], OCRBENCH_CATEGORIES[4], "a-b"),
    ])
]

MTVQA = [
    {"index": i, "question": f"Frage {i}: was steht da?", "answer": answer, "category": category, "split": "test",
     "image": png(i), "response": response}
    for i, (answer, category, response) in enumerate([
        ("Bahnhof", "DE", "Der Bahnhof."), ("gare", "FR", "La Gare"), ("U.S.A", "EN", "usa"),
        ("東京", "JA", "東京です"), ("Berlin", "DE", "München"),
    ])
]

TEXTVQA = [
    {"index": i, "question": f"What brand is on sign {i}?", "answer": str(answers), "image": png(i),
     "response": response}
    for i, (answers, response) in enumerate([
        (["nike"] * 10, "Nike"),
        (["coca cola"] * 6 + ["coke"] * 4, "coke"),
        (["two"] * 2 + ["2"] * 8, "Two"),
        (["the beatles"] * 10, "Beatles."),
        (["yes"] * 10, "no"),
    ])
]

DOCVQA = [
    {"index": i, "question": f"What is the invoice number {i}?", "answer": str(answers), "image": png(i),
     "response": response}
    for i, (answers, response) in enumerate([
        (["INV-1024"], "INV-1024"), (["March 3, 2020", "3/3/2020"], "March 3 2020"),
        (["Acme Corp."], "acme corporation"), (["42"], "The total is forty two"),
    ])
]

CHARTQA = [
    {"index": i, "question": f"What is the value of bar {i}?", "answer": answer, "image": png(i), "response": response}
    for i, (answer, response) in enumerate([("42", "41"), ("12%", "0.12"), ("100", "90"), ("Blue", "blue")])
]

GQA = [
    {"index": i, "question": f"What is on the table {i}?", "answer": answer, "image": png(i), "response": response}
    for i, (answer, response) in enumerate([("cup", "Cup"), ("book", "a book"), ("pen", " pen ")])
]

DATASETS = {
    # name: (VLMEvalKit class path, rows)
    "MMBench_DEV_EN": ("vlmeval.dataset.image_mcq:ImageMCQDataset", mmbench_rows()),
    "AI2D_TEST": ("vlmeval.dataset.image_mcq:ImageMCQDataset", AI2D),
    "MMMU_DEV_VAL": ("vlmeval.dataset.image_mcq:MMMUDataset", MMMU),
    "MME": ("vlmeval.dataset.image_yorn:ImageYORNDataset", mme_rows()),
    "OCRBench": ("vlmeval.dataset.image_vqa:OCRBench", OCRBENCH),
    "MTVQA_TEST": ("vlmeval.dataset.image_vqa:MTVQADataset", MTVQA),
    "TextVQA_VAL": ("vlmeval.dataset.image_vqa:ImageVQADataset", TEXTVQA),
    "DocVQA_VAL": ("vlmeval.dataset.image_vqa:ImageVQADataset", DOCVQA),
    "ChartQA_TEST": ("vlmeval.dataset.image_vqa:ImageVQADataset", CHARTQA),
    "GQA_TestDev_Balanced": ("vlmeval.dataset.image_vqa:ImageVQADataset", GQA),
}


class JudgeStub(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint standing in for the LLM judge: it reads the answer out of VLMEvalKit's
    matching prompt and replies with the one option letter whose text or letter the answer holds, else Z."""

    def log_message(self, *args):  # keep the script's output to VLMEvalKit's own
        pass

    def do_POST(self):
        import re

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        if isinstance(prompt, list):
            prompt = " ".join(p.get("text", "") for p in prompt if isinstance(p, dict))
        last = prompt.rsplit("Example 3:", 1)[-1]
        options = dict(re.findall(r"([A-E])\. ([^\n]+?)(?=\s+[A-E]\. |\nAnswer:|$)", last.split("Answer:")[0]))
        answer = last.split("Answer:", 1)[-1].split("Your output:")[0]
        letters = re.findall(r"\b([A-E])\b", answer)
        texts = [k for k, v in options.items() if v.strip().lower() in answer.lower()]
        reply = letters[0] if len(set(letters)) == 1 else texts[0] if len(texts) == 1 else "Z"
        payload = json.dumps({"id": "stub", "object": "chat.completion", "model": body.get("model", "stub"),
                              "choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": reply}}],
                              "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main(out: Path) -> None:
    lmu = Path(tempfile.mkdtemp(prefix="lmudata_"))
    os.environ["LMUData"] = str(lmu)
    os.environ.setdefault("PRED_FORMAT", "xlsx")
    import importlib

    import pandas as pd

    from vlmeval.inference import infer_data_job
    from vlmeval.vlm.base import BaseModel

    responses: dict[str, dict[str, object]] = {}

    class ScriptedVLM(BaseModel):
        """A VLMEvalKit model whose answer to each question comes from the tables above."""

        INTERLEAVE = False

        def generate_inner(self, message, dataset=None):
            text = "\n".join(m["value"] for m in message if m["type"] == "text")
            table = responses[dataset]
            hits = [q for q in table if q in text]
            assert len(hits) == 1, (dataset, text)
            return table[hits[0]]

    out.mkdir(parents=True, exist_ok=True)
    work = out / MODEL
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    reported = {}
    model = ScriptedVLM()
    for name, (class_path, rows) in DATASETS.items():
        module, cls_name = class_path.split(":")
        cls = getattr(importlib.import_module(module), cls_name)
        table = pd.DataFrame([{k: v for k, v in r.items() if k != "response"} for r in rows])
        tsv = lmu / f"{name}.tsv"
        table.to_csv(tsv, sep="\t", index=False)
        cls.DATASET_MD5 = dict(cls.DATASET_MD5, **{name: hashlib.md5(tsv.read_bytes()).hexdigest()})
        dataset = cls(dataset=name)
        if name == "MMBench_DEV_EN":  # rotations share the question text: answer by the option order
            by_options = {(r["question"], r["A"]): r["response"] for r in rows}

            def mmbench(message, dataset=None, _by=by_options):
                text = "\n".join(m["value"] for m in message if m["type"] == "text")
                hits = [v for (q, a), v in _by.items() if q in text and f"A. {a}\n" in text]
                assert len(hits) == 1, text
                return hits[0]

            model.generate_inner = mmbench
        else:
            # MMMU's prompt moves `<image 1>` out of the text: look the question up by what precedes it
            responses[name] = {r["question"].split(" <image")[0]: r["response"] for r in rows}
            model.generate_inner = ScriptedVLM.generate_inner.__get__(model)
        infer_data_job(model, work_dir=str(work), model_name=MODEL, dataset=dataset, api_nproc=1)
        pred = work / f"{MODEL}_{name}.xlsx"
        result = dataset.evaluate(str(pred), model="exact_matching", nproc=1)
        reported[name] = {"exact_matching": _plain(result)}
        print(name, reported[name], flush=True)

    # AI2D once more with an LLM judge (the stub above), as VLMEvalKit runs when an OpenAI key is set
    server = ThreadingHTTPServer(("127.0.0.1", 0), JudgeStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["OPENAI_API_KEY"] = "sk-local-stub"
    os.environ["OPENAI_API_BASE"] = f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"
    from vlmeval.dataset.image_mcq import ImageMCQDataset

    dataset = ImageMCQDataset(dataset="AI2D_TEST")
    pred = work / f"{MODEL}_AI2D_TEST.xlsx"
    result = dataset.evaluate(str(pred), model="chatgpt-0125", nproc=1)
    reported["AI2D_TEST"]["chatgpt-0125"] = _plain(result)
    print("AI2D_TEST judged", reported["AI2D_TEST"]["chatgpt-0125"], flush=True)
    server.shutdown()

    for junk in list(work.glob("*.pkl")) + list(work.glob("*.lock")) + list(work.glob("*PREV*")):
        junk.unlink()
    import vlmeval

    (out / "reported_scores.json").write_text(json.dumps(
        {"tool": "VLMEvalKit", "version": getattr(vlmeval, "__version__", "?"), "model": MODEL, "scores": reported},
        indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    shutil.rmtree(lmu, ignore_errors=True)


def _plain(result):
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        return json.loads(result.to_json(orient="records"))
    if isinstance(result, dict):
        return {str(k): (float(v) if isinstance(v, (int, float)) else _plain(v)) for k, v in result.items()}
    return result


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/realtools/vlmevalkit"))
