"""Migration 0008: PostgreSQL stores state_json with lz4, a case stored before under pglz
reads back and is rewritten with lz4, and the downgrade returns the column to the
server's default.  SQLite has no such setting and is left alone.  Storage test: SQLite
and PostgreSQL, each on a database of its own."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from engine.config import Settings
from engine.context import Engine
from engine.db import alembic_config, migrate
from tests.unit.test_state_rows import BRANCHES, _complete, _start

NOTE = {"note": "审批意见：材料齐全，符合法定条件。" * 800}        # a document well over PostgreSQL's 2 KB


def _compression(db, instance_id: str) -> tuple[str, str]:
    """The column's own setting ('' = the server's default) and the method of the stored value."""
    with db.connect() as conn:
        setting = conn.execute(sa.text(
            "SELECT attcompression FROM pg_attribute "
            "WHERE attrelid = 'process_instance'::regclass AND attname = 'state_json'")).scalar_one()
        stored = conn.execute(sa.text("SELECT pg_column_compression(state_json) FROM process_instance "
                                      "WHERE id = :i"), {"i": instance_id}).scalar_one()
    return setting, stored


def _state(engine, instance_id: str) -> str:
    with engine.uow(write=False) as uow:
        return uow.session.execute(sa.text("SELECT state FROM process_instance WHERE id = :i"),
                                   {"i": instance_id}).scalar_one()


def _alter(db, method: str) -> None:
    with db.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE process_instance ALTER COLUMN state_json SET COMPRESSION {method}"))


def test_a_case_stored_under_pglz_is_read_and_rewritten_with_lz4(own_database):
    migrate(own_database)
    db = sa.create_engine(own_database)
    engine = Engine(Settings(database_url=own_database))
    try:
        if db.dialect.name != "postgresql":
            instance_id = _start(engine, BRANCHES, "rows_branches", NOTE)
            _complete(engine, instance_id, "A", {"x": 1})
            _complete(engine, instance_id, "B")
            assert _state(engine, instance_id) == "COMPLETED"
            return
        with db.connect() as conn:
            if "lz4" not in conn.execute(sa.text(
                    "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")).scalar():
                pytest.skip("this PostgreSQL is built without lz4: the migration leaves the column as it is")
        _alter(db, "pglz")                                       # as a server before 0008 stored it
        instance_id = _start(engine, BRANCHES, "rows_branches", NOTE)
        assert _compression(db, instance_id) == ("p", "pglz")

        command.downgrade(alembic_config(own_database), "0007")
        assert _compression(db, instance_id) == ("", "pglz")     # the server's default again
        migrate(own_database)
        assert _compression(db, instance_id) == ("l", "pglz")    # the stored value is not rewritten

        engine.close()
        engine = Engine(Settings(database_url=own_database))    # nothing cached: the case is read back
        _complete(engine, instance_id, "A", {"x": 1})
        assert _compression(db, instance_id) == ("l", "lz4")     # the command rewrote it
        engine.close()
        engine = Engine(Settings(database_url=own_database))
        _complete(engine, instance_id, "B")
        assert _state(engine, instance_id) == "COMPLETED"
    finally:
        engine.close()
        db.dispose()
