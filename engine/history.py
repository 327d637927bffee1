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

_CASES, _ACTIVITY_ROWS, _VARIABLES = ProcessInstance.__table__, ActivityInstance.__table__, VariableInstance.__table__
STATES = ("ACTIVE", "SUSPENDED", "COMPLETED", "EXTERNALLY_TERMINATED", "INTERNALLY_TERMINATED")
_QUERIES = Shapes()          # a statement per shape: the reader's departments, the filters, paging


def _query(db: Session | Connection, principal: Principal, kind: str, filters: list, first_result=0,
           max_results=None, count_only=False):
    """Rows of `kind` (_KINDS: what is read, the column naming each row's case, the order)
    that the reader may see, or their count: the SQL built once per shape (which filters,
    how many values each holds, how many departments the reader has, paging), the values
    bound, run on the driver's cursor (engine/fastsql.py).  `filters`: (column, op, value)
    with op "=", "like", "in" (a list) or "ended" (True, False); one whose value is None or
    empty is left out."""
    shape, values, columns = [], {}, {}
    if not principal.is_admin:
        shape.append(("readable", authz.bind_reader(principal, values), None))
    for column, op, value in filters:
        if value is None or value == "" or (op == "in" and not value):
            continue
        name = f"{column.table.name}_{column.key}_{'like' if op == 'like' else 'is'}"     # two filters on a name
        columns[name] = column
        if op == "in":
            shape.append((name, op, len(value)))
            values.update(numbered(name, list(value)))
        elif op == "ended":
            shape.append((name, op, value))
        else:
            shape.append((name, op, None))
            values[name] = value
    if not count_only and first_result:
        values["offset"] = first_result
    if not count_only and max_results is not None:
        values["limit"] = max_results

    case = _KINDS[kind][1]
    one_case = any(columns.get(name) is case and (op == "=" or op == "in" and n == 1) for name, op, n in shape)

    def build():
        stmt, _, order = _KINDS[kind]
        for name, op, n in shape:
            if name == "readable":      # through the case's own rows when the filters name one case
                me, departments = authz.reader_params(op)
                stmt = stmt.where(authz.takes_part_in(case, me, departments) if one_case
                                  else case.in_(authz.cases_taken_part_in(me, departments)))
                continue
            column = columns[name]
            stmt = stmt.where(column == bindparam(name) if op == "=" else column.like(bindparam(name)) if op == "like"
                              else column.in_(bound(name, n)) if op == "in"
                              else column.is_not(None) if n else column.is_(None))
        if count_only:
            return select(func.count().label("count")).select_from(stmt.subquery())
        stmt = stmt.order_by(*order)
        if "limit" in values:
            stmt = stmt.limit(bindparam("limit"))
        if "offset" in values:
            stmt = stmt.offset(bindparam("offset"))
        return stmt
    result = _QUERIES.get((kind, tuple(shape), count_only, "limit" in values, "offset" in values), build) \
        .execute(db, values)
    return result.scalar() if count_only else result.all()


def process_instances(db: Session | Connection, principal: Principal, q: instances.InstanceQuery,
                      states: tuple | None = None, finished: bool | None = None, count_only: bool = False):
    """The cases the reader takes part in (all but their state documents), oldest first,
    or their count: GET /process-instance (the running states) and /history/process-instance."""
    for state in states or ():
        if state not in STATES:
            raise BadRequest(f"state {state!r} is not one of {', '.join(STATES)}")
    t = _CASES
    return _query(db, principal, "cases", [
        (t.c.state, "in", states), (t.c.definition_key, "=", q.process_definition_key),
        (t.c.definition_id, "=", q.process_definition_id), (t.c.business_key, "=", q.business_key),
        (t.c.id, "in", q.process_instance_ids), (t.c.end_time, "ended", finished)],
        q.first_result, q.max_results, count_only)


def activity_instances(db: Session | Connection, principal: Principal, process_instance_id=None,
                       activity_id=None, activity_type=None, finished=None, task_assignee=None, first_result=0,
                       max_results=None, count_only=False):
    """Rows of activity_instance the reader may see, oldest first, or their count."""
    t = _ACTIVITY_ROWS
    return _query(db, principal, "activities", [
        (t.c.instance_id, "=", process_instance_id), (t.c.activity_id, "=", activity_id),
        (t.c.activity_type, "=", activity_type), (t.c.assignee, "=", task_assignee),
        (t.c.end_time, "ended", finished)], first_result, max_results, count_only)


def variable_instances(db: Session | Connection, principal: Principal, process_instance_id=None, variable_name=None,
                       variable_name_like=None, first_result=0, max_results=None, count_only=False):
    """Rows of variable_instance the reader may see, with their case's definition id and
    key, by case and name, or their count."""
    t = _VARIABLES
    return _query(db, principal, "variables", [
        (t.c.instance_id, "=", process_instance_id), (t.c.name, "=", variable_name),
        (t.c.name, "like", variable_name_like)], first_result, max_results, count_only)


# what each kind reads, the column naming its rows' case, the order
_KINDS = {
    "cases": (select(*instances.CASE_COLUMNS), _CASES.c.id, (_CASES.c.start_time, _CASES.c.id)),
    "activities": (select(_ACTIVITY_ROWS), _ACTIVITY_ROWS.c.instance_id,
                   (_ACTIVITY_ROWS.c.start_time, _ACTIVITY_ROWS.c.id)),
    "variables": (select(_VARIABLES, _CASES.c.definition_id, _CASES.c.definition_key)
                  .join(_CASES, _CASES.c.id == _VARIABLES.c.instance_id), _VARIABLES.c.instance_id,
                  (_VARIABLES.c.instance_id, _VARIABLES.c.name)),
}
