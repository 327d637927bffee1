"""The timer scheduler: APScheduler in each server process.

It sleeps until the earliest due timer (not a fixed poll), then fires every due timer,
each in its own transaction through the ordinary instance command.  Rows are claimed
with `FOR UPDATE SKIP LOCKED` (PostgreSQL), so several server processes on one
database fire each timer exactly once; SQLite's single writer gives the same there.
A timer that fell due while the server was down is simply due at start-up.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import delete, func, select, update

from . import runtime, timers
from .clock import clock, utcnow
from .errors import BadRequest, Conflict, EngineError, NotFound
from .identity import SYSTEM
from .models import Incident, ProcessDefinition, Timer

log = logging.getLogger(__name__)

POLL_SECONDS = 30.0          # look again at least this often (timers made by other processes)
MAX_BACKOFF = timedelta(hours=1)
JOB_ID = "fire-timers"
FAILED_JOB = "failedJob"     # Camunda's incident type for a failed job; here, a timer


def fire_one(uow, timer_id: str) -> bool:
    """Fire one claimed timer; False if it was stale (instance gone or ended)."""
    session = uow.session
    timer = session.get(Timer, timer_id)
    if timer.instance_id is None:
        return _start_by_timer(uow, timer)
    try:
        command = runtime.open_instance(uow, timer.instance_id, SYSTEM, lock="skip")
    except (NotFound, BadRequest):
        session.execute(delete(Timer).where(Timer.id == timer_id))
        return False
    command.workflow.refresh_timers()
    command.record_event("TimerFired", {"due": timer.due_at.isoformat() + "Z", "kind": timer.kind},
                         timer.activity_id, timer_id)
    runtime.save(command)
    session.execute(delete(Incident).where(Incident.configuration == timer_id, Incident.incident_type == FAILED_JOB))
    return True


def _start_by_timer(uow, timer: Timer) -> bool:
    """A timer start event: start a case of that definition, then plan the next cycle."""
    session = uow.session
    definition = session.get(ProcessDefinition, timer.definition_id)
    if definition is None:
        session.execute(delete(Timer).where(Timer.id == timer.id))
        return False

    def fired(workflow) -> None:         # the start event's own timer has run out: this is it
        for task in workflow.get_tasks(spec_name=timer.activity_id):
            task.internal_data["event_value"] = {"cycles": 1, "next": "2000-01-01T00:00:00+00:00",
                                                 "duration": 0} if timer.kind == "timeCycle" \
                else "2000-01-01T00:00:00+00:00"

    record, _ = runtime.start_instance(uow, definition, {}, None, SYSTEM, start_form_check=False,
                                       prepare=fired, start_activity=timer.activity_id)
    due, details = timers.next_start_due(timer)
    if due is None:
        session.execute(delete(Timer).where(Timer.id == timer.id))
    else:
        session.execute(update(Timer).where(Timer.id == timer.id).values(due_at=due, details=details,
                                                                         failures=0, last_error=None))
        ctx = uow.ctx
        uow.after_commit.append(lambda: ctx.timer_scheduled(due))
    log.info("timer start event %s of %s started instance %s", timer.activity_id, definition.id, record.id)
    return True


def _claim(session, now: datetime, skip: set):
    stmt = (select(Timer.id).where(Timer.due_at < now).order_by(Timer.due_at).limit(1)
            .with_for_update(skip_locked=True))
    if skip:
        stmt = stmt.where(Timer.id.not_in(skip))
    return session.execute(stmt).scalar()


def fire_due(engine, limit: int | None = None) -> int:
    """Fire every timer due now; returns how many fired."""
    fired, skip = 0, set()
    while limit is None or fired < limit:
        with engine.uow() as uow:
            timer_id = _claim(uow.session, utcnow(), skip)
            if timer_id is None:
                return fired
            try:
                if fire_one(uow, timer_id):
                    fired += 1
                uow.commit()
            except Conflict:
                skip.add(timer_id)        # the instance moved under us: try again next round
            except EngineError as err:
                skip.add(timer_id)
                uow.session.rollback()        # release the write lock first: SQLite has one writer
                _record_failure(engine, timer_id, err.message)
            except Exception as err:          # noqa: BLE001 - one timer must not stop all the others
                log.exception("timer %s failed", timer_id)
                skip.add(timer_id)
                uow.session.rollback()
                _record_failure(engine, timer_id, f"internal error: {type(err).__name__}: {err}")
    return fired


def _record_failure(engine, timer_id: str, message: str) -> None:
    """The model failed when the timer fired: keep the timer, retry later with backoff."""
    log.warning("timer %s failed: %s", timer_id, message)
    with engine.uow() as uow:
        timer = uow.session.get(Timer, timer_id)
        if timer is None:
            return
        delay = min(timedelta(minutes=2 ** min(timer.failures, 6)), MAX_BACKOFF)
        uow.session.execute(update(Timer).where(Timer.id == timer_id).values(
            failures=timer.failures + 1, last_error=message[:4000], due_at=utcnow() + delay))
        _open_incident(uow.session, timer, message)
        uow.commit()


def _open_incident(session, timer: Timer, message: str) -> None:
    """A case's timer failed (a refused expression, a model error): an operator sees it under
    /incident until the timer fires successfully; the case itself is unchanged."""
    if timer.instance_id is None or session.execute(select(Incident.id).where(
            Incident.configuration == timer.id, Incident.incident_type == FAILED_JOB)).first() is not None:
        return
    session.add(Incident(id=str(uuid.uuid4()), incident_type=FAILED_JOB, incident_timestamp=utcnow(),
                         instance_id=timer.instance_id, definition_id=timer.definition_id,
                         execution_id=timer.instance_id, activity_id=timer.activity_id, configuration=timer.id,
                         message=message[:4000]))


def next_due(engine) -> datetime | None:
    with engine.uow(write=False) as uow:
        return uow.session.execute(select(func.min(Timer.due_at))).scalar()


class TimerScheduler:
    def __init__(self, engine) -> None:
        self.engine = engine
        self._scheduler = BackgroundScheduler(timezone=timezone.utc, job_defaults={
            "coalesce": True, "max_instances": 3, "misfire_grace_time": None})
        self._lock = threading.Lock()
        self._planned: float | None = None
        self._unsubscribe = None
        self._stopped = False

    def start(self) -> None:
        # one long-lived job: an interval trigger is the safety poll, and `_plan` pulls its
        # next run forward (a date job re-added from inside itself races APScheduler's removal)
        self._scheduler.add_job(self._run, "interval", seconds=POLL_SECONDS, id=JOB_ID,
                                next_run_time=datetime.now(timezone.utc))
        self._scheduler.start()
        self.engine.timer_listeners.append(self.wake_at)
        self._unsubscribe = clock.subscribe(self.wake_now)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        if self._unsubscribe:
            self._unsubscribe()
        if self.wake_at in self.engine.timer_listeners:
            self.engine.timer_listeners.remove(self.wake_at)
        self._scheduler.shutdown(wait=True)

    def wake_now(self) -> None:
        self._plan(time.time(), force=True)

    def wake_at(self, due: datetime) -> None:
        """`due` is naive UTC on the engine clock; plan in real time."""
        delay = (due.replace(tzinfo=timezone.utc) - clock.now()).total_seconds()
        self._plan(time.time() + max(delay, 0.0))

    def _plan(self, at: float, force: bool = False) -> None:
        at = min(at, time.time() + POLL_SECONDS)       # never postpone the safety poll
        with self._lock:
            if self._stopped or (not force and self._planned is not None and self._planned <= at):
                return
            self._planned = at
        # modify_job takes APScheduler's own locks: never call it while holding ours
        try:
            self._scheduler.modify_job(JOB_ID, next_run_time=datetime.fromtimestamp(at, timezone.utc))
        except (SchedulerNotRunningError, JobLookupError):
            pass

    def _run(self) -> None:
        with self._lock:
            self._planned = None
            if self._stopped:
                return
        try:
            fire_due(self.engine)
            due = next_due(self.engine)
        except Exception:                      # noqa: BLE001 - the scheduler must survive anything
            log.exception("firing timers failed; retrying shortly")
            self._plan(time.time() + 1.0)
            return
        if due is not None:
            delay = (due.replace(tzinfo=timezone.utc) - clock.now()).total_seconds()
            if delay < POLL_SECONDS:
                self._plan(time.time() + max(delay, 0.0))
