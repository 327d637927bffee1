"""The hot path's statements, run on the DB-API cursor of the unit of work's connection.

A command (completing a task, starting a case) runs ~10 small statements, and the
SQLAlchemy Session and Core execution around each cost 20-80 us, 15-25x what SQLite
takes to run one (bench/bench_overhead.py: a third of a completion).  A `Statement` is
the same Core statement, compiled once per dialect by SQLAlchemy; executing it applies
the column types' own bind and result processors (SQLAlchemy's, so values are stored
exactly as the ORM stores them) and hands the SQL text to the driver directly.

It runs in the session's transaction (the connection `session.connection()` returns,
already in BEGIN), and like a Core statement through the session it does not autoflush.
Listeners of SQLAlchemy's `before_cursor_execute` event see its statements too
(bench/query_plans.py records them).

A driver error becomes the SQLAlchemy exception `session.execute` would raise, and a cut
connection is invalidated the same way; other errors pass unchanged, as in Core.  A
session whose transaction can no longer be used (after a failed flush) refuses, as
`session.execute` does.  Listeners get `before_cursor_execute` only (no statement
rewriting by its return value, no `after_cursor_execute`, no echo).  What it cannot do
faithfully is refused when the statement is first compiled: an expanding IN or another
parameter rendered at execution time, escaped parameter names, two result columns of the
same name, an omitted column whose Python default is not a plain value or callable.
"""
from __future__ import annotations

from collections import namedtuple
from contextlib import contextmanager

from sqlalchemy import bindparam
from sqlalchemy.engine import Connection
from sqlalchemy.exc import MultipleResultsFound, NoResultFound
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql import Insert, Select, Update
from sqlalchemy.sql.functions import FunctionElement


class _Compiled:
    __slots__ = ("sql", "positional", "order", "processors", "literals", "defaults", "row", "result_types",
                 "result_processors")

    def __init__(self, statement, dialect, column_keys=None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError(f"fastsql cannot run a statement with an expanding IN: {compiled.string}")
        if compiled.literal_execute_params or compiled.post_compile_params or compiled.escaped_bind_names:
            raise ValueError(f"fastsql cannot run a statement with parameters rendered at execution time "
                             f"or escaped: {compiled.string}")
        self.sql = compiled.string
        self.positional = dialect.positional
        self.order = list(compiled.positiontup or ()) if self.positional else None
        self.processors, self.literals = {}, {}
        for name, bind in compiled.binds.items():          # by the name the SQL text uses
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor
            if not bind.required:                            # a value written into the statement
                self.literals[name] = bind.effective_value
        self.defaults = []                      # (bind name, value or callable) of omitted columns
        for column in getattr(compiled, "insert_prefetch", ()) + getattr(compiled, "update_prefetch", ()):
            default = column.default if compiled.isinsert else column.onupdate
            if default is None or not (default.is_scalar or default.is_callable):
                raise ValueError(f"fastsql cannot fill the default of column {column}: pass a value")
            self.defaults.append((column.key, default))
            self.literals.pop(column.key, None)
        # a SELECT's columns, or a DML statement's RETURNING columns (none without)
        columns = statement.selected_columns if isinstance(statement, Select) else statement.exported_columns
        if len(columns):
            keys = [c.key for c in columns]
            if len(set(keys)) != len(keys):
                raise ValueError(f"fastsql needs distinct column names (label them): {keys}")
            self.row = namedtuple("Row", keys)
            self.result_types = [(c.type.dialect_impl(dialect), dialect) for c in columns]
        else:
            self.row, self.result_types = None, []
        self.result_processors = None           # from the first result's column types (rows)

    def parameters(self, values: dict):
        params = {**self.literals, **values} if self.literals else dict(values)
        for key, default in self.defaults:
            if key not in params:
                params[key] = default.arg if default.is_scalar else default.arg(None)
        for key, processor in self.processors.items():
            if key in params:
                params[key] = processor(params[key])
        if self.positional:
            try:
                return tuple(params[name] for name in self.order)
            except KeyError as err:
                raise KeyError(f"fastsql: no value for bind parameter {err} of {self.sql!r}") from None
        return params

    def rows(self, cursor) -> list:
        """The cursor's rows as named tuples, each value through its column type's result
        processor, chosen as SQLAlchemy chooses it: by the driver's type code of the
        column (psycopg's for a Float: none for a double, a conversion for a numeric), at
        the first result (psycopg builds its description anew at every access)."""
        fetched = cursor.fetchall()
        if self.result_processors is None:
            self.result_processors = [(i, p) for i, p in enumerate(
                impl.result_processor(dialect, column[1])
                for (impl, dialect), column in zip(self.result_types, cursor.description)) if p is not None]
        make, processors = self.row._make, self.result_processors
        if not processors:
            return [make(r) for r in fetched]
        out = []
        for r in fetched:
            r = list(r)
            for i, processor in processors:
                r[i] = processor(r[i])
            out.append(make(r))
        return out


class Result:
    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list | None, rowcount: int) -> None:
        self._rows, self.rowcount = rows, rowcount

    def all(self) -> list:
        return self._rows

    def first(self):
        return self._rows[0] if self._rows else None

    def scalar(self):
        return self._rows[0][0] if self._rows else None

    def one(self):
        if len(self._rows) != 1:
            raise (NoResultFound("No row was found when one was required") if not self._rows
                   else MultipleResultsFound("Multiple rows were found when exactly one was required"))
        return self._rows[0]

    def scalar_one(self):
        return self.one()[0]

    def __iter__(self):
        return iter(self._rows)


class Statement:
    """`statement` (a Core select, insert, update or delete) for `execute` / `executemany`;
    or {dialect name: statement} where each dialect needs a construct of its own (an
    upsert: `sqlalchemy.dialects.postgresql.insert`, `...sqlite.insert`)."""

    def __init__(self, statement) -> None:
        self.statement = statement
        self._compiled: dict = {}
        any_one = next(iter(statement.values())) if isinstance(statement, dict) else statement
        # an INSERT or UPDATE takes its columns from the parameters' keys, as in Core
        self._by_keys = isinstance(any_one, (Insert, Update))

    def _for(self, dialect, keys=None) -> _Compiled:
        cache_key = (dialect.name, dialect.driver, keys)
        compiled = self._compiled.get(cache_key)
        if compiled is None:
            statement = self.statement
            if isinstance(statement, dict):
                if dialect.name not in statement:
                    raise ValueError(f"fastsql: no statement for {dialect.name}, only for {sorted(statement)}")
                statement = statement[dialect.name]
            compiled = self._compiled[cache_key] = _Compiled(statement, dialect, list(keys) if keys else None)
        return compiled

    def execute(self, session: Session | Connection, params: dict | None = None) -> Result:
        params = params or {}
        conn = _connection(session)
        compiled = self._for(conn.dialect, tuple(params) if self._by_keys else None)
        args = compiled.parameters(params)
        with _cursor(conn, compiled.sql, args, False) as cursor:
            cursor.execute(compiled.sql, args)
            rows = compiled.rows(cursor) if compiled.row is not None else None
            return Result(rows, cursor.rowcount)

    def executemany(self, session: Session | Connection, rows: list[dict]) -> None:
        """The same statement for every dict of `rows` (all with the same keys).  One row
        runs as `execute`: psycopg runs executemany in pipeline mode, which for a single
        row costs about twice a plain execute, on both sides of the connection."""
        if not rows:
            return
        if len(rows) == 1:
            self.execute(session, rows[0])
            return
        conn = _connection(session)
        compiled = self._for(conn.dialect, tuple(rows[0]) if self._by_keys else None)
        args = [compiled.parameters(row) for row in rows]
        with _cursor(conn, compiled.sql, args, True) as cursor:
            cursor.executemany(compiled.sql, args)


@contextmanager
def _cursor(conn: Connection, sql: str, args, many: bool):
    """A driver cursor.  A driver error becomes the SQLAlchemy error `session.execute`
    raises (IntegrityError, OperationalError, ...) and a connection the database cut is
    invalidated as SQLAlchemy invalidates it, so the pool does not hand it out again; an
    interrupt goes through the same handling (the connection is not reused half-way); any
    other error passes unchanged, as it does through Core."""
    cursor = None
    try:
        cursor = conn.connection.dbapi_connection.cursor()
        conn.dispatch.before_cursor_execute(conn, cursor, sql, args, None, many)
        yield cursor
    except BaseException as err:
        if isinstance(err, conn.dialect.loaded_dbapi.Error) or not isinstance(err, Exception):
            conn._handle_dbapi_exception(err, sql, args, cursor, None)      # raises
        raise
    finally:
        if cursor is not None:
            try:
                cursor.close()
            except Exception:  # noqa: BLE001 - a cursor of a cut connection: nothing to release
                pass


def _connection(target: Session | Connection) -> Connection:
    """A session's connection (in its transaction, begun if need be), or a bare
    connection as it is: a statement there runs in the driver's own transaction handling
    (SQLite: on its own; PostgreSQL: on its own too in `engine.db.reading`'s autocommit,
    and otherwise in the transaction the driver opens, which the pool rolls back when the
    connection is returned).  A session's is looked up once per transaction
    (`Session.connection()` costs as much as running a small statement)."""
    if not isinstance(target, Session):
        return target
    transaction = target.get_transaction()
    cached = target.info.get(_CONNECTION)
    if cached is not None and cached[0] is transaction and transaction is not None and transaction.is_active:
        return cached[1]
    conn = target.connection()
    target.info[_CONNECTION] = (target.get_transaction(), conn)
    return conn


# a ...Like pattern's escape in every list (Camunda's ...Like parameters): \% and \_ match
# themselves, as PostgreSQL's LIKE has it by default; SQLite's LIKE has no escape unless told
LIKE_ESCAPE = "\\"

_CONNECTION = "approvals.fastsql.connection"


def numbered(name: str, items: list) -> dict:
    """The values of a list bound one parameter each, `<name>_0`, `<name>_1`, ...: a shape
    (Shapes) records how many, the statement names them with `bound`."""
    return {f"{name}_{n}": item for n, item in enumerate(items)}


def bound(name: str, count: int) -> list:
    """The bind parameters `numbered` fills, for a statement built once per shape."""
    return [bindparam(f"{name}_{n}") for n in range(count)]


class Likely(FunctionElement):
    """A condition most rows meet, which SQLite should not read rows by.  SQLite keeps no
    statistics, so it is told (likelihood, 0.9); PostgreSQL plans from its own and gets
    the condition as it is.  A Statement compiles it per dialect: one statement serves
    both.  Used for the unassigned tasks of a list not walked along (assignee, created)
    (engine/tasks.py) and the states of a list of cases read from the reader's own
    (engine/history.py)."""
    inherit_cache = True
    name = "likely"


@compiles(Likely)
def _likely(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(Likely, "sqlite")
def _likely_sqlite(element, compiler, **kw):
    return f"likelihood({compiler.process(element.clauses, **kw)}, 0.9)"      # SQLite wants a literal


class Shapes:
    """Statements built once per *shape* of a query (which filters it has, how many values
    each list holds, its order, whether it is paged) and run with the values bound, for
    requests whose statements vary with what they ask: the task lists (engine/tasks.py),
    fetchAndLock and the variables it returns (engine/external_tasks.py), a message's
    lookup of the waiting catches (engine/messages.py), a case read alone
    (engine/instances.py), and the lists of cases and the history's activities and
    variables (engine/history.py).  Shapes are few; at most `kept` are kept, and the cache
    starts over when full, so a flood of odd ones cannot grow it.  Two threads may build
    the same shape at once: one of the two equal statements is kept."""

    def __init__(self, kept: int = 512) -> None:
        self._statements: dict = {}
        self.kept = kept

    def get(self, key: tuple, build) -> Statement:
        """The statement of shape `key`, from `build()` (a Core statement) the first time."""
        statement = self._statements.get(key)
        if statement is None:
            if len(self._statements) >= self.kept:
                self._statements.clear()
            statement = self._statements[key] = Statement(build())
        return statement

    def clear(self) -> None:
        self._statements.clear()

    def __len__(self) -> int:
        return len(self._statements)
