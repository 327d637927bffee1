"""The timer scheduler across restarts and across server processes."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from engine import scheduler
from engine.clock import clock
from engine.models import AuditEvent, LegalEvent, Timer
from tests.api.test_legal_clock import TACIT, eventually, state
from tests.conftest import Client, typed


@pytest.fixture
def settings(settings):
    settings.test_clock = True
    settings.timers_enabled = False          # the tests start schedulers themselves
    return settings


def fired_count(engine) -> int:
    with engine.uow(write=False) as uow:
        return uow.session.execute(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.kind == "TimerFired")).scalar()


def start_silent_review(client: Client) -> str:
    assert client.deploy(TACIT).status_code == 200
    return client.start("tacit_review", typed(limit="3wd"))["id"]


def test_a_timer_that_fell_due_while_the_server_was_down_fires_at_start_up(client, engine):
    client.put("/api/v1/test/clock", json={"now": "2025-09-26T10:00:00+08:00"})
    instance = start_silent_review(client)
    # the server is "down" (no scheduler) while the deadline passes
    client.put("/api/v1/test/clock", json={"now": "2025-10-02T10:00:00+08:00"})
    assert state(client, instance) == "ACTIVE"
    restarted = scheduler.TimerScheduler(engine)
    restarted.start()
    try:
        assert eventually(lambda: state(client, instance) == "COMPLETED")
    finally:
        restarted.stop()


def test_two_server_processes_fire_each_timer_once(client, engine, settings, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("several server processes share a database only on PostgreSQL")
    from engine.context import Engine
    client.put("/api/v1/test/clock", json={"now": "2025-09-26T10:00:00+08:00"})
    instances = [start_silent_review(client) for _ in range(20)]
    client.put("/api/v1/test/clock", json={"now": "2025-10-02T10:00:00+08:00"})
    second = Engine(settings)                 # its own connection pool, as another process has
    try:
        barrier = threading.Barrier(4)
        counts, errors = [], []

        def serve(eng):
            barrier.wait()
            try:
                while True:      # as the scheduler does: again while something was due
                    fired = scheduler.fire_due(eng)
                    counts.append(fired)
                    if not fired:
                        return
            except Exception as err:      # noqa: BLE001 - reported below
                errors.append(repr(err))
        threads = [threading.Thread(target=serve, args=(e,)) for e in (engine, second, engine, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        second.close()
    assert errors == []
    # each case's due timers (warning and tacit approval) fire in one command, by exactly one
    # of the four; a case never fires twice
    assert sum(counts) == 20, counts
    assert fired_count(engine) == 20
    assert all(state(client, i) == "COMPLETED" for i in instances)
    with engine.uow(write=False) as uow:
        kinds = dict(uow.session.execute(select(LegalEvent.kind, func.count()).group_by(LegalEvent.kind)).all())
    assert kinds == {"tacit_approval": 20, "yellow": 20}
    with engine.uow(write=False) as uow:
        assert uow.session.execute(select(func.count()).select_from(Timer)).scalar() == 0
