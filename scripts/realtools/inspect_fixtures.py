"""Make the inspect_ai fixtures of tests/fixtures/realtools/inspect_ai/ with inspect_ai itself, offline.

    python -m venv .venv-inspect && .venv-inspect/bin/pip install inspect-ai openai
    .venv-inspect/bin/python scripts/realtools/inspect_fixtures.py tests/fixtures/realtools/inspect_ai

The model is a stub OpenAI-compatible server on 127.0.0.1 (inspect's `openai-api` provider talks to it like to
vLLM): it answers each question from the table below, and a question asked again (the second epoch) gets its
second answer. Two tasks, each logged in both of inspect's formats (`.eval` and `.json`):
- `shapes_vqa`: a text question with a generated PNG (a data URI, which inspect moves to the sample's
  attachments), `generate()`, scorers `match()`, `includes()` and a scorer whose value is a dict; 2 epochs;
- `shapes_mcq`: string sample ids, `multiple_choice()` with the `choice()` scorer.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

VQA = [  # question, target, answers (epoch 1, epoch 2)
    ("How many circles are in the image?", "3", ["3", "There are 3 circles."]),
    ("What colour is the square?", "red", ["Red", "red"]),
    ("What shape is shown?", "triangle", ["a triangle", "circle"]),
    ("Is the background white?", "yes", ["No", "no"]),
]
MCQ = [  # id, question, choices, target letter, answer
    ("q-red", "Which colour is the biggest shape?", ["red", "green", "blue"], "A", "ANSWER: A"),
    ("q-count", "How many shapes are there?", ["one", "two", "four"], "C", "ANSWER: B"),
    ("q-where", "Where is the star?", ["left", "right", "top", "bottom"], "D", "ANSWER: D"),
]


def png(seed: int) -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (32, 32), "white")
    ImageDraw.Draw(image).ellipse((4 + seed, 4, 20 + seed, 20), fill=((seed * 70) % 256, 40, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class StubModel(BaseHTTPRequestHandler):
    asked: Counter = Counter()
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = ""
        for message in body["messages"]:
            content = message.get("content")
            if isinstance(content, str):
                text += content
            elif isinstance(content, list):
                text += " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        reply = "I do not know."
        for question, _, answers in VQA:
            if question in text:
                with self.lock:
                    n = self.asked[question]
                    self.asked[question] += 1
                reply = answers[min(n, len(answers) - 1)]
        for _, question, _, _, answer in MCQ:
            if question in text:
                reply = answer
        payload = json.dumps({
            "id": "stub", "object": "chat.completion", "created": 0, "model": body.get("model", "tiny-vlm"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def tasks():
    from inspect_ai import Task, task
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.model import ChatMessageUser, ContentImage, ContentText
    from inspect_ai.scorer import Score, Target, choice, includes, match, mean, scorer
    from inspect_ai.solver import TaskState, generate, multiple_choice

    @scorer(metrics={"exact": [mean()], "length_ratio": [mean()]})
    def exact_and_length():
        async def score(state: TaskState, target: Target) -> Score:
            answer = state.output.completion.strip()
            return Score(value={"exact": float(answer.lower() == target.text.lower()),
                                "length_ratio": len(answer) / max(1, len(target.text))}, answer=answer)
        return score

    @task
    def shapes_vqa():
        samples = [
            Sample(id=i + 1, target=target, metadata={"category": "counting" if i == 0 else "attributes"},
                   input=[ChatMessageUser(content=[ContentImage(image=png(i)), ContentText(text=question)])])
            for i, (question, target, _) in enumerate(VQA)
        ]
        return Task(dataset=MemoryDataset(samples, name="shapes_vqa"), solver=generate(),
                    scorer=[match(), includes(), exact_and_length()], epochs=2)

    @task
    def shapes_mcq():
        samples = [Sample(id=sid, input=question, choices=choices, target=letter)
                   for sid, question, choices, letter, _ in MCQ]
        return Task(dataset=MemoryDataset(samples, name="shapes_mcq"), solver=multiple_choice(), scorer=choice())

    return [shapes_vqa(), shapes_mcq()]


def main(out: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubModel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["LOCAL_API_KEY"] = "local-stub"
    os.environ["LOCAL_BASE_URL"] = f"http://127.0.0.1:{server.server_address[1]}/v1"
    os.environ["INSPECT_LOG_DIR"] = str(out)
    from inspect_ai import eval as inspect_eval

    if out.exists():
        shutil.rmtree(out)
    for log_format in ("eval", "json"):
        StubModel.asked.clear()
        logs = inspect_eval(tasks(), model="openai-api/local/tiny-vlm", log_dir=str(out / log_format),
                            log_format=log_format, max_connections=1, max_samples=1, display="none")
        for log in logs:
            assert log.status == "success", log.error
            print(log_format, log.eval.task, {s.name: {k: v.value for k, v in s.metrics.items()}
                                              for s in log.results.scores}, flush=True)
    server.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/realtools/inspect_ai"))
