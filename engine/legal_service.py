"""Legal clocks through the API: read a case's clocks, start/pause/resume one by hand,
recompute open deadlines after a calendar change, and the reform statistics."""
from __future__ import annotations

import math
from datetime import datetime, timezone

from sqlalchemy import bindparam, case, func, select

from . import instances, legal, runtime
from .clock import utcnow
from .errors import BadRequest, Forbidden, NotFound
from .fastsql import Statement
from .identity import Principal, require_admin
from .models import LegalClock, LegalEvent, ProcessInstance


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
    """The case's clocks, running or finished, if `principal` takes part in it; on a unit
    of work's session or a bare connection, each calendar looked up once."""
    instances.get(db, principal, instance_id, running_only=False)
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


# --- supervisors' figures: per process, per stage, per period ------------------------------

PERIODS = ("day", "week", "month", "year")


def _period(moment: datetime | None, period: str | None, zone) -> str | None:
    if period is None or moment is None:
        return None
    local = moment.replace(tzinfo=timezone.utc).astimezone(zone)
    if period == "day":
        return local.date().isoformat()
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{local.year}-{local.month:02d}"
    return str(local.year)


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)], 2)


def _avg(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _overlapping(intervals: list[tuple[datetime, datetime]]) -> bool:
    ordered = sorted(intervals)
    return any(b[0] < a[1] for a, b in zip(ordered, ordered[1:]))


def supervision(uow, principal: Principal, definition_key: str | None, department: str | None,
                stage: str | None, since: datetime | None, until: datetime | None, period: str | None) -> dict:
    """Cases, completion, on-time and overdue rates (办件逾期率), tacit-approval rate
    (超时默许率), parallel-approval rate (并联审批率), the share of commitment (告知承诺) and
    deficiency (容缺) cases, and average / p90 working days per stage and end to end."""
    session, ctx = uow.session, uow.ctx
    if period is not None and period not in PERIODS:
        raise BadRequest(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    now = utcnow()
    national = ctx.calendars.get(session, None)
    zone = national.tz
    cases_query = select(ProcessInstance.id, ProcessInstance.definition_key, ProcessInstance.state,
                         ProcessInstance.start_time, ProcessInstance.end_time)
    if definition_key:
        cases_query = cases_query.where(ProcessInstance.definition_key == definition_key)
    if since:
        cases_query = cases_query.where(ProcessInstance.start_time >= since)
    if until:
        cases_query = cases_query.where(ProcessInstance.start_time < until)
    cases = session.execute(cases_query).all()
    case_ids = [c.id for c in cases]
    clock_rows, marks, events = [], {}, {}
    for start in range(0, len(case_ids), 500):
        chunk = case_ids[start:start + 500]
        query = select(LegalClock).where(LegalClock.instance_id.in_(chunk))
        if stage:
            query = query.where(LegalClock.stage == stage)
        if department:
            query = query.where(LegalClock.department == department)
        clock_rows += session.execute(query).scalars().all()
        for instance_id, kind, details, clock_id in session.execute(
                select(LegalEvent.instance_id, LegalEvent.kind, LegalEvent.details, LegalEvent.clock_id)
                .where(LegalEvent.instance_id.in_(chunk))):
            if kind == "mark":
                marks.setdefault(instance_id, set()).add((details or {}).get("mark"))
            elif clock_id:
                events.setdefault(clock_id, set()).add(kind)

    processes: dict = {}
    by_case: dict = {}
    for row in clock_rows:
        by_case.setdefault(row.instance_id, []).append(row)
    for c in cases:
        key = (c.definition_key, _period(c.start_time, period, zone))
        p = processes.setdefault(key, {"processDefinitionKey": key[0], "period": key[1], "cases": 0,
                                       "completed": 0, "running": 0, "withClocks": 0, "parallel": 0,
                                       "commitmentCases": 0, "deficiencyCases": 0, "_e2e": []})
        p["cases"] += 1
        if c.state == "COMPLETED":
            p["completed"] += 1
            if c.end_time:
                p["_e2e"].append(national.working_days_after(
                    c.start_time.replace(tzinfo=timezone.utc), c.end_time.replace(tzinfo=timezone.utc)))
        elif c.state == "ACTIVE":
            p["running"] += 1
        rows = by_case.get(c.id, [])
        if rows:
            p["withClocks"] += 1
            per_stage: dict = {}
            for r in rows:
                per_stage.setdefault(r.stage, []).append((r.started_at, r.stopped_at or now))
            if any(len(v) > 1 and _overlapping(v) for v in per_stage.values()):
                p["parallel"] += 1
        p["commitmentCases"] += "commitment" in marks.get(c.id, ())
        p["deficiencyCases"] += "deficiency" in marks.get(c.id, ())

    stages: dict = {}
    calendars: dict = {}
    for row in clock_rows:
        key = (row.definition_key, row.stage, row.department, _period(row.started_at, period, zone))
        s = stages.setdefault(key, {"processDefinitionKey": key[0], "stage": key[1], "department": key[2],
                                    "period": key[3], "clocks": 0, "open": 0, "decided": 0, "decidedInTime": 0,
                                    "overdue": 0, "tacitApprovals": 0, "withdrawn": 0, "warnings": 0,
                                    "escalations": 0, "_days": []})
        cal = calendars.get(row.calendar_id) or calendars.setdefault(row.calendar_id,
                                                                     ctx.calendars.get(session, row.calendar_id))
        s["clocks"] += 1
        late = row.deadline_at is not None and (row.stopped_at or now) > row.deadline_at
        if row.stopped_at is None:
            s["open"] += 1
            s["overdue"] += late
        elif row.outcome == "decided":
            s["decided"] += 1
            s["decidedInTime"] += not late
            s["overdue"] += late
        elif row.outcome == "tacit_approval":
            s["tacitApprovals"] += 1
        else:
            s["withdrawn"] += 1
        kinds = events.get(row.id, set())
        s["warnings"] += "yellow" in kinds
        s["escalations"] += "red" in kinds
        if row.stopped_at is not None:
            s["_days"].append(legal.working_days_used(row, cal, row.stopped_at))

    process_rows = []
    for p in sorted(processes.values(), key=lambda x: (x["processDefinitionKey"], x["period"] or "")):
        e2e = p.pop("_e2e")
        p.update(completionRate=_rate(p["completed"], p["cases"]),
                 parallelApprovalRate=_rate(p.pop("parallel"), p["withClocks"]),
                 commitmentShare=_rate(p["commitmentCases"], p["cases"]),
                 deficiencyShare=_rate(p["deficiencyCases"], p["cases"]),
                 endToEndAvgWorkingDays=_avg(e2e), endToEndP90WorkingDays=_p90(e2e))
        process_rows.append(p)
    stage_rows = []
    for s in sorted(stages.values(), key=lambda x: (x["processDefinitionKey"], x["stage"], x["department"] or "",
                                                    x["period"] or "")):
        days = s.pop("_days")
        closed = s["decided"] + s["tacitApprovals"]
        s.update(onTimeRate=_rate(s["decidedInTime"], s["decided"]), overdueRate=_rate(s["overdue"], s["clocks"]),
                 tacitApprovalRate=_rate(s["tacitApprovals"], closed),
                 avgWorkingDays=_avg(days), p90WorkingDays=_p90(days))
        stage_rows.append(s)
    return {"processes": process_rows, "stages": stage_rows}
