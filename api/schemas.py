"""Request and response shapes, named and spelled as Camunda 7.2x's REST reference
(the OpenAPI document is generated from them)."""
from __future__ import annotations

import marshmallow as ma
from marshmallow import fields as f

from engine import definitions, history
from engine.validation import PRIORITY_MAX, PRIORITY_MIN

from . import camunda_query
from .camunda_query import CamundaDate, CommaList, DelegationState, VariableExpressions

Str, Int, Bool, Raw = f.String, f.Integer, f.Boolean, f.Raw


class Strict(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE
        ordered = True


# --- common -------------------------------------------------------------------------

class VariableValue(Strict):
    value = Raw(allow_none=True)
    type = Str(allow_none=True, metadata={"description": "String, Integer, Long, Double, Boolean, Json, Date, Null"})
    valueInfo = f.Dict(allow_none=True)


def Variables(**kw):
    return f.Dict(keys=Str(), values=f.Nested(VariableValue), allow_none=True, **kw)


def variables_doc(description: str) -> dict:
    """OpenAPI for a response that is a map of name -> typed value (no marshmallow schema fits)."""
    return {"responses": {"200": {"description": description, "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": {"$ref": "#/components/schemas/VariableValue"}}}}}}}


class Link(Strict):
    method = Str()
    href = Str()
    rel = Str()


class Count(Strict):
    count = Int()


class QueryExtension(ma.Schema):
    """A query given as a JSON object and read as given (a filter's extension: Camunda's task query)."""
    class Meta:
        unknown = ma.INCLUDE


class Paging(Strict):
    firstResult = Int(load_default=0, validate=ma.validate.Range(min=0))
    maxResults = Int(load_default=None, validate=ma.validate.Range(min=0, max=100000))


class CamundaParameters:
    """The parameters of one of Camunda's queries (`camunda_query`: its name in
    api/camunda_query.py PARAMETERS), in a query string or a JSON body: the schema's fields
    are those supported here.  Another of Camunda's parameters is a 400 naming it; sortBy
    and sortOrder come together."""
    camunda_query = ""

    @ma.pre_load
    def refuse_unsupported(self, data, **kwargs):
        camunda_query.refuse_unsupported(self.camunda_query, {fl.data_key or name for name, fl in self.fields.items()},
                                         data)
        return data

    @ma.post_load
    def sorted_both_ways(self, data, **kwargs):
        camunda_query.check_sorting(data)
        return data


class CamundaQuery(CamundaParameters, Paging):
    """A GET list of Camunda's, paged (CamundaParameters)."""


def SortBy(names) -> f.String:
    return Str(validate=ma.validate.OneOf(list(names)))


def SortOrder() -> f.String:
    return Str(validate=ma.validate.OneOf(camunda_query.SORT_ORDERS))


class VersionInfo(Strict):
    version = Str()


class EngineInfo(Strict):
    name = Str()


# --- deployments and definitions -----------------------------------------------------

class DeploymentForm(Strict):
    deployment_name = Str(data_key="deployment-name", load_default=None)
    deployment_source = Str(data_key="deployment-source", load_default=None)
    enable_duplicate_filtering = Bool(data_key="enable-duplicate-filtering", load_default=False)
    deploy_changed_only = Bool(data_key="deploy-changed-only", load_default=False)
    deployment_activation_time = Str(data_key="deployment-activation-time", load_default=None)
    tenant_id = Str(data_key="tenant-id", load_default=None)


class ProcessDefinition(Strict):
    id = Str()
    key = Str()
    category = Str(allow_none=True)
    description = Str(allow_none=True)
    name = Str(allow_none=True)
    version = Int()
    resource = Str()
    deploymentId = Str()
    diagram = Str(allow_none=True)
    suspended = Bool()
    tenantId = Str(allow_none=True)
    versionTag = Str(allow_none=True)
    historyTimeToLive = Int(allow_none=True)
    startableInTasklist = Bool()


class Deployment(Strict):
    links = f.List(f.Nested(Link))
    id = Str()
    name = Str(allow_none=True)
    source = Str(allow_none=True)
    deploymentTime = Str()
    tenantId = Str(allow_none=True)
    processDefinitionKeys = f.List(Str(), metadata={"description": "extension: keys deployed"})
    deployedProcessDefinitions = f.Dict(keys=Str(), values=f.Nested(ProcessDefinition), allow_none=True)
    deployedCaseDefinitions = f.Dict(allow_none=True)
    deployedDecisionDefinitions = f.Dict(allow_none=True)
    deployedDecisionRequirementsDefinitions = f.Dict(allow_none=True)


class DeploymentResource(Strict):
    id = Str()
    name = Str()
    deploymentId = Str()


class DeploymentQuery(Paging):
    id = Str()
    name = Str()
    nameLike = Str()
    source = Str()
    sortBy = Str(validate=ma.validate.OneOf(["id", "name", "deploymentTime", "tenantId"]))
    sortOrder = Str(validate=ma.validate.OneOf(["asc", "desc"]))


class DeleteDeploymentArgs(Strict):
    cascade = Bool(load_default=False)


class ProcessDefinitionQuery(CamundaQuery):
    camunda_query = "process definition"
    processDefinitionId = Str()
    processDefinitionIdIn = CommaList()
    key = Str()
    keysIn = CommaList()
    keyLike = Str()
    name = Str()
    nameLike = Str()
    deploymentId = Str()
    deployedAfter = CamundaDate()
    deployedAt = CamundaDate()
    version = Int()
    latestVersion = Bool()
    resourceName = Str()
    resourceNameLike = Str()
    versionTag = Str()
    versionTagLike = Str()
    withoutVersionTag = Bool()
    startableInTasklist = Bool(metadata={"description": "camunda:isStartableInTasklist is not false"})
    notStartableInTasklist = Bool()
    startablePermissionCheck = Bool(metadata={"description": "only those the caller may start"})
    active = Bool()
    suspended = Bool()
    tenantIdIn = CommaList()
    withoutTenantId = Bool()
    includeProcessDefinitionsWithoutTenantId = Bool()
    sortBy = SortBy(definitions.DEFINITION_SORTS)
    sortOrder = SortOrder()


class ActivityStatisticsQuery(Strict):
    failedJobs = Bool(load_default=False, metadata={"description": "count failedJob incidents of running cases"})
    incidents = Bool(load_default=False, metadata={"description": "open incidents by type"})
    incidentsForType = Str(load_default=None, metadata={"description": "open incidents of this type only"})


class ProcessDefinitionStatisticsQuery(ActivityStatisticsQuery):
    rootIncidents = Bool(load_default=False, metadata={
        "description": "the same as incidents: a called process runs inside its caller's case"})


class IncidentStatistics(Strict):
    incidentType = Str()
    incidentCount = Int()


class ActivityStatistics(Strict):
    at_class = Str(data_key="@class")
    id = Str()
    instances = Int()
    failedJobs = Int()
    incidents = f.List(f.Nested(IncidentStatistics))


class ProcessDefinitionStatistics(ActivityStatistics):
    definition = f.Nested(ProcessDefinition)


class Xml(Strict):
    id = Str()
    bpmn20Xml = Str()


class StartFormBody(Strict):
    """POST .../submit-form: Camunda's StartProcessInstanceFormDto."""
    variables = Variables(load_default=dict)
    businessKey = Str(allow_none=True, load_default=None, validate=ma.validate.Length(max=255))


class StartBody(StartFormBody):
    """POST .../start: Camunda 7.22's StartProcessInstanceDto (api/process_definition.py
    refuses the fields set that are not supported here)."""
    withVariablesInReturn = Bool(load_default=False)
    startInstructions = f.List(f.Raw(), allow_none=True, load_default=None,
                               metadata={"description": "not supported here: a case starts at its start event"})
    skipCustomListeners = Bool(load_default=False, metadata={"description": "not supported here (true)"})
    skipIoMappings = Bool(load_default=False, metadata={"description": "not supported here (true)"})
    caseInstanceId = Str(allow_none=True, load_default=None, metadata={"description": "not supported here"})


class ProcessInstance(Strict):
    links = f.List(f.Nested(Link))
    id = Str()
    definitionId = Str()
    definitionKey = Str()
    businessKey = Str(allow_none=True)
    caseInstanceId = Str(allow_none=True)
    ended = Bool()
    suspended = Bool()
    tenantId = Str(allow_none=True)
    variables = Variables()


class ProcessInstanceQuery(CamundaQuery):
    camunda_query = "process instance"
    processDefinitionKey = Str()
    processDefinitionId = Str()
    businessKey = Str()
    processInstanceIds = Str(metadata={"description": "comma-separated ids"})
    businessKeyLike = Str()
    processDefinitionKeyIn = CommaList()
    processDefinitionKeyNotIn = CommaList()
    deploymentId = Str()
    active = Bool()
    suspended = Bool()
    withIncident = Bool(metadata={"description": "an open incident"})
    incidentId = Str()
    incidentType = Str()
    incidentMessage = Str()
    incidentMessageLike = Str()
    tenantIdIn = CommaList()
    withoutTenantId = Bool()
    processDefinitionWithoutTenantId = Bool()
    rootProcessInstances = Bool(metadata={"description": "every case is one (a called process runs inside it)"})
    leafProcessInstances = Bool(metadata={"description": "every case is one (a called process runs inside it)"})
    variables = VariableExpressions()
    sortBy = SortBy(history.RUNNING_CASE_SORTS)
    sortOrder = SortOrder()


class DeleteInstanceArgs(Strict):
    skipCustomListeners = Bool(load_default=False)
    skipIoMappings = Bool(load_default=False)
    skipSubprocesses = Bool(load_default=False)
    failIfNotExists = Bool(load_default=True)
    deleteReason = Str(load_default=None)


class ActivityInstance(Strict):
    id = Str()
    parentActivityInstanceId = Str(allow_none=True)
    activityId = Str()
    activityType = Str()
    processInstanceId = Str()
    processDefinitionId = Str()
    childActivityInstances = f.List(f.Nested(lambda: ActivityInstance()))
    childTransitionInstances = f.List(f.Dict())
    executionIds = f.List(Str())
    activityName = Str(allow_none=True)
    name = Str(allow_none=True)
    incidentIds = f.List(Str())
    incidents = f.List(f.Dict())


class PatchVariablesBody(Strict):
    modifications = Variables(load_default=dict)
    deletions = f.List(Str(), allow_none=True, load_default=list)


class VariablesArgs(Strict):
    deserializeValues = Bool(load_default=True)


class FormVariablesArgs(VariablesArgs):
    variableNames = Str(metadata={"description": "comma-separated names: only these variables"})


class IdentityLinkArgs(Strict):
    type = Str(validate=ma.validate.OneOf(["assignee", "owner", "candidate"]),
               metadata={"description": "only the links of this type (this server keeps assignee, owner and "
                                        "candidate)"})


# --- tasks --------------------------------------------------------------------------

class FormRef(Strict):
    key = Str()
    binding = Str()
    version = Int(allow_none=True)


class Task(Strict):
    id = Str()
    name = Str(allow_none=True)
    assignee = Str(allow_none=True)
    owner = Str(allow_none=True)
    created = Str()
    lastUpdated = Str(allow_none=True)
    due = Str(allow_none=True)
    followUp = Str(allow_none=True)
    delegationState = Str(allow_none=True)
    description = Str(allow_none=True)
    executionId = Str()
    parentTaskId = Str(allow_none=True)
    priority = Int()
    processDefinitionId = Str()
    processInstanceId = Str()
    caseExecutionId = Str(allow_none=True)
    caseDefinitionId = Str(allow_none=True)
    caseInstanceId = Str(allow_none=True)
    taskDefinitionKey = Str()
    suspended = Bool()
    formKey = Str(allow_none=True)
    camundaFormRef = f.Nested(FormRef, allow_none=True)
    tenantId = Str(allow_none=True)
    taskState = Str()
    candidateGroups = f.List(Str(), metadata={"description": "extension: departments the task is offered to"})
    candidateUsers = f.List(Str(), metadata={"description": "extension"})
    processDefinitionKey = Str(metadata={"description": "extension"})
    businessKey = Str(allow_none=True, metadata={"description": "extension: the case's business key"})


class TaskUpdateBody(Strict):
    """PUT /task/{id}: Camunda's TaskDto.  A field left out keeps its value (Camunda sets it
    to null, a priority to 0): Tasklist sends the whole task back, and both read it alike.
    The task's other fields (id, created, ...) are ignored, as Camunda ignores them."""
    name = Str(allow_none=True, validate=ma.validate.Length(max=255))
    description = Str(allow_none=True, validate=ma.validate.Length(max=4000))
    priority = Int(validate=ma.validate.Range(min=PRIORITY_MIN, max=PRIORITY_MAX),
                   metadata={"description": "Camunda's int"})
    assignee = Str(allow_none=True, validate=ma.validate.Length(min=1, max=64),
                   metadata={"description": "another user: one the task is offered to, as for /assignee"})
    owner = Str(allow_none=True, validate=ma.validate.Length(min=1, max=64),
                metadata={"description": "who delegated it; one the task is offered to"})
    delegationState = DelegationState(allow_none=True)
    due = CamundaDate(allow_none=True, metadata={
        "description": "yyyy-MM-dd'T'HH:mm:ss.SSSZ; on a task that carries a legal clock, no later than its deadline"})
    followUp = CamundaDate(allow_none=True, metadata={"description": "yyyy-MM-dd'T'HH:mm:ss.SSSZ"})
    parentTaskId = Str(allow_none=True, metadata={"description": "null: there are no subtasks here"})
    caseInstanceId = Str(allow_none=True, metadata={"description": "null: there are no CMMN cases here"})
    tenantId = Str(allow_none=True, metadata={"description": "the task's own or null: a tenant does not change"})


class ResolveBody(Strict):
    variables = Variables(load_default=dict, metadata={
        "description": "set as through POST /task/{id}/variables, then the task goes back to its owner"})


class UserIdBody(Strict):
    userId = Str(required=True, allow_none=False, validate=ma.validate.Length(min=1, max=64))


class AssigneeBody(Strict):
    userId = Str(required=True, allow_none=True)


class CompleteBody(Strict):
    variables = Variables(load_default=dict)
    withVariablesInReturn = Bool(load_default=False)


class TaskBpmnErrorBody(Strict):
    """POST /task/{id}/bpmnError; a missing or empty errorCode is the engine's 400, as Camunda's."""
    errorCode = Str(allow_none=True, load_default=None)
    errorMessage = Str(allow_none=True, load_default=None)
    variables = Variables(load_default=dict)


class TaskForm(Strict):
    key = Str(allow_none=True)
    contextPath = Str(allow_none=True)
    camundaFormRef = f.Nested(FormRef, allow_none=True)


class IdentityLink(Strict):
    userId = Str(allow_none=True)
    groupId = Str(allow_none=True)
    type = Str()


# --- history ------------------------------------------------------------------------

class HistoricProcessInstance(Strict):
    id = Str()
    businessKey = Str(allow_none=True)
    processDefinitionId = Str()
    processDefinitionKey = Str()
    processDefinitionName = Str(allow_none=True)
    processDefinitionVersion = Int(allow_none=True)
    startTime = Str()
    endTime = Str(allow_none=True)
    removalTime = Str(allow_none=True)
    durationInMillis = Int(allow_none=True)
    startUserId = Str(allow_none=True)
    startActivityId = Str(allow_none=True)
    deleteReason = Str(allow_none=True)
    rootProcessInstanceId = Str()
    superProcessInstanceId = Str(allow_none=True)
    superCaseInstanceId = Str(allow_none=True)
    caseInstanceId = Str(allow_none=True)
    tenantId = Str(allow_none=True)
    state = Str()


class HistoricProcessInstanceQuery(CamundaQuery):
    camunda_query = "historic process instance"
    processInstanceId = Str()
    processInstanceIds = Str()
    processDefinitionKey = Str()
    processDefinitionId = Str()
    processInstanceBusinessKey = Str()
    state = Str(validate=ma.validate.OneOf(["ACTIVE", "SUSPENDED", "COMPLETED", "EXTERNALLY_TERMINATED",
                                            "INTERNALLY_TERMINATED"]),
                metadata={"description": "extension: one of the states that active, suspended, ... name"})
    finished = Bool()
    unfinished = Bool()
    processDefinitionKeyIn = CommaList()
    processDefinitionKeyNotIn = CommaList()
    processDefinitionName = Str()
    processDefinitionNameLike = Str()
    processInstanceBusinessKeyIn = CommaList()
    processInstanceBusinessKeyLike = Str()
    rootProcessInstances = Bool(metadata={"description": "every case is one (a called process runs inside it)"})
    startedBefore = CamundaDate()
    startedAfter = CamundaDate()
    finishedBefore = CamundaDate()
    finishedAfter = CamundaDate()
    executedActivityAfter = CamundaDate()
    executedActivityBefore = CamundaDate()
    startedBy = Str()
    tenantIdIn = CommaList()
    withoutTenantId = Bool()
    activeActivityIdIn = CommaList()
    executedActivityIdIn = CommaList()
    active = Bool()
    suspended = Bool()
    completed = Bool()
    externallyTerminated = Bool()
    internallyTerminated = Bool()
    variables = VariableExpressions()
    sortBy = SortBy(history.CASE_SORTS)
    sortOrder = SortOrder()


class HistoricActivityInstance(Strict):
    id = Str()
    parentActivityInstanceId = Str(allow_none=True)
    activityId = Str()
    activityName = Str(allow_none=True)
    activityType = Str()
    processDefinitionKey = Str()
    processDefinitionId = Str()
    processInstanceId = Str()
    executionId = Str()
    taskId = Str(allow_none=True)
    calledProcessInstanceId = Str(allow_none=True)
    calledCaseInstanceId = Str(allow_none=True)
    assignee = Str(allow_none=True)
    startTime = Str()
    endTime = Str(allow_none=True)
    durationInMillis = Int(allow_none=True)
    canceled = Bool()
    completeScope = Bool()
    tenantId = Str(allow_none=True)
    removalTime = Str(allow_none=True)
    rootProcessInstanceId = Str()


class HistoricActivityInstanceQuery(CamundaQuery):
    camunda_query = "historic activity instance"
    processInstanceId = Str()
    activityId = Str()
    activityType = Str()
    taskAssignee = Str()
    finished = Bool()
    unfinished = Bool()
    activityInstanceId = Str()
    processDefinitionId = Str()
    executionId = Str(metadata={"description": "an activity's execution is its case"})
    activityName = Str()
    canceled = Bool()
    completeScope = Bool()
    startedBefore = CamundaDate()
    startedAfter = CamundaDate()
    finishedBefore = CamundaDate()
    finishedAfter = CamundaDate()
    sortBy = SortBy(history.ACTIVITY_SORTS)
    sortOrder = SortOrder()


class HistoricTask(Strict):
    id = Str()
    processDefinitionKey = Str()
    processDefinitionId = Str()
    processInstanceId = Str()
    executionId = Str(metadata={"description": "a task's execution is its case"})
    caseDefinitionKey = Str(allow_none=True)
    caseDefinitionId = Str(allow_none=True)
    caseInstanceId = Str(allow_none=True)
    caseExecutionId = Str(allow_none=True)
    activityInstanceId = Str(metadata={"description": "a user task's activity instance is the task itself"})
    name = Str(allow_none=True)
    description = Str(allow_none=True)
    deleteReason = Str(allow_none=True, metadata={"description": "completed, deleted, or the deleted case's reason; "
                                                                 "null while open"})
    owner = Str(allow_none=True)
    assignee = Str(allow_none=True)
    startTime = Str()
    endTime = Str(allow_none=True)
    duration = Int(allow_none=True)
    taskDefinitionKey = Str()
    priority = Int(allow_none=True, metadata={"description": "null for a task ended before the history kept it"})
    due = Str(allow_none=True)
    parentTaskId = Str(allow_none=True)
    followUp = Str(allow_none=True)
    tenantId = Str(allow_none=True)
    removalTime = Str(allow_none=True)
    rootProcessInstanceId = Str()
    taskState = Str(metadata={"description": "Created (open), Completed, Deleted"})


class HistoricTaskQuery(CamundaQuery):
    camunda_query = "historic task"
    taskId = Str()
    processInstanceId = Str()
    processInstanceBusinessKey = Str()
    processInstanceBusinessKeyIn = CommaList()
    processInstanceBusinessKeyLike = Str()
    executionId = Str(metadata={"description": "a task's execution is its case"})
    processDefinitionId = Str()
    processDefinitionKey = Str()
    processDefinitionName = Str()
    activityInstanceIdIn = CommaList(metadata={"description": "a user task's activity instance is the task itself"})
    taskName = Str()
    taskNameLike = Str()
    taskDescription = Str()
    taskDescriptionLike = Str()
    taskDefinitionKey = Str()
    taskDefinitionKeyIn = CommaList()
    taskDeleteReason = Str(metadata={"description": "completed, deleted, or a deleted case's reason"})
    taskDeleteReasonLike = Str()
    taskAssignee = Str()
    taskAssigneeLike = Str()
    taskOwner = Str()
    taskOwnerLike = Str()
    taskPriority = Int(validate=ma.validate.Range(min=-2**31, max=2**31 - 1))
    assigned = Bool()
    unassigned = Bool()
    finished = Bool()
    unfinished = Bool()
    processFinished = Bool()
    processUnfinished = Bool()
    taskDueDate = CamundaDate(metadata={"description": "due at this moment (to the millisecond)"})
    taskDueDateBefore = CamundaDate(metadata={"description": "due before this moment (strictly)"})
    taskDueDateAfter = CamundaDate(metadata={"description": "due after this moment (strictly)"})
    withoutTaskDueDate = Bool()
    taskFollowUpDate = CamundaDate(metadata={"description": "to follow up at this moment (to the millisecond)"})
    taskFollowUpDateBefore = CamundaDate(metadata={"description": "strictly"})
    taskFollowUpDateAfter = CamundaDate(metadata={"description": "strictly"})
    startedBefore = CamundaDate()
    startedAfter = CamundaDate()
    finishedBefore = CamundaDate()
    finishedAfter = CamundaDate()
    tenantIdIn = CommaList()
    withoutTenantId = Bool()
    sortBy = SortBy(history.TASK_SORTS)
    sortOrder = SortOrder()


class HistoricVariableInstance(Strict):
    id = Str()
    name = Str()
    type = Str()
    value = Raw(allow_none=True)
    valueInfo = f.Dict()
    processDefinitionKey = Str()
    processDefinitionId = Str()
    processInstanceId = Str()
    executionId = Str()
    activityInstanceId = Str(allow_none=True)
    taskId = Str(allow_none=True)
    tenantId = Str(allow_none=True)
    errorMessage = Str(allow_none=True)
    state = Str()
    createTime = Str()
    removalTime = Str(allow_none=True)
    rootProcessInstanceId = Str()


class HistoricVariableInstanceQuery(CamundaQuery):
    camunda_query = "historic variable instance"
    processInstanceId = Str()
    variableName = Str()
    variableNameLike = Str()
    deserializeValues = Bool(load_default=True)
    processInstanceIdIn = CommaList()
    processDefinitionId = Str()
    processDefinitionKey = Str()
    executionIdIn = CommaList(metadata={"description": "a variable's execution is its case"})
    variableNameIn = CommaList()
    variableValue = Str(metadata={"description": "with variableName: a String variable of this value (Camunda's "
                                                 "GET reads the value as text)"})
    variableTypeIn = CommaList()
    sortBy = SortBy(history.VARIABLE_SORTS)
    sortOrder = SortOrder()


# --- identity -----------------------------------------------------------------------

class UserProfile(Strict):
    id = Str(required=True, validate=ma.validate.Length(min=1, max=64))
    firstName = Str(allow_none=True, load_default=None)
    lastName = Str(allow_none=True, load_default=None)
    email = Str(allow_none=True, load_default=None)


class UserCredentials(Strict):
    password = Str(required=True, validate=ma.validate.Length(min=1, max=1024))


class CreateUserBody(Strict):
    profile = f.Nested(UserProfile, required=True)
    credentials = f.Nested(UserCredentials, load_default=None)


class VerifyBody(Strict):
    username = Str(required=True)
    password = Str(required=True)


class VerifyResult(Strict):
    authenticatedUser = Str()
    authenticated = Bool()


class PasswordBody(Strict):
    password = Str(required=True, validate=ma.validate.Length(min=1, max=1024))
    authenticatedUserPassword = Str(load_default=None)


class Group(Strict):
    id = Str(required=True, validate=ma.validate.Length(min=1, max=64))
    name = Str(allow_none=True, load_default=None)
    type = Str(allow_none=True, load_default=None)


class IdentityQuery(Paging):
    id = Str()
    memberOfGroup = Str()
    member = Str()


class TokenBody(Strict):
    label = Str(load_default=None, validate=ma.validate.Length(max=255))
    ttlHours = Int(load_default=None, validate=ma.validate.Range(min=1, max=24 * 366))


class Token(Strict):
    id = Str()
    token = Str(metadata={"description": "shown once; send as `Authorization: Bearer <token>`"})
    label = Str(allow_none=True)
    expires = Str(allow_none=True)


# --- signals ----------------------------------------------------------------------------

class SignalBody(Strict):
    """Camunda 7's SignalDto."""
    name = Str(allow_none=True, load_default=None, validate=ma.validate.Length(max=255),
               metadata={"description": "the name of the signal (its <bpmn:signal name>); mandatory"})
    executionId = Str(allow_none=True, load_default=None, validate=ma.validate.Length(max=64), metadata={
        "description": "deliver to this execution only: the id of a waiting signal catch (an activity instance "
                       "id) or of a process instance; no process is started"})
    variables = Variables(load_default=dict, metadata={"description": "become process variables of every case "
                                                                      "that receives the signal or is started by it"})
    tenantId = Str(allow_none=True, load_default=None)
    withoutTenantId = Bool(allow_none=True, load_default=False)
