"""The migrations that replace an index, both ways: 0009 gives user_task's index on
assignee `created` (a department's queue is read a page at a time along it), 0010
replaces the index on `due` with one of the unassigned tasks on (due, id) (a queue by due
date), 0017 process_instance's index on start_time with one on (start_time, id) (the
lists of cases in their order); a downgrade puts the old index back, and the schema
after the upgrade is the models' own.
Storage test: SQLite and PostgreSQL, each on a database of its own."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.db import alembic_config, migrate
from engine.models import Base


def _indexes(url: str, partial: bool = False, table: str = "user_task") -> dict:
    """{name: columns} of `table`'s indexes; with `partial`, {name: the WHERE of a partial index}."""
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            found = sa.inspect(conn).get_indexes(table)
    finally:
        db.dispose()
    if partial:
        return {i["name"]: where for i in found for key, where in i.get("dialect_options", {}).items()
                if key.endswith("_where")}
    return {i["name"]: i["column_names"] for i in found}


def _index_differences(url: str, table: str = "user_task") -> list:
    """What autogenerate would change in `table`'s indexes to match the models."""
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        db.dispose()
    return [d for d in diff if d[0] in ("add_index", "remove_index") and d[1].table.name == table]


@pytest.mark.parametrize("revision, table, new, columns, old, old_columns, where", [
    ("0009", "user_task", "ix_user_task_assignee_created", ["assignee", "created"], "ix_user_task_assignee",
     ["assignee"], None),
    ("0010", "user_task", "ix_user_task_queue_due", ["due", "id"], "ix_user_task_due", ["due"], "assignee is null"),
    ("0017", "process_instance", "ix_process_instance_start_time_id", ["start_time", "id"],
     "ix_process_instance_start_time", ["start_time"], None),
], ids=["0009 assignee+created", "0010 unassigned by due", "0017 cases by start time and id"])
def test_a_migration_replaces_its_index_and_a_downgrade_puts_the_old_one_back(own_database, revision, table, new,
                                                                              columns, old, old_columns, where):
    migrate(own_database)
    found = _indexes(own_database, table=table)
    assert found[new] == columns and old not in found
    if where:                                          # a partial index: which rows it holds
        assert where in str(_indexes(own_database, partial=True, table=table)[new]).lower()
    assert _index_differences(own_database, table) == []

    command.downgrade(alembic_config(own_database), f"{int(revision) - 1:04d}")
    found = _indexes(own_database, table=table)
    assert found[old] == old_columns and new not in found

    migrate(own_database)
    assert _indexes(own_database, table=table)[new] == columns
