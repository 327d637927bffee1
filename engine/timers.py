"""BPMN timers as rows with a due time.

SpiffWorkflow computes a timer's due time when the timer starts waiting and keeps it
in the task's internal data; after every command we mirror the waiting timers into the
`timer` table (same transaction), which the scheduler (`engine.scheduler`) watches.

SpiffWorkflow reads `datetime.now` inside its timer module; `route_spiffworkflow_clock`
is the one seam where that is pointed at the engine's clock.
"""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (CycleTimerEventDefinition,
                                                              DurationTimerEventDefinition,
                                                              TimerEventDefinition)
from sqlalchemy import delete, insert, update

from .clock import clock
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


def kind_of(definition) -> str:
    if isinstance(definition, CycleTimerEventDefinition):
        return "timeCycle"
    if isinstance(definition, DurationTimerEventDefinition):
        return "timeDuration"
    return "timeDate"


def due_of(task) -> datetime | None:
    """The waiting timer's due time as naive UTC (None once a cycle has run out)."""
    value = task.internal_data.get("event_value")
    if value is None:
        return None
    if isinstance(task.task_spec.event_definition, CycleTimerEventDefinition):
        if value.get("cycles") == 0:
            return None
        value = value["next"]
    due = TimerEventDefinition.get_datetime(value) if isinstance(value, str) else value
    return due.astimezone(timezone.utc).replace(tzinfo=None)


def waiting_timers(workflow) -> dict:
    """task id -> (due, kind, activity id) for every timer the instance waits on."""
    timers = {}
    for task in workflow.event_manager.tasks.values():
        definition = getattr(task.task_spec, "event_definition", None)
        if isinstance(definition, TimerEventDefinition):
            due = due_of(task)
            if due is not None:
                timers[task.id] = (due, kind_of(definition), task.task_spec.bpmn_id)
    return timers


def write(command, before: dict, after: dict, now: datetime) -> datetime | None:
    """Mirror the waiting timers; returns the earliest new due time (to wake the scheduler)."""
    session, record = command.session, command.record
    gone = [str(t) for t in before.keys() - after.keys()]
    if gone:
        session.execute(delete(Timer).where(Timer.id.in_(gone)))
    rows, earliest = [], None
    for task_id, (due, kind, activity_id) in after.items():
        previous = before.get(task_id)
        if previous is None:
            rows.append(dict(id=str(task_id), instance_id=record.id, definition_id=record.definition_id,
                             activity_id=activity_id, kind=kind, due_at=due, created=now, failures=0))
        elif previous[0] != due:            # a cycle moved on, or a deadline was recomputed
            session.execute(update(Timer).where(Timer.id == str(task_id)).values(due_at=due))
        else:
            continue
        earliest = due if earliest is None or due < earliest else earliest
    if rows:
        session.execute(insert(Timer), rows)
    return earliest
