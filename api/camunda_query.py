"""Camunda 7.22's query parameters of the lists of cases, activities, variables, tasks and
external tasks.

A front end written for Camunda sends the parameters of its REST reference (generated
from engine-rest-openapi's templates: lib/commons/process-instance-query-params.ftl,
process-definition-query-params.ftl, history-process-instance.ftl, history-activity-instance.ftl,
historic-variable-instance-query-params.ftl, task-query-params.ftl,
external-task-query-params.ftl, and the sort and paging parameters; a task query's JSON
body from TaskQueryDto, an external-task query's from ExternalTaskQueryDto).  A query schema
(api/schemas.py `CamundaParameters`) reads those it supports; any other of Camunda's is a
400 naming it, so that a filter nobody applies cannot pass for an answer.  A parameter
Camunda does not have is ignored, as Camunda ignores it.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from marshmallow import fields as f

from engine.errors import BadRequest
from engine.history import VARIABLE_OPERATORS, VariableCondition
from engine.variables import parse_date, to_utc_naive

_COMMON = "sortBy sortOrder firstResult maxResults"

# Camunda's parameter names, per list (GET; the count takes the same filters)
PARAMETERS = {
    "process instance": frozenset(f"""{_COMMON}
        processInstanceIds businessKey businessKeyLike caseInstanceId processDefinitionId processDefinitionKey
        processDefinitionKeyIn processDefinitionKeyNotIn deploymentId superProcessInstance subProcessInstance
        superCaseInstance subCaseInstance active suspended withIncident incidentId incidentType incidentMessage
        incidentMessageLike tenantIdIn withoutTenantId processDefinitionWithoutTenantId activityIdIn
        rootProcessInstances leafProcessInstances variables variableNamesIgnoreCase variableValuesIgnoreCase
        """.split()),
    "historic process instance": frozenset(f"""{_COMMON}
        processInstanceId processInstanceIds processDefinitionId processDefinitionKey processDefinitionKeyIn
        processDefinitionName processDefinitionNameLike processDefinitionKeyNotIn processInstanceBusinessKey
        processInstanceBusinessKeyIn processInstanceBusinessKeyLike rootProcessInstances finished unfinished
        withIncidents withRootIncidents incidentIdIn incidentType incidentStatus incidentMessage
        incidentMessageLike startedBefore startedAfter finishedBefore finishedAfter executedActivityAfter
        executedActivityBefore executedJobAfter executedJobBefore startedBy superProcessInstanceId
        subProcessInstanceId superCaseInstanceId subCaseInstanceId caseInstanceId tenantIdIn withoutTenantId
        activityIdIn executedActivityIdIn activeActivityIdIn active suspended completed externallyTerminated
        internallyTerminated variables variableNamesIgnoreCase variableValuesIgnoreCase
        """.split()),
    "historic activity instance": frozenset(f"""{_COMMON}
        activityInstanceId processInstanceId processDefinitionId executionId activityId activityName activityType
        taskAssignee finished unfinished canceled completeScope startedBefore startedAfter finishedBefore
        finishedAfter tenantIdIn withoutTenantId
        """.split()),
    "historic task": frozenset(f"""{_COMMON}
        taskId taskParentTaskId processInstanceId processInstanceBusinessKey processInstanceBusinessKeyIn
        processInstanceBusinessKeyLike executionId processDefinitionId processDefinitionKey processDefinitionName
        caseInstanceId caseExecutionId caseDefinitionId caseDefinitionKey caseDefinitionName activityInstanceIdIn
        taskName taskNameLike taskDescription taskDescriptionLike taskDefinitionKey taskDefinitionKeyIn
        taskDeleteReason taskDeleteReasonLike taskAssignee taskAssigneeLike taskOwner taskOwnerLike taskPriority
        assigned unassigned finished unfinished processFinished processUnfinished taskDueDate taskDueDateBefore
        taskDueDateAfter withoutTaskDueDate taskFollowUpDate taskFollowUpDateBefore taskFollowUpDateAfter
        startedBefore startedAfter finishedBefore finishedAfter tenantIdIn withoutTenantId taskVariables
        processVariables variableNamesIgnoreCase variableValuesIgnoreCase taskInvolvedUser taskInvolvedGroup
        taskHadCandidateUser taskHadCandidateGroup withCandidateGroups withoutCandidateGroups
        """.split()),
    "historic variable instance": frozenset(f"""{_COMMON} deserializeValues
        variableName variableNameLike variableValue variableNamesIgnoreCase variableValuesIgnoreCase
        variableTypeIn includeDeleted processInstanceId processInstanceIdIn processDefinitionId
        processDefinitionKey executionIdIn caseInstanceId caseExecutionIdIn caseActivityIdIn taskIdIn
        activityInstanceIdIn tenantIdIn withoutTenantId variableNameIn
        """.split()),
    "task": frozenset(f"""{_COMMON}
        taskId taskIdIn processInstanceId processInstanceIdIn processInstanceBusinessKey
        processInstanceBusinessKeyExpression processInstanceBusinessKeyIn processInstanceBusinessKeyLike
        processInstanceBusinessKeyLikeExpression processDefinitionId processDefinitionKey processDefinitionKeyIn
        processDefinitionName processDefinitionNameLike executionId caseInstanceId caseInstanceBusinessKey
        caseInstanceBusinessKeyLike caseDefinitionId caseDefinitionKey caseDefinitionName caseDefinitionNameLike
        caseExecutionId activityInstanceIdIn tenantIdIn withoutTenantId assignee assigneeExpression assigneeLike
        assigneeLikeExpression assigneeIn assigneeNotIn owner ownerExpression candidateGroup candidateGroupExpression
        candidateGroupLike candidateUser candidateUserExpression includeAssignedTasks involvedUser
        involvedUserExpression assigned unassigned taskDefinitionKey taskDefinitionKeyIn taskDefinitionKeyNotIn
        taskDefinitionKeyLike name nameNotEqual nameLike nameNotLike description descriptionLike priority
        maxPriority minPriority dueDate dueDateExpression dueAfter dueAfterExpression dueBefore dueBeforeExpression
        withoutDueDate followUpDate followUpDateExpression followUpAfter followUpAfterExpression followUpBefore
        followUpBeforeExpression followUpBeforeOrNotExistent followUpBeforeOrNotExistentExpression createdOn
        createdOnExpression createdAfter createdAfterExpression createdBefore createdBeforeExpression updatedAfter
        updatedAfterExpression delegationState candidateGroups candidateGroupsExpression withCandidateGroups
        withoutCandidateGroups withCandidateUsers withoutCandidateUsers active suspended taskVariables
        processVariables caseInstanceVariables variableNamesIgnoreCase variableValuesIgnoreCase parentTaskId
        withCommentAttachmentInfo due followUp created
        """.split()),
    "process definition": frozenset(f"""{_COMMON}
        processDefinitionId processDefinitionIdIn name nameLike deploymentId deployedAfter deployedAt key keysIn
        keyLike category categoryLike version latestVersion resourceName resourceNameLike startableBy active
        suspended incidentId incidentType incidentMessage incidentMessageLike tenantIdIn withoutTenantId
        includeProcessDefinitionsWithoutTenantId versionTag versionTagLike withoutVersionTag startableInTasklist
        notStartableInTasklist startablePermissionCheck
        """.split()),
    "external task": frozenset(f"""{_COMMON}
        externalTaskId externalTaskIdIn topicName workerId locked notLocked withRetriesLeft noRetriesLeft
        lockExpirationAfter lockExpirationBefore activityId activityIdIn executionId processInstanceId
        processInstanceIdIn processDefinitionId tenantIdIn active suspended priorityHigherThanOrEquals
        priorityLowerThanOrEquals
        """.split()),
}
# POST /task[/count]: the same in a JSON body (firstResult and maxResults stay in the URL), and two of its own
PARAMETERS["task body"] = PARAMETERS["task"] - {"firstResult", "maxResults"} | {"orQueries", "sorting"}
# POST /external-task[/count] (ExternalTaskQueryDto as JSON), also PUT /external-task/retries' externalTaskQuery
PARAMETERS["external task body"] = PARAMETERS["external task"] - {"firstResult", "maxResults"} | {"sorting"}

# Camunda's flags that "may only be true": false is the same as leaving them out
FLAGS = frozenset("""active suspended withIncident withoutTenantId processDefinitionWithoutTenantId
    rootProcessInstances leafProcessInstances variableNamesIgnoreCase variableValuesIgnoreCase finished unfinished
    withIncidents withRootIncidents completed externallyTerminated internallyTerminated canceled completeScope
    includeDeleted withoutDueDate withCandidateGroups withoutCandidateGroups withCandidateUsers withoutCandidateUsers
    assigned unassigned includeAssignedTasks withCommentAttachmentInfo latestVersion processFinished processUnfinished
    withoutTaskDueDate
    includeProcessDefinitionsWithoutTenantId withoutVersionTag startableInTasklist notStartableInTasklist
    startablePermissionCheck""".split())

_NO_SUB_CASES = "a called process runs inside its caller's case here, never as a case of its own"
_NO_CMMN = "there are no CMMN cases here"
_NO_TENANT = "activities and variables keep no tenant id here"
_INCIDENTS_GONE = ("a resolved incident is not kept here, so the history cannot tell which cases had one; "
                   "GET /process-instance?withIncident=true lists the cases with an open incident")
# why one is not supported, where a reason helps the caller
WHY_NOT = {
    "superProcessInstance": _NO_SUB_CASES, "subProcessInstance": _NO_SUB_CASES,
    "superProcessInstanceId": _NO_SUB_CASES, "subProcessInstanceId": _NO_SUB_CASES,
    "caseInstanceId": _NO_CMMN, "superCaseInstance": _NO_CMMN, "subCaseInstance": _NO_CMMN,
    "superCaseInstanceId": _NO_CMMN, "subCaseInstanceId": _NO_CMMN, "caseExecutionIdIn": _NO_CMMN,
    "caseActivityIdIn": _NO_CMMN,
    "withIncidents": _INCIDENTS_GONE, "withRootIncidents": _INCIDENTS_GONE, "incidentIdIn": _INCIDENTS_GONE,
    "incidentType": _INCIDENTS_GONE, "incidentStatus": _INCIDENTS_GONE, "incidentMessage": _INCIDENTS_GONE,
    "incidentMessageLike": _INCIDENTS_GONE,
    "executedJobAfter": "there is no job log here", "executedJobBefore": "there is no job log here",
    "variableNamesIgnoreCase": "names and values are matched as they are written",
    "variableValuesIgnoreCase": "names and values are matched as they are written",
    "includeDeleted": "a deleted variable is not kept here",
    "activityIdIn": "on GET /history/process-instance, activeActivityIdIn names the cases waiting in an activity",
    "taskIdIn": "variables are kept per case here, not per task",
    "activityInstanceIdIn": "variables are kept per case here, not per activity",
    # the task query's (its other CMMN ones above)
    **{name: _NO_CMMN for name in ("caseInstanceBusinessKey", "caseInstanceBusinessKeyLike", "caseDefinitionId",
                                   "caseDefinitionKey", "caseDefinitionName", "caseDefinitionNameLike",
                                   "caseExecutionId", "caseInstanceVariables")},
    **{name: "expressions are not evaluated from a request here" for name in PARAMETERS["task"]
       if name.endswith("Expression")},
    "taskVariables": "a task's local variables are not kept where a query can read them; processVariables are",
    "parentTaskId": "there are no subtasks here",
    "orQueries": "OR queries are not supported here",
}
_DEFINITION_INCIDENTS = "GET /incident?processDefinitionId=… lists a definition's open incidents"
_CANDIDATES_GONE = ("a task's candidates (and so who was offered it) are not kept once it has ended; the history "
                    "keeps who worked it: taskAssignee")
# the reasons of a query whose names mean something else than in the lists above (its
# incidents are open ones): a query named here takes its reasons from here alone
WHY_NOT_IN = {
    "process definition": {
        "category": "a definition's category (its file's targetNamespace) is not kept here",
        "categoryLike": "a definition's category (its file's targetNamespace) is not kept here",
        "startableBy": "startablePermissionCheck=true lists the definitions the caller may start",
        **{name: _DEFINITION_INCIDENTS for name in ("incidentId", "incidentType", "incidentMessage",
                                                    "incidentMessageLike")},
    },
    "historic task": {
        "taskParentTaskId": "there are no subtasks here",
        **{name: _NO_CMMN for name in ("caseInstanceId", "caseExecutionId", "caseDefinitionId", "caseDefinitionKey",
                                       "caseDefinitionName")},
        "taskVariables": "a task's local variables are not kept where a query can read them",
        "processVariables": "the history of tasks is not filtered by its cases' variables here: find the cases "
                            "with GET /history/process-instance?variables=…, then their tasks by processInstanceId",
        "variableNamesIgnoreCase": "no variables are compared here",
        "variableValuesIgnoreCase": "no variables are compared here",
        **{name: _CANDIDATES_GONE for name in ("taskInvolvedUser", "taskInvolvedGroup", "taskHadCandidateUser",
                                               "taskHadCandidateGroup", "withCandidateGroups",
                                               "withoutCandidateGroups")},
    },
}
SORT_ORDERS = ("asc", "desc")


class CommaList(f.String):
    """Camunda's list parameter: values separated by commas."""

    def _deserialize(self, value, attr, data, **kwargs) -> list[str]:
        return [item for item in super()._deserialize(value, attr, data, **kwargs).split(",") if item]


class CamundaDate(f.String):
    """A date as Camunda writes it (2013-01-23T14:42:45.000+0200; without an offset, the
    display zone's), read as naive UTC, as the tables keep times.  A bad one is a 400
    naming the parameter."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("metadata", {}).setdefault(
            "description", "yyyy-MM-dd'T'HH:mm:ss.SSSZ, e.g. 2013-01-23T14:42:45.000+0200 (each bound inclusive)")
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        name, text = self.data_key or self.name, super()._deserialize(value, attr, data, **kwargs)
        try:
            return to_utc_naive(parse_date(text, name), name)
        except BadRequest:
            if re.search(r"\d \d{2}:?\d{2}$", text):          # 2013-01-23T14:42:45.000 0200
                raise BadRequest(f"{name}: cannot parse {text!r} as a date: its offset's '+' arrived as a "
                                 "space; write it as %2B in a URL (2013-01-23T14:42:45.000%2B0200)") from None
            raise


class DelegationState(f.String):
    """Camunda's delegationState (a task query's, a task's): PENDING or RESOLVED, in any
    case, as its DelegationStateConverter reads it; anything else is its 400."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("metadata", {}).setdefault("description", "PENDING or RESOLVED (any case)")
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text.upper() not in ("PENDING", "RESOLVED"):           # Camunda's words
            raise BadRequest(f"Valid values for property 'delegationState' are 'PENDING' or 'RESOLVED', "
                             f"but was '{text}'")
        return text.upper()


# a value Camunda reads as a Date, not as text (its REST date format)
_CAMUNDA_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{4}")
# every operator of Camunda's variable expressions (notLike: the task query's processVariables only)
VARIABLE_OPERATORS_OF_CAMUNDA = ("eq", "neq", "gt", "gteq", "lt", "lteq", "like", "notLike")


def variable_expressions(parameter: str, text: str, operators: tuple) -> list[tuple[str, str, str]]:
    """Camunda's GET form of variable filters: comma-separated `name_operator_value`, each as
    (name, operator, value text), in Camunda's words where one does not read; `operators`:
    those supported here.  A date-shaped value, which Camunda compares with Date
    variables, is a 400: none are compared here."""
    found = []
    for expression in text.split(","):
        parts = expression.split("_")
        if len(parts) != 3:         # Camunda's rule and words
            raise BadRequest(f"{parameter}: {expression!r}: variable query parameter has to have format "
                             "KEY_OPERATOR_VALUE.")
        name, operator, value = parts
        if operator in VARIABLE_OPERATORS_OF_CAMUNDA and operator not in operators:
            raise BadRequest(f"{parameter}: {expression!r}: operator {operator} is not supported here; use "
                             f"{', '.join(operators)}")
        if operator not in operators:
            raise BadRequest(f"{parameter}: {expression!r}: Invalid variable comparator specified: {operator}")
        if _CAMUNDA_DATE.fullmatch(value):
            raise BadRequest(f"{parameter}: {expression!r}: Camunda compares a date-shaped value with Date "
                             "variables, which is not supported here")
        found.append((name, operator, value))
    return found


class VariableExpressions(f.String):
    """Camunda's `variables`: comma-separated `name_operator_value` expressions, every one
    of which a case must meet.  As in Camunda's GET, a value is text: it matches a String
    variable (neq: anything but a String variable of that value)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("metadata", {}).setdefault(
            "description", "name_operator_value, comma-separated; operators eq, neq, like; a value matches a String "
                           "variable (Camunda's GET reads values as text); neither part may hold '_' or ','")
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> list[VariableCondition]:
        text = super()._deserialize(value, attr, data, **kwargs)
        return [VariableCondition(*parts) for parts in variable_expressions("variables", text, VARIABLE_OPERATORS)]


def refuse_unsupported(query: str, supported: set, data) -> None:
    """A 400 naming the first of Camunda's parameters of `query` in `data` (the request's
    parameters, or its JSON body) that is not `supported` here; a flag set to false is the
    same as none, and so is a null or an empty list in a body (Camunda's default)."""
    if not isinstance(data, Mapping):                   # a JSON body of [], "x", null, 5, ...
        raise BadRequest(f"the body must be a JSON object (Camunda's {query.removesuffix(' body')} query)")
    for name in data.keys():
        value = data.get(name)
        unset = value is None or value == [] or (name in FLAGS and _false(value))
        if name in PARAMETERS[query] and name not in supported and not unset:
            reason = WHY_NOT_IN.get(query, WHY_NOT).get(name)
            raise BadRequest(f"parameter {name} of Camunda's {query.removesuffix(' body')} query is not supported here"
                             + (f": {reason}" if reason else ""))


def check_sorting(args: dict) -> None:
    if (args.get("sortBy") is None) != (args.get("sortOrder") is None):         # Camunda's words
        raise BadRequest("Only a single sorting parameter specified. sortBy and sortOrder required")


def _false(value) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")
