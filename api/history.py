"""History: finished and running instances, activities, variables."""
from __future__ import annotations

from sqlalchemy import select

from engine import history, instances
from engine.db import reading
from engine.models import ProcessDefinition, ProcessInstance

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


def _instance_query(args) -> instances.InstanceQuery:
    ids = args.get("processInstanceIds")
    id_list = ids.split(",") if ids else ([args["processInstanceId"]] if args.get("processInstanceId") else None)
    return instances.InstanceQuery(
        process_definition_key=args.get("processDefinitionKey"), process_definition_id=args.get("processDefinitionId"),
        business_key=args.get("processInstanceBusinessKey"), process_instance_ids=id_list,
        first_result=args.get("firstResult") or 0, max_results=args.get("maxResults"))


def _definitions(session, rows) -> dict:
    ids = {r.definition_id for r in rows}
    if not ids:
        return {}
    return {d.id: d for d in session.execute(select(ProcessDefinition).where(ProcessDefinition.id.in_(ids))).scalars()}


@blp.route("/process-instance")
@blp.arguments(schemas.HistoricProcessInstanceQuery, location="query")
@blp.response(200, schemas.HistoricProcessInstance(many=True))
def process_instances(args):
    with engine().uow(write=False) as uow:
        rows = history.process_instances(uow.session, principal(), _instance_query(args), args.get("state"),
                                         _finished(args))
        defs = _definitions(uow.session, rows)
        return [render.historic_process_instance(r, defs.get(r.definition_id)) for r in rows]


@blp.route("/process-instance/count")
@blp.arguments(schemas.HistoricProcessInstanceQuery, location="query")
@blp.response(200, schemas.Count)
def count_process_instances(args):
    with engine().uow(write=False) as uow:
        return {"count": history.process_instances(uow.session, principal(), _instance_query(args),
                                                   args.get("state"), _finished(args), count_only=True)}


@blp.route("/process-instance/<instance_id>")
@blp.response(200, schemas.HistoricProcessInstance, rendered=True)
def process_instance(instance_id):
    with reading(engine().db) as conn:
        row = instances.get(conn, principal(), instance_id, running_only=False)
        return render.historic_process_instance(row, engine().definitions.definition(conn, row.definition_id))


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
@blp.response(200, schemas.HistoricVariableInstance(many=True))
def variable_instances(args):
    with engine().uow(write=False) as uow:
        rows = history.variable_instances(uow.session, principal(), **_variable_args(args))
        ids = {r.instance_id for r in rows}
        defs = {}
        if ids:
            defs = {i.id: (i.definition_id, i.definition_key) for i in uow.session.execute(
                select(ProcessInstance.id, ProcessInstance.definition_id, ProcessInstance.definition_key)
                .where(ProcessInstance.id.in_(ids)))}
        return [render.historic_variable(r, defs) for r in rows]


@blp.route("/variable-instance/count")
@blp.arguments(schemas.HistoricVariableInstanceQuery, location="query")
@blp.response(200, schemas.Count)
def count_variable_instances(args):
    with engine().uow(write=False) as uow:
        return {"count": history.variable_instances(uow.session, principal(), count_only=True,
                                                    **_variable_args(args))}
