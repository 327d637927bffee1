"""Process definitions: query, XML, start an instance, the start form."""
from __future__ import annotations

from engine import definition_statistics, definitions, forms, instances
from engine.errors import BadRequest, NotFound
from engine.models import Resource
from engine.variables import VariableMap, from_wire, map_to_wire

from . import render, schemas
from .auth import engine, principal
from .blueprint import Blueprint

blp = Blueprint("process-definition", __name__, url_prefix="/engine-rest/process-definition",
                description="Deployed process definitions")


def _query(args) -> definitions.DefinitionQuery:
    return definitions.DefinitionQuery(
        ids=_both(args.get("processDefinitionId"), args.get("processDefinitionIdIn")),
        keys=_both(args.get("key"), args.get("keysIn")), key_like=args.get("keyLike"), name=args.get("name"),
        name_like=args.get("nameLike"), deployment_id=args.get("deploymentId"),
        deployed_after=args.get("deployedAfter"), deployed_at=args.get("deployedAt"), version=args.get("version"),
        latest_version=bool(args.get("latestVersion")), resource_name=args.get("resourceName"),
        resource_name_like=args.get("resourceNameLike"), version_tag=args.get("versionTag"),
        version_tag_like=args.get("versionTagLike"), without_version_tag=bool(args.get("withoutVersionTag")),
        startable_in_tasklist=bool(args.get("startableInTasklist")),
        not_startable_in_tasklist=bool(args.get("notStartableInTasklist")),
        # both: suspended, the one Camunda applies last
        suspended=True if args.get("suspended") else False if args.get("active") else None,
        tenant_id_in=args.get("tenantIdIn"), without_tenant_id=bool(args.get("withoutTenantId")),
        include_without_tenant_id=bool(args.get("includeProcessDefinitionsWithoutTenantId")),
        startable_by=principal() if args.get("startablePermissionCheck") else None,
        sort_by=args.get("sortBy"), sort_order=args.get("sortOrder") or "asc",
        first_result=args.get("firstResult") or 0, max_results=args.get("maxResults"))


def _both(one: str | None, many: list | None) -> list | None:
    """Camunda's single and list parameter of the same thing, each narrowing the list."""
    if one is None:
        return many
    return [one] if many is None else [item for item in many if item == one]


@blp.route("")
@blp.arguments(schemas.ProcessDefinitionQuery, location="query")
@blp.response(200, schemas.ProcessDefinition(many=True))
def list_definitions(args):
    with engine().uow(write=False) as uow:
        return [render.process_definition(d) for d in definitions.process_definitions(uow.session, _query(args))]


@blp.route("/count")
@blp.arguments(schemas.ProcessDefinitionQuery, location="query")
@blp.response(200, schemas.Count)
def count_definitions(args):
    with engine().uow(write=False) as uow:
        return {"count": definitions.count_process_definitions(uow.session, _query(args))}


_STATISTICS_CLASS = "org.camunda.bpm.engine.rest.dto.repository.ProcessDefinitionStatisticsResultDto"


@blp.route("/statistics")
@blp.arguments(schemas.ProcessDefinitionStatisticsQuery, location="query")
@blp.response(200, schemas.ProcessDefinitionStatistics(many=True))
def statistics(args):
    """Every deployed version with its running cases; `failedJobs=true` counts its failedJob
    incidents, `incidents=true` (or `rootIncidents=true`) its open incidents by type,
    `incidentsForType` those of one type."""
    with engine().uow(write=False) as uow:
        rows = definition_statistics.statistics(
            uow.session, principal(), failed_jobs=args["failedJobs"], incidents=args["incidents"],
            incidents_for_type=args["incidentsForType"], root_incidents=args["rootIncidents"])
        return [_statistics_row(_STATISTICS_CLASS, row, definition=render.process_definition(row.definition))
                for row in rows]


def _statistics_row(at_class: str, row, **more) -> dict:
    return {"at_class": at_class, "id": row.id, "instances": row.instances, "failedJobs": row.failed_jobs,
            "incidents": [{"incidentType": t, "incidentCount": n} for t, n in sorted(row.incidents.items())],
            **more}


_ACTIVITY_STATISTICS_CLASS = "org.camunda.bpm.engine.rest.dto.repository.ActivityStatisticsResultDto"


def _activity_statistics(args, definition_id=None, key=None, tenant_id=None):
    """Per activity of one version: its running activity instances; `failedJobs=true` its
    failedJob incidents, `incidents=true` its open incidents by type, `incidentsForType`
    those of one type; only the activities with something to report."""
    with engine().uow(write=False) as uow:
        definition = _by_id_or_key(uow.session, definition_id, key, tenant_id)
        rows = definition_statistics.activity_statistics(
            uow.session, principal(), definition.id, failed_jobs=args["failedJobs"], incidents=args["incidents"],
            incidents_for_type=args["incidentsForType"])
        return [_statistics_row(_ACTIVITY_STATISTICS_CLASS, row) for row in rows]


def _by_id_or_key(session, definition_id=None, key=None, tenant_id=None):
    """A version by id, or the newest of a key: without a tenant, or of `tenant_id`
    (Camunda's `/key/{key}/tenant-id/{tenantId}` routes)."""
    if key:
        return definitions.latest_definition(session, key, tenant_id)
    return definitions.definition_by_id(session, definition_id)


@blp.route("/<definition_id>")
@blp.response(200, schemas.ProcessDefinition)
def get_by_id(definition_id):
    with engine().uow(write=False) as uow:
        return render.process_definition(_by_id_or_key(uow.session, definition_id=definition_id))


@blp.route("/key/<key>")
@blp.response(200, schemas.ProcessDefinition)
def get_by_key(key):
    """The newest version of the process with this key that belongs to no tenant."""
    with engine().uow(write=False) as uow:
        return render.process_definition(_by_id_or_key(uow.session, key=key))


@blp.route("/key/<key>/tenant-id/<tenant_id>")
@blp.response(200, schemas.ProcessDefinition)
def get_by_key_of_tenant(key, tenant_id):
    """The newest version of the process with this key of this tenant."""
    with engine().uow(write=False) as uow:
        return render.process_definition(_by_id_or_key(uow.session, key=key, tenant_id=tenant_id))


@blp.route("/<definition_id>/statistics")
@blp.arguments(schemas.ActivityStatisticsQuery, location="query")
@blp.response(200, schemas.ActivityStatistics(many=True))
def activity_statistics_by_id(args, definition_id):
    return _activity_statistics(args, definition_id=definition_id)


@blp.route("/key/<key>/statistics")
@blp.arguments(schemas.ActivityStatisticsQuery, location="query")
@blp.response(200, schemas.ActivityStatistics(many=True))
def activity_statistics_by_key(args, key):
    return _activity_statistics(args, key=key)


@blp.route("/key/<key>/tenant-id/<tenant_id>/statistics")
@blp.arguments(schemas.ActivityStatisticsQuery, location="query")
@blp.response(200, schemas.ActivityStatistics(many=True))
def activity_statistics_by_key_of_tenant(args, key, tenant_id):
    return _activity_statistics(args, key=key, tenant_id=tenant_id)


def _xml(definition_id=None, key=None, tenant_id=None):
    with engine().uow(write=False) as uow:
        row = _by_id_or_key(uow.session, definition_id, key, tenant_id)
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


@blp.route("/key/<key>/tenant-id/<tenant_id>/xml")
@blp.response(200, schemas.Xml)
def xml_by_key_of_tenant(key, tenant_id):
    return _xml(key=key, tenant_id=tenant_id)


# the fields of Camunda's start body that are not supported here, each set to what Camunda
# would not ignore: why, for the 400 that names it (a start that dropped one would start
# the case otherwise than asked)
_UNSUPPORTED_START = {
    "startInstructions": (bool, "a case starts at its start event here, never before or after another "
                                "activity"),
    "skipCustomListeners": (bool, "it applies only with startInstructions, as in Camunda, which refuses it "
                                  "without them"),
    "skipIoMappings": (bool, "it applies only with startInstructions, as in Camunda, which refuses it without "
                             "them"),
    "caseInstanceId": (lambda value: value is not None, "there are no CMMN cases here"),
}


def _refuse_unsupported_start(body) -> None:
    for name, (is_set, reason) in _UNSUPPORTED_START.items():
        if is_set(body.get(name)):
            raise BadRequest(f"parameter {name} of Camunda's process start is not supported here: {reason}; "
                             "nothing was started")


def _start(body, definition_id=None, key=None, tenant_id=None):
    _refuse_unsupported_start(body)
    variables = from_wire(body.get("variables"))
    with engine().uow() as uow:
        record, result = instances.start(uow, principal(), variables, body.get("businessKey"), key=key,
                                         definition_id=definition_id, tenant_id=tenant_id)
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
    """Start an instance of the latest version of the process with this key (of no tenant)."""
    return _start(body, key=key)


@blp.route("/key/<key>/tenant-id/<tenant_id>/start", methods=["POST"])
@blp.arguments(schemas.StartBody)
@blp.response(200, schemas.ProcessInstance)
def start_by_key_of_tenant(body, key, tenant_id):
    """Start an instance of the latest version of the process with this key of this tenant."""
    return _start(body, key=key, tenant_id=tenant_id)


# Camunda Tasklist starts a process with a start form here: the start, the form's check included
@blp.route("/<definition_id>/submit-form", methods=["POST"])
@blp.arguments(schemas.StartFormBody)
@blp.response(200, schemas.ProcessInstance)
def submit_start_form_by_id(body, definition_id):
    """Start an instance of this definition version with its start form's values."""
    return _start(body, definition_id=definition_id)


@blp.route("/key/<key>/submit-form", methods=["POST"])
@blp.arguments(schemas.StartFormBody)
@blp.response(200, schemas.ProcessInstance)
def submit_start_form_by_key(body, key):
    """Start an instance of the latest version with its start form's values."""
    return _start(body, key=key)


@blp.route("/key/<key>/tenant-id/<tenant_id>/submit-form", methods=["POST"])
@blp.arguments(schemas.StartFormBody)
@blp.response(200, schemas.ProcessInstance)
def submit_start_form_by_key_of_tenant(body, key, tenant_id):
    """Start an instance of the tenant's latest version with its start form's values."""
    return _start(body, key=key, tenant_id=tenant_id)


def _start_form(definition_id=None, key=None, tenant_id=None):
    definition, form = _start_form_definition(definition_id, key, tenant_id)
    if form is None:
        raise NotFound(f"process definition '{definition}' has no Camunda Form on its start event "
                       "(camunda:formRef, or camunda:formKey camunda-forms:deployment:NAME)")
    return form.raw


def _start_form_definition(definition_id=None, key=None, tenant_id=None):
    """The definition's id and its start event's Camunda Form (engine.forms.FormDefinition, None without one)."""
    eng = engine()
    with eng.uow(write=False) as uow:
        row = _by_id_or_key(uow.session, definition_id, key, tenant_id)
        ref = definitions.start_form_reference(row.start_form)
        if ref is None:
            return row.id, None
        form_row = eng.definitions.form_definition_row(uow.session, ref, row.deployment_id, row.tenant_id)
        return row.id, eng.definitions.form(uow.session, form_row)


def _start_form_variables(args, definition_id=None, key=None, tenant_id=None):
    """Camunda's start form variables: the start form's default values (a start event without a
    Camunda Form has none: {}), typed as any variable is."""
    _, form = _start_form_definition(definition_id, key, tenant_id)
    values = VariableMap(forms.default_values(form) if form is not None else {})
    return map_to_wire(render.only_named(values, args.get("variableNames")))


@blp.route("/<definition_id>/form-variables")
@blp.arguments(schemas.FormVariablesArgs, location="query")
@blp.doc(**schemas.variables_doc("the start form's default values"))
def start_form_variables_by_id(args, definition_id):
    return _start_form_variables(args, definition_id=definition_id)


@blp.route("/key/<key>/form-variables")
@blp.arguments(schemas.FormVariablesArgs, location="query")
@blp.doc(**schemas.variables_doc("the start form's default values"))
def start_form_variables_by_key(args, key):
    return _start_form_variables(args, key=key)


@blp.route("/key/<key>/tenant-id/<tenant_id>/form-variables")
@blp.arguments(schemas.FormVariablesArgs, location="query")
@blp.doc(**schemas.variables_doc("the start form's default values"))
def start_form_variables_by_key_of_tenant(args, key, tenant_id):
    return _start_form_variables(args, key=key, tenant_id=tenant_id)


@blp.route("/key/<key>/deployed-start-form")
def deployed_start_form_by_key(key):
    """The start event's Camunda Form (form-js JSON)."""
    return _start_form(key=key)


@blp.route("/key/<key>/tenant-id/<tenant_id>/deployed-start-form")
def deployed_start_form_by_key_of_tenant(key, tenant_id):
    return _start_form(key=key, tenant_id=tenant_id)


@blp.route("/<definition_id>/deployed-start-form")
def deployed_start_form_by_id(definition_id):
    return _start_form(definition_id=definition_id)


@blp.route("/key/<key>/startForm")
@blp.response(200, schemas.TaskForm)
def start_form_key(key):
    return _start_form_key(key)


@blp.route("/key/<key>/tenant-id/<tenant_id>/startForm")
@blp.response(200, schemas.TaskForm)
def start_form_key_of_tenant(key, tenant_id):
    return _start_form_key(key, tenant_id)


def _start_form_key(key, tenant_id=None):
    with engine().uow(write=False) as uow:
        row = _by_id_or_key(uow.session, key=key, tenant_id=tenant_id)
        return {"key": (row.start_form or {}).get("formKey"), "contextPath": None,
                "camundaFormRef": render.form_ref(definitions.start_form_reference(row.start_form))}
