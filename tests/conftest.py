"""Shared fixtures.  Every storage test runs twice: on SQLite and on PostgreSQL.

PostgreSQL comes from APPROVALS_TEST_PG (default: the local server with trust auth,
database `test`); each test session works in a schema of its own.  Where the server
cannot be reached the PostgreSQL half is skipped, and the header says so once.
"""
from __future__ import annotations

import base64
import os
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

# Every dump of a case's state is compared with SpiffWorkflow's own serialization, in this
# process and in the servers the tests start (engine/workflows.py, "state JSON").
os.environ.setdefault("APPROVALS_CHECK_STATE", "1")

from engine.config import ROOT, Settings  # noqa: E402
from engine.db import migrate, postgresql_problem, scratch_schema  # noqa: E402
from engine.models import Base  # noqa: E402
from engine.identity import SCRYPT_COST  # noqa: E402

# Every test hashes a fresh admin's password and its users' (and verifies them), and at
# the real cost (N=2^14, ~40 ms a hash) that was a third of the suite's time.  Tests hash
# at N=2^10; a hash keeps its cost, so the code that reads it is the same.  The servers
# the tests start in their own processes, and the test of the stored hashes
# (`production_password_cost`), keep the real cost.
PRODUCTION_SCRYPT_N = SCRYPT_COST["n"]
SCRYPT_COST["n"] = 2**10

PG_URL = os.environ.get("APPROVALS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ADMIN = ("admin", "admin-secret")
FIXTURES = Path(__file__).parent / "fixtures"


PG_PROBLEM = postgresql_problem(PG_URL)


def pytest_report_header(config):
    if PG_PROBLEM:
        return f"PostgreSQL unreachable at {PG_URL} ({PG_PROBLEM}): PostgreSQL tests are skipped"
    return f"PostgreSQL: {PG_URL}"


@contextmanager
def pg_schema(prefix: str = "t"):
    """A URL of the test database that works in a new, empty schema (dropped after)."""
    if PG_PROBLEM:
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    with scratch_schema(PG_URL, prefix) as url:
        yield url


@pytest.fixture
def production_password_cost(monkeypatch):
    monkeypatch.setitem(SCRYPT_COST, "n", PRODUCTION_SCRYPT_N)


@pytest.fixture(scope="session")
def pg_schema_url():
    with pg_schema() as url:
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'approvals.db'}"
    migrate(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def own_database(request, tmp_path):
    """An empty, unmigrated database of the test's own (a migration test moves it
    between schema versions): a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migration.db'}"
        return
    with pg_schema("m") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_schema_url")


_WIPERS: dict = {}


def wipe(url: str) -> None:
    """Empty every table, on a connection kept for the next test's wipe; on PostgreSQL in
    one round trip (a new connection and a statement per table took 22-28 ms a test)."""
    engine = _WIPERS.get(url) or _WIPERS.setdefault(url, sa.create_engine(url, pool_pre_ping=True))
    tables = reversed(Base.metadata.sorted_tables)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(";".join(f'DELETE FROM "{table.name}"' for table in tables))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def settings(database_url) -> Settings:
    wipe(database_url)
    return Settings(database_url=database_url, admin_password=ADMIN[1], bpmn_dir=ROOT / "bpmn",
                    forms_dir=ROOT / "forms")


@pytest.fixture
def engine(settings):
    from engine.context import Engine
    from app import ensure_admin
    eng = Engine(settings)
    ensure_admin(eng)
    yield eng
    eng.close()


@pytest.fixture
def app(engine, settings):
    from app import create_app
    from engine.clock import clock
    flask_app = create_app(settings, engine)
    yield flask_app
    scheduler = flask_app.extensions.get("approvals_scheduler")
    if scheduler is not None:
        scheduler.stop()
    clock.reset()


@pytest.fixture
def scripts_on(engine, monkeypatch):
    """What APPROVALS_SCRIPT_TASKS=1 switches on: deploying and running sandboxed scripts."""
    monkeypatch.setattr(engine.settings, "script_tasks_enabled", True)
    monkeypatch.setattr(engine.script_engine, "scripts_enabled", True)


@contextmanager
def restarted_server(settings):
    """The server started again on the same database: a new engine (its caches empty, its
    specs parsed anew) and app, as after a restart; its timer scheduler is stopped at the
    end, so that it fires nothing in the next test's tables."""
    from app import create_app
    from engine.context import Engine
    restarted = Engine(settings)
    flask_app = create_app(settings, restarted)
    try:
        yield Client(flask_app.test_client())
    finally:
        scheduler = flask_app.extensions.get("approvals_scheduler")
        if scheduler is not None:
            scheduler.stop()
        restarted.close()


class Client:
    """The HTTP API as a department user calls it (Flask's WSGI test client)."""

    def __init__(self, flask_client, user=ADMIN):
        self.http = flask_client
        self.user = user

    def as_user(self, user_id: str, password: str = "pw") -> "Client":
        return Client(self.http, (user_id, password))

    def _headers(self, headers=None):
        token = base64.b64encode(f"{self.user[0]}:{self.user[1]}".encode()).decode()
        return {"Authorization": f"Basic {token}", **(headers or {})}

    def get(self, path, **kw):
        return self.http.get(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path, **kw):
        return self.http.post(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def put(self, path, **kw):
        return self.http.put(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def delete(self, path, **kw):
        return self.http.delete(path, headers=self._headers(kw.pop("headers", None)), **kw)

    # --- conveniences used across tests ------------------------------------------------
    def deploy(self, *paths, name="test", extra=None, **form):
        data = {"deployment-name": name, **{k.replace("_", "-"): str(v).lower() if isinstance(v, bool) else v
                                            for k, v in form.items()}}
        files = []
        for p in paths:
            p = Path(p)
            files.append((p.name, p.read_bytes()))
        for name_, content in (extra or {}).items():
            files.append((name_, content if isinstance(content, bytes) else content.encode()))
        import io
        for i, (fname, content) in enumerate(files):
            data[f"file{i}"] = (io.BytesIO(content), fname)
        return self.post("/engine-rest/deployment/create", data=data, content_type="multipart/form-data")

    def create_user(self, user_id, groups=(), password="pw"):
        r = self.post("/engine-rest/user/create", json={"profile": {"id": user_id, "firstName": user_id},
                                                         "credentials": {"password": password}})
        assert r.status_code == 204, r.get_json()
        for g in groups:
            if self.get(f"/engine-rest/group?id={g}").get_json() == []:
                assert self.post("/engine-rest/group/create", json={"id": g, "name": g}).status_code == 204
            assert self.put(f"/engine-rest/group/{g}/members/{user_id}").status_code == 204
        return self.as_user(user_id, password)

    def start(self, key, variables=None, business_key=None):
        body = {"variables": variables or {}}
        if business_key:
            body["businessKey"] = business_key
        r = self.post(f"/engine-rest/process-definition/key/{key}/start", json=body)
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    def tasks(self, **query):
        r = self.get("/engine-rest/task", query_string=query)
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    def complete(self, task_id, variables=None):
        return self.post(f"/engine-rest/task/{task_id}/complete", json={"variables": variables or {}})

    def variable_values(self, case_id) -> dict:
        """A running case's variables, name -> value."""
        r = self.get(f"/engine-rest/process-instance/{case_id}/variables")
        assert r.status_code == 200, r.get_json()
        return {name: typed_value["value"] for name, typed_value in r.get_json().items()}


@pytest.fixture
def client(app) -> Client:
    return Client(app.test_client())


def typed(**values) -> dict:
    """Plain values -> Camunda typed variables."""
    from engine.variables import to_wire
    return {k: to_wire(v) for k, v in values.items()}


def at_once(calls) -> list:
    """Run the zero-argument `calls` in threads released together (a race), and return
    their results in the order they finished."""
    import threading
    barrier, results = threading.Barrier(len(calls)), []

    def run(call):
        barrier.wait()
        results.append(call())

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
