"""The real server (gunicorn with api/serving.py's request pool) runs one request at a
time, yet a long-polling fetchAndLock or a client that connects and sends nothing holds
up nobody: they step aside while they wait."""
from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

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


def test_a_long_poll_and_a_silent_connection_hold_up_no_other_request(settings, registration):
    with serving(settings.database_url, workers=1) as server:      # one process: the same pool for all
        http = requests.Session()
        http.auth = ADMIN
        result = {}

        def long_poll():
            body = {"workerId": "scjg-1", "maxTasks": 1, "asyncResponseTimeout": 8_000,
                    "topics": [{"topicName": "registration", "lockDuration": 60_000}]}
            result["tasks"] = requests.post(f"{server.url}{REST}/external-task/fetchAndLock", json=body,
                                            auth=ADMIN, timeout=20).json()

        poll = threading.Thread(target=long_poll)
        poll.start()
        silent = socket.create_connection(("127.0.0.1", server.port))     # connects, never sends
        try:
            time.sleep(0.5)
            assert poll.is_alive(), f"the fetch answered before any task existed: {result}"
            began = time.monotonic()
            for _ in range(5):
                assert http.get(f"{server.url}{REST}/version", timeout=5).status_code == 200
            started = http.post(f"{server.url}{REST}/process-definition/key/company_setup/start",
                                json={"variables": typed(applicantName="苏州某某科技有限公司")}, timeout=5)
            assert started.status_code == 200, started.text
            assert time.monotonic() - began < 3.0, "other requests waited behind the long poll"
            poll.join(timeout=10)
            assert not poll.is_alive()
            assert [t["processInstanceId"] for t in result["tasks"]] == [started.json()["id"]]
            assert time.monotonic() - began < 6.0          # woken by the start, not by its 8 s timeout
        finally:
            silent.close()
