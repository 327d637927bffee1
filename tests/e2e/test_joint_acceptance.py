"""竣工联合验收 (joint_acceptance) end to end: one intake, one-stop or two-phase as the builder
chooses, participants from risk level and project class, each unit work accepted on its own and
pushed to real-estate registration."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import APPROVE, eventually

pytestmark = pytest.mark.usefixtures("state_storage")      # tests/e2e/conftest.py

MONDAY = "2025-12-01T10:00:00+08:00"
PHASE1 = {"zrzy", "xf", "rf"}


def apply(gov, business_key, project_class="social", risk_grade="general"):
    gov.at(MONDAY)
    return gov.start("joint_acceptance", business_key, projectName="苏州某产业园研发楼",
                     projectCode="2511-320500-04-01-123456", applicantName="苏州某某科技有限公司",
                     applicantPhone="+8613800138000", projectClass=project_class, riskGrade=risk_grade)


def accept(gov, case, mode, units):
    gov.complete(case, "Task_intake", intakeDecision="accept", acceptanceMode=mode, unitWorkList="\n".join(units),
                 intakeOpinion="竣工资料齐全，受理联合验收")


def inspect(gov, task):
    gov.complete_task(task, inspectionMethod="video", inspectedOn="2025-12-03",
                      inspectionFindings="远程视频查验，符合设计和规范要求")


def reviewers(gov, case, unit=None):
    tasks = gov.tasks(case, "Task_review")
    if unit is not None:
        tasks = [t for t in tasks if gov.task_variable(t, "review")["key"].startswith(unit + ":")]
    return sorted(t["candidateGroups"][0] for t in tasks), tasks


def opinion(gov, task, result="qualified", number="联验〔2025〕1号"):
    gov.complete_task(task, acceptanceResult=result, opinionNo=number,
                      jointOpinionText="联合验收合格" if result == "qualified" else "消防设施未完成，限期整改")


def test_two_phase_acceptance_checks_planning_fire_and_civil_defence_before_the_utilities(gov):
    bk = "YS-2025-0001"
    case = apply(gov, bk)
    accept(gov, case, "two_phase", ["1#研发楼"])
    [first] = gov.tasks(case, "Task_inspect_phase1")
    assert first["candidateGroups"] == ["zjj"]                   # the lead department (items.json)
    inspect(gov, first)
    phase1, _ = reviewers(gov, case)
    assert phase1 == ["xf", "zrzy"]                              # 人防 joins only for major/large risk
    gov.complete_all(case, "Task_review", **APPROVE)
    inspect(gov, gov.tasks(case, "Task_inspect_phase2")[0])
    phase2, _ = reviewers(gov, case)
    assert phase2 == ["da", "gd", "gr", "gs", "rq", "tx"]        # water, power, gas, heat, telecoms, archives
    gov.complete_all(case, "Task_review", **APPROVE)
    opinion(gov, gov.tasks(case, "Task_opinion")[0])
    push = gov.answer("realestate.push", bk, realEstateReceiptNo="BDC-1")
    sent = push["variables"]["jointAcceptanceOpinion"]["value"]
    assert "联验〔2025〕1号" in sent and "two_phase" in sent
    gov.answer("notify.applicant", bk, notificationId="SMS-1")
    assert gov.state(case) == "COMPLETED"
    values = gov.variables(case)
    assert set(values["reviews"]) == {"U1:phase1", "U1:phase2"}
    assert values["acceptanceOutcome"]["result"] == "qualified"
    [clock] = gov.clocks(case, "acceptance")
    assert clock["limit"] == {"value": 12.0, "unit": "workdays"} and clock["outcome"] == "decided"


def test_one_stop_acceptance_takes_every_participant_at_once(gov):
    bk = "YS-2025-0002"
    case = apply(gov, bk, project_class="government", risk_grade="major")
    accept(gov, case, "one_stop", ["综合楼"])
    inspect(gov, gov.tasks(case, "Task_inspect_all")[0])
    everyone, _ = reviewers(gov, case)
    assert everyone == ["da", "gd", "gr", "gs", "rf", "rq", "tx", "xf", "zrzy"]
    gov.complete_all(case, "Task_review", **APPROVE)
    opinion(gov, gov.tasks(case, "Task_opinion")[0])
    gov.answer("realestate.push", bk, realEstateReceiptNo="BDC-2")
    gov.answer("notify.applicant", bk, notificationId="SMS-2")
    assert gov.state(case) == "COMPLETED"
    assert set(gov.variables(case)["reviews"]) == {"U1:all"}


def test_a_low_risk_project_needs_only_planning_utilities_and_archives(gov):
    case = apply(gov, "YS-2025-0003", project_class="low_risk", risk_grade="low")
    accept(gov, case, "one_stop", ["门卫室"])
    inspect(gov, gov.tasks(case, "Task_inspect_all")[0])
    assert reviewers(gov, case)[0] == ["da", "gd", "gs", "zrzy"]
    [clock] = gov.clocks(case, "acceptance")
    assert clock["limit"] == {"value": 5.0, "unit": "workdays"}


def test_unit_works_are_accepted_separately_and_one_may_be_used_before_the_other(gov):
    bk = "YS-2025-0004"
    case = apply(gov, bk, project_class="small_industrial", risk_grade="low")
    accept(gov, case, "one_stop", ["1#厂房", "2#仓库"])
    inspections = {gov.task_variable(t, "unit")["id"]: t for t in gov.tasks(case, "Task_inspect_all")}
    assert sorted(inspections) == ["U1", "U2"]
    inspect(gov, inspections["U1"])
    departments, tasks = reviewers(gov, case, unit="U1")
    assert departments == ["da", "gd", "gs", "zrzy"]
    for task in tasks:
        gov.complete_task(task, **APPROVE)
    [u1_opinion] = gov.tasks(case, "Task_opinion")
    opinion(gov, u1_opinion)
    gov.answer("realestate.push", bk, realEstateReceiptNo="BDC-U1")

    # the factory is accepted and pushed to registration while the warehouse is not even inspected
    assert gov.ended_at(case, "End_unit_accepted") == 1 and gov.state(case) == "ACTIVE"
    assert gov.open_keys(case) == ["Task_inspect_all"]

    inspect(gov, gov.tasks(case, "Task_inspect_all")[0])
    gov.complete_all(case, "Task_review", **APPROVE)
    opinion(gov, gov.tasks(case, "Task_opinion")[0], result="unqualified", number="联验〔2025〕2号")
    notice = gov.answer("notify.applicant", bk, notificationId="SMS-4")
    assert "1#厂房合格" in notice["variables"]["notifyText"]["value"]
    assert "2#仓库不合格" in notice["variables"]["notifyText"]["value"]
    assert gov.ended_at(case, "End_unit_unqualified") == 1
    outcome = gov.variables(case)["acceptanceOutcome"]
    assert outcome["result"] == "unqualified"
    assert {u: r["result"] for u, r in outcome["units"].items()} == {"U1": "qualified", "U2": "unqualified"}


def test_a_silent_participant_is_deemed_to_accept_but_fire_acceptance_is_escalated(gov):
    bk = "YS-2025-0005"
    case = apply(gov, bk, project_class="social", risk_grade="general")
    accept(gov, case, "two_phase", ["1#研发楼"])
    inspect(gov, gov.tasks(case, "Task_inspect_phase1")[0])     # 12-01 Monday: planning and fire for 5 WD
    gov.at("2025-12-09T00:00:01+08:00")
    assert eventually(lambda: gov.escalations(bk))
    assert reviewers(gov, case)[0] == ["xf"]                    # 消防验收 is never tacit; 规划核实 was
    [planning] = [c for c in gov.clocks(case, "review") if c["department"] == "zrzy"]
    assert planning["outcome"] == "tacit_approval"
