"""Migration 0013: the cases that ended before it lose their runtime state (the document
and its task rows), as the engine now drops it with the command that ends a case; the
running cases keep theirs and go on; a downgrade leaves the schema as 0012 had it.
Storage test: SQLite and PostgreSQL, each on a database of its own."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from engine import identity, instances
from engine.config import Settings
from engine.context import Engine
from engine.db import alembic_config, migrate
from tests.unit.test_state_rows import BRANCHES, _complete, _start


def _kept(db) -> tuple[dict, set]:
    with db.connect() as conn:
        documents = dict(conn.execute(sa.text("SELECT id, state_json FROM process_instance")).all())
        rows = {i for (i,) in conn.execute(sa.text("SELECT DISTINCT instance_id FROM instance_task"))}
    return documents, rows


def test_the_cases_ended_before_lose_their_runtime_state_and_the_running_go_on(own_database, monkeypatch):
    from engine import workflows
    monkeypatch.setattr(workflows, "ROWS_FROM", 0)      # every case in rows, as a big case is
    migrate(own_database)
    engine = Engine(Settings(database_url=own_database, timers_enabled=False))
    db = sa.create_engine(own_database)
    try:
        ended, terminated, running, suspended = (_start(engine, BRANCHES, "rows_branches", {"x": 1})
                                                 for _ in range(4))
        for case in (ended, terminated, running, suspended):
            _complete(engine, case, "A")
        with db.connect() as conn:                       # what 0012's engine left of the cases it ended
            left = {i: (conn.execute(sa.text("SELECT state_json FROM process_instance WHERE id = :i"),
                                     {"i": i}).scalar_one(),
                        conn.execute(sa.text("SELECT task_id, workflow_id, seq, body FROM instance_task "
                                             "WHERE instance_id = :i"), {"i": i}).all()) for i in (ended, terminated)}
        _complete(engine, ended, "B")
        with engine.uow() as uow:
            instances.delete(uow, identity.SYSTEM, terminated, "withdrawn")
        engine.close()

        command.downgrade(alembic_config(own_database), "0012")
        with db.begin() as conn:
            for i, (document, rows) in left.items():
                conn.execute(sa.text("UPDATE process_instance SET state_json = :s WHERE id = :i"),
                             {"s": document, "i": i})
                conn.execute(sa.text("INSERT INTO instance_task (instance_id, task_id, workflow_id, seq, body) "
                                     "VALUES (:i, :t, :w, :s, :b)"),
                             [{"i": i, "t": t, "w": w, "s": s, "b": b} for t, w, s, b in rows])
            # a suspended case is running: it keeps its state
            conn.execute(sa.text("UPDATE process_instance SET state = 'SUSPENDED' WHERE id = :i"), {"i": suspended})
        before = _kept(db)
        assert None not in before[0].values() and before[1] == {ended, terminated, running, suspended}

        migrate(own_database)
        documents, rows = _kept(db)
        assert documents[ended] is None and documents[terminated] is None and rows == {running, suspended}
        assert documents[running] == before[0][running] and documents[suspended] == before[0][suspended]
        engine = Engine(Settings(database_url=own_database, timers_enabled=False, workflow_cache_size=0))
        _complete(engine, running, "B")                   # restored from what it kept
        assert _kept(db)[0][running] is None and _kept(db)[1] == {suspended}
    finally:
        engine.close()
        db.dispose()
