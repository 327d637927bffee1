"""Reading ends with COMMIT, so PostgreSQL keeps the statements psycopg prepared.

psycopg forgets every prepared statement of a connection at each rollback and sends
DEALLOCATE ALL before the next statement.  A request's authentication and every reading
unit of work used to end that way, so on PostgreSQL no statement stayed prepared and each
was parsed and planned again (bench/bench_scaleout.py: 1.1-1.4 ms of PostgreSQL CPU per
completion before, 0.65-0.8 ms after).  A reading unit that holds an ORM change, or that
failed, still rolls back.  Storage test: SQLite and PostgreSQL."""
from __future__ import annotations

import collections

import pytest
import sqlalchemy as sa

from engine.db import reading
from engine.models import User


@pytest.fixture
def commands(engine):
    """Transaction commands (BEGIN, COMMIT, ROLLBACK, DEALLOCATE ALL) psycopg sends."""
    if engine.db.dialect.name != "postgresql":
        pytest.skip("psycopg's prepared statements are PostgreSQL's")
    from psycopg import _connection_base
    seen = collections.Counter()
    original = _connection_base.BaseConnection._exec_command

    def counting(self, command, *args, **kwargs):
        seen[bytes(command).decode()] += 1
        return original(self, command, *args, **kwargs)

    _connection_base.BaseConnection._exec_command = counting
    yield seen
    _connection_base.BaseConnection._exec_command = original


def _prepared(engine) -> int:
    with engine.db.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM pg_prepared_statements")).scalar()


def test_requests_keep_the_statements_prepared(client, engine, commands):
    assert client.get("/engine-rest/task").status_code == 200
    commands.clear()
    for _ in range(8):
        assert client.get("/engine-rest/task").status_code == 200
        assert client.get("/engine-rest/process-instance").status_code == 200
    assert commands["COMMIT"] >= 16 and commands["ROLLBACK"] == 0 and commands["DEALLOCATE ALL"] == 0, commands
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
        admin = uow.session.get(User, "admin")
        admin.first_name = "changed while reading"
    with engine.uow(write=False) as uow:
        assert uow.session.get(User, "admin").first_name != "changed while reading"


def test_a_reading_unit_that_failed_rolls_back(engine):
    with pytest.raises(RuntimeError):
        with engine.uow(write=False) as uow:
            uow.session.get(User, "admin").first_name = "changed, then failed"
            uow.session.flush()                          # sent to the database, not committed
            raise RuntimeError("the request failed")
    with engine.uow(write=False) as uow:
        assert uow.session.get(User, "admin").first_name != "changed, then failed"


def test_a_bare_reading_connection_rolls_back_on_error(engine):
    with pytest.raises(RuntimeError):
        with reading(engine.db) as conn:
            conn.execute(sa.text("UPDATE app_user SET first_name = 'bare write' WHERE id = 'admin'"))
            raise RuntimeError("the check failed")
    with engine.uow(write=False) as uow:
        assert uow.session.get(User, "admin").first_name != "bare write"
