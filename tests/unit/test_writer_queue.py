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


def test_a_writer_gives_up_after_its_timeout_instead_of_hanging(tmp_path):
    lock_file = tmp_path / "approvals.db-writer"
    lock_file.touch()
    other = os.open(lock_file, os.O_RDWR)                 # another process holding the lock
    fcntl.flock(other, fcntl.LOCK_EX)
    try:
        queue = WriterQueue(tmp_path / "approvals.db")
        assert queue.acquire(timeout=0.2) is False
        assert queue._threads.acquire(blocking=False)        # the thread lock was given back
        queue._threads.release()
    finally:
        os.close(other)
    assert queue.acquire(timeout=1)
    queue.release()


def test_a_forked_child_does_not_keep_the_parents_lock_alive(tmp_path):
    queue = WriterQueue(tmp_path / "approvals.db")
    assert queue.acquire()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                          # the child: a fresh queue, the parent's fd closed
        ok = queue._fd is None and queue._threads.acquire(blocking=False)
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    queue.release()
    assert not _held_elsewhere(tmp_path / "approvals.db-writer")


def test_a_thread_asking_to_go_first_gets_the_lock_before_a_writer_coming_back(tmp_path):
    """The WAL checkpointer's gap: a writer releasing and at once re-acquiring (a busy
    server) must not win the lock again ahead of it."""
    queue = WriterQueue(tmp_path / "approvals.db")
    assert queue.acquire()
    order, asked = [], threading.Event()

    def checkpointer():
        asked.set()
        if queue.acquire(timeout=5, first=True):
            order.append("first")
            queue.release()

    thread = threading.Thread(target=checkpointer)
    thread.start()
    asked.wait(5)
    while not queue._waiting_first:                    # it is queued on the lock
        threading.Event().wait(0.001)
    queue.release()
    assert queue.acquire(timeout=5)                     # the writer comes straight back
    order.append("writer")
    queue.release()
    thread.join(5)
    assert order == ["first", "writer"]
