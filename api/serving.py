"""The HTTP server's worker: gunicorn's threaded worker, running one request at a time.

A server process runs Python on one thread at a time (the GIL).  gunicorn's gthread
worker gives every request a thread of its own; with four busy clients, four requests
then take turns at every database call and socket write, and the hand-overs cost CPU.
Side by side on 2 cores (SQLite, 4 client threads, completions of the five-department
review): 41 context switches per completion against 12 (summed from the worker's
/proc/<pid>/task/*/status), and 385 against 482 completions/s.  Here requests queue,
and runner threads (one on SQLite, two on PostgreSQL, whose work is another process's
CPU: see app.py) take them in turn.

A runner never waits for long: a request about to wait steps aside (`step_aside()`),
and another thread becomes a runner meanwhile.  The client socket does it by itself
(`_Guarded`): a read or write that would block steps aside first (a client that stalls
mid-request, a body that trickles in, a response nobody reads), and none blocks longer
than `SOCKET_TIMEOUT`.  A long-polling fetchAndLock steps aside explicitly.  A new
connection that has sent nothing yet goes back to gunicorn's poller without taking a
thread.  TLS and HTTP/2 (neither configured by app.py) keep gunicorn's own thread pool.

A worker told to stop (SIGTERM: finish the requests running; SIGINT, SIGQUIT: at once)
first ends the long polls (`external_tasks.stop_long_polls`): a poll may ask for up to
30 minutes, and gunicorn waits for the requests running until its graceful_timeout only,
then its master kills the worker.  gunicorn's gthread also stops accepting at once: what
its listeners had queued (the kernel completed the handshake, the client sent its request)
was reset when the worker closed them, and its client could not tell that request from
one that ran.  Here the worker takes what is queued, then closes its listeners (the
master has closed its copies), so that a client that comes later is refused at connect;
and a connection whose request has not come yet still gets to send it.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import select
import selectors
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from functools import partial
from queue import SimpleQueue

from gunicorn import util as gunicorn_util
from gunicorn.workers.gthread import _DEFER, ThreadWorker

from engine import external_tasks

log = logging.getLogger("approvals.serving")

# seconds a read or write of a client may wait for the client (then the connection is closed)
SOCKET_TIMEOUT = float(os.environ.get("APPROVALS_CLIENT_TIMEOUT") or 30)

_thread = threading.local()     # .pool: the RequestPool of a pool thread; .runner: whether it takes the queue


class RequestPool:
    """An executor (gunicorn calls `submit` and `shutdown`) with `runners` threads that
    take the queue, and up to `max_threads - runners` more for requests that stepped aside."""

    def __init__(self, max_threads: int, runners: int = 1) -> None:
        self.runners = min(max(1, runners), max(1, max_threads))
        self.max_threads = max(self.runners, max_threads)
        self._queue: SimpleQueue = SimpleQueue()
        self._lock = threading.Lock()
        self._parked: list[threading.Event] = []          # threads done with a request that stepped aside
        self._threads = 0
        self._stopping = False
        with self._lock:
            for _ in range(self.runners):
                self._start_thread()

    def submit(self, fn, *args) -> Future:
        if self._stopping:
            raise RuntimeError("cannot take a request after shutdown")
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        # gunicorn calls this from its SIGINT/SIGQUIT handler, and on Ctrl-C the master's
        # SIGQUIT can land in the handler of the terminal's SIGINT while it holds the lock:
        # the second call returns instead of waiting for a lock its own thread holds.
        if self._stopping:
            return
        self._stopping = True
        with self._lock:
            for parked in self._parked:
                parked.set()
            self._parked.clear()
        self._queue.put(None)

    @property
    def threads(self) -> int:
        return self._threads

    def step_aside(self) -> bool:
        """Hand this runner's place to another thread (a parked one, or a new one up to
        the limit).  True if this thread may now wait without holding up the queue (it
        is not, or no longer, a runner); False if every thread is taken and it is still
        a runner."""
        if getattr(_thread, "pool", None) is not self or not _thread.runner:
            return True
        with self._lock:
            if self._parked:
                self._parked.pop().set()
            elif self._threads >= self.max_threads or self._stopping or not self._start_thread():
                return False
        _thread.runner = False
        return True

    def _start_thread(self) -> bool:                        # under self._lock
        thread = threading.Thread(target=self._run, name=f"request-{id(self):x}-{self._threads + 1}",
                                  daemon=True)
        try:
            thread.start()
        except RuntimeError:                                # the system has no thread to give
            return False
        self._threads += 1
        return True

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
        """Wait until a runner steps aside; False when the pool shuts down."""
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
    """Around a wait that can last: other requests go on meanwhile.  Yields False if every
    thread is taken, so that waiting here would hold up the queue (the caller should not
    wait then); True otherwise, also outside the server's pool (tests, Flask's own server)."""
    pool = getattr(_thread, "pool", None)
    yield pool.step_aside() if pool is not None else True


class _Guarded:
    """A client socket as the request threads use it: before a read or write that would
    block, the thread steps aside; no read or write waits longer than SOCKET_TIMEOUT,
    after which the connection is closed at once (`Worker.finish_request`)."""

    def __init__(self, sock) -> None:
        self._sock = sock
        self.timed_out = False

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def setblocking(self, flag: bool) -> None:
        self._sock.settimeout(SOCKET_TIMEOUT if flag else 0.0)

    def recv(self, *args):
        return self._call(select.POLLIN, self._sock.recv, *args)

    def recv_into(self, *args):
        return self._call(select.POLLIN, self._sock.recv_into, *args)

    def send(self, data, *args):
        return self._call(select.POLLOUT, self._sock.send, data, *args)

    def sendall(self, data) -> None:
        view = memoryview(data).cast("B")
        while view:
            view = view[self._call(select.POLLOUT, self._sock.send, view):]

    def sendfile(self, *args, **kwargs):
        raise OSError(errno.EOPNOTSUPP, "sendfile bypasses the guarded socket (app.py sets sendfile off)")

    def _call(self, event: int, operation, *args):
        if self._sock.gettimeout() != 0.0 and not _ready(self._sock, event):
            with step_aside():
                pass
        try:
            return operation(*args)
        except TimeoutError:
            # ENOTCONN: gunicorn notes it at debug level instead of logging a traceback
            self.timed_out = True
            raise OSError(errno.ENOTCONN, f"the client sent or read nothing for {SOCKET_TIMEOUT:g} s") from None


def _ready(sock, event: int) -> bool:
    poller = select.poll()
    try:
        poller.register(sock, event)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True                     # let the socket call itself meet the broken socket


# What gunicorn answers itself, before the application sees the request (a request line
# over limit_request_line, headers it cannot read): Camunda's error body, as every other
# answer of the API, instead of gunicorn's HTML page.
_ADVICE = {414: "; send a long query as the JSON body of its POST form (POST /task, POST /process-instance)"}


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps({"type": "InvalidRequestException" if status_int < 500 else "ProcessEngineException",
                       "message": f"{reason}: {mesg}{_ADVICE.get(status_int, '')}" if mesg else reason},
                      ensure_ascii=False).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin1")
    gunicorn_util.write_nonblock(sock, head + body)


class Worker(ThreadWorker):
    """gunicorn's gthread worker with the RequestPool (`worker_class` in app.py)."""

    def init_process(self):
        gunicorn_util.write_error = write_json_error      # this worker process's gunicorn answers in JSON
        self.pooled = not (self.cfg.is_ssl or "h2" in self.cfg.http_protocols)
        if not self.pooled:
            log.warning("TLS or HTTP/2 is configured: requests get a thread each (gunicorn's gthread)")
        super().init_process()

    def handle_exit(self, sig, frame):                  # SIGTERM
        external_tasks.stop_long_polls()
        super().handle_exit(sig, frame)

    def handle_quit(self, sig, frame):                  # SIGINT, SIGQUIT
        external_tasks.stop_long_polls()                # answered while gunicorn waits 0.1 s to exit
        super().handle_quit(sig, frame)

    def get_thread_pool(self):
        if not self.pooled:
            return super().get_thread_pool()
        runners = getattr(self.app, "request_runners", 1)
        if runners >= self.cfg.threads:
            log.warning("%d request runners and %d threads leave no thread for a request that waits "
                        "(long polls, slow clients): raise APPROVALS_THREADS", runners, self.cfg.threads)
        return RequestPool(self.cfg.threads, runners)

    def handle(self, conn):
        if not self.pooled:
            return super().handle(conn)
        if not conn.initialized:
            if not conn.data_ready and not _ready(conn.sock, select.POLLIN):
                return _DEFER           # gunicorn's poller watches it; it comes back when readable
            if not isinstance(conn.sock, _Guarded):
                conn.sock = _Guarded(conn.sock)
        return super().handle(conn)

    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            self._stop_listening()

    def _stop_listening(self) -> None:
        """Take the connections the listeners have queued, then close the listeners (the
        master has closed its copies before telling the workers to stop)."""
        for listener in self.sockets:
            if listener.sock is None:                   # closed already
                continue
            while _ready(listener, select.POLLIN):
                self.accept(listener)
            listener.close()

    def finish_request(self, conn, fs):
        # gthread closes a finished connection gracefully, waiting up to 2 s in its main
        # thread for the client to close too: a client that timed out never does.
        if isinstance(conn.sock, _Guarded) and conn.sock.timed_out:
            self.nr_conns -= 1
            conn.close()
            return
        if not self.alive and _deferred(fs):
            self._wait_for_request(conn)
            return
        super().finish_request(conn, fs)

    def _wait_for_request(self, conn) -> None:
        """A connection whose request has not come yet goes back to the poller, also when
        the worker stops (gthread then closed it: its client's request would be reset)."""
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))


def _deferred(fs: Future) -> bool:
    return not fs.cancelled() and fs.exception() is None and fs.result() is _DEFER
