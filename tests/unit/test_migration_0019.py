"""Migration 0019: the activity history's rows written before it get Camunda 7's names
for their events (`boundaryCamundaError` → `boundaryError`, ...); other rows keep theirs;
a downgrade writes the old names back.  Storage test: SQLite and PostgreSQL, each on a
database of its own."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from engine import identity, instances
from engine.config import Settings
from engine.context import Engine
from engine.db import alembic_config, migrate
from engine.deployments import Upload, deploy
from tests.security.models import application

BEFORE = {"a": "boundaryCamundaError", "b": "startMessageEvent", "c": "startSignalEvent",
          "d": "intermediateSignalThrowEvent", "e": "camundaErrorEndEvent", "f": "userTask",
          "g": "boundaryTimer", "h": "noneEndEvent"}
AFTER = {"a": "boundaryError", "b": "messageStartEvent", "c": "signalStartEvent",
         "d": "intermediateSignalThrow", "e": "errorEndEvent", "f": "userTask",
         "g": "boundaryTimer", "h": "noneEndEvent"}


def _types(db) -> dict:
    with db.connect() as conn:
        return dict(conn.execute(sa.text(f"SELECT id, activity_type FROM activity_instance WHERE id IN "
                                         f"({', '.join(repr(k) for k in BEFORE)})")).all())


def test_the_rows_written_before_get_camundas_activity_types(own_database):
    migrate(own_database)
    engine = Engine(Settings(database_url=own_database, timers_enabled=False))
    db = sa.create_engine(own_database)
    try:
        with engine.uow() as uow:
            deploy(uow, [Upload("application.bpmn", application(starters="").encode())], identity.SYSTEM)
            uow.commit()
        with engine.uow() as uow:
            instances.start(uow, identity.SYSTEM, {}, None, key="application")
        engine.close()
        command.downgrade(alembic_config(own_database), "0018")
        with db.connect() as conn:        # the table as 0018 has it (later revisions add columns)
            columns = [c["name"] for c in sa.inspect(conn).get_columns("activity_instance")
                       if c["name"] not in ("id", "activity_type")]
        with db.begin() as conn:          # rows as the code before 0019 wrote them, copies of the case's first
            source = conn.execute(sa.text("SELECT id FROM activity_instance ORDER BY seq LIMIT 1")).scalar_one()
            for row_id, kind in BEFORE.items():
                conn.execute(sa.text(f"INSERT INTO activity_instance (id, activity_type, {', '.join(columns)}) "
                                     f"SELECT :id, :kind, {', '.join(columns)} FROM activity_instance WHERE id = :source"),
                             {"id": row_id, "kind": kind, "source": source})
            # an event subprocess's row and its waiting start event's, open from the case's start
            for row_id, kind, parent in (("sub", "callActivity", None), ("wait", "startTimerEvent", "sub"),
                                         ("done", "startEvent", None)):
                conn.execute(sa.text(f"INSERT INTO activity_instance (id, activity_type, {', '.join(columns)}) "
                                     f"SELECT :id, :kind, {', '.join(columns)} FROM activity_instance WHERE id = :source"),
                             {"id": row_id, "kind": kind, "source": source})
                conn.execute(sa.text("UPDATE activity_instance SET parent_activity_instance_id = :parent, "
                                     "end_time = CASE WHEN :id = 'done' THEN start_time END WHERE id = :id"),
                             {"id": row_id, "parent": parent})
        migrate(own_database)
        assert _types(db) == AFTER
        with db.connect() as conn:
            left = set(conn.execute(sa.text("SELECT id FROM activity_instance WHERE id IN ('sub', 'wait', 'done')"))
                       .scalars())
        assert left == {"done"}
        command.downgrade(alembic_config(own_database), "0018")
        assert _types(db) == BEFORE
    finally:
        engine.close()
        db.dispose()
