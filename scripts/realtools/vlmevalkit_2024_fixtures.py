"""Make tests/fixtures/realtools/vlmevalkit_2024/ with a January-2024 VLMEvalKit (commit 8382989c, 2024-01-14).

That VLMEvalKit's score tables label their rows in columns: MMBench's `_acc.csv` by `split`, MM-Vet's
`_score.csv` / `_score_fine.csv` by `Category` (with `tot` and `acc` columns). Its repository (not on PyPI), at that
commit, goes first on PYTHONPATH of a Python that has its requirements (plus matplotlib, seaborn, dashscope,
google-generativeai, pycocoevalcap, omegaconf, which its `vlmeval/__init__` imports); offline:

    git -C VLMEvalKit archive 8382989c | tar -x -C vlmevalkit-8382989c
    PYTHONPATH=vlmevalkit-8382989c python scripts/realtools/vlmevalkit_2024_fixtures.py tests/fixtures/realtools/vlmevalkit_2024

What it does, through that VLMEvalKit's own evaluation functions:
1. writes the MMBench_DEV_EN rows of scripts/realtools/vlmevalkit_fixtures.py (circular, with a `split` column) as
   the dataset TSV in a temporary LMUData folder, registering its md5 so VLMEvalKit does not download;
2. writes the prediction files as its inference did (`<model>/<model>_<dataset>.xlsx`, a `prediction` column);
3. runs `multiple_choice_eval(..., model="exact_matching")` on MMBench and `MMVet_eval` on a small MM-Vet set, its
   GPT-4 grader served by a stub OpenAI-compatible server on 127.0.0.1 (it grades 1.0 when the ground truth is in
   the prediction, 0.5 when one of its `<OR>` parts is, else 0.0; VLMEvalKit's OFFICIAL API base points there, and
   its token count for max_tokens, a tiktoken download, becomes a character estimate);
4. keeps the score tables and judged files, and removes VLMEvalKit's pickles.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from vlmevalkit_fixtures import MODEL, mmbench_rows, png  # noqa: E402 - the same predictions as the 2025 fixtures

MMVET = [  # question, ground truth, category, prediction
    ("What is written on the sign?", "STOP", "ocr", "The sign says STOP."),
    ("How many apples are there?", "3", "rec,math", "There are 4 apples."),
    ("What is x in the equation?", "-1<OR>-5", "ocr,math", "x = -5"),
    ("Which animal is this?", "cat", "rec", "A small cat."),
    ("What colour is the car?", "red", "rec,know", "It is blue."),
    ("Where is the ball?", "left", "spat,rec", "On the left side."),
    ("Describe the picture.", "a dog on grass", "rec,gen", "A dog runs on the grass."),
]


class GraderStub(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint standing in for MM-Vet's GPT-4 grader."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        if isinstance(prompt, list):
            prompt = " ".join(p.get("text", "") for p in prompt if isinstance(p, dict))
        # the prompt's last line: "<question> | <ground truth> | <prediction> | "
        _, truth, prediction = prompt.rstrip("\n").splitlines()[-1].split(" | ")[:3]
        truth, prediction = truth.strip().lower(), prediction.strip().lower()
        parts = [p.strip() for p in truth.split("<or>")]
        grade = "1.0" if truth in prediction else "0.5" if any(p and p in prediction for p in parts) else "0.0"
        payload = json.dumps({"id": "stub", "object": "chat.completion", "model": body.get("model", "stub"),
                              "choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": grade}}],
                              "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main(out: Path) -> None:
    lmu = Path(tempfile.mkdtemp(prefix="lmudata_"))
    os.environ["LMUData"] = str(lmu)
    import pandas as pd

    import vlmeval.api.gpt as gpt
    from vlmeval.evaluate.mmvet_eval import MMVet_eval
    from vlmeval.evaluate.multiple_choice import multiple_choice_eval
    from vlmeval.utils.dataset_config import dataset_md5_dict

    work = Path(tempfile.mkdtemp(prefix="vlmeval2024_")) / MODEL
    work.mkdir()
    reported: dict[str, object] = {}

    rows = mmbench_rows()
    for row in rows:
        row["split"] = "dev"
    tsv = lmu / "MMBench_DEV_EN.tsv"
    pd.DataFrame([{k: v for k, v in r.items() if k != "response"} for r in rows]).to_csv(tsv, sep="\t", index=False)
    dataset_md5_dict["MMBench_DEV_EN"] = hashlib.md5(tsv.read_bytes()).hexdigest()
    pred = work / f"{MODEL}_MMBench_DEV_EN.xlsx"
    pd.DataFrame([{**{k: v for k, v in r.items() if k not in ("response", "image")}, "prediction": r["response"]}
                  for r in rows]).to_excel(pred, index=False)
    multiple_choice_eval(str(pred), dataset="MMBench_DEV_EN", model="exact_matching", nproc=1)
    reported["MMBench_DEV_EN"] = pd.read_csv(work / f"{MODEL}_MMBench_DEV_EN_acc.csv").to_dict("records")

    server = ThreadingHTTPServer(("127.0.0.1", 0), GraderStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["OPENAI_API_KEY"] = "sk-local-stub"
    gpt.APIBASES["OFFICIAL"] = f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"
    # it sizes max_tokens with tiktoken, whose encoding is a download: a character estimate instead (grading unchanged)
    gpt.OpenAIWrapper.get_token_len = lambda self, inputs: len(str(inputs)) // 4
    pred = work / f"{MODEL}_MMVet.xlsx"
    pd.DataFrame([{"index": i, "question": q, "answer": a, "category": c, "image_path": f"{i}.png", "prediction": p}
                  for i, (q, a, c, p) in enumerate(MMVET)]).to_excel(pred, index=False)
    MMVet_eval(str(pred), model="gpt-4-turbo", nproc=1)
    server.shutdown()
    reported["MMVet"] = pd.read_csv(work / f"{MODEL}_MMVet_gpt-4-turbo_score.csv").to_dict("records")

    for leftover in work.glob("*.pkl"):
        leftover.unlink()
    target = out / MODEL
    if target.exists():
        shutil.rmtree(target)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(work, target)
    (out / "reported_scores.json").write_text(json.dumps(reported, indent=1, default=float) + "\n")
    (out / "version.txt").write_text("VLMEvalKit 8382989c (2024-01-14)\n")
    print(json.dumps(reported, indent=1, default=float))


if __name__ == "__main__":
    assert png  # the rows' images come from the 2025 script's generator
    main(Path(sys.argv[1]).resolve())
