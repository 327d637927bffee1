"""Legal clocks (法定时限): a time limit per case and stage, paused while the applicant
corrects materials (补正), with yellow/red thresholds and tacit approval (超时默许).

Designers drive the clocks with `camunda:properties` on flow nodes:

    legalClock.start = review      start clock "review" when this element is entered
      legalClock.limit = 3wd       3 working days (also "20", "4h", "150min", "30d", "0.5wd",
                                   or an expression such as ${limits["review"]})
      legalClock.kind = legal      or "promised" (承诺时限)
      legalClock.calendar = CN     a calendar id
      legalClock.yellow = 0.8      share of the limit after which the clock is yellow
      legalClock.department = ...  who answers for it (default: the task's candidate groups)
    legalClock.pause = review      pause while this element is open (the correction task)
    legalClock.stop = review       stop when this element completes (the decision)
      legalClock.outcome = withdrawn   instead of "decided" (a withdrawal, a revocation), or an
                                   expression giving the word (the case's result)
    legalClock.event = tacitApproval | yellow | red    on a boundary timer: record what
      legalClock.stage = review    happened when it fired; tacit approval also stops the
      tacitApproval.variable = x   clock and sets variable x (default value "approve")
    statistics.mark = commitment   count the case as a commitment (告知承诺) case when this
                                   element is entered (also: deficiency for 容缺受理)

Their literal values, and the clocks stops and timers name, are checked at deploy
(engine/legal_properties.py).

Timers use `legal_deadline("review")` and `legal_warning("review")`: after every command
the engine re-evaluates waiting timers whose expression uses them, so a pause moves the
tacit-approval timer and a resume brings it back, later by the paused working time.

A command reads its case's clock rows once, as plain objects (`Clock`), and writes the
ones it started or changed, with the events it recorded, when it saves (`write`), in its
transaction: as ORM objects, a start of five clocks cost ~4 ms more in flushes and
calendar lookups (bench/bench_overhead.py, the review with legal clocks).
"""
from __future__ import annotations

import math
import re
import uuid
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimeDateEventDefinition
from sqlalchemy import bindparam, insert, select, update

from .calendar import MAX_DAYS, WorkingCalendar
from .clock import utcnow
from .errors import BadRequest, ModelError, NotFound
from .fastsql import Statement
from .models import LegalClock, LegalEvent, UserTask
from .specs import OPEN
from .task_history import copy_to_history
from .timers import timer_definition
from .variables import display_zone

FAR_FUTURE = "9999-12-30T00:00:00+00:00"    # a paused (or not yet started) clock's deadline
UNITS = ("workdays", "workhours", "days")
KINDS = ("legal", "promised")
OUTCOME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")      # a stopped clock's outcome: legal_clock.outcome
_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_UNIT_WORDS = {
    "": "workdays", "wd": "workdays", "workday": "workdays", "workdays": "workdays",
    "h": "workhours", "wh": "workhours", "workhour": "workhours", "workhours": "workhours",
    "min": "workminutes", "m": "workminutes", "minutes": "workminutes",
    "d": "days", "day": "days", "days": "days",
}

current: ContextVar = ContextVar("legal_clock_command", default=None)
_TASKS, _CLOCKS = UserTask.__table__, LegalClock.__table__
_LOAD_CLOCKS = Statement(select(_CLOCKS).where(_CLOCKS.c.instance_id == bindparam("instance_id")))
_INSERT_CLOCKS, _INSERT_EVENTS = Statement(insert(_CLOCKS)), Statement(insert(LegalEvent.__table__))
_UPDATE_CLOCKS = Statement(update(_CLOCKS).where(_CLOCKS.c.id == bindparam("row_id")))    # SET from the keys
_ASSIGNEE = Statement(select(_TASKS.c.assignee).where(_TASKS.c.id == bindparam("task_id")))
_SET_DUE = Statement(update(_TASKS).where(_TASKS.c.id == bindparam("task_id")).values(due=bindparam("due")))
# the running clock with the earliest deadline a task carries (its `due` unless set by hand)
_CARRIED = Statement(select(_CLOCKS.c.stage, _CLOCKS.c.deadline_at).where(
    _CLOCKS.c.instance_id == bindparam("instance_id"), _CLOCKS.c.task_id == bindparam("task_id"),
    _CLOCKS.c.stopped_at.is_(None), _CLOCKS.c.deadline_at.is_not(None)).order_by(_CLOCKS.c.deadline_at).limit(1))


# --- limits and deadlines ------------------------------------------------------------

def parse_limit(value) -> tuple[float, str]:
    """"3", "3wd" -> (3, workdays); "4h" -> (4, workhours); "150min" -> (2.5, workhours);
    "30d" -> (30, days).  Refuses negative, zero and absurd limits."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"a time limit is needed, e.g. \"3wd\", \"4h\" or \"30d\"; got {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), "workdays"
    else:
        match = _LIMIT.match(str(value))
        unit = _UNIT_WORDS.get(match.group(2).lower()) if match else None
        if unit is None:
            raise ValueError(f"time limit {value!r} is not understood; write e.g. \"3wd\" (working days), "
                             "\"4h\" or \"150min\" (working hours) or \"30d\" (natural days)")
        number = float(match.group(1))
    if unit == "workminutes":
        number, unit = number / 60, "workhours"
    ceiling = {"workdays": MAX_DAYS, "days": MAX_DAYS, "workhours": MAX_DAYS * 8}[unit]
    if not math.isfinite(number) or number <= 0 or number > ceiling:
        raise ValueError(f"time limit {value!r} must be more than 0 and at most {ceiling} {unit}")
    if unit == "days" and number != int(number):
        raise ValueError(f"time limit {value!r}: natural days must be a whole number")
    return number, unit


def _aware(naive_utc: datetime) -> datetime:
    return naive_utc.replace(tzinfo=timezone.utc)


def _naive(aware: datetime) -> datetime:
    return aware.astimezone(timezone.utc).replace(tzinfo=None)


def compute(row: LegalClock | Clock, cal: WorkingCalendar) -> tuple[datetime, datetime, bool]:
    """(deadline, warning time, provisional) as naive UTC: start + limit, then every
    closed pause added back in the clock's own unit (paused working days for a
    working-day limit, paused office time for hours, paused time for natural days).  A
    natural-day limit whose last day is a day off ends on the next working day.  The
    warning is when the clock has used its yellow share of the limit, counted as the
    deadline is (from the end of the day of acceptance, `counting_start`), later by the
    pauses that began before it."""
    start = _aware(row.started_at)
    pauses = _closed_pauses(row)
    value, unit, share = row.limit_value, row.limit_unit, row.yellow_share
    if unit == "workdays" and value == int(value):
        base = cal.add_working_days(start, int(value))
        paused = sum(cal.working_days_between(a, b) for a, b in pauses)
        end = cal.add_working_days(base.date, paused) if paused else base
        warning = cal.add_working_hours(counting_start(row, cal), value * share * cal.office_hours.day_hours).deadline
        for a, b in pauses:
            if a < warning:
                warning = _later_working_days(cal, warning, cal.working_days_between(a, b))
    elif unit in ("workdays", "workhours"):
        hours = value * cal.office_hours.day_hours if unit == "workdays" else value
        base = cal.add_working_hours(start, hours)
        paused = sum(cal.working_seconds_between(a, b) for a, b in pauses)
        end = cal.add_working_hours(base.deadline, paused / 3600) if paused else base
        warning = cal.add_working_hours(start, hours * share).deadline
        for a, b in pauses:
            if a < warning:
                warning = cal.add_working_hours(warning, cal.working_seconds_between(a, b) / 3600).deadline
    else:
        base = cal.add_natural_days(start, int(value))
        # 民法典 第203条: a period whose last day is a statutory day off ends on the day after it
        end = cal.past_days_off(base.deadline + sum(((b - a) for a, b in pauses), timedelta()))
        counted = counting_start(row, cal)
        warning = counted + (base.deadline - counted) * share
        for a, b in pauses:
            if a < warning:
                warning += b - a
    # legal times are kept to the second (the clock keeps running while a command works)
    return (_naive(end.deadline).replace(microsecond=0), _naive(warning).replace(microsecond=0),
            base.provisional or end.provisional)


def counting_start(row: LegalClock | Clock, cal: WorkingCalendar) -> datetime:
    """Where the clock's limit begins to run: the end of the day of acceptance, which is not
    counted (民法典 第201条), for a limit in whole working days or natural days; the instant
    itself for one in office time (hours, a fraction of a working day)."""
    start = _aware(row.started_at)
    whole_days = row.limit_unit == "days" or (row.limit_unit == "workdays" and row.limit_value == int(row.limit_value))
    return cal.day_after(start) if whole_days else start


def _closed_pauses(row: LegalClock | Clock) -> list[tuple[datetime, datetime]]:
    return [(_aware(datetime.fromisoformat(p["from"])), _aware(datetime.fromisoformat(p["to"])))
            for p in row.pauses or [] if p.get("to")]


def _later_working_days(cal: WorkingCalendar, moment: datetime, days: int) -> datetime:
    """The same local time of day `days` working days after `moment`'s day."""
    if not days:
        return moment
    local = moment.astimezone(cal.tz)
    return datetime.combine(cal.add_working_days(local, days).date, local.time(), tzinfo=cal.tz)


def working_days_used(row: LegalClock | Clock, cal: WorkingCalendar, end: datetime) -> float:
    """How much of its limit the clock had used at `end` (naive UTC; its stop), in working
    days, counted as `compute` counts the deadline, so a clock stopped at its deadline used
    exactly its limit: a limit in whole working days or in natural days from the end of
    the day of acceptance (not counted), one in office time from the instant; less the
    paused time `compute` adds back (whole working days for whole working days)."""
    start, end = _aware(row.started_at), _aware(end)
    pauses = _closed_pauses(row)
    day = cal.office_hours.day_hours * 3600
    value, unit = row.limit_value, row.limit_unit
    if unit == "workdays" and value == int(value):
        used = cal.working_days_after(start, end) - sum(cal.working_days_between(a, b) for a, b in pauses)
    else:
        used = cal.working_days_after(start, end) if unit == "days" else cal.working_seconds_between(start, end) / day
        used -= sum(cal.working_seconds_between(a, b) for a, b in pauses) / day
    return max(used, 0.0)


def status(row: LegalClock | Clock, now: datetime) -> str:
    """green | yellow | red, judged at `now` (naive UTC) or at the stop."""
    at = row.stopped_at or now
    if row.deadline_at is None:            # paused: as it stood when paused, by the warning time it had
        last = row.warning_at
        return "yellow" if last and (row.paused_since or at) >= last else "green"
    if at > row.deadline_at:
        return "red"
    if row.warning_at and at >= row.warning_at:
        return "yellow"
    return "green"


def remaining(row: LegalClock | Clock, cal: WorkingCalendar, now: datetime) -> dict:
    """What is left of a running clock's limit at `now` (naive UTC), counted as the deadline
    is: on the day of acceptance, the whole limit (that day is not counted)."""
    if row.deadline_at is None or row.stopped_at is not None:
        return {}
    since = max(_aware(now), counting_start(row, cal))
    if row.limit_unit == "days":
        return {"remainingSeconds": int((_aware(row.deadline_at) - since).total_seconds())}
    if now >= row.deadline_at:
        return {"remainingWorkingDays": 0, "remainingWorkingSeconds": 0}
    return {"remainingWorkingDays": cal.working_days_between(_aware(now), _aware(row.deadline_at)),
            "remainingWorkingSeconds": int(cal.working_seconds_between(since, _aware(row.deadline_at)))}


# --- the clocks of one command ---------------------------------------------------------

def properties(spec) -> dict:
    return (getattr(spec, "extensions", None) or {}).get("properties", {}) or {}


def stage_names(value: str | None) -> list[str]:
    """The stage names of legalClock.start, .pause or .stop (or the marks of statistics.mark):
    a list separated by commas."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def scope_of(workflow) -> str:
    parent = getattr(workflow, "parent_task_id", None)
    return str(parent) if parent is not None else ""


def scopes_up(workflow) -> list[str]:
    """This (sub)process's scope and every enclosing one, innermost first."""
    scopes, top = [], workflow.top_workflow
    while True:
        scopes.append(scope_of(workflow))
        parent_id = getattr(workflow, "parent_task_id", None)
        if parent_id is None:
            return scopes
        parent = top.get_task_from_id(parent_id)
        workflow = parent.workflow


class Clock(SimpleNamespace):
    """A legal_clock row while a command runs: its columns as attributes."""


class ClockSet:
    """The legal clocks of one instance while a command runs."""

    def __init__(self, command) -> None:
        self.command = command
        self._rows: dict[tuple[str, str], Clock] | None = None
        self._stored: dict[str, dict] = {}      # clock id -> its columns as read or last written
        self.events: list[dict] = []            # legal_event rows to write
        self._calendars: dict[str, WorkingCalendar] = {}
        self.dirty = False

    @property
    def rows(self) -> dict:
        if self._rows is None:
            found = [Clock(**r._asdict()) for r in _LOAD_CLOCKS.execute(
                self.command.session, {"instance_id": self.command.record.id})]
            self._rows = {(r.scope, r.stage): r for r in found}
            self._stored = {r.id: dict(vars(r)) for r in found}
        return self._rows

    def write(self) -> None:
        """Store the clocks started or changed and the events recorded since the last
        write; then the `due` of each open user task whose clock moved or passed to it,
        the earliest of its running clocks' deadlines (a clock started now: its task,
        activated in this command, carries it, task_due)."""
        session, inserts, updates, moved = self.command.session, [], [], []
        for row in (self._rows or {}).values():
            columns = vars(row)
            stored = self._stored.get(row.id)
            if stored is None:
                inserts.append(dict(columns))
            elif stored != columns:
                updates.append({**{k: v for k, v in columns.items() if k != "id"}, "row_id": row.id})
                if row.task_id and row.stopped_at is None and \
                        (stored["task_id"], stored["deadline_at"]) != (row.task_id, row.deadline_at):
                    moved.append(row.task_id)
            self._stored[row.id] = dict(columns)
        _INSERT_CLOCKS.executemany(session, inserts)
        _UPDATE_CLOCKS.executemany(session, updates)
        _INSERT_EVENTS.executemany(session, self.events)
        dues = [{"task_id": task_id, "due": _earliest(self._rows, task_id)} for task_id in dict.fromkeys(moved)]
        _SET_DUE.executemany(session, dues)
        copy_to_history(session, dues)
        self.events = []

    def calendar(self, calendar_id: str) -> WorkingCalendar:
        """Checked against the database once per command (five clocks started by one
        step looked it up five times)."""
        found = self._calendars.get(calendar_id)
        if found is None:
            found = self._calendars[calendar_id] = self.command.uow.ctx.calendars.get(self.command.session,
                                                                                     calendar_id)
        return found

    def find(self, workflow, stage: str) -> Clock | None:
        for scope in scopes_up(workflow):
            row = self.rows.get((scope, stage))
            if row is not None:
                return row
        return None

    # --- lifecycle ---

    def start(self, scope: str, stage: str, limit, kind="legal", calendar_id=None, yellow=0.8,
              department=None, activity_id=None, task_id=None, now=None) -> Clock:
        if not stage or len(stage) > 128:
            raise BadRequest("a legal clock needs a stage name of 1 to 128 characters")
        if (scope, stage) in self.rows and self.rows[(scope, stage)].stopped_at is None:
            return self.rows[(scope, stage)]
        value, unit = parse_limit(limit)
        if kind not in KINDS:
            raise BadRequest(f"legal clock kind must be one of {', '.join(KINDS)}, not {kind!r}")
        yellow = float(yellow)
        if not 0 < yellow <= 1:
            raise BadRequest(f"legalClock.yellow must be a share between 0 and 1, not {yellow}")
        record = self.command.record
        row = self.rows.get((scope, stage))
        if row is None:
            row = Clock(**dict.fromkeys(_CLOCKS.c.keys()))
            row.id, row.instance_id, row.definition_key = str(uuid.uuid4()), record.id, record.definition_key
            row.business_key, row.scope, row.stage = record.business_key, scope, stage
            self.rows[(scope, stage)] = row
        row.kind, row.limit_value, row.limit_unit = kind, value, unit
        row.calendar_id = calendar_id or "CN"
        row.yellow_share, row.department = yellow, department
        row.activity_id, row.task_id = activity_id, task_id
        row.started_at, row.pauses, row.paused_since = (now or utcnow()).replace(microsecond=0), [], None
        row.stopped_at, row.outcome = None, None
        self._recompute(row)
        self.command.record_event("LegalClockStarted", {"stage": stage, "limit": f"{value:g} {unit}", "kind": kind,
                                                        "deadline": row.deadline_at.isoformat() + "Z"}, activity_id)
        return row

    def pause(self, row: Clock, reason: str | None, now=None) -> None:
        if row.stopped_at is not None or row.paused_since is not None:
            return
        row.paused_since = (now or utcnow()).replace(microsecond=0)
        row.pauses = [*(row.pauses or []), {"from": row.paused_since.isoformat(), "to": None, "reason": reason}]
        row.deadline_at = None
        self.dirty = True
        self.command.record_event("LegalClockPaused", {"stage": row.stage, "reason": reason})

    def resume(self, row: Clock, now=None) -> None:
        if row.paused_since is None:
            return
        now = (now or utcnow()).replace(microsecond=0)
        pauses = list(row.pauses or [])
        if pauses and pauses[-1].get("to") is None:
            pauses[-1] = {**pauses[-1], "to": now.isoformat()}
        row.pauses = pauses                  # a new list: write() compares it with the stored one
        row.paused_since = None
        self._recompute(row)
        self.command.record_event("LegalClockResumed", {"stage": row.stage,
                                                        "deadline": row.deadline_at.isoformat() + "Z"})

    def stop(self, row: Clock, outcome: str, activity_id=None, department=None, assignee=None,
             now=None) -> None:
        if row.stopped_at is not None:
            return
        now = now or utcnow()
        if row.paused_since is not None:
            self.resume(row, now)
        row.stopped_at, row.outcome = now, outcome
        self.dirty = True
        if outcome == "decided":
            kind = "overdue_decided" if row.deadline_at and now > row.deadline_at else "decided"
            self.event(row, kind, activity_id, department, assignee, now)

    def event(self, row: Clock | None, kind: str, activity_id=None, department=None, assignee=None,
              now=None, **details) -> None:
        record = self.command.record
        self.events.append(dict(
            instance_id=record.id, definition_key=record.definition_key, clock_id=row.id if row else None,
            stage=row.stage if row else None, kind=kind, activity_id=activity_id,
            department=department or (row.department if row else None), assignee=assignee,
            at=now or utcnow(), details=details))
        self.command.record_event(f"Legal:{kind}", {"stage": row.stage if row else None,
                                                   "department": department or (row.department if row else None),
                                                   "assignee": assignee, **details}, activity_id)

    def recompute_all(self, calendar_id: str | None = None) -> int:
        count = 0
        for row in self.rows.values():
            if row.stopped_at is None and row.paused_since is None and calendar_id in (None, row.calendar_id):
                self._recompute(row)
                count += 1
        return count

    def _recompute(self, row: Clock) -> None:
        try:
            row.deadline_at, row.warning_at, row.provisional = compute(row, self.calendar(row.calendar_id))
        except ValueError as err:
            raise BadRequest(f"legal clock '{row.stage}': {err}") from err
        self.dirty = True


def clocks(command) -> ClockSet:
    if command.legal is None:
        command.legal = ClockSet(command)
    return command.legal


# --- model hooks (connected to every parsed spec with legalClock properties) -----------

def _evaluate(task, value):
    """A legalClock property's value, or the task's candidate groups, as Camunda 7 reads an
    attribute (`${expr}`, `dept_${region}`, plain text): the value task_facts gives them."""
    if isinstance(value, str):
        return task.workflow.script_engine.evaluate_text(task, value)
    return value


def _department_of(task, props) -> str | None:
    if props.get("legalClock.department"):
        return str(_evaluate(task, props["legalClock.department"]))
    groups = (getattr(task.task_spec, "extensions", None) or {}).get("candidateGroups")
    if groups:
        value = _evaluate(task, groups)
        return ",".join(value) if isinstance(value, (list, tuple)) else str(value)
    return None


def on_entered(workflow, task) -> None:
    command = current.get()
    if command is None or task.internal_data.get("legal_entered"):
        return
    task.internal_data["legal_entered"] = True
    props = properties(task.task_spec)
    cs, now = clocks(command), utcnow()
    for stage in stage_names(props.get("legalClock.start")):
        try:
            cs.start(scope_of(task.workflow), stage, _evaluate(task, props.get("legalClock.limit")),
                     kind=props.get("legalClock.kind", "legal"), calendar_id=props.get("legalClock.calendar"),
                     yellow=props.get("legalClock.yellow", 0.8), department=_department_of(task, props),
                     activity_id=task.task_spec.bpmn_id, task_id=str(task.id), now=now)
        except (ValueError, BadRequest, NotFound) as err:
            raise ModelError(f"{task.task_spec.bpmn_id}: legalClock.start {stage!r}: "
                             f"{getattr(err, 'message', err)}", activityId=task.task_spec.bpmn_id) from err
    for stage in stage_names(props.get("legalClock.pause")):
        row = cs.find(task.workflow, stage)
        if row is not None:
            cs.pause(row, task.task_spec.bpmn_name or task.task_spec.bpmn_id, now)
    for mark in stage_names(props.get("statistics.mark")):        # e.g. commitment (告知承诺), deficiency (容缺)
        cs.event(None, "mark", task.task_spec.bpmn_id, _department_of(task, props), now=now, mark=mark)


def on_finished(workflow, task) -> None:
    command = current.get()
    if command is None:
        return
    on_entered(workflow, task)
    props = properties(task.task_spec)
    cs, now = clocks(command), utcnow()
    for stage in stage_names(props.get("legalClock.pause")):
        row = cs.find(task.workflow, stage)
        if row is not None:
            cs.resume(row, now)
    stops = [row for row in (cs.find(task.workflow, stage) for stage in stage_names(props.get("legalClock.stop")))
             if row is not None]
    if stops:
        outcome = _outcome(task, props)
        for row in stops:
            cs.stop(row, outcome, task.task_spec.bpmn_id, assignee=_assignee(command, task), now=now)
    event = props.get("legalClock.event")
    if event:
        _timer_event(command, cs, task, props, event, now)


def _outcome(task, props) -> str:
    """How the stop ends the clock: `decided` unless legalClock.outcome (a word, or an
    expression giving one, as the case's result) says otherwise; a withdrawal or a
    revocation ends it without a decision, not counted as decided."""
    value = _evaluate(task, props.get("legalClock.outcome")) or "decided"
    if not isinstance(value, str) or not OUTCOME.fullmatch(value):
        activity = task.task_spec.bpmn_id
        raise ModelError(f"{activity}: legalClock.outcome must give a word such as decided, withdrawn or revoked "
                         f"(letters, digits and _, at most 32), not {value!r}", activityId=activity)
    return value


def on_cancelled(workflow, task) -> None:
    command = current.get()
    if command is None or not task.internal_data.get("legal_entered"):
        return
    cs = clocks(command)
    for stage in stage_names(properties(task.task_spec).get("legalClock.pause")):
        row = cs.find(task.workflow, stage)
        if row is not None:
            cs.resume(row)


def _assignee(command, task) -> str | None:
    return _ASSIGNEE.execute(command.session, {"task_id": str(task.id)}).scalar()


def _attached_task(task):
    """The activity a boundary event sits on (its sibling under the boundary split)."""
    if task.parent is None:
        return None
    for sibling in task.parent.children:
        if sibling is not task and type(sibling.task_spec).__name__ != "BoundaryEvent":
            return sibling
    return None


def _timer_event(command, cs: ClockSet, task, props, event: str, now) -> None:
    stage = props.get("legalClock.stage")
    row = cs.find(task.workflow, stage) if stage else None
    attached = _attached_task(task)
    department = _department_of(attached, {}) if attached is not None else None
    assignee = _assignee(command, attached) if attached is not None else None
    activity = task.task_spec.bpmn_id
    if event == "tacitApproval":
        limit = f"{row.limit_value:g} {row.limit_unit}" if row else None
        cs.event(row, "tacit_approval", activity, department, assignee, now, limit=limit,
                 deadline=row.deadline_at.isoformat() + "Z" if row and row.deadline_at else None)
        if row is not None:
            row.department = row.department or department
            cs.stop(row, "tacit_approval", activity, department, assignee, now)
        variable = props.get("tacitApproval.variable")
        if variable:
            task.data[variable] = props.get("tacitApproval.value", "approve")
        task.data["tacitApproval"] = {"stage": stage, "department": department, "assignee": assignee,
                                      "limit": limit, "at": now.isoformat() + "Z"}
    elif event in ("yellow", "red"):
        cs.event(row, event, activity, department, assignee, now)
    else:
        raise ModelError(f"{activity}: legalClock.event must be tacitApproval, yellow or red, not {event!r}",
                         activityId=activity)


def connect(spec) -> None:
    """Wire the hooks into one parsed task spec if its properties mention legal clocks."""
    props = properties(spec)
    if not any(k.startswith(("legalClock.", "statistics.")) for k in props):
        return
    spec.ready_event.connect(on_entered)
    spec.completed_event.connect(on_finished)
    spec.cancelled_event.connect(on_cancelled)


def connect_all(spec, subprocess_specs: dict) -> None:
    for process in [spec, *subprocess_specs.values()]:
        for task_spec in process.task_specs.values():
            connect(task_spec)


# --- after the engine ran: clocks left behind, timers that depend on clocks ----------------

def stop_ended(command) -> None:
    """A clock still running when its (sub)process ended can be stopped by no model any
    more (a stop finds the clocks of its own scope and the enclosing ones): a terminate end
    event or an interrupting event cancelled the branch that would have stopped it.  It
    ends `cancelled`, not open (and one day overdue) for good.  Looked at when the command
    touched the clocks or ended the case, as reading them costs a query."""
    workflow = command.workflow
    if command.legal is None and not workflow.completed and not _ended_now(command):
        return
    ended = {str(key) for key, sub in workflow.subprocesses.items() if sub.completed}
    cs, now = clocks(command), utcnow()
    for row in cs.rows.values():
        if row.stopped_at is None and (workflow.completed or row.scope in ended):
            cs.stop(row, "cancelled", now=now)


def _ended_now(command) -> bool:
    """Whether a subprocess ended in this command (its calling task was open before it):
    an interrupting boundary event cuts one off without any clock hook running."""
    before, workflow = command.before.states, command.workflow
    for key, sub in workflow.subprocesses.items():
        if sub.completed:
            task = workflow.get_task_from_id(key)
            if before.get(task, 0) & OPEN:
                return True
    return False


def refresh_timers(command) -> None:
    """Re-evaluate waiting timeDate timers that use legal_deadline/legal_warning when a
    clock changed in this command (pause moves them out, resume and imports back in)."""
    if command.legal is None or not command.legal.dirty:
        return
    workflow = command.workflow
    for task in list(workflow.event_manager.tasks.values()):
        definition = timer_definition(getattr(task.task_spec, "event_definition", None))
        if not isinstance(definition, TimeDateEventDefinition) or "legal_" not in (definition.expression or ""):
            continue
        value = workflow.script_engine.evaluate(task, definition.expression)
        if value != task.internal_data.get("event_value"):
            task.internal_data["event_value"] = value
            task.internal_data.pop("event_fired", None)


def task_due(command, task) -> datetime | None:
    """A user task's legal deadline when its activity started a clock in its scope (also
    when the task is entered again after a correction round: the clocks follow it): the
    earliest of them, if it started several (a stage's and the whole case's, say)."""
    if command.legal is None:
        return None
    scope, activity, rows = scope_of(task.workflow), task.task_spec.bpmn_id, command.legal.rows
    for row in rows.values():
        if row.scope == scope and row.activity_id == activity and row.stopped_at is None:
            row.task_id = str(task.id)
    return _earliest(rows, str(task.id))


def _earliest(rows: dict, task_id: str) -> datetime | None:
    """The earliest deadline of the running clocks a task carries (None: none, or all paused)."""
    return min((r.deadline_at for r in rows.values()
                if r.task_id == task_id and r.stopped_at is None and r.deadline_at is not None), default=None)


def require_due_within(session, instance_id: str, task_id: str, due: datetime | None) -> None:
    """A due date set by hand (PUT /task/{id}) on a task that carries a running clock may
    come before the clock's deadline (an officer's own target), not after it, nor go: the
    overdue list (GET /task?dueBefore=now) would miss a task the law calls overdue.  The
    clock, its warning and its tacit approval keep the legal deadline either way, which
    moves only by a pause (补正, or an administrator's); when it moves, the task's due is
    set to it again (ClockSet.write)."""
    carried = _CARRIED.execute(session, {"instance_id": instance_id, "task_id": task_id}).first()
    if carried is None or (due is not None and due <= carried.deadline_at):
        return
    deadline = _aware(carried.deadline_at).astimezone(display_zone()).isoformat()
    raise BadRequest(f"task {task_id} carries the legal clock '{carried.stage}', whose deadline is {deadline}: "
                     f"its due date may be set earlier, not {'later' if due is not None else 'removed'}; the legal "
                     "deadline moves only while the clock is paused (补正, or POST /api/v1/process-instance/"
                     f"{instance_id}/legal-clocks/{carried.stage}/pause by an administrator)")


def write(command) -> None:
    """After the projections (the user task rows): what the command did to the clocks."""
    if command.legal is not None:
        command.legal.write()


# --- expression functions -----------------------------------------------------------------

def deadline_expression(stage: str, which: str = "deadline") -> str:
    """legal_deadline(stage) inside a running command: the ISO deadline, or far in the
    future while the clock is paused or not started yet."""
    from .script_engine import current_task
    command, task = current.get(), current_task.get()
    if command is None or task is None:
        raise ValueError("legal_deadline() can only be used in a running process")
    row = clocks(command).find(task.workflow, str(stage))
    if row is None or row.stopped_at is not None:
        clocks(command).dirty = True          # look again once the command has run
        return FAR_FUTURE
    value = row.deadline_at if which == "deadline" else row.warning_at
    if value is None or row.paused_since is not None:     # paused: no warning either until it resumes
        return FAR_FUTURE
    return _aware(value).isoformat()


_CLOCK_CALL = re.compile(r"\b(legal_deadline|legal_warning)\(\s*['\"]([^'\"]+)['\"]")


def clock_calls(expression: str | None) -> list[tuple[str, str]]:
    """(function, stage) of each legal_deadline("stage") and legal_warning("stage") in an
    expression that names its stage literally."""
    return _CLOCK_CALL.findall(expression or "")


def check_clocks_exist(command) -> None:
    """After the run: a timer waiting on legal_deadline() of a stage no clock has is a
    model error, not a timer that never fires."""
    workflow = command.workflow
    for task in list(workflow.event_manager.tasks.values()):
        definition = timer_definition(getattr(task.task_spec, "event_definition", None))
        if not isinstance(definition, TimeDateEventDefinition):
            continue
        for function, stage in clock_calls(definition.expression):
            if clocks(command).find(task.workflow, stage) is None:
                raise ModelError(f"{task.task_spec.bpmn_id}: {function}({stage!r}) but no legal clock "
                                 f"'{stage}' was started; add camunda:property legalClock.start={stage} "
                                 "on an earlier element", activityId=task.task_spec.bpmn_id)
