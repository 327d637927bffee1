"""A task's own fields changed beside claiming and completing (engine/tasks.py): Camunda
7's Update Task (PUT /task/{id}: name, description, priority, due and follow-up dates,
assignee, owner, delegation state) and delegation (委派: POST /task/{id}/delegate, then
/resolve by the delegate, which hands the task back to its owner).

Who may: whoever may work on the task (its assignee or owner, a candidate while it is
unclaimed, an administrator: tasks.require_actionable); a supervisor's reading rights are
not enough.  A new assignee or owner, and a delegate, is someone the task is offered to
(tasks.require_assignable), as for POST /task/{id}/assignee: handing a task over must
not widen who sees the case.  A due date set by hand on a task that carries a legal clock
comes no later than the clock's deadline (legal.require_due_within).  Each change is one
transaction on the locked case, audited in the case's chain (TaskUpdated, TaskDelegated,
TaskResolved, with the fields' new and previous values), and the task's history row
follows it (projections.copy_to_history).
"""
from __future__ import annotations

from datetime import datetime

from . import case_variables, legal, runtime, tasks
from .db import UnitOfWork
from .errors import BadRequest, Conflict, NotFound
from .identity import Principal
from .variables import format_date

# the user_task columns PUT /task/{id} sets -> Camunda's names (TaskDto)
FIELDS = {"name": "name", "description": "description", "priority": "priority", "assignee": "assignee",
          "owner": "owner", "delegation_state": "delegationState", "due": "due", "follow_up": "followUp"}
PENDING, RESOLVED = "PENDING", "RESOLVED"
DELEGATION_STATES = (PENDING, RESOLVED)
# TaskDto's fields that name what this server has none of: null, or the task's own, only
_NOT_HERE = {"parent_task_id": "parentTaskId: there are no subtasks here; send null",
             "case_instance_id": "caseInstanceId: there are no CMMN cases here; send null"}


def update(uow: UnitOfWork, principal: Principal, task_id: str, changes: dict) -> None:
    """Camunda's Update Task.  `changes`: user_task columns of FIELDS -> the new values
    (dates naive UTC), those the request gave only (a field left out keeps its value), and
    perhaps parent_task_id, case_instance_id and tenant_id, which cannot change here.  A
    value equal to the task's (a date to the millisecond, as Camunda writes one) is no
    change: the whole task sent back as read changes nothing and records nothing."""
    changes = dict(changes)
    for name, refusal in _NOT_HERE.items():
        if changes.pop(name, None) is not None:
            raise BadRequest(refusal)
    tenant_id = changes.pop("tenant_id", None)
    session = uow.session
    view, record = _locked(uow, principal, task_id, "update")
    if tenant_id is not None and tenant_id != view.row.tenant_id:       # Camunda's rule
        raise BadRequest(f"tenantId: the tenant id of task {task_id} cannot be changed (it is "
                         f"{view.row.tenant_id!r}); send the task's own, or null")
    changed = {column: value for column, value in changes.items() if not _same(getattr(view.row, column), value)}
    if not changed:
        return
    for role in ("assignee", "owner"):
        if role in changed:
            tasks.require_assignable(session, principal, view, changed[role],
                                     f"make '{changed[role]}' the {role} of task {task_id}")
    if "due" in changed:
        legal.require_due_within(session, view.row.instance_id, task_id, changed["due"])
    _apply(uow, principal, view, record, changed, "TaskUpdated")
    uow.commit()


def delegate(uow: UnitOfWork, principal: Principal, task_id: str, user_id: str) -> None:
    """Camunda's delegateTask: the task goes to `user_id`, PENDING, and its owner is who
    had it (kept, if it had an owner already: a task delegated on stays its first owner's)."""
    view, record = _locked(uow, principal, task_id, "delegate")
    tasks.require_assignable(uow.session, principal, view, user_id, f"delegate task {task_id} to '{user_id}'")
    owner = view.row.owner if view.row.owner is not None else view.row.assignee
    _apply(uow, principal, view, record, {"delegation_state": PENDING, "owner": owner, "assignee": user_id},
           "TaskDelegated")
    uow.commit()


def resolve(uow: UnitOfWork, principal: Principal, task_id: str, variables: dict) -> None:
    """Camunda's resolveTask: `variables` set as through POST /task/{id}/variables (the
    same rules), then the task RESOLVED and back with its owner, in one transaction.  A
    task nobody delegated is a 400 (Camunda would hand it to its owner, none: unassign it)."""
    view = tasks.get(uow.session, principal, task_id)
    tasks.require_actionable(principal, view, "resolve")
    _require_pending(view)
    if variables:
        case_variables.change_task_variables(uow, principal, task_id, variables, [], commit=False)
    view, record = _locked(uow, principal, task_id, "resolve")
    _require_pending(view)
    _apply(uow, principal, view, record, {"delegation_state": RESOLVED, "assignee": view.row.owner},
           "TaskResolved")
    uow.commit()


def _require_pending(view: tasks.TaskView) -> None:
    if view.row.delegation_state != PENDING:
        raise BadRequest(f"task {view.row.id} is not delegated (its delegationState is "
                         f"{view.row.delegation_state or 'null'}): there is nothing to resolve; complete it instead")


def _locked(uow: UnitOfWork, principal: Principal, task_id: str, action: str) -> tuple:
    """(the task, its case's record) read under the case's lock, if `principal` may
    `action` it: a claim or completion by a colleague since a first read (they lock the
    case too) is seen, as completing sees it."""
    session = uow.session
    view = tasks.get(session, principal, task_id)
    tasks.require_actionable(principal, view, action)
    record = runtime.load_record(session, view.row.instance_id, lock="wait")
    try:
        view = tasks.get(session, principal, task_id)
    except NotFound:
        raise Conflict(f"task {task_id} was completed at the same time") from None
    tasks.require_actionable(principal, view, action)
    return view, record


def _apply(uow: UnitOfWork, principal: Principal, view: tasks.TaskView, record, changes: dict, kind: str) -> None:
    """Write the fields that differ and audit them as `kind`, with their previous values."""
    changed = {column: value for column, value in changes.items() if getattr(view.row, column) != value}
    if not changed:
        return
    tasks.write_fields(uow.session, view.row.id, changed)
    runtime.bump(uow, record, principal, kind, {
        "changes": {FIELDS[column]: _wire(value) for column, value in changed.items()},
        "previous": {FIELDS[column]: _wire(getattr(view.row, column)) for column in changed}},
        view.row.task_definition_key, view.row.id)


def _same(stored, given) -> bool:
    """A date to the millisecond, as Camunda writes it (a task's due may hold microseconds)."""
    if isinstance(stored, datetime) and isinstance(given, datetime):
        return stored.replace(microsecond=stored.microsecond // 1000 * 1000) == \
            given.replace(microsecond=given.microsecond // 1000 * 1000)
    return stored == given


def _wire(value):
    return format_date(value) if isinstance(value, datetime) else value
