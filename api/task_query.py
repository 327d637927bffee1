"""Camunda 7's task query as GET /task and /task/count take it (query parameters) and as
POST /task and /task/count take it (a JSON body): its parameters -> engine.tasks.TaskQuery.

A Camunda parameter served here filters as Camunda's does; one of Camunda's that is not
served is a 400 naming it (api/camunda_query.py, "task" and "task body"), never silently
dropped: a Tasklist view of overdue tasks would otherwise list everything.  Any other
name is ignored, as Camunda ignores it (clients add cache busters)."""
from __future__ import annotations

import dataclasses

import marshmallow as ma
from marshmallow import fields as f

from engine import tasks
from engine.task_filters import OPERATORS, Filters, VariableFilter

from .blueprint import GivenArgs
from .camunda_query import SORT_ORDERS, CamundaDate, CommaList, DelegationState, variable_expressions
from .schemas import CamundaParameters, CamundaQuery, Strict

TEXT, TEXTS, FLAG, NUMBER, LONG, DATE, VARIABLES = "text", "texts", "flag", "number", "long", "date", "variables"
DELEGATION = "delegation state"

# Camunda 7.22's task query parameters served here: name -> (the field of TaskQuery or else of
# its Filters, the parameter's kind, what it does)
PARAMETERS = {
    "taskId": ("task_id", TEXT, "the task with this id"),
    "taskIdIn": ("task_ids", TEXTS, "the tasks with these ids"),
    "processInstanceId": ("process_instance_id", TEXT, "tasks of this case"),
    "processInstanceIdIn": ("process_instance_ids", TEXTS, "tasks of these cases"),
    "processInstanceBusinessKey": ("business_key", TEXT, "tasks of the case with this business key"),
    "processInstanceBusinessKeyIn": ("business_keys", TEXTS, "tasks of the cases with these business keys"),
    "processInstanceBusinessKeyLike": ("business_key_like", TEXT, "business key LIKE the pattern (% and _)"),
    "processDefinitionId": ("process_definition_id", TEXT, "tasks of this process definition"),
    "executionId": ("execution_id", TEXT, "tasks of this execution: a task's execution is its case here"),
    "activityInstanceIdIn": ("activity_instance_ids", TEXTS, "tasks of these activity instances: a user "
                                                             "task's is the task itself here"),
    "processDefinitionKey": ("process_definition_key", TEXT, "tasks of this process"),
    "processDefinitionKeyIn": ("process_definition_keys", TEXTS, "tasks of these processes"),
    "taskDefinitionKey": ("task_definition_key", TEXT, "tasks of this BPMN element"),
    "taskDefinitionKeyIn": ("task_definition_keys", TEXTS, "tasks of these BPMN elements"),
    "taskDefinitionKeyNotIn": ("task_definition_keys_not", TEXTS, "tasks of none of these BPMN elements"),
    "taskDefinitionKeyLike": ("task_definition_key_like", TEXT, "element id LIKE the pattern"),
    "name": ("name", TEXT, "tasks with this name"),
    "nameNotEqual": ("name_not_equal", TEXT, "tasks with another name (any case)"),
    "nameLike": ("name_like", TEXT, "name LIKE the pattern, in any case (e.g. %审查%)"),
    "nameNotLike": ("name_not_like", TEXT, "name NOT LIKE the pattern, in any case"),
    "description": ("description", TEXT, "tasks with this description (any case)"),
    "descriptionLike": ("description_like", TEXT, "description LIKE the pattern, in any case"),
    "assignee": ("assignee", TEXT, "tasks assigned to this user"),
    "assigneeIn": ("assignees", TEXTS, "tasks assigned to one of these users"),
    "assigneeNotIn": ("assignees_not", TEXTS, "assigned tasks assigned to none of these users"),
    "assigneeLike": ("assignee_like", TEXT, "assignee LIKE the pattern"),
    "assigned": ("assigned", FLAG, "only assigned tasks"),
    "unassigned": ("unassigned", FLAG, "only unassigned tasks"),
    "owner": ("owner", TEXT, "tasks this user owns: delegated (委派) by them"),
    "delegationState": ("delegation_state", DELEGATION, "PENDING: delegated, not yet resolved; RESOLVED: handed "
                                                        "back to the owner"),
    "involvedUser": ("involved_user", TEXT, "tasks the user is assignee, owner or a candidate user of"),
    "candidateGroup": ("candidate_group", TEXT, "tasks offered to this group (unassigned ones unless "
                                               "includeAssignedTasks)"),
    "candidateGroups": ("candidate_groups", TEXTS, "tasks offered to one of these groups (unassigned ones "
                                                   "unless includeAssignedTasks)"),
    "candidateUser": ("candidate_user", TEXT, "tasks offered to this user or their groups (unassigned ones "
                                              "unless includeAssignedTasks)"),
    "includeAssignedTasks": ("include_assigned", FLAG, "a candidate query includes assigned tasks too"),
    "withCandidateGroups": ("with_candidate_groups", FLAG, "tasks offered to some group"),
    "withoutCandidateGroups": ("without_candidate_groups", FLAG, "tasks offered to no group"),
    "withCandidateUsers": ("with_candidate_users", FLAG, "tasks offered to some user by name"),
    "withoutCandidateUsers": ("without_candidate_users", FLAG, "tasks offered to no user by name"),
    "priority": ("priority", NUMBER, "tasks of this priority"),
    "minPriority": ("min_priority", NUMBER, "tasks of this priority or higher"),
    "maxPriority": ("max_priority", NUMBER, "tasks of this priority or lower"),
    "dueDate": ("due_on", DATE, "tasks due at this moment (to the millisecond)"),
    "dueBefore": ("due_before", DATE, "tasks due before this moment (an overdue view: now)"),
    "dueAfter": ("due_after", DATE, "tasks due after this moment"),
    "withoutDueDate": ("without_due", FLAG, "tasks without a due date"),
    "followUpDate": ("follow_up_on", DATE, "tasks to follow up at this moment"),
    "followUpBefore": ("follow_up_before", DATE, "tasks to follow up before this moment"),
    "followUpAfter": ("follow_up_after", DATE, "tasks to follow up after this moment"),
    "followUpBeforeOrNotExistent": ("follow_up_before_or_none", DATE,
                                    "tasks without a follow-up date or with one before this moment"),
    "createdOn": ("created_on", DATE, "tasks created at this moment (to the millisecond)"),
    "createdBefore": ("created_before", DATE, "tasks created before this moment"),
    "createdAfter": ("created_after", DATE, "tasks created after this moment"),
    "updatedAfter": ("updated_after", DATE, "tasks last updated (claimed, unclaimed, reassigned) after this "
                                            "moment; one never updated: when it was created"),
    "tenantIdIn": ("tenant_ids", TEXTS, "tasks of these tenants"),
    "withoutTenantId": ("without_tenant", FLAG, "tasks of no tenant"),
    "active": ("active", FLAG, "active tasks: every task here (no case is suspended)"),
    "suspended": ("suspended", FLAG, "suspended tasks: none here (no case is suspended)"),
    "processVariables": ("process_variables", VARIABLES, "tasks whose case has variables with these values"),
    "variableNamesIgnoreCase": ("variable_names_ignore_case", FLAG, "processVariables' names in any case"),
    "variableValuesIgnoreCase": ("variable_values_ignore_case", FLAG, "processVariables' text values in "
                                                                      "any case"),
    # Camunda's deprecated names of dueDate, followUpDate and createdOn
    "due": ("due_on", DATE, "deprecated: dueDate"),
    "followUp": ("follow_up_on", DATE, "deprecated: followUpDate"),
    "created": ("created_on", DATE, "deprecated: createdOn"),
}
# this server's own: the case's business key, as its earlier versions named it
EXTENSIONS = {"businessKey": ("business_key", TEXT, "extension: processInstanceBusinessKey")}
# a second name -> the name that wins when both are given
_ALIASES = {"businessKey": "processInstanceBusinessKey", "due": "dueDate", "followUp": "followUpDate",
            "created": "createdOn"}
_QUEUE_FIELDS = frozenset(field.name for field in dataclasses.fields(tasks.TaskQuery))


# --- the request shapes (the OpenAPI document is generated from them) ----------------------

class BodyList(f.List):
    """Camunda's list parameter in a JSON body: an array, or one comma-separated string (both
    appear in Camunda's own examples)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(f.String(), allow_none=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = [item for item in value.split(",") if item]
        return super()._deserialize(value, attr, data, **kwargs)


class VariableFilters(f.String):
    """processVariables in a URL: Camunda's `name_operator_value`, comma-separated; a value is
    text, which also matches a number or a Boolean written the same way."""

    def _deserialize(self, value, attr, data, **kwargs) -> tuple:
        text = super()._deserialize(value, attr, data, **kwargs)
        return tuple(VariableFilter(name, operator, value, as_text=True)
                     for name, operator, value in variable_expressions("processVariables", text, OPERATORS))


_DATE_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSZ, e.g. 2025-09-26T10:00:00.000+0800 (in a URL, + as %2B)"
_SORT_BY = ma.validate.OneOf(list(tasks.SORT_FIELDS))
_SORT_ORDER = ma.validate.OneOf(SORT_ORDERS)


def query_field(kind: str, doc: str):
    """A Camunda query parameter of this kind in a URL (the external-task query's too)."""
    described = {"metadata": {"description": doc}}
    if kind == TEXTS:
        return CommaList(metadata={"description": f"{doc}; comma-separated"})
    if kind == FLAG:
        return f.Boolean(**described)
    if kind == NUMBER:
        return f.Integer(**described)
    if kind == LONG:                # Camunda's long: a value beyond it is a 400, not a database error
        return f.Integer(validate=ma.validate.Range(min=-2**63, max=2**63 - 1), **described)
    if kind == DATE:
        return CamundaDate(metadata={"description": f"{doc}; {_DATE_FORMAT}"})
    if kind == DELEGATION:
        return DelegationState(metadata={"description": f"{doc}; in any case"})
    if kind == VARIABLES:
        return VariableFilters(metadata={"description": f"{doc}: name_operator_value, comma-separated; operators "
                                                        f"{', '.join(OPERATORS)}; the value matches a String "
                                                        "variable, and a number or Boolean written the same way"})
    return f.String(**described)


class TaskVariableQuery(Strict):
    name = f.String(required=True)
    operator = f.String(required=True, validate=ma.validate.OneOf(OPERATORS))
    value = f.Raw(allow_none=True, metadata={"description": "a string, number, Boolean or null"})


class TaskSorting(Strict):
    sortBy = f.String(required=True, validate=_SORT_BY)
    sortOrder = f.String(required=True, validate=_SORT_ORDER)
    parameters = f.Dict(allow_none=True, metadata={"description": "for Camunda's variable sorts: not served"})


def body_field(kind: str, doc: str):
    """The same parameter in a JSON body: a list as an array (or a comma-separated string), null as unset."""
    if kind == TEXTS:
        return BodyList(metadata={"description": doc})
    if kind == VARIABLES:
        return f.List(f.Nested(TaskVariableQuery), allow_none=True, metadata={"description": doc})
    field = f.String(metadata={"description": doc}) if kind == TEXT else query_field(kind, doc)
    field.allow_none = True
    return field


_DOCUMENTED = {**PARAMETERS, **EXTENSIONS}


class _TaskQuery(GivenArgs, CamundaQuery):
    camunda_query = "task"


class _TaskQueryBody(CamundaParameters, Strict):
    camunda_query = "task body"


TaskQueryArgs = _TaskQuery.from_dict({
    **{name: query_field(kind, doc) for name, (_, kind, doc) in _DOCUMENTED.items()},
    "sortBy": f.String(validate=_SORT_BY, metadata={"description": "with sortOrder"}),
    "sortOrder": f.String(validate=_SORT_ORDER, metadata={"description": "with sortBy"}),
}, name="TaskQuery")
TaskQueryBody = _TaskQueryBody.from_dict({
    **{name: body_field(kind, doc) for name, (_, kind, doc) in _DOCUMENTED.items()},
    "sortBy": f.String(allow_none=True, validate=_SORT_BY, metadata={"description": "with sortOrder"}),
    "sortOrder": f.String(allow_none=True, validate=_SORT_ORDER, metadata={"description": "with sortBy"}),
    "sorting": f.List(f.Nested(TaskSorting), allow_none=True, metadata={"description": "several sort keys, in order"}),
}, name="TaskQueryBody")


# --- -> engine.tasks.TaskQuery ------------------------------------------------------------

def _converted(kind: str, value):
    if kind == TEXTS:
        return tuple(value)
    if kind == VARIABLES and not isinstance(value, tuple):          # a body's objects
        return tuple(VariableFilter(v["name"], v["operator"], v.get("value")) for v in value)
    return value


def _sorting(args: dict) -> tuple:
    """(sortBy, sortOrder) pairs: the one of sortBy and sortOrder (both or neither: the
    schema's check), then a body's `sorting`."""
    keys = [(args["sortBy"], args["sortOrder"])] if args.get("sortBy") else []
    keys += [(s["sortBy"], s["sortOrder"]) for s in args.get("sorting") or ()]
    return tuple(keys)


def task_query(args: dict, paging: dict | None = None) -> tasks.TaskQuery:
    """A loaded TaskQueryArgs (GET) or TaskQueryBody (POST, with `paging` from its query
    string) as the engine's query: Camunda's other filters in its Filters, if any is given."""
    paging = args if paging is None else paging
    queue, filters = {}, {}
    for name, value in args.items():
        spec = _DOCUMENTED.get(name)
        if spec is None or value is None or value is False or args.get(_ALIASES.get(name)) is not None:
            continue                                             # unset, or its other name wins
        field, kind, _ = spec
        if field != "active":                                    # every task is active here
            (queue if field in _QUEUE_FIELDS else filters)[field] = _converted(kind, value)
    return tasks.TaskQuery(**queue, filters=Filters(**filters) if filters else None, sorting=_sorting(args),
                           first_result=paging.get("firstResult") or 0, max_results=paging.get("maxResults"))
