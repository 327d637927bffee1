"""Rule steps: a none task (bpmn:task) applies camunda:inputOutput as Camunda 7 does, so a
model can set variables without script tasks; legalClock.outcome names how a clock ended."""
from __future__ import annotations

from SpiffWorkflow.bpmn import BpmnWorkflow

from engine.script_engine import ApprovalScriptEngine
from engine.workflows import parse_resources, run_until_waiting
from tests.conftest import typed

RULE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="D" targetNamespace="t">
  <bpmn:process id="rule" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:task id="Plan" name="确定审查部门">
      <bpmn:extensionElements>
        <camunda:inputOutput>
          <camunda:inputParameter name="matched">${[d for r in rules if risk in r["risk"] for d in r["departments"]]}</camunda:inputParameter>
          <camunda:outputParameter name="departments">${[d for i, d in enumerate(matched) if d not in matched[:i]]}</camunda:outputParameter>
          <camunda:outputParameter name="stage">planning</camunda:outputParameter>
        </camunda:inputOutput>
      </bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:task>
    <bpmn:endEvent id="E"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Plan" />
    <bpmn:sequenceFlow id="F2" sourceRef="Plan" targetRef="E" />
  </bpmn:process>
</bpmn:definitions>"""

RULES = [{"risk": ["high", "low"], "departments": ["zrzy", "fgw"]}, {"risk": ["high"], "departments": ["fgw", "xf"]}]


def test_a_none_task_with_output_parameters_is_a_rule_step():
    parser = parse_resources([("rule.bpmn", RULE.encode())])
    workflow = BpmnWorkflow(parser.get_spec("rule"), {}, script_engine=ApprovalScriptEngine())
    workflow.task_tree.data.update(rules=RULES, risk="high")
    run_until_waiting(workflow)
    assert workflow.completed
    data = workflow.last_task.data
    assert data["departments"] == ["zrzy", "fgw", "xf"] and data["stage"] == "planning"
    assert "matched" not in data                     # an input parameter is local to the step
    assert data["risk"] == "high"                    # everything else passes through


WITHDRAW = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="D" targetNamespace="t">
  <bpmn:process id="withdraw" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Review" camunda:candidateGroups="fgw">
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="legalClock.start" value="review" />
        <camunda:property name="legalClock.limit" value="3wd" />
      </camunda:properties></bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:task id="Withdraw" name="撤回受理">
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="legalClock.stop" value="review" />
        <camunda:property name="legalClock.outcome" value="withdrawn" />
      </camunda:properties></bpmn:extensionElements>
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
    </bpmn:task>
    <bpmn:endEvent id="E"><bpmn:incoming>F3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Review" />
    <bpmn:sequenceFlow id="F2" sourceRef="Review" targetRef="Withdraw" />
    <bpmn:sequenceFlow id="F3" sourceRef="Withdraw" targetRef="E" />
  </bpmn:process>
</bpmn:definitions>"""


def test_a_withdrawal_stops_the_clock_without_counting_a_decision(client):
    assert client.deploy(extra={"withdraw.bpmn": WITHDRAW}).status_code == 200
    instance = client.start("withdraw")["id"]
    [task] = client.tasks(processInstanceId=instance)
    assert client.complete(task["id"], typed(note="x")).status_code == 204
    [clock] = client.get(f"/api/v1/process-instance/{instance}/legal-clocks").get_json()
    assert clock["outcome"] == "withdrawn" and clock["stopped"] is not None
    totals = client.get("/api/v1/statistics").get_json()["totals"]
    assert totals["decided"] == 0 and totals["open"] == 0
