"""Rows -> Camunda 7 DTO dictionaries (camelCase, Camunda's date format)."""
from __future__ import annotations

from datetime import datetime

from flask import request

from engine.variables import VariableMap, format_date, map_to_wire, to_wire


def _base() -> str:
    return request.host_url.rstrip("/") + "/engine-rest"


def process_definition(row) -> dict:
    return {"id": row.id, "key": row.key, "category": "http://bpmn.io/schema/bpmn", "description": row.description,
            "name": row.name, "version": row.version, "resource": row.resource_name,
            "deploymentId": row.deployment_id, "diagram": None, "suspended": bool(row.suspended),
            "tenantId": row.tenant_id, "versionTag": row.version_tag, "historyTimeToLive": row.history_time_to_live,
            "startableInTasklist": bool(row.startable)}


def deployment(row, definitions=None) -> dict:
    body = {"links": [{"method": "GET", "href": f"{_base()}/deployment/{row.id}", "rel": "self"}],
            "id": row.id, "name": row.name, "source": row.source, "deploymentTime": format_date(row.deployment_time),
            "tenantId": row.tenant_id}
    if definitions is not None:
        body["deployedProcessDefinitions"] = {d.id: process_definition(d) for d in definitions} or None
        body["processDefinitionKeys"] = [d.key for d in definitions]
        body.update(deployedCaseDefinitions=None, deployedDecisionDefinitions=None,
                    deployedDecisionRequirementsDefinitions=None)
    return body


def process_instance(record, variables=None) -> dict:
    body = {"links": [{"method": "GET", "href": f"{_base()}/process-instance/{record.id}", "rel": "self"}],
            "id": record.id, "definitionId": record.definition_id, "definitionKey": record.definition_key,
            "businessKey": record.business_key, "caseInstanceId": None,
            "ended": record.state not in ("ACTIVE", "SUSPENDED"), "suspended": record.state == "SUSPENDED",
            "tenantId": record.tenant_id}
    if variables is not None:
        body["variables"] = map_to_wire(variables)
    return body


def task(view) -> dict:
    row = view.row
    ref = row.form_ref
    return {"id": row.id, "name": row.name, "assignee": row.assignee, "owner": row.owner,
            "created": format_date(row.created), "lastUpdated": format_date(row.last_updated),
            "due": format_date(row.due), "followUp": format_date(row.follow_up),
            "delegationState": row.delegation_state,
            "description": row.description, "executionId": row.instance_id, "parentTaskId": None,
            "priority": row.priority, "processDefinitionId": row.definition_id,
            "processInstanceId": row.instance_id, "caseExecutionId": None, "caseDefinitionId": None,
            "caseInstanceId": None, "taskDefinitionKey": row.task_definition_key, "suspended": False,
            "formKey": row.form_key, "camundaFormRef": form_ref(ref), "tenantId": row.tenant_id,
            # Camunda 7.21's task states: an assignee's change updates the task
            "taskState": "Updated" if row.last_updated != row.created else "Created",
            "candidateGroups": sorted(view.candidate_groups),
            "candidateUsers": sorted(view.candidate_users), "processDefinitionKey": row.definition_key,
            "businessKey": row.business_key}


def form_ref(ref) -> dict | None:
    """Camunda's camundaFormRef: a camunda:formRef's (a form a formKey names is in `formKey` only)."""
    if not ref or ref.get("resource") is not None:
        return None
    return {"key": ref.get("key"), "binding": ref.get("binding") or "latest",
            "version": _form_version(ref.get("version"))}


def _form_version(version) -> int | None:
    """camunda:formRefVersion as Camunda's integer, or null: a diagram deployed before it was
    checked may hold text ("abc"), and one such task made its whole department's list a 500."""
    try:
        return int(version)
    except (TypeError, ValueError):
        return None


def duration_ms(start, end) -> int | None:
    return int((end - start).total_seconds() * 1000) if start and end else None


def historic_process_instance(row, definition=None) -> dict:
    return {"id": row.id, "businessKey": row.business_key, "processDefinitionId": row.definition_id,
            "processDefinitionKey": row.definition_key,
            "processDefinitionName": definition.name if definition else None,
            "processDefinitionVersion": definition.version if definition else None,
            "startTime": format_date(row.start_time), "endTime": format_date(row.end_time), "removalTime": None,
            "durationInMillis": duration_ms(row.start_time, row.end_time), "startUserId": row.start_user_id,
            "startActivityId": row.start_activity_id, "deleteReason": row.delete_reason,
            "rootProcessInstanceId": row.id, "superProcessInstanceId": None, "superCaseInstanceId": None,
            "caseInstanceId": None, "tenantId": row.tenant_id, "state": row.state}


def historic_activity(row) -> dict:
    return {"id": row.id, "parentActivityInstanceId": row.parent_activity_instance_id or row.instance_id,
            "activityId": row.activity_id, "activityName": row.activity_name, "activityType": row.activity_type,
            "processDefinitionKey": row.definition_key, "processDefinitionId": row.definition_id,
            "processInstanceId": row.instance_id, "executionId": row.instance_id, "taskId": row.task_id,
            "calledProcessInstanceId": None, "calledCaseInstanceId": None, "assignee": row.assignee,
            "startTime": format_date(row.start_time), "endTime": format_date(row.end_time),
            "durationInMillis": duration_ms(row.start_time, row.end_time), "canceled": bool(row.canceled),
            "completeScope": row.activity_type.endswith("EndEvent"), "tenantId": None, "removalTime": None,
            "rootProcessInstanceId": row.instance_id}


def historic_task(row) -> dict:
    """A user task's row of activity_instance (engine/task_history.py) with its case's tenant_id."""
    state = "Created" if row.end_time is None else "Deleted" if row.canceled else "Completed"
    return {"id": row.id, "processDefinitionKey": row.definition_key, "processDefinitionId": row.definition_id,
            "processInstanceId": row.instance_id, "executionId": row.instance_id, "caseDefinitionKey": None,
            "caseDefinitionId": None, "caseInstanceId": None, "caseExecutionId": None, "activityInstanceId": row.id,
            "name": row.task_name, "description": row.description, "deleteReason": row.delete_reason,
            "owner": row.owner, "assignee": row.assignee, "startTime": format_date(row.start_time),
            "endTime": format_date(row.end_time), "duration": duration_ms(row.start_time, row.end_time),
            "taskDefinitionKey": row.activity_id, "priority": row.priority, "due": format_date(row.due),
            "parentTaskId": None, "followUp": format_date(row.follow_up), "tenantId": row.tenant_id,
            "removalTime": None, "rootProcessInstanceId": row.instance_id, "taskState": state}


def _stored_date(text):
    return format_date(datetime.fromisoformat(text)) if isinstance(text, str) else text


def historic_variable(row) -> dict:
    """A variable_instance row with its case's definition_id and definition_key."""
    # a Date is stored as ISO text (engine/variables.py jsonable) and shown as Camunda writes it
    value = to_wire(row.value, row.type)["value"] if row.type != "Date" else _stored_date(row.value)
    return {"id": row.id, "name": row.name, "type": row.type, "value": value, "valueInfo": {},
            "processDefinitionKey": row.definition_key, "processDefinitionId": row.definition_id,
            "processInstanceId": row.instance_id, "executionId": row.instance_id,
            "activityInstanceId": row.activity_instance_id or row.instance_id, "taskId": None, "tenantId": None,
            "errorMessage": None, "state": "CREATED", "createTime": format_date(row.created), "removalTime": None,
            "rootProcessInstanceId": row.instance_id}


def user(row) -> dict:
    return {"id": row.id, "firstName": row.first_name, "lastName": row.last_name, "email": row.email}


def group(row) -> dict:
    return {"id": row.id, "name": row.name, "type": row.type}


def only_named(values: VariableMap, variable_names: str | None) -> VariableMap:
    """Camunda's `variableNames` of the form-variables routes: only these (comma-separated;
    unknown names are left out); all without it."""
    if variable_names is None:
        return values
    names = {n.strip() for n in variable_names.split(",") if n.strip()}
    return VariableMap({n: v for n, v in values.items() if n in names},
                       {n: t for n, t in values.types.items() if n in names})
