"""History: finished and running instances, activities, variables."""
from __future__ import annotations

from engine import history, instances
from engine.db import reading

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


def _states(args) -> tuple | None:
    return (args["state"],) if args.get("state") else None


def _instance_query(args) -> instances.InstanceQuery:
    ids = args.get("processInstanceIds")
    id_list = ids.split(",") if ids else ([args["processInstanceId"]] if args.get("processInstanceId") else None)
    return instances.InstanceQuery(
        process_definition_key=args.get("processDefinitionKey"), process_definition_id=args.get("processDefinitionId"),
        business_key=args.get("processInstanceBusinessKey"), process_instance_ids=id_list,
        first_result=args.get("firstResult") or 0, max_results=args.get("maxResults"))


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


def _activity_args(args) -> dict:
    return dict(process_instance_id=args.get("processInstanceId"), activity_id=args.get("activityId"),
                activity_type=args.get("activityType"), task_assignee=args.get("taskAssignee"),
                finished=_finished(args), first_result=args.get("firstResult") or 0,
                max_results=args.get("maxResults"))


@blp.route("/activity-instance")
@blp.arguments(schemas.HistoricActivityInstanceQuery, location="query")
@blp.response(200, schemas.HistoricActivityInstance(many=True), rendered=True)
def activity_instances(args):
    with reading(engine().db) as conn:
        return [render.historic_activity(r) for r in
                history.activity_instances(conn, principal(), **_activity_args(args))]


@blp.route("/activity-instance/count")
@blp.arguments(schemas.HistoricActivityInstanceQuery, location="query")
@blp.response(200, schemas.Count)
def count_activity_instances(args):
    with reading(engine().db) as conn:
        return {"count": history.activity_instances(conn, principal(), count_only=True, **_activity_args(args))}


def _variable_args(args) -> dict:
    return dict(process_instance_id=args.get("processInstanceId"), variable_name=args.get("variableName"),
                variable_name_like=args.get("variableNameLike"), first_result=args.get("firstResult") or 0,
                max_results=args.get("maxResults"))


@blp.route("/variable-instance")
@blp.arguments(schemas.HistoricVariableInstanceQuery, location="query")
@blp.response(200, schemas.HistoricVariableInstance(many=True), rendered=True)
def variable_instances(args):
    with reading(engine().db) as conn:
        return [render.historic_variable(r)
                for r in history.variable_instances(conn, principal(), **_variable_args(args))]


@blp.route("/variable-instance/count")
@blp.arguments(schemas.HistoricVariableInstanceQuery, location="query")
@blp.response(200, schemas.Count)
def count_variable_instances(args):
    with reading(engine().db) as conn:
        return {"count": history.variable_instances(conn, principal(), count_only=True, **_variable_args(args))}
