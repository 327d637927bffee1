"""Migration 0021: deployments carry their order (deployment.seq); the deployments made
before it are numbered in the order of their deployment_time; a downgrade drops the
column, and the schema after the upgrade is the models' own.  config(name) reads the
last deployed file by that order, whatever the deployment times say.
Storage test: SQLite and PostgreSQL, each on a database of its own."""
from __future__ import annotations

import json
from datetime import datetime, timezone

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


def _order(db) -> list:
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT name, seq FROM deployment ORDER BY seq")).all()


def _differences(db) -> list:
    with db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    return [d for d in diff if "deployment" in str(d) and "process_definition" not in str(d)]


def test_the_deployments_made_before_are_numbered_by_time_and_new_ones_follow(own_database):
    migrate(own_database)
    engine = Engine(Settings(database_url=own_database, timers_enabled=False))
    db = sa.create_engine(own_database)
    try:
        for name, value in (("first", 1), ("second", 2)):
            with engine.uow() as uow:
                deploy(uow, [Upload("items.json", json.dumps({"v": value}).encode())], identity.SYSTEM, name=name)
                uow.commit()
        assert [row.name for row in _order(db)] == ["first", "second"]
        with engine.uow(write=False) as uow:
            assert engine.configs.get(uow.session, "items") == {"v": 2}

        command.downgrade(alembic_config(own_database), "0020")
        with db.begin() as conn:         # the second was stamped earlier (a clock set back)
            conn.execute(sa.text("UPDATE deployment SET deployment_time = :t WHERE name = 'second'"),
                         {"t": datetime(2020, 1, 1, tzinfo=timezone.utc).replace(tzinfo=None)})
        migrate(own_database)
        assert [(row.name, row.seq) for row in _order(db)] == [("second", 1), ("first", 2)]
        assert _differences(db) == []
        with engine.uow() as uow:
            deploy(uow, [Upload("items.json", json.dumps({"v": 3}).encode())], identity.SYSTEM, name="third")
            uow.commit()
        assert _order(db)[-1].name == "third" and _order(db)[-1].seq == 3
    finally:
        engine.close()
        db.dispose()
