"""Host functions that model expressions may call (timers, due dates, conditions).

They return ISO-8601 strings with an offset, which is what SpiffWorkflow's timer
definitions parse and what `camunda:dueDate` accepts."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo


def _start(value, zone: ZoneInfo, now: datetime) -> datetime:
    if value is None:
        return now.astimezone(zone)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=zone)


def expression_functions(engine) -> dict[str, Callable]:
    zone = ZoneInfo(engine.settings.timezone)

    def now() -> str:
        return engine.clock.now().astimezone(zone).isoformat()

    def days(n, start=None) -> str:
        """n natural days after `start` (default now)."""
        return (_start(start, zone, engine.clock.now()) + timedelta(days=float(n))).isoformat()

    def hours(n, start=None) -> str:
        return (_start(start, zone, engine.clock.now()) + timedelta(hours=float(n))).isoformat()

    return {"now": now, "days": days, "hours": hours}
