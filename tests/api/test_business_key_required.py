"""A process whose department systems answer by the case's business key (the enterprise
opening's bank) says so with the process-level camunda:property businessKeyRequired: a
start without one is a 400 that names it, and nothing is created; a start that could
never give one (a timer, a signal) is refused at deploy."""
from __future__ import annotations

import pytest

from tests.conftest import typed

MESSAGE = "/engine-rest/message"
DEFINITION = "/engine-rest/process-definition/key/keyed_case"


def keyed_case(required: str = "true", extra_start: str = "") -> str:
    """keyed_case, started by request, and keyed_online, started by the message
    OnlineOpening: each accepted at the window."""
    properties = f"""<bpmn:extensionElements><camunda:properties>
      <camunda:property name="businessKeyRequired" value="{required}" />
    </camunda:properties></bpmn:extensionElements>"""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_keyed"
                  targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:message id="Msg_online" name="OnlineOpening" />
  <bpmn:signal id="Sig_batch" name="BatchOpening" />
  <bpmn:process id="keyed_case" isExecutable="true">
    {properties}
    <bpmn:startEvent id="Start_request" />
    {extra_start}
    <bpmn:userTask id="Task_accept" camunda:candidateGroups="window" />
    <bpmn:endEvent id="End_done" />
    <bpmn:sequenceFlow id="F1" sourceRef="Start_request" targetRef="Task_accept" />
    <bpmn:sequenceFlow id="F2" sourceRef="Task_accept" targetRef="End_done" />
  </bpmn:process>
  <bpmn:process id="keyed_online" isExecutable="true">
    {properties}
    <bpmn:startEvent id="Start_online"><bpmn:messageEventDefinition id="MD1" messageRef="Msg_online" /></bpmn:startEvent>
    <bpmn:userTask id="Task_accept_online" camunda:candidateGroups="window" />
    <bpmn:endEvent id="End_online" />
    <bpmn:sequenceFlow id="G1" sourceRef="Start_online" targetRef="Task_accept_online" />
    <bpmn:sequenceFlow id="G2" sourceRef="Task_accept_online" targetRef="End_online" />
  </bpmn:process>
</bpmn:definitions>"""


def cases(client) -> list:
    return client.get("/engine-rest/history/process-instance").get_json()


@pytest.mark.parametrize("path", ["start", "submit-form"])
@pytest.mark.parametrize("key", [None, "", "   "])
def test_a_start_without_the_business_key_the_process_needs_is_a_400_and_creates_nothing(client, path, key):
    assert client.deploy(extra={"keyed.bpmn": keyed_case()}).status_code == 200
    body = {"variables": typed(applicantName="苏州星湖智能科技有限公司")}
    if key is not None:
        body["businessKey"] = key
    r = client.post(f"{DEFINITION}/{path}", json=body)
    assert r.status_code == 400, r.get_json()
    message = r.get_json()["message"]
    assert "process 'keyed_case' needs a business key" in message and "businessKeyRequired" in message
    assert '"businessKey"' in message
    assert cases(client) == [] and client.tasks() == []
    r = client.post(f"{DEFINITION}/{path}", json={**body, "businessKey": "QY-2026-0001"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["businessKey"] == "QY-2026-0001"


def test_a_message_start_without_a_business_key_is_a_400_and_with_one_starts_the_case(client):
    assert client.deploy(extra={"keyed.bpmn": keyed_case()}).status_code == 200
    r = client.post(MESSAGE, json={"messageName": "OnlineOpening"})
    assert r.status_code == 400, r.get_json()
    assert "needs a business key" in r.get_json()["message"]
    assert cases(client) == []
    r = client.post(MESSAGE, json={"messageName": "OnlineOpening", "businessKey": "QY-2026-0002",
                                   "resultEnabled": True})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()[0]["processInstance"]["businessKey"] == "QY-2026-0002"


def test_a_process_without_the_property_or_with_false_starts_without_a_business_key(client):
    assert client.deploy(extra={"keyed.bpmn": keyed_case("false")}).status_code == 200
    r = client.post(f"{DEFINITION}/start", json={})
    assert r.status_code == 200, r.get_json()


@pytest.mark.parametrize("value", ["yes", "", "1"])
def test_a_value_other_than_true_or_false_is_refused_at_deploy(client, value):
    r = client.deploy(extra={"keyed.bpmn": keyed_case(value)})
    assert r.status_code == 400, r.get_json()
    problems = r.get_json()["details"]["keyed.bpmn"]["errors"]
    assert [(p["mainElementId"], p["message"]) for p in problems] == [
        (key, f"camunda:property businessKeyRequired must be true or false, not {value!r}")
        for key in ("keyed_case", "keyed_online")]


@pytest.mark.parametrize("start, kind", [
    ('<bpmn:startEvent id="Start_daily"><bpmn:timerEventDefinition id="T1">'
     '<bpmn:timeCycle>R/2026-01-01T09:00:00+08:00/P1D</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent>',
     "timer"),
    ('<bpmn:startEvent id="Start_daily"><bpmn:signalEventDefinition id="S1" signalRef="Sig_batch" />'
     '</bpmn:startEvent>', "signal")])
def test_a_process_that_needs_a_business_key_may_not_start_on_a_timer_or_a_signal(client, start, kind):
    r = client.deploy(extra={"keyed.bpmn": keyed_case(extra_start=start)})
    assert r.status_code == 400, r.get_json()
    [problem] = r.get_json()["details"]["keyed.bpmn"]["errors"]
    assert problem["mainElementId"] == "Start_daily"
    assert problem["message"].startswith(f"start event 'Start_daily' starts cases without a business key ({kind} start)")
    assert client.get("/engine-rest/process-definition").get_json() == []
