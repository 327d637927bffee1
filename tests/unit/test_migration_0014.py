"""Migration 0014: `message_subscription` tells message from signal catches by
`event_type`; the rows there at the upgrade are the messages'; `python app.py migrate`
crossing it mirrors the signal catches the running cases waited at, once; a downgrade
drops the signal rows and the column, and the schema after the upgrade is the models' own.
Storage test: SQLite and PostgreSQL, each on a database of its own."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app import migrate_database
from engine import identity, signals
from engine.config import Settings
from engine.context import Engine
from engine.db import alembic_config, migrate
from engine.models import Base
from tests.api.test_signals import waiting_for
from tests.unit.test_state_rows import _start


def _message_model(key):
    return waiting_for(key).replace('<bpmn:signalEventDefinition id="SD" signalRef="Sig_PolicyChanged" />',
                                    '<bpmn:messageEventDefinition id="MD" messageRef="M" />').replace(
        '<bpmn:signal id="Sig_PolicyChanged" name="PolicyChanged" />', '<bpmn:message id="M" name="Arrived" />')


def _rows(db) -> set:
    with db.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("message_subscription")}
        kind = "event_type" if "event_type" in columns else "'-'"
        return set(conn.execute(sa.text(f"SELECT instance_id, {kind}, message_name FROM message_subscription")))


def _differences(db) -> list:
    with db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    return [d for d in diff if "message_subscription" in str(d)]


def test_signal_rows_come_and_go_with_the_column_and_message_rows_stay(own_database, monkeypatch):
    migrate(own_database)
    settings = Settings(database_url=own_database, timers_enabled=False)
    engine = Engine(settings)
    db = sa.create_engine(own_database)
    try:
        by_message = _start(engine, _message_model("by_message"), "by_message", {})
        by_signal = _start(engine, waiting_for("by_signal"), "by_signal", {})
        engine.close()
        assert _rows(db) == {(by_message, "message", "Arrived"), (by_signal, "signal", "PolicyChanged")}
        assert _differences(db) == []

        command.downgrade(alembic_config(own_database), "0013")
        assert _rows(db) == {(by_message, "-", "Arrived")}
        assert _differences(db) != []

        migrate_database(settings)
        assert _rows(db) == {(by_message, "message", "Arrived"), (by_signal, "signal", "PolicyChanged")}
        assert _differences(db) == []
        with monkeypatch.context() as patch:     # a migration that crosses nothing reads no case
            patch.setattr(signals, "mirror_waiting_catches", lambda engine: pytest.fail("mirrored again"))
            migrate_database(settings)

        engine = Engine(settings)           # the mirrored case takes a signal and moves on
        signals.throw(engine, identity.SYSTEM, signals.SignalRequest("PolicyChanged"))
        assert _rows(db) == {(by_message, "message", "Arrived")}
        with db.connect() as conn:
            assert conn.execute(sa.text("SELECT task_definition_key FROM user_task WHERE instance_id = :i"),
                                {"i": by_signal}).scalar_one() == "T"
    finally:
        engine.close()
        db.dispose()
