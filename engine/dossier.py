"""A case's dossier (案卷) for case-file review (卷宗评查): everything needed to judge the
case without access to the server.

    model       which diagram ran: definition, version, deployment, who deployed it, and
                the SHA-256 of the BPMN file as deployed (compare it with the designer's file)
    steps       every activity, with who acted, when, and what data they submitted
    legalClocks the legal and promised time limits (法定/承诺时限), pauses and outcomes
    auditTrail  the case's hash chain, event by event, with the result of recomputing it
    denials     refused attempts to change the case (from the system audit chain)
"""
from __future__ import annotations

import hashlib

from sqlalchemy import select

from . import audit, authz, legal_service
from .clock import utcnow
from .db import UnitOfWork
from .errors import NotFound
from .identity import SYSTEM, Principal
from .models import (ActivityInstance, AuditEvent, Deployment, Incident, ProcessDefinition, ProcessInstance,
                     Resource, SystemAuditEvent, VariableInstance)
from .variables import format_date

# audit events that close a step, and where their payload names the actor
_COMPLETIONS = {"TaskCompleted", "TaskBpmnError", "ExternalTaskCompleted", "ExternalTaskBpmnError", "MessageCorrelated",
                "SignalReceived", "TimerFired"}


def build(uow: UnitOfWork, principal: Principal, instance_id: str) -> dict:
    authz.require_dossier_reader(principal, instance_id)
    session = uow.session
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"Process instance with id {instance_id} does not exist")
    events = session.execute(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                             .order_by(AuditEvent.seq, AuditEvent.id)).scalars().all()
    verdict = audit.verify_instance(session, instance_id, audit.deleted_instances(session))
    return {
        "processInstance": _instance(instance),
        "model": _model(session, instance.definition_id),
        "steps": _steps(session, instance_id, events),
        "variables": _variables(session, instance_id),
        "legalClocks": legal_service.list_clocks(session, uow.ctx.calendars, SYSTEM, instance_id),
        "incidents": _incidents(session, instance_id),
        "auditTrail": {"verification": verdict.as_dict(), "head": instance.audit_head,
                       "events": [_event(e) for e in events]},
        "denials": _denials(session, instance_id),
        "generated": {"at": format_date(utcnow()), "by": principal.user_id},
    }


def _instance(row: ProcessInstance) -> dict:
    return {"id": row.id, "businessKey": row.business_key, "state": row.state,
            "startTime": format_date(row.start_time), "endTime": format_date(row.end_time),
            "startUserId": row.start_user_id, "startActivityId": row.start_activity_id,
            "endActivityId": row.end_activity_id, "deleteReason": row.delete_reason}


def _model(session, definition_id: str) -> dict:
    definition = session.get(ProcessDefinition, definition_id)
    if definition is None:
        return {"processDefinitionId": definition_id, "missing": True}
    deployment = session.get(Deployment, definition.deployment_id)
    resource = session.get(Resource, definition.resource_id)
    return {"processDefinitionId": definition.id, "key": definition.key, "name": definition.name,
            "version": definition.version, "versionTag": definition.version_tag,
            "deploymentId": definition.deployment_id,
            "deployedAt": format_date(deployment.deployment_time) if deployment else None,
            "deployedBy": deployment.deployed_by if deployment else None,
            "resource": definition.resource_name,
            "sha256": hashlib.sha256(resource.content).hexdigest() if resource else None}


def _steps(session, instance_id: str, events: list) -> list[dict]:
    by_task: dict[str, list] = {}
    for e in events:
        if e.task_id:
            by_task.setdefault(e.task_id, []).append(e)
    rows = session.execute(select(ActivityInstance).where(ActivityInstance.instance_id == instance_id)
                           .order_by(ActivityInstance.start_time, ActivityInstance.seq, ActivityInstance.id)).scalars()
    steps = []
    for row in rows:
        own = by_task.get(row.id, [])
        closing = next((e for e in reversed(own) if e.kind in _COMPLETIONS), None)
        steps.append({
            "activityInstanceId": row.id, "activityId": row.activity_id, "name": row.activity_name,
            "type": row.activity_type, "assignee": row.assignee,
            "actor": _actor(closing) or row.assignee or (SYSTEM.user_id if row.end_time else None),
            "startTime": format_date(row.start_time), "endTime": format_date(row.end_time),
            "canceled": bool(row.canceled),
            "data": (closing.payload or {}).get("variables") if closing else None,
            "events": [{"sequence": e.seq, "kind": e.kind, "actor": e.actor, "at": format_date(e.at)} for e in own],
        })
    return steps


def _actor(event) -> str | None:
    if event is None:
        return None
    worker = (event.payload or {}).get("workerId")
    return f"{event.actor} (worker {worker})" if worker else event.actor


def _variables(session, instance_id: str) -> dict:
    rows = session.execute(select(VariableInstance).where(VariableInstance.instance_id == instance_id)
                           .order_by(VariableInstance.name)).scalars()
    return {r.name: {"type": r.type, "value": r.value, "updated": format_date(r.updated)} for r in rows}


def _incidents(session, instance_id: str) -> list[dict]:
    rows = session.execute(select(Incident).where(Incident.instance_id == instance_id)
                           .order_by(Incident.incident_timestamp)).scalars()
    return [{"id": r.id, "type": r.incident_type, "activityId": r.activity_id, "message": r.message,
             "at": format_date(r.incident_timestamp)} for r in rows]


def _event(e: AuditEvent) -> dict:
    return {"sequence": e.seq, "at": format_date(e.at), "actor": e.actor, "kind": e.kind,
            "activityId": e.activity_id, "taskId": e.task_id, "data": e.payload or {},
            "previousHash": e.prev_hash, "hash": e.hash}


def _denials(session, instance_id: str) -> list[dict]:
    rows = session.execute(select(SystemAuditEvent).where(SystemAuditEvent.instance_id == instance_id,
                                                          SystemAuditEvent.outcome == "denied")
                           .order_by(SystemAuditEvent.seq)).scalars()
    return [{"systemSequence": r.seq, "at": format_date(r.at), "actor": r.actor, "request": r.target,
             "reason": (r.payload or {}).get("reason")} for r in rows]
