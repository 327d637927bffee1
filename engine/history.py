"""History queries (Camunda's /history/*): instances, activities, variables."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import instances
from .errors import BadRequest
from .identity import Principal
from .models import ActivityInstance, ProcessInstance, VariableInstance

STATES = ("ACTIVE", "SUSPENDED", "COMPLETED", "EXTERNALLY_TERMINATED", "INTERNALLY_TERMINATED")


def process_instances(session: Session, principal: Principal, q: instances.InstanceQuery, state: str | None = None,
                      finished: bool | None = None, count_only: bool = False):
    if state is not None and state not in STATES:
        raise BadRequest(f"state {state!r} is not one of {', '.join(STATES)}")
    states = (state,) if state else None
    stmt = instances.filtered(principal, q, states)
    if finished is True:
        stmt = stmt.where(ProcessInstance.end_time.is_not(None))
    elif finished is False:
        stmt = stmt.where(ProcessInstance.end_time.is_(None))
    if count_only:
        return session.execute(select(func.count()).select_from(stmt.subquery())).scalar()
    stmt = stmt.order_by(ProcessInstance.start_time, ProcessInstance.id).offset(q.first_result or 0)
    if q.max_results is not None:
        stmt = stmt.limit(q.max_results)
    return session.execute(stmt).scalars().all()


def _readable_instances(principal: Principal):
    return instances.filtered(principal, instances.InstanceQuery(), None).with_only_columns(ProcessInstance.id)


def activity_instances(session: Session, principal: Principal, process_instance_id=None, activity_id=None,
                       activity_type=None, finished=None, task_assignee=None, first_result=0, max_results=None,
                       count_only=False):
    stmt = select(ActivityInstance)
    if not principal.is_admin:
        stmt = stmt.where(ActivityInstance.instance_id.in_(_readable_instances(principal)))
    if process_instance_id:
        stmt = stmt.where(ActivityInstance.instance_id == process_instance_id)
    if activity_id:
        stmt = stmt.where(ActivityInstance.activity_id == activity_id)
    if activity_type:
        stmt = stmt.where(ActivityInstance.activity_type == activity_type)
    if task_assignee:
        stmt = stmt.where(ActivityInstance.assignee == task_assignee)
    if finished is True:
        stmt = stmt.where(ActivityInstance.end_time.is_not(None))
    elif finished is False:
        stmt = stmt.where(ActivityInstance.end_time.is_(None))
    if count_only:
        return session.execute(select(func.count()).select_from(stmt.subquery())).scalar()
    stmt = stmt.order_by(ActivityInstance.start_time, ActivityInstance.id).offset(first_result or 0)
    if max_results is not None:
        stmt = stmt.limit(max_results)
    return session.execute(stmt).scalars().all()


def variable_instances(session: Session, principal: Principal, process_instance_id=None, variable_name=None,
                       variable_name_like=None, first_result=0, max_results=None, count_only=False):
    stmt = select(VariableInstance)
    if not principal.is_admin:
        stmt = stmt.where(VariableInstance.instance_id.in_(_readable_instances(principal)))
    if process_instance_id:
        stmt = stmt.where(VariableInstance.instance_id == process_instance_id)
    if variable_name:
        stmt = stmt.where(VariableInstance.name == variable_name)
    if variable_name_like:
        stmt = stmt.where(VariableInstance.name.like(variable_name_like))
    if count_only:
        return session.execute(select(func.count()).select_from(stmt.subquery())).scalar()
    stmt = stmt.order_by(VariableInstance.instance_id, VariableInstance.name).offset(first_result or 0)
    if max_results is not None:
        stmt = stmt.limit(max_results)
    return session.execute(stmt).scalars().all()
