"""Process definitions: query, XML, start an instance, the start form."""
from __future__ import annotations

from sqlalchemy import func, select

from engine import definitions, instances
from engine.errors import NotFound
from engine.models import ProcessDefinition, Resource
from engine.variables import from_wire

from . import render, schemas
from .auth import engine, principal
from .blueprint import Blueprint
from .paging import page

blp = Blueprint("process-definition", __name__, url_prefix="/engine-rest/process-definition",
                description="Deployed process definitions")


def _query(args):
    stmt = select(ProcessDefinition)
    for arg, column in (("key", ProcessDefinition.key), ("processDefinitionId", ProcessDefinition.id),
                        ("deploymentId", ProcessDefinition.deployment_id), ("version", ProcessDefinition.version),
                        ("name", ProcessDefinition.name)):
        if args.get(arg) is not None:
            stmt = stmt.where(column == args[arg])
    if args.get("keyLike"):
        stmt = stmt.where(ProcessDefinition.key.like(args["keyLike"]))
    if args.get("latestVersion"):
        latest = select(ProcessDefinition.key, func.max(ProcessDefinition.version).label("v")) \
            .group_by(ProcessDefinition.key).subquery()
        stmt = stmt.join(latest, (latest.c.key == ProcessDefinition.key) & (latest.c.v == ProcessDefinition.version))
    column = {"key": ProcessDefinition.key, "name": ProcessDefinition.name, "version": ProcessDefinition.version,
              "deploymentId": ProcessDefinition.deployment_id, "id": ProcessDefinition.id}.get(
        args.get("sortBy"), ProcessDefinition.key)
    return stmt.order_by(column.desc() if args.get("sortOrder") == "desc" else column.asc(),
                         ProcessDefinition.version)


@blp.route("")
@blp.arguments(schemas.ProcessDefinitionQuery, location="query")
@blp.response(200, schemas.ProcessDefinition(many=True))
def list_definitions(args):
    with engine().uow(write=False) as uow:
        return [render.process_definition(d) for d in uow.session.execute(page(_query(args), args)).scalars()]


@blp.route("/count")
@blp.arguments(schemas.ProcessDefinitionQuery, location="query")
@blp.response(200, schemas.Count)
def count_definitions(args):
    with engine().uow(write=False) as uow:
        return {"count": uow.session.execute(select(func.count()).select_from(_query(args).subquery())).scalar()}


def _by_id_or_key(session, definition_id=None, key=None):
    return definitions.latest_definition(session, key) if key else definitions.definition_by_id(session, definition_id)


@blp.route("/<definition_id>")
@blp.response(200, schemas.ProcessDefinition)
def get_by_id(definition_id):
    with engine().uow(write=False) as uow:
        return render.process_definition(_by_id_or_key(uow.session, definition_id=definition_id))


@blp.route("/key/<key>")
@blp.response(200, schemas.ProcessDefinition)
def get_by_key(key):
    with engine().uow(write=False) as uow:
        return render.process_definition(_by_id_or_key(uow.session, key=key))


def _xml(definition_id=None, key=None):
    with engine().uow(write=False) as uow:
        row = _by_id_or_key(uow.session, definition_id, key)
        resource = uow.session.get(Resource, row.resource_id)
        return {"id": row.id, "bpmn20Xml": resource.content.decode("utf-8")}


@blp.route("/<definition_id>/xml")
@blp.response(200, schemas.Xml)
def xml_by_id(definition_id):
    return _xml(definition_id=definition_id)


@blp.route("/key/<key>/xml")
@blp.response(200, schemas.Xml)
def xml_by_key(key):
    return _xml(key=key)


def _start(body, definition_id=None, key=None):
    variables = from_wire(body.get("variables"))
    with engine().uow() as uow:
        record, result = instances.start(uow, principal(), variables, body.get("businessKey"), key=key,
                                         definition_id=definition_id)
    return render.process_instance(record, result if body.get("withVariablesInReturn") else None)


@blp.route("/<definition_id>/start", methods=["POST"])
@blp.arguments(schemas.StartBody)
@blp.response(200, schemas.ProcessInstance)
def start_by_id(body, definition_id):
    """Start an instance of this definition version."""
    return _start(body, definition_id=definition_id)


@blp.route("/key/<key>/start", methods=["POST"])
@blp.arguments(schemas.StartBody)
@blp.response(200, schemas.ProcessInstance)
def start_by_key(body, key):
    """Start an instance of the latest version of the process with this key."""
    return _start(body, key=key)


def _start_form(definition_id=None, key=None):
    eng = engine()
    with eng.uow(write=False) as uow:
        row = _by_id_or_key(uow.session, definition_id, key)
        ref = (row.start_form or {})
        if not ref.get("formRef"):
            raise NotFound(f"process definition '{row.id}' has no Camunda Form on its start event "
                           "(camunda:formRef)")
        form_row = eng.definitions.form_definition_row(
            uow.session, {"key": ref["formRef"], "binding": ref.get("binding"), "version": ref.get("version")},
            row.deployment_id, row.tenant_id)
        return eng.definitions.form(uow.session, form_row).raw


@blp.route("/key/<key>/deployed-start-form")
def deployed_start_form_by_key(key):
    """The start event's Camunda Form (form-js JSON)."""
    return _start_form(key=key)


@blp.route("/<definition_id>/deployed-start-form")
def deployed_start_form_by_id(definition_id):
    return _start_form(definition_id=definition_id)


@blp.route("/key/<key>/startForm")
@blp.response(200, schemas.TaskForm)
def start_form_key(key):
    with engine().uow(write=False) as uow:
        row = _by_id_or_key(uow.session, key=key)
        ref = row.start_form or {}
        return {"key": ref.get("formKey"), "contextPath": None,
                "camundaFormRef": render.form_ref({"key": ref["formRef"], "binding": ref.get("binding"),
                                                   "version": ref.get("version")}) if ref.get("formRef") else None}
