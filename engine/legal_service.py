"""Legal clocks through the API: read a case's clocks, start/pause/resume one by hand,
recompute open deadlines after a calendar change (their statistics: engine/statistics.py)."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import bindparam, select

from . import instances, legal, runtime
from .clock import utcnow
from .errors import BadRequest, NotFound
from .fastsql import Statement
from .identity import Principal, require_admin
from .models import LegalClock, ProcessInstance


def _wire(value: datetime | None, zone) -> str | None:
    return value.replace(tzinfo=timezone.utc).astimezone(zone).isoformat() if value else None


def render(row: LegalClock | legal.Clock, cal, now: datetime) -> dict:
    zone = cal.tz
    body = {
        "id": row.id, "processInstanceId": row.instance_id, "stage": row.stage, "scope": row.scope or None,
        "kind": row.kind, "limit": {"value": row.limit_value, "unit": row.limit_unit},
        "calendar": row.calendar_id, "department": row.department, "activityId": row.activity_id,
        "started": _wire(row.started_at, zone), "deadline": _wire(row.deadline_at, zone),
        # while paused there is no deadline, nor a time to warn at: both come back on resume
        "warningAt": _wire(row.warning_at, zone) if row.paused_since is None else None,
        "provisional": row.provisional,
        "paused": row.paused_since is not None, "pausedSince": _wire(row.paused_since, zone),
        "pauses": [{"from": _wire(datetime.fromisoformat(p["from"]), zone),
                    "to": _wire(datetime.fromisoformat(p["to"]), zone) if p.get("to") else None,
                    "reason": p.get("reason")}
                   for p in row.pauses or []],
        "stopped": _wire(row.stopped_at, zone), "outcome": row.outcome,
        "status": legal.status(row, now),
    }
    body.update(legal.remaining(row, cal, now))
    return body


_CLOCKS = LegalClock.__table__
_CASE_CLOCKS = Statement(select(_CLOCKS).where(_CLOCKS.c.instance_id == bindparam("instance_id"))
                         .order_by(_CLOCKS.c.started_at, _CLOCKS.c.stage))


def list_clocks(db, calendars, principal: Principal, instance_id: str) -> list[dict]:
    """The case's clocks, running or finished, if `principal` takes part in it or supervises
    (督查); on a unit of work's session or a bare connection, each calendar looked up once."""
    instances.get(db, principal, instance_id, running_only=False, supervised=True)
    now, used, clocks = utcnow(), {}, []
    for row in _CASE_CLOCKS.execute(db, {"instance_id": instance_id}):
        if row.calendar_id not in used:
            used[row.calendar_id] = calendars.get(db, row.calendar_id)
        clocks.append(render(row, used[row.calendar_id], now))
    return clocks


def _command(uow, principal: Principal, instance_id: str):
    require_admin(principal, "starting, pausing or resuming a legal clock by hand")
    return runtime.open_instance(uow, instance_id, principal)


def _top_clock(command, stage: str) -> legal.Clock:
    cs = legal.clocks(command)
    matches = [r for (scope, name), r in cs.rows.items() if name == stage]
    if not matches:
        raise NotFound(f"process instance '{command.record.id}' has no legal clock '{stage}'")
    if len(matches) > 1:
        raise BadRequest(f"stage '{stage}' has {len(matches)} clocks in this case (one per branch); "
                         "pause them from the model instead")
    return matches[0]


def start_clock(uow, principal, instance_id: str, stage: str, limit, kind: str, calendar_id: str | None,
                yellow: float) -> dict:
    command = _command(uow, principal, instance_id)
    try:
        row = legal.clocks(command).start("", stage, limit, kind, calendar_id, yellow)
    except ValueError as err:
        raise BadRequest(f"legal clock '{stage}': {err}") from err
    runtime.save(command)
    return render(row, uow.ctx.calendars.get(uow.session, row.calendar_id), utcnow())


def pause_clock(uow, principal, instance_id: str, stage: str, reason: str | None) -> dict:
    command = _command(uow, principal, instance_id)
    row = _top_clock(command, stage)
    if row.stopped_at is not None:
        raise BadRequest(f"legal clock '{stage}' has stopped ({row.outcome}); it cannot be paused")
    if row.paused_since is not None:
        raise BadRequest(f"legal clock '{stage}' is already paused")
    legal.clocks(command).pause(row, reason or "paused by API")
    runtime.save(command)
    return render(row, uow.ctx.calendars.get(uow.session, row.calendar_id), utcnow())


def resume_clock(uow, principal, instance_id: str, stage: str) -> dict:
    command = _command(uow, principal, instance_id)
    row = _top_clock(command, stage)
    if row.paused_since is None:
        raise BadRequest(f"legal clock '{stage}' is not paused")
    legal.clocks(command).resume(row)
    runtime.save(command)
    return render(row, uow.ctx.calendars.get(uow.session, row.calendar_id), utcnow())


def recompute_calendar(engine, calendar_id: str, actor: Principal) -> int:
    """After a calendar changed: recompute every open clock on it, one command per case
    (moving their timers too).  Returns how many cases were touched."""
    with engine.uow(write=False) as uow:
        instance_ids = list(uow.session.execute(
            select(LegalClock.instance_id).join(ProcessInstance, ProcessInstance.id == LegalClock.instance_id)
            .where(LegalClock.calendar_id == calendar_id, LegalClock.stopped_at.is_(None),
                   ProcessInstance.state == runtime.ACTIVE).distinct()).scalars())
    for instance_id in instance_ids:
        with engine.uow() as uow:
            command = runtime.open_instance(uow, instance_id, actor)
            legal.clocks(command).recompute_all(calendar_id)
            runtime.save(command)
            uow.commit()
    return len(instance_ids)
