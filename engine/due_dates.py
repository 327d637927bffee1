"""A user task's camunda:dueDate and camunda:followUpDate, read as Camunda 7 reads them: an
exact point in time, or an ISO 8601 duration counted from the task's creation (Camunda's
user task reference; its DueDateBusinessCalendar takes text that starts with "P" for a
period).  A literal is checked at deploy (engine/validation.py); an expression's value
where the task opens (engine/runtime.py task_facts): a date, or text holding a date-time
or a duration (`${deadline}`, `P${n}D`).  Durations are read by the timers' one strict
parser (engine/timers.py parse_duration).
"""
from __future__ import annotations

from calendar import monthrange
from datetime import datetime, timedelta, timezone

from .errors import BadRequest
from .timers import parse_duration
from .variables import display_zone, parse_date, to_utc_naive

FORMS = "an ISO 8601 date-time (2025-10-01T17:00:00+08:00) nor a duration from the task's creation (P2D, PT4H)"


def is_duration(text: str) -> bool:
    return text.strip()[:1] in ("P", "p")


def resolve(value, created: datetime, what: str) -> datetime | None:
    """`value` (an attribute's text, or what its expression gave: a date, or text) as naive
    UTC, as stored; a duration counts from `created`, the task's creation (naive UTC, the
    engine's clock).  None for no value.  Raises BadRequest naming `what`."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and is_duration(value):
        try:
            return _after(created, parse_duration(value.strip()))
        except (ValueError, OverflowError) as err:
            raise BadRequest(f"{what}: {err}") from None
    return to_utc_naive(value, what)


def literal_problem(text: str) -> str | None:
    """Why a literal due or follow-up date is neither a date-time nor a duration (None: it is
    one): "" for text that is no date, the duration parser's reason for a broken duration."""
    try:
        if is_duration(text):
            parse_duration(text.strip())
        else:
            parse_date(text)
    except ValueError as err:
        return str(err)
    except BadRequest:
        return ""
    return None


def _after(created: datetime, parts: dict) -> datetime:
    """`created` plus a duration's `parts`: years, months, weeks and days on the calendar of
    the engine's zone (one month after 31 January is 28 February, as Camunda adds a period),
    hours, minutes and seconds as time elapsed.  Naive UTC in and out."""
    local = created.replace(tzinfo=timezone.utc).astimezone(display_zone())
    months = parts.get("years", 0) * 12 + parts.get("months", 0)
    moved = _plus_months(local, int(months))
    days = (parts.get("weeks", 0) * 7 + parts.get("days", 0)
            + (months - int(months)) * monthrange(moved.year, moved.month)[1])    # a fraction: of that month
    moved = (moved + timedelta(days=days)).astimezone(timezone.utc)              # the same time of day
    elapsed = timedelta(hours=parts.get("hours", 0), minutes=parts.get("minutes", 0), seconds=parts.get("seconds", 0))
    return (moved + elapsed).replace(tzinfo=None)


def _plus_months(local: datetime, months: int) -> datetime:
    year, month = divmod(local.month - 1 + months, 12)
    year, month = local.year + year, month + 1
    return local.replace(year=year, month=month, day=min(local.day, monthrange(year, month)[1]))
