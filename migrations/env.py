"""Alembic environment: the URL comes from the caller's config (see engine/db.py)."""
from alembic import context
from sqlalchemy import engine_from_config, pool, text

from engine.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        # render_as_batch: SQLite alters tables by copy-and-rename
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # two servers started at once on a new database: the second waits here until the
                # first has committed, then finds the schema new (it failed creating alembic_version)
                connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('approvals migrate ' || "
                                        "current_schema()))"))
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
