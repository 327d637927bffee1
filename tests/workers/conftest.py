"""Fixtures for the worker tests: real HTTP servers on free ports, in threads."""
from __future__ import annotations

import logging
import threading

import pytest
from werkzeug.serving import make_server

from .fake_engine import FakeEngine


class Served:
    """A WSGI app on 127.0.0.1:<free port> in a thread."""

    def __init__(self, app) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve():
    started = []

    def start(app) -> Served:
        served = Served(app)
        started.append(served)
        return served
    yield start
    for served in reversed(started):
        served.close()


@pytest.fixture
def fake_engine(serve):
    fake = FakeEngine()
    fake.url = serve(fake.app).url + "/engine-rest"
    return fake
