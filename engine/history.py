"""History queries (Camunda's /history/*): instances, activities, user tasks, variables."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, bindparam, exists, func, not_, or_, select, true, union
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from . import authz, instances
from .errors import BadRequest
from .fastsql import LIKE_ESCAPE, Likely, Shapes, bound, numbered
from .identity import Principal
from .models import ActivityInstance, Incident, ProcessDefinition, ProcessInstance, VariableInstance
from .variable_values import JsonText
from .variables import DATE_PRECISION

_CASES, _ACTIVITY_ROWS, _VARIABLES = ProcessInstance.__table__, ActivityInstance.__table__, VariableInstance.__table__
_DEFINITIONS, _INCIDENTS = ProcessDefinition.__table__, Incident.__table__
STATES = ("ACTIVE", "SUSPENDED", "COMPLETED", "EXTERNALLY_TERMINATED", "INTERNALLY_TERMINATED")
_QUERIES = Shapes()          # a statement per shape: the reader's departments, the filters, its order, paging


class VariableCondition(NamedTuple):
    """One of Camunda's `variables` expressions (`name_operator_value`) on a case."""
    name: str
    operator: str          # eq | neq | like
    value: str


VARIABLE_OPERATORS = ("eq", "neq", "like")


@dataclass
class ActivityQuery:
    """A list of the history's activities: Camunda's filters whose data activity_instance holds."""
    process_instance_id: str | None = None
    execution_id: str | None = None                # an activity's execution is its case (api/render.py)
    activity_instance_id: str | None = None
    process_definition_id: str | None = None
    activity_id: str | None = None
    activity_name: str | None = None
    activity_type: str | None = None
    task_assignee: str | None = None
    finished: bool | None = None
    canceled: bool = False
    complete_scope: bool = False
    started_before: datetime | None = None         # naive UTC; each bound inclusive (Camunda)
    started_after: datetime | None = None
    finished_before: datetime | None = None
    finished_after: datetime | None = None
    sort_by: str | None = None                     # a name of ACTIVITY_SORTS
    sort_order: str = "asc"
    first_result: int = 0
    max_results: int | None = None


@dataclass
class TaskQuery:
    """A list of the history's user tasks (GET /history/task): their rows of
    activity_instance (engine/task_history.py), with Camunda's filters whose data those
    rows and their case's hold.  Dates are naive UTC; due and follow-up bounds are strict,
    an "on" date is that millisecond (as the task query's), the others inclusive."""
    task_id: str | None = None
    process_instance_id: str | None = None
    execution_id: str | None = None                # a task's execution is its case (api/render.py)
    business_key: str | None = None
    business_keys: list | None = None
    business_key_like: str | None = None
    process_definition_id: str | None = None
    process_definition_key: str | None = None
    process_definition_name: str | None = None
    activity_instance_ids: list | None = None      # a user task's activity instance is the task itself
    name: str | None = None
    name_like: str | None = None
    description: str | None = None
    description_like: str | None = None
    task_definition_key: str | None = None
    task_definition_keys: list | None = None
    delete_reason: str | None = None               # completed | deleted | a deleted case's reason
    delete_reason_like: str | None = None
    assignee: str | None = None
    assignee_like: str | None = None
    owner: str | None = None
    owner_like: str | None = None
    priority: int | None = None
    assigned: bool = False
    unassigned: bool = False
    finished: bool | None = None
    process_finished: bool | None = None
    due_on: datetime | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    without_due: bool = False
    follow_up_on: datetime | None = None
    follow_up_before: datetime | None = None
    follow_up_after: datetime | None = None
    started_before: datetime | None = None
    started_after: datetime | None = None
    finished_before: datetime | None = None
    finished_after: datetime | None = None
    tenant_ids: list | None = None
    without_tenant: bool = False
    sort_by: str | None = None                     # a name of TASK_SORTS
    sort_order: str = "asc"
    first_result: int = 0
    max_results: int | None = None


@dataclass
class VariableQuery:
    """A list of the history's variables: Camunda's filters whose data variable_instance holds."""
    process_instance_id: str | None = None
    process_instance_ids: list | None = None
    execution_ids: list | None = None              # a variable's execution is its case (api/render.py)
    process_definition_id: str | None = None
    process_definition_key: str | None = None
    variable_name: str | None = None
    variable_name_like: str | None = None
    variable_names: list | None = None
    variable_value: str | None = None              # with variable_name: a String variable of this value
    variable_types: list | None = None             # Camunda's type names, any case (string, integer, ...)
    sort_by: str | None = None                     # a name of VARIABLE_SORTS
    sort_order: str = "asc"
    first_result: int = 0
    max_results: int | None = None


def _query(db: Session | Connection, principal: Principal, kind: str, filters: list, first_result=0,
           max_results=None, count_only=False, sort: tuple | None = None):
    """Rows of `kind` (_KINDS: what is read, the column naming each row's case, the order)
    that the reader may see, or their count: the SQL built once per shape (which filters,
    how many values each holds, how many departments the reader has, the order, paging),
    the values bound, run on the driver's cursor (engine/fastsql.py).  `filters`: (column,
    op, value) with op "=", "like", "in" (a list), "not in" (a list), ">=", "<=" or "ended"
    (True, False), "<", ">" or "on" (a date: that millisecond); or (a name of _CONDITIONS,
    op, value) with op "=", "in" (a list) or "flag" (True); or ("variables", "variables",
    [VariableCondition]).  One whose value is
    None, False or empty is left out, so a filter added here never changes the SQL of a
    shape without it.  `sort`: (a name of _SORTS[kind], "asc" or "desc"), or None for
    _KINDS' order."""
    shape, values, columns = [], {}, {}
    if not principal.is_admin:
        shape.append(("readable", authz.bind_reader(principal, values), None))
    widespread = True           # every filter is one most cases meet: the running states, or none (_by_start)
    for column, op, value in filters:
        if value is None or value == "" or (op in ("in", "not in", "flag", "variables") and not value):
            continue
        widespread = widespread and column is _CASES.c.state and op == "in" and set(value) == _RUNNING
        if op == "variables":
            shape.append(("variables", op, tuple(c.operator for c in value)))
            for i, condition in enumerate(value):
                values.update({f"variable_{i}_name": condition.name, f"variable_{i}_value": condition.value})
            continue
        if isinstance(column, str):                  # a condition of _CONDITIONS, bound under its name
            name = column
        else:                                        # two filters on a name
            name = f"{column.table.name}_{column.key}_{_SUFFIXES.get(op, 'is')}"
            columns[name] = column
        if op in ("in", "not in"):
            shape.append((name, op, len(value)))
            values.update(numbered(name, list(value)))
        elif op in ("ended", "flag"):
            shape.append((name, op, value))
        elif op == "on":
            shape.append((name, op, None))
            values.update({name: value, f"{name}_end": value + DATE_PRECISION})
        else:
            shape.append((name, op, None))
            values[name] = value
    if not count_only and first_result:
        values["offset"] = first_result
    if not count_only and max_results is not None:
        values["limit"] = max_results
    if sort is not None and sort[0] not in _SORTS[kind]:
        raise BadRequest(f"sortBy {sort[0]!r} is not supported; use one of {', '.join(_SORTS[kind])}")

    case = _KINDS[kind][1]
    one_case = any(columns.get(name) is case and (op == "=" or op == "in" and n == 1) for name, op, n in shape)
    departments = next((op for name, op, _ in shape if name == "readable"), None)    # None: an administrator
    from_ways = departments is not None and not one_case       # the cases read from the reader's own rows

    def build():
        stmt, _, order = _KINDS[kind]
        for name, op, n in shape:
            if name == "readable":      # through the case's own rows when the filters name one case
                me, readers = authz.reader_params(op)
                stmt = stmt.where(authz.takes_part_in(case, me, readers) if one_case
                                  else case.in_(authz.cases_taken_part_in(me, readers)))
                continue
            clause = _clause(name, op, n, columns.get(name))
            # the states of a list read from the reader's own cases: SQLite would otherwise read
            # every running case by the index on state and test each against the reader's set
            # (15 ms at 50,000 running cases for a reader of none) instead of reading theirs by id
            stmt = stmt.where(Likely(clause) if from_ways and columns.get(name) is _CASES.c.state else clause)
        if count_only:
            return select(func.count().label("count")).select_from(stmt.subquery())
        ordering = list(order)
        if sort is not None and kind == "cases" and sort[0] == "startTime":
            # the order of ix_process_instance_start_time_id, either way (a start time is never null)
            ordering = [c.desc() for c in order] if sort[1] == "desc" else ordering
        elif sort is not None:          # Camunda's order, then _KINDS' to break ties (a page stays a page)
            key = _SORTS[kind][sort[0]]
            # unfinished (null) last going up, first going down, on SQLite as on PostgreSQL
            ordering.insert(0, key.desc().nulls_first() if sort[1] == "desc" else key.asc().nulls_last())
        stmt = stmt.order_by(*ordering)
        if "limit" in values:
            stmt = stmt.limit(bindparam("limit"))
        if "offset" in values:
            stmt = stmt.offset(bindparam("offset"))
        return stmt
    key = (kind, tuple(shape), count_only, "limit" in values, "offset" in values, None if count_only else sort)
    if (kind == "cases" and from_ways and widespread and sort in _BY_START
            and (count_only or max_results is not None)):
        if not count_only:
            values["reach"] = first_result + max_results
        result = _QUERIES.get(("by start",) + key, lambda: _by_start(shape, count_only, sort, "offset" in values))
        result = result.execute(db, values)
    else:
        result = _QUERIES.get(key, build).execute(db, values)
    return result.scalar() if count_only else result.all()


# The running cases an officer takes part in (GET /process-instance and its count), or all
# their cases (the history's list), in no order but start time: read from the reader's own
# index entries, each way's in start-time order (authz.cases_by_start), the count from them
# alone and a page from the first `reach` (offset + limit) cases of each way.  Read as the set of
# them all, a busy department's count and its pages beyond the first cost 45-60 ms for
# 10,000 running cases on either store, as the set grew (bench/TUNING.md).
_RUNNING = set(instances.RUNNING)
_BY_START = (None, ("startTime", "asc"), ("startTime", "desc"))     # orders that start time gives


def _by_start(shape: list, count_only: bool, sort: tuple | None, offset: bool):
    """_query's statement for a list of cases filtered by nothing but the running states
    (or not at all), in start-time order: the count of the reader's cases, or a page of them."""
    departments = next(op for name, op, _ in shape if name == "readable")
    states = next(((name, n) for name, op, n in shape if name != "readable"), None)   # the running states
    me, readers = authz.reader_params(departments)
    ways = authz.cases_by_start(me, readers, None if states is None else
                                lambda cases: cases.c.state.in_(bound(*states)))
    if count_only:
        ids = union(*(way.with_only_columns(way.selected_columns.id) for way in ways)).subquery()
        return select(func.count().label("count")).select_from(ids)
    descending = sort is not None and sort[1] == "desc"

    def order(start, ident):
        return (start.desc(), ident.desc()) if descending else (start, ident)
    # each way's first `reach` cases, not rows: a case holds several of a way's rows (parallel
    # tasks offered to one department, the steps an officer worked)
    firsts = [way.distinct().order_by(*order(*way.selected_columns)).limit(bindparam("reach")).subquery()
              for way in ways]
    mine = union(*(select(first.c.start_time, first.c.id) for first in firsts)).subquery()
    page = select(mine.c.id).order_by(*order(mine.c.start_time, mine.c.id)).limit(bindparam("limit"))
    page = page.offset(bindparam("offset")) if offset else page
    return (select(*instances.CASE_COLUMNS).where(_CASES.c.id.in_(page))
            .order_by(*order(_CASES.c.start_time, _CASES.c.id)))


_SUFFIXES = {"like": "like", "not in": "notin", ">=": "from", "<=": "to", "<": "before", ">": "after",
             "on": "on"}                                                       # "=", "in", "ended": "is"


def _clause(name: str, op: str, n, column):
    """The WHERE condition of one item of a shape (_query), its values bound under `name`."""
    if op == "variables":
        return and_(*(_case_variable(i, operator) for i, operator in enumerate(n)))
    if name in _CONDITIONS:
        condition = _CONDITIONS[name]
        return condition() if op == "flag" else condition(bound(name, n)) if op == "in" else condition(bindparam(name))
    return (column == bindparam(name) if op == "=" else column.like(bindparam(name), escape=LIKE_ESCAPE) if op == "like"
            else column.in_(bound(name, n)) if op == "in"
            else column.not_in(bound(name, n)) if op == "not in"
            else column >= bindparam(name) if op == ">="
            else column <= bindparam(name) if op == "<="
            else column < bindparam(name) if op == "<"
            else column > bindparam(name) if op == ">"
            else and_(column >= bindparam(name), column < bindparam(f"{name}_end")) if op == "on"
            else column.is_not(None) if n else column.is_(None))


def process_instances(db: Session | Connection, principal: Principal, q: instances.InstanceQuery,
                      states: tuple | None = None, finished: bool | None = None, count_only: bool = False):
    """The cases the reader takes part in (all but their state documents), oldest first
    unless `q` names an order, or their count: GET /process-instance (the running states)
    and /history/process-instance."""
    for state in states or ():
        if state not in STATES:
            raise BadRequest(f"state {state!r} is not one of {', '.join(STATES)}")
    t = _CASES
    executed = [q.executed_activity_after, q.executed_activity_before]
    return _query(db, principal, "cases", [
        (t.c.state, "in", states), (t.c.definition_key, "=", q.process_definition_key),
        (t.c.definition_id, "=", q.process_definition_id), (t.c.business_key, "=", q.business_key),
        (t.c.id, "in", q.process_instance_ids), (t.c.end_time, "ended", finished),
        (t.c.business_key, "like", q.business_key_like), (t.c.business_key, "in", q.business_key_in),
        (t.c.definition_key, "in", q.definition_key_in), (t.c.definition_key, "not in", q.definition_key_not_in),
        ("definition_name", "=", q.definition_name), ("definition_name_like", "=", q.definition_name_like),
        ("deployment_id", "=", q.deployment_id),
        (t.c.start_time, "<=", q.started_before), (t.c.start_time, ">=", q.started_after),
        (t.c.end_time, "<=", q.finished_before), (t.c.end_time, ">=", q.finished_after),
        (t.c.start_user_id, "=", q.started_by),
        (t.c.tenant_id, "in", q.tenant_id_in), ("without_tenant_id", "flag", q.without_tenant_id),
        ("incident", "flag", q.with_incident), ("incident_id", "=", q.incident_id),
        ("incident_type", "=", q.incident_type), ("incident_message", "=", q.incident_message),
        ("incident_message_like", "=", q.incident_message_like),
        ("active_activity", "in", q.active_activity_ids), ("executed_activity", "in", q.executed_activity_ids),
        # both bounds on the same activity, as Camunda reads them
        ("executed_between", "in", executed if all(executed) else None),
        ("executed_after", "=", None if all(executed) else q.executed_activity_after),
        ("executed_before", "=", None if all(executed) else q.executed_activity_before),
        ("variables", "variables", q.variables)],
        q.first_result, q.max_results, count_only, _sorting(q))


def activity_instances(db: Session | Connection, principal: Principal, q: ActivityQuery, count_only=False):
    """Rows of activity_instance the reader may see, oldest first unless `q` names an
    order, or their count."""
    t = _ACTIVITY_ROWS
    return _query(db, principal, "activities", [
        (t.c.instance_id, "=", q.process_instance_id), (t.c.activity_id, "=", q.activity_id),
        (t.c.activity_type, "=", q.activity_type), (t.c.assignee, "=", q.task_assignee),
        (t.c.end_time, "ended", q.finished),
        ("activity_execution", "=", q.execution_id),
        (t.c.id, "=", q.activity_instance_id), (t.c.definition_id, "=", q.process_definition_id),
        (t.c.activity_name, "=", q.activity_name),
        ("canceled", "flag", q.canceled), ("complete_scope", "flag", q.complete_scope),
        (t.c.start_time, "<=", q.started_before), (t.c.start_time, ">=", q.started_after),
        (t.c.end_time, "<=", q.finished_before), (t.c.end_time, ">=", q.finished_after)],
        q.first_result, q.max_results, count_only, _sorting(q))


def tasks(db: Session | Connection, principal: Principal, q: TaskQuery, count_only=False):
    """The user tasks the reader may see in the history (of the cases they take part in),
    open and ended, each row with its case's tenant, oldest first unless `q` names an
    order, or their count."""
    t, c = _ACTIVITY_ROWS, _CASES
    return _query(db, principal, "tasks", [
        (t.c.id, "=", q.task_id), (t.c.instance_id, "=", q.process_instance_id),
        ("activity_execution", "=", q.execution_id), (t.c.id, "in", q.activity_instance_ids),
        (c.c.business_key, "=", q.business_key), (c.c.business_key, "in", q.business_keys),
        (c.c.business_key, "like", q.business_key_like),
        (t.c.definition_id, "=", q.process_definition_id), (t.c.definition_key, "=", q.process_definition_key),
        ("definition_name", "=", q.process_definition_name),
        (t.c.task_name, "=", q.name), (t.c.task_name, "like", q.name_like),
        (t.c.description, "=", q.description), (t.c.description, "like", q.description_like),
        (t.c.activity_id, "=", q.task_definition_key), (t.c.activity_id, "in", q.task_definition_keys),
        (t.c.delete_reason, "=", q.delete_reason), (t.c.delete_reason, "like", q.delete_reason_like),
        (t.c.assignee, "=", q.assignee), (t.c.assignee, "like", q.assignee_like),
        (t.c.owner, "=", q.owner), (t.c.owner, "like", q.owner_like), (t.c.priority, "=", q.priority),
        ("task_assigned", "flag", q.assigned), ("task_unassigned", "flag", q.unassigned),
        (t.c.end_time, "ended", q.finished), (c.c.end_time, "ended", q.process_finished),
        (t.c.due, "on", q.due_on), (t.c.due, "<", q.due_before), (t.c.due, ">", q.due_after),
        ("without_due", "flag", q.without_due),
        (t.c.follow_up, "on", q.follow_up_on), (t.c.follow_up, "<", q.follow_up_before),
        (t.c.follow_up, ">", q.follow_up_after),
        (t.c.start_time, "<=", q.started_before), (t.c.start_time, ">=", q.started_after),
        (t.c.end_time, "<=", q.finished_before), (t.c.end_time, ">=", q.finished_after),
        (c.c.tenant_id, "in", q.tenant_ids), ("without_tenant_id", "flag", q.without_tenant)],
        q.first_result, q.max_results, count_only, _sorting(q))


def variable_instances(db: Session | Connection, principal: Principal, q: VariableQuery, count_only=False):
    """Rows of variable_instance the reader may see, with their case's definition id and
    key, by case and name unless `q` names an order, or their count."""
    if q.variable_value is not None and not q.variable_name:
        # Camunda's words
        raise BadRequest("Only a single variable value parameter specified: variable name and value are required "
                         "to be able to query after a specific variable value.")
    t = _VARIABLES
    return _query(db, principal, "variables", [
        (t.c.instance_id, "=", q.process_instance_id), (t.c.name, "=", q.variable_name),
        (t.c.name, "like", q.variable_name_like),
        (t.c.instance_id, "in", q.process_instance_ids), ("variable_execution", "in", q.execution_ids),
        (t.c.name, "in", q.variable_names),
        (_CASES.c.definition_id, "=", q.process_definition_id),
        (_CASES.c.definition_key, "=", q.process_definition_key),
        ("string_value", "=", q.variable_value),
        ("type_in", "in", [name.lower() for name in q.variable_types] if q.variable_types else None)],
        q.first_result, q.max_results, count_only, _sorting(q))


def _sorting(q) -> tuple | None:
    return (q.sort_by, q.sort_order) if q.sort_by else None


# --- the SQL -----------------------------------------------------------------------

class _Duration(FunctionElement):
    """end - start, in an order each database keeps (null while unfinished)."""
    inherit_cache = True
    name = "duration"


@compiles(_Duration, "sqlite")
def _duration_sqlite(element, compiler, **kw):
    end, start = element.clauses
    return f"(julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)}))"


@compiles(_Duration, "postgresql")
def _duration_postgresql(element, compiler, **kw):
    end, start = element.clauses
    return f"({compiler.process(end, **kw)} - {compiler.process(start, **kw)})"


def _string_value(table, operator: str, value):
    """Camunda's condition on a variable's value given as text: only a variable of type
    String, with a value, equal to it (eq), like it (like), or anything else (neq)."""
    text = JsonText(table.c.value)
    matches = and_(table.c.type == "String", text.is_not(None),
                   text.like(value, escape=LIKE_ESCAPE) if operator == "like" else text == value)
    return not_(matches) if operator == "neq" else matches


_CASE_VARIABLES = VariableInstance.__table__.alias("case_variable")      # a case's own, in a condition on it
_CASE_ACTIVITIES = ActivityInstance.__table__.alias("case_activity")


def _case_variable(i: int, operator: str):
    """The case has a variable named `variable_<i>_name` meeting `operator` and `variable_<i>_value`."""
    v = _CASE_VARIABLES
    return exists().where(v.c.instance_id == _CASES.c.id, v.c.name == bindparam(f"variable_{i}_name"),
                          _string_value(v, operator, bindparam(f"variable_{i}_value")))


def _of_definitions(condition):
    return _CASES.c.definition_id.in_(select(_DEFINITIONS.c.id).where(condition))


def _with_incident(*conditions):
    return exists().where(_INCIDENTS.c.instance_id == _CASES.c.id, *conditions)


def _with_activity(*conditions):
    return exists().where(_CASE_ACTIVITIES.c.instance_id == _CASES.c.id, *conditions)


def _executed(after=None, before=None):
    """An activity of the case started or ended within the bounds (Camunda's executedActivityAfter/Before)."""
    a = _CASE_ACTIVITIES.c
    return _with_activity(*([or_(a.start_time >= after, a.end_time >= after)] if after is not None else []),
                          *([or_(a.start_time <= before, a.end_time <= before)] if before is not None else []))


# filters that are not a column compared with a value: name -> the condition, given its
# bind parameter (a list of them for "in", none for a flag)
_CONDITIONS = {
    "definition_name": lambda p: _of_definitions(_DEFINITIONS.c.name == p),
    "definition_name_like": lambda p: _of_definitions(_DEFINITIONS.c.name.like(p, escape=LIKE_ESCAPE)),
    "deployment_id": lambda p: _of_definitions(_DEFINITIONS.c.deployment_id == p),
    "without_tenant_id": lambda: _CASES.c.tenant_id.is_(None),
    "incident": lambda: _with_incident(),
    "incident_id": lambda p: _with_incident(_INCIDENTS.c.id == p),
    "incident_type": lambda p: _with_incident(_INCIDENTS.c.incident_type == p),
    "incident_message": lambda p: _with_incident(_INCIDENTS.c.message == p),
    "incident_message_like": lambda p: _with_incident(_INCIDENTS.c.message.like(p, escape=LIKE_ESCAPE)),
    "active_activity": lambda ps: _with_activity(_CASE_ACTIVITIES.c.end_time.is_(None),
                                                 _CASE_ACTIVITIES.c.activity_id.in_(ps)),
    "executed_activity": lambda ps: _with_activity(_CASE_ACTIVITIES.c.end_time.is_not(None),
                                                   _CASE_ACTIVITIES.c.activity_id.in_(ps)),
    "executed_after": lambda p: _executed(after=p),
    "executed_before": lambda p: _executed(before=p),
    "executed_between": lambda ps: _executed(*ps),
    "activity_execution": lambda p: _ACTIVITY_ROWS.c.instance_id == p,
    "canceled": lambda: _ACTIVITY_ROWS.c.canceled == true(),
    "task_assigned": lambda: _ACTIVITY_ROWS.c.assignee.is_not(None),
    "task_unassigned": lambda: _ACTIVITY_ROWS.c.assignee.is_(None),
    "without_due": lambda: _ACTIVITY_ROWS.c.due.is_(None),
    # as api/render.py's historic_activity tells completeScope
    "complete_scope": lambda: _ACTIVITY_ROWS.c.activity_type.like("%EndEvent"),
    "variable_execution": lambda ps: _VARIABLES.c.instance_id.in_(ps),
    "string_value": lambda p: _string_value(_VARIABLES, "eq", p),
    "type_in": lambda ps: func.lower(_VARIABLES.c.type).in_(ps),
}


def _definition(column):
    """A column of the case's process definition, for an order."""
    return select(column).where(_DEFINITIONS.c.id == _CASES.c.definition_id).scalar_subquery()


# Camunda's sortBy -> what it orders by.  Activities and variables keep no tenant id, and
# an activity's occurrence is its start (its execution is its case: api/render.py).
CASE_SORTS = {
    "instanceId": _CASES.c.id, "definitionId": _CASES.c.definition_id, "definitionKey": _CASES.c.definition_key,
    "definitionName": _definition(_DEFINITIONS.c.name), "definitionVersion": _definition(_DEFINITIONS.c.version),
    "businessKey": _CASES.c.business_key, "startTime": _CASES.c.start_time, "endTime": _CASES.c.end_time,
    "duration": _Duration(_CASES.c.end_time, _CASES.c.start_time), "tenantId": _CASES.c.tenant_id}
RUNNING_CASE_SORTS = ("instanceId", "definitionKey", "definitionId", "tenantId", "businessKey")  # /process-instance
ACTIVITY_SORTS = {
    "activityInstanceId": _ACTIVITY_ROWS.c.id, "instanceId": _ACTIVITY_ROWS.c.instance_id,
    "executionId": _ACTIVITY_ROWS.c.instance_id, "activityId": _ACTIVITY_ROWS.c.activity_id,
    "activityName": _ACTIVITY_ROWS.c.activity_name, "activityType": _ACTIVITY_ROWS.c.activity_type,
    "startTime": _ACTIVITY_ROWS.c.start_time, "endTime": _ACTIVITY_ROWS.c.end_time,
    "duration": _Duration(_ACTIVITY_ROWS.c.end_time, _ACTIVITY_ROWS.c.start_time),
    "definitionId": _ACTIVITY_ROWS.c.definition_id, "occurrence": _ACTIVITY_ROWS.c.start_time}
TASK_SORTS = {
    "taskId": _ACTIVITY_ROWS.c.id, "activityInstanceId": _ACTIVITY_ROWS.c.id,
    "processDefinitionId": _ACTIVITY_ROWS.c.definition_id, "processInstanceId": _ACTIVITY_ROWS.c.instance_id,
    "executionId": _ACTIVITY_ROWS.c.instance_id,
    "duration": _Duration(_ACTIVITY_ROWS.c.end_time, _ACTIVITY_ROWS.c.start_time),
    "endTime": _ACTIVITY_ROWS.c.end_time, "startTime": _ACTIVITY_ROWS.c.start_time,
    "taskName": _ACTIVITY_ROWS.c.task_name, "taskDescription": _ACTIVITY_ROWS.c.description,
    "assignee": _ACTIVITY_ROWS.c.assignee, "owner": _ACTIVITY_ROWS.c.owner, "dueDate": _ACTIVITY_ROWS.c.due,
    "followUpDate": _ACTIVITY_ROWS.c.follow_up, "deleteReason": _ACTIVITY_ROWS.c.delete_reason,
    "taskDefinitionKey": _ACTIVITY_ROWS.c.activity_id, "priority": _ACTIVITY_ROWS.c.priority,
    "tenantId": _CASES.c.tenant_id}
VARIABLE_SORTS = {"instanceId": _VARIABLES.c.instance_id, "variableName": _VARIABLES.c.name}
_SORTS = {"cases": CASE_SORTS, "activities": ACTIVITY_SORTS, "tasks": TASK_SORTS, "variables": VARIABLE_SORTS}

# what each kind reads, the column naming its rows' case, the order
_KINDS = {
    "cases": (select(*instances.CASE_COLUMNS), _CASES.c.id, (_CASES.c.start_time, _CASES.c.id)),
    "activities": (select(_ACTIVITY_ROWS), _ACTIVITY_ROWS.c.instance_id,
                   (_ACTIVITY_ROWS.c.start_time, _ACTIVITY_ROWS.c.id)),
    # a user task's row: task_id is its own id (the partial index ix_activity_instance_task_end holds them)
    "tasks": (select(_ACTIVITY_ROWS, _CASES.c.tenant_id).join(_CASES, _CASES.c.id == _ACTIVITY_ROWS.c.instance_id)
              .where(_ACTIVITY_ROWS.c.task_id.is_not(None)), _ACTIVITY_ROWS.c.instance_id,
              (_ACTIVITY_ROWS.c.start_time, _ACTIVITY_ROWS.c.id)),
    "variables": (select(_VARIABLES, _CASES.c.definition_id, _CASES.c.definition_key)
                  .join(_CASES, _CASES.c.id == _VARIABLES.c.instance_id), _VARIABLES.c.instance_id,
                  (_VARIABLES.c.instance_id, _VARIABLES.c.name)),
}
