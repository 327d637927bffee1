"""Deployments: POST /deployment/create (what Camunda Modeler's deploy button sends)."""
from __future__ import annotations

from flask import Response, request
from sqlalchemy import func, select

from engine import deployments
from engine.errors import NotFound
from engine.models import Deployment, ProcessDefinition, Resource

from . import render, schemas
from .auth import engine, principal
from .blueprint import Blueprint
from .errors import ErrorSchema
from .paging import page

blp = Blueprint("deployment", __name__, url_prefix="/engine-rest/deployment",
                description="Deploy BPMN diagrams and Camunda Forms")


@blp.route("/create", methods=["POST"])
@blp.arguments(schemas.DeploymentForm, location="form")
@blp.response(200, schemas.Deployment)
@blp.alt_response(400, schema=ErrorSchema, description="ParseException: `details` lists each resource's errors with line and element id")
def create(form):
    """Deploy every attached .bpmn and .form file (multipart/form-data, any field names).

    A broken file deploys nothing.  `enable-duplicate-filtering` skips an unchanged
    deployment; `deploy-changed-only` deploys only the changed files."""
    uploads = [deployments.Upload(storage.filename or field, storage.read())
               for field, storages in request.files.lists() for storage in storages]
    eng = engine()
    with eng.uow() as uow:
        result = deployments.deploy(
            uow, uploads, principal(), name=form["deployment_name"], source=form["deployment_source"],
            duplicate_filtering=form["enable_duplicate_filtering"], changed_only=form["deploy_changed_only"],
            tenant_id=form["tenant_id"], scripts_enabled=eng.settings.script_tasks_enabled)
        body = render.deployment(result.deployment, result.process_definitions)
        uow.commit()
    return body


@blp.route("")
@blp.arguments(schemas.DeploymentQuery, location="query")
@blp.response(200, schemas.Deployment(many=True))
def list_deployments(args):
    """Deployments, newest last (Camunda's default order is by id; use sortBy)."""
    with engine().uow(write=False) as uow:
        stmt = _query(args)
        return [render.deployment(d) for d in uow.session.execute(page(stmt, args)).scalars()]


@blp.route("/count")
@blp.arguments(schemas.DeploymentQuery, location="query")
@blp.response(200, schemas.Count)
def count_deployments(args):
    with engine().uow(write=False) as uow:
        return {"count": uow.session.execute(select(func.count()).select_from(_query(args).subquery())).scalar()}


def _query(args):
    stmt = select(Deployment)
    if args.get("id"):
        stmt = stmt.where(Deployment.id == args["id"])
    if args.get("name"):
        stmt = stmt.where(Deployment.name == args["name"])
    if args.get("nameLike"):
        stmt = stmt.where(Deployment.name.like(args["nameLike"]))
    if args.get("source"):
        stmt = stmt.where(Deployment.source == args["source"])
    column = {"id": Deployment.id, "name": Deployment.name, "tenantId": Deployment.tenant_id}.get(
        args.get("sortBy"), Deployment.deployment_time)
    return stmt.order_by(column.desc() if args.get("sortOrder") == "desc" else column.asc(), Deployment.id)


@blp.route("/<deployment_id>")
@blp.response(200, schemas.Deployment)
def get_deployment(deployment_id):
    with engine().uow(write=False) as uow:
        row = uow.session.get(Deployment, deployment_id)
        if row is None:
            raise NotFound(f"Deployment with id '{deployment_id}' does not exist")
        definitions = uow.session.execute(select(ProcessDefinition).where(
            ProcessDefinition.deployment_id == deployment_id)).scalars().all()
        return render.deployment(row, definitions)


@blp.route("/<deployment_id>", methods=["DELETE"])
@blp.arguments(schemas.DeleteDeploymentArgs, location="query")
@blp.response(204)
def delete(args, deployment_id):
    """Delete a deployment; with `cascade=true` also its process instances."""
    with engine().uow() as uow:
        deployments.delete_deployment(uow, deployment_id, principal(), cascade=args["cascade"])
        uow.commit()


@blp.route("/<deployment_id>/resources")
@blp.response(200, schemas.DeploymentResource(many=True))
def resources(deployment_id):
    with engine().uow(write=False) as uow:
        if uow.session.get(Deployment, deployment_id) is None:
            raise NotFound(f"Deployment with id '{deployment_id}' does not exist")
        rows = uow.session.execute(select(Resource.id, Resource.name).where(Resource.deployment_id == deployment_id))
        return [{"id": r.id, "name": r.name, "deploymentId": deployment_id} for r in rows]


# Camunda 7 answers a .bpmn (and other XML) as application/xml, an unknown type as bytes
_MEDIA_TYPES = {"bpmn": "application/xml", "xml": "application/xml"}


@blp.route("/<deployment_id>/resources/<resource_id>")
@blp.response(200, schemas.DeploymentResource)
@blp.alt_response(404, schema=ErrorSchema, description="no such resource in this deployment")
def resource(deployment_id, resource_id):
    with engine().uow(write=False) as uow:
        row = _resource(uow.session, deployment_id, resource_id)
        return {"id": row.id, "name": row.name, "deploymentId": deployment_id}


@blp.route("/<deployment_id>/resources/<resource_id>/data")
@blp.doc(responses={"200": {"description": "the resource's bytes as deployed: application/xml for .bpmn, "
                                           "application/octet-stream otherwise",
                            "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                "format": "binary"}}}}})
@blp.alt_response(404, schema=ErrorSchema, description="no such resource in this deployment")
def resource_data(deployment_id, resource_id):
    with engine().uow(write=False) as uow:
        row = _resource(uow.session, deployment_id, resource_id)
        name, content = row.name, row.content
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    return Response(content, mimetype=_MEDIA_TYPES.get(extension, "application/octet-stream"))


def _resource(session, deployment_id, resource_id) -> Resource:
    row = session.get(Resource, resource_id)
    if row is None or row.deployment_id != deployment_id:
        raise NotFound(f"Deployment resource with resource id '{resource_id}' "
                       f"for deployment id '{deployment_id}' does not exist")
    return row
