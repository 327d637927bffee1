"""User tasks: what a department lists, claims and completes."""
from __future__ import annotations

from engine import case_variables, task_changes, tasks
from engine.db import reading
from engine.variables import check_name, from_patch, from_wire, map_to_wire, to_wire

from . import render, schemas, task_query
from .auth import engine, principal
from .blueprint import Blueprint

blp = Blueprint("task", __name__, url_prefix="/engine-rest/task", description="User tasks")


@blp.route("")
@blp.arguments(task_query.TaskQueryArgs, location="query")
@blp.response(200, schemas.Task(many=True), rendered=True)
def list_tasks(args):
    """Open user tasks the caller may see (their own, their groups', or all for admins), filtered
    by Camunda's task query parameters (README.md, REST API, lists those served)."""
    return listed(task_query.task_query(args))


@blp.route("", methods=["POST"])
@blp.arguments(schemas.Paging, location="query")
@blp.arguments(task_query.TaskQueryBody)
@blp.response(200, schemas.Task(many=True), rendered=True)
def query_tasks(paging, body):
    """The same list, with the query as Camunda's JSON body (arrays, processVariables as
    objects, several sort keys in `sorting`); firstResult and maxResults in the URL."""
    return listed(task_query.task_query(body, paging))


@blp.route("/count")
@blp.arguments(task_query.TaskQueryArgs, location="query")
@blp.response(200, schemas.Count)
def count_tasks(args):
    return counted(task_query.task_query(args))


@blp.route("/count", methods=["POST"])
@blp.arguments(task_query.TaskQueryBody)
@blp.response(200, schemas.Count)
def query_count(body):
    return counted(task_query.task_query(body, {}))


def listed(query: tasks.TaskQuery) -> list:
    """The rendered tasks of `query` the caller may see (also what a filter lists, api/filter.py)."""
    with reading(engine().db) as conn:
        return [render.task(v) for v in tasks.query(conn, principal(), query)]


def counted(query: tasks.TaskQuery) -> dict:
    with reading(engine().db) as conn:
        return {"count": tasks.count(conn, principal(), query)}


@blp.route("/<task_id>")
@blp.response(200, schemas.Task, rendered=True)
def get_task(task_id):
    with reading(engine().db) as conn:
        return render.task(tasks.get(conn, principal(), task_id, reading=True))


# PUT /task/{id}'s body names -> user_task's columns (engine/task_changes.py)
_UPDATED = {**{camunda: column for column, camunda in task_changes.FIELDS.items()},
            "parentTaskId": "parent_task_id", "caseInstanceId": "case_instance_id", "tenantId": "tenant_id"}


@blp.route("/<task_id>", methods=["PUT"])
@blp.arguments(schemas.TaskUpdateBody)
@blp.response(204)
def update_task(body, task_id):
    """Camunda's Update Task (Tasklist's due and follow-up dates): the fields given, by
    whoever may work on the task; a new assignee or owner one it is offered to; a due date
    no later than a legal clock's deadline the task carries (README, "Legal clocks")."""
    with engine().uow() as uow:
        task_changes.update(uow, principal(), task_id, {_UPDATED[name]: value for name, value in body.items()})


@blp.route("/<task_id>/delegate", methods=["POST"])
@blp.arguments(schemas.UserIdBody)
@blp.response(204)
def delegate(body, task_id):
    """Delegate (委派) the task to a colleague it is offered to: PENDING, owned by who had it."""
    with engine().uow() as uow:
        task_changes.delegate(uow, principal(), task_id, body["userId"])


@blp.route("/<task_id>/resolve", methods=["POST"])
@blp.arguments(schemas.ResolveBody)
@blp.response(204)
def resolve(body, task_id):
    """Hand a delegated task back to its owner (RESOLVED), with variables set as through
    POST /task/{id}/variables."""
    with engine().uow() as uow:
        task_changes.resolve(uow, principal(), task_id, from_wire(body.get("variables")))


@blp.route("/<task_id>/claim", methods=["POST"])
@blp.arguments(schemas.UserIdBody)
@blp.response(204)
def claim(body, task_id):
    """Take the task: only the claimant may then complete it."""
    with engine().uow() as uow:
        tasks.claim(uow, principal(), task_id, body["userId"])


@blp.route("/<task_id>/unclaim", methods=["POST"])
@blp.response(204)
def unclaim(task_id):
    with engine().uow() as uow:
        tasks.unclaim(uow, principal(), task_id)


@blp.route("/<task_id>/assignee", methods=["POST"])
@blp.arguments(schemas.AssigneeBody)
@blp.response(204)
def set_assignee(body, task_id):
    with engine().uow() as uow:
        tasks.set_assignee(uow, principal(), task_id, body["userId"])


@blp.route("/<task_id>/complete", methods=["POST"])
@blp.arguments(schemas.CompleteBody)
@blp.response(204)
@blp.alt_response(200, description="with withVariablesInReturn=true: the process variables")
def complete(body, task_id):
    """Complete the task with its form's values; a value the form refuses is a 400 listing every bad field."""
    return _complete(body, task_id)


@blp.route("/<task_id>/submit-form", methods=["POST"])
@blp.arguments(schemas.CompleteBody)
@blp.response(204)
@blp.alt_response(200, description="with withVariablesInReturn=true: the process variables")
def submit_form(body, task_id):
    """Submit the task's form (what Camunda's Tasklist and forms SDK call): the same as
    /complete, the values checked against the task's Camunda Form."""
    return _complete(body, task_id)


def _complete(body, task_id):
    variables = from_wire(body.get("variables"))
    with engine().uow() as uow:
        result = tasks.complete(uow, principal(), task_id, variables)
    if body.get("withVariablesInReturn"):
        return map_to_wire(result), 200
    return None


@blp.route("/<task_id>/bpmnError", methods=["POST"])
@blp.arguments(schemas.TaskBpmnErrorBody)
@blp.response(204)
def bpmn_error(body, task_id):
    """Report a business error from the task (whoever may complete it): the error boundary
    event with that errorCode takes over and the task ends; its form is not checked."""
    variables = from_wire(body.get("variables"))
    with engine().uow() as uow:
        tasks.bpmn_error(uow, principal(), task_id, body.get("errorCode"), body.get("errorMessage"), variables)


@blp.route("/<task_id>/form-variables")
@blp.arguments(schemas.FormVariablesArgs, location="query")
@blp.doc(**schemas.variables_doc("the variables the task's form shows"))
def form_variables(args, task_id):
    with engine().uow(write=False) as uow:
        values = tasks.form_variables(uow, principal(), task_id)
    return map_to_wire(render.only_named(values, args.get("variableNames")))


@blp.route("/<task_id>/variables")
@blp.doc(**schemas.variables_doc("the variables visible from the task"))
def task_variables(task_id):
    with engine().uow(write=False) as uow:
        return map_to_wire(tasks.form_variables(uow, principal(), task_id))


@blp.route("/<task_id>/variables", methods=["POST"])
@blp.arguments(schemas.PatchVariablesBody)
@blp.response(204)
def modify_task_variables(body, task_id):
    """Set and remove the task's case's variables in one command (whoever may complete the
    task, but not its form's fields; administrators anything)."""
    modifications, deletions = from_patch(body.get("modifications"), body.get("deletions"))
    with engine().uow() as uow:
        case_variables.change_task_variables(uow, principal(), task_id, modifications, deletions)


@blp.route("/<task_id>/variables/<var_name>")
@blp.response(200, schemas.VariableValue)
def get_task_variable(task_id, var_name):
    with engine().uow(write=False) as uow:
        return to_wire(*case_variables.task_variable(uow, principal(), task_id, var_name))


@blp.route("/<task_id>/variables/<var_name>", methods=["PUT"])
@blp.arguments(schemas.VariableValue)
@blp.response(204)
def put_task_variable(body, task_id, var_name):
    modification = from_wire({var_name: body})
    with engine().uow() as uow:
        case_variables.change_task_variables(uow, principal(), task_id, modification, [])


@blp.route("/<task_id>/variables/<var_name>", methods=["DELETE"])
@blp.response(204)
def delete_task_variable(task_id, var_name):
    with engine().uow() as uow:
        case_variables.change_task_variables(uow, principal(), task_id, {}, [check_name(var_name)])


@blp.route("/<task_id>/form")
@blp.response(200, schemas.TaskForm)
def form(task_id):
    with engine().uow(write=False) as uow:
        view = tasks.get(uow.session, principal(), task_id)
        return {"key": view.row.form_key, "contextPath": None, "camundaFormRef": render.form_ref(view.row.form_ref)}


@blp.route("/<task_id>/deployed-form")
def deployed_form(task_id):
    """The task's Camunda Form (form-js JSON) as deployed."""
    with engine().uow(write=False) as uow:
        return tasks.deployed_form(uow, principal(), task_id)


@blp.route("/<task_id>/identity-links")
@blp.arguments(schemas.IdentityLinkArgs, location="query")
@blp.response(200, schemas.IdentityLink(many=True))
def identity_links(args, task_id):
    with engine().uow(write=False) as uow:
        links = tasks.identity_links(tasks.get(uow.session, principal(), task_id, reading=True))
    return [link for link in links if link["type"] == args["type"]] if args.get("type") else links
