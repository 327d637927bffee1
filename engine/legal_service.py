"""Legal clocks through the API: read a case's clocks, start/pause/resume one by hand,
recompute open deadlines after a calendar change, and the reform statistics."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import case, func, select

from . import instances, legal, runtime
from .clock import utcnow
from .errors import BadRequest, Forbidden, NotFound
from .identity import Principal, require_admin
from .models import LegalClock, LegalEvent, ProcessInstance


def _wire(value: datetime | None, zone) -> str | None:
    return value.replace(tzinfo=timezone.utc).astimezone(zone).isoformat() if value else None


def render(row: LegalClock, cal, now: datetime) -> dict:
    zone = cal.tz
    body = {
        "id": row.id, "processInstanceId": row.instance_id, "stage": row.stage, "scope": row.scope or None,
        "kind": row.kind, "limit": {"value": row.limit_value, "unit": row.limit_unit},
        "calendar": row.calendar_id, "department": row.department, "activityId": row.activity_id,
        "started": _wire(row.started_at, zone), "deadline": _wire(row.deadline_at, zone),
        "warningAt": _wire(row.warning_at, zone), "provisional": row.provisional,
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


def list_clocks(uow, principal: Principal, instance_id: str) -> list[dict]:
    session = uow.session
    instance = session.get(ProcessInstance, instance_id)      # running or finished
    if instance is None:
        raise NotFound(f"Process instance with id {instance_id} does not exist")
    if not instances.may_read(session, principal, instance):
        raise Forbidden(f"user '{principal.user_id}' takes no part in process instance '{instance_id}'")
    rows = session.execute(select(LegalClock).where(LegalClock.instance_id == instance_id)
                           .order_by(LegalClock.started_at, LegalClock.stage)).scalars()
    now = utcnow()
    return [render(r, uow.ctx.calendars.get(session, r.calendar_id), now) for r in rows]


def _command(uow, principal: Principal, instance_id: str):
    require_admin(principal, "starting, pausing or resuming a legal clock by hand")
    return runtime.open_instance(uow, instance_id, principal)


def _top_clock(command, stage: str) -> LegalClock:
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


# --- statistics ---------------------------------------------------------------------------

def statistics(session, principal: Principal, definition_key: str | None, department: str | None,
               since: datetime | None, until: datetime | None) -> dict:
    """Per process and per department: clocks, decisions in time, overdue, tacit
    approvals, warnings and escalations, with the rates supervisors score."""
    if not principal.is_admin and department not in principal.groups:
        raise Forbidden("statistics are for administrators, or for your own department: "
                         f"add department=<one of {', '.join(sorted(principal.groups)) or 'your groups'}>")
    now = utcnow()
    clock_filter, event_filter = [], []
    if definition_key:
        clock_filter.append(LegalClock.definition_key == definition_key)
        event_filter.append(LegalEvent.definition_key == definition_key)
    if department:
        clock_filter.append(LegalClock.department == department)
        event_filter.append(LegalEvent.department == department)
    if since:
        clock_filter.append(LegalClock.started_at >= since)
        event_filter.append(LegalEvent.at >= since)
    if until:
        clock_filter.append(LegalClock.started_at < until)
        event_filter.append(LegalEvent.at < until)
    overdue = case(((LegalClock.stopped_at.is_(None) & (LegalClock.deadline_at < now)), 1),
                   ((LegalClock.stopped_at.is_not(None) & (LegalClock.outcome == "decided")
                     & (LegalClock.stopped_at > LegalClock.deadline_at)), 1), else_=0)
    clocks = select(LegalClock.definition_key, LegalClock.department, func.count(),
                    func.sum(case((LegalClock.stopped_at.is_(None), 1), else_=0)),
                    func.sum(overdue)).where(*clock_filter).group_by(LegalClock.definition_key, LegalClock.department)
    events = select(LegalEvent.definition_key, LegalEvent.department, LegalEvent.kind, func.count()) \
        .where(*event_filter).group_by(LegalEvent.definition_key, LegalEvent.department, LegalEvent.kind)
    groups: dict = {}

    def entry(key, dept):
        return groups.setdefault((key, dept), {
            "processDefinitionKey": key, "department": dept, "clocks": 0, "open": 0, "overdue": 0,
            "decided": 0, "decidedOverdue": 0, "tacitApprovals": 0, "warnings": 0, "escalations": 0})
    for key, dept, total, open_, late in session.execute(clocks):
        e = entry(key, dept)
        e["clocks"], e["open"], e["overdue"] = total, int(open_ or 0), int(late or 0)
    names = {"decided": "decided", "overdue_decided": "decidedOverdue", "tacit_approval": "tacitApprovals",
             "yellow": "warnings", "red": "escalations"}
    for key, dept, kind, n in session.execute(events):
        if kind in names:
            entry(key, dept)[names[kind]] += n
            if kind == "overdue_decided":
                entry(key, dept)["decided"] += n
    rows = sorted(groups.values(), key=lambda e: (e["processDefinitionKey"], e["department"] or ""))
    for e in rows:
        closed = e["decided"] + e["tacitApprovals"]
        e["tacitApprovalRate"] = round(e["tacitApprovals"] / closed, 4) if closed else None
        e["overdueRate"] = round(e["overdue"] / e["clocks"], 4) if e["clocks"] else None
    totals = {k: sum(e[k] for e in rows) for k in ("clocks", "open", "overdue", "decided", "decidedOverdue",
                                                   "tacitApprovals", "warnings", "escalations")}
    closed = totals["decided"] + totals["tacitApprovals"]
    totals["tacitApprovalRate"] = round(totals["tacitApprovals"] / closed, 4) if closed else None
    totals["overdueRate"] = round(totals["overdue"] / totals["clocks"], 4) if totals["clocks"] else None
    return {"groups": rows, "totals": totals}
