"""A parallel review drawn in a loop: the departments review, the window checks, and a
case returned for correction (补正) goes back to the split for every department to
review again.  Each round the join waits for every department of that round, whichever
finished last the round before."""
from __future__ import annotations

import pytest

from tests.conftest import typed
from tests.security.models import HEAD

PI = "/engine-rest/process-instance"


def review_loop(gateway: str) -> str:
    """start → split → 市场监管 (scjg) and 消防 (xf) → join → 窗口审核 (window) → returned
    for correction: back to the split; else end.  `gateway`: parallelGateway or
    inclusiveGateway (the inclusive split takes both departments)."""
    both = '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${True}</bpmn:conditionExpression>'
    cond = both if gateway == "inclusiveGateway" else ""
    return HEAD.format(key="review_loop") + f"""
  <bpmn:process id="review_loop" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Split" />
    <bpmn:{gateway} id="Split" />
    <bpmn:sequenceFlow id="F2" sourceRef="Split" targetRef="Review_scjg">{cond}</bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="F3" sourceRef="Split" targetRef="Review_xf">{cond}</bpmn:sequenceFlow>
    <bpmn:userTask id="Review_scjg" name="市场监管审查" camunda:candidateGroups="scjg" />
    <bpmn:userTask id="Review_xf" name="消防审查" camunda:candidateGroups="xf" />
    <bpmn:sequenceFlow id="F4" sourceRef="Review_scjg" targetRef="Join" />
    <bpmn:sequenceFlow id="F5" sourceRef="Review_xf" targetRef="Join" />
    <bpmn:{gateway} id="Join" />
    <bpmn:sequenceFlow id="F6" sourceRef="Join" targetRef="Check" />
    <bpmn:userTask id="Check" name="窗口审核" camunda:candidateGroups="window" />
    <bpmn:sequenceFlow id="F7" sourceRef="Check" targetRef="Returned" />
    <bpmn:exclusiveGateway id="Returned" default="F9" />
    <bpmn:sequenceFlow id="F8" sourceRef="Returned" targetRef="Split">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${{correction}}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="F9" sourceRef="Returned" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def open_steps(client, case) -> list[str]:
    return sorted(task["taskDefinitionKey"] for task in client.tasks(processInstanceId=case["id"]))


def finish(client, case, step, **variables):
    [task] = [task for task in client.tasks(processInstanceId=case["id"]) if task["taskDefinitionKey"] == step]
    answer = client.complete(task["id"], typed(**variables))
    assert answer.status_code == 204, answer.get_json()


@pytest.mark.parametrize("gateway", ["parallelGateway", "inclusiveGateway"])
@pytest.mark.parametrize("first, last", [("Review_scjg", "Review_xf"), ("Review_xf", "Review_scjg")])
def test_a_case_returned_for_correction_waits_again_for_every_department(client, gateway, first, last):
    deployed = client.deploy(extra={"review_loop.bpmn": review_loop(gateway)})
    assert deployed.status_code == 200, deployed.get_json()
    case = client.start("review_loop", typed(correction=False))
    finish(client, case, first)
    finish(client, case, last)
    finish(client, case, "Check", correction=True)               # 补正: back to both departments
    assert open_steps(client, case) == ["Review_scjg", "Review_xf"]
    finish(client, case, last)                                    # the department that finished last before
    assert open_steps(client, case) == [first]                    # the join waits for the other one
    finish(client, case, first)
    finish(client, case, "Check", correction=False)
    assert client.get(f"{PI}/{case['id']}").status_code == 404    # ended
