"""The migrations of user_task's indexes, both ways: 0009 gives the index on assignee
`created` (a department's queue is read a page at a time along it), 0010 replaces the
index on `due` with one of the unassigned tasks on (due, id) (a queue by due date); a
downgrade puts the old index back, and the schema after the upgrade is the models' own.
Storage test: SQLite and PostgreSQL, each on a database of its own."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.db import alembic_config, migrate
from engine.models import Base


def _indexes(url: str, partial: bool = False) -> dict:
    """{name: columns} of user_task's indexes; with `partial`, {name: the WHERE of a partial index}."""
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            found = sa.inspect(conn).get_indexes("user_task")
    finally:
        db.dispose()
    if partial:
        return {i["name"]: where for i in found for key, where in i.get("dialect_options", {}).items()
                if key.endswith("_where")}
    return {i["name"]: i["column_names"] for i in found}


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


def test_the_due_index_holds_the_unassigned_tasks_by_due_date_and_id_and_comes_back_on_a_downgrade(own_database):
    migrate(own_database)
    found = _indexes(own_database)
    assert found["ix_user_task_queue_due"] == ["due", "id"]
    assert "ix_user_task_due" not in found
    assert "assignee is null" in str(_indexes(own_database, partial=True)["ix_user_task_queue_due"]).lower()
    assert _index_differences(own_database) == []

    command.downgrade(alembic_config(own_database), "0009")
    found = _indexes(own_database)
    assert found["ix_user_task_due"] == ["due"]
    assert "ix_user_task_queue_due" not in found

    migrate(own_database)
    assert _indexes(own_database)["ix_user_task_queue_due"] == ["due", "id"]
