"""The end of the `lmms-nb` program (`lmms_nb._cli_exit`): real child processes running `python -m lmms_nb`, whose
exit handlers run, buffered output arrives and exit status is kept although the interpreter's teardown is
skipped; a live thread makes the process exit normally, waiting for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LMMS_NB_CACHE": str(tmp_path), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)


def test_the_program_runs_exit_handlers_flushes_output_and_keeps_its_status(tmp_path):
    code = ("import atexit, sys, threading, time\n"
            "atexit.register(lambda: open(sys.argv[0] + '.handler', 'w').write('ran'))\n"
            "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # a daemon: no wait (tqdm's)\n"
            "from lmms_nb._cli_exit import can_skip_teardown\nassert can_skip_teardown()\n"
            "print('buffered, not flushed')  # stdout is a pipe: block-buffered until flushed\n"
            "sys.argv = [r'%s', '--model', 'no_such_model', '--tasks', 'synthbench_count']\n"
            "from lmms_nb.cli import program\nprogram()\nprint('never reached')\n") % (tmp_path / "prog")
    proc = _run(code, tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == ["buffered, not flushed"]
    assert "unknown model 'no_such_model'" in proc.stderr
    assert (tmp_path / "prog.handler").read_text() == "ran"


def test_a_live_thread_makes_the_program_exit_normally_after_it(tmp_path):
    marker = tmp_path / "thread_done"
    code = ("import sys, threading, time\n"
            f"def late(): time.sleep(0.5); open(r'{marker}', 'w').write('done')\n"
            "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # not waited for, as tqdm's\n"
            "threading.Thread(target=late).start()\n"
            "from lmms_nb._cli_exit import can_skip_teardown\nprint(can_skip_teardown(), flush=True)\n"
            "sys.argv = ['lmms-nb', '--model', 'no_such_model', '--tasks', 'synthbench_count']\n"
            "from lmms_nb.cli import program\nprogram()\n")
    proc = _run(code, tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stdout.split() == ["False"] and marker.read_text() == "done"


def test_python_m_lmms_nb_ends_as_the_program(tmp_path):
    """`python -m lmms_nb` ends through `program()`: its exit handlers run too."""
    code = ("import atexit, runpy, sys\n"
            f"atexit.register(lambda: open(r'{tmp_path / 'handler'}', 'w').write('ran'))\n"
            "sys.argv = ['lmms-nb', '--model', 'no_such_model', '--tasks', 'synthbench_count']\n"
            "runpy.run_module('lmms_nb', run_name='__main__')\nprint('never reached')\n")
    proc = _run(code, tmp_path)
    assert proc.returncode == 2 and "unknown model 'no_such_model'" in proc.stderr, proc.stderr[-3000:]
    assert proc.stdout == "" and (tmp_path / "handler").read_text() == "ran"


def test_a_profiler_gets_its_normal_exit_and_writes_its_stats(tmp_path):
    """`python -m cProfile -o FILE -m lmms_nb ...` saves its stats after the program returns: no os._exit then."""
    stats = tmp_path / "out.prof"
    env = {**os.environ, "LMMS_NB_CACHE": str(tmp_path), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "lmms_nb", "models"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert stats.stat().st_size > 1000
