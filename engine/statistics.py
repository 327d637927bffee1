"""The reform statistics supervisors score (督查): per process, department and stage, the
legal clocks' outcomes (办件逾期率 overdue rate, 超时默许率 tacit-approval rate, on-time
rate, working days used), and per process the cases (completion, 并联审批率 parallel-
approval rate, shares of 告知承诺 commitment and 容缺 deficiency cases, end-to-end working
days).  The KPIs are those of the construction-permit scoring (shared/processes.md, 002
L2270-2314).

One request counts one population, whatever section shows it:
- the clocks started in [since, until) of the process, department and stage asked, with
  the warnings and escalations of those clocks (whenever they fired): `groups` (per
  process and department), `totals`, `stages` (per process, stage, department, period);
- the cases started in [since, until) of the process asked (with a department or a stage
  asked, those in which such a clock runs): `processes`, each judged on all its clocks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import combinations

from sqlalchemy import select

from . import authz, legal
from .clock import utcnow
from .errors import BadRequest, Forbidden
from .identity import Principal
from .models import LegalClock, LegalEvent, ProcessInstance

PERIODS = ("day", "week", "month", "year")
_CHUNK = 500                    # case ids per IN (...) list
_CLOCKS = LegalClock.__table__
# the outcomes of a clock stopped without a decision, each counted apart: withdrawn (撤回) and
# revoked (撤销) by the designer's legalClock.outcome, cancelled by the engine (the case was
# deleted, or the clock's branch cut off); any other legalClock.outcome word is otherOutcomes
_UNDECIDED = ("withdrawn", "revoked", "cancelled")
# the outcomes that end the case itself without a decision standing, on a clock of its top-level
# process: withdrawn (撤回) and revoked (撤销); any other outcome (a notice `published`, a
# clock cut off `cancelled`) ends one clock, not the case's decision
_CASE_UNDONE = ("withdrawn", "revoked")
_COUNTS = ("clocks", "open", "overdue", "decided", "decidedInTime", "decidedOverdue", "tacitApprovals",
           "withdrawn", "revoked", "cancelled", "otherOutcomes", "warnings", "escalations")


@dataclass(frozen=True)
class Selection:
    """What a request asks for: a process, a department, a stage (all optional), the
    period the clocks and cases started in ([since, until), naive UTC), and whether to
    group by day, week, month or year too."""
    definition_key: str | None = None
    department: str | None = None
    stage: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    period: str | None = None

    def clock_conditions(self, started: bool = True) -> list:
        """Conditions on legal_clock: the process, department and stage; `started`: also the period."""
        asked = [(_CLOCKS.c.definition_key, self.definition_key), (_CLOCKS.c.department, self.department),
                 (_CLOCKS.c.stage, self.stage)]
        conditions = [column == value for column, value in asked if value]
        if started and self.since:
            conditions.append(_CLOCKS.c.started_at >= self.since)
        if started and self.until:
            conditions.append(_CLOCKS.c.started_at < self.until)
        return conditions


def statistics(uow, principal: Principal, asked: Selection) -> dict:
    """groups, totals, stages and processes (the module's docstring) for administrators,
    supervisors, or a department reading its own figures."""
    _require_reader(principal, asked.department, uow.ctx.settings.supervisors_group)
    if asked.period is not None and asked.period not in PERIODS:
        raise BadRequest(f"period must be one of {', '.join(PERIODS)}, not {asked.period!r}")
    session, now = uow.session, utcnow()
    calendars: dict = {}

    def calendar(calendar_id):
        if calendar_id not in calendars:
            calendars[calendar_id] = uow.ctx.calendars.get(session, calendar_id)
        return calendars[calendar_id]

    zone = calendar(None).tz
    rows = session.execute(select(_CLOCKS).where(*asked.clock_conditions())).all()
    fired = _fired(session, asked)
    groups, stages = {}, {}
    for row in rows:
        facts = _facts(row, fired.get(row.id, ()), calendar(row.calendar_id), now)
        _add(groups, (row.definition_key, row.department), facts)
        _add(stages, (row.definition_key, row.stage, row.department, _period(row.started_at, asked.period, zone)),
             facts)
    group_rows = [{"processDefinitionKey": key, "department": department, **_figures(tally)}
                  for (key, department), tally in sorted(groups.items(), key=_sort_key)]
    stage_rows = [{"processDefinitionKey": key, "stage": stage, "department": department, "period": period,
                   **_figures(tally)}
                  for (key, stage, department, period), tally in sorted(stages.items(), key=_sort_key)]
    totals: dict = _tally()
    for tally in groups.values():
        for name in _COUNTS:
            totals[name] += tally[name]
        totals["days"] += tally["days"]
    return {"groups": group_rows, "totals": _figures(totals), "stages": stage_rows,
            "processes": _processes(session, asked, calendar(None), now)}


def _require_reader(principal: Principal, department: str | None, supervisors_group: str) -> None:
    if authz.reads_every_department(principal) or (department and department in principal.groups):
        return
    raise Forbidden(f"statistics are for administrators, supervisors (group '{supervisors_group}'), or for your "
                    f"own department: add department=<one of {', '.join(sorted(principal.groups)) or 'your groups'}>",
                    userId=principal.user_id)


def _fired(session, asked: Selection) -> dict:
    """clock id -> the kinds of warning (yellow) and escalation (red) events of the
    selected clocks, whenever they fired."""
    fired: dict = {}
    query = (select(LegalEvent.clock_id, LegalEvent.kind).join(_CLOCKS, _CLOCKS.c.id == LegalEvent.clock_id)
             .where(LegalEvent.kind.in_(("yellow", "red")), *asked.clock_conditions()).distinct())
    for clock_id, kind in session.execute(query):
        fired.setdefault(clock_id, set()).add(kind)
    return fired


# --- one clock, and the figures of many ----------------------------------------------------

def _facts(row, fired, cal, now: datetime) -> dict:
    """What one clock adds to the counts: running or how it ended, late or not, and the
    working days it used (legal.working_days_used) once it reached a decision (decided or
    tacit approval): a withdrawn, revoked or cancelled clock says nothing of how long a
    department takes to decide."""
    late = row.deadline_at is not None and (row.stopped_at or now) > row.deadline_at
    running, outcome = row.stopped_at is None, row.outcome
    decided = not running and outcome == "decided"
    tacit = not running and outcome == "tacit_approval"
    return {"clocks": 1, "open": running, "overdue": late and (running or decided),
            "decided": decided, "decidedInTime": decided and not late, "decidedOverdue": decided and late,
            "tacitApprovals": tacit, **_undecided_counts(None if running or decided or tacit else outcome),
            "warnings": "yellow" in fired, "escalations": "red" in fired,
            "days": [legal.working_days_used(row, cal, row.stopped_at)] if decided or tacit else []}


def _undecided_counts(outcome: str | None) -> dict:
    """withdrawn, revoked, cancelled, otherOutcomes: the one a clock stopped without a decision
    with `outcome` adds to (none for None)."""
    counts = dict.fromkeys((*_UNDECIDED, "otherOutcomes"), False)
    if outcome is not None:
        counts[outcome if outcome in _UNDECIDED else "otherOutcomes"] = True
    return counts


def _tally() -> dict:
    return {**dict.fromkeys(_COUNTS, 0), "days": []}


def _add(tallies: dict, key: tuple, facts: dict) -> None:
    tally = tallies.get(key) or tallies.setdefault(key, _tally())
    for name in _COUNTS:
        tally[name] += int(facts[name])
    tally["days"] += facts["days"]


def _figures(tally: dict) -> dict:
    """The counts and their rates: on time among the decided, overdue among all clocks,
    tacit approvals among the decided and tacitly approved, working days of the clocks that
    reached a decision."""
    days = tally["days"]
    return {**{name: tally[name] for name in _COUNTS},
            "onTimeRate": _rate(tally["decidedInTime"], tally["decided"]),
            "overdueRate": _rate(tally["overdue"], tally["clocks"]),
            "tacitApprovalRate": _rate(tally["tacitApprovals"], tally["decided"] + tally["tacitApprovals"]),
            "avgWorkingDays": _avg(days), "p90WorkingDays": _p90(days)}


def _sort_key(item) -> tuple:
    return tuple(part or "" for part in item[0])


# --- cases ----------------------------------------------------------------------------------

def _processes(session, asked: Selection, national, now: datetime) -> list[dict]:
    """Per process (and period): the cases started in the period (with a department or
    stage asked, those in which such a clock runs), each judged on all its clocks."""
    cases_query = select(ProcessInstance.id, ProcessInstance.definition_key, ProcessInstance.state,
                         ProcessInstance.start_time, ProcessInstance.end_time)
    if asked.definition_key:
        cases_query = cases_query.where(ProcessInstance.definition_key == asked.definition_key)
    if asked.since:
        cases_query = cases_query.where(ProcessInstance.start_time >= asked.since)
    if asked.until:
        cases_query = cases_query.where(ProcessInstance.start_time < asked.until)
    if asked.department or asked.stage:
        cases_query = cases_query.where(ProcessInstance.id.in_(
            select(_CLOCKS.c.instance_id).where(*asked.clock_conditions(started=False))))
    cases = session.execute(cases_query).all()
    clocks, marks = _case_clocks_and_marks(session, [c.id for c in cases])

    processes: dict = {}
    for c in cases:
        key = (c.definition_key, _period(c.start_time, asked.period, national.tz))
        p = processes.get(key) or processes.setdefault(key, {
            "processDefinitionKey": key[0], "period": key[1], "cases": 0, "completed": 0, "withdrawn": 0, "running": 0,
            "withClocks": 0, "multiDepartmentCases": 0, "parallelCases": 0, "commitmentCases": 0,
            "deficiencyCases": 0, "_e2e": []})
        p["cases"] += 1
        rows = clocks.get(c.id, [])
        if c.state == "COMPLETED" and _undecided(rows):
            p["withdrawn"] += 1
        elif c.state == "COMPLETED":
            p["completed"] += 1
            if c.end_time:
                p["_e2e"].append(national.working_days_after(_aware(c.start_time), _aware(c.end_time)))
        elif c.state == "ACTIVE":
            p["running"] += 1
        p["withClocks"] += bool(rows)
        parallel = _parallel(rows, now)
        p["multiDepartmentCases"] += parallel is not None
        p["parallelCases"] += bool(parallel)
        p["commitmentCases"] += "commitment" in marks.get(c.id, ())
        p["deficiencyCases"] += "deficiency" in marks.get(c.id, ())

    rows = []
    for p in sorted(processes.values(), key=lambda x: (x["processDefinitionKey"], x["period"] or "")):
        e2e = p.pop("_e2e")
        p.update(completionRate=_rate(p["completed"], p["cases"]),
                 parallelApprovalRate=_rate(p["parallelCases"], p["multiDepartmentCases"]),
                 commitmentShare=_rate(p["commitmentCases"], p["cases"]),
                 deficiencyShare=_rate(p["deficiencyCases"], p["cases"]),
                 endToEndAvgWorkingDays=_avg(e2e), endToEndP90WorkingDays=_p90(e2e))
        rows.append(p)
    return rows


def _case_clocks_and_marks(session, case_ids: list) -> tuple[dict, dict]:
    """case id -> its clocks (scope, stage, department, started, stopped, outcome), and -> its marks
    (statistics.mark: commitment, deficiency)."""
    clocks, marks = {}, {}
    for start in range(0, len(case_ids), _CHUNK):
        chunk = case_ids[start:start + _CHUNK]
        for row in session.execute(select(_CLOCKS.c.instance_id, _CLOCKS.c.scope, _CLOCKS.c.stage,
                                          _CLOCKS.c.department, _CLOCKS.c.started_at, _CLOCKS.c.stopped_at,
                                          _CLOCKS.c.outcome)
                                   .where(_CLOCKS.c.instance_id.in_(chunk))):
            clocks.setdefault(row.instance_id, []).append(row)
        for instance_id, details in session.execute(select(LegalEvent.instance_id, LegalEvent.details).where(
                LegalEvent.instance_id.in_(chunk), LegalEvent.kind == "mark")):
            marks.setdefault(instance_id, set()).add((details or {}).get("mark"))
    return clocks, marks


def _undecided(rows) -> bool:
    """Whether an ended case ended without a decision standing: a clock its top-level process
    started (scope "") stopped withdrawn (撤回) or revoked (撤销), as the library's whole-case
    clocks do (construction_permit's `case`, enterprise_opening's `opening`).  Such a case is
    not completed: it raises neither completionRate nor the end-to-end days.  A top-level
    clock may be one step of the case (a 20-day notice stopped `published`): its other
    outcomes say nothing of the case."""
    return any(r.scope == "" and r.stopped_at is not None and r.outcome in _CASE_UNDONE for r in rows)


def _parallel(rows, now: datetime) -> bool | None:
    """Whether the case's departments reviewed in parallel (并联审批): None if no stage of
    it had clocks of two departments (the KPI does not apply: one department, or none);
    True if two departments' clocks of one stage ran at the same time; False if they ran
    one after the other (串联)."""
    by_stage: dict = {}
    for r in rows:
        by_stage.setdefault(r.stage, []).append((r.started_at, r.stopped_at or now, r.department))
    applies = False
    for spans in by_stage.values():
        if len({department for _, _, department in spans}) < 2:
            continue
        applies = True
        if any(a[2] != b[2] and a[0] < b[1] and b[0] < a[1] for a, b in combinations(spans, 2)):
            return True
    return False if applies else None


# --- arithmetic -------------------------------------------------------------------------------

def _aware(naive_utc: datetime) -> datetime:
    return naive_utc.replace(tzinfo=timezone.utc)


def _period(moment: datetime | None, period: str | None, zone) -> str | None:
    if period is None or moment is None:
        return None
    local = _aware(moment).astimezone(zone)
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
