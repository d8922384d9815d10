"""The end of the `lmms-nb` process: everything it wrote flushed and every exit handler run, then no interpreter
teardown.

After `lmms-nb eval` returns, a normal interpreter exit spends about a quarter of a CPU-second (one thread, a
tiny Qwen2.5-VL run: ~0.7 M objects from torch, transformers and the model) freeing every module's objects one by
one, for a process that is about to end and whose memory the OS takes back at once. `os._exit` skips that, as the
`gc.freeze` pattern for long-lived start-up objects suggests (_cli_gc). What a normal exit would still do that
matters is done first: the `atexit` handlers run (logging's flush and close, `weakref.finalize` clean-ups such as
temporary folders, multiprocessing's), then stdout and stderr are flushed. Files lmms-nb writes are closed by the
time the evaluation returns (logs.writer closes and fsyncs them). Only where a thread other than the main one and
daemon ones is still alive (a normal exit would wait for it) does the process exit normally instead.

Only the program's own process does this (`lmms_nb.cli.program`: the console script and `python -m lmms_nb`); code
calling `main()` or `program_main()` keeps its interpreter.

Example:
    >>> import threading
    >>> import sys, threading
    >>> can_skip_teardown() == (sys.gettrace() is None and sys.getprofile() is None
    ...     and all(t.daemon for t in threading.enumerate() if t is not threading.main_thread()))
    True
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

__all__ = ["can_skip_teardown", "exit_program"]


def can_skip_teardown() -> bool:
    """Whether nothing but interpreter teardown is left once the exit handlers ran: called from the main thread,
    no other thread alive but daemon ones (tqdm's monitor), which a normal exit does not wait for either, and no
    profiler, tracer or debugger attached (they save their output on the normal way out)."""
    main = threading.main_thread()
    # A profiler or tracer (python -m cProfile / trace / pdb) writes its results after the program returns
    monitored = sys.getprofile() is not None or sys.gettrace() is not None or (
        hasattr(sys, "monitoring") and any(sys.monitoring.get_tool(i) is not None for i in range(6)))
    return (not monitored and threading.current_thread() is main
            and all(thread is main or thread.daemon for thread in threading.enumerate()))


def exit_program(status: int) -> NoReturn:
    """End the process with `status`: exit handlers run and streams flushed, then `os._exit` where
    `can_skip_teardown()`, else a normal `sys.exit`."""
    if not can_skip_teardown():
        sys.exit(status)
    try:
        atexit._run_exitfuncs()  # what the interpreter would run at exit, in the same (reverse) order
    finally:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):  # a closed or broken pipe: nothing more can reach it
                pass
        os._exit(status)
