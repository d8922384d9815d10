"""notebooks/04_live_benchmark.ipynb, executed end to end by papermill against local stand-ins.

The pages come from a server on 127.0.0.1, the four models (drafting, reviewing, answering, judging) from
local OpenAI-compatible servers; `auto_accept` stands in for the person. The notebook must run without an
error, leave the month's dataset and the run's logs on disk, and its score table must match the one
computed here from the logs it wrote.
"""

from __future__ import annotations

import os
import functools
import http.server
import json
import sys
import threading
from pathlib import Path

import pytest

from _servers import FakeOpenAIServer

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not Path("/usr/bin/chromium").exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (CI must run these: scripts/test.sh installs it)")]

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "04_live_benchmark.ipynb"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def models_reply(prompt: str, n_images: int) -> str:
    """Drafts two questions per page, keeps them on review, and answers every question with "42"."""
    if prompt.startswith("You write questions"):
        return json.dumps({"questions": [
            {"subtask": "Basic Understanding", "question": "What number is on the page?", "answer": "42",
             "criteria": "10 for 42"},
            {"subtask": "Further Insights", "question": "What might the number mean?", "answer": "The answer",
             "criteria": "10 if it says the answer"},
        ]})
    if prompt.startswith("You review"):
        return ('{"subtask": "%s", "question": "%s", "answer": "%s", "criteria": "%s", "notes": "fine"}' % tuple(
            line.split(": ", 1)[1] for line in prompt.splitlines()
            if line.startswith(("Category: ", "Question: ", "Reference answer: ", "Grading criteria: "))))
    return "42"


def test_the_live_notebook_runs_end_to_end(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    import polars as pl

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<html><body><h1>42</h1></body></html>")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    # a kernel of this interpreter, importing this checkout
    spec = tmp_path / "kernels" / "kernels" / "lmms-nb-live"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "lmms-nb", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "kernels"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("LMMS_NB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "live"
    try:
        with FakeOpenAIServer(answer=models_reply) as models:
            endpoint = {"base_url": models.url, "api_key_env": None}
            papermill.execute_notebook(
                str(NOTEBOOK), str(tmp_path / "executed.ipynb"), kernel_name="lmms-nb-live", cwd=str(tmp_path),
                progress_bar=False,
                parameters=dict(urls=[f"http://127.0.0.1:{srv.server_port}/index.html"], remove_selectors=[],
                                out_dir=str(out), month="2026-11", n_questions=2, auto_accept=True,
                                sandbox=os.geteuid() != 0,  # as root Chromium cannot sandbox: opt out, explicitly
                                drafting={"model": "drafter", **endpoint}, reviewing={"model": "reviewer", **endpoint},
                                judging={"model": "judge", **endpoint}, answering={"model": "answerer", **endpoint}),
            )
    finally:
        srv.shutdown()
        srv.server_close()

    from lmms_nb.live import live_scores, load_live_dataset

    ds = load_live_dataset(out / "dataset")
    assert ds["month"] == ["2026-11", "2026-11"] and ds["question"][0] == "What number is on the page?"
    assert len((out / "decisions.jsonl").read_text().splitlines()) == 2
    import lmms_nb

    table = live_scores(lmms_nb.load_logs(out / "runs"))
    total = table.filter(pl.col("subtask") == "Total").row(0, named=True)
    # "42" is right for the first question (10), wrong for the second (0)
    assert (total["n"], total["n_scored"], total["score"]) == (2, 2, 50.0)
    executed = json.loads((tmp_path / "executed.ipynb").read_text())
    last = executed["cells"][-1]["outputs"]
    shown = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in last)
    assert "Total" in shown and "50.0" in shown
