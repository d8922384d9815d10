"""`SampleLogWriter`'s background fsyncs: `close` waits for every one, and one that fails comes out of the next
`write` or of `close` naming the file (a real writer on real files; /dev/null is a real descriptor whose fsync the
kernel refuses with EINVAL)."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time

import pytest

from lmms_nb.logs.writer import SampleLogWriter, read_samples_file

DEV_NULL = "/dev/null"


def _fsync_fails_on_dev_null() -> bool:
    fd = os.open(DEV_NULL, os.O_WRONLY)
    try:
        os.fsync(fd)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


needs_failing_fsync = pytest.mark.skipif(not _fsync_fails_on_dev_null(),
                                         reason="this kernel accepts fsync on /dev/null: no real failing descriptor")


def test_close_waits_for_every_fsync(tmp_path, monkeypatch):
    """A slow disk: each fsync (the real one) takes 0.2 s on the background thread; `close` returns only after all
    of them finished, and every line is in the file."""
    real_fsync, finished, lock = os.fsync, [], threading.Lock()

    def slow_fsync(fd: int) -> None:
        time.sleep(0.2)
        real_fsync(fd)
        with lock:
            finished.append(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    path = tmp_path / "run" / "x_samples_t.jsonl"
    writer = SampleLogWriter(path)
    for doc_id in range(3):
        writer.write([{"doc_id": doc_id, "filter": "none"}])
    assert len(finished) < 3  # still running in the background: write did not wait for the disk
    writer.close()
    assert len(finished) == 1 + 3 and writer._fh.closed  # the new file's folder, then the three batches
    assert [r["doc_id"] for r in read_samples_file(path).records] == [0, 1, 2]


@needs_failing_fsync
def test_failed_fsync_comes_out_of_close_naming_the_file():
    writer = SampleLogWriter(DEV_NULL)
    writer.write([{"doc_id": 0}])
    with pytest.raises(OSError, match=f"^.*{DEV_NULL}: fsync failed") as raised:
        writer.close()
    assert raised.value.errno is not None and writer._fh.closed


@needs_failing_fsync
def test_failed_fsync_comes_out_of_the_next_write_naming_the_file():
    writer = SampleLogWriter(DEV_NULL)
    writer.write([{"doc_id": 0}])
    concurrent.futures.wait(writer._pending)  # the first batch's fsync has run (and failed) in the background
    with pytest.raises(OSError, match=f"{DEV_NULL}: fsync failed"):
        writer.write([{"doc_id": 1}])
    with pytest.raises(OSError, match=f"{DEV_NULL}: fsync failed"):
        writer.close()  # the second batch was still queued for its fsync, which fails in turn

@needs_failing_fsync
def test_failed_fsync_does_not_hide_the_exception_of_a_with_block(caplog):
    with caplog.at_level(logging.ERROR, logger="lmms_nb.logs.writer"):
        with pytest.raises(KeyError, match="the block's own error"):
            with SampleLogWriter(DEV_NULL) as writer:
                writer.write([{"doc_id": 0}])
                raise KeyError("the block's own error")
    assert f"{DEV_NULL}: fsync failed" in caplog.text and "KeyError" in caplog.text
