"""Running process instances: query, variables, activity tree, delete."""
from __future__ import annotations

from engine import case_variables, history, instances, runtime
from engine.db import reading
from engine.variables import check_name, from_patch, from_wire, map_to_wire, to_wire

from . import render, schemas
from .auth import engine, principal
from .blueprint import Blueprint

blp = Blueprint("process-instance", __name__, url_prefix="/engine-rest/process-instance",
                description="Running process instances (cases)")


def _query(args) -> instances.InstanceQuery:
    ids = args.get("processInstanceIds")
    return instances.InstanceQuery(
        process_definition_key=args.get("processDefinitionKey"), process_definition_id=args.get("processDefinitionId"),
        business_key=args.get("businessKey"), process_instance_ids=ids.split(",") if ids else None,
        first_result=args.get("firstResult") or 0, max_results=args.get("maxResults"),
        business_key_like=args.get("businessKeyLike"), definition_key_in=args.get("processDefinitionKeyIn"),
        definition_key_not_in=args.get("processDefinitionKeyNotIn"), deployment_id=args.get("deploymentId"),
        with_incident=bool(args.get("withIncident")), incident_id=args.get("incidentId"),
        incident_type=args.get("incidentType"), incident_message=args.get("incidentMessage"),
        incident_message_like=args.get("incidentMessageLike"), tenant_id_in=args.get("tenantIdIn"),
        # a case's tenant is its definition's
        without_tenant_id=bool(args.get("withoutTenantId") or args.get("processDefinitionWithoutTenantId")),
        variables=args.get("variables"), sort_by=args.get("sortBy"), sort_order=args.get("sortOrder") or "asc")


def _states(args) -> tuple:
    """The running states asked for: both unless active or suspended is (both: suspended,
    the one Camunda applies last)."""
    if args.get("suspended"):
        return ("SUSPENDED",)
    if args.get("active"):
        return (runtime.ACTIVE,)
    return instances.RUNNING


def _record(row) -> runtime.InstanceRecord:
    return runtime.InstanceRecord(row.id, row.definition_id, row.definition_key, row.business_key, row.state,
                                  row.version, row.called_definitions or {}, None, row.tenant_id)


@blp.route("")
@blp.arguments(schemas.ProcessInstanceQuery, location="query")
@blp.response(200, schemas.ProcessInstance(many=True), rendered=True)
def list_instances(args):
    with reading(engine().db) as conn:
        return [render.process_instance(_record(r))
                for r in history.process_instances(conn, principal(), _query(args), _states(args))]


@blp.route("/count")
@blp.arguments(schemas.ProcessInstanceQuery, location="query")
@blp.response(200, schemas.Count)
def count_instances(args):
    with reading(engine().db) as conn:
        return {"count": history.process_instances(conn, principal(), _query(args), _states(args),
                                                   count_only=True)}


@blp.route("/<instance_id>")
@blp.response(200, schemas.ProcessInstance, rendered=True)
def get_instance(instance_id):
    with reading(engine().db) as conn:
        return render.process_instance(_record(instances.get(conn, principal(), instance_id)))


@blp.route("/<instance_id>", methods=["DELETE"])
@blp.arguments(schemas.DeleteInstanceArgs, location="query")
@blp.response(204)
def delete_instance(args, instance_id):
    """Cancel a running instance (state EXTERNALLY_TERMINATED in history); with
    failIfNotExists=false, one that is not running (unknown, ended, deleted) is a 204 too."""
    with engine().uow() as uow:
        instances.delete(uow, principal(), instance_id, args.get("deleteReason"), args["failIfNotExists"])


@blp.route("/<instance_id>/variables")
@blp.arguments(schemas.VariablesArgs, location="query")
@blp.doc(**schemas.variables_doc("the process variables"))
def variables(args, instance_id):
    """The instance's process variables as typed values."""
    with engine().uow(write=False) as uow:
        return map_to_wire(instances.variables(uow, principal(), instance_id))


@blp.route("/<instance_id>/variables", methods=["POST"])
@blp.arguments(schemas.PatchVariablesBody)
@blp.response(204)
def modify_variables(body, instance_id):
    """Set `modifications` and remove `deletions` (after them) in one command: a bad value
    is a 400 naming it and nothing changes.  Administrators only."""
    modifications, deletions = from_patch(body.get("modifications"), body.get("deletions"))
    with engine().uow() as uow:
        case_variables.change_instance_variables(uow, principal(), instance_id, modifications, deletions)


@blp.route("/<instance_id>/variables/<var_name>")
@blp.response(200, schemas.VariableValue)
def get_variable(instance_id, var_name):
    """One process variable as a typed value; 404 if the case has none of that name."""
    with engine().uow(write=False) as uow:
        return to_wire(*case_variables.instance_variable(uow, principal(), instance_id, var_name))


@blp.route("/<instance_id>/variables/<var_name>", methods=["PUT"])
@blp.arguments(schemas.VariableValue)
@blp.response(204)
def put_variable(body, instance_id, var_name):
    """Set one process variable (administrators only); the case runs on with it."""
    modification = from_wire({var_name: body})
    with engine().uow() as uow:
        case_variables.change_instance_variables(uow, principal(), instance_id, modification, [])


@blp.route("/<instance_id>/variables/<var_name>", methods=["DELETE"])
@blp.response(204)
def delete_variable(instance_id, var_name):
    """Remove one process variable (administrators only); removing one the case lacks changes nothing."""
    with engine().uow() as uow:
        case_variables.change_instance_variables(uow, principal(), instance_id, {}, [check_name(var_name)])


@blp.route("/<instance_id>/activity-instances")
@blp.response(200, schemas.ActivityInstance, rendered=True)
def activity_instances(instance_id):
    """The tree of activities running now."""
    with reading(engine().db) as conn:
        return instances.activity_tree(conn, engine().definitions, principal(), instance_id)
