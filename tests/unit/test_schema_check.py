"""An engine refuses a database whose schema is not the newest: empty, or migrated only
part of the way, it names the schema it found and the command that fixes it.
Storage test: SQLite and PostgreSQL, each on a database of its own."""
from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from engine.config import Settings
from engine.context import Engine
from engine.db import NotMigrated, alembic_config, migrate


def _engine(url):
    return Engine(Settings(database_url=url, admin_password="x", timers_enabled=False))


def test_an_engine_refuses_an_empty_or_older_schema_and_runs_on_the_newest(own_database):
    scripts = ScriptDirectory.from_config(alembic_config(own_database))
    newest = scripts.get_current_head()
    older = scripts.get_revision(newest).down_revision
    with pytest.raises(NotMigrated, match=rf"is not migrated \(schema empty, expected \['{newest}'\]\); "
                                          r"run `python app.py migrate`"):
        _engine(own_database)
    command.upgrade(alembic_config(own_database), older)
    with pytest.raises(NotMigrated, match=rf"\(schema \['{older}'\], expected \['{newest}'\]\)"):
        _engine(own_database)
    assert migrate(own_database) == older
    _engine(own_database).close()
