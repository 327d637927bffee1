"""A designer's own bundle calling the library's department_review (as 水电气暖联合报装 does):
a department that items.json does not list is named by the engine's group name in its
tasks and its escalation, each review task says department and item, and the overdue
department's escalation (督办) does not hold the bundle once the department has decided."""
from __future__ import annotations

from tests.e2e.conftest import APPROVE, eventually
from tests.security.models import HEAD

MONDAY = "2025-11-03T10:00:00+08:00"
PLAN = ('${[{"dept": "szgl", "key": "utility", "name": "挖掘城市道路许可", "limit": "5wd", "tacitApproval": False}, '
        '{"dept": "zrzy", "key": "utility", "name": "市政管线工程规划许可", "limit": "5wd", "route": "deficiency", '
        '"supplementWorkdays": 10}]}')
BUNDLE = HEAD.format(key="utility_bundle") + f"""
  <bpmn:process id="utility_bundle" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Plan" />
    <bpmn:task id="Plan" name="确定审批部门">
      <bpmn:extensionElements><camunda:inputOutput>
        <camunda:outputParameter name="reviews">${{ {{}} }}</camunda:outputParameter>
        <camunda:outputParameter name="reviewPlan">{PLAN.replace('"', "&quot;")}</camunda:outputParameter>
      </camunda:inputOutput></bpmn:extensionElements>
    </bpmn:task>
    <bpmn:sequenceFlow id="F2" sourceRef="Plan" targetRef="Reviews" />
    <bpmn:callActivity id="Reviews" name="并联审批" calledElement="department_review">
      <bpmn:extensionElements><camunda:in variables="all" /><camunda:out variables="all" /></bpmn:extensionElements>
      <bpmn:multiInstanceLoopCharacteristics camunda:collection="reviewPlan" camunda:elementVariable="review" />
    </bpmn:callActivity>
    <bpmn:sequenceFlow id="F3" sourceRef="Reviews" targetRef="Issue" />
    <bpmn:userTask id="Issue" name="出件" camunda:candidateGroups="window" />
    <bpmn:sequenceFlow id="F4" sourceRef="Issue" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def names(gov, case, key) -> dict:
    return {t["candidateGroups"][0]: t["name"] for t in gov.tasks(case, key)}


def test_a_designer_s_department_is_named_by_its_group_and_its_escalation_does_not_hold_the_bundle(gov):
    admin = gov.admin
    assert admin.post("/engine-rest/group/create", json={"id": "szgl", "name": "市政设施管理处",
                                                         "type": "WORKFLOW"}).status_code == 204
    gov.at(MONDAY)
    assert admin.deploy(extra={"utility_bundle.bpmn": BUNDLE}).status_code == 200
    case = gov.start("utility_bundle", "SD-2025-1", applicantName="苏州某置业有限公司", projectName="某小区水电气暖报装")
    assert names(gov, case, "Task_review") == {"szgl": "部门审查：市政设施管理处「挖掘城市道路许可」",
                                               "zrzy": "部门审查：自然资源和规划局「市政管线工程规划许可」"}
    assert names(gov, case, "Task_supplement") == {"window": "补齐容缺材料（窗口收件）：自然资源和规划局「市政管线工程规划许可」"}

    gov.at("2025-11-11T00:00:01+08:00")                          # szgl's 5 working days ran out on Monday 10th
    assert eventually(lambda: gov.escalations("SD-2025-1"))
    [escalation] = gov.escalations("SD-2025-1")
    assert escalation["name"] == "超期督办：市政设施管理处「挖掘城市道路许可」逾期未办结（SD-2025-1）"
    assert gov.task_variable(escalation, "applicantName") == "苏州某置业有限公司"

    gov.complete(case, "Task_review", group="szgl", **APPROVE)     # zrzy's silence was tacit approval
    gov.complete(case, "Task_supplement", suppliedMaterials="管线综合图", suppliedOn="2025-11-11")
    assert gov.open_keys(case) == ["Issue"]                      # the escalation is still open, in its own case
    assert gov.escalations("SD-2025-1") == [escalation]
    # the contract (README, "Calling department_review"): what camunda:out variables="all" brings back
    back = set(gov.variables(case)) - {"applicantName", "projectName", "reviewPlan", "reviews"}
    assert back == {"decision", "opinion", "specialStep", "route", "correctionRounds", "specialStepRounds",
                    "tacitApproval", "suppliedMaterials", "suppliedOn"}
    assert "measure" not in back and "supervisionOpinion" not in back
