"""An engine refuses a database whose schema is not the newest: empty, or migrated only
part of the way, it names the schema it found and the command that fixes it.
Storage test: SQLite and PostgreSQL, each on a database of its own."""
from __future__ import annotations

import os
import time

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


def _run_app(monkeypatch, capsys, url: str, command: str = "migrate") -> tuple[int, str]:
    import app
    monkeypatch.setenv("DATABASE_URL", url)
    status = app.main([command])
    return status, capsys.readouterr().err


def test_a_database_the_server_cannot_use_is_one_line_not_a_traceback(monkeypatch, capsys, tmp_path):
    status, said = _run_app(monkeypatch, capsys, "postgresql://postgres@127.0.0.1:1/test")
    assert status == 2 and said.startswith("app.py migrate: cannot reach the database at "
                                           "postgresql+psycopg://postgres@127.0.0.1:1/test: "), said
    assert "Traceback" not in said and said.count("\n") == 1
    assert _run_app(monkeypatch, capsys, "mysql://x@db/approvals")[1].endswith(
        "names neither SQLite nor PostgreSQL, the two stores this server runs on\n")
    assert "is not a database URL" in _run_app(monkeypatch, capsys, "approvals.db")[1]
    status, said = _run_app(monkeypatch, capsys, f"sqlite:///{tmp_path / 'new.db'}", "deploy")
    assert status == 2 and "is not migrated (schema empty" in said


def test_a_database_migrated_by_a_newer_version_is_named_as_such(monkeypatch, capsys, own_database):
    migrate(own_database)
    from sqlalchemy import create_engine, text
    db = create_engine(own_database)
    with db.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    db.dispose()
    status, said = _run_app(monkeypatch, capsys, own_database)
    assert status == 2 and "Can't locate revision identified by '0999'" in said and "newer version" in said, said


def test_postgres_urls_as_hosting_platforms_write_them_name_the_shipped_driver():
    from engine.config import database_url
    assert database_url("postgres://u:pw@db/a") == "postgresql+psycopg://u:pw@db/a"
    assert database_url("postgresql://u@db:5432/a") == "postgresql+psycopg://u@db:5432/a"
    assert database_url("postgresql+psycopg://u@db/a") == "postgresql+psycopg://u@db/a"
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_two_servers_starting_at_once_on_a_new_database_both_come_up(own_database):
    """The second crashed with a traceback: alembic_version created twice, then the
    administrator's group.  Two processes (alembic keeps its context per process), each as
    `app.py run` prepares before it serves.  PostgreSQL only: SQLite's file has one writer."""
    if not own_database.startswith("postgresql"):
        pytest.skip("two processes migrate one new database at once only on PostgreSQL here")
    import subprocess
    import sys
    from pathlib import Path

    from sqlalchemy import create_engine, text
    root = Path(__file__).resolve().parents[2]
    prepare = ("import sys, time, app; from engine.config import Settings; from engine.context import Engine\n"
               "time.sleep(max(0, float(sys.argv[1]) - time.time()))\n"
               "settings = Settings.from_env(); app.migrate_database(settings); engine = Engine(settings)\n"
               "app.ensure_admin(engine)\n"
               "app.once_more_on_a_race(lambda: app.deploy_files(engine, app.library_files(settings)))\n"
               "engine.close()\n")
    at = str(time.time() + 3)                       # both begin at the same moment, once imported
    env = {**os.environ, "DATABASE_URL": own_database, "ADMIN_PASSWORD": "x"}
    runs = [subprocess.Popen([sys.executable, "-c", prepare, at], cwd=root, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    db = create_engine(own_database)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM app_user WHERE id = 'admin'")).scalar() == 1
        # each may deploy the library (the second then as an identical newer version), as two
        # Camunda Modeler deploys with duplicate filtering at the same moment may
        assert 1 <= conn.execute(text("SELECT count(*) FROM deployment")).scalar() <= 2
        assert conn.execute(text("SELECT count(DISTINCT key) FROM process_definition")).scalar() >= 5
    db.dispose()
