"""Migration 0011: task_candidate repeats whether its task is unassigned, filled for the
tasks open at the upgrade from their assignee, with the index a group's queue is counted
from, and a task's second row of the same group is dropped; a downgrade removes the
column and the index, and the schema after the upgrade is the models' own.
Storage test: SQLite and PostgreSQL, each on a database of its own."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine import identity, tasks
from engine.config import Settings
from engine.context import Engine
from engine.db import alembic_config, migrate
from engine.models import Base
from tests.security.models import one_task
from tests.unit.test_state_rows import _start


def _candidates(db) -> dict:
    """{task's assignee or None: [unassigned flags of its candidate rows]}; None: no such column."""
    with db.connect() as conn:
        if "unassigned" not in {c["name"] for c in sa.inspect(conn).get_columns("task_candidate")}:
            return None
        rows = conn.execute(sa.text("SELECT t.assignee, c.unassigned FROM task_candidate c "
                                    "JOIN user_task t ON t.id = c.task_id ORDER BY t.assignee")).all()
    found = {}
    for assignee, unassigned in rows:
        found.setdefault(assignee, []).append(bool(unassigned))
    return found


def _differences(db) -> list:
    with db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    return [d for d in diff if "task_candidate" in str(d)]


def test_the_flags_are_filled_from_the_tasks_and_a_downgrade_removes_them(own_database):
    migrate(own_database)
    engine = Engine(Settings(database_url=own_database, timers_enabled=False))
    db = sa.create_engine(own_database)
    try:
        _start(engine, one_task("queue", 'camunda:candidateGroups="fgw,zjj"'), "queue", {})
        _start(engine, one_task("waits", 'camunda:candidateGroups="fgw,zjj"'), "waits", {})
        _start(engine, one_task("given", 'camunda:candidateGroups="fgw" camunda:assignee="wang"'), "given", {})
        with engine.uow(write=False) as uow:
            [queued] = tasks.query(uow.session, identity.SYSTEM, tasks.TaskQuery(process_definition_key="queue"))
        engine.close()

        command.downgrade(alembic_config(own_database), "0010")
        assert _candidates(db) is None
        with db.begin() as conn:                            # claimed while the column was not there
            conn.execute(sa.text("UPDATE user_task SET assignee = 'li' WHERE id = :id"), {"id": queued.row.id})
            # a group named twice by the model, as stored before 0011
            conn.execute(sa.text("INSERT INTO task_candidate (task_id, group_id) VALUES (:id, 'fgw')"),
                         {"id": queued.row.id})
        migrate(own_database)
        assert _candidates(db) == {None: [True, True], "li": [False, False], "wang": [False]}
        assert _differences(db) == []
        with db.connect() as conn:
            assert {"ix_task_candidate_queue"} <= {i["name"] for i in sa.inspect(conn).get_indexes("task_candidate")}
    finally:
        engine.close()
        db.dispose()
