"""Database access: the SQLAlchemy engine, migrations, and the unit of work.

One engine command is one unit of work is one transaction (Cosmic Python's UoW):
everything it writes commits together or not at all.
"""
from __future__ import annotations

import fcntl
import functools
import os
import select
import sqlite3
import threading
import time
import uuid
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from .config import ROOT
from .errors import EngineError, OutcomeUnknown

MIGRATIONS_DIR = ROOT / "migrations"


class NotMigrated(EngineError):
    status = 500
    type = "ProcessEngineException"


def ensure_sqlite_folder(url: str) -> None:
    """A SQLite file's folder (`instance/` by default) is created on first use."""
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


# The pool hands out the connection returned last (LIFO), not the one idle longest: the
# connections in use stay few and keep their prepared statements (psycopg prepares a
# statement on a connection at its fifth use; SQLite's module caches them per connection).
# Handed out in turn, three pooled connections (the timer scheduler's thread opens one
# beside a request's now and then) shared eight requests' statements and none had one
# prepared after them; handed out last-in first, the one in use had two
# (tests/api/test_read_transactions.py failed now and then on this).
_POOL = dict(pool_size=20, max_overflow=20, pool_use_lifo=True)


def make_engine(url: str) -> Engine:
    ensure_sqlite_folder(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **_POOL)
        writers = _WRITERS[engine] = WriterQueue(_sqlite_path(url))
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", lambda conn: _sqlite_begin(conn, writers))
        event.listen(engine, "checkin", _sqlite_checkin)
        return engine
    engine = create_engine(url, connect_args=_postgresql_timeouts(url), **_POOL)
    event.listen(engine, "checkout", _postgresql_checkout)
    return engine


# libpq's defaults wait for ever: a PostgreSQL host that drops off the network (no reset,
# no answer) held every request for minutes.  These give up on connecting after 10 s and on
# a connection whose sent data goes unacknowledged, or whose idle peer stops answering
# keepalives, after about 30 s, so the request gets the database's 503 instead.  A
# parameter of the same name in DATABASE_URL's query wins.  A peer that acknowledges and
# never answers (a proxy holding the connection) is not detected: PostgreSQL's own
# statement_timeout cannot help there, as the statement never reaches it.
POSTGRESQL_TIMEOUTS = dict(connect_timeout=10, keepalives=1, keepalives_idle=30, keepalives_interval=10,
                           keepalives_count=3, tcp_user_timeout=30000)


def _postgresql_timeouts(url: str) -> dict:
    from sqlalchemy.engine import make_url
    given = make_url(url).query
    return {name: value for name, value in POSTGRESQL_TIMEOUTS.items() if name not in given}


def _postgresql_checkout(dbapi_conn, _record, _proxy) -> None:
    """Refuse a pooled connection PostgreSQL has closed (a restart, pg_terminate_backend):
    an idle connection has nothing to read unless the server said goodbye or hung up.
    A poll of its socket costs a system call; SQLAlchemy's pool_pre_ping costs a round
    trip on every checkout, two per HTTP request (the authentication's and the
    command's).  The pool then opens a fresh connection (DisconnectionError).  poll, not
    select: a busy server's sockets can be numbered past select's limit of 1024.

    A connection handed out is never in autocommit: `reading` switches it back, but an
    interrupt at the wrong moment (KeyboardInterrupt, SystemExit) could return it to the
    pool as it was, and a unit of work on it would commit statement by statement."""
    if dbapi_conn.closed:
        raise DisconnectionError("the connection was closed while it was in the pool")
    poller = select.poll()
    poller.register(dbapi_conn.fileno(), select.POLLIN)
    if poller.poll(0):                    # something to read, or POLLHUP / POLLERR / POLLNVAL
        raise DisconnectionError("PostgreSQL closed the connection while it was in the pool")
    if dbapi_conn.autocommit:
        try:
            dbapi_conn.autocommit = False
        except dbapi_conn.Error as err:        # psycopg refuses inside a transaction: a fresh connection
            raise DisconnectionError(f"a connection left in autocommit could not leave it: {err}") from err


def postgresql_problem(url: str) -> str | None:
    """Why the PostgreSQL server at `url` cannot be used, in one line, or None if it
    answers (the test suite's and the benches' probe)."""
    try:
        probe = create_engine(url, connect_args={"connect_timeout": 3})
        with probe.connect() as conn:
            conn.execute(text("select 1"))
        probe.dispose()
        return None
    except Exception as err:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(err).__name__}: {str(err).splitlines()[0]}"


@contextmanager
def scratch_schema(url: str, prefix: str) -> Iterator[str]:
    """A URL of the PostgreSQL database at `url` that works in a new, empty schema,
    dropped afterwards (the test suite's and the benches' throw-away databases)."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _sqlite_path(url: str) -> Path | None:
    path = url.split("sqlite:///", 1)[-1] if "sqlite:///" in url else ""
    return Path(path) if path and path != ":memory:" and not path.startswith("file:") else None


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None     # we issue BEGIN ourselves (see make_engine)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # LIKE minds case, as PostgreSQL's (and Camunda's ...Like parameters) do: SQLite's
    # ignored ASCII case, so businessKeyLike=js% found JS-2025-001 on SQLite only
    cur.execute("PRAGMA case_sensitive_like=ON")
    # Commits leave the WAL to the engine's WalCheckpointer; a committing writer only
    # checkpoints itself (SQLite's default behaviour) once the WAL passes ~40 MB.
    cur.execute(f"PRAGMA wal_autocheckpoint={WalCheckpointer.FALLBACK_PAGES}")
    cur.close()


class WriterQueue:
    """Where SQLite writers wait for their turn, instead of in SQLite's busy handler, which
    polls with sleeps of up to 100 ms: that capped threaded writes at ~70/s
    (bench/bench_http.py).  Threads of one process queue on a lock; the thread holding it
    then takes an exclusive flock on `<database>-writer`, where the server processes
    (gunicorn workers, `app.py` commands) queue, retrying every 0.5-5 ms.  The flock goes
    with its process if that dies; after `timeout` seconds a writer stops waiting here and
    meets SQLite's own busy timeout (a "database is locked" error, not a hung request)."""

    def __init__(self, database: Path | None) -> None:
        self._threads = threading.Lock()
        # A thread asking to go first (the WAL checkpointer's gap) is let in before writers
        # that come after it: a writer that releases and at once re-acquires would otherwise
        # win the lock again and again (threading.Lock is not fair).
        self._first = threading.Condition()
        self._waiting_first = 0
        self.database = database
        self._path = database.with_name(database.name + "-writer") if database is not None else None
        self._fd: int | None = None
        self._closer = None
        _QUEUES.add(self)

    def acquire(self, timeout: float = 30, first: bool = False) -> bool:
        deadline = time.monotonic() + timeout
        if first:
            with self._first:
                self._waiting_first += 1
            try:
                got = self._threads.acquire(timeout=timeout)
            finally:
                with self._first:
                    self._waiting_first -= 1
                    self._first.notify_all()
        else:
            with self._first:
                self._first.wait_for(lambda: not self._waiting_first, timeout=timeout)
            got = self._threads.acquire(timeout=max(0.0, deadline - time.monotonic()))
        if not got:
            return False
        if self._path is None:
            return True
        delay = 0.0005
        while True:
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._threads.release()
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 0.005)
            except OSError:            # the folder is read-only: SQLite's own locking still holds
                return True

    def release(self) -> None:
        if self._path is not None and self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            except OSError:
                pass
        self._threads.release()

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._closer = weakref.finalize(self, _close_quietly, self._fd)
        return self._fd

    def _after_fork_in_child(self) -> None:
        """A forked child (a gunicorn worker) inherits the parent's open file, which would
        keep a flock the parent holds alive past the parent, and maybe a held thread lock:
        close the one, replace the other."""
        self._threads = threading.Lock()
        self._first, self._waiting_first = threading.Condition(), 0
        if self._fd is not None:
            self._closer.detach()
            _close_quietly(self._fd)
            self._fd = None


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


_QUEUES: "weakref.WeakSet[WriterQueue]" = weakref.WeakSet()
os.register_at_fork(after_in_child=lambda: [queue._after_fork_in_child() for queue in list(_QUEUES)])


class WalCheckpointer:
    """Copies the SQLite write-ahead log back into the database file from a thread of
    its own.  SQLite's default is that the commit which takes the WAL past 1,000 pages
    does it, inside the request and while holding the write lock: every ~25th command
    took 4-8 ms longer (half of all commit time, bench/bench_overhead.py) and made the
    other writers wait.

    Every `interval` seconds the thread looks at the WAL's size.  Past `wal_limit` it
    runs a PASSIVE checkpoint, which blocks no reader or writer (the sqlite3 module lets
    go of the GIL meanwhile).  Under steady writes a passive checkpoint never quite
    catches up, and SQLite can only start the log over once every frame is copied; so
    past four times the limit it queues with the writers (WriterQueue) and copies the
    few frames that are left, and the next writer starts the log over.  Processes
    sharing a database each run one; a checkpoint under way makes the others skip.
    (The WAL file keeps its largest size when the log starts over, so once it has
    passed `wal_limit` the thread checkpoints every interval: cheap, as only the frames
    written since the last time are copied.)"""

    FALLBACK_PAGES = 10_000                 # the writers' own checkpoint, if this thread falls behind

    def __init__(self, writers: WriterQueue, wal_limit: int = 4 << 20, interval: float = 0.05) -> None:
        self.database, self.wal = writers.database, Path(f"{writers.database}-wal")
        self.writers, self.wal_limit, self.interval = writers, wal_limit, interval
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpointer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = None
        try:
            while not self._stop.wait(self.interval):
                try:
                    if self.wal.stat().st_size < self.wal_limit:
                        continue
                    if conn is None:
                        conn = sqlite3.connect(self.database, timeout=0, check_same_thread=False)
                    self._checkpoint(conn)
                except (OSError, sqlite3.Error):      # no WAL yet, or busy: look again next time
                    continue
        finally:
            if conn is not None:
                conn.close()

    def _checkpoint(self, conn) -> None:
        # fetchall: a row left unread would keep a read transaction open
        [(_, frames, _)] = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self.checkpoints += 1
        # A writer can start the log over only if no transaction was under way when the
        # last frame was copied; with one always under way, make a gap.
        if frames * 4096 >= 4 * self.wal_limit and self.writers.acquire(timeout=self.interval, first=True):
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                self.writers.release()

    @classmethod
    def for_engine(cls, engine: Engine, **options) -> "WalCheckpointer | None":
        """One for a SQLite file database made by `make_engine`; None for anything else."""
        writers = _WRITERS.get(engine)
        return cls(writers, **options) if writers is not None and writers.database is not None else None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


_WRITERS: "weakref.WeakKeyDictionary[Engine, WriterQueue]" = weakref.WeakKeyDictionary()   # make_engine's queues


def _sqlite_begin(conn, writers: WriterQueue) -> None:
    # A write transaction takes the write lock up front: two writers then queue
    # instead of one failing when it upgrades a stale read snapshot.
    # Released when the connection returns to the pool, i.e. after COMMIT or ROLLBACK.
    immediate = conn.get_execution_options().get("write", False)
    if immediate and "writer" not in conn.info and writers.acquire(timeout=30):
        conn.info["writer"] = writers
    # on the driver's connection: SQLAlchemy's execution path costs 20x the statement
    # ("database is locked" still becomes SQLAlchemy's OperationalError, a 503)
    statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"
    try:
        conn.connection.dbapi_connection.execute(statement).close()
    except sqlite3.Error as err:
        conn._handle_dbapi_exception(err, statement, (), None, None)        # raises


def _sqlite_checkin(_dbapi_conn, record) -> None:
    writers = record.info.pop("writer", None)
    if writers is not None:
        writers.release()


def session_factories(engine: Engine) -> tuple[sessionmaker, sessionmaker]:
    """(read, write) session factories; writes are marked for `_sqlite_begin`, reads on
    PostgreSQL are READ ONLY."""
    read = sessionmaker(bind=engine.execution_options(**READ_ONLY) if commits_reads(engine) else engine,
                        expire_on_commit=False)
    write = sessionmaker(bind=engine.execution_options(write=True), expire_on_commit=False)
    return read, write


def alembic_config(url: str):
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> str | None:
    """Bring the database to the newest schema (`python app.py migrate`); returns the
    revision it had before (None: a new database)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    ensure_sqlite_folder(url)
    db = create_engine(url)
    try:
        with db.connect() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
    finally:
        db.dispose()
    command.upgrade(alembic_config(url), "head")
    return before


@functools.cache
def _newest_revisions() -> frozenset:
    """The heads of migrations/ (read once: loading its scripts took ~12 ms an engine)."""
    from alembic.script import ScriptDirectory
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def check_migrated(engine: Engine) -> None:
    """Refuse to run on a database whose schema is not the newest one."""
    from alembic.runtime.migration import MigrationContext
    heads = set(_newest_revisions())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current != heads:
        raise NotMigrated(
            f"the database at {engine.url.render_as_string(hide_password=True)} is not migrated "
            f"(schema {sorted(current) or 'empty'}, expected {sorted(heads)}); "
            "run `python app.py migrate` (make run does this) and start again")


# psycopg drops every statement it has prepared on a connection when it rolls back
# (psycopg/_preparing.py) and sends DEALLOCATE ALL before the next statement.  With every
# GET and every request's authentication ending with ROLLBACK, no statement stayed
# prepared on PostgreSQL: each was parsed and planned again, one round trip more per
# request (bench/bench_scaleout.py: 1.1-1.4 ms of PostgreSQL CPU per completion, 0.65-0.8
# after).  So on PostgreSQL a reading transaction is READ ONLY (PostgreSQL refuses any
# write in it) and one that went well ends with COMMIT.  SQLite has no such cache: its
# reads end as before.
READ_ONLY = {"postgresql_readonly": True}


def commits_reads(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def reading(engine: Engine) -> Iterator:
    """A bare connection for a request's authentication, the task lists (GET /task and its
    count), a task (GET /task/{id}), a case read alone (GET /process-instance/{id}, its
    activity tree, its history and legal clocks), the lists of cases, the history's
    activities and variables, and fetchAndLock's look for work before it locks: their
    statements are SELECTs
    (engine/identity.py, engine/tasks.py, engine/instances.py, engine/legal_service.py,
    engine/history.py, engine/external_tasks.py), each of which sees
    what was committed before it, inside a transaction or not.  So on PostgreSQL each
    runs on its own, in autocommit: one round trip where BEGIN READ ONLY, the statement
    and COMMIT took three, and there is no ROLLBACK to make psycopg forget its prepared
    statements (bench/bench_scaleout.py, with the variables' upsert of
    engine/projections.py, side by side: PostgreSQL's CPU per completion 1.12 -> 0.92 ms
    with one worker).  Nothing refuses a write here: a reading unit of work
    (`Engine.uow(write=False)`) is the place for anything else.  The connection goes back
    to the pool out of autocommit, or is dropped if it cannot be (and the pool's checkout
    makes sure of it, `_postgresql_checkout`).  SQLite runs such a statement on its own
    already (engine/fastsql.py), and the pool rolls back a Core one."""
    with engine.connect() as conn:
        if engine.dialect.name != "postgresql":
            yield conn
            return
        driver = conn.connection.dbapi_connection
        try:
            driver.autocommit = True
            yield conn
        finally:
            try:
                driver.autocommit = False
            except conn.dialect.loaded_dbapi.Error:       # mid-transaction or cut: never pooled in autocommit
                conn.invalidate()


class UnitOfWork:
    """A session in one transaction; commit explicitly, anything else rolls back.

    A reading unit (`write=False`) on PostgreSQL is READ ONLY, and ends with COMMIT when
    it exits without an error, in a transaction still usable, holding no ORM change (see
    READ_ONLY above); anything else rolls back."""

    def __init__(self, session_factory: sessionmaker, engine_ctx=None, commit_clean: bool = False) -> None:
        self._factory = session_factory
        self.ctx = engine_ctx
        self.commit_clean = commit_clean
        self.session: Session | None = None
        self.after_commit: list = []

    def __enter__(self) -> "UnitOfWork":
        self.session = self._factory()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        session = self.session
        try:
            transaction = session.get_transaction()
            if transaction is not None:
                if (self.commit_clean and exc_type is None and transaction.is_active
                        and not (session.new or session.dirty or session.deleted)):
                    session.commit()
                else:
                    session.rollback()
        finally:
            session.close()

    def commit(self) -> None:
        try:
            self.session.commit()
        except DBAPIError as err:
            # PostgreSQL may have committed before the connection broke: saying "nothing was
            # changed" would have a client retry a start into a second case.  (SQLite's
            # COMMIT fails or not in this process: its errors stay the database's.)
            if err.connection_invalidated and self.session.get_bind().dialect.name == "postgresql":
                raise OutcomeUnknown("the connection to the database broke while the change was being "
                                     "committed: it may or may not have been made; read the case or task "
                                     "before you retry") from err
            raise
        callbacks, self.after_commit = self.after_commit, []
        for callback in callbacks:
            callback()
