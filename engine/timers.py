"""BPMN timers as rows with a due time.

SpiffWorkflow computes a timer's due time when the timer starts waiting and keeps it
in the task's internal data; after every command we mirror the waiting timers into the
`timer` table (same transaction), which the scheduler (`engine.scheduler`) watches.

SpiffWorkflow reads `datetime.now` inside its timer module; `route_spiffworkflow_clock`
is the one seam where that is pointed at the engine's clock.  That module is also where
a timer's value is read (`_strict_timers`): SpiffWorkflow's duration parser takes
`-PT1H` or `xT1H` for an hour, and its errors are bare Exceptions that name no element.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (CycleTimerEventDefinition,
                                                              DurationTimerEventDefinition,
                                                              TimeDateEventDefinition, TimerEventDefinition)
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from sqlalchemy import bindparam, delete, insert, update

from .clock import clock, utcnow
from .fastsql import Statement
from .models import Timer


class _ClockDatetime(datetime):
    """`datetime` whose now() is the engine clock (installed into SpiffWorkflow's timer module)."""

    @classmethod
    def now(cls, tz=None):
        current = clock.now()
        return current.astimezone(tz) if tz is not None else current.astimezone().replace(tzinfo=None)


def route_spiffworkflow_clock(zone: str) -> None:
    spiff_timer.datetime = _ClockDatetime
    # timeDate values written without an offset mean the server's zone, not the host's
    spiff_timer.LOCALTZ = ZoneInfo(zone)


# ISO 8601's PnYnMnWnDTnHnMnS, each part optional but one; a fraction, in the last part only (_strict_duration)
_PART = r"(?:\d+(?:[.,]\d+)?{})?"
_ISO_DURATION = re.compile(r"P(?=\d|T\d)" + "".join(_PART.format(c) for c in "YMWD")
                           + r"(?:T(?=\d)" + "".join(_PART.format(c) for c in "HMS") + ")?", re.IGNORECASE)


def _strict_duration(parse):
    def parse_iso_duration(expression):
        if not isinstance(expression, str):
            raise ValueError(f"a duration must be text such as PT2H or P3D, not {type(expression).__name__}")
        if not _ISO_DURATION.fullmatch(expression.strip()):
            raise ValueError(f"{expression!r} is not an ISO 8601 duration such as PT2H or P3D"
                             + (" (a duration cannot be negative)" if expression.strip().startswith("-") else ""))
        if any(fraction for _, fraction, _ in _PARTS.findall(expression)[:-1]):
            # SpiffWorkflow reads a fraction only in the last part and drops the part silently
            # elsewhere (P1.5DT12H waited 12 hours); ISO 8601 allows it only there too
            raise ValueError(f"{expression!r}: only the last part of a duration may have a fraction "
                             "(P1.5DT12H is PT48H)")
        parsed = parse(expression.strip())
        # SpiffWorkflow counts years and months out one month at a time: P5000000Y held the
        # writer for 48 s, and P10000Y overflowed the date; no legal limit runs that long
        days = sum(parsed.get(unit, 0) * length for unit, length in _DAYS.items())
        if days > MAX_TIMER_DAYS:
            raise ValueError(f"{expression!r} is longer than {MAX_TIMER_YEARS} years, the longest a timer waits")
        return parsed
    return staticmethod(parse_iso_duration)


MAX_TIMER_YEARS = 100
MAX_TIMER_DAYS = MAX_TIMER_YEARS * 366
_PARTS = re.compile(r"(\d+)([.,]\d+)?([YMWDHS])", re.IGNORECASE)       # the parts of a duration that matched
_DAYS = {"years": 366, "months": 30.5, "weeks": 7, "days": 1, "hours": 1 / 24, "minutes": 1 / 1440,
         "seconds": 1 / 86400}


def _strict_cycle(parse):
    def parse_iso_recurring_interval(expression):
        if not isinstance(expression, str):
            raise ValueError(f"a cycle must be text such as R3/PT10M, not {type(expression).__name__}")
        cycles, start, period = parse(expression)
        if period <= timedelta(0):
            # a boundary timer of period 0 fired without end within one command (6.9 GB in 2 minutes)
            raise ValueError(f"{expression!r} repeats every {period}: a cycle's period must be longer than zero")
        return cycles, start, period
    return staticmethod(parse_iso_recurring_interval)


def _named_errors(method):
    """A timer's reading of its value, its errors raised as SpiffWorkflow's errors of the
    task (the engine answers them with a 400 naming the element, and the scheduler keeps
    the timer and opens an incident) instead of bare Exceptions that escape both."""
    def read(self, my_task):
        try:
            return method(self, my_task)
        except WorkflowException:
            raise
        except Exception as err:                 # noqa: BLE001 - SpiffWorkflow raises bare Exceptions here
            try:
                value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
                gave = f" gave {value!r}" if value != self.expression else ""
            except Exception:                    # noqa: BLE001 - the value is only for the message
                gave = ""
            reason = str(err) if not str(err).startswith("Invalid") else f"not a valid ISO 8601 {kind_of(self)} value"
            raise WorkflowTaskException(f"timer {kind_of(self)} {self.expression}{gave}: {reason}",
                                        task=my_task) from err
    read.__wrapped__ = method
    return read


def _strict_timers() -> None:
    if hasattr(TimerEventDefinition.parse_iso_duration, "__wrapped__"):
        return
    parse = TimerEventDefinition.parse_iso_duration
    TimerEventDefinition.parse_iso_duration = _strict_duration(parse)
    TimerEventDefinition.parse_iso_duration.__wrapped__ = parse
    TimerEventDefinition.parse_iso_recurring_interval = _strict_cycle(TimerEventDefinition.parse_iso_recurring_interval)
    for cls, name in ((TimeDateEventDefinition, "has_fired"), (DurationTimerEventDefinition, "has_fired"),
                      (CycleTimerEventDefinition, "cycle_complete")):
        setattr(cls, name, _named_errors(getattr(cls, name)))


_strict_timers()


def parse_duration(text) -> dict:
    """An ISO 8601 duration (PT2H, P3D, P1Y2M) read strictly (_strict_duration): its parts by
    unit (`{"years": 1, "months": 2}`), as SpiffWorkflow's parser gives them.  Raises
    ValueError saying what is wrong with `text`.  The one reader of durations: timers,
    and the due dates of user tasks (engine/due_dates.py)."""
    return TimerEventDefinition.parse_iso_duration(text)


def kind_of(definition) -> str:
    if isinstance(definition, CycleTimerEventDefinition):
        return "timeCycle"
    if isinstance(definition, DurationTimerEventDefinition):
        return "timeDuration"
    return "timeDate"


def timer_definition(definition):
    """The timer among a task's event definitions: its own, or the timer branch of an
    event-based gateway (SpiffWorkflow waits on the gateway with a multiple definition)."""
    if isinstance(definition, TimerEventDefinition):
        return definition
    if isinstance(definition, MultipleEventDefinition):
        return next((d for d in definition.event_definitions if isinstance(d, TimerEventDefinition)), None)
    return None


def due_of(task, definition=None) -> datetime | None:
    """The waiting timer's due time as naive UTC (None once a cycle has run out)."""
    value = task.internal_data.get("event_value")
    if value is None:
        return None
    definition = definition or task.task_spec.event_definition
    if isinstance(definition, CycleTimerEventDefinition):
        if value.get("cycles") == 0:
            return None
        value = value["next"]
    due = TimerEventDefinition.get_datetime(value) if isinstance(value, str) else value
    return due.astimezone(timezone.utc).replace(tzinfo=None)


def waiting_timers(workflow) -> dict:
    """task id -> (due, kind, activity id) for every timer the instance waits on."""
    timers = {}
    for task in workflow.event_manager.tasks.values():
        definition = timer_definition(getattr(task.task_spec, "event_definition", None))
        if definition is not None:
            due = due_of(task, definition)
            if due is not None:
                timers[task.id] = (due, kind_of(definition), task.task_spec.bpmn_id)
    return timers


def cycles_left(workflow) -> dict:
    """task -> the beats left of the timeCycle it waits on, for every such task: a boundary
    event that fires and waits on, or an event subprocess's start event.  R/... counts
    down from -1: the count goes down by one a beat either way (`beats_since`)."""
    left = {}
    for task in workflow.event_manager.tasks.values():
        if isinstance(getattr(task.task_spec, "event_definition", None), CycleTimerEventDefinition):
            value = task.internal_data.get("event_value")
            if isinstance(value, dict):
                left[task] = value["cycles"]
    return left


def beats_since(task, left: int) -> int:
    """How often the timeCycle of `task` fired since it had `left` beats to go."""
    value = task.internal_data.get("event_value")
    return left - value["cycles"] if isinstance(value, dict) else 0


# Every command that starts or ends a wait on a timer (a boundary timer on each review
# task, for a warning or tacit approval) writes these: statements built once, on the
# driver's cursor (engine/fastsql.py).  Built through the ORM at every command, the
# timers' rows cost more than the rest of the projections together (bench/TUNING.md).
_TIMERS = Timer.__table__
_TIMER_DELETE = Statement(delete(_TIMERS).where(_TIMERS.c.id == bindparam("timer_id")))
_TIMER_MOVE = Statement(update(_TIMERS).where(_TIMERS.c.id == bindparam("timer_id"))
                        .values(due_at=bindparam("due")))
_TIMER_INSERT = Statement(insert(_TIMERS))


def write(command, before: dict, after: dict, now: datetime) -> datetime | None:
    """Mirror the waiting timers; returns the earliest new due time (to wake the scheduler)."""
    session, record = command.session, command.record
    _TIMER_DELETE.executemany(session, [{"timer_id": str(t)} for t in before.keys() - after.keys()])
    rows, moved, earliest = [], [], None
    for task_id, (due, kind, activity_id) in after.items():
        previous = before.get(task_id)
        if previous is None:
            rows.append(dict(id=str(task_id), instance_id=record.id, definition_id=record.definition_id,
                             activity_id=activity_id, kind=kind, due_at=due, created=now, failures=0))
        elif previous[0] != due:            # a cycle moved on, or a deadline was recomputed
            moved.append({"timer_id": str(task_id), "due": due})
        else:
            continue
        earliest = due if earliest is None or due < earliest else earliest
    _TIMER_MOVE.executemany(session, moved)
    _TIMER_INSERT.executemany(session, rows)
    return earliest


# --- timer start events -------------------------------------------------------------------

def start_timers(spec) -> list[tuple[str, TimerEventDefinition]]:
    """(activity id, timer definition) of every timer start event of a process."""
    return [(ts.bpmn_id, ts.event_definition) for ts in spec.task_specs.values()
            if type(ts).__name__ == "StartEvent" and isinstance(getattr(ts, "event_definition", None),
                                                                TimerEventDefinition)]


def start_timer_due(definition: TimerEventDefinition, script_engine) -> tuple[datetime | None, dict]:
    """The first due time (naive UTC) of a timer start event and what to keep for the
    next ones (cycles left, period); evaluated without case data when deployed."""
    value = script_engine.environment.evaluate(definition.expression, {})
    if isinstance(definition, CycleTimerEventDefinition):
        cycles, start, duration = TimerEventDefinition.parse_iso_recurring_interval(value)
        return _utc(start), {"cycles": cycles, "period": duration.total_seconds(), "expression": value}
    if isinstance(definition, DurationTimerEventDefinition):
        delta = TimerEventDefinition.get_timedelta_from_start(TimerEventDefinition.parse_iso_duration(value))
        return _utc(clock.now() + delta), {"cycles": 1, "expression": value}
    return _utc(TimerEventDefinition.get_datetime(value)), {"cycles": 1, "expression": value}


def next_start_due(timer: Timer) -> tuple[datetime | None, dict]:
    """After a timer start event fired: the next due time, or None when it is spent.  The
    occurrences that fell due while no server ran are skipped (and count as spent): the
    timer started one case for them all, not one each (`R/PT1M` after a weekend down
    would otherwise start thousands at once)."""
    details = dict(timer.details or {})
    cycles, period = details.get("cycles", 1), details.get("period")
    if cycles == 1 or not period:
        return None, details
    missed = max(0, math.floor((utcnow() - timer.due_at).total_seconds() / period))
    if 0 < cycles <= missed + 1:
        return None, details
    details["cycles"] = cycles - 1 - missed if cycles > 0 else cycles       # -1: repeat for ever (R/...)
    return timer.due_at + timedelta(seconds=period * (missed + 1)), details


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None)
