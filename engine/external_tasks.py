"""External tasks: department systems as workers, speaking Camunda 7's external-task protocol.

A READY `ExternalTask` (camunda:type="external") is mirrored into the `external_task`
table in the command that made it ready, and deleted in the command that ends it.
Workers fetch and lock rows by topic; the lock (`worker_id`, `lock_expiration_time`) is
only a column update.  Completing, failing with a BPMN error or with variables goes
through the ordinary instance command (`runtime.open_instance` ... `runtime.save`), so
the workflow, the projections and the audit chain move together.

Delivery is at least once: a lock that expires hands the task to the next fetch, and
the first worker may still complete it while nobody else has taken it (as in Camunda).

Long polling (`asyncResponseTimeout`) waits on `TaskSignal`: after a commit that makes
a task fetchable, the signal wakes the longest-waiting fetch whose topics and filters
accept it (one waiter per task, not a herd).  A waiter holds no database connection,
re-queries only when woken or every `POLL_SECONDS` (expired locks, passed retry
timeouts), and at most `long_poll_slots()` requests wait at once (each holds a server
thread; see README).  On PostgreSQL the announcement also travels as a NOTIFY (sent
with the transaction, delivered at commit) to the other server processes, each of
which listens on one connection of its own.  A server process that stops
(`stop_long_polls`) answers its waiting fetches at once with no tasks, as when their
time is up, and lets no new fetch wait.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
import weakref
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, ContextManager

from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import BigInteger, and_, bindparam, delete, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from . import bpmn_errors, runtime, transient_variables
from .clock import utcnow
from .db import UnitOfWork, reading
from .errors import BadRequest, Conflict, Forbidden, ModelError, RestException
from .fastsql import Shapes, Statement
from .identity import WORKERS_GROUP, Principal
from .models import ExternalTask, Incident, VariableInstance
from .specs import ExternalTask as ExternalTaskSpec
from .variables import VariableMap, format_date, parse_date, to_wire
from .workflows import model_error

log = logging.getLogger(__name__)

FAILED_EXTERNAL_TASK = "failedExternalTask"
MAX_ASYNC_TIMEOUT_MS = 1_800_000           # Camunda's limit: 30 minutes
POLL_SECONDS = 1.0                         # a waiter re-queries at least this often (other processes, expiries)
RESERVED_THREADS = 8                       # server threads long polls never take
MAX_PASSES = 5                             # waiters one new task is offered to before the periodic re-query
NOTIFY_CHANNEL = "approvals_external_task"
MAX_DURATION_MS = 10 * 366 * 24 * 3600 * 1000     # locks and retry timeouts: ten years at most
MAX_INT = 2**31 - 1


class ExternalTaskNotFound(RestException):
    status = 404


def require_worker(principal: Principal) -> None:
    if not (principal.is_admin or WORKERS_GROUP in principal.groups):
        raise Forbidden(f"user '{principal.user_id}' may not use the external-task API: it is for members of "
                        f"'{WORKERS_GROUP}' (department-system workers) and administrators",
                        userId=principal.user_id)


# --- projection (called from projections.write, inside the command) -------------------

def is_ready_external(task) -> bool:
    return task.state == TaskState.READY and isinstance(task.task_spec, ExternalTaskSpec)


# Completing an external task is a hot path like completing a user task: its statements
# are built once and run on the driver's cursor (engine/fastsql.py).
_TASKS, _INCIDENTS = ExternalTask.__table__, Incident.__table__
_DELETE_INCIDENTS = Statement(delete(_INCIDENTS).where(_INCIDENTS.c.configuration == bindparam("task_id")))
_DELETE_TASK = Statement(delete(_TASKS).where(_TASKS.c.id == bindparam("task_id")))
_INSERT_TASKS = Statement(insert(_TASKS))


def write(command, before: frozenset, after: frozenset, now: datetime) -> None:
    """Mirror READY external tasks; new ones get their camunda:inputOutput inputs here."""
    session = command.session
    gone = [str(t) for t in before - after]
    if gone:
        session.flush()             # a failure's changes to the row (ORM) and a new incident go first
        for task_id in gone:
            _DELETE_INCIDENTS.execute(session, {"task_id": task_id})
            _DELETE_TASK.execute(session, {"task_id": task_id})
    rows = []
    for task_id in after - before:
        task = command.workflow.get_task_from_id(task_id)
        rows.append(_row(command, task, now))
    if rows:
        _INSERT_TASKS.executemany(session, rows)
        _announce_after_commit(command.uow, rows)


def _row(command, task, now: datetime) -> dict:
    """The task's row; its `local_variables` are what is local to the task's scope: its
    camunda:inputParameters and the camunda:elementVariable of the multi-instance it is an
    instance of (or runs inside), which the case's variables never show.  Stored here, a
    fetch gives them without opening the case (Camunda 7 gives both: LockedExternalTaskImpl
    collects the execution's variables, its locals among them)."""
    spec, record = task.task_spec, command.record
    script_engine = command.uow.ctx.script_engine
    runtime.apply_inputs(task, script_engine)
    local_names = sorted(name for name in runtime.local_names(task) if name in task.data)
    task_id = str(task.id)
    return dict(
        id=task_id, instance_id=record.id, definition_id=record.definition_id,
        definition_key=record.definition_key, definition_version_tag=command.definition.version_tag,
        activity_id=spec.bpmn_id, activity_instance_id=task_id, execution_id=task_id,
        topic_name=_topic(task, script_engine), worker_id=None, lock_expiration_time=None, retries=None,
        error_message=None, error_details=None, priority=_priority(task, script_engine),
        business_key=record.business_key, tenant_id=record.tenant_id, created=now, suspended=False,
        local_variables={name: to_wire(task.data.get(name)) for name in local_names},
        properties=spec.extensions.get("properties", {}))


TOPIC_LIMIT = 255                           # external_task.topic_name, and a fetch's topicName


def _topic(task, script_engine) -> str:
    """camunda:topic, evaluated where the task opens, as Camunda 7 does (its
    ExternalTaskActivityBehavior's topicNameValueProvider): `${topic}` is the variable's
    value, `dept.${region}` that text with the value put in, plain text itself."""
    raw, where = task.task_spec.topic, task.task_spec.bpmn_id
    try:
        value = script_engine.evaluate_text(task, raw)
    except WorkflowException as err:     # the script engine's errors name the expression
        raise ModelError(f"{where}: camunda:topic {raw!r}: {err}", activityId=where) from None
    if not isinstance(value, str) or not value.strip() or len(value) > TOPIC_LIMIT:
        raise ModelError(f"{where}: camunda:topic {raw!r} gave {value!r}, which is no topic name: a topic is text "
                         f"of 1 to {TOPIC_LIMIT} characters, which workers fetch by", activityId=where)
    return value


def _priority(task, script_engine) -> int:
    raw = task.task_spec.extensions.get("taskPriority")
    if raw in (None, ""):
        return 0
    where = task.task_spec.bpmn_id
    try:
        value = script_engine.evaluate_text(task, raw)
        return int(value)
    except (TypeError, ValueError):
        raise ModelError(f"{where}: camunda:taskPriority {raw!r} is not a whole number",
                         activityId=where) from None
    except WorkflowException as err:
        raise model_error(err) from err


# --- long-poll wake-ups ---------------------------------------------------------------

class _Waiter:
    def __init__(self, request: "FetchRequest") -> None:
        self.request = request
        self.event = threading.Event()
        self.hint: dict | None = None         # the task it was woken for


class TaskSignal:
    """Waiting fetches in arrival order; `announce` wakes, for each fetchable task, the
    first waiter that may take it.  A waiter that then finds nothing passes the task on."""

    def __init__(self, slots: int) -> None:
        self._lock = threading.Lock()
        self._waiters: list[_Waiter] = []
        self._slots = threading.BoundedSemaphore(slots) if slots > 0 else None
        self.slots = slots
        self.origin = uuid.uuid4().hex            # tells this process's NOTIFYs from the others'
        self.listening = False

    def register(self, request: "FetchRequest") -> _Waiter:
        waiter = _Waiter(request)
        with self._lock:
            self._waiters.append(waiter)
        return waiter

    def unregister(self, waiter: _Waiter) -> None:
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def announce(self, tasks: list[dict]) -> None:
        """`tasks`: topic_name, business_key, definition_id, definition_key,
        definition_version_tag, tenant_id (+ `tried`)."""
        with self._lock:
            for info in tasks:
                tried = info.setdefault("tried", set())
                if len(tried) >= MAX_PASSES:
                    continue                  # left to the waiters' periodic re-query
                for waiter in self._waiters:
                    if not waiter.event.is_set() and id(waiter) not in tried and _may_take(waiter.request, info):
                        tried.add(id(waiter))
                        waiter.hint = info
                        waiter.event.set()
                        break

    def pass_on(self, waiter: _Waiter) -> None:
        """The waiter was woken for a task it could not lock: offer that task to the next one."""
        hint, waiter.hint = waiter.hint, None
        if hint is not None:
            self.announce([hint])

    def wake_all(self) -> None:
        with self._lock:
            for waiter in self._waiters:
                waiter.event.set()

    def take_slot(self) -> bool:
        return self._slots is not None and self._slots.acquire(blocking=False)

    def release_slot(self) -> None:
        self._slots.release()


def _may_take(request: "FetchRequest", info: dict) -> bool:
    """Whether one of the fetch's topics accepts the task (processVariables are checked later)."""
    return any(_accepts(topic, info) for topic in request.topics)


def _accepts(topic: "TopicRequest", info: dict) -> bool:
    """Whether the task (its topic_name, business_key, definition_id, definition_key,
    definition_version_tag and tenant_id) passes this topic entry's filters,
    processVariables aside."""
    return (topic.topic_name == info["topic_name"]
            and (topic.business_key is None or topic.business_key == info.get("business_key"))
            and (topic.definition_version_tag is None
                 or topic.definition_version_tag == info.get("definition_version_tag"))
            and (not topic.definition_keys or info.get("definition_key") in topic.definition_keys)
            and (not topic.definition_ids or info.get("definition_id") in topic.definition_ids)
            and (not topic.tenant_ids or info.get("tenant_id") in topic.tenant_ids)
            and (not topic.without_tenant or info.get("tenant_id") is None))


# what a fetch's topic filters look at (processVariables aside): announced to waiting fetches
_TASK_INFO = ("topic_name", "business_key", "definition_id", "definition_key", "definition_version_tag", "tenant_id")


def _announce_after_commit(uow: UnitOfWork, rows) -> None:
    signal = signal_for(uow.ctx)
    infos = [{name: r[name] for name in _TASK_INFO} for r in rows]
    if uow.session.get_bind().dialect.name == "postgresql":
        payload = json.dumps({"origin": signal.origin, "tasks": infos})
        if len(payload) < 7900:               # NOTIFY's limit; a larger batch is found by the re-query
            uow.session.execute(select(func.pg_notify(NOTIFY_CHANNEL, payload)))
    uow.after_commit.append(lambda: signal.announce(infos))


class _PostgresListener(threading.Thread):
    """LISTENs on its own connection and announces other processes' tasks to this one's waiters."""

    def __init__(self, url: str, signal: "TaskSignal") -> None:
        super().__init__(name="external-task-listener", daemon=True)
        self.url = url
        self.signal = weakref.ref(signal)

    def run(self) -> None:
        import psycopg
        while self.signal() is not None:
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while self.signal() is not None:          # no reference kept: the signal may go
                        for note in conn.notifies(timeout=POLL_SECONDS):
                            self._deliver(note.payload)
            except Exception as err:          # noqa: BLE001 - a lost connection: the re-query covers, reconnect
                log.warning("external-task listener: %s; reconnecting", err)
                time.sleep(POLL_SECONDS)

    def _deliver(self, payload: str) -> None:
        signal = self.signal()
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if signal is not None and message.get("origin") != signal.origin:
            signal.announce(message.get("tasks") or [])


def _listen(ctx, signal: "TaskSignal") -> None:
    """Start the listener the first time a fetch waits in this process (PostgreSQL only)."""
    url = ctx.db.url
    with _signals_lock:
        if signal.listening or url.get_backend_name() != "postgresql":
            return
        signal.listening = True
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    _PostgresListener(conninfo, signal).start()


def long_poll_slots() -> int:
    """How many fetches may wait at once in this process: the server threads minus a reserve."""
    explicit = os.environ.get("APPROVALS_LONG_POLL_SLOTS")
    if explicit:
        return max(0, int(explicit))
    threads = int(os.environ.get("APPROVALS_THREADS") or 32)
    return max(1, threads - RESERVED_THREADS)


_signals: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_signals_lock = threading.Lock()


def signal_for(ctx) -> TaskSignal:
    with _signals_lock:
        signal = _signals.get(ctx)
        if signal is None:
            signal = _signals[ctx] = TaskSignal(long_poll_slots())
        return signal


_stopping = False                           # this process stops serving: no fetch waits any more


def stop_long_polls() -> None:
    """The server process is stopping (api/serving.py's worker, on SIGTERM, SIGINT and
    SIGQUIT): waiting fetches answer now, with no tasks, and later ones do not wait.  A
    client may ask for up to 30 minutes, and the server cannot see it go away: its poll
    would hold the process past gunicorn's graceful_timeout, until the master kills it."""
    global _stopping
    if _stopping:           # called again by a signal landing in this call: it must not wait for our locks
        return
    _stopping = True
    with _signals_lock:
        signals = list(_signals.values())
    for signal in signals:
        signal.wake_all()


# --- fetch and lock -------------------------------------------------------------------

@dataclass
class TopicRequest:
    topic_name: str
    lock_duration: int                                  # milliseconds
    variables: list | None = None                       # None: all variables
    local_variables: bool = False
    business_key: str | None = None
    definition_ids: list | None = None
    definition_keys: list | None = None
    definition_version_tag: str | None = None           # the process definition's camunda:versionTag
    tenant_ids: list | None = None
    without_tenant: bool = False
    process_variables: dict = field(default_factory=dict)   # name -> value every task's instance must have
    include_extension_properties: bool = False


@dataclass
class FetchRequest:
    worker_id: str
    max_tasks: int
    topics: list
    use_priority: bool = False
    async_response_timeout: int | None = None           # milliseconds
    sort_created: str | None = None                     # "asc" | "desc"


@dataclass
class LockedTask:
    row: tuple                                          # the external_task row's columns, by name
    variables: dict                                     # name -> plain value
    extension_properties: dict


def fetch_and_lock(engine, principal: Principal, request: FetchRequest,
                   waiting: Callable[[], ContextManager] = nullcontext) -> list[LockedTask]:
    """Lock up to `max_tasks` tasks; with `async_response_timeout`, wait for them, inside
    `waiting()` (the server's `api.serving.step_aside`: other requests go on meanwhile; it
    yields False when this thread cannot wait without holding them up)."""
    require_worker(principal)
    _check_fetch(request)
    timeout = (request.async_response_timeout or 0) / 1000.0
    if timeout <= 0 or request.max_tasks == 0 or not request.topics or _stopping:
        return _try_lock(engine, request)
    signal = signal_for(engine)
    if not signal.take_slot():
        _warn_once_a_minute("all %d long-poll slots are taken: answering worker %s without waiting "
                            "(raise APPROVALS_THREADS or WEB_CONCURRENCY)", signal.slots, request.worker_id)
        return _try_lock(engine, request)
    _listen(engine, signal)
    waiter = signal.register(request)           # before querying: no wake-up is lost
    try:
        deadline = time.monotonic() + timeout
        while True:
            locked = _try_lock(engine, request)
            if locked:
                waiter.hint = None
            elif waiter.hint is not None:
                signal.pass_on(waiter)
            remaining = deadline - time.monotonic()
            if locked or remaining <= 0 or _stopping:    # a stop after this check wakes the wait below
                return locked
            with waiting() as free:
                if free is False:               # no server thread to wait on: answer now, as without a slot
                    _warn_once_a_minute("no free server thread for worker %s to wait on (raise APPROVALS_THREADS)",
                                        request.worker_id)
                    return locked
                waiter.event.wait(min(remaining, POLL_SECONDS))
            waiter.event.clear()
            if _stopping:                       # woken by the stop: lock nothing more, as on SIGINT the
                return []                       # process exits 0.1 s later and a lost answer's task waits out its lock
    finally:
        signal.unregister(waiter)
        signal.release_slot()
        if waiter.hint is not None:
            signal.pass_on(waiter)


_last_warnings: dict[str, float] = {}


def _warn_once_a_minute(message: str, *args) -> None:
    """Fetches answered without waiting come back at once: one line a minute (per message) says so."""
    now = time.monotonic()
    if now - _last_warnings.get(message, float("-inf")) >= 60:
        _last_warnings[message] = now
        log.warning(message, *args)


def _check_fetch(request: FetchRequest) -> None:
    if not request.worker_id:
        raise BadRequest("workerId is required: the id under which the fetched tasks are locked")
    timeout = request.async_response_timeout
    if timeout is not None and timeout > MAX_ASYNC_TIMEOUT_MS:
        raise BadRequest(f"The asynchronous response timeout cannot be set to a value greater than "
                         f"{MAX_ASYNC_TIMEOUT_MS} milliseconds")
    for topic in request.topics:
        if not topic.topic_name:
            raise BadRequest("every topic needs a topicName")
        if topic.lock_duration is None or not 0 < topic.lock_duration <= MAX_DURATION_MS:
            raise BadRequest(f"topic '{topic.topic_name}': lockDuration must be a positive number of "
                             f"milliseconds, at most {MAX_DURATION_MS}")


def _fetchable(now):
    return and_(or_(ExternalTask.lock_expiration_time.is_(None), ExternalTask.lock_expiration_time <= now),
                or_(ExternalTask.retries.is_(None), ExternalTask.retries > 0),
                ExternalTask.suspended.is_(False))


# lock one candidate, if no other worker took it meanwhile
_LOCK = Statement(update(_TASKS).where(_TASKS.c.id == bindparam("task_id"),
                                       _fetchable(bindparam("now", type_=_TASKS.c.created.type)))
                  .values(worker_id=bindparam("worker"), lock_expiration_time=bindparam("until")))
_LOCKED_ROW = Statement(select(_TASKS).where(_TASKS.c.id == bindparam("task_id")))

# A fetch's statements depend on the shape of its request only (per topic: which filters,
# how many definition ids, keys and tenants; the order; whether it is limited), not on
# the values, which are bound: built once per shape and run on the driver's cursor
# (engine/fastsql.py), like the task lists.  Built through the ORM at every request, the
# two candidate queries of a fetch cost more CPU than running them (bench/TUNING.md).
_FETCHES = Shapes()
_LISTED = (("definition_ids", "definition_id"), ("definition_keys", "definition_key"), ("tenant_ids", "tenant_id"))


def _candidates(request: FetchRequest, now: datetime, probe: bool = False) -> tuple[Statement, dict]:
    """The statement that finds the tasks `request` may lock, oldest first (or by
    priority), and its values: to lock them (FOR UPDATE SKIP LOCKED), or with `probe`
    the first one only, without a lock (the cheap read before taking the write lock)."""
    values: dict = {"now": now}
    topics = []
    for i, topic in enumerate(request.topics):
        values[f"topic_{i}"] = topic.topic_name
        if topic.business_key is not None:
            values[f"business_key_{i}"] = topic.business_key
        if topic.definition_version_tag is not None:
            values[f"version_tag_{i}"] = topic.definition_version_tag
        counts = []
        for field_name, _column in _LISTED:
            listed = getattr(topic, field_name) or ()
            values.update((f"{field_name}_{i}_{j}", value) for j, value in enumerate(listed))
            counts.append(len(listed))
        topics.append((topic.business_key is not None, topic.definition_version_tag is not None, tuple(counts),
                       topic.without_tenant))
    limited = probe or not any(t.process_variables for t in request.topics)
    if limited:
        values["limit"] = 1 if probe else request.max_tasks
    shape = (tuple(topics), request.use_priority, request.sort_created == "desc", limited, probe)
    return _FETCHES.get(shape, lambda: _build_candidates(*shape)), values


def _build_candidates(topics: tuple, use_priority: bool, descending: bool, limited: bool, probe: bool):
    c = _TASKS.c

    def topic_clause(i: int, has_business_key: bool, has_version_tag: bool, counts: tuple, without_tenant: bool):
        clause = [c.topic_name == bindparam(f"topic_{i}")]
        if has_business_key:
            clause.append(c.business_key == bindparam(f"business_key_{i}"))
        if has_version_tag:
            clause.append(c.definition_version_tag == bindparam(f"version_tag_{i}"))
        for (field_name, column), n in zip(_LISTED, counts):
            if n:
                clause.append(c[column].in_([bindparam(f"{field_name}_{i}_{j}") for j in range(n)]))
        if without_tenant:
            clause.append(c.tenant_id.is_(None))
        return and_(*clause)

    stmt = select(c.id, c.instance_id, *(c[name] for name in _TASK_INFO)).where(
        or_(*[topic_clause(i, *topic) for i, topic in enumerate(topics)]),
        _fetchable(bindparam("now", type_=c.created.type)))
    order = [c.priority.desc()] if use_priority else []
    stmt = stmt.order_by(*order, c.created.desc() if descending else c.created.asc(), c.id)
    if limited:
        stmt = stmt.limit(bindparam("limit"))
    return stmt if probe else stmt.with_for_update(skip_locked=True)


def _try_lock(engine, request: FetchRequest) -> list[LockedTask]:
    if not request.topics or request.max_tasks <= 0:
        return []
    with reading(engine.db) as conn:              # a cheap read first: idle pollers never take the write lock
        probe, values = _candidates(request, utcnow(), probe=True)
        if probe.execute(conn, values).first() is None:
            return []
    with engine.uow() as uow:
        locked = _lock(uow.session, request, utcnow())
        uow.commit()
        return locked


def _lock(session: Session, request: FetchRequest, now: datetime) -> list[LockedTask]:
    candidates, values = _candidates(request, now)
    rows = candidates.execute(session, values).all()
    by_topic: dict = {}
    for topic in request.topics:
        by_topic.setdefault(topic.topic_name, []).append(topic)
    locked = []
    for row in rows:
        if len(locked) >= request.max_tasks:
            break
        topic = _matching_topic(session, by_topic[row.topic_name], row)
        if topic is None:
            continue
        result = _LOCK.execute(session, {"task_id": row.id, "now": now, "worker": request.worker_id,
                                         "until": now + timedelta(milliseconds=topic.lock_duration)})
        if result.rowcount == 1:
            locked.append((row.id, topic))
    return [_locked_task(session, task_id, topic) for task_id, topic in locked]


def _matching_topic(session: Session, topics: list, candidate) -> TopicRequest | None:
    """The first of the worker's entries for this topic whose filters the candidate row
    passes, processVariables (of its instance) included.  The query found it through one
    of them, not necessarily the first."""
    info = candidate._asdict()
    for topic in topics:
        if not _accepts(topic, info):
            continue
        if not topic.process_variables:
            return topic
        values = process_variable_values(session, candidate.instance_id, list(topic.process_variables))
        if all(name in values and values[name] == wanted for name, wanted in topic.process_variables.items()):
            return topic
    return None


_VARIABLES = VariableInstance.__table__
_VALUES = Shapes()


def process_variable_values(session: Session, instance_id: str, names: list | None) -> VariableMap:
    """The instance's process variables as the `variable_instance` projection has them,
    with their types (`names`: only those; None: all)."""
    if names is not None and not names:
        return VariableMap()
    values = {"instance_id": instance_id}
    if names is not None:
        values.update((f"name_{j}", name) for j, name in enumerate(names))

    def build():
        v = _VARIABLES.c
        stmt = select(v.name, v.type, v.value).where(v.instance_id == bindparam("instance_id"))
        if names is None:
            return stmt
        return stmt.where(v.name.in_([bindparam(f"name_{j}") for j in range(len(names))]))
    stmt = _VALUES.get((None if names is None else len(names),), build)
    found = VariableMap()
    for name, vtype, value in stmt.execute(session, values):
        found[name], found.types[name] = _stored_value(vtype, value), vtype
    return found


def _stored_value(vtype: str, value):
    if vtype == "Date" and isinstance(value, str):
        return parse_date(value)
    return value


def _locked_task(session: Session, task_id: str, topic: TopicRequest) -> LockedTask:
    row = _LOCKED_ROW.execute(session, {"task_id": task_id}).one()
    wires = row.local_variables or {}
    if topic.variables is not None:
        wires = {k: v for k, v in wires.items() if k in topic.variables}
    variables = VariableMap() if topic.local_variables else process_variable_values(session, row.instance_id,
                                                                                   topic.variables)
    variables.update((name, _from_wire(wire)) for name, wire in wires.items())
    variables.types.update((name, wire.get("type")) for name, wire in wires.items())
    properties = dict(row.properties or {}) if topic.include_extension_properties else {}
    return LockedTask(row, variables, properties)


def _from_wire(wire: dict):
    value = wire.get("value")
    if wire.get("type") == "Date" and isinstance(value, str):
        return parse_date(value)
    if wire.get("type") == "Json" and isinstance(value, str):
        return json.loads(value)
    return value


# --- the lock owner's verbs ---------------------------------------------------------

def _row_for_update(session: Session, task_id: str) -> ExternalTask:
    return _found(session.execute(select(ExternalTask).where(ExternalTask.id == task_id).with_for_update()).scalar(),
                  task_id)


def _found(row, task_id: str):
    if row is None:
        raise ExternalTaskNotFound(f"External task with id {task_id} does not exist")
    return row


def _check_owner(row: ExternalTask, worker_id: str | None, what: str) -> None:
    """`what` completes Camunda's sentence, e.g. "External Task X cannot be completed by worker '"."""
    if not worker_id:
        raise BadRequest("workerId is required: the worker that holds the lock")
    if row.worker_id != worker_id:
        owner = row.worker_id if row.worker_id is not None else "null"
        raise RestException(f"{what}{worker_id}'. It is locked by worker '{owner}'.")


def _open_task(uow: UnitOfWork, row: ExternalTask, principal: Principal):
    command = runtime.open_instance(uow, row.instance_id, principal)
    task = runtime.find_task(command.workflow, row.id)
    if not is_ready_external(task):
        raise Conflict(f"external task {row.id} was finished concurrently "
                               f"(now {TaskState.get_name(task.state)}); re-fetch and retry")
    return command, task


_FOR_COMPLETING = Statement(select(_TASKS.c.id, _TASKS.c.instance_id, _TASKS.c.worker_id, _TASKS.c.topic_name,
                                    _TASKS.c.activity_id, _TASKS.c.error_message)
                             .where(_TASKS.c.id == bindparam("task_id")).with_for_update())


def complete(uow: UnitOfWork, principal: Principal, task_id: str, worker_id: str, variables: dict,
             local_variables: dict) -> None:
    """Complete the task; one of its camunda:errorEventDefinitions whose expression is true
    throws its BPMN error instead (`_defined_error`)."""
    require_worker(principal)
    row = _found(_FOR_COMPLETING.execute(uow.session, {"task_id": task_id}).first(), task_id)   # what completing reads
    _check_owner(row, worker_id, f"External Task {task_id} cannot be completed by worker '")
    command, task = _open_task(uow, row, principal)
    runtime.receive(command, variables, local_variables)
    defined = None
    if task.task_spec.extensions.get("errorEventDefinitions"):
        _set_on_task(task, variables, local_variables)      # as Camunda sets them before it evaluates
        defined = _defined_error(task, uow.ctx.script_engine, failing=False)
    if defined is not None:
        # Camunda throws with the task's error message: a failure's before this completion, or none
        _throw_defined(command, task, row, worker_id, defined, row.error_message, variables)
    else:
        _apply_result(task, variables, local_variables, uow.ctx.script_engine)
        try:
            task.run()
        except WorkflowException as err:
            raise model_error(err) from err
        command.record_event("ExternalTaskCompleted", {"workerId": worker_id, "topic": row.topic_name,
                                                       "variables": variables, "localVariables": local_variables},
                             row.activity_id, task_id)
    runtime.save(command)
    uow.commit()


def _set_on_task(task, variables: dict, local_variables: dict) -> None:
    """The variables a worker sends, on the open task: `local_variables` as its own."""
    task.data.update(variables)
    runtime.shadow(task, local_variables)
    task.data.update(local_variables)
    task.internal_data["locals"] = sorted(set(task.internal_data.get("locals", [])) | set(local_variables))


def _defined_error(task, script_engine, failing: bool) -> dict | None:
    """The first of the task's camunda:errorEventDefinitions (engine/parser.py), in the order
    drawn, whose expression is true over the task's variables, those the worker sent among
    them; None when none is.  As Camunda 7's ExternalTaskEntity: only `true` throws (not a
    number or text), and an expression that fails refuses a completion (nothing changed) but
    not a failure, which goes on as if it were false."""
    for definition in task.task_spec.extensions.get("errorEventDefinitions", ()):
        try:
            value = script_engine.evaluate(task, definition["expression"])
        except WorkflowException as err:
            where = (f"{task.task_spec.bpmn_id}: camunda:errorEventDefinition '{definition['id']}' "
                     f"(errorRef '{definition['errorRef']}')")
            reason = (getattr(err, "message", None) or str(err)).strip().rstrip(".")
            if failing:
                log.warning("%s, evaluated for a worker's failure: %s; taken as false", where, reason)
                continue
            raise ModelError(f"{where}, evaluated as the worker completes the task: {reason}; nothing was changed. "
                             "Its expression sees the task's variables and those the completion sends: send the "
                             "variables it reads, or let it read a missing one as variable('name', default)",
                             activityId=task.task_spec.bpmn_id) from None
        if value is True:
            return definition
    return None


def _throw_defined(command, task, row, worker_id: str, definition: dict, message: str | None,
                   variables: dict) -> None:
    """Throw the BPMN error of the camunda:errorEventDefinition that matched, with the
    variables the worker sent, as a worker's bpmnError would."""
    thrown_by = f" by its camunda:errorEventDefinition '{definition['id']}'"
    caught_by = bpmn_errors.throw(task, definition["code"], message, variables, thrown_by,
                                  f"Draw an error boundary event for the error '{definition['errorRef']}', or "
                                  "change the definition's expression")
    command.record_event("ExternalTaskBpmnError", {"workerId": worker_id, "errorCode": definition["code"],
                                                   "errorMessage": message, "variables": variables,
                                                   "thrownBy": definition["id"], "caughtBy": caught_by},
                         row.activity_id, row.id)


def _apply_result(task, variables: dict, local_variables: dict, script_engine) -> None:
    """Camunda 7: `localVariables` live on the task (visible to output mappings, then gone);
    `variables` reach the process; output mappings are evaluated last and win."""
    runtime.shadow(task, local_variables)
    task.data.update(local_variables)
    task.internal_data["locals"] = sorted(set(task.internal_data.get("locals", [])) | set(local_variables))
    runtime.apply_outputs(task, variables, script_engine)
    for name, value in variables.items():
        task.data.setdefault(name, value)


def failure(uow: UnitOfWork, principal: Principal, task_id: str, worker_id: str, error_message: str | None,
            error_details: str | None, retries: int | None, retry_timeout: int | None,
            variables: dict | None = None, local_variables: dict | None = None) -> None:
    """Report a failure.  `retries` and `retryTimeout` default to 0, as Camunda 7's DTO
    (primitive fields) has them: a failure that names no retries opens an incident."""
    require_worker(principal)
    retries = 0 if retries is None else retries
    if not 0 <= retries <= MAX_INT:
        raise BadRequest(f"retries must be a number from 0 to {MAX_INT}: how many more times workers may try the task")
    if retry_timeout is not None and not 0 <= retry_timeout <= MAX_DURATION_MS:
        raise BadRequest(f"retryTimeout must be between 0 and {MAX_DURATION_MS} milliseconds")
    row = _row_for_update(uow.session, task_id)
    _check_owner(row, worker_id, f"Failure of External Task {task_id} cannot be reported by worker '")
    command, task = _open_task(uow, row, principal)
    if variables or local_variables:
        runtime.receive(command, variables or {}, local_variables or {})
        transient_variables.refuse_inputs(task, variables or {})
        transient_variables.refuse_inputs(task, local_variables or {})
        _set_on_task(task, variables or {}, local_variables or {})
    defined = _defined_error(task, uow.ctx.script_engine, failing=True)
    if defined is not None:
        _throw_defined(command, task, row, worker_id, defined, error_message, variables or {})
        runtime.save(command)
        uow.commit()
        return
    row.error_message, row.error_details = _clip(error_message, 4000), error_details
    row.lock_expiration_time = utcnow() + timedelta(milliseconds=retry_timeout or 0)
    command.record_event("ExternalTaskFailed", {"workerId": worker_id, "errorMessage": error_message,
                                                "retries": retries, "retryTimeout": retry_timeout},
                         row.activity_id, task_id)
    changed = _set_retries_and_manage_incident(uow, row, retries)
    if "incidentId" in changed:
        command.record_event("IncidentCreated", {"incidentId": changed["incidentId"],
                                                 "incidentType": FAILED_EXTERNAL_TASK, "message": row.error_message},
                             row.activity_id, task_id)
    if "resolvedIncidentId" in changed:
        command.record_event("IncidentResolved", {"incidentId": changed["resolvedIncidentId"],
                                                  "incidentType": FAILED_EXTERNAL_TASK, "retries": retries},
                             row.activity_id, task_id)
    if retries > 0 and not retry_timeout:       # fetchable at once: as after PUT .../retries, waiting fetches hear it
        _wake_after_commit(uow, row)
    runtime.save(command)
    uow.commit()


def _set_retries_and_manage_incident(uow: UnitOfWork, row: ExternalTask, retries: int) -> dict:
    """Camunda 7's ExternalTaskEntity.setRetriesAndManageIncidents, for a failure and for
    PUT .../retries alike: retries 0 opens the task's failedExternalTask incident, retries
    above 0 resolve an open one.  Returns `incidentId` (opened) or `resolvedIncidentId`."""
    row.retries = retries
    incident = uow.session.execute(select(Incident).where(Incident.configuration == row.id,
                                                          Incident.incident_type == FAILED_EXTERNAL_TASK)).scalar()
    if retries > 0 and incident is not None:
        uow.session.delete(incident)
        return {"resolvedIncidentId": incident.id}
    if retries == 0 and incident is None:
        return {"incidentId": _open_incident(uow.session, row, utcnow())}
    return {}


def _clip(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[:limit]


def _open_incident(session: Session, row: ExternalTask, now: datetime) -> str | None:
    """Open the task's failedExternalTask incident; None when one is open already."""
    exists = session.execute(select(Incident.id).where(Incident.configuration == row.id,
                                                       Incident.incident_type == FAILED_EXTERNAL_TASK)).first()
    if exists is not None:
        return None
    incident_id = str(uuid.uuid4())
    session.add(Incident(id=incident_id, incident_type=FAILED_EXTERNAL_TASK, incident_timestamp=now,
                         instance_id=row.instance_id, definition_id=row.definition_id,
                         execution_id=row.execution_id, activity_id=row.activity_id, configuration=row.id,
                         message=_clip(row.error_message, 4000), tenant_id=row.tenant_id))
    return incident_id


def bpmn_error(uow: UnitOfWork, principal: Principal, task_id: str, worker_id: str, error_code: str,
               error_message: str | None, variables: dict) -> None:
    """Throw a BPMN error at the task: the error boundary event with that code (on the task
    or an enclosing subprocess) takes over; the task is cancelled."""
    require_worker(principal)
    if not error_code:
        raise BadRequest("errorCode is required: the code of the BPMN error the worker reports")
    row = _row_for_update(uow.session, task_id)
    _check_owner(row, worker_id, f"Bpmn error of External Task {task_id} cannot be reported by worker '")
    command, task = _open_task(uow, row, principal)
    runtime.receive(command, variables)
    caught_by = bpmn_errors.throw(task, error_code, error_message, variables, "",
                                  "Draw an error boundary event with this code, or report a /failure instead")
    command.record_event("ExternalTaskBpmnError", {"workerId": worker_id, "errorCode": error_code,
                                                   "errorMessage": error_message, "variables": variables,
                                                   "caughtBy": caught_by},
                         row.activity_id, task_id)
    runtime.save(command)
    uow.commit()


def extend_lock(uow: UnitOfWork, principal: Principal, task_id: str, worker_id: str, new_duration: int) -> None:
    require_worker(principal)
    if new_duration is None or not 0 < new_duration <= MAX_DURATION_MS:
        raise RestException(f"newDuration must be a positive number of milliseconds, at most {MAX_DURATION_MS}")
    row = _row_for_update(uow.session, task_id)
    _check_owner(row, worker_id, f"The lock of the External Task {task_id} cannot be extended by worker '")
    now = utcnow()
    if row.lock_expiration_time is None or row.lock_expiration_time < now:
        expired = row.lock_expiration_time
        ended = "was released" if expired is None else f"ended at {format_date(expired)}"
        raise RestException(f"Cannot extend a lock that expired: the lock of external task {task_id} {ended}; "
                            "fetch the task again")
    row.lock_expiration_time = now + timedelta(milliseconds=new_duration)
    uow.commit()


def lock(uow: UnitOfWork, principal: Principal, task_id: str, worker_id: str, lock_duration: int) -> None:
    """Lock one task for the worker (Camunda 7.17's POST /external-task/{id}/lock): an
    unlocked task, one whose lock ran out, or the worker's own (the lock starts anew).
    As in Camunda, retries and suspension do not matter: the worker asked for this task."""
    require_worker(principal)
    if not worker_id:
        raise BadRequest("workerId is required: the worker the task is locked for")
    if lock_duration is None or not 0 < lock_duration <= MAX_DURATION_MS:
        raise RestException(f"lockDuration must be a positive number of milliseconds, at most {MAX_DURATION_MS}")
    row = _row_for_update(uow.session, task_id)
    now = utcnow()
    if row.worker_id not in (None, worker_id) and row.lock_expiration_time is not None \
            and row.lock_expiration_time > now:
        raise RestException(f"External Task {task_id} cannot be locked by worker '{worker_id}'. "
                            f"It is locked by worker '{row.worker_id}'.")
    row.worker_id, row.lock_expiration_time = worker_id, now + timedelta(milliseconds=lock_duration)
    uow.commit()


def unlock(uow: UnitOfWork, principal: Principal, task_id: str) -> None:
    require_worker(principal)
    row = _row_for_update(uow.session, task_id)
    row.worker_id, row.lock_expiration_time = None, None
    _wake_after_commit(uow, row)
    uow.commit()


def set_retries(uow: UnitOfWork, principal: Principal, task_id: str, retries: int | None) -> None:
    """An operator restores retries: a positive number resolves the task's incident."""
    require_worker(principal)
    _check_retries(retries)
    _set_task_retries(uow, principal, _row_for_update(uow.session, task_id), retries)
    uow.commit()


def set_retries_of(uow: UnitOfWork, principal: Principal, retries: int | None, task_ids: list | None = None,
                   instance_ids: list | None = None, task_query: "TaskQuery | None" = None) -> int:
    """PUT /external-task/retries (Camunda's synchronous setRetries): every task named, of
    the cases named, or that the query finds, in one transaction, each as PUT
    .../{id}/retries does it.  A task id that does not exist is a 404 and nothing changes,
    as in Camunda; so is selecting no task at all (a 400).  Returns how many were set."""
    require_worker(principal)
    _check_retries(retries)
    selected = set(task_ids or ())
    if instance_ids:
        selected.update(uow.session.execute(select(ExternalTask.id).where(
            ExternalTask.instance_id.in_(instance_ids))).scalars())
    if task_query is not None:
        selected.update(uow.session.execute(_filtered(task_query, utcnow()).with_only_columns(ExternalTask.id))
                        .scalars())
    if not selected:
        raise BadRequest("externalTaskIds is empty: no external task was selected by externalTaskIds, "
                         "processInstanceIds or externalTaskQuery; nothing was changed")
    for task_id in sorted(selected):             # one order for every batch: concurrent ones do not deadlock
        _set_task_retries(uow, principal, _row_for_update(uow.session, task_id), retries)
    uow.commit()
    return len(selected)


def _check_retries(retries: int | None) -> None:
    if retries is None:
        raise BadRequest("The number of retries cannot be null.")
    if not 0 <= retries <= MAX_INT:
        raise BadRequest(f"retries must be between 0 and {MAX_INT}")


def _set_task_retries(uow: UnitOfWork, principal: Principal, row: ExternalTask, retries: int) -> None:
    record = runtime.load_record(uow.session, row.instance_id)
    payload = {"retries": retries, "previousRetries": row.retries}
    payload.update(_set_retries_and_manage_incident(uow, row, retries))
    if "resolvedIncidentId" in payload:
        _wake_after_commit(uow, row)
    runtime.bump(uow, record, principal, "ExternalTaskRetriesSet", payload, row.activity_id, row.id)


def _wake_after_commit(uow: UnitOfWork, row: ExternalTask) -> None:
    _announce_after_commit(uow, [{name: getattr(row, name) for name in _TASK_INFO}])


# --- queries --------------------------------------------------------------------------

@dataclass
class TaskQuery:
    """Camunda 7.22's external-task query (and two of this server's): every filter given must hold."""
    external_task_id: str | None = None
    external_task_ids: list | None = None
    topic_name: str | None = None
    worker_id: str | None = None
    locked: bool = False
    not_locked: bool = False
    with_retries_left: bool = False
    no_retries_left: bool = False
    lock_expiration_after: datetime | None = None       # naive UTC; both bounds exclusive, as in Camunda
    lock_expiration_before: datetime | None = None
    activity_id: str | None = None
    activity_ids: list | None = None
    execution_id: str | None = None
    process_instance_id: str | None = None
    process_instance_ids: list | None = None
    process_definition_id: str | None = None
    process_definition_key: str | None = None
    business_key: str | None = None
    tenant_ids: list | None = None
    suspended: bool | None = None
    priority_min: int | None = None
    priority_max: int | None = None
    sorting: tuple = ()                                 # (SORT_FIELDS key, "asc" | "desc") pairs, in order
    first_result: int = 0
    max_results: int | None = None


SORT_FIELDS = {"id": ExternalTask.id, "lockExpirationTime": ExternalTask.lock_expiration_time,
               "processInstanceId": ExternalTask.instance_id, "processDefinitionId": ExternalTask.definition_id,
               "processDefinitionKey": ExternalTask.definition_key, "tenantId": ExternalTask.tenant_id,
               "taskPriority": ExternalTask.priority, "createTime": ExternalTask.created}


def _filtered(q: TaskQuery, now: datetime):
    stmt = select(ExternalTask)
    equal = ((q.external_task_id, ExternalTask.id), (q.topic_name, ExternalTask.topic_name),
             (q.worker_id, ExternalTask.worker_id), (q.activity_id, ExternalTask.activity_id),
             (q.execution_id, ExternalTask.execution_id), (q.process_instance_id, ExternalTask.instance_id),
             (q.process_definition_id, ExternalTask.definition_id),
             (q.process_definition_key, ExternalTask.definition_key), (q.business_key, ExternalTask.business_key))
    for value, column in equal:
        if value is not None:
            stmt = stmt.where(column == value)
    within = ((q.external_task_ids, ExternalTask.id), (q.activity_ids, ExternalTask.activity_id),
              (q.process_instance_ids, ExternalTask.instance_id), (q.tenant_ids, ExternalTask.tenant_id))
    for values, column in within:
        if values:
            stmt = stmt.where(column.in_(values))
    if q.locked:
        stmt = stmt.where(ExternalTask.lock_expiration_time > now)
    if q.not_locked:
        stmt = stmt.where(or_(ExternalTask.lock_expiration_time.is_(None), ExternalTask.lock_expiration_time <= now))
    if q.with_retries_left:
        stmt = stmt.where(or_(ExternalTask.retries.is_(None), ExternalTask.retries > 0))
    if q.no_retries_left:
        stmt = stmt.where(ExternalTask.retries == 0)
    if q.lock_expiration_after is not None:
        stmt = stmt.where(ExternalTask.lock_expiration_time > q.lock_expiration_after)
    if q.lock_expiration_before is not None:
        stmt = stmt.where(ExternalTask.lock_expiration_time < q.lock_expiration_before)
    if q.suspended is not None:
        stmt = stmt.where(ExternalTask.suspended.is_(q.suspended))
    # Camunda's bounds are longs: bound as such, or PostgreSQL would cast one beyond int to the column's int
    if q.priority_min is not None:
        stmt = stmt.where(ExternalTask.priority >= literal(q.priority_min, BigInteger))
    if q.priority_max is not None:
        stmt = stmt.where(ExternalTask.priority <= literal(q.priority_max, BigInteger))
    return stmt


def query(session: Session, principal: Principal, q: TaskQuery) -> list[ExternalTask]:
    require_worker(principal)
    stmt = _filtered(q, utcnow())
    order = []
    for sort_by, sort_order in q.sorting:
        column = SORT_FIELDS.get(sort_by)
        if column is None:
            raise BadRequest(f"sortBy {sort_by!r} is not supported; use one of {', '.join(SORT_FIELDS)}")
        order.append(column.desc().nulls_first() if sort_order == "desc" else column.asc().nulls_last())
    stmt = stmt.order_by(*(order or [ExternalTask.created]), ExternalTask.id)
    stmt = stmt.offset(q.first_result or 0)
    if q.max_results is not None:
        stmt = stmt.limit(q.max_results)
    return list(session.execute(stmt).scalars())


def count(session: Session, principal: Principal, q: TaskQuery) -> int:
    require_worker(principal)
    return session.execute(select(func.count()).select_from(_filtered(q, utcnow()).subquery())).scalar()


def get(session: Session, principal: Principal, task_id: str) -> ExternalTask:
    require_worker(principal)
    row = session.get(ExternalTask, task_id)
    if row is None:
        raise ExternalTaskNotFound(f"External task with id {task_id} does not exist")
    return row


def error_details(session: Session, principal: Principal, task_id: str) -> str | None:
    return get(session, principal, task_id).error_details


def topic_names(session: Session, principal: Principal, with_locked: bool = False, with_unlocked: bool = False,
                with_retries_left: bool = False) -> list[str]:
    require_worker(principal)
    now = utcnow()
    stmt = select(ExternalTask.topic_name).distinct()
    if with_locked:
        stmt = stmt.where(ExternalTask.lock_expiration_time > now)
    if with_unlocked:
        stmt = stmt.where(or_(ExternalTask.lock_expiration_time.is_(None), ExternalTask.lock_expiration_time <= now))
    if with_retries_left:
        stmt = stmt.where(or_(ExternalTask.retries.is_(None), ExternalTask.retries > 0))
    return sorted(session.execute(stmt).scalars())
