"""External tasks as Camunda 7's REST API serves them: workers fetch and lock by topic,
then complete, fail or report a BPMN error; operators query and restore retries."""
from __future__ import annotations

import marshmallow as ma
from flask import Response
from marshmallow import fields as f

from engine import external_tasks
from engine.errors import BadRequest
from engine.variables import format_date, from_wire, map_to_wire

from . import serving
from .auth import engine, principal
from .blueprint import Blueprint
from .camunda_query import SORT_ORDERS
from .schemas import CamundaParameters, CamundaQuery, Count, Paging, Strict, Variables
from .task_query import DATE, FLAG, LONG, TEXT, TEXTS, body_field, query_field

blp = Blueprint("external-task", __name__, url_prefix="/engine-rest/external-task",
                description="External tasks: department systems as workers (Camunda 7 protocol)")

Str, Int, Bool = f.String, f.Integer, f.Boolean


# --- shapes -----------------------------------------------------------------------------

class FetchTopic(Strict):
    """Every filter of Camunda 7.22's topic; any other key is refused (400, naming it)
    rather than ignored, as a filter silently dropped would hand a worker tasks it did not ask for."""
    class Meta:
        unknown = ma.RAISE

    topicName = Str(required=True, validate=ma.validate.Length(min=1, max=255))
    lockDuration = Int(required=True, validate=ma.validate.Range(min=1),
                       metadata={"description": "milliseconds"})
    variables = f.List(Str(), allow_none=True, load_default=None,
                       metadata={"description": "names to return; omitted: all"})
    localVariables = Bool(load_default=False, allow_none=True)
    businessKey = Str(allow_none=True, load_default=None, validate=ma.validate.Length(max=255))
    processDefinitionId = Str(allow_none=True, load_default=None)
    processDefinitionIdIn = f.List(Str(), allow_none=True, load_default=None)
    processDefinitionKey = Str(allow_none=True, load_default=None)
    processDefinitionKeyIn = f.List(Str(), allow_none=True, load_default=None)
    processDefinitionVersionTag = Str(allow_none=True, load_default=None,
                                      metadata={"description": "only tasks of definitions with this camunda:versionTag"})
    withoutTenantId = Bool(load_default=False, allow_none=True)
    tenantIdIn = f.List(Str(), allow_none=True, load_default=None)
    processVariables = f.Dict(keys=Str(), allow_none=True, load_default=None,
                              metadata={"description": "only tasks whose instance has these variable values"})
    deserializeValues = Bool(load_default=False, allow_none=True, metadata={
        "description": "accepted, nothing to do: this server keeps no serialized (Object) values"})
    includeExtensionProperties = Bool(load_default=False, allow_none=True)


class Sorting(Strict):
    sortBy = Str(validate=ma.validate.OneOf(["createTime"]))
    sortOrder = Str(validate=ma.validate.OneOf(["asc", "desc"]), load_default="asc")


class FetchExternalTasksBody(Strict):
    workerId = Str(required=True, validate=ma.validate.Length(min=1, max=255))
    maxTasks = Int(required=True, validate=ma.validate.Range(min=0, max=1000))
    usePriority = Bool(load_default=False, allow_none=True)
    asyncResponseTimeout = Int(allow_none=True, load_default=None, validate=ma.validate.Range(min=0),
                               metadata={"description": "long polling, milliseconds (at most 1800000)"})
    topics = f.List(f.Nested(FetchTopic), allow_none=True, load_default=list)
    sorting = f.List(f.Nested(Sorting), allow_none=True, load_default=None)


class ExternalTaskDto(Strict):
    id = Str()
    topicName = Str()
    workerId = Str(allow_none=True)
    lockExpirationTime = Str(allow_none=True)
    createTime = Str()
    processInstanceId = Str()
    executionId = Str()
    activityId = Str()
    activityInstanceId = Str()
    processDefinitionId = Str()
    processDefinitionKey = Str()
    processDefinitionVersionTag = Str(allow_none=True)
    retries = Int(allow_none=True)
    errorMessage = Str(allow_none=True)
    suspended = Bool()
    tenantId = Str(allow_none=True)
    priority = Int()
    businessKey = Str(allow_none=True)


class LockedExternalTaskDto(ExternalTaskDto):
    errorDetails = Str(allow_none=True)
    variables = Variables()
    extensionProperties = f.Dict(keys=Str(), values=Str(allow_none=True))


class ExternalTaskCompleteBody(Strict):
    workerId = Str(required=True, validate=ma.validate.Length(min=1, max=255))
    variables = Variables(load_default=dict)
    localVariables = Variables(load_default=dict)


class ExternalTaskFailureBody(Strict):
    workerId = Str(required=True, validate=ma.validate.Length(min=1, max=255))
    errorMessage = Str(allow_none=True, load_default=None)
    errorDetails = Str(allow_none=True, load_default=None)
    retries = Int(allow_none=True, load_default=None,
                  metadata={"description": "retries left; omitted or null: 0 (an incident opens), as in Camunda"})
    retryTimeout = Int(allow_none=True, load_default=None, metadata={"description": "milliseconds; omitted: 0"})
    variables = Variables(load_default=dict)
    localVariables = Variables(load_default=dict)


class ExternalTaskBpmnErrorBody(Strict):
    workerId = Str(required=True, validate=ma.validate.Length(min=1, max=255))
    errorCode = Str(allow_none=True, load_default=None)
    errorMessage = Str(allow_none=True, load_default=None)
    variables = Variables(load_default=dict)


class ExternalTaskLockBody(Strict):
    workerId = Str(required=True, validate=ma.validate.Length(min=1, max=255))
    lockDuration = Int(required=True, metadata={"description": "milliseconds from now"})


class ExternalTaskExtendLockBody(Strict):
    workerId = Str(required=True, validate=ma.validate.Length(min=1, max=255))
    newDuration = Int(required=True, metadata={"description": "milliseconds from now"})


class ExternalTaskRetriesBody(Strict):
    retries = Int(allow_none=True, load_default=None)


# Camunda 7.22's external-task query (api/camunda_query.py "external task"), every parameter
# served, and two of this server's: name -> (the engine's TaskQuery field, kind, what it selects)
QUERY = {
    "externalTaskId": ("external_task_id", TEXT, "the task with this id"),
    "externalTaskIdIn": ("external_task_ids", TEXTS, "the tasks with these ids"),
    "topicName": ("topic_name", TEXT, "tasks of this topic"),
    "workerId": ("worker_id", TEXT, "tasks most recently locked by this worker"),
    "locked": ("locked", FLAG, "tasks locked now"),
    "notLocked": ("not_locked", FLAG, "tasks not locked now (never, or the lock ran out)"),
    "withRetriesLeft": ("with_retries_left", FLAG, "tasks whose retries are above 0 or not set"),
    "noRetriesLeft": ("no_retries_left", FLAG, "tasks with 0 retries (an incident is open)"),
    "lockExpirationAfter": ("lock_expiration_after", DATE, "tasks whose lock expires after this moment "
                                                           "(exclusive, as in Camunda)"),
    "lockExpirationBefore": ("lock_expiration_before", DATE, "tasks whose lock expires before this moment "
                                                             "(exclusive, as in Camunda)"),
    "activityId": ("activity_id", TEXT, "tasks of this BPMN element"),
    "activityIdIn": ("activity_ids", TEXTS, "tasks of these BPMN elements"),
    "executionId": ("execution_id", TEXT, "the task of this execution (a task's execution is itself here)"),
    "processInstanceId": ("process_instance_id", TEXT, "tasks of this case"),
    "processInstanceIdIn": ("process_instance_ids", TEXTS, "tasks of these cases"),
    "processDefinitionId": ("process_definition_id", TEXT, "tasks of this process definition"),
    "tenantIdIn": ("tenant_ids", TEXTS, "tasks of these tenants"),
    "active": ("active", FLAG, "tasks not suspended"),
    "suspended": ("suspended", FLAG, "suspended tasks"),
    "priorityHigherThanOrEquals": ("priority_min", LONG, "tasks of this priority or higher"),
    "priorityLowerThanOrEquals": ("priority_max", LONG, "tasks of this priority or lower"),
    "processDefinitionKey": ("process_definition_key", TEXT, "extension: tasks of this process"),
    "businessKey": ("business_key", TEXT, "extension: tasks of the case with this business key"),
}
_SORT_BY = ma.validate.OneOf(sorted(external_tasks.SORT_FIELDS))
_SORT_ORDER = ma.validate.OneOf(SORT_ORDERS)


class _ExternalTaskQuery(CamundaQuery):
    camunda_query = "external task"


class _ExternalTaskQueryBody(CamundaParameters, Strict):
    camunda_query = "external task body"


class ExternalTaskSorting(Strict):
    sortBy = Str(required=True, validate=_SORT_BY)
    sortOrder = Str(required=True, validate=_SORT_ORDER)


ExternalTaskQuery = _ExternalTaskQuery.from_dict({
    **{name: query_field(kind, doc) for name, (_, kind, doc) in QUERY.items()},
    "sortBy": Str(validate=_SORT_BY, metadata={"description": "with sortOrder"}),
    "sortOrder": Str(validate=_SORT_ORDER, metadata={"description": "with sortBy"}),
}, name="ExternalTaskQuery")
ExternalTaskQueryBody = _ExternalTaskQueryBody.from_dict({
    **{name: body_field(kind, doc) for name, (_, kind, doc) in QUERY.items()},
    "sortBy": Str(allow_none=True, validate=_SORT_BY, metadata={"description": "with sortOrder"}),
    "sortOrder": Str(allow_none=True, validate=_SORT_ORDER, metadata={"description": "with sortBy"}),
    "sorting": f.List(f.Nested(ExternalTaskSorting), allow_none=True,
                      metadata={"description": "several sort keys, in order"}),
}, name="ExternalTaskQueryBody")


class SetRetriesForExternalTasksBody(Strict):
    retries = Int(allow_none=True, load_default=None)
    externalTaskIds = f.List(Str(), allow_none=True, load_default=None)
    processInstanceIds = f.List(Str(), allow_none=True, load_default=None)
    externalTaskQuery = f.Nested(ExternalTaskQueryBody, allow_none=True, load_default=None,
                                 metadata={"description": "POST /external-task's body"})
    processInstanceQuery = f.Raw(allow_none=True, load_default=None, metadata={"description": "not supported here"})
    historicProcessInstanceQuery = f.Raw(allow_none=True, load_default=None,
                                         metadata={"description": "not supported here"})


class TopicNamesQuery(Strict):
    withLockedTasks = Bool(load_default=False)
    withUnlockedTasks = Bool(load_default=False)
    withRetriesLeft = Bool(load_default=False)


# --- rendering and parsing ----------------------------------------------------------------

def render(row) -> dict:
    return {"id": row.id, "topicName": row.topic_name, "workerId": row.worker_id,
            "lockExpirationTime": format_date(row.lock_expiration_time), "createTime": format_date(row.created),
            "processInstanceId": row.instance_id, "executionId": row.execution_id, "activityId": row.activity_id,
            "activityInstanceId": row.activity_instance_id, "processDefinitionId": row.definition_id,
            "processDefinitionKey": row.definition_key, "processDefinitionVersionTag": row.definition_version_tag,
            "retries": row.retries, "errorMessage": row.error_message, "suspended": bool(row.suspended),
            "tenantId": row.tenant_id, "priority": row.priority, "businessKey": row.business_key}


def render_locked(locked: external_tasks.LockedTask) -> dict:
    body = render(locked.row)
    body.update(errorDetails=locked.row.error_details, variables=map_to_wire(locked.variables),
                extensionProperties=locked.extension_properties)
    return body


def _fetch_request(body) -> external_tasks.FetchRequest:
    topics = []
    for t in body.get("topics") or []:
        keys = list(t.get("processDefinitionKeyIn") or []) + ([t["processDefinitionKey"]]
                                                              if t.get("processDefinitionKey") else [])
        ids = list(t.get("processDefinitionIdIn") or []) + ([t["processDefinitionId"]]
                                                            if t.get("processDefinitionId") else [])
        topics.append(external_tasks.TopicRequest(
            topic_name=t["topicName"], lock_duration=t["lockDuration"], variables=t.get("variables"),
            local_variables=bool(t.get("localVariables")), business_key=t.get("businessKey"),
            definition_ids=ids or None, definition_keys=keys or None,
            definition_version_tag=t.get("processDefinitionVersionTag"), tenant_ids=t.get("tenantIdIn"),
            without_tenant=bool(t.get("withoutTenantId")), process_variables=t.get("processVariables") or {},
            include_extension_properties=bool(t.get("includeExtensionProperties"))))
    sorting = body.get("sorting") or []
    return external_tasks.FetchRequest(
        worker_id=body["workerId"], max_tasks=body["maxTasks"], topics=topics,
        use_priority=bool(body.get("usePriority")), async_response_timeout=body.get("asyncResponseTimeout"),
        sort_created=sorting[0].get("sortOrder") if sorting and sorting[0].get("sortBy") else None)


def _query(args: dict, paging: dict | None = None) -> external_tasks.TaskQuery:
    """A loaded ExternalTaskQuery (GET) or ExternalTaskQueryBody (POST, with `paging` from
    its query string) as the engine's query; a flag set to false is no filter, as in Camunda."""
    paging = args if paging is None else paging
    given = {}
    for name, (field_name, kind, _) in QUERY.items():
        value = args.get(name)
        if value is not None and value is not False and value != []:
            given[field_name] = list(value) if kind == TEXTS else value
    if given.pop("active", False):
        given.setdefault("suspended", False)        # suspended=true wins over active=true, as in Camunda
    sorting = [(args["sortBy"], args["sortOrder"])] if args.get("sortBy") else []
    sorting += [(s["sortBy"], s["sortOrder"]) for s in args.get("sorting") or ()]
    return external_tasks.TaskQuery(**given, sorting=tuple(sorting), first_result=paging.get("firstResult") or 0,
                                    max_results=paging.get("maxResults"))


# --- resources --------------------------------------------------------------------------

@blp.route("/fetchAndLock", methods=["POST"])
@blp.arguments(FetchExternalTasksBody)
@blp.response(200, LockedExternalTaskDto(many=True), rendered=True)
def fetch_and_lock(body):
    """Lock up to maxTasks tasks of the given topics for this worker; with asyncResponseTimeout,
    wait (long polling) until one is available.  A waiting request holds no database connection."""
    locked = external_tasks.fetch_and_lock(engine(), principal(), _fetch_request(body), waiting=serving.step_aside)
    return [render_locked(t) for t in locked]


@blp.route("")
@blp.arguments(ExternalTaskQuery, location="query")
@blp.response(200, ExternalTaskDto(many=True))
def list_tasks(args):
    with engine().uow(write=False) as uow:
        return [render(r) for r in external_tasks.query(uow.session, principal(), _query(args))]


@blp.route("", methods=["POST"])
@blp.arguments(Paging, location="query")
@blp.arguments(ExternalTaskQueryBody)
@blp.response(200, ExternalTaskDto(many=True))
def query_tasks(paging, body):
    """The same list, with the query as Camunda's JSON body (arrays, several sort keys in
    `sorting`); firstResult and maxResults in the URL."""
    with engine().uow(write=False) as uow:
        return [render(r) for r in external_tasks.query(uow.session, principal(), _query(body, paging))]


@blp.route("/count")
@blp.arguments(ExternalTaskQuery, location="query")
@blp.response(200, Count)
def count_tasks(args):
    with engine().uow(write=False) as uow:
        return {"count": external_tasks.count(uow.session, principal(), _query(args))}


@blp.route("/count", methods=["POST"])
@blp.arguments(ExternalTaskQueryBody)
@blp.response(200, Count)
def query_count(body):
    with engine().uow(write=False) as uow:
        return {"count": external_tasks.count(uow.session, principal(), _query(body, {}))}


@blp.route("/retries", methods=["PUT"])
@blp.arguments(SetRetriesForExternalTasksBody)
@blp.response(204)
def set_retries_of(body):
    """Set the retries of every task named (`externalTaskIds`), of the cases named
    (`processInstanceIds`) and that `externalTaskQuery` finds, in one transaction, each as
    PUT /external-task/{id}/retries does (Camunda's synchronous "Set Retries")."""
    for name in ("processInstanceQuery", "historicProcessInstanceQuery"):
        if body.get(name) is not None:
            raise BadRequest(f"{name} is not supported here: name the cases in processInstanceIds, or select the "
                             "tasks with externalTaskQuery (POST /external-task's body); nothing was changed")
    query = body.get("externalTaskQuery")
    with engine().uow() as uow:
        external_tasks.set_retries_of(uow, principal(), body.get("retries"), body.get("externalTaskIds"),
                                      body.get("processInstanceIds"), _query(query, {}) if query is not None else None)


@blp.route("/topic-names")
@blp.arguments(TopicNamesQuery, location="query")
@blp.doc(responses={"200": {"description": "the distinct topic names", "content": {"application/json": {
    "schema": {"type": "array", "items": {"type": "string"}}}}}})
def topic_names(args):
    with engine().uow(write=False) as uow:
        return external_tasks.topic_names(uow.session, principal(), args["withLockedTasks"],
                                          args["withUnlockedTasks"], args["withRetriesLeft"])


@blp.route("/<task_id>")
@blp.response(200, ExternalTaskDto)
def get_task(task_id):
    with engine().uow(write=False) as uow:
        return render(external_tasks.get(uow.session, principal(), task_id))


@blp.route("/<task_id>/errorDetails")
@blp.doc(responses={"200": {"description": "the full error details as text/plain",
                            "content": {"text/plain": {"schema": {"type": "string"}}}}})
def error_details(task_id):
    with engine().uow(write=False) as uow:
        details = external_tasks.error_details(uow.session, principal(), task_id)
    if details is None:
        return Response(status=204)
    return Response(details, mimetype="text/plain")


@blp.route("/<task_id>/complete", methods=["POST"])
@blp.arguments(ExternalTaskCompleteBody)
@blp.response(204)
def complete(body, task_id):
    """Complete the task (lock owner only): `variables` reach the process, `localVariables` the task."""
    variables, local_variables = from_wire(body.get("variables")), from_wire(body.get("localVariables"))
    with engine().uow() as uow:
        external_tasks.complete(uow, principal(), task_id, body["workerId"], variables, local_variables)


@blp.route("/<task_id>/failure", methods=["POST"])
@blp.arguments(ExternalTaskFailureBody)
@blp.response(204)
def failure(body, task_id):
    """Report a failure (lock owner only); retries 0 (also when omitted, as in Camunda) opens an
    incident and the task is not fetched any more; retryTimeout keeps it unfetchable until then.
    Retries above 0 resolve the task's open incident, as PUT .../retries does."""
    variables, local_variables = from_wire(body.get("variables")), from_wire(body.get("localVariables"))
    with engine().uow() as uow:
        external_tasks.failure(uow, principal(), task_id, body["workerId"], body.get("errorMessage"),
                               body.get("errorDetails"), body.get("retries"), body.get("retryTimeout"),
                               variables, local_variables)


@blp.route("/<task_id>/bpmnError", methods=["POST"])
@blp.arguments(ExternalTaskBpmnErrorBody)
@blp.response(204)
def bpmn_error(body, task_id):
    """Throw a BPMN error at the task (lock owner only): the matching error boundary event takes over."""
    variables = from_wire(body.get("variables"))
    with engine().uow() as uow:
        external_tasks.bpmn_error(uow, principal(), task_id, body["workerId"], body.get("errorCode"),
                                  body.get("errorMessage"), variables)


@blp.route("/<task_id>/extendLock", methods=["POST"])
@blp.arguments(ExternalTaskExtendLockBody)
@blp.response(204)
def extend_lock(body, task_id):
    with engine().uow() as uow:
        external_tasks.extend_lock(uow, principal(), task_id, body["workerId"], body["newDuration"])


@blp.route("/<task_id>/lock", methods=["POST"])
@blp.arguments(ExternalTaskLockBody)
@blp.response(204)
def lock(body, task_id):
    """Lock this task for the worker (Camunda 7.17+): one that is unlocked, whose lock ran
    out, or is the worker's own; a task another worker holds is a 400."""
    with engine().uow() as uow:
        external_tasks.lock(uow, principal(), task_id, body["workerId"], body["lockDuration"])


@blp.route("/<task_id>/unlock", methods=["POST"])
@blp.response(204)
def unlock(task_id):
    with engine().uow() as uow:
        external_tasks.unlock(uow, principal(), task_id)


@blp.route("/<task_id>/retries", methods=["PUT"])
@blp.arguments(ExternalTaskRetriesBody)
@blp.response(204)
def set_retries(body, task_id):
    """Set the retries; a positive number resolves the task's incident and it is fetched again."""
    with engine().uow() as uow:
        external_tasks.set_retries(uow, principal(), task_id, body.get("retries"))
