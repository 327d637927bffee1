"""User tasks as the departments see them: query, claim, complete, forms."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, func, literal_column, or_, select
from sqlalchemy.orm import Session

from . import authz, runtime
from .db import UnitOfWork
from .errors import BadRequest, Conflict, Forbidden, NotFound, TaskAlreadyClaimed
from .fastsql import Statement
from .identity import Principal, groups_of
from .models import ActivityInstance, ProcessDefinition, ProcessInstance, TaskCandidate, User, UserTask
from .projections import visible_data

SORT_FIELDS = {"id": UserTask.id, "name": UserTask.name, "assignee": UserTask.assignee,
               "created": UserTask.created, "dueDate": UserTask.due, "followUpDate": UserTask.follow_up,
               "priority": UserTask.priority, "processInstanceId": UserTask.instance_id}


@dataclass
class TaskView:
    row: UserTask
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


def _filtered(session: Session, principal: Principal, q: TaskQuery, along: str | None = None):
    """The tasks `q` asks for that `principal` may see, in the SQL that lets the database read
    no more than a page needs.  `along` is the index a list walks in its order, checking each
    task's candidates (EXISTS) and stopping at the page's end: "created" (the default order),
    the index on (assignee, created); "due", the unassigned tasks by due date (a queue, see
    _walks).  A count, a list in another order, and another department's or user's queue
    read the whole queue anyway (`along` None): the candidate conditions are then read as
    sets of task ids from task_candidate's indexes.  With 10,000 tasks in a department's
    queue among 50,000 open tasks on SQLite, a page read by the sets cost 24-38 ms against
    ~1 ms, and a count read task by task 95-250 ms against ~20 ms (bench/TUNING.md)."""
    offered = authz.offered_exists if along else authz.offered_ids
    stmt = select(UserTask)
    # A task offered to one of the principal's departments is visible to them: asking for
    # such a group's queue (the usual list) needs no second check of every task in it
    if not principal.is_admin and not authz.sees_offers_to(principal, q.candidate_group):
        stmt = stmt.where(authz.visible_tasks(principal, offered))
    if q.process_instance_id:
        stmt = stmt.where(UserTask.instance_id == q.process_instance_id)
    if q.process_definition_key:
        stmt = stmt.where(UserTask.definition_key == q.process_definition_key)
    if q.business_key:
        stmt = stmt.where(UserTask.business_key == q.business_key)
    if q.task_definition_key:
        stmt = stmt.where(UserTask.task_definition_key == q.task_definition_key)
    if q.name:
        stmt = stmt.where(UserTask.name == q.name)
    if q.assignee:
        stmt = stmt.where(UserTask.assignee == q.assignee)
    if _unassigned_only(q):
        stmt = stmt.where(_unassigned(session, hinted=along != "created"))
    if q.candidate_group:
        stmt = stmt.where(offered(TaskCandidate.group_id == q.candidate_group))
    if q.candidate_user:
        groups = sorted(groups_of(session, q.candidate_user))
        stmt = stmt.where(offered(or_(TaskCandidate.user_id == q.candidate_user, TaskCandidate.group_id.in_(groups))))
    return stmt


def _unassigned_only(q: TaskQuery) -> bool:
    """unassigned=true, or a candidate query without includeAssignedTasks (Camunda's default)."""
    return q.unassigned or (bool(q.candidate_group or q.candidate_user) and not q.include_assigned)


def _walks(principal: Principal, q: TaskQuery) -> str | None:
    """The index a page of this list is read along (_filtered's `along`), or None.  Not
    for another department's or another user's queue: the tasks the principal may see in
    it are few or none, and a walk would read every open task to find them (180 ms against
    35 ms by the sets, with 50,000 open tasks on SQLite)."""
    if not principal.is_admin and (
            (q.candidate_group and not authz.sees_offers_to(principal, q.candidate_group))
            or q.candidate_user not in (None, principal.user_id)):
        return None
    if q.sort_by in (None, "created"):
        return "created"
    if q.sort_by == "dueDate" and _unassigned_only(q):
        return "due"                          # ix_user_task_queue_due holds the unassigned tasks only
    return None


def _unassigned(session: Session, hinted: bool):
    """assignee IS NULL.  Unless the list walks the index on (assignee, created), SQLite is told
    that most open tasks are unassigned (likelihood): it would otherwise go through all of
    them by that index and sort them, instead of walking ix_user_task_queue_due or reading
    the candidate sets (PostgreSQL knows from its statistics)."""
    condition = UserTask.assignee.is_(None)
    if hinted and session.get_bind().dialect.name == "sqlite":
        return func.likelihood(condition, literal_column("0.9"))    # SQLite wants a literal here
    return condition


def query(session: Session, principal: Principal, q: TaskQuery) -> list[TaskView]:
    stmt = _filtered(session, principal, q, along=_walks(principal, q))
    if q.sort_by:
        column = SORT_FIELDS.get(q.sort_by)
        if column is None:
            raise BadRequest(f"sortBy {q.sort_by!r} is not supported; use one of {', '.join(SORT_FIELDS)}")
        stmt = stmt.order_by(*_order(column, q.sort_order == "desc"))
    else:
        stmt = stmt.order_by(UserTask.created, UserTask.id)
    stmt = stmt.offset(q.first_result or 0)
    if q.max_results is not None:
        stmt = stmt.limit(q.max_results)
    rows = session.execute(stmt).scalars().all()
    return _with_candidates(session, rows)


def _order(column, descending: bool) -> tuple:
    """ORDER BY for a sortBy: a task without the value (no due date, ...) comes after every
    task with one in ascending order, before them in descending order, on both stores
    (PostgreSQL's rule; SQLite's own is the reverse); equal values by id, in the same
    direction, so that an index on (column, id) gives the whole order (ix_user_task_queue_due)."""
    if descending:
        return column.desc().nulls_first(), UserTask.id.desc()
    return column.asc().nulls_last(), UserTask.id.asc()


def count(session: Session, principal: Principal, q: TaskQuery) -> int:
    return session.execute(select(func.count()).select_from(
        _filtered(session, principal, q).subquery())).scalar()


def _with_candidates(session: Session, rows: list[UserTask]) -> list[TaskView]:
    if not rows:
        return []
    links = session.execute(select(TaskCandidate.task_id, TaskCandidate.group_id, TaskCandidate.user_id)
                            .where(TaskCandidate.task_id.in_([r.id for r in rows]))).all()
    views = {r.id: TaskView(r, [], []) for r in rows}
    for task_id, group_id, user_id in links:
        if group_id is not None:
            views[task_id].candidate_groups.append(group_id)
        if user_id is not None:
            views[task_id].candidate_users.append(user_id)
    return list(views.values())


def may_see(session: Session, principal: Principal, view: TaskView) -> bool:
    def case_starter():
        return session.execute(select(ProcessInstance.start_user_id).where(
            ProcessInstance.id == view.row.instance_id)).scalar()
    return authz.offered_to(principal, view.row.assignee, view.candidate_groups, view.candidate_users, case_starter)


def _not_offered(principal: Principal, view: TaskView) -> Forbidden:
    return Forbidden(f"user '{principal.user_id}' is neither assignee nor candidate of task {view.row.id} "
                    f"(candidate groups: {', '.join(view.candidate_groups) or 'none'})",
                    userId=principal.user_id)


def get(session: Session, principal: Principal, task_id: str) -> TaskView:
    row = session.get(UserTask, task_id)
    if row is None:
        raise NotFound(f"No matching task with id {task_id}")
    view = _with_candidates(session, [row])[0]
    if not may_see(session, principal, view):
        raise _not_offered(principal, view)
    return view


# Completing is the hot path: the task row and its candidates in one statement built once,
# run on the driver's cursor (engine/fastsql.py), as plain values (the row is never
# changed through the ORM here: the command deletes it).
_TASKS, _CANDIDATES = UserTask.__table__, TaskCandidate.__table__
_TASK_WITH_CANDIDATES = Statement(
    select(_TASKS, _CANDIDATES.c.group_id.label("candidate_group"), _CANDIDATES.c.user_id.label("candidate_user"))
    .select_from(_TASKS.outerjoin(_CANDIDATES, _CANDIDATES.c.task_id == _TASKS.c.id))
    .where(_TASKS.c.id == bindparam("task_id")))


def _get_for_command(session: Session, principal: Principal, task_id: str) -> TaskView:
    rows = _TASK_WITH_CANDIDATES.execute(session, {"task_id": task_id}).all()
    if not rows:
        raise NotFound(f"No matching task with id {task_id}")
    view = TaskView(rows[0], [r.candidate_group for r in rows if r.candidate_group is not None],
                    [r.candidate_user for r in rows if r.candidate_user is not None])
    if not may_see(session, principal, view):
        raise _not_offered(principal, view)
    return view


def _require_actionable(principal: Principal, view: TaskView, action: str) -> None:
    if view.row.assignee not in (None, principal.user_id) and not principal.is_admin:
        raise Forbidden(f"cannot {action} task {view.row.id}: it is assigned to '{view.row.assignee}'",
                        userId=principal.user_id)


def claim(uow: UnitOfWork, principal: Principal, task_id: str, user_id: str) -> None:
    session = uow.session
    view = get(session, principal, task_id)
    if user_id != principal.user_id and not principal.is_admin:
        raise Forbidden(f"user '{principal.user_id}' may only claim tasks for themselves", userId=principal.user_id)
    if session.get(User, user_id) is None:
        raise BadRequest(f"no user with id '{user_id}'")
    if view.row.assignee is not None and view.row.assignee != user_id:
        raise TaskAlreadyClaimed(f"Task '{task_id}' is already claimed by someone else.")
    record = runtime.load_record(session, view.row.instance_id, lock="wait")
    view.row.assignee = user_id
    runtime.bump(uow, record, principal, "TaskClaimed", {"assignee": user_id}, view.row.task_definition_key, task_id)
    uow.commit()


def unclaim(uow: UnitOfWork, principal: Principal, task_id: str) -> None:
    session = uow.session
    view = get(session, principal, task_id)
    _require_actionable(principal, view, "unclaim")
    record = runtime.load_record(session, view.row.instance_id, lock="wait")
    previous, view.row.assignee = view.row.assignee, None
    runtime.bump(uow, record, principal, "TaskUnclaimed", {"previousAssignee": previous},
                 view.row.task_definition_key, task_id)
    uow.commit()


def set_assignee(uow: UnitOfWork, principal: Principal, task_id: str, user_id: str | None) -> None:
    session = uow.session
    view = get(session, principal, task_id)
    _require_actionable(principal, view, "reassign")
    if user_id is not None and session.get(User, user_id) is None:
        raise BadRequest(f"no user with id '{user_id}'")
    if user_id not in (None, principal.user_id) and not principal.is_admin \
            and not authz.may_be_assigned(session, task_id, user_id):
        raise Forbidden(f"cannot assign task {task_id} to '{user_id}': they are not a candidate of it "
                        f"(candidate groups: {', '.join(view.candidate_groups) or 'none'})", userId=principal.user_id)
    record = runtime.load_record(session, view.row.instance_id, lock="wait")
    previous, view.row.assignee = view.row.assignee, user_id
    runtime.bump(uow, record, principal, "TaskAssigned", {"assignee": user_id, "previousAssignee": previous},
                 view.row.task_definition_key, task_id)
    uow.commit()


def complete(uow: UnitOfWork, principal: Principal, task_id: str, variables: dict) -> dict:
    """Complete a user task; returns the process variables after the command."""
    session = uow.session
    try:
        view = _get_for_command(session, principal, task_id)
    except NotFound:
        _raise_if_already_completed(session, task_id)
        raise
    _require_actionable(principal, view, "complete")
    try:
        command = runtime.open_instance(uow, view.row.instance_id, principal)
    except BadRequest:                    # the case ended under us: most likely this very task
        _raise_if_already_completed(session, task_id)
        raise
    runtime.complete_user_task(command, task_id, variables, view.row.form_ref)
    command.completed_assignees[task_id] = view.row.assignee or principal.user_id
    runtime.save(command)
    result = visible_data(runtime.find_task(command.workflow, task_id))
    uow.commit()
    return result


def _raise_if_already_completed(session: Session, task_id: str) -> None:
    done = session.execute(select(ActivityInstance.assignee, ActivityInstance.end_time).where(
        ActivityInstance.id == task_id, ActivityInstance.end_time.is_not(None))).first()
    if done is not None:
        raise Conflict(f"task {task_id} was already completed (by {done.assignee or 'the engine'}); "
                       "it cannot be completed twice")


def form_variables(uow: UnitOfWork, principal: Principal, task_id: str) -> dict:
    view = get(uow.session, principal, task_id)
    workflow = runtime.peek_workflow(uow, view.row.instance_id)
    return dict(visible_data(runtime.find_task(workflow, task_id)))


def deployed_form(uow: UnitOfWork, principal: Principal, task_id: str) -> dict:
    view = get(uow.session, principal, task_id)
    if not view.row.form_ref:
        raise NotFound(f"task {task_id} has no Camunda Form (camunda:formRef); its form key is "
                       f"{view.row.form_key!r}")
    deployment_id = uow.session.execute(select(ProcessDefinition.deployment_id).where(
        ProcessDefinition.id == view.row.definition_id)).scalar()
    row = uow.ctx.definitions.form_definition_row(uow.session, view.row.form_ref, deployment_id, view.row.tenant_id)
    return uow.ctx.definitions.form(uow.session, row).raw


def identity_links(view: TaskView) -> list[dict]:
    links = [{"userId": view.row.assignee, "groupId": None, "type": "assignee"}] if view.row.assignee else []
    links += [{"userId": None, "groupId": g, "type": "candidate"} for g in view.candidate_groups]
    links += [{"userId": u, "groupId": None, "type": "candidate"} for u in view.candidate_users]
    return links
