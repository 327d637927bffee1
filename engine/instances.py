"""Process instances: start, query, variables, activity tree, delete."""
from __future__ import annotations

import copy
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import authz, runtime
from .db import UnitOfWork
from .definitions import definition_by_id, latest_definition
from .errors import BadRequest, Forbidden, NotFound
from .identity import Principal
from .models import ActivityInstance, ProcessDefinition, ProcessInstance
from .projections import process_variables

RUNNING = (runtime.ACTIVE, "SUSPENDED")


def start(uow: UnitOfWork, principal: Principal, variables: dict, business_key: str | None,
          key: str | None = None, definition_id: str | None = None) -> tuple[runtime.InstanceRecord, dict]:
    session = uow.session
    definition = latest_definition(session, key) if key else definition_by_id(session, definition_id)
    authz.require_start(principal, definition)
    if business_key is not None and (not isinstance(business_key, str) or len(business_key) > 255):
        raise BadRequest("businessKey must be a string of at most 255 characters")
    record, workflow = runtime.start_instance(uow, definition, variables, business_key, principal)
    result = process_variables(workflow)
    uow.commit()
    return record, result


@dataclass
class InstanceQuery:
    process_definition_key: str | None = None
    process_definition_id: str | None = None
    business_key: str | None = None
    process_instance_ids: list | None = None
    first_result: int = 0
    max_results: int | None = None


def may_read(session: Session, principal: Principal, instance: ProcessInstance) -> bool:
    """Admins, the user who started it, and anyone a task of it is (or was) offered to (engine.authz)."""
    return authz.may_read_case(session, principal, instance.id)


def get(session: Session, principal: Principal, instance_id: str, running_only: bool = True) -> ProcessInstance:
    row = session.get(ProcessInstance, instance_id)
    if row is None or (running_only and row.state not in RUNNING):
        raise NotFound(f"Process instance with id {instance_id} does not exist")
    if not may_read(session, principal, row):
        raise Forbidden(f"user '{principal.user_id}' takes no part in process instance {instance_id}",
                        userId=principal.user_id)
    return row


def query(session: Session, principal: Principal, q: InstanceQuery, states=RUNNING) -> list[ProcessInstance]:
    stmt = filtered(principal, q, states).order_by(ProcessInstance.start_time, ProcessInstance.id)
    stmt = stmt.offset(q.first_result or 0)
    if q.max_results is not None:
        stmt = stmt.limit(q.max_results)
    return session.execute(stmt).scalars().all()


def count(session: Session, principal: Principal, q: InstanceQuery, states=RUNNING) -> int:
    stmt = filtered(principal, q, states)
    return session.execute(select(func.count()).select_from(stmt.subquery())).scalar()


def filtered(principal: Principal, q: InstanceQuery, states):
    stmt = select(ProcessInstance)
    if states:
        stmt = stmt.where(ProcessInstance.state.in_(states))
    if not principal.is_admin:
        stmt = stmt.where(authz.readable_cases(principal))
    if q.process_definition_key:
        stmt = stmt.where(ProcessInstance.definition_key == q.process_definition_key)
    if q.process_definition_id:
        stmt = stmt.where(ProcessInstance.definition_id == q.process_definition_id)
    if q.business_key:
        stmt = stmt.where(ProcessInstance.business_key == q.business_key)
    if q.process_instance_ids:
        stmt = stmt.where(ProcessInstance.id.in_(q.process_instance_ids))
    return stmt


def variables(uow: UnitOfWork, principal: Principal, instance_id: str) -> dict:
    get(uow.session, principal, instance_id)
    with runtime.peek_workflow(uow, instance_id) as workflow:
        return copy.deepcopy(process_variables(workflow))


def delete(uow: UnitOfWork, principal: Principal, instance_id: str, reason: str | None = None) -> None:
    row = get(uow.session, principal, instance_id)
    if not principal.is_admin and row.start_user_id != principal.user_id:
        raise Forbidden(f"only an administrator or the user who started process instance {instance_id} may "
                        "delete it", userId=principal.user_id)
    command = runtime.open_instance(uow, instance_id, principal)
    runtime.terminate(command, reason)
    runtime.save(command)
    uow.commit()


def activity_tree(session: Session, principal: Principal, instance_id: str) -> dict:
    """Camunda's activity-instance tree: the running activities nested under their scopes."""
    row = get(session, principal, instance_id)
    open_rows = session.execute(select(ActivityInstance).where(
        ActivityInstance.instance_id == instance_id, ActivityInstance.end_time.is_(None))
        .order_by(ActivityInstance.start_time)).scalars().all()
    definition = session.get(ProcessDefinition, row.definition_id)

    def node(ident, parent, activity_id, activity_type, name):
        return {"id": ident, "parentActivityInstanceId": parent, "activityId": activity_id,
                "activityType": activity_type, "processInstanceId": instance_id,
                "processDefinitionId": row.definition_id, "childActivityInstances": [],
                "childTransitionInstances": [], "executionIds": [ident], "activityName": name,
                "name": name, "incidentIds": [], "incidents": []}

    root = node(instance_id, None, row.definition_key, "processDefinition", definition.name if definition else None)
    nodes = {instance_id: root}
    for a in open_rows:
        nodes[a.id] = node(a.id, a.parent_activity_instance_id or instance_id, a.activity_id, a.activity_type,
                           a.activity_name)
    for a in open_rows:
        parent = nodes.get(a.parent_activity_instance_id or instance_id, root)
        parent["childActivityInstances"].append(nodes[a.id])
    return root
