"""A reading unit of work ends with COMMIT on PostgreSQL, so psycopg keeps the statements
it prepared, and its transaction there is READ ONLY, so that COMMIT can never keep a write.

psycopg forgets every prepared statement of a connection at each rollback and sends
DEALLOCATE ALL before the next statement.  A request's authentication and every reading
unit of work used to end that way, so on PostgreSQL no statement stayed prepared and each
was parsed and planned again (bench/bench_scaleout.py: 1.1-1.4 ms of PostgreSQL CPU per
completion before, 0.65-0.8 ms after).  A reading unit that failed, or holds an ORM
change, still rolls back; SQLite's reads end as before.  The authentication's single
SELECT now runs on its own, in autocommit, and its connection goes back to the pool in
transactions again.  Storage test: SQLite and PostgreSQL."""
from __future__ import annotations

import collections
import select
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.db import reading
from engine.fastsql import Statement
from engine.models import User

_RENAME = Statement(sa.update(User.__table__).where(User.__table__.c.id == sa.bindparam("user_id"))
                    .values(first_name=sa.bindparam("name")))


@pytest.fixture
def commands(engine, monkeypatch):
    """Transaction commands (BEGIN ..., COMMIT, ROLLBACK, DEALLOCATE ALL) psycopg sends
    for the requests of this thread (the test client runs them here; the timer
    scheduler's thread has transactions of its own)."""
    if engine.db.dialect.name != "postgresql":
        pytest.skip("psycopg's prepared statements are PostgreSQL's")
    from psycopg import _connection_base
    seen = collections.Counter()
    original = _connection_base.BaseConnection._exec_command
    here = threading.get_ident()

    def counting(self, command, *args, **kwargs):
        if threading.get_ident() == here:
            seen[bytes(command).decode()] += 1
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(_connection_base.BaseConnection, "_exec_command", counting)
    return seen


def _prepared(engine) -> int:
    """Statements prepared on the connection the pool hands out next (the requests
    below run one at a time, so they share one)."""
    with reading(engine.db) as conn:
        return conn.execute(sa.text("SELECT count(*) FROM pg_prepared_statements")).scalar()


def _first_name(engine) -> str | None:
    with engine.uow(write=False) as uow:
        return uow.session.execute(sa.select(User.first_name).where(User.id == "admin")).scalar()


def test_requests_keep_the_statements_prepared(client, engine, commands):
    clerk = client.create_user("clerk", ["window"])
    token = clerk.post("/api/v1/tokens", json={"label": "window pc"}).get_json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/engine-rest/task").status_code == 200
    commands.clear()
    for _ in range(8):
        assert client.get("/engine-rest/task").status_code == 200                  # Basic
        assert client.get("/engine-rest/process-definition").status_code == 200
        assert client.http.get("/engine-rest/task", headers=bearer).status_code == 200   # Bearer
    assert commands["ROLLBACK"] == 0 and commands["DEALLOCATE ALL"] == 0, commands
    # the authentication's SELECT and a task list (one statement) run on their own; the
    # process-definition list in its reading unit's transaction
    assert commands["BEGIN READ ONLY"] == 8 and commands["COMMIT"] == 8, commands
    assert _prepared(engine) >= 1


def test_a_failed_command_still_rolls_back_and_prepares_again(client, engine, commands):
    assert client.get("/engine-rest/task").status_code == 200
    commands.clear()
    assert client.post("/engine-rest/task/no-such-task/complete", json={}).status_code == 404
    assert commands["ROLLBACK"] == 1                     # the failed command's transaction
    for _ in range(8):
        assert client.get("/engine-rest/task").status_code == 200
    assert commands["ROLLBACK"] == 1 and _prepared(engine) >= 1


def test_a_reading_unit_with_an_orm_change_rolls_it_back(engine):
    with engine.uow(write=False) as uow:
        uow.session.get(User, "admin").first_name = "changed while reading"
    assert _first_name(engine) != "changed while reading"


@pytest.mark.parametrize("how", ["flush", "core", "fastsql"])
def test_a_write_in_a_reading_unit_never_reaches_the_database(engine, how):
    """Refused on PostgreSQL (READ ONLY), rolled back on SQLite, even when the unit
    exits cleanly after it."""
    refused = engine.db.dialect.name == "postgresql"
    with engine.uow(write=False) as uow:
        try:
            if how == "flush":
                uow.session.get(User, "admin").first_name = f"{how} while reading"
                uow.session.flush()
            elif how == "core":
                uow.session.execute(sa.update(User).where(User.id == "admin").values(first_name=f"{how} while reading"))
            else:
                _RENAME.execute(uow.session, {"user_id": "admin", "name": f"{how} while reading"})
        except sa.exc.DBAPIError as err:
            assert refused and "read-only transaction" in str(err)
        else:
            assert not refused
    assert _first_name(engine) != f"{how} while reading"


def test_a_reading_unit_whose_flush_failed_ends_without_a_new_error(engine):
    """The flush's error is caught inside the unit; leaving it must not raise (a COMMIT of
    the failed transaction would)."""
    with engine.uow(write=False) as uow:
        uow.session.add(User(id="admin", password_hash="x", credentials_version=1))      # the id exists
        with pytest.raises(sa.exc.DBAPIError):
            uow.session.flush()
    assert _first_name(engine) is None or _first_name(engine) != "x"


def test_a_reading_unit_that_failed_rolls_back(engine):
    with pytest.raises(RuntimeError):
        with engine.uow(write=False) as uow:
            uow.session.get(User, "admin")
            raise RuntimeError("the request failed")
    with engine.uow(write=False) as uow:               # the pool handed the connection out again, usable
        assert uow.session.get(User, "admin") is not None


def _fails_half_way(engine) -> None:
    with pytest.raises(RuntimeError):
        with engine.uow() as uow:             # a command that fails half-way keeps nothing
            uow.session.execute(sa.update(User).where(User.id == "admin").values(first_name="half a command"))
            assert uow.session.connection().connection.dbapi_connection.autocommit is False
            raise RuntimeError("the command failed")
    assert _first_name(engine) != "half a command"


@pytest.mark.parametrize("fail", ["no", "statement", "caller"])
def test_the_authentications_connection_goes_back_to_the_pool_in_transactions(engine, fail):
    """On PostgreSQL the authentication reads in autocommit; the connection the pool gets
    back must not stay so, or the next command's statements would each commit alone."""
    if engine.db.dialect.name != "postgresql":
        pytest.skip("SQLite's bare reads are left as they were")
    try:
        with reading(engine.db) as conn:
            driver = conn.connection.dbapi_connection
            assert driver.autocommit
            if fail == "statement":
                conn.execute(sa.text("SELECT no_such_column FROM app_user"))
            conn.execute(sa.text("SELECT 1"))
            if fail == "caller":
                raise RuntimeError("the check failed")
    except (sa.exc.DBAPIError, RuntimeError):
        assert fail != "no"
    assert driver.autocommit is False
    _fails_half_way(engine)
    with reading(engine.db) as conn:         # and the pool still hands out working connections
        assert conn.execute(sa.text("SELECT count(*) FROM app_user")).scalar() >= 1


def test_a_connection_that_cannot_leave_autocommit_is_dropped(engine):
    """Inside a transaction (a BEGIN sent in autocommit) psycopg refuses to switch: the
    connection is closed rather than pooled as it is."""
    if engine.db.dialect.name != "postgresql":
        pytest.skip("SQLite's bare reads are left as they were")
    with reading(engine.db) as conn:
        driver = conn.connection.dbapi_connection
        conn.exec_driver_sql("BEGIN")
    assert driver.closed
    _fails_half_way(engine)


def test_the_pool_never_hands_out_a_connection_in_autocommit(engine):
    """Whatever left them so (an interrupt inside `reading`), connections come out of the
    pool in transactions: `_postgresql_checkout` switches them back."""
    if engine.db.dialect.name != "postgresql":
        pytest.skip("psycopg's autocommit is PostgreSQL's")
    held = []
    while engine.db.pool.checkedin() or len(held) < 3:      # every pooled connection, left in autocommit
        held.append(engine.db.connect())
        held[-1].connection.dbapi_connection.autocommit = True
    for conn in held:
        conn.close()
    _fails_half_way(engine)


def test_a_connection_cut_while_the_authentication_reads_is_dropped_quietly(engine):
    if engine.db.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no connections to cut")
    admin = sa.create_engine(engine.settings.database_url)
    try:
        with reading(engine.db) as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            driver = conn.connection.dbapi_connection
            with Session(admin) as other:
                assert other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
                other.commit()
        # pg_terminate_backend only signals: wait until the hang-up reaches this end (on a busy
        # machine it came after the pool had handed the connection out again)
        _hung_up(driver)
        # the read was done: no error, and the pool hands out a working connection next
        with reading(engine.db) as conn:
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        admin.dispose()



def _hung_up(driver, within: float = 10.0) -> None:
    """Wait until the connection is closed or its socket has something to read (the
    server's goodbye): what the pool's checkout looks for (engine/db.py)."""
    if driver.closed:
        return
    poller = select.poll()
    poller.register(driver.fileno(), select.POLLIN)
    assert poller.poll(within * 1000), f"no hang-up {within:g} s after pg_terminate_backend"
