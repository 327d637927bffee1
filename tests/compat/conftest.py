"""A real server for the Camunda clients (Python and JavaScript) to talk to over HTTP."""
from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from engine.config import Settings
from engine.db import migrate
from tests.conftest import ADMIN


@pytest.fixture
def server(tmp_path):
    """The app on a free port in a thread (werkzeug, threaded), on a fresh SQLite file;
    yields its /engine-rest URL."""
    from app import create_app, ensure_admin
    from engine.context import Engine
    url = f"sqlite:///{tmp_path / 'compat.db'}"
    migrate(url)
    settings = Settings(database_url=url, admin_password=ADMIN[1], timers_enabled=False)
    engine = Engine(settings)
    ensure_admin(engine)
    http = make_server("127.0.0.1", 0, create_app(settings, engine), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{http.server_port}/engine-rest"
    yield base
    http.shutdown()
    thread.join(timeout=10)
    engine.close()
