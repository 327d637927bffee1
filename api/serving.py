"""The HTTP server's worker: gunicorn's threaded worker, running one request at a time.

A server process runs Python on one thread at a time (the GIL).  gunicorn's gthread
worker gives every request a thread of its own; with four busy clients, four requests
then take turns at every database call and socket write, and the hand-overs cost CPU:
~40 context switches per task completion instead of ~12, and ~20 % fewer completions/s
(bench/bench_overhead.py).  Here requests queue, and one thread, the runner, takes them
in turn (two runners on PostgreSQL, whose work is another process's CPU: see app.py).  A request that is about to wait for long (a long-polling fetchAndLock, a new
connection that has sent nothing yet) steps aside (`step_aside()`): another thread
becomes the runner meanwhile, and the waiting one finishes its request beside it.

As with gunicorn's sync worker, a client that sends its request body slowly holds the
runner while it does: put a buffering proxy (nginx) in front of a server on the internet.
"""
from __future__ import annotations

import select
import threading
from concurrent.futures import Future
from contextlib import contextmanager
from queue import SimpleQueue

from gunicorn.workers.gthread import ThreadWorker

_thread = threading.local()             # .pool: the RequestPool of a pool thread; .runner: whether it takes the queue


class RequestPool:
    """An executor (gunicorn calls `submit` and `shutdown`) with one runner thread and up
    to `max_threads - 1` more for requests that stepped aside to wait."""

    def __init__(self, max_threads: int, runners: int = 1) -> None:
        self.max_threads = max(1, max_threads)
        self._queue: SimpleQueue = SimpleQueue()
        self._lock = threading.Lock()
        self._parked: list[threading.Event] = []          # threads done with a request that stepped aside
        self._threads = 0
        self._stopping = False
        with self._lock:
            for _ in range(min(max(1, runners), self.max_threads)):
                self._start_thread()

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        with self._lock:
            self._stopping = True
            for parked in self._parked:
                parked.set()
            self._parked.clear()
        self._queue.put(None)

    @property
    def threads(self) -> int:
        return self._threads

    def step_aside(self) -> bool:
        """Hand the queue to another thread (a parked one, or a new one up to the limit);
        False if this thread is not the runner or all threads are taken (it then stays the
        runner, and the queue waits with it)."""
        if getattr(_thread, "pool", None) is not self or not _thread.runner:
            return False
        with self._lock:
            if self._parked:
                self._parked.pop().set()
            elif self._threads < self.max_threads and not self._stopping:
                self._start_thread()
            else:
                return False
        _thread.runner = False
        return True

    def _start_thread(self) -> None:                        # under self._lock
        self._threads += 1
        threading.Thread(target=self._run, name=f"request-{self._threads}", daemon=True).start()

    def _run(self) -> None:
        _thread.pool, _thread.runner = self, True
        while _thread.runner or self._park():
            item = self._queue.get()
            if item is None:                                # shutdown: pass it on to the next runner
                self._queue.put(None)
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as err:                    # noqa: BLE001 - the future carries it to gunicorn
                future.set_exception(err)
            else:
                future.set_result(result)

    def _park(self) -> bool:
        """Wait until another runner steps aside; False when the pool shuts down."""
        woken = threading.Event()
        with self._lock:
            if self._stopping:
                return False
            self._parked.append(woken)
        woken.wait()
        _thread.runner = True
        return not self._stopping


@contextmanager
def step_aside():
    """Around a wait that can last: other requests go on meanwhile.  Outside the server's
    pool (tests, the Flask development server) it does nothing."""
    pool = getattr(_thread, "pool", None)
    if pool is not None:
        pool.step_aside()
    yield


class Worker(ThreadWorker):
    """gunicorn's gthread worker with the RequestPool (`worker_class` in app.py)."""

    def get_thread_pool(self) -> RequestPool:
        return RequestPool(self.cfg.threads, getattr(self.app, "request_runners", 1))

    def handle(self, conn):
        # gthread waits up to 5 s for the first bytes of a new connection in the request
        # thread: do that beside the runner, not in its way.
        if not conn.initialized and not conn.data_ready and not _readable(conn.sock):
            with step_aside():
                return super().handle(conn)
        return super().handle(conn)


def _readable(sock) -> bool:
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True                 # let gunicorn meet the broken socket as before
