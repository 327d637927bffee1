"""Migration 0020: user_task keeps a delegation state and an index on its owner; a user
task's row of activity_instance keeps the task's fields (GET /history/task).  The rows
of tasks open at the upgrade are filled from their tasks; those of tasks ended before
get their diagram name and `completed` or `deleted`; a downgrade removes the columns and
indexes and leaves user_task's other indexes as they were; the schema after the upgrade
is the models' own.  Storage test: SQLite and PostgreSQL, each on a database of its own."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine import identity, instances
from engine.config import Settings
from engine.context import Engine
from engine.db import alembic_config, migrate
from engine.models import Base
from tests.security.models import one_task, two_tasks
from tests.unit.test_index_migrations import _indexes
from tests.unit.test_state_rows import _complete, _start

HISTORY = "task_name, description, owner, priority, due, follow_up, delete_reason, assignee"


def _rows(db) -> dict:
    """{(process, activity id): the row's task fields} of the user tasks' rows; None: no such columns."""
    with db.connect() as conn:
        if "task_name" not in {c["name"] for c in sa.inspect(conn).get_columns("activity_instance")}:
            return None
        rows = conn.execute(sa.text(f"SELECT definition_key, activity_id, {HISTORY} FROM activity_instance "
                                    "WHERE task_id IS NOT NULL")).all()
    return {(row[0], row[1]): tuple(row[2:]) for row in rows}


def _differences(db) -> list:
    with db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    return [d for d in diff if "activity_instance" in str(d) or "user_task" in str(d)]


def test_the_history_rows_are_filled_from_the_tasks_and_a_downgrade_removes_the_columns(own_database):
    migrate(own_database)
    engine = Engine(Settings(database_url=own_database, timers_enabled=False))
    db = sa.create_engine(own_database)
    try:
        running = _start(engine, two_tasks("running").replace('name="复核"', 'name="复核" camunda:priority="80"'),
                         "running", {})
        _complete(engine, running, "T")
        deleted = _start(engine, one_task("deleted"), "deleted", {})
        with engine.uow() as uow:
            instances.delete(uow, identity.SYSTEM, deleted, "撤回")
        engine.close()
        written = _rows(db)
        assert written[("running", "T2")] == ("复核", None, None, 80, None, None, None, None)
        assert written[("running", "T")] == ("审查", None, None, 50, None, None, "completed", "system")
        assert written[("deleted", "T")] == ("审查", None, None, 50, None, None, "撤回", None)

        command.downgrade(alembic_config(own_database), "0019")
        assert _rows(db) is None
        assert {"ix_user_task_owner", "ix_user_task_delegated"}.isdisjoint(_indexes(own_database))
        assert "assignee is null" in str(_indexes(own_database, partial=True)["ix_user_task_queue_due"]).lower()
        with db.begin() as conn:               # claimed while the columns were not there, as 0019's code left it
            conn.execute(sa.text("UPDATE user_task SET assignee = 'li' WHERE task_definition_key = 'T2'"))
            conn.execute(sa.text("UPDATE activity_instance SET assignee = NULL WHERE end_time IS NULL"))

        migrate(own_database)
        upgraded = _rows(db)
        assert upgraded[("running", "T2")] == ("复核", None, None, 80, None, None, None, "li")
        # of a task ended before, its diagram's name and how it ended (not the case's reason, never kept)
        assert upgraded[("running", "T")] == ("审查", None, None, None, None, None, "completed", "system")
        assert upgraded[("deleted", "T")] == ("审查", None, None, None, None, None, "deleted", None)
        assert _indexes(own_database)["ix_user_task_owner"] == ["owner"]
        partial = _indexes(own_database, partial=True)
        assert "delegation_state is not null" in str(partial["ix_user_task_delegated"]).lower()
        assert "task_id is not null" in str(
            _indexes(own_database, partial=True, table="activity_instance")["ix_activity_instance_task_end"]).lower()
        assert _differences(db) == []
    finally:
        engine.close()
        db.dispose()
