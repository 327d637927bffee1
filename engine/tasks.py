"""User tasks as the departments see them: query, claim, complete, forms."""
from __future__ import annotations

import copy
from dataclasses import dataclass

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, func, or_, select, true, union, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from . import authz, bpmn_errors, runtime, task_filters, variable_types
from .clock import utcnow
from .db import UnitOfWork
from .errors import BadRequest, Conflict, Forbidden, NotFound, TaskAlreadyClaimed
from .fastsql import Likely, Shapes, Statement, bound, numbered
from .identity import Principal, groups_of
from .models import ActivityInstance, ProcessDefinition, ProcessInstance, TaskCandidate, User, UserTask
from .projections import visible_data
from .task_history import TASK_HISTORY, copy_to_history
from .variables import VariableMap

# sortBy -> the user_task column, by its name (on the table, or on a page read as a subquery);
# Camunda's names, and processInstanceId (this server's before it had Camunda's instanceId)
SORT_FIELDS = {"id": "id", "name": "name", "assignee": "assignee", "created": "created", "dueDate": "due",
               "followUpDate": "follow_up", "priority": "priority", "processInstanceId": "instance_id",
               "instanceId": "instance_id", "description": "description", "tenantId": "tenant_id",
               "nameCaseInsensitive": "name", "lastUpdated": "last_updated",
               "executionId": "instance_id"}                        # a task's execution is its case
_ANY_CASE = frozenset({"nameCaseInsensitive"})           # sorted by lower(column)
_TASKS, _CANDIDATES = UserTask.__table__, TaskCandidate.__table__


@dataclass
class TaskView:
    row: tuple                     # the task's columns (named), as engine/fastsql.py reads them
    candidate_groups: list
    candidate_users: list


@dataclass
class TaskQuery:
    process_instance_id: str | None = None
    process_definition_key: str | None = None
    business_key: str | None = None
    task_definition_key: str | None = None
    candidate_group: str | None = None
    candidate_user: str | None = None
    assignee: str | None = None
    unassigned: bool = False
    include_assigned: bool = False
    name: str | None = None
    sort_by: str | None = None
    sort_order: str = "asc"
    first_result: int = 0
    max_results: int | None = None
    sorting: tuple = ()            # ((sortBy, "asc" | "desc"), ...): several keys; or sort_by and sort_order
    filters: task_filters.Filters | None = None      # Camunda's other filters, if any is asked

    def order(self) -> tuple:
        """((sortBy, descending), ...), empty for the default order (creation)."""
        keys = self.sorting or (((self.sort_by, self.sort_order),) if self.sort_by else ())
        return tuple((sort_by, order == "desc") for sort_by, order in keys)

    def candidates_asked(self) -> bool:
        """A candidate query, which Camunda limits to unassigned tasks (but includeAssignedTasks)."""
        return bool(self.candidate_group or self.candidate_user
                    or (self.filters is not None and self.filters.candidates_asked()))


# A list's statement depends on its shape only (which filters it has, how many groups, its
# order, whether it is paged), not on the values, which are bound: it is built once per
# shape and run on the driver's cursor (engine/fastsql.py).  Built and run through the ORM
# at every request, a page of a department's queue cost the service layer three times the
# CPU (1.3-1.4 against 0.4 ms on SQLite, bench/TUNING.md).
_LISTS = Shapes()
_EQUALS = (("process_instance_id", "instance_id"), ("process_definition_key", "definition_key"),
           ("business_key", "business_key"), ("task_definition_key", "task_definition_key"), ("name", "name"),
           ("assignee", "assignee"))


def _reads_every_task(principal: Principal, q: TaskQuery) -> bool:
    """Whether `q` lists every department's tasks for `principal`: an administrator's list,
    or a supervisor's that does not test the cases' variables.  A supervisor may not read a
    case's variables, so a list filtered by their values (processVariables) is read among
    the tasks they would see as an officer: every department's would tell, case by case,
    whether a variable holds a value (an ID number's digits, one `_like` at a time)."""
    if principal.is_admin:
        return True
    return authz.reads_every_department(principal) and not (q.filters is not None and q.filters.process_variables)


def _criteria(session: Session, principal: Principal, q: TaskQuery, sqlite: bool) -> tuple[tuple, dict]:
    """What `q` asks for among the tasks `principal` may see: the shape of its SQL (a key
    for _filtered) and the values to bind (some of Camunda's filters bind them as the
    store needs them, `sqlite`)."""
    shape, values = [], {}
    # A task offered to one of the principal's departments is visible to them: asking for
    # such a group's queue (the usual list) needs no second check of every task in it
    if not _reads_every_task(principal, q) and not authz.sees_offers_to(principal, q.candidate_group):
        shape.append(("visible", authz.bind_reader(principal, values), authz.APPLICANTS_GROUP in principal.groups))
    for field, column in _EQUALS:
        if getattr(q, field):
            shape.append(column)
            values[column] = getattr(q, field)
    if _unassigned_only(q):
        shape.append("unassigned")
    if q.candidate_group:
        shape.append("candidate_group")
        values["candidate_group"] = q.candidate_group
    if q.candidate_user:
        groups = sorted(groups_of(session, q.candidate_user))
        shape.append(("candidate_user", len(groups)))
        values.update(numbered("candidate_user_group", groups), candidate_user=q.candidate_user)
    if q.filters is not None:
        # shape items of their own, after the ones above: a query without them keeps its statement
        task_filters.criteria(q.filters, shape, values, sqlite)
    return tuple(shape), values


def _filtered(shape: tuple, along: str | None, sqlite: bool):
    """The tasks of a shape from _criteria, in the SQL that lets the database read no more
    than a page needs.  `along` is the index a list walks in its order, checking each
    task's candidates (EXISTS) and stopping at the page's end: "created" (the default order),
    the index on (assignee, created); "due", the unassigned tasks by due date (a queue, see
    _walks).  A count (but a group's own, _group_count, and everything the reader may see,
    _visible_ids), a list in another order, and another department's or user's queue read
    the whole queue anyway (`along` None): the candidate conditions are then read as sets
    of task ids from task_candidate's indexes.
    With 10,000 tasks in a department's queue among 50,000 open tasks on SQLite, a page
    read by the sets cost 24-38 ms against ~1 ms, and a count read task by task 95-250 ms
    against ~20 ms (bench/TUNING.md)."""
    return select(_TASKS).where(*_conditions(shape, along, sqlite))


def _conditions(shape: tuple, along: str | None, sqlite: bool) -> list:
    """The conditions on user_task of a shape (_filtered)."""
    offered = authz.offered_exists if along else authz.offered_ids
    conditions = []
    for item in shape:
        kind, *size = item if isinstance(item, tuple) else (item,)
        if kind == "visible":
            conditions.append(authz.visible_tasks(*authz.reader_params(size[0]), size[1], offered))
        elif kind == "unassigned":
            conditions.append(_unassigned(hinted=along != "created"))
        elif kind == "candidate_group":
            conditions.append(offered(TaskCandidate.group_id == bindparam("candidate_group")))
        elif kind == "candidate_user":
            offer = TaskCandidate.user_id == bindparam("candidate_user")
            if size[0]:
                offer = or_(offer, TaskCandidate.group_id.in_(bound("candidate_user_group", size[0])))
            conditions.append(offered(offer))
        elif kind == "test":
            conditions.append(task_filters.column_condition(sqlite, *size))
        elif kind in task_filters.CANDIDATE_KINDS:
            conditions.append(task_filters.candidate_condition(kind, size[0] if size else None, offered))
        elif kind == "variable":
            conditions.append(task_filters.variable_condition(*size, sqlite))
        else:
            conditions.append(_TASKS.c[kind] == bindparam(kind))
    return conditions


def _visible_only(shape: tuple) -> tuple | None:
    """The ("visible", departments, applicant) item of a shape that asks for everything the
    reader may see (perhaps only the unassigned tasks), or None.  Such a shape is read from
    the ways a task is visible (authz.visible_ways): a count as the UNION of their ids
    (_visible_ids), a list as _read_as says.  Their OR, in the single SELECT (_filtered),
    made PostgreSQL test every open task against all of them (a count 10-12 against
    2-2.5 ms with 50,000 open tasks, bench/TUNING.md).  With other filters (a case, a
    process, a candidate) the single SELECT reads along the filter's own index and checks
    the few tasks it finds."""
    visible, rest = _split_visible(shape)
    return visible if visible is not None and set(rest) <= {"unassigned"} else None


def _split_visible(shape: tuple) -> tuple[tuple | None, tuple]:
    """(the shape's ("visible", departments, applicant) item or None, the rest of the shape)."""
    visible = next((item for item in shape if isinstance(item, tuple) and item[0] == "visible"), None)
    return visible, tuple(item for item in shape if item is not visible)


def _ways(visible: tuple) -> list:
    return authz.visible_ways(*authz.reader_params(visible[1]), visible[2])


def _visible_legs(shape: tuple, along: str | None, sqlite: bool) -> list:
    """The tasks of a _visible_only shape as one SELECT of task ids per way a task is
    visible (authz.visible_ways), each with the rest of the shape's conditions; a UNION of
    them is the shape's tasks.  Tasks offered to the reader's departments may be most open
    tasks: a list in an index's order (`along`) walks it there, checking each task, and
    stops at the page's end.  The other ways reach few tasks, read from their own indexes
    (task_candidate's on the user, user_task's on the assignee and on the case): SQLite
    would otherwise walk every open task to check each the same way."""
    visible, rest = _split_visible(shape)
    legs = []
    for way in _ways(visible):
        walks = along if way.name == "departments" else None
        offered = authz.offered_exists if walks else authz.offered_ids
        legs.append(select(_TASKS.c.id).where(authz.on_tasks(way, offered), *_conditions(rest, walks, sqlite)))
    return legs


def _visible_ids(shape: tuple, sqlite: bool):
    """The ids of a _visible_only shape's tasks as a UNION read from the indexes alone: an
    offer's from task_candidate's, which repeats whether the task is unassigned (migration
    0011), the assigned tasks and an applicant's own cases' from user_task's."""
    visible, rest = _split_visible(shape)
    legs = []
    for way in _ways(visible):
        if way.task is None:
            leg = select(_CANDIDATES.c.task_id).where(way.offer)
            legs.append(leg.where(_CANDIDATES.c.unassigned == true()) if "unassigned" in rest else leg)
        else:
            legs.append(select(_TASKS.c.id).where(authz.on_tasks(way, authz.offered_ids),
                                                  *_conditions(rest, None, sqlite)))
    return union(*legs)


def _unassigned_only(q: TaskQuery) -> bool:
    """unassigned=true, or a candidate query without includeAssignedTasks (Camunda's default)."""
    return q.unassigned or (q.candidates_asked() and not q.include_assigned)


def _walks(principal: Principal, q: TaskQuery) -> str | None:
    """The index a page of this list is read along (_filtered's `along`), or None.  Not
    for another department's or another user's queue: the tasks the principal may see in
    it are few or none, and a walk would read every open task to find them (180 ms against
    35 ms by the sets, with 50,000 open tasks on SQLite)."""
    if not _reads_every_task(principal, q) and (
            (q.candidate_group and not authz.sees_offers_to(principal, q.candidate_group))
            or q.candidate_user not in (None, principal.user_id)
            or (q.filters is not None
                and not all(authz.sees_offers_to(principal, group) for group in q.filters.candidate_groups))):
        return None
    if len(q.sorting) > 1:
        return None                           # no index gives several keys' order
    sort_by = q.sorting[0][0] if q.sorting else q.sort_by
    if sort_by in (None, "created"):
        return "created"
    if sort_by == "dueDate" and _unassigned_only(q):
        return "due"                          # ix_user_task_queue_due holds the unassigned tasks only
    return None


def _unassigned(hinted: bool):
    """assignee IS NULL.  Unless the list walks the index on (assignee, created), SQLite is told
    that most open tasks are unassigned (likelihood): it would otherwise go through all of
    them by that index and sort them, instead of walking ix_user_task_queue_due or reading
    the candidate sets (PostgreSQL knows from its statistics)."""
    condition = _TASKS.c.assignee.is_(None)
    return Likely(condition) if hinted else condition


def _is_sqlite(db: Session | Connection) -> bool:
    return (db.get_bind() if isinstance(db, Session) else db).dialect.name == "sqlite"


def query(session: Session | Connection, principal: Principal, q: TaskQuery) -> list[TaskView]:
    """A page of the list, each task with its candidates, in one statement: the page is a
    subquery (read along an index where _walks finds one, or from the ways a task is
    visible, _read_as) joined to its candidates.  On a unit of work's session, or on a
    bare connection (`engine.db.reading`): the API's lists, one statement that needs no
    transaction around it."""
    order = q.order()
    for sort_by, _ in order:
        if sort_by not in SORT_FIELDS:
            raise BadRequest(f"sortBy {sort_by!r} is not supported; use one of {', '.join(SORT_FIELDS)}")
    if q.filters is not None and q.filters.suspended:
        return []
    sqlite = _is_sqlite(session)
    shape, values = _criteria(session, principal, q, sqlite)
    along = _walks(principal, q)
    if q.max_results is not None:
        values["limit"] = q.max_results
    if q.first_result:
        values["offset"] = q.first_result

    reach = None if q.max_results is None else q.first_result + q.max_results
    form = _read_as(shape, along, sqlite, reach)
    if form == "ways":
        values["reach"] = reach

    def build():
        if form == "ways":
            page = _union_page(shape, along, sqlite, order, "offset" in values)
        else:
            if form == "ids":
                page = select(_TASKS).where(_TASKS.c.id.in_(_visible_ids(shape, sqlite)))
            else:
                page = _filtered(shape, along, sqlite)
            page = page.order_by(*_order(_TASKS.c, order))
            if "limit" in values:
                page = page.limit(bindparam("limit"))
            if "offset" in values:
                page = page.offset(bindparam("offset"))
        page = page.subquery("page")
        return _with_candidate_columns(page).order_by(*_order(page.c, order))
    stmt = _LISTS.get(("list", shape, along, sqlite, order, "limit" in values, "offset" in values, form), build)
    return _views(stmt.execute(session, values).all())


# The end of a page (firstResult + maxResults) up to which PostgreSQL reads a list of a
# reader with departments, walked in an index's order, along the ways (_read_as).
_WAYS_REACH = 300


def _read_as(shape: tuple, along: str | None, sqlite: bool, reach: int | None) -> str | None:
    """How a list is read: "ways" (_union_page: each way a task is visible up to the
    page's end), "ids" (the tasks whose ids _visible_ids reads), or None (_filtered: the
    single SELECT, which walks the list's order, `along`, checking each task, or reads the
    candidates' sets).  With 10,080 of 50,000 open tasks visible to an officer of one
    department (bench/TUNING.md):
    - a whole list (no maxResults) reads all the tasks the reader may see anyway: by their
      ids, a tenth less than the single SELECT on either store (a fifth with 10,000);
    - a reader without departments sees few tasks, read from their indexes by the ways;
      the walk goes through every open task to find them (first page: SQLite 8.6 against
      0.3-0.5 ms, PostgreSQL 4.6-6.2 against 0.5-0.7 ms);
    - in an order that no index gives, the single SELECT reads and sorts every task the
      reader may see, the ways only up to the page's end each (by due date, firstResult
      3,000: 24-38 against 10-15 ms on PostgreSQL, 24 against 21-23 ms on SQLite);
    - walked, PostgreSQL checks each task against a hash of all the reader's candidate
      rows, built first: a page that ends among the first _WAYS_REACH tasks costs less
      along the ways (first page 3.0-3.4 against 0.9-1.2 ms), one further down less by the
      walk (firstResult 3,000: 5 against 20 ms);
    - walked, SQLite checks each task by its indexes, at less than the ways' reads cost
      for a department's first pages (0.24 against 0.30 ms)."""
    visible = _visible_only(shape)
    if visible is None:
        return None
    if reach is None:
        return "ids"
    if not visible[1] or along is None:
        return "ways"
    return "ways" if not sqlite and reach <= _WAYS_REACH else None


def _union_page(shape: tuple, along: str | None, sqlite: bool, order: tuple, offset: bool):
    """A page of a _visible_only shape: the UNION of _visible_legs, each with the list's
    order columns and read in its order up to the page's end ("reach", firstResult +
    maxResults: a page of the union is a page of those), the page taken from the union
    ("limit", "offset") and joined to its tasks' rows.  A task in two legs is one row of
    the union: the same id, the same values."""
    columns = [SORT_FIELDS[sort_by] for sort_by, _ in order] or ["created"]
    keys = [_TASKS.c.id] + [_TASKS.c[column] for column in dict.fromkeys(columns) if column != "id"]
    legs = [select(leg.with_only_columns(*keys).order_by(*_order(_TASKS.c, order)).limit(bindparam("reach"))
                   .subquery()) for leg in _visible_legs(shape, along, sqlite)]
    visible = union(*legs).subquery("visible")
    ids = select(visible.c.id).order_by(*_order(visible.c, order)).limit(bindparam("limit"))
    if offset:
        ids = ids.offset(bindparam("offset"))
    ids = ids.subquery("ids")
    return select(_TASKS).join(ids, ids.c.id == _TASKS.c.id).order_by(*_order(_TASKS.c, order))


def _order(columns, order: tuple) -> tuple:
    """ORDER BY for the sort keys `order` (TaskQuery.order: creation order by default) on
    `columns` (user_task's, or a page's): a task without the value (no due date, ...) comes
    after every task with one in ascending order, before them in descending order, on both
    stores (PostgreSQL's rule; SQLite's own is the reverse); equal values by id, in the
    last key's direction, so that an index on (column, id) gives the whole order of one key
    (ix_user_task_queue_due)."""
    if not order:
        return columns.created, columns.id
    keys = []
    for sort_by, descending in order:
        key = columns[SORT_FIELDS[sort_by]]
        if sort_by in _ANY_CASE:
            key = func.lower(key)
        keys.append(key.desc().nulls_first() if descending else key.asc().nulls_last())
    return (*keys, columns.id.desc() if order[-1][1] else columns.id.asc())


def _with_candidate_columns(tasks):
    """SELECT `tasks` (user_task, or a page of it) joined to their candidates, one row per
    candidate (candidate_group, candidate_user; NULLs for a task with none): what _views reads."""
    return (select(tasks, _CANDIDATES.c.group_id.label("candidate_group"),
                   _CANDIDATES.c.user_id.label("candidate_user"))
            .select_from(tasks.outerjoin(_CANDIDATES, _CANDIDATES.c.task_id == tasks.c.id)))


def _views(rows) -> list[TaskView]:
    """Rows of tasks joined to their candidates (candidate_group, candidate_user), in the
    list's order -> one view per task."""
    views: dict[str, TaskView] = {}
    for r in rows:
        view = views.get(r.id)
        if view is None:
            view = views[r.id] = TaskView(r, [], [])
        if r.candidate_group is not None:
            view.candidate_groups.append(r.candidate_group)
        if r.candidate_user is not None:
            view.candidate_users.append(r.candidate_user)
    return list(views.values())


def count(session: Session | Connection, principal: Principal, q: TaskQuery) -> int:
    if q.filters is not None and q.filters.suspended:
        return 0
    sqlite = _is_sqlite(session)
    shape, values = _criteria(session, principal, q, sqlite)

    def build():
        if "candidate_group" in shape and set(shape) <= {"candidate_group", "unassigned"}:
            return _group_count("unassigned" in shape)
        if _visible_only(shape):
            return select(func.count().label("count")).select_from(_visible_ids(shape, sqlite).subquery())
        return select(func.count().label("count")).select_from(_filtered(shape, None, sqlite).subquery())
    return _LISTS.get(("count", shape, sqlite), build).execute(session, values).scalar()


def _group_count(unassigned: bool):
    """A group's queue counted from task_candidate's index on (group_id, unassigned,
    task_id) alone, without reading the tasks' rows: ~1 ms against 14-27 ms for a queue
    of 10,000 on SQLite (migration 0011).  A task has one row per group (runtime._names)."""
    stmt = select(func.count().label("count")).where(
        _CANDIDATES.c.group_id == bindparam("candidate_group"))
    if unassigned:
        stmt = stmt.where(_CANDIDATES.c.unassigned == true())
    return stmt


def may_see(session: Session | Connection, principal: Principal, view: TaskView) -> bool:
    def case_starter():
        return session.execute(select(ProcessInstance.start_user_id).where(
            ProcessInstance.id == view.row.instance_id)).scalar()
    return authz.offered_to(principal, view.row.assignee, view.candidate_groups, view.candidate_users, case_starter,
                            view.row.owner)


def _not_offered(principal: Principal, view: TaskView) -> Forbidden:
    return Forbidden(f"user '{principal.user_id}' is neither assignee nor candidate of task {view.row.id} "
                    f"(candidate groups: {', '.join(view.candidate_groups) or 'none'})",
                    userId=principal.user_id)


# A task and its candidates in one statement built once, run on the driver's cursor
# (engine/fastsql.py), as plain values: completing is the hot path, and a task is read
# at every claim, form and GET /task/{id}.  A command changes the row by statements (_assign).
_TASK_WITH_CANDIDATES = Statement(_with_candidate_columns(_TASKS).where(_TASKS.c.id == bindparam("task_id")))
_SET_ASSIGNEE = Statement(update(_TASKS).where(
    _TASKS.c.id == bindparam("row_id"), _TASKS.c.assignee.is_not_distinct_from(bindparam("previous")))
    .values(assignee=bindparam("new_assignee"), last_updated=bindparam("now")))
_SET_UNASSIGNED = Statement(update(_CANDIDATES).where(_CANDIDATES.c.task_id == bindparam("row_id"))
                            .values(unassigned=bindparam("now_unassigned")))


def get(session: Session | Connection, principal: Principal, task_id: str, reading: bool = False) -> TaskView:
    """The task, if `principal` may see it, to work on (claim, complete, its variables...);
    `reading` only (GET /task/{id}, its identity links), also if they read every
    department's tasks (supervisors); on a unit of work's session or a bare connection."""
    views = _views(_TASK_WITH_CANDIDATES.execute(session, {"task_id": task_id}).all())
    if not views:
        raise NotFound(f"No matching task with id {task_id}")
    view = views[0]
    if not (reading and authz.reads_every_department(principal)) and not may_see(session, principal, view):
        raise _not_offered(principal, view)
    return view


def _may_act(principal: Principal, assignee: str | None, owner: str | None = None) -> bool:
    """Whether `principal` may complete, unclaim, reassign or change a task with this
    assignee and owner: its owner delegated it (委派) and may take it back."""
    return assignee in (None, principal.user_id) or owner == principal.user_id or principal.is_admin


def require_actionable(principal: Principal, view: TaskView, action: str) -> None:
    if not _may_act(principal, view.row.assignee, view.row.owner):
        raise Forbidden(f"cannot {action} task {view.row.id}: it is assigned to '{view.row.assignee}'",
                        userId=principal.user_id)


def claim(uow: UnitOfWork, principal: Principal, task_id: str, user_id: str) -> None:
    session = uow.session
    view = get(session, principal, task_id)
    if user_id != principal.user_id and not principal.is_admin:
        raise Forbidden(f"user '{principal.user_id}' may only claim tasks for themselves", userId=principal.user_id)
    if session.get(User, user_id) is None:
        raise BadRequest(f"no user with id '{user_id}'")
    if view.row.assignee == user_id:
        return                                   # theirs already: nothing changes, nothing to record
    if view.row.assignee is not None:
        raise TaskAlreadyClaimed(f"Task '{task_id}' is already claimed by someone else.")
    record = runtime.load_record(session, view.row.instance_id, lock="wait")
    if not _assign(session, view, user_id,
                   TaskAlreadyClaimed(f"Task '{task_id}' was claimed by someone else at the same time.")):
        return
    runtime.bump(uow, record, principal, "TaskClaimed", {"assignee": user_id}, view.row.task_definition_key, task_id)
    uow.commit()


def unclaim(uow: UnitOfWork, principal: Principal, task_id: str) -> None:
    session = uow.session
    view = get(session, principal, task_id)
    require_actionable(principal, view, "unclaim")
    record = runtime.load_record(session, view.row.instance_id, lock="wait")
    previous = view.row.assignee
    if not _assign(session, view, None, _assigned_meanwhile(task_id)):
        return
    runtime.bump(uow, record, principal, "TaskUnclaimed", {"previousAssignee": previous},
                 view.row.task_definition_key, task_id)
    uow.commit()


def set_assignee(uow: UnitOfWork, principal: Principal, task_id: str, user_id: str | None) -> None:
    session = uow.session
    view = get(session, principal, task_id)
    require_actionable(principal, view, "reassign")
    require_assignable(session, principal, view, user_id, f"assign task {task_id} to '{user_id}'")
    record = runtime.load_record(session, view.row.instance_id, lock="wait")
    previous = view.row.assignee
    if not _assign(session, view, user_id, _assigned_meanwhile(task_id)):
        return
    runtime.bump(uow, record, principal, "TaskAssigned", {"assignee": user_id, "previousAssignee": previous},
                 view.row.task_definition_key, task_id)
    uow.commit()


def require_assignable(session: Session, principal: Principal, view: TaskView, user_id: str | None,
                       doing: str) -> None:
    """`user_id` may be given the task (as its assignee, its owner, a delegation): a user,
    and one it is offered to (authz.may_be_assigned), but for the principal themselves
    or an administrator's choice.  `doing` says what, for the refusal."""
    if user_id is not None and session.get(User, user_id) is None:
        raise BadRequest(f"no user with id '{user_id}'")
    if user_id not in (None, principal.user_id) and not principal.is_admin \
            and not authz.may_be_assigned(session, view.row.id, user_id):
        raise Forbidden(f"cannot {doing}: they are not a candidate of it "
                        f"(candidate groups: {', '.join(view.candidate_groups) or 'none'})", userId=principal.user_id)


def _assign(session: Session, view: TaskView, user_id: str | None, meanwhile: Exception) -> bool:
    """The task's assignee, and its candidate rows' copy of whether it has one, if the
    assignee is still the one `view` read: the case is locked after the read, so two
    claims at once would both pass the checks.  Otherwise `meanwhile` is raised, unless
    the task already has `user_id` (a second click): False, nothing to write."""
    task_id = view.row.id
    if _SET_ASSIGNEE.execute(session, {"row_id": task_id, "previous": view.row.assignee,
                                       "new_assignee": user_id, "now": utcnow()}).rowcount == 1:
        _SET_UNASSIGNED.execute(session, {"row_id": task_id, "now_unassigned": user_id is None})
        copy_to_history(session, [{"task_id": task_id, "assignee": user_id}])
        return True
    now = _TASK_WITH_CANDIDATES.execute(session, {"task_id": task_id}).first()
    if now is None:
        raise Conflict(f"task {task_id} was completed at the same time")
    if now.assignee == user_id:
        return False
    raise meanwhile


_FIELD_WRITES = Shapes()


def write_fields(session: Session, task_id: str, changes: dict) -> None:
    """Set columns of an open task whose case the caller has locked (engine/task_changes.py):
    user_task's and its last_updated, the candidate rows' copy of whether it is assigned,
    and its history row's copy (projections.TASK_HISTORY)."""
    columns = tuple(changes)

    def build():
        values = {column: bindparam(f"new_{column}", type_=_TASKS.c[column].type) for column in columns}
        return update(_TASKS).where(_TASKS.c.id == bindparam("row_id")).values(
            {**values, "last_updated": bindparam("now")})
    _FIELD_WRITES.get(columns, build).execute(session, {
        "row_id": task_id, "now": utcnow(), **{f"new_{column}": value for column, value in changes.items()}})
    if "assignee" in changes:
        _SET_UNASSIGNED.execute(session, {"row_id": task_id, "now_unassigned": changes["assignee"] is None})
    history = {column: value for column, value in changes.items() if column in TASK_HISTORY}
    if history:
        copy_to_history(session, [{"task_id": task_id, **history}])


def _assigned_meanwhile(task_id: str) -> Conflict:
    return Conflict(f"task {task_id} was assigned by someone else at the same time; read it again and retry")


def complete(uow: UnitOfWork, principal: Principal, task_id: str, variables: dict) -> VariableMap:
    """Complete a user task; returns the process variables after the command."""
    session = uow.session
    try:
        view = get(session, principal, task_id)
    except NotFound:
        _raise_if_already_completed(session, task_id)
        raise
    require_actionable(principal, view, "complete")
    try:
        command = runtime.open_instance(uow, view.row.instance_id, principal)
    except BadRequest:                    # the case ended under us: most likely this very task
        _raise_if_already_completed(session, task_id)
        raise
    runtime.complete_user_task(command, task_id, variables, view.row.form_ref)
    runtime.save(command)
    _require_not_claimed_meanwhile(command, principal, view, "complete")
    result = variable_types.typed(command.workflow, visible_data(runtime.find_task(command.workflow, task_id)))
    uow.commit()
    return result


def _require_not_claimed_meanwhile(command, principal: Principal, view: TaskView, action: str) -> None:
    """The case is locked after the task was read: a claim in between made it someone
    else's (the assignee the task's row had when the saved command removed it)."""
    assignee = command.completed_assignees.get(view.row.id)
    if assignee != view.row.assignee and not _may_act(principal, assignee, view.row.owner):
        raise Forbidden(f"cannot {action} task {view.row.id}: '{assignee}' claimed it at the same time",
                        userId=principal.user_id)


def bpmn_error(uow: UnitOfWork, principal: Principal, task_id: str, error_code: str | None,
               error_message: str | None, variables: dict) -> None:
    """Report a business error from a user task (Camunda 7.10+'s handleBpmnError): whoever
    may complete the task throws the BPMN error `error_code` at it, the `variables` going
    to the case; the error boundary event that catches it (on the task or an enclosing
    subprocess) takes over and the task ends as one a boundary event cancelled.  The
    task's form is not checked, as in Camunda.  Uncaught, it is a 400 and nothing changes,
    as an external task's bpmnError (engine/bpmn_errors.py)."""
    if not error_code:
        raise BadRequest("errorCode is required: the code of the BPMN error the task reports")
    session = uow.session
    view = get(session, principal, task_id)
    require_actionable(principal, view, "report a BPMN error on")
    command = runtime.open_instance(uow, view.row.instance_id, principal)
    task = runtime.find_task(command.workflow, task_id)
    if task.state != TaskState.READY:
        raise Conflict(f"task {task_id} was completed or cancelled concurrently "
                       f"(now {TaskState.get_name(task.state)}); no BPMN error can be reported on it")
    runtime.receive(command, variables)
    caught_by = bpmn_errors.throw(task, error_code, error_message, variables, "",
                                  "Draw an error boundary event with this code on the task, or complete it instead")
    command.record_event("TaskBpmnError", {"errorCode": error_code, "errorMessage": error_message,
                                           "variables": variables, "caughtBy": caught_by},
                         task.task_spec.bpmn_id, task_id)
    runtime.save(command)
    _require_not_claimed_meanwhile(command, principal, view, "report a BPMN error on")
    uow.commit()


def _raise_if_already_completed(session: Session, task_id: str) -> None:
    done = session.execute(select(ActivityInstance.assignee, ActivityInstance.end_time).where(
        ActivityInstance.id == task_id, ActivityInstance.end_time.is_not(None))).first()
    if done is not None:
        raise Conflict(f"task {task_id} was already completed (by {done.assignee or 'the engine'}); "
                       "it cannot be completed twice")


def form_variables(uow: UnitOfWork, principal: Principal, task_id: str) -> VariableMap:
    view = get(uow.session, principal, task_id)
    with runtime.peek_workflow(uow, view.row.instance_id) as workflow:
        return variable_types.typed(workflow, copy.deepcopy(dict(visible_data(runtime.find_task(workflow, task_id)))))


def deployed_form(uow: UnitOfWork, principal: Principal, task_id: str) -> dict:
    view = get(uow.session, principal, task_id)
    if not view.row.form_ref:
        raise NotFound(f"task {task_id} has no Camunda Form (camunda:formRef, or camunda:formKey "
                       f"camunda-forms:deployment:NAME); its form key is {view.row.form_key!r}")
    return task_form(uow, view).raw


def task_form(uow: UnitOfWork, view: TaskView):
    """The Camunda Form (engine.forms.FormDefinition) of a task that has one (definitions.form_reference)."""
    deployment_id = uow.session.execute(select(ProcessDefinition.deployment_id).where(
        ProcessDefinition.id == view.row.definition_id)).scalar()
    row = uow.ctx.definitions.form_definition_row(uow.session, view.row.form_ref, deployment_id, view.row.tenant_id)
    return uow.ctx.definitions.form(uow.session, row)


def identity_links(view: TaskView) -> list[dict]:
    links = [{"userId": view.row.assignee, "groupId": None, "type": "assignee"}] if view.row.assignee else []
    links += [{"userId": view.row.owner, "groupId": None, "type": "owner"}] if view.row.owner else []
    links += [{"userId": None, "groupId": g, "type": "candidate"} for g in view.candidate_groups]
    links += [{"userId": u, "groupId": None, "type": "candidate"} for u in view.candidate_users]
    return links
