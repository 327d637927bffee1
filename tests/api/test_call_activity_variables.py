"""A call activity that declares camunda:in or camunda:out mappings passes variables as
Camunda 7 does: the called process gets only what its camunda:in mappings pass (none:
nothing), and its caller only what the camunda:out mappings bring back.  One that declares
neither passes everything both ways, as the engine did before it read them."""
from __future__ import annotations

import pytest

from tests.conftest import FIXTURES, typed

TASK = "/engine-rest/task"
CALLER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_caller" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="caller" isExecutable="true">
    <bpmn:startEvent id="Start_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:callActivity id="Call_child" calledElement="mapped_child">
      <bpmn:extensionElements>{mappings}</bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:callActivity>
    <bpmn:userTask id="After" name="After ${{b}}" camunda:candidateGroups="fgw">
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="End_1"><bpmn:incoming>F3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Call_child" />
    <bpmn:sequenceFlow id="F2" sourceRef="Call_child" targetRef="After" />
    <bpmn:sequenceFlow id="F3" sourceRef="After" targetRef="End_1" />
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture(params=["cached", "restored"])
def deploy(request, client, engine, monkeypatch):
    """Deploys the called process and a caller with the given mappings; each command finds
    the case in the workflow cache, or restores it from its stored state."""
    if request.param == "restored":
        monkeypatch.setattr(engine.workflows, "size", 0)

    def deploy(mappings: str):
        response = client.deploy(FIXTURES / "call_mapped_child.bpmn",
                                 extra={"caller.bpmn": CALLER.format(mappings=mappings)})
        assert response.status_code == 200, response.get_json()
    return deploy


def task_variables(client, task) -> dict:
    response = client.get(f"{TASK}/{task['id']}/variables")
    assert response.status_code == 200, response.get_json()
    return {name: typed_value["value"] for name, typed_value in response.get_json().items()}


def the_task(client, case) -> dict:
    [task] = client.tasks(processInstanceId=case["id"])
    return task


def test_the_called_process_gets_its_in_mappings_and_the_caller_its_out_mappings(client, deploy):
    deploy('<camunda:in source="a" target="x"/><camunda:in sourceExpression="${a + 1}" target="z"/>'
           '<camunda:in source="missing" target="m"/><camunda:out source="y" target="b"/>')
    case = client.start("caller", typed(a=41, secret="s"))
    child = the_task(client, case)
    assert task_variables(client, child) == {"x": 41, "z": 42, "m": None}
    assert client.complete(child["id"], typed(y=7, scratch="only the child's")).status_code == 204
    after = the_task(client, case)
    assert after["name"] == "After 7"
    assert task_variables(client, after) == {"a": 41, "secret": "s", "b": 7}


def test_without_mappings_the_called_process_gets_no_variables_and_returns_none(client, deploy):
    deploy('<camunda:in businessKey="#{execution.processBusinessKey}"/>')
    case = client.start("caller", typed(a=41, b="kept"), business_key="SZ-2025-0042")
    child = the_task(client, case)
    assert child["businessKey"] == "SZ-2025-0042"
    assert task_variables(client, child) == {}
    assert client.complete(child["id"], typed(b="the child's")).status_code == 204
    assert task_variables(client, the_task(client, case)) == {"a": 41, "b": "kept"}


def test_a_call_activity_declaring_no_mapping_passes_every_variable_both_ways_as_before(client, deploy):
    # what this engine did before it read camunda:in/out, so that cases already running on a
    # version without them go on as they started (Camunda 7 would pass nothing)
    deploy("")
    case = client.start("caller", typed(a=41))
    child = the_task(client, case)
    assert task_variables(client, child) == {"a": 41}
    assert client.complete(child["id"], typed(b=9)).status_code == 204
    after = the_task(client, case)
    assert after["name"] == "After 9" and task_variables(client, after) == {"a": 41, "b": 9}


def test_variables_all_passes_every_variable_both_ways(client, deploy):
    deploy('<camunda:in variables="all"/><camunda:in source="a" target="x"/><camunda:out variables="all"/>')
    case = client.start("caller", typed(a=41, secret="s"))
    child = the_task(client, case)
    assert task_variables(client, child) == {"a": 41, "secret": "s", "x": 41}
    assert client.complete(child["id"], typed(b=8)).status_code == 204
    after = the_task(client, case)
    assert after["name"] == "After 8"
    assert task_variables(client, after) == {"a": 41, "secret": "s", "x": 41, "b": 8}


@pytest.mark.parametrize("mapping, words", [
    ('<camunda:in source="a"/>', "needs a target"),
    ('<camunda:in source="a" sourceExpression="${a}" target="x"/>', "exactly one of source and sourceExpression"),
    ('<camunda:in variables="some"/>', "variables='some'"),
    ('<camunda:in source="a" target="x" local="true"/>', 'local="true" is not supported'),
    ('<camunda:in businessKey="${applicationNo}"/>', "businessKey '${applicationNo}' is not supported"),
    ('<camunda:out businessKey="#{execution.processBusinessKey}"/>', "is not supported"),
    ('<camunda:in sourceExpression="${a +}" target="x"/>', "sourceExpression '${a +}'"),
])
def test_a_mapping_the_engine_cannot_pass_is_refused_at_deploy_naming_it(client, mapping, words):
    response = client.deploy(FIXTURES / "call_mapped_child.bpmn",
                             extra={"caller.bpmn": CALLER.format(mappings=mapping)})
    assert response.status_code == 400
    message = response.get_json()["message"]
    assert "caller.bpmn" in message and "Call_child" in message and words in message, message
    assert "camunda:" + ("out" if "camunda:out" in mapping else "in") in message
    assert client.get("/engine-rest/process-definition/count").get_json()["count"] == 0
