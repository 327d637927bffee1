"""Migration 0022: task_candidate repeats its task's case and the case's start time,
filled for the tasks open at the upgrade from their tasks and cases, with the index the
cases a department takes part in are counted and paged from; a downgrade removes the
columns and the index, and the schema after the upgrade is the models' own.  The count
of an officer's running cases, read from the new index, is the same after the upgrade.
Storage test: SQLite and PostgreSQL, each on a database of its own."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine import history, instances
from engine.config import Settings
from engine.context import Engine
from engine.db import alembic_config, migrate, reading
from engine.identity import Principal
from engine.models import Base
from tests.security.models import one_task
from tests.unit.test_state_rows import _start


def _columns(db) -> set:
    with db.connect() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns("task_candidate")}


def _differences(db) -> list:
    with db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    return [d for d in diff if "task_candidate" in str(d)]


def test_the_case_and_its_start_are_filled_from_the_tasks_and_a_downgrade_removes_them(own_database):
    migrate(own_database)
    engine = Engine(Settings(database_url=own_database, timers_enabled=False))
    db = sa.create_engine(own_database)
    try:
        _start(engine, one_task("queue", 'camunda:candidateGroups="fgw,zjj" camunda:candidateUsers="li"'), "queue", {})
        _start(engine, one_task("given", 'camunda:candidateGroups="fgw" camunda:assignee="wang"'), "given", {})
        engine.close()

        command.downgrade(alembic_config(own_database), "0021")
        assert not {"instance_id", "instance_start_time"} & _columns(db)
        migrate(own_database)
        with db.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT c.instance_id, t.instance_id, c.instance_start_time, p.start_time FROM task_candidate c "
                "JOIN user_task t ON t.id = c.task_id JOIN process_instance p ON p.id = t.instance_id")).all()
            indexes = {i["name"] for i in sa.inspect(conn).get_indexes("task_candidate")}
        assert len(rows) == 4 and all(row[0] == row[1] and row[2] == row[3] for row in rows)
        assert "ix_task_candidate_group_case" in indexes
        assert _differences(db) == []

        engine = Engine(Settings(database_url=own_database, timers_enabled=False))
        with reading(engine.db) as conn:
            def count(principal):
                return history.process_instances(conn, principal, instances.InstanceQuery(), instances.RUNNING,
                                                 count_only=True)
            assert count(Principal("zhang", frozenset({"fgw"}))) == 2
            assert count(Principal("zhao", frozenset({"zjj"}))) == 1
            assert count(Principal("li", frozenset())) == 1
    finally:
        engine.close()
        db.dispose()
