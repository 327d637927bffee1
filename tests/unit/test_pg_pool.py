"""PostgreSQL connections the server closed are not handed out by the pool.

engine.db polls a pooled connection's socket on checkout instead of SQLAlchemy's
pre-ping round trip.  PostgreSQL only (SQLite has no connections to cut)."""
from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from engine.db import make_engine
from tests.conftest import PG_PROBLEM, PG_URL

pytestmark = pytest.mark.skipif(bool(PG_PROBLEM), reason=f"PostgreSQL unreachable at {PG_URL}")


def _terminate(pid: int) -> None:
    admin = sa.create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        for _ in range(500):                           # until the backend has exited
            with admin.begin() as conn:
                if not conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                                    {"p": pid}).scalar():
                    return
            time.sleep(0.01)
        raise AssertionError(f"backend {pid} did not exit")
    finally:
        admin.dispose()


@pytest.mark.parametrize("times", [1, 3])
def test_a_connection_cut_while_pooled_is_replaced_on_checkout(times):
    engine = make_engine(PG_URL)
    try:
        for _ in range(times):
            with engine.connect() as conn:
                pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            _terminate(pid)                            # while the connection waits in the pool
            with engine.connect() as conn:             # no error: a fresh connection
                assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()


def test_a_healthy_pooled_connection_is_reused():
    engine = make_engine(PG_URL)
    try:
        pids = set()
        for _ in range(5):
            with engine.connect() as conn:
                pids.add(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar())
        assert len(pids) == 1
    finally:
        engine.dispose()


def test_a_connection_numbered_past_1024_is_checked_too():
    """select() cannot watch a descriptor above 1024; a busy server has such sockets."""
    import os
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        if hard != resource.RLIM_INFINITY and hard < 2048:
            pytest.skip(f"the open-files limit ({hard}) does not reach past 1024 descriptors")
        resource.setrlimit(resource.RLIMIT_NOFILE, (2048, hard))
    engine = make_engine(PG_URL)
    spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]     # push new descriptors up
    try:
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection.fileno() > 1024
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with engine.connect() as conn:                 # healthy: reused, not replaced
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() == pid
        _terminate(pid)
        with engine.connect() as conn:                 # cut: replaced
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
        for fd in spare:
            os.close(fd)


def test_a_connection_that_breaks_at_commit_says_the_outcome_is_unknown():
    # PostgreSQL may have committed before the connection broke, so "nothing was changed,
    # retry" (the 503 of any other database error) would have a start retried into a second case
    from engine.db import UnitOfWork, session_factories
    from engine.errors import OutcomeUnknown
    engine = make_engine(PG_URL)
    try:
        _, write = session_factories(engine)
        with UnitOfWork(write) as uow:
            pid = uow.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            _terminate(pid)
            with pytest.raises(OutcomeUnknown) as caught:
                uow.commit()
        assert caught.value.status == 503 and "may or may not have been made" in caught.value.message
    finally:
        engine.dispose()


def test_connections_give_up_on_a_silent_server_and_the_url_may_say_otherwise():
    # libpq waits for ever by default: a PostgreSQL host gone from the network held every request
    for url, idle in ((PG_URL, "30"), (f"{PG_URL}{'&' if '?' in PG_URL else '?'}keepalives_idle=5", "5")):
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                parameters = conn.connection.dbapi_connection.info.get_parameters()
        finally:
            engine.dispose()
        assert parameters["connect_timeout"] == "10" and parameters["tcp_user_timeout"] == "30000"
        assert parameters["keepalives_idle"] == idle, parameters
