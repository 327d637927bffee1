"""engine/fastsql.py: statements on the driver's cursor store and read values exactly as
SQLAlchemy does, in the session's transaction, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from engine.fastsql import Statement
from engine.models import AuditEvent
from tests.conftest import wipe

EVENTS = AuditEvent.__table__
AT = datetime(2026, 12, 3, 9, 30, 15, 123456)
_INSERT = Statement(insert(EVENTS))
_BY_INSTANCE = Statement(select(EVENTS.c.instance_id, EVENTS.c.seq, EVENTS.c.at, EVENTS.c.payload, EVENTS.c.kind)
                         .where(EVENTS.c.instance_id == bindparam("instance_id")).order_by(EVENTS.c.seq))
_CORE_BY_INSTANCE = _BY_INSTANCE.statement


@pytest.fixture
def db(database_url):
    wipe(database_url)
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


def test_an_insert_fills_python_defaults_and_stores_what_sqlalchemy_reads_back(db):
    with Session(db) as session:
        _INSERT.execute(session, dict(instance_id="i1", at=AT, kind="Started"))        # seq, payload left out
        _INSERT.executemany(session, [dict(instance_id="i1", seq=n, at=AT, kind="Step", payload={"n": n, "名": "值"})
                                      for n in (1, 2)])
        session.commit()
    with Session(db) as session:
        rows = session.execute(_CORE_BY_INSTANCE, {"instance_id": "i1"}).all()
    assert [tuple(r) for r in rows] == [("i1", 0, AT, {}, "Started"), ("i1", 1, AT, {"n": 1, "名": "值"}, "Step"),
                                        ("i1", 2, AT, {"n": 2, "名": "值"}, "Step")]


def test_a_select_reads_what_sqlalchemy_stored_with_the_same_types(db):
    with Session(db) as session:
        session.execute(insert(EVENTS), [dict(instance_id="i2", seq=n, at=AT, kind="K", payload={"list": [1, 2.5]})
                                         for n in (1, 2)])
        session.commit()
    with Session(db) as session:
        fast = _BY_INSTANCE.execute(session, {"instance_id": "i2"}).all()
        core = session.execute(_CORE_BY_INSTANCE, {"instance_id": "i2"}).all()
        assert _BY_INSTANCE.execute(session, {"instance_id": "none"}).first() is None
    assert [tuple(r) for r in fast] == [tuple(r) for r in core]
    assert fast[0].at == AT and isinstance(fast[0].at, datetime) and fast[0].payload == {"list": [1, 2.5]}


def test_numbers_read_back_as_sqlalchemy_reads_them_by_the_drivers_column_types(db):
    """A Float column on PostgreSQL: SQLAlchemy picks its result processor by the type
    the driver reports (none for a double, a conversion for a numeric, an error for
    neither), so fastsql picks it at the first result, not when it compiles."""
    numbers = sa.Table("fastsql_numbers", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                       sa.Column("share", sa.Float), sa.Column("exact", sa.Numeric(10, 2)),
                       sa.Column("ratio", sa.Numeric(10, 2, asdecimal=False)))
    numbers.create(db)
    try:
        read = Statement(select(numbers.c.share, numbers.c.exact, numbers.c.ratio).where(numbers.c.id == bindparam("id")))
        with Session(db) as session:
            Statement(insert(numbers)).execute(session, dict(id=1, share=0.8, exact=Decimal("3.50"), ratio=1.25))
            fast = read.execute(session, {"id": 1}).one()
            core = session.execute(read.statement, {"id": 1}).one()
            session.rollback()
        assert tuple(fast) == tuple(core) == (0.8, Decimal("3.50"), 1.25)
        assert [type(v) for v in fast] == [type(v) for v in core] == [float, Decimal, float]
    finally:
        numbers.drop(db)


def test_updates_count_rows_and_a_delete_returns_them_in_the_sessions_transaction(db):
    with Session(db) as session:
        _INSERT.execute(session, dict(instance_id="i3", seq=1, at=AT, kind="K", payload={}))
        bump = Statement(update(EVENTS).where(EVENTS.c.instance_id == bindparam("row_instance")))
        assert bump.execute(session, {"row_instance": "i3", "kind": "Changed"}).rowcount == 1
        assert bump.execute(session, {"row_instance": "nobody", "kind": "Changed"}).rowcount == 0
        gone = Statement(delete(EVENTS).where(EVENTS.c.instance_id == bindparam("i")).returning(EVENTS.c.kind))
        assert gone.execute(session, {"i": "i3"}).scalar() == "Changed"
        _INSERT.execute(session, dict(instance_id="i4", seq=1, at=AT, kind="K", payload={}))
        session.rollback()                                  # all of it was in the session's transaction
    with Session(db) as session:
        assert session.execute(select(sa.func.count()).select_from(EVENTS)).scalar() == 0


def test_listeners_of_sqlalchemys_cursor_event_see_the_statements(db):
    seen = []
    sa.event.listen(db, "before_cursor_execute", lambda conn, cur, sql, params, ctx, many: seen.append((sql, many)))
    with Session(db) as session:
        _BY_INSTANCE.execute(session, {"instance_id": "x"})
        _INSERT.executemany(session, [dict(instance_id="x", seq=n, at=AT, kind="K", payload={}) for n in (1, 2)])
    assert any("FROM audit_event" in sql and not many for sql, many in seen)
    assert any(sql.startswith("INSERT INTO audit_event") and many for sql, many in seen)


def test_executemany_of_one_row_runs_it_as_one_execute(db):
    seen = []
    sa.event.listen(db, "before_cursor_execute", lambda conn, cur, sql, params, ctx, many: seen.append((many, params)))
    with Session(db) as session:
        _INSERT.executemany(session, [dict(instance_id="one", seq=1, at=AT, kind="K", payload={"a": 1})])
        rows = _BY_INSTANCE.execute(session, {"instance_id": "one"}).all()
    assert [many for many, _ in seen[:1]] == [False]          # one statement, not the driver's executemany
    assert [(r.seq, r.kind, r.payload) for r in rows] == [(1, "K", {"a": 1})]


def test_statements_it_cannot_run_faithfully_are_refused_when_compiled(db):
    with Session(db) as session:
        with pytest.raises(ValueError, match="expanding IN"):
            Statement(select(EVENTS.c.id).where(EVENTS.c.kind.in_(bindparam("kinds", expanding=True)))) \
                .execute(session, {"kinds": ["a"]})
        with pytest.raises(ValueError, match="distinct column names"):
            Statement(select(EVENTS.c.id, EVENTS.alias().c.id)).execute(session)


def test_a_statement_of_each_dialect_runs_the_one_for_its_database(db):
    """{dialect name: statement}: each database gets its own construct (an upsert here),
    and one without an entry is refused by name."""
    from sqlalchemy.dialects import postgresql, sqlite

    def upsert(module):
        statement = module.insert(EVENTS)
        return statement.on_conflict_do_update(index_elements=[EVENTS.c.id], set_={"kind": statement.excluded.kind})

    put = Statement({"postgresql": upsert(postgresql), "sqlite": upsert(sqlite)})
    with Session(db) as session:
        put.executemany(session, [dict(id=n, instance_id="u", seq=n, at=AT, kind="first", payload={}) for n in (1, 2)])
        put.executemany(session, [dict(id=n, instance_id="u", seq=n, at=AT, kind=f"then {n}", payload={})
                                  for n in (2, 3)])
        assert [(r.seq, r.kind) for r in _BY_INSTANCE.execute(session, {"instance_id": "u"})] == [
            (1, "first"), (2, "then 2"), (3, "then 3")]
        marked = Statement({name: insert(EVENTS).values(kind=f"by the {name} statement")
                            for name in ("postgresql", "sqlite")})
        marked.execute(session, dict(id=9, instance_id="u", seq=9, at=AT, payload={}))
        assert _BY_INSTANCE.execute(session, {"instance_id": "u"}).all()[-1].kind == f"by the {db.dialect.name} statement"
        with pytest.raises(ValueError, match=f"no statement for {db.dialect.name}, only for \\['mysql'\\]"):
            Statement({"mysql": insert(EVENTS)}).execute(session, dict(instance_id="u", at=AT, kind="K"))


def test_values_written_into_the_statement_are_bound_as_sqlalchemy_binds_them(db):
    with Session(db) as session:
        _INSERT.executemany(session, [dict(instance_id="i5", seq=n, at=AT, kind=k, payload={})
                                      for n, k in ((1, "Started"), (2, "Ended"))])
        started = Statement(select(EVENTS.c.seq, EVENTS.c.at.label("when"))
                            .where(EVENTS.c.instance_id == bindparam("i"), EVENTS.c.kind == "Started",
                                   EVENTS.c.at == AT))
        assert [tuple(r) for r in started.execute(session, {"i": "i5"})] == [(1, AT)]
        mark = Statement(update(EVENTS).where(EVENTS.c.seq == bindparam("n")).values(kind="Marked", payload={"a": 1}))
        assert mark.execute(session, {"n": 2}).rowcount == 1
        assert session.execute(select(EVENTS.c.payload).where(EVENTS.c.kind == "Marked")).scalar() == {"a": 1}


def test_a_driver_error_is_the_error_sqlalchemy_raises(db):
    with Session(db) as session:
        _INSERT.execute(session, dict(id=7, instance_id="i6", seq=1, at=AT, kind="K", payload={}))
        with pytest.raises(sa.exc.IntegrityError, match="audit_event"):
            _INSERT.execute(session, dict(id=7, instance_id="i6", seq=2, at=AT, kind="K", payload={}))


def test_on_a_bare_connection_nothing_is_left_open_when_it_goes_back_to_the_pool(db):
    with db.connect() as conn:                   # as authentication reads the credentials
        assert _BY_INSTANCE.execute(conn, {"instance_id": "x"}).all() == []
    raw = db.raw_connection()                     # the same pooled connection (pool of one in use)
    try:
        driver = raw.driver_connection
        if db.dialect.name == "postgresql":
            import psycopg
            assert driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        else:
            assert not driver.in_transaction
    finally:
        raw.close()


def test_errors_that_are_not_the_drivers_pass_unchanged_as_through_core(db):
    with Session(db) as session:
        too_big = dict(instance_id="i7", seq=2 ** 70, at=AT, kind="K", payload={})
        expected = OverflowError if db.dialect.name == "sqlite" else sa.exc.DataError   # as session.execute
        with pytest.raises(expected):
            session.execute(insert(EVENTS), too_big)
        session.rollback()
        with pytest.raises(expected):
            _INSERT.execute(session, too_big)


def test_a_session_whose_flush_failed_refuses_further_statements(db):
    from engine.models import Group
    with Session(db) as session:
        _BY_INSTANCE.execute(session, {"instance_id": "i8"})      # the session's connection is in use
        session.add_all([Group(id="g1", name="a"), Group(id="g1", name="b")])
        with pytest.raises(sa.exc.IntegrityError):
            session.flush()
        with pytest.raises(sa.exc.PendingRollbackError):
            _INSERT.execute(session, dict(instance_id="i8", seq=1, at=AT, kind="K", payload={}))
        session.rollback()
    with Session(db) as session:                  # nothing was written behind the failed transaction
        assert session.execute(select(sa.func.count()).select_from(EVENTS)).scalar() == 0


def test_a_locked_sqlite_database_at_begin_is_sqlalchemys_operational_error(tmp_path):
    import sqlite3

    from engine.db import make_engine, migrate
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    migrate(url)
    engine = make_engine(url)
    engine.connect().close()                          # the pragmas (WAL) are set before the lock is held
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")                 # another program holds SQLite's write lock
    try:
        conn = engine.execution_options(write=True).connect()
        conn.connection.dbapi_connection.execute("PRAGMA busy_timeout=50")
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            conn.begin()
        conn.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()
