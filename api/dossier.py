"""A case's dossier for case-file review (卷宗评查), and the audit trail for administrators
(extensions under /api/v1)."""
from __future__ import annotations

import marshmallow as ma
from sqlalchemy import select

from engine import audit, dossier
from engine.identity import require_admin
from engine.models import SystemAuditEvent
from engine.variables import format_date

from .auth import engine, principal
from .blueprint import Blueprint

blp = Blueprint("dossier", __name__, url_prefix="/api/v1",
                description="Case dossiers (卷宗) and the tamper-evident audit trail (全程留痕)")


class DossierSchema(ma.Schema):
    processInstance = ma.fields.Dict(metadata={"description": "id, business key, state, start and end, who started it"})
    model = ma.fields.Dict(metadata={"description": "definition, version, deployment, and the BPMN file's sha256"})
    steps = ma.fields.List(ma.fields.Dict(), metadata={"description": "every activity: actor, times, submitted data"})
    variables = ma.fields.Dict()
    legalClocks = ma.fields.List(ma.fields.Dict())
    incidents = ma.fields.List(ma.fields.Dict())
    auditTrail = ma.fields.Dict(metadata={"description": "the hash-chained events and their verification"})
    denials = ma.fields.List(ma.fields.Dict(), metadata={"description": "refused attempts to change the case"})
    generated = ma.fields.Dict()


class SystemEventArgs(ma.Schema):
    kind = ma.fields.String()
    actor = ma.fields.String()
    outcome = ma.fields.String(validate=ma.validate.OneOf(["done", "denied"]))
    processInstanceId = ma.fields.String()
    firstResult = ma.fields.Integer(validate=ma.validate.Range(min=0))
    maxResults = ma.fields.Integer(validate=ma.validate.Range(min=0))


class SystemEventSchema(ma.Schema):
    sequence = ma.fields.Integer()
    at = ma.fields.String()
    actor = ma.fields.String(allow_none=True)
    kind = ma.fields.String()
    outcome = ma.fields.String()
    processInstanceId = ma.fields.String(allow_none=True)
    target = ma.fields.String(allow_none=True)
    data = ma.fields.Dict()
    hash = ma.fields.String()


class ChainSchema(ma.Schema):
    chain = ma.fields.String()
    processInstanceId = ma.fields.String(allow_none=True)
    events = ma.fields.Integer()
    valid = ma.fields.Boolean()
    sequence = ma.fields.Integer(allow_none=True)
    problem = ma.fields.String(allow_none=True)


class VerificationSchema(ma.Schema):
    valid = ma.fields.Boolean()
    chains = ma.fields.Integer()
    problems = ma.fields.List(ma.fields.Nested(ChainSchema))


@blp.route("/process-instance/<instance_id>/dossier")
@blp.response(200, DossierSchema)
def case_dossier(instance_id):
    """The whole case as a reviewer needs it: model and checksum, every step with actor,
    time and data, legal clocks, and the audit chain with its verification."""
    with engine().uow(write=False) as uow:
        return dossier.build(uow, principal(), instance_id)


@blp.route("/audit/system-events")
@blp.arguments(SystemEventArgs, location="query")
@blp.response(200, SystemEventSchema(many=True))
def system_events(args):
    """Deployments, identity and calendar changes, and refused writes (administrators)."""
    require_admin(principal(), "reading the system audit trail")
    stmt = select(SystemAuditEvent).order_by(SystemAuditEvent.seq)
    for arg, column in (("kind", SystemAuditEvent.kind), ("actor", SystemAuditEvent.actor),
                        ("outcome", SystemAuditEvent.outcome), ("processInstanceId", SystemAuditEvent.instance_id)):
        if args.get(arg):
            stmt = stmt.where(column == args[arg])
    stmt = stmt.offset(args.get("firstResult") or 0).limit(args.get("maxResults") or 1000)
    with engine().uow(write=False) as uow:
        return [{"sequence": r.seq, "at": format_date(r.at), "actor": r.actor, "kind": r.kind, "outcome": r.outcome,
                 "processInstanceId": r.instance_id, "target": r.target, "data": r.payload or {}, "hash": r.hash}
                for r in uow.session.execute(stmt).scalars()]


@blp.route("/audit/verification")
@blp.response(200, VerificationSchema)
def verification():
    """Recompute every chain (what `python app.py audit verify` does) and list the broken ones."""
    require_admin(principal(), "verifying the audit trail")
    with engine().uow(write=False) as uow:
        reports = audit.verify_all(uow.session)
    problems = [r.as_dict() for r in reports if not r.ok]
    return {"valid": not problems, "chains": len(reports), "problems": problems}
