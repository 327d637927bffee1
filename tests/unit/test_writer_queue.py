"""SQLite writers queue on a lock file that every server process shares (engine/db.py)."""
from __future__ import annotations

import fcntl
import os
import threading

import pytest

from engine.db import WriterQueue


def _held_elsewhere(path) -> bool:
    """Whether another open file (as another process has) finds the lock taken."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_writer_holds_the_lock_file_until_it_releases(tmp_path):
    queue = WriterQueue(tmp_path / "approvals.db")
    lock_file = tmp_path / "approvals.db-writer"
    assert queue.acquire()
    assert lock_file.exists() and _held_elsewhere(lock_file)
    queue.release()
    assert not _held_elsewhere(lock_file)


def test_threads_of_one_process_take_turns(tmp_path):
    queue = WriterQueue(tmp_path / "approvals.db")
    assert queue.acquire()
    second = threading.Event()

    def other():
        if queue.acquire():
            second.set()
            queue.release()

    thread = threading.Thread(target=other)
    thread.start()
    assert not second.wait(0.2)                  # waits while the first writer holds it
    queue.release()
    thread.join(5)
    assert second.is_set()


def test_an_in_memory_database_needs_no_lock_file(tmp_path):
    queue = WriterQueue(None)
    assert queue.acquire()
    queue.release()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "sqlite:///file:x?mode=memory&uri=true"])
def test_only_file_databases_get_a_lock_file(url):
    from engine.db import _sqlite_path
    assert _sqlite_path(url) is None
