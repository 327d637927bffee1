"""Small BPMN models for the security tests, written as Camunda Modeler writes them."""
from __future__ import annotations

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="D_{key}" targetNamespace="t">\n')


def application(key="application", starters='camunda:candidateStarterGroups="applicants,window"'):
    """申请 → 部门审查 (fgw) → either 办结, or 申请人补正 (the applicant corrects) and back."""
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" name="行政许可申请" isExecutable="true" {starters}>
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Task_review" />
    <bpmn:userTask id="Task_review" name="部门审查" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F2" sourceRef="Task_review" targetRef="G" />
    <bpmn:exclusiveGateway id="G" default="F_done" />
    <bpmn:sequenceFlow id="F_correct" sourceRef="G" targetRef="Task_correct">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">${{decision == "correction"}}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:userTask id="Task_correct" name="申请人补正" camunda:candidateGroups="applicants" />
    <bpmn:sequenceFlow id="F_back" sourceRef="Task_correct" targetRef="Task_review" />
    <bpmn:sequenceFlow id="F_done" sourceRef="G" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def one_task(key, task_attrs='camunda:candidateGroups="fgw"', process_attrs="", inner="", after=""):
    """start → one user task (with `inner` inside it) → end; `after` goes between the task and the end."""
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true" {process_attrs}>
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T" />
    <bpmn:userTask id="T" name="审查" {task_attrs}>{inner}</bpmn:userTask>
    {after or '<bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="E" />'}
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def two_tasks(key):
    """start → T (fgw) → T2 (fgw) → end: a case that runs on after its first completion."""
    return one_task(key, after="""<bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="T2" />
    <bpmn:userTask id="T2" name="复核" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F3" sourceRef="T2" targetRef="E" />""")


def gateway(key, condition):
    """start → T (fgw) → exclusive gateway with `condition` (else the default) → end."""
    return one_task(key, after=f"""<bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="G" />
    <bpmn:exclusiveGateway id="G" default="F4" />
    <bpmn:sequenceFlow id="F3" sourceRef="G" targetRef="E">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="F4" sourceRef="G" targetRef="E" />""")


def boundary_timer(key, time_date):
    """T (fgw) with an interrupting boundary timer whose timeDate is `time_date`."""
    return one_task(key, after=f"""<bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="E" />
    <bpmn:boundaryEvent id="Timer" attachedToRef="T">
      <bpmn:timerEventDefinition id="TD"><bpmn:timeDate xsi:type="bpmn:tFormalExpression">{time_date}</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="F_t" sourceRef="Timer" targetRef="E" />""")


def io_mapping(key, inputs=(), outputs=()):
    params = "".join(f'<camunda:inputParameter name="{n}">{v}</camunda:inputParameter>' for n, v in inputs)
    params += "".join(f'<camunda:outputParameter name="{n}">{v}</camunda:outputParameter>' for n, v in outputs)
    return one_task(key, inner=f"<bpmn:extensionElements><camunda:inputOutput>{params}</camunda:inputOutput>"
                               "</bpmn:extensionElements>")


def script_task(key, script):
    """start → script task → T (fgw) → end."""
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Script" />
    <bpmn:scriptTask id="Script" name="计算" scriptFormat="python"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="F2" sourceRef="Script" targetRef="T" />
    <bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F3" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def timer_then_gateway(key, condition):
    """start → intermediate timer (PT1H) → gateway with `condition` → T (fgw) or end."""
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Wait" />
    <bpmn:intermediateCatchEvent id="Wait" name="等待">
      <bpmn:timerEventDefinition id="TD"><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F2" sourceRef="Wait" targetRef="G" />
    <bpmn:exclusiveGateway id="G" default="F4" />
    <bpmn:sequenceFlow id="F3" sourceRef="G" targetRef="T">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="F4" sourceRef="G" targetRef="E" />
    <bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F5" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""
