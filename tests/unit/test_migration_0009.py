"""Migration 0009 both ways: user_task's index on assignee gains `created` (a department's
queue is read a page at a time along it), and a downgrade puts the old one back; the
schema after the upgrade is the models' own.  Storage test: SQLite and PostgreSQL, each on
a database of its own."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.db import alembic_config, migrate
from engine.models import Base


def _indexes(url: str) -> dict:
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            return {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("user_task")}
    finally:
        db.dispose()


def _index_differences(url: str) -> list:
    """What autogenerate would change in user_task's indexes to match the models."""
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        db.dispose()
    return [d for d in diff if d[0] in ("add_index", "remove_index") and d[1].table.name == "user_task"]


def test_the_assignee_index_gains_created_and_loses_it_on_a_downgrade(own_database):
    migrate(own_database)
    found = _indexes(own_database)
    assert found["ix_user_task_assignee_created"] == ["assignee", "created"]
    assert "ix_user_task_assignee" not in found
    assert _index_differences(own_database) == []

    command.downgrade(alembic_config(own_database), "0008")
    found = _indexes(own_database)
    assert found["ix_user_task_assignee"] == ["assignee"]
    assert "ix_user_task_assignee_created" not in found

    migrate(own_database)
    assert _indexes(own_database)["ix_user_task_assignee_created"] == ["assignee", "created"]
