"""Execute every notebook in notebooks/ with nbclient, top to bottom as a user would, and check what they made.

All notebooks run in one working folder, in name order (01_quickstart first), so notebooks that read logs
(the compare_models report template) get the quickstart's. A notebook with a cell tagged "parameters" gets
the test's values in a cell inserted after it, as papermill does. After a notebook runs, a cell appended by
the test saves a few of its variables to JSON, and the values are checked against the logs on disk, read
here with plain `json` (not with the code under test).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
#: Notebooks that need services their own tests start (a fake OpenAI server, local web pages): executed there.
RUN_ELSEWHERE = {"03_build_lite.ipynb": "test_notebook_03.py", "04_live_benchmark.ipynb": "test_live_notebook.py"}
NOTEBOOKS = [p for p in sorted((REPO / "notebooks").glob("*.ipynb")) if p.name not in RUN_ELSEWHERE]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def parameters_for(name: str, workdir: Path) -> dict[str, Any]:
    """Values a notebook's parameters cell gets in tests (small sizes; the quickstart's logs for reports)."""
    if name == "compare_models.ipynb":
        return {"logs": str(workdir / "outputs" / "quickstart"), "title": "quickstart models"}
    return {}


#: What the test saves from each notebook's variables after it ran (the expression must be JSON-able).
PROBES = {
    "01_quickstart.ipynb": {
        "scores": "scores.to_dicts()",
        "browser_matches": "browser.n_matches",
        "browser_docs": "browser.page_rows['doc_id'].to_list()",
        "first_run_completed": "first_run.completed",
        "launcher_bars": "{t: [b.value, b.max] for t, b in launcher.bars.items()}",
        "pairwise": "cmp.pairwise.select('model_a', 'model_b', 'task', 'a_right_b_wrong', 'b_right_a_wrong').to_dicts()",
        "models": "models",
        "tasks": "tasks",
        "limit": "limit",
    },
}


def execute(path: Path, workdir: Path) -> tuple[nbformat.NotebookNode, dict[str, Any]]:
    nb = nbformat.read(path, as_version=4)
    params = parameters_for(path.name, workdir)
    if params:
        where = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
        assert where is not None, f"{path.name}: parameters given but no cell is tagged 'parameters'"
        injected = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
        injected.metadata["tags"] = ["injected-parameters"]
        nb.cells.insert(where + 1, injected)
    probe_file = workdir / f"{path.stem}.probe.json"
    probes = PROBES.get(path.name)
    if probes:
        body = ", ".join(f"{k!r}: {v}" for k, v in probes.items())
        nb.cells.append(nbformat.v4.new_code_cell(
            f"import json as _json\nopen({str(probe_file)!r}, 'w').write(_json.dumps({{{body}}}, default=str))"))
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    return nb, (json.loads(probe_file.read_text()) if probes else {})


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every notebook, executed once in a shared folder: {name: (notebook, probes)}, plus the folder."""
    import os

    workdir = tmp_path_factory.mktemp("notebooks")
    old = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # the kernels inherit it: 2 shared cores
    try:
        results: dict[str, Any] = {"_workdir": workdir}
        for path in NOTEBOOKS:
            try:
                results[path.name] = execute(path, workdir)
            except Exception as e:  # noqa: BLE001 - reported by that notebook's test, the others still run
                results[path.name] = e
        return results
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_notebook_runs_without_errors(executed, name):
    result = executed[name]
    if isinstance(result, Exception):
        raise result
    nb, _ = result
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []


@pytest.mark.parametrize("name", sorted(RUN_ELSEWHERE))
def test_notebooks_run_elsewhere_are_executed_there(name):
    test_file = Path(__file__).resolve().parent / RUN_ELSEWHERE[name]
    assert (REPO / "notebooks" / name).exists(), f"{name} is gone: drop it from RUN_ELSEWHERE"
    assert name in test_file.read_text(encoding="utf-8"), f"{test_file.name} no longer runs {name}"


def _read_samples(folder: Path) -> dict[tuple[str, str], list[dict]]:
    """{(model, task): records} from the JSONL samples files, with nothing but `json`."""
    out: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for path in folder.rglob("*_samples_*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                out[(rec["model"], rec["task"])].append(rec)
    return out


@pytest.mark.slow
def test_quickstart_numbers_match_its_logs(executed):
    result = executed["01_quickstart.ipynb"]
    if isinstance(result, Exception):
        raise result
    nb, probe = result
    samples = _read_samples(executed["_workdir"] / "outputs" / "quickstart")
    assert sorted(samples) == sorted((m, t) for m in probe["models"] for t in probe["tasks"])
    metric_of = {"synthbench_count": "exact_match", "synthbench_yesno": "acc", "synthbench_mcq": "choice_accuracy"}
    for recs in samples.values():
        assert sorted({r["doc_id"] for r in recs}) == list(range(probe["limit"]))
    # every per-sample score in the notebook's table is the mean of its log lines
    for row in probe["scores"]:
        if row["metric"] != metric_of[row["task"]]:
            continue  # e.g. yesno's acc_plus, an aggregate over question pairs
        recs = [r for r in samples[(row["model"], row["task"])] if r["filter"] == row["filter"]]
        values = [r[row["metric"]] for r in recs if r[row["metric"]] is not None]
        assert row["value"] == pytest.approx(sum(values) / len(values)), row
    # the launcher's progress bars ended full, and the Run it handed back is complete
    assert probe["first_run_completed"] is True
    assert probe["launcher_bars"] == {t: [probe["limit"], probe["limit"]] for t in probe["tasks"]}
    # the browser's "zoo-base right, zoo-blind wrong" filter on mcq, and compare()'s McNemar counts
    def right(model: str, task: str) -> dict[int, bool]:
        m = metric_of[task]
        return {r["doc_id"]: r[m] == 1.0 for r in samples[(model, task)] if r[m] is not None}

    base, blind = right("zoo-base", "synthbench_mcq"), right("zoo-blind", "synthbench_mcq")
    want = sorted(d for d in base if base[d] and d in blind and not blind[d])
    assert probe["browser_matches"] == len(want) and probe["browser_docs"] == want[:5]
    for pair in probe["pairwise"]:
        a, b = right(pair["model_a"], pair["task"]), right(pair["model_b"], pair["task"])
        both = set(a) & set(b)
        assert pair["a_right_b_wrong"] == sum(a[d] and not b[d] for d in both), pair
        assert pair["b_right_a_wrong"] == sum(b[d] and not a[d] for d in both), pair
    # the three widgets were displayed as live widget views
    views = [c for c in nb.cells if c.cell_type == "code"
             and any(WIDGET_VIEW in o.get("data", {}) for o in c.get("outputs", []))]
    shown = " ".join(c.source for c in views)
    assert all(name in shown for name in ("EvalLauncher", "SampleBrowser", "CompareDashboard")), shown
