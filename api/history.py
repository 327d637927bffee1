"""History: finished and running instances, activities, variables."""
from __future__ import annotations

from engine import history, instances
from engine.db import reading
from engine.errors import BadRequest

from . import render, schemas
from .auth import engine, principal
from .blueprint import Blueprint

blp = Blueprint("history", __name__, url_prefix="/engine-rest/history", description="History")


def _finished(args):
    if args.get("finished"):
        return True
    if args.get("unfinished"):
        return False
    return None


# Camunda's flags of one state each (at most one, as in Camunda)
_STATE_FLAGS = {"active": "ACTIVE", "suspended": "SUSPENDED", "completed": "COMPLETED",
                "externallyTerminated": "EXTERNALLY_TERMINATED", "internallyTerminated": "INTERNALLY_TERMINATED"}


def _states(args) -> tuple | None:
    states = {state for flag, state in _STATE_FLAGS.items() if args.get(flag)} | (
        {args["state"]} if args.get("state") else set())
    if len(states) > 1:                 # Camunda's words
        raise BadRequest(f"Already querying for historic process instance with another state: "
                         f"{', '.join(sorted(states))}")
    return tuple(states) or None


def _instance_query(args) -> instances.InstanceQuery:
    ids = args.get("processInstanceIds")
    id_list = ids.split(",") if ids else ([args["processInstanceId"]] if args.get("processInstanceId") else None)
    return instances.InstanceQuery(
        process_definition_key=args.get("processDefinitionKey"), process_definition_id=args.get("processDefinitionId"),
        business_key=args.get("processInstanceBusinessKey"), process_instance_ids=id_list,
        first_result=args.get("firstResult") or 0, max_results=args.get("maxResults"),
        business_key_like=args.get("processInstanceBusinessKeyLike"),
        business_key_in=args.get("processInstanceBusinessKeyIn"),
        definition_key_in=args.get("processDefinitionKeyIn"),
        definition_key_not_in=args.get("processDefinitionKeyNotIn"),
        definition_name=args.get("processDefinitionName"), definition_name_like=args.get("processDefinitionNameLike"),
        started_before=args.get("startedBefore"), started_after=args.get("startedAfter"),
        finished_before=args.get("finishedBefore"), finished_after=args.get("finishedAfter"),
        started_by=args.get("startedBy"), tenant_id_in=args.get("tenantIdIn"),
        without_tenant_id=bool(args.get("withoutTenantId")), active_activity_ids=args.get("activeActivityIdIn"),
        executed_activity_ids=args.get("executedActivityIdIn"),
        executed_activity_after=args.get("executedActivityAfter"),
        executed_activity_before=args.get("executedActivityBefore"),
        variables=args.get("variables"), sort_by=args.get("sortBy"), sort_order=args.get("sortOrder") or "asc")


@blp.route("/process-instance")
@blp.arguments(schemas.HistoricProcessInstanceQuery, location="query")
@blp.response(200, schemas.HistoricProcessInstance(many=True), rendered=True)
def process_instances(args):
    with reading(engine().db) as conn:
        return [render.historic_process_instance(r, engine().definitions.find(conn, r.definition_id)) for r in
                history.process_instances(conn, principal(), _instance_query(args), _states(args), _finished(args))]


@blp.route("/process-instance/count")
@blp.arguments(schemas.HistoricProcessInstanceQuery, location="query")
@blp.response(200, schemas.Count)
def count_process_instances(args):
    with reading(engine().db) as conn:
        return {"count": history.process_instances(conn, principal(), _instance_query(args), _states(args),
                                                   _finished(args), count_only=True)}


@blp.route("/process-instance/<instance_id>")
@blp.response(200, schemas.HistoricProcessInstance, rendered=True)
def process_instance(instance_id):
    with reading(engine().db) as conn:
        row = instances.get(conn, principal(), instance_id, running_only=False)
        return render.historic_process_instance(row, engine().definitions.find(conn, row.definition_id))


def _activity_query(args) -> history.ActivityQuery:
    return history.ActivityQuery(
        process_instance_id=args.get("processInstanceId"), execution_id=args.get("executionId"),
        activity_id=args.get("activityId"), activity_type=args.get("activityType"),
        task_assignee=args.get("taskAssignee"), finished=_finished(args),
        activity_instance_id=args.get("activityInstanceId"), process_definition_id=args.get("processDefinitionId"),
        activity_name=args.get("activityName"), canceled=bool(args.get("canceled")),
        complete_scope=bool(args.get("completeScope")), started_before=args.get("startedBefore"),
        started_after=args.get("startedAfter"), finished_before=args.get("finishedBefore"),
        finished_after=args.get("finishedAfter"), sort_by=args.get("sortBy"),
        sort_order=args.get("sortOrder") or "asc", first_result=args.get("firstResult") or 0,
        max_results=args.get("maxResults"))


@blp.route("/activity-instance")
@blp.arguments(schemas.HistoricActivityInstanceQuery, location="query")
@blp.response(200, schemas.HistoricActivityInstance(many=True), rendered=True)
def activity_instances(args):
    with reading(engine().db) as conn:
        return [render.historic_activity(r) for r in
                history.activity_instances(conn, principal(), _activity_query(args))]


@blp.route("/activity-instance/count")
@blp.arguments(schemas.HistoricActivityInstanceQuery, location="query")
@blp.response(200, schemas.Count)
def count_activity_instances(args):
    with reading(engine().db) as conn:
        return {"count": history.activity_instances(conn, principal(), _activity_query(args), count_only=True)}


def _task_query(args) -> history.TaskQuery:
    return history.TaskQuery(
        task_id=args.get("taskId"), process_instance_id=args.get("processInstanceId"),
        execution_id=args.get("executionId"), business_key=args.get("processInstanceBusinessKey"),
        business_keys=args.get("processInstanceBusinessKeyIn"),
        business_key_like=args.get("processInstanceBusinessKeyLike"),
        process_definition_id=args.get("processDefinitionId"), process_definition_key=args.get("processDefinitionKey"),
        process_definition_name=args.get("processDefinitionName"),
        activity_instance_ids=args.get("activityInstanceIdIn"), name=args.get("taskName"),
        name_like=args.get("taskNameLike"), description=args.get("taskDescription"),
        description_like=args.get("taskDescriptionLike"), task_definition_key=args.get("taskDefinitionKey"),
        task_definition_keys=args.get("taskDefinitionKeyIn"), delete_reason=args.get("taskDeleteReason"),
        delete_reason_like=args.get("taskDeleteReasonLike"), assignee=args.get("taskAssignee"),
        assignee_like=args.get("taskAssigneeLike"), owner=args.get("taskOwner"), owner_like=args.get("taskOwnerLike"),
        priority=args.get("taskPriority"), assigned=bool(args.get("assigned")),
        unassigned=bool(args.get("unassigned")), finished=_finished(args),
        process_finished=_finished({"finished": args.get("processFinished"),
                                    "unfinished": args.get("processUnfinished")}),
        due_on=args.get("taskDueDate"), due_before=args.get("taskDueDateBefore"),
        due_after=args.get("taskDueDateAfter"), without_due=bool(args.get("withoutTaskDueDate")),
        follow_up_on=args.get("taskFollowUpDate"), follow_up_before=args.get("taskFollowUpDateBefore"),
        follow_up_after=args.get("taskFollowUpDateAfter"), started_before=args.get("startedBefore"),
        started_after=args.get("startedAfter"), finished_before=args.get("finishedBefore"),
        finished_after=args.get("finishedAfter"), tenant_ids=args.get("tenantIdIn"),
        without_tenant=bool(args.get("withoutTenantId")), sort_by=args.get("sortBy"),
        sort_order=args.get("sortOrder") or "asc", first_result=args.get("firstResult") or 0,
        max_results=args.get("maxResults"))


@blp.route("/task")
@blp.arguments(schemas.HistoricTaskQuery, location="query")
@blp.response(200, schemas.HistoricTask(many=True), rendered=True)
def historic_tasks(args):
    """The user tasks of the cases the reader takes part in, open and ended, each as it is
    or was when it ended (the "completed tasks" view: finished=true&sortBy=endTime&sortOrder=desc)."""
    with reading(engine().db) as conn:
        return [render.historic_task(r) for r in history.tasks(conn, principal(), _task_query(args))]


@blp.route("/task/count")
@blp.arguments(schemas.HistoricTaskQuery, location="query")
@blp.response(200, schemas.Count)
def count_historic_tasks(args):
    with reading(engine().db) as conn:
        return {"count": history.tasks(conn, principal(), _task_query(args), count_only=True)}


def _variable_query(args) -> history.VariableQuery:
    return history.VariableQuery(
        process_instance_id=args.get("processInstanceId"), variable_name=args.get("variableName"),
        variable_name_like=args.get("variableNameLike"),
        process_instance_ids=args.get("processInstanceIdIn"), execution_ids=args.get("executionIdIn"),
        process_definition_id=args.get("processDefinitionId"), process_definition_key=args.get("processDefinitionKey"),
        variable_names=args.get("variableNameIn"), variable_value=args.get("variableValue"),
        variable_types=args.get("variableTypeIn"), sort_by=args.get("sortBy"),
        sort_order=args.get("sortOrder") or "asc", first_result=args.get("firstResult") or 0,
        max_results=args.get("maxResults"))


@blp.route("/variable-instance")
@blp.arguments(schemas.HistoricVariableInstanceQuery, location="query")
@blp.response(200, schemas.HistoricVariableInstance(many=True), rendered=True)
def variable_instances(args):
    with reading(engine().db) as conn:
        return [render.historic_variable(r)
                for r in history.variable_instances(conn, principal(), _variable_query(args))]


@blp.route("/variable-instance/count")
@blp.arguments(schemas.HistoricVariableInstanceQuery, location="query")
@blp.response(200, schemas.Count)
def count_variable_instances(args):
    with reading(engine().db) as conn:
        return {"count": history.variable_instances(conn, principal(), _variable_query(args), count_only=True)}
