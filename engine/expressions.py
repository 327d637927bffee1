"""Host functions that model expressions may call (timers, due dates, conditions).

They return ISO-8601 strings with an offset, which is what SpiffWorkflow's timer
definitions parse and what `camunda:dueDate` accepts.

    now()                          the engine clock
    days(n[, start])               n natural days later (to the instant)
    hours(n[, start])              n hours later
    workdays(n[, start, calendar]) end (23:59:59) of the nth working day after start's day
    workhours(h[, start, calendar]) h hours of office time later
    legal_deadline(stage)          the deadline of this case's legal clock `stage`
    legal_warning(stage)           when that clock turns yellow
    config(name)                   the deployed configuration name.json (see engine.configs)
    business_key()                 the running case's business key (None without one)
    group_name(id)                 a group's (department's) name, its id where it has none
    variable(name[, default])      a variable the case may not have (an item's refusal code)

A case variable of one of these names is what the name alone reads (`days > 5` in a leave
request); a call (`days(3)`) is the function: engine/sandbox.py, "Names".
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

from . import legal
from .models import Group
from .script_engine import current_task


FUNCTION_NAMES = frozenset({"now", "days", "hours", "workdays", "workhours", "config", "business_key", "group_name",
                            "variable", "legal_deadline", "legal_warning"})


def _start(value, zone: ZoneInfo, now: datetime) -> datetime:
    if value is None:
        return now.astimezone(zone)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=zone)


def expression_functions(engine) -> dict[str, Callable]:
    zone = ZoneInfo(engine.settings.timezone)

    def calendar(calendar_id):
        command = legal.current.get()
        if command is not None:
            return engine.calendars.get(command.session, calendar_id)
        with engine.uow(write=False) as uow:
            return engine.calendars.get(uow.session, calendar_id)

    def now() -> str:
        return engine.clock.now().astimezone(zone).isoformat()

    def days(n, start=None) -> str:
        """n natural days after `start` (default now)."""
        return (_start(start, zone, engine.clock.now()) + timedelta(days=float(n))).isoformat()

    def hours(n, start=None) -> str:
        return (_start(start, zone, engine.clock.now()) + timedelta(hours=float(n))).isoformat()

    def workdays(n, start=None, calendar_id=None) -> str:
        """The end of the nth working day after `start`'s day (the start day is not counted)."""
        begin = _start(start, zone, engine.clock.now())
        cal = calendar(calendar_id)
        if float(n) != int(float(n)):
            return cal.add_working_days_fractional(begin, float(n)).deadline.isoformat()
        return cal.add_working_days(begin, int(float(n))).deadline.isoformat()

    def workhours(h, start=None, calendar_id=None) -> str:
        return calendar(calendar_id).add_working_hours(_start(start, zone, engine.clock.now()), float(h)) \
            .deadline.isoformat()

    def config(name):
        """The deployed configuration `name`.json (item limits, department lists...)."""
        command = legal.current.get()
        if command is not None:
            return engine.configs.get(command.session, str(name))
        with engine.uow(write=False) as uow:
            return engine.configs.get(uow.session, str(name))

    def group_name(group_id) -> str:
        """The name the engine holds for a group (a department: `自然资源和规划局` for `zrzy`),
        so task names need no list of departments of their own; the id where the group has no
        name or is not there."""
        def read(session):
            group = session.get(Group, str(group_id))
            return group.name if group is not None and group.name else str(group_id)
        command = legal.current.get()
        if command is not None:
            return read(command.session)
        with engine.uow(write=False) as uow:
            return read(uow.session)

    def business_key() -> str | None:
        """The case's business key, as Camunda's ${execution.processBusinessKey}: a called
        process runs inside its caller's case, so it is the caller's."""
        command = legal.current.get()
        if command is None:
            raise ValueError("business_key() can only be used in a running process")
        return command.record.business_key

    def variable(name, default=None):
        """The variable `name` of the task being evaluated, or `default` where the case has
        none, as Camunda's ${execution.getVariable("name")} gives null: a name alone is an
        error when missing, and a branch that did not run (an item not refused) sets nothing."""
        task = current_task.get()
        if task is None:
            raise ValueError("variable() can only be used in a running process")
        return task.data.get(str(name), default)

    def legal_deadline(stage) -> str:
        return legal.deadline_expression(stage, "deadline")

    def legal_warning(stage) -> str:
        return legal.deadline_expression(stage, "warning")

    functions = {"now": now, "days": days, "hours": hours, "workdays": workdays, "workhours": workhours,
                 "config": config, "business_key": business_key, "group_name": group_name, "variable": variable,
                 "legal_deadline": legal_deadline, "legal_warning": legal_warning}
    assert functions.keys() == FUNCTION_NAMES, "the deploy check reads FUNCTION_NAMES"
    return functions
