"""History queries (Camunda's /history/*): instances, activities, variables."""
from __future__ import annotations

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from . import authz, instances
from .errors import BadRequest
from .fastsql import Shapes, bound, numbered
from .identity import Principal
from .models import ActivityInstance, ProcessInstance, VariableInstance

_ACTIVITY_ROWS = ActivityInstance.__table__
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


_ACTIVITIES = Shapes()       # a statement per shape: the reader's departments, the filters, paging


def activity_instances(session: Session | Connection, principal: Principal, process_instance_id=None,
                       activity_id=None, activity_type=None, finished=None, task_assignee=None, first_result=0,
                       max_results=None, count_only=False):
    """Rows of activity_instance (or their count) the reader may see, oldest first: the
    SQL built once per shape of the query (which filters, how many departments the
    reader has, paging), the values bound, run on the driver's cursor (engine/fastsql.py).
    On a unit of work's session or a bare connection."""
    shape, values = [], {}
    if not principal.is_admin:
        departments = authz.department_groups(principal)
        shape.append(("readable", len(departments)))
        values.update(numbered("department", departments), me=principal.user_id)
    for column, value in (("instance_id", process_instance_id), ("activity_id", activity_id),
                          ("activity_type", activity_type), ("assignee", task_assignee)):
        if value:
            shape.append(column)
            values[f"is_{column}"] = value
    if finished is not None:
        shape.append(("finished", finished))
    if not count_only and first_result:
        values["offset"] = first_result
    if not count_only and max_results is not None:
        values["limit"] = max_results

    def build():
        t = _ACTIVITY_ROWS
        stmt = select(t)
        for item in shape:
            if isinstance(item, str):
                stmt = stmt.where(t.c[item] == bindparam(f"is_{item}"))
            elif item[0] == "finished":
                stmt = stmt.where(t.c.end_time.is_not(None) if item[1] else t.c.end_time.is_(None))
            else:
                readable = authz.cases_taken_part_in(bindparam("me"), bound("department", item[1]))
                stmt = stmt.where(t.c.instance_id.in_(select(ProcessInstance.id).where(readable)))
        if count_only:
            return select(func.count().label("count")).select_from(stmt.subquery())
        stmt = stmt.order_by(t.c.start_time, t.c.id)
        if "limit" in values:
            stmt = stmt.limit(bindparam("limit"))
        if "offset" in values:
            stmt = stmt.offset(bindparam("offset"))
        return stmt
    result = _ACTIVITIES.get((tuple(shape), count_only, "limit" in values, "offset" in values), build) \
        .execute(session, values)
    return result.scalar() if count_only else result.all()


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
