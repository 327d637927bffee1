"""Expressions as a team moving from Camunda 7 writes them: a condition must give a
Boolean, a case variable is read by its name even where the engine has a function of
that name, and JUEL's `true`, `false` and `null` mean what they say."""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

import pytest

from engine import scheduler
from engine.clock import clock
from tests.conftest import FIXTURES, typed
from tests.security import models


def approval(key: str, yes: str = "${approved}", no: str = "${not approved}") -> str:
    """审查 (fgw) → an exclusive gateway with two conditions → 批准 or 驳回 (each a user task)."""
    return models.one_task(key, after=f"""<bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="G" />
    <bpmn:exclusiveGateway id="G" />
    <bpmn:sequenceFlow id="Flow_yes" sourceRef="G" targetRef="Approved">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(yes)}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_no" sourceRef="G" targetRef="Rejected">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(no)}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:userTask id="Approved" name="批准" camunda:candidateGroups="fgw" />
    <bpmn:userTask id="Rejected" name="驳回" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F5" sourceRef="Approved" targetRef="E" />
    <bpmn:sequenceFlow id="F6" sourceRef="Rejected" targetRef="E" />""")


def open_steps(client, case: str) -> list[str]:
    return sorted(t["taskDefinitionKey"] for t in client.tasks(processInstanceId=case))


def decided(client, key: str, **variables) -> list[str]:
    """Start `key`, complete its review with `variables`: the steps open after it."""
    case = client.start(key)["id"]
    [task] = client.tasks(processInstanceId=case)
    done = client.complete(task["id"], typed(**variables))
    assert done.status_code == 204, done.get_json()
    return open_steps(client, case)


def audit_events(client, case: str) -> list:
    return client.get(f"/api/v1/process-instance/{case}/dossier").get_json()["auditTrail"]["events"]


# --- a condition gives a Boolean, or the step is refused ---------------------------------------

def test_a_condition_giving_the_text_false_is_refused_naming_the_flow_and_changes_nothing(client):
    """`approved = "false"` (a String, as a form's text field sends it) went the approved
    way: Python finds a non-empty text true.  Camunda 7 refuses a condition that returns a
    non-Boolean (UelExpressionCondition), and so does this engine now."""
    assert client.deploy(extra={"leave.bpmn": approval("leave")}).status_code == 200
    case = client.start("leave")["id"]
    [task] = client.tasks(processInstanceId=case)
    before = audit_events(client, case)
    refused = client.complete(task["id"], typed(approved="false"))
    assert refused.status_code == 400, refused.get_json()
    message = refused.get_json()["message"]
    assert "sequence flow 'Flow_yes'" in message and "${approved}" in message, message
    assert "'false'" in message and "String" in message and "not a Boolean" in message, message
    assert open_steps(client, case) == ["T"]
    assert "approved" not in client.get(f"/engine-rest/process-instance/{case}/variables").get_json()
    assert audit_events(client, case) == before
    assert client.complete(task["id"], typed(approved=False)).status_code == 204
    assert open_steps(client, case) == ["Rejected"]


@pytest.mark.parametrize("value", [1, "yes", None, ["fgw"]])
def test_a_condition_giving_a_number_text_null_or_list_is_refused(client, value):
    assert client.deploy(extra={"leave.bpmn": approval("leave", no="${approved == False}")}).status_code == 200
    case = client.start("leave")["id"]
    [task] = client.tasks(processInstanceId=case)
    refused = client.complete(task["id"], typed(approved=value))
    assert refused.status_code == 400, refused.get_json()
    assert "not a Boolean" in refused.get_json()["message"], refused.get_json()
    assert open_steps(client, case) == ["T"]


def test_a_boolean_condition_still_chooses_the_way(client):
    assert client.deploy(extra={"leave.bpmn": approval("leave")}).status_code == 200
    assert decided(client, "leave", approved=True) == ["Approved"]
    assert decided(client, "leave", approved=False) == ["Rejected"]


def test_a_non_boolean_condition_reached_by_a_timer_is_an_incident_naming_the_flow(client, engine):
    assert client.deploy(extra={"wait.bpmn": models.timer_then_gateway("wait", "${amount}")}).status_code == 200
    case = client.start("wait", typed(amount=5000))["id"]
    clock.set(clock.now() + timedelta(hours=2))
    deadline, incidents = time.monotonic() + 20, []
    while not incidents and time.monotonic() < deadline:
        scheduler.fire_due(engine)
        incidents = client.get("/engine-rest/incident", query_string={"processInstanceId": case}).get_json()
    [incident] = incidents
    assert incident["incidentType"] == "failedJob" and incident["activityId"] == "Wait", incident
    assert "sequence flow 'F3'" in incident["incidentMessage"] and "5000" in incident["incidentMessage"], incident
    assert "Integer" in incident["incidentMessage"], incident
    assert client.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"] == "ACTIVE"


def test_a_conditional_event_whose_condition_gives_text_is_refused_naming_the_event(client):
    condition = (FIXTURES / "materials_condition.bpmn").read_text().replace(
        "${materialsComplete == True}", "${materialsComplete}")
    assert client.deploy(extra={"materials_condition.bpmn": condition}).status_code == 200
    case = client.start("materials_condition", typed(materialsComplete=False))["id"]
    refused = client.put(f"/engine-rest/process-instance/{case}/variables/materialsComplete",
                         json={"value": "yes", "type": "String"})
    assert refused.status_code == 400, refused.get_json()
    message = refused.get_json()["message"]
    assert "conditional event 'Catch_ready'" in message and "'yes'" in message and "String" in message, message
    variables = client.get(f"/engine-rest/process-instance/{case}/variables").get_json()
    assert variables["materialsComplete"]["value"] is False
    assert open_steps(client, case) == ["Task_check"]


def test_a_completion_condition_giving_a_number_is_refused_naming_the_activity(client):
    quorum = models.one_task("quorum", task_attrs='camunda:candidateGroups="${dept}"', inner="""
      <bpmn:multiInstanceLoopCharacteristics camunda:collection="departments" camunda:elementVariable="dept">
        <bpmn:completionCondition xsi:type="bpmn:tFormalExpression">${nrOfCompletedInstances}</bpmn:completionCondition>
      </bpmn:multiInstanceLoopCharacteristics>""")
    assert client.deploy(extra={"quorum.bpmn": quorum}).status_code == 200
    case = client.start("quorum", typed(departments=["fgw", "zrzy"]))["id"]
    first = client.tasks(processInstanceId=case)[0]
    refused = client.complete(first["id"])
    assert refused.status_code == 400, refused.get_json()
    message = refused.get_json()["message"]
    assert "multi-instance 'T' (completionCondition)" in message and "Integer" in message, message
    assert len(client.tasks(processInstanceId=case)) == 2


# --- a case variable is read by its name, beside the engine's functions -------------------------

HELPERS = ("now", "days", "hours", "workdays", "workhours", "config", "variable", "business_key", "group_name",
           "legal_deadline", "legal_warning")


@pytest.mark.parametrize("name", HELPERS)
def test_a_case_variable_named_like_an_engine_function_is_read_by_its_name(client, name):
    """A vacation request's `days` was hidden by the engine's days(): `${days > 5}` was a
    400 "'>' not supported between instances of 'function' and 'int'" at every completion,
    so the case could never leave the review."""
    model = approval("leave", yes=f"${{{name} > 5}}", no=f"${{{name} <= 5}}")
    assert client.deploy(extra={"leave.bpmn": model}).status_code == 200
    assert decided(client, "leave", **{name: 7}) == ["Approved"]
    assert decided(client, "leave", **{name: 3}) == ["Rejected"]


def test_an_engine_function_is_still_called_where_a_case_variable_has_its_name(client):
    """`days(3)` calls the engine's function, `days` alone is the case's variable."""
    due = models.two_tasks("leave").replace(
        '<bpmn:userTask id="T2" name="复核" camunda:candidateGroups="fgw"',
        '<bpmn:userTask id="T2" name="复核 ${days} 天" camunda:candidateGroups="fgw" camunda:dueDate="${days(days)}"')
    assert client.deploy(extra={"leave.bpmn": due}).status_code == 400       # days both ways: see below
    for due_date, days_later in (("${days(3)}", 3), ("${days(variable('days'))}", 7)):
        called = due.replace("${days(days)}", due_date)
        assert client.deploy(extra={"leave.bpmn": called}).status_code == 200
        case = client.start("leave")["id"]
        [task] = client.tasks(processInstanceId=case)
        assert client.complete(task["id"], typed(days=7)).status_code == 204
        [review] = client.tasks(processInstanceId=case)
        assert review["name"] == "复核 7 天", review
        shown = datetime.fromisoformat(review["due"])
        assert abs(shown - (clock.now() + timedelta(days=days_later))) < timedelta(hours=1), review["due"]


def test_a_name_used_both_as_variable_and_as_function_names_variable_as_the_way_out(client):
    r = client.deploy(extra={"leave.bpmn": approval("leave", yes="${days(days) > now()}", no="${days <= 5}")})
    assert r.status_code == 400, r.get_json()
    [problem] = r.get_json()["details"]["leave.bpmn"]["errors"]
    assert problem["mainElementId"] == "Flow_yes", problem
    assert "variable('days')" in problem["message"], problem


# --- JUEL's literals --------------------------------------------------------------------------

def test_juels_true_false_and_null_mean_python_true_false_and_none(client):
    """`${approved == true}` and `${comment == null}` were a NameError at every completion."""
    model = approval("leave", yes="${approved == true and comment == null}",
                     no="${approved == false or comment != null}")
    assert client.deploy(extra={"leave.bpmn": model}).status_code == 200
    assert decided(client, "leave", approved=True, comment=None) == ["Approved"]
    assert decided(client, "leave", approved=True, comment="请补正") == ["Rejected"]
    assert decided(client, "leave", approved=False, comment=None) == ["Rejected"]


def test_a_case_variable_named_null_is_read_as_the_variable(client):
    model = approval("leave", yes="${null == 'x'}", no="${null != 'x'}")
    assert client.deploy(extra={"leave.bpmn": model}).status_code == 200
    assert decided(client, "leave", null="x") == ["Approved"]
    assert decided(client, "leave", null="y") == ["Rejected"]
