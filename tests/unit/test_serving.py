"""The request pool (api/serving.py): one runner takes requests in turn; a request that
waits steps aside, so the queue goes on without it."""
from __future__ import annotations

import threading
import time

import pytest

from api import serving
from api.serving import RequestPool, step_aside


def _until(condition, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def pool():
    pool = RequestPool(max_threads=4)
    yield pool
    pool.shutdown()


def test_requests_run_one_at_a_time_in_the_order_they_came(pool):
    running, most, done, threads = [0], [0], [], set()
    lock = threading.Lock()

    def request(n):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threads.add(threading.get_ident())
        time.sleep(0.002)                          # lets the GIL go: a plain thread pool would overlap here
        with lock:
            running[0] -= 1
        done.append(n)
        return n * n

    futures = [pool.submit(request, n) for n in range(20)]
    assert [f.result(timeout=10) for f in futures] == [n * n for n in range(20)]
    assert done == list(range(20))
    assert most[0] == 1
    assert len(threads) == 1 and pool.threads == 1


def test_a_request_that_steps_aside_to_wait_does_not_hold_up_the_queue(pool):
    released = threading.Event()

    def long_poll():
        with step_aside():
            return released.wait(timeout=5)       # only a later request can set it

    def completion():
        released.set()
        return "done"

    waiting = pool.submit(long_poll)
    assert pool.submit(completion).result(timeout=2) == "done"
    assert waiting.result(timeout=2) is True
    assert pool.threads == 2


def test_the_thread_that_stepped_aside_is_parked_and_taken_again_next_time(pool):
    for _ in range(5):
        released = threading.Event()

        def long_poll(released=released):
            with step_aside():
                return released.wait(timeout=5)

        waiting = pool.submit(long_poll)
        pool.submit(released.set).result(timeout=2)
        assert waiting.result(timeout=2) is True
        _until(lambda: pool._parked)               # the thread that waited is back in the pool
    assert pool.threads == 2                       # not one new thread per wait


def test_with_every_thread_taken_the_runner_is_told_it_cannot_wait_aside():
    pool = RequestPool(max_threads=1)
    try:
        began = time.monotonic()

        def long_poll():
            with step_aside() as free:             # nobody to hand over to
                time.sleep(0.2)
            return free

        first, second = pool.submit(long_poll), pool.submit(lambda: time.monotonic() - began)
        assert first.result(timeout=2) is False
        assert second.result(timeout=2) >= 0.2     # the queue waited with it
        assert pool.threads == 1
    finally:
        pool.shutdown()


def test_an_error_reaches_the_caller_and_the_runner_goes_on(pool):
    def broken():
        raise ValueError("broken request")

    failed = pool.submit(broken)
    with pytest.raises(ValueError, match="broken request"):
        failed.result(timeout=2)
    assert pool.submit(lambda: "next").result(timeout=2) == "next"


def test_step_aside_outside_the_pool_does_nothing_and_lets_the_caller_wait():
    with step_aside() as free:
        assert free is True


def test_two_runners_take_two_requests_at_once_and_a_third_waits():
    pool = RequestPool(max_threads=4, runners=2)
    try:
        both_in, release = threading.Barrier(2, timeout=5), threading.Event()
        order = []

        def request(n):
            both_in.wait()                         # fails unless two requests run at once
            release.wait(timeout=5)
            order.append(n)

        first, second = pool.submit(request, 1), pool.submit(request, 2)
        third = pool.submit(order.append, 3)
        time.sleep(0.1)
        assert not third.done()                    # both runners are busy
        release.set()
        for future in (first, second, third):
            future.result(timeout=5)
        assert sorted(order) == [1, 2, 3] and pool.threads == 2
    finally:
        pool.shutdown()


def test_submitting_after_shutdown_is_refused():
    pool = RequestPool(max_threads=2)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(print)


def test_shutdown_ends_the_runner_and_the_parked_threads():
    pool = RequestPool(max_threads=3)
    released = threading.Event()

    def long_poll():
        with step_aside():
            released.wait(timeout=5)

    waiting = pool.submit(long_poll)
    pool.submit(released.set).result(timeout=2)
    waiting.result(timeout=2)
    ours = [t for t in threading.enumerate() if t.name.startswith(f"request-{id(pool):x}-")]
    assert len(ours) >= 2
    pool.shutdown()
    for thread in ours:
        thread.join(timeout=2)
        assert not thread.is_alive(), thread.name


def test_a_shutdown_begun_inside_another_returns_instead_of_waiting_for_it():
    """gunicorn shuts the pool down in its SIGINT/SIGQUIT handler.  On Ctrl-C of `make run`
    the worker gets the terminal's SIGINT and, a moment later, the master's SIGQUIT, whose
    handler can run inside the first one while that holds the pool's lock (here: as it wakes
    a parked thread).  The second call waited for that lock forever; the master killed the
    worker after graceful_timeout, and the port stayed taken until then."""
    pool = RequestPool(max_threads=3)

    class SecondSignal(threading.Event):           # a parked thread whose wake-up the SIGQUIT interrupts
        def set(self):
            super().set()
            pool.shutdown()

    pool._parked.append(SecondSignal())
    stopping = threading.Thread(target=pool.shutdown, daemon=True)
    stopping.start()
    stopping.join(timeout=2)
    assert not stopping.is_alive(), "the second shutdown waits for the lock the first one holds"
    with pytest.raises(RuntimeError):
        pool.submit(print)


# --- the guarded client socket ----------------------------------------------------------

def _pair():
    import socket
    server_side, client_side = socket.socketpair()
    guarded = serving._Guarded(server_side)
    guarded.setblocking(True)
    return guarded, client_side


def test_a_read_with_nothing_to_read_steps_aside_and_the_queue_goes_on(pool):
    guarded, client = _pair()
    try:
        reading = pool.submit(guarded.recv, 16)            # the client has sent nothing yet
        pool.submit(client.sendall, b"hello").result(timeout=2)   # runs while the read waits
        assert reading.result(timeout=2) == b"hello"
        assert pool.threads == 2
    finally:
        guarded.close()
        client.close()


def test_a_write_the_client_does_not_read_steps_aside(pool):
    guarded, client = _pair()
    try:
        chunk = b"x" * (1 << 20)
        writing = pool.submit(guarded.sendall, chunk * 8)  # more than the socket buffers hold
        time.sleep(0.1)
        assert not writing.done()
        assert pool.submit(lambda: "next").result(timeout=2) == "next"   # ran while the write waited
        assert pool.threads == 2
        client.settimeout(5)
        received = 0
        while received < len(chunk) * 8:
            received += len(client.recv(1 << 20))
        writing.result(timeout=2)
    finally:
        guarded.close()
        client.close()


def test_a_client_that_sends_nothing_times_out_as_a_lost_connection(monkeypatch):
    import errno
    monkeypatch.setattr(serving, "SOCKET_TIMEOUT", 0.2)
    guarded, client = _pair()
    try:
        assert guarded.gettimeout() == 0.2
        began = time.monotonic()
        with pytest.raises(OSError) as caught:
            guarded.recv(16)
        assert caught.value.errno == errno.ENOTCONN        # gunicorn: a debug line, not a traceback
        assert guarded.timed_out and 0.15 < time.monotonic() - began < 2
        guarded.setblocking(False)
        assert guarded.gettimeout() == 0.0
    finally:
        guarded.close()
        client.close()
