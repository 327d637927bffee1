"""Legal clocks of a case and the reform statistics (extensions under /api/v1)."""
from __future__ import annotations

import marshmallow as ma

from engine import legal_service, statistics as reform_statistics
from engine.db import reading
from engine.variables import parse_date, to_utc_naive

from .auth import engine, principal
from .blueprint import Blueprint

blp = Blueprint("legal-clock", __name__, url_prefix="/api/v1",
                description="Legal clocks (法定时限), tacit approval (超时默许) and statistics")


class LegalClockSchema(ma.Schema):
    id = ma.fields.String()
    processInstanceId = ma.fields.String()
    stage = ma.fields.String()
    scope = ma.fields.String(allow_none=True)
    kind = ma.fields.String(metadata={"description": "legal (法定) or promised (承诺)"})
    limit = ma.fields.Dict()
    calendar = ma.fields.String()
    department = ma.fields.String(allow_none=True)
    activityId = ma.fields.String(allow_none=True)
    started = ma.fields.String()
    deadline = ma.fields.String(allow_none=True, metadata={"description": "null while paused"})
    warningAt = ma.fields.String(allow_none=True, metadata={
        "description": "when the clock has used its yellow share of the limit, counted as the deadline is; "
                       "null while paused"})
    provisional = ma.fields.Boolean()
    paused = ma.fields.Boolean()
    pausedSince = ma.fields.String(allow_none=True)
    pauses = ma.fields.List(ma.fields.Dict())
    stopped = ma.fields.String(allow_none=True)
    outcome = ma.fields.String(allow_none=True, metadata={
        "description": "decided | tacit_approval | cancelled (its process ended first), or the word the "
                       "model's legalClock.outcome gives: withdrawn, revoked"})
    status = ma.fields.String(metadata={"description": "green | yellow | red"})
    remainingWorkingDays = ma.fields.Integer()
    remainingWorkingSeconds = ma.fields.Integer()
    remainingSeconds = ma.fields.Integer()


class StartClockBody(ma.Schema):
    stage = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=128))
    limit = ma.fields.Raw(required=True, metadata={"example": "3wd", "description": "3wd, 4h, 150min, 30d or a number of working days"})
    kind = ma.fields.String(load_default="legal", validate=ma.validate.OneOf(["legal", "promised"]))
    calendar = ma.fields.String(load_default=None, allow_none=True)
    yellow = ma.fields.Float(load_default=0.8, validate=ma.validate.Range(0, 1, min_inclusive=False))


class PauseBody(ma.Schema):
    reason = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=500))


class StatisticsArgs(ma.Schema):
    processDefinitionKey = ma.fields.String()
    department = ma.fields.String(metadata={"description": "only this department's clocks, and the cases it "
                                                           "answers for a clock in"})
    stage = ma.fields.String(metadata={"description": "a legal clock's stage, e.g. review (the departments' "
                                                      "reviews: their tacitApprovalRate is the KPI 超时默许率)"})
    period = ma.fields.String(validate=ma.validate.OneOf(list(reform_statistics.PERIODS)),
                              metadata={"description": "also group by the period the case or clock started in"})
    startedAfter = ma.fields.String(metadata={"description": "ISO date-time: the clocks and cases started then "
                                                             "or later (inclusive)"})
    startedBefore = ma.fields.String(metadata={"description": "ISO date-time: ... started before it (exclusive)"})


class StatisticsSchema(ma.Schema):
    groups = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "per process and department: the clocks started in the period (the figures of stages)"})
    totals = ma.fields.Dict(metadata={"description": "the same figures over every group"})
    processes = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "per process (and period), the cases started in the period: cases, completed, "
                       "withdrawn (a clock of the top-level process stopped withdrawn or revoked), running, "
                       "completionRate, multiDepartmentCases, parallelCases, parallelApprovalRate (null where no "
                       "case had two departments' clocks in one stage), commitmentShare, deficiencyShare, "
                       "endToEndAvgWorkingDays, endToEndP90WorkingDays"})
    stages = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "per process, stage, department (and period): clocks, open, overdue, decided, "
                       "decidedInTime, decidedOverdue, tacitApprovals, withdrawn, revoked, cancelled, "
                       "otherOutcomes, warnings, escalations, onTimeRate, overdueRate, tacitApprovalRate, "
                       "avgWorkingDays, p90WorkingDays (of the clocks decided or tacitly approved)"})


@blp.route("/process-instance/<instance_id>/legal-clocks")
@blp.response(200, LegalClockSchema(many=True), rendered=True)
def list_clocks(instance_id):
    """Every legal clock of the case: limit, deadline, pauses, status (green/yellow/red)."""
    with reading(engine().db) as conn:
        return legal_service.list_clocks(conn, engine().calendars, principal(), instance_id)


@blp.route("/process-instance/<instance_id>/legal-clocks", methods=["POST"])
@blp.arguments(StartClockBody)
@blp.response(201, LegalClockSchema)
def start_clock(body, instance_id):
    with engine().uow() as uow:
        result = legal_service.start_clock(uow, principal(), instance_id, body["stage"], body["limit"],
                                           body["kind"], body["calendar"], body["yellow"])
        uow.commit()
    return result


@blp.route("/process-instance/<instance_id>/legal-clocks/<stage>/pause", methods=["POST"])
@blp.arguments(PauseBody)
@blp.response(200, LegalClockSchema)
def pause_clock(body, instance_id, stage):
    """Stop the clock (补正: the applicant corrects materials); its timers move out."""
    with engine().uow() as uow:
        result = legal_service.pause_clock(uow, principal(), instance_id, stage, body["reason"])
        uow.commit()
    return result


@blp.route("/process-instance/<instance_id>/legal-clocks/<stage>/resume", methods=["POST"])
@blp.response(200, LegalClockSchema)
def resume_clock(instance_id, stage):
    """Restart the clock: the deadline moves by the paused (working) time."""
    with engine().uow() as uow:
        result = legal_service.resume_clock(uow, principal(), instance_id, stage)
        uow.commit()
    return result


@blp.route("/statistics")
@blp.arguments(StatisticsArgs, location="query")
@blp.response(200, StatisticsSchema)
def statistics(args):
    """Per process and department, per stage: clocks, overdue, decisions, tacit approvals
    (超时默许), warnings (催办), escalations (督办) and their rates; per process: cases,
    completion, parallel-approval rate (并联审批率), commitment and deficiency shares."""
    since = to_utc_naive(parse_date(args["startedAfter"], "startedAfter"), "startedAfter") if args.get("startedAfter") else None
    until = to_utc_naive(parse_date(args["startedBefore"], "startedBefore"), "startedBefore") if args.get("startedBefore") else None
    asked = reform_statistics.Selection(args.get("processDefinitionKey"), args.get("department"), args.get("stage"),
                                        since, until, args.get("period"))
    with engine().uow(write=False) as uow:
        return reform_statistics.statistics(uow, principal(), asked)
