"""`evaluate()`: run a model on tasks, log every sample as it is made, resume after a crash, return a `Run`.

The stages, each in its own module, in the order a run goes through them:

1. plan (`_plan`): load and check every dataset, select the docs, decide the run's identity (`_identity`) and
   whether it resumes an earlier run;
2. generate (`_generate`): task rows -> requests -> `Model.generate`, one failing request never stopping a batch;
3. score (`_score`): filters -> per-sample metric values -> one log record per (doc, filter);
4. write (`_write`, `lmms_nb.logs.writer`): records appended per batch (fsynced beside the next batch); results JSON replaced atomically;
5. aggregate (`_aggregate`): task scores per metric and filter from the logged records.

Data-parallel runs (torchrun / accelerate) split each task's pending docs over the ranks (`_distributed`).

Resume: a run is identified by everything that determines its answers and scores (`_identity`: the tasks'
config and code, the data, the model and its weights, the seed, lmms-nb's version). `evaluate(..., resume=True)`
finds the newest results file in `<output_dir>/<model>/` with the same identity, heals its samples files (drops
a torn last line or a doc whose filter lines were cut), retries the docs that failed (`retry_errors`), skips
the docs already there and appends the rest. Killing the process at any moment therefore loses at most the
batch in flight. When the identity differs from the newest earlier run of the same tasks, a new run starts
and one log line says what changed.

Example:
    >>> import tempfile, lmms_nb
    >>> from lmms_nb.models.baselines import FunctionModel
    >>> run = lmms_nb.evaluate(FunctionModel(lambda r: "3", name="always-3"), "synthbench_count",
    ...                        limit=8, output_dir=tempfile.mkdtemp(), progress=False)
    >>> run.scores.columns[:3]
    ['task', 'metric', 'filter']
"""

from __future__ import annotations

from lmms_nb.runner._evaluate import evaluate
from lmms_nb.runner._generate import generate_safely
from lmms_nb.runner._plan import ResumeError
from lmms_nb.runner._run import BatchProgress, Run

__all__ = ["evaluate", "Run", "BatchProgress", "ResumeError", "generate_safely"]
