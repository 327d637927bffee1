"""Migration 0018: process_definition keeps camunda:historyTimeToLive in days; the
definitions deployed before it have theirs read from their deployed XML (`180`, `P30D`;
none: null); a downgrade drops the column, and the schema after the upgrade is the
models' own.  Storage test: SQLite and PostgreSQL, each on a database of its own."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine import identity
from engine.config import Settings
from engine.context import Engine
from engine.db import alembic_config, migrate
from engine.deployments import Upload, deploy
from engine.models import Base

PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="D" targetNamespace="t">
  <bpmn:process id="{key}" isExecutable="true" {ttl}>
    <bpmn:startEvent id="S"><bpmn:outgoing>F</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="F" sourceRef="S" targetRef="E" />
    <bpmn:endEvent id="E"><bpmn:incoming>F</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""
TTLS = {"days": 'camunda:historyTimeToLive="180"', "iso": 'camunda:historyTimeToLive="P30D"', "none": ""}


def _kept(db) -> dict:
    with db.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("process_definition")}
        if "history_time_to_live" not in columns:
            return {}
        return dict(conn.execute(sa.text("SELECT key, history_time_to_live FROM process_definition")).all())


def _differences(db) -> list:
    with db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    return [d for d in diff if "process_definition" in str(d)]


def test_the_definitions_deployed_before_get_their_history_time_to_live_from_their_xml(own_database):
    migrate(own_database)
    engine = Engine(Settings(database_url=own_database, timers_enabled=False))
    db = sa.create_engine(own_database)
    try:
        with engine.uow() as uow:
            deploy(uow, [Upload(f"{key}.bpmn", PROCESS.format(key=key, ttl=ttl).encode()) for key, ttl in TTLS.items()],
                   identity.SYSTEM)
            uow.commit()
        engine.close()
        assert _kept(db) == {"days": 180, "iso": 30, "none": None}
        assert _differences(db) == []

        command.downgrade(alembic_config(own_database), "0017")
        assert _kept(db) == {}

        migrate(own_database)
        assert _kept(db) == {"days": 180, "iso": 30, "none": None}
        assert _differences(db) == []
    finally:
        engine.close()
        db.dispose()
