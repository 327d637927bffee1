"""A running case's variables read one by one and changed (Camunda 7's GET, PUT, DELETE
and POST on /process-instance/{id}/variables and /task/{id}/variables).

A task's variables are its case's: Camunda's non-local task variables are the process
variables of the task's scope, and a case here has one scope of process variables.

Who may change them (the README's "Who may do what"): through the case, administrators
only; through a task, also whoever may complete it (its assignee, or a candidate while it
is unclaimed), within what completing it could set: not the fields of its Camunda Form,
which the form checks at completion, and nothing where the task has output parameters,
of which only the outputs reach the case.  A change is one command: the case is locked,
run on (a conditional event may fire), saved and audited (`VariablesModified`) like a
completion.
"""
from __future__ import annotations

from typing import Any

from . import authz, instances, runtime, tasks
from .db import UnitOfWork
from .errors import Forbidden, NotFound
from .identity import Principal


def instance_variable(uow: UnitOfWork, principal: Principal, instance_id: str, name: str) -> tuple[Any, str | None]:
    """The variable's value and its declared type (None: its value's own)."""
    values = instances.variables(uow, principal, instance_id)
    if name not in values:
        raise NotFound(f"process instance variable with name {name} does not exist")
    return values[name], values.types.get(name)


def task_variable(uow: UnitOfWork, principal: Principal, task_id: str, name: str) -> tuple[Any, str | None]:
    """The variable's value and its declared type (None: its value's own)."""
    values = tasks.form_variables(uow, principal, task_id)
    if name not in values:
        raise NotFound(f"task variable with name {name} does not exist")
    return values[name], values.types.get(name)


def change_instance_variables(uow: UnitOfWork, principal: Principal, instance_id: str, modifications: dict,
                              deletions: list) -> None:
    """`modifications` are plain values already checked, with their types (engine.variables.from_wire)."""
    instances.get(uow.session, principal, instance_id)          # 404 as GET .../variables, 403 to outsiders
    if not principal.is_admin:
        raise Forbidden(f"user '{principal.user_id}' may not change the variables of process instance "
                        f"{instance_id}: that is for administrators ('{authz.ADMIN_GROUP}'); an officer "
                        "changes them through a task they may complete (/task/{id}/variables)",
                        userId=principal.user_id)
    _change(uow, principal, instance_id, modifications, deletions, None)


def change_task_variables(uow: UnitOfWork, principal: Principal, task_id: str, modifications: dict,
                          deletions: list, commit: bool = True) -> None:
    """An officer reaches through a task what completing it could set: nothing of the case
    where the task has output parameters (then only they reach the case), and not the
    fields of its form, which completing checks.  Without `commit`, the change waits in
    the unit of work for the caller's (a resolve's, engine/task_changes.py)."""
    view = tasks.get(uow.session, principal, task_id)
    tasks.require_actionable(principal, view, "change the variables of")
    if not principal.is_admin:
        _refuse_form_fields(uow, principal, view, [*modifications, *deletions])
    _change(uow, principal, view.row.instance_id, modifications, deletions, task_id, commit)


def _change(uow: UnitOfWork, principal: Principal, instance_id: str, modifications: dict, deletions: list,
            task_id: str | None, commit: bool = True) -> None:
    if not modifications and not deletions:
        return
    command = runtime.open_instance(uow, instance_id, principal)
    if task_id is not None:
        # read again under the case's lock: a claim by a colleague since the first read
        # (claims lock the case too) makes the task theirs, as it does for complete
        tasks.require_actionable(principal, tasks.get(uow.session, principal, task_id), "change the variables of")
        if not principal.is_admin:
            _refuse_outputs_only(command, principal, task_id)
    runtime.change_variables(command, modifications, deletions, task_id)
    runtime.save(command)
    if commit:
        uow.commit()


def _refuse_form_fields(uow: UnitOfWork, principal: Principal, view: tasks.TaskView, names: list) -> None:
    """A form field is set by completing the task, where the form checks it (required,
    options, patterns): set here, an officer's value would skip those checks."""
    if not view.row.form_ref:
        return
    form = tasks.task_form(uow, view)
    fields = sorted(set(names) & set(form.variable_names))
    if fields:
        raise Forbidden(f"'{', '.join(fields)}' belong to the form '{form.id}' of task {view.row.id}: "
                        "submit them by completing the task, where the form checks them "
                        f"(an administrator may set them here)", userId=principal.user_id)


def _refuse_outputs_only(command: runtime.Command, principal: Principal, task_id: str) -> None:
    """A task with output parameters is a scope of its own (Camunda 7): only the outputs
    reach the case when it completes, so the designer has said what it may change."""
    outputs = runtime.output_names(runtime.find_task(command.workflow, task_id))
    if outputs:
        raise Forbidden(f"task {task_id} passes only its output parameters ({', '.join(outputs)}) to the case: "
                        "complete it to set them (an administrator may change the case's variables)",
                        userId=principal.user_id)
