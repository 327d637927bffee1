"""The real server (gunicorn with api/serving.py's request pool) runs one request at a
time, yet nothing a client does holds up the others: a long-polling fetchAndLock, a
connection that sends nothing, a client that stops halfway through its request or its
body; and a long poll does not hold up the server's stop.  One process with one runner on
both stores (PostgreSQL's default second runner would hide a runner that is stuck)."""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import func, select

from engine.models import ProcessInstance
from tests.conftest import ADMIN, FIXTURES, typed
from tests.live_server import serving

REST = "/engine-rest"


@pytest.fixture
def registration(engine):
    from engine import deployments, identity
    with engine.uow() as uow:
        model = (FIXTURES / "external_registration.bpmn").read_bytes()
        deployments.deploy(uow, [deployments.Upload("external_registration.bpmn", model)], identity.SYSTEM,
                           name="company-setup")
        uow.commit()


@pytest.fixture
def server(settings, engine):                      # engine: the schema and the admin, made before the server starts
    with serving(settings.database_url, workers=1, APPROVALS_RUNNERS="1") as server:
        yield server


def _session() -> requests.Session:
    http = requests.Session()
    http.auth = ADMIN
    return http


def _response(sock) -> bytes:
    """One whole HTTP response from a raw socket (headers and Content-Length body)."""
    sock.settimeout(5)

    def more() -> bytes:
        if not (received := sock.recv(4096)):
            raise ConnectionAbortedError("the server closed the connection before its whole answer")
        return received

    data = b""
    while b"\r\n\r\n" not in data:
        data += more()
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += more()
    return head


def _answers_quickly(server, what: str) -> None:
    http = _session()
    began = time.monotonic()
    for _ in range(5):
        assert http.get(f"{server.url}{REST}/version", timeout=5).status_code == 200
    assert time.monotonic() - began < 3.0, f"other requests waited behind {what}"


def test_a_long_poll_and_a_silent_connection_hold_up_no_other_request(registration, server):
    poller, result = _session(), {}
    assert poller.get(f"{server.url}{REST}/version", timeout=5).ok      # the fetch comes on a kept-alive connection

    def long_poll():
        body = {"workerId": "scjg-1", "maxTasks": 1, "asyncResponseTimeout": 8_000,
                "topics": [{"topicName": "registration", "lockDuration": 60_000}]}
        result["tasks"] = poller.post(f"{server.url}{REST}/external-task/fetchAndLock", json=body, timeout=20).json()

    poll = threading.Thread(target=long_poll)
    poll.start()
    silent = socket.create_connection(("127.0.0.1", server.port))     # connects, never sends
    try:
        time.sleep(0.5)
        assert poll.is_alive(), f"the fetch answered before any task existed: {result}"
        _answers_quickly(server, "a long poll and a silent connection")
        began = time.monotonic()
        started = _session().post(f"{server.url}{REST}/process-definition/key/company_setup/start",
                                  json={"variables": typed(applicantName="苏州某某科技有限公司")}, timeout=5)
        assert started.status_code == 200, started.text
        poll.join(timeout=10)
        assert not poll.is_alive()
        assert [t["processInstanceId"] for t in result["tasks"]] == [started.json()["id"]]
        assert time.monotonic() - began < 4.0          # woken by the start, not by its 8 s timeout
    finally:
        silent.close()


@pytest.mark.parametrize("sent", [
    b"GET /engine-rest/version HTTP/1.1\r\nHost: x\r\n",                                   # headers cut off
    b"POST /engine-rest/message HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n{",                                                       # body cut off
], ids=["headers", "body"])
def test_a_client_that_stops_halfway_through_its_request_holds_up_no_other(server, sent):
    stalled = socket.create_connection(("127.0.0.1", server.port))
    try:
        stalled.sendall(b"GET /engine-rest/version HTTP/1.1\r\nHost: x\r\n\r\n")   # kept alive, then
        assert _response(stalled).startswith(b"HTTP/1.1 ")
        stalled.sendall(sent)                                                        # ...it stalls
        time.sleep(0.3)
        _answers_quickly(server, "a stalled client")
    finally:
        stalled.close()


def test_clients_that_time_out_are_dropped_without_holding_up_the_others(settings, engine):
    with serving(settings.database_url, workers=1, APPROVALS_RUNNERS="1", APPROVALS_CLIENT_TIMEOUT="1") as server:
        stalled = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
        try:
            for sock in stalled:
                sock.sendall(b"GET /engine-rest/version HTTP/1.1\r\nHost: x\r\n")   # and nothing more
            http, slowest = _session(), 0.0
            until = time.monotonic() + 4.0                 # the four time out after 1 s, meanwhile and after
            while time.monotonic() < until:
                began = time.monotonic()
                assert http.get(f"{server.url}{REST}/version", timeout=5).status_code == 200
                slowest = max(slowest, time.monotonic() - began)
                time.sleep(0.05)
            assert slowest < 1.0, f"a request took {slowest:.2f} s while stalled clients were dropped"
            for sock in stalled:                           # the server closed them
                sock.settimeout(2)
                assert sock.recv(100) == b""
        finally:
            for sock in stalled:
                sock.close()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)       # as gunicorn binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_sigterm_answers_open_and_new_long_polls_with_nothing_and_the_server_exits_in_its_grace(settings, engine):
    """Before, a stopping worker kept an open 60 s poll until gunicorn's graceful_timeout
    (10 s) and then dropped it unanswered, let a poll that came meanwhile on a kept-alive
    connection wait too, and raced its master's SIGKILL; the port stayed taken all along."""
    from app import server as gunicorn_app
    grace = gunicorn_app(settings).cfg.graceful_timeout
    body = {"workerId": "scjg-1", "maxTasks": 1, "asyncResponseTimeout": 60_000,
            "topics": [{"topicName": "registration", "lockDuration": 60_000}]}
    answers = {}
    # two long-poll slots: with the live server's 8 threads there is one, and the late poll would not wait anyway
    with serving(settings.database_url, workers=1, APPROVALS_RUNNERS="1", APPROVALS_LONG_POLL_SLOTS="2") as server:
        def fetch(name, http):
            try:
                answer = http.post(f"{server.url}{REST}/external-task/fetchAndLock", json=body, timeout=90)
                answers[name] = (answer.status_code, answer.json())
            except requests.RequestException as err:        # the stopping worker dropped it
                answers[name] = err

        poll = threading.Thread(target=fetch, args=("open", _session()))
        poll.start()
        late = _session()
        assert late.get(f"{server.url}{REST}/version", timeout=5).ok     # kept alive for a poll after the stop began
        time.sleep(0.5)
        assert poll.is_alive(), f"the fetch answered before the stop: {answers}"
        began = time.monotonic()
        os.killpg(server.proc.pid, signal.SIGTERM)
        time.sleep(0.2)
        fetch("late", late)
        poll.join(timeout=90)
        assert answers == {"open": (200, []), "late": (200, [])}
        server.proc.wait(timeout=90)
        assert time.monotonic() - began < grace, "the server took its whole graceful_timeout to stop"
        with pytest.raises(ProcessLookupError):
            os.killpg(server.proc.pid, 0)               # master and worker are gone
        assert _port_free(server.port)


def _worker_of(master: int) -> int:
    (worker,) = open(f"/proc/{master}/task/{master}/children").read().split()
    return int(worker)


def _status_of(pid: int) -> dict:
    return dict(line.split(":\t", 1) for line in open(f"/proc/{pid}/status").read().splitlines())


def _until(condition, seconds: float) -> None:
    until = time.monotonic() + seconds
    while not condition() and time.monotonic() < until:
        time.sleep(0.01)
    assert condition()


def _stopped(pid: int) -> bool:
    return _status_of(pid)["State"].startswith("T")


def _sigterm_pending(pid: int) -> bool:
    return bool(int(_status_of(pid)["ShdPnd"], 16) & 1 << (signal.SIGTERM - 1))


def _status(sock) -> str:
    """The status line of the answer, or the error the client met instead; then the client
    closes the connection (gunicorn's worker waits for that, up to 2 s, before it goes on)."""
    try:
        return _response(sock).split(b"\r\n")[0].decode()
    except OSError as err:
        return type(err).__name__
    finally:
        sock.close()


def test_sigterm_answers_the_connections_its_listener_queued_and_refuses_later_ones(registration, settings, engine):
    """A busy worker had not accepted yet what its listener queued (the kernel completed the
    handshake, the clients sent their requests).  Before, the stopping worker stopped
    accepting and its exit reset them, so the client could not tell whether its command
    ran; a client that connected during the stop was reset likewise.  The worker is
    stopped (SIGSTOP) to hold the connections in the listener's queue."""
    body = json.dumps({"variables": typed(applicantName="苏州某某科技有限公司")}).encode()
    start = (b"POST /engine-rest/process-definition/key/company_setup/start HTTP/1.1\r\nHost: x\r\n"
             b"Authorization: Basic " + base64.b64encode(":".join(ADMIN).encode()) + b"\r\n"
             b"Content-Type: application/json\r\nConnection: close\r\n"
             b"Content-Length: %d\r\n\r\n" % len(body) + body)
    with serving(settings.database_url, workers=1, APPROVALS_RUNNERS="1") as server:
        worker = _worker_of(server.proc.pid)
        os.kill(worker, signal.SIGSTOP)
        try:
            _until(lambda: _stopped(worker), 5)            # (a SIGTERM that came first would be taken first)
            # first in the queue, so the one runner takes it before its request comes
            silent = socket.create_connection(("127.0.0.1", server.port))
            queued = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
            for sock in queued:
                sock.sendall(start)
            os.kill(server.proc.pid, signal.SIGTERM)        # the master; it first stops its control socket (up to 4 s)
            _until(lambda: _sigterm_pending(worker), 8)
        finally:
            os.kill(worker, signal.SIGCONT)
        try:
            assert [_status(sock) for sock in queued] == ["HTTP/1.1 200 OK"] * 4
            with pytest.raises(ConnectionRefusedError):                   # while the worker still waits for `silent`
                socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
            silent.sendall(start)
            assert _status(silent) == "HTTP/1.1 200 OK"
        finally:
            for sock in queued + [silent]:
                sock.close()
        server.proc.wait(timeout=30)
    with engine.uow() as uow:                            # each answer told of its case: none ran unannounced
        assert uow.session.scalar(select(func.count()).select_from(ProcessInstance)) == 5


def test_what_gunicorn_refuses_itself_is_answered_in_camundas_error_body(server):
    """A request line over gunicorn's limit was its HTML page; a task list of a hundred
    cases (processInstanceIdIn, 3.7 kB of ids) was one, at its default limit of 4094."""
    http = _session()
    ids = ",".join(str(uuid.uuid4()) for _ in range(100))
    r = http.get(f"{server.url}{REST}/task", params={"processInstanceIdIn": ids}, timeout=10)
    assert r.status_code == 200 and r.json() == [], r.text[:200]
    r = http.get(f"{server.url}{REST}/task", params={"processInstanceIdIn": ids * 3}, timeout=10)
    assert r.status_code == 414 and r.headers["Content-Type"] == "application/json", r.text[:200]
    body = r.json()
    assert body["type"] == "InvalidRequestException" and "POST /task" in body["message"], body
