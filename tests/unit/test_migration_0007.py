"""Migration 0007 (instance_task) both ways: a case whose tasks are rows comes back whole
into state_json on a downgrade, and the engine goes on with it after the upgrade.
Storage test: SQLite and PostgreSQL, each on a database of its own."""
from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import command

from engine import workflows
from engine.config import Settings
from engine.context import Engine
from engine.db import alembic_config, migrate
from engine.workflows import dump_state
from tests.unit.test_state_rows import BRANCHES, _complete, _peek, _start, _stored


def test_a_case_in_rows_survives_a_downgrade_and_the_upgrade_after(own_database, monkeypatch):
    monkeypatch.setattr(workflows, "ROWS_FROM", 0)
    migrate(own_database)
    config = Settings(database_url=own_database)
    engine = Engine(config)
    instance_id = _start(engine, BRANCHES, "rows_branches", {})
    before = dump_state(_peek(engine, instance_id))
    document, rows = _stored(engine, instance_id)
    assert document["tasks"] == {} and rows                # the case is in rows
    engine.close()

    command.downgrade(alembic_config(own_database), "0006")
    db = sa.create_engine(own_database)
    with db.connect() as conn:
        assert "instance_task" not in sa.inspect(conn).get_table_names()
        whole = conn.execute(sa.text("SELECT state_json FROM process_instance WHERE id = :i"),
                             {"i": instance_id}).scalar_one()
    db.dispose()
    assert json.loads(whole) == json.loads(before)        # the tasks are back in the document

    migrate(own_database)
    engine = Engine(config)
    try:
        assert dump_state(_peek(engine, instance_id)) == before
        _complete(engine, instance_id, "A", {"x": 1})
        _complete(engine, instance_id, "B")
        with engine.uow(write=False) as uow:
            state = uow.session.execute(sa.text("SELECT state FROM process_instance WHERE id = :i"),
                                        {"i": instance_id}).scalar_one()
        assert state == "COMPLETED"
    finally:
        engine.close()
