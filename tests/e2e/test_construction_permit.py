"""工程建设项目并联审批 (construction_permit) end to end: four stages, parallel department
reviews over a department list computed from project class and risk grade, tacit approval,
correction rounds that stop the clock, 容缺受理 and 告知承诺."""
from __future__ import annotations

import pytest

from tests.conftest import typed
from tests.e2e.conftest import APPROVE, eventually, intake, issue, project

pytestmark = pytest.mark.usefixtures("state_storage")      # tests/e2e/conftest.py

MONDAY = "2025-11-03T10:00:00+08:00"


def open_case(gov, business_key, **application):
    gov.at(MONDAY)
    return gov.start("construction_permit", business_key, **project(**application))


def running_activities(gov, case) -> set:
    """The ids of every activity running in the case (its activity-instance tree)."""
    found, stack = set(), [gov.admin.get(f"/engine-rest/process-instance/{case}/activity-instances").get_json()]
    while stack:
        node = stack.pop()
        found.add(node["activityId"])
        stack.extend(node.get("childActivityInstances", []))
    return found


def departments_reviewing(gov, case):
    return sorted(t["candidateGroups"][0] for t in gov.tasks(case, "Task_review"))


def accept_joint_acceptance(gov, case, business_key, units="1#研发楼"):
    gov.complete(case, "Task_intake", intakeDecision="accept", acceptanceMode="one_stop", unitWorkList=units,
                 intakeOpinion="资料齐全，受理联合验收")
    gov.complete_all(case, "Task_inspect_all", inspectionMethod="onsite", inspectedOn="2025-12-01",
                     inspectionFindings="现场查验符合要求")
    gov.complete_all(case, "Task_review", **APPROVE)
    gov.complete_all(case, "Task_opinion", acceptanceResult="qualified", opinionNo="联验〔2025〕1号",
                     jointOpinionText="联合验收合格")
    for _ in units.splitlines():
        gov.answer("realestate.push", business_key, realEstateReceiptNo="BDC-2025-0001")
    gov.answer("notify.applicant", business_key, notificationId="SMS-JA")


def test_four_stages_run_with_engineering_and_construction_permits_in_parallel_once_land_is_signed(gov):
    case = open_case(gov, "GC-2025-0001")
    gov.complete(case, "Task_intake_planning", **intake())
    # social investment, general risk: planning and ecology review in parallel (items.json routing)
    assert departments_reviewing(gov, case) == ["sthj", "zrzy"]
    gov.complete_all(case, "Task_review", **APPROVE)
    gov.complete(case, "Task_issue_planning", **issue("地字第320500202500001号", land_contract_signed="yes"))

    # the land contract is signed: both stage intakes are open at once (拿地即开工)
    assert gov.open_keys(case) == ["Task_intake_construction", "Task_intake_engineering"]
    gov.complete(case, "Task_intake_engineering", **intake())
    gov.complete(case, "Task_intake_construction", **intake())
    assert departments_reviewing(gov, case) == ["swj", "xf", "zjj", "zrzy"]
    gov.complete(case, "Task_review", group="zjj", **APPROVE)
    gov.complete(case, "Task_issue_construction", **issue("施字第320500202500001号"))
    assert departments_reviewing(gov, case) == ["swj", "xf", "zrzy"]     # construction permit first
    gov.complete_all(case, "Task_review", **APPROVE)
    gov.complete(case, "Task_issue_engineering", **issue("建字第320500202500001号"))

    # stage 4 calls joint_acceptance
    assert gov.open_keys(case) == ["Task_intake"]
    accept_joint_acceptance(gov, case, "GC-2025-0001")
    gov.complete(case, "Task_window_issue", resultNote="四阶段审批结果及联合验收意见书统一出件")
    notice = gov.answer("notify.applicant", "GC-2025-0001", notificationId="SMS-1")
    assert "已办结" in notice["variables"]["notifyText"]["value"]
    assert gov.state(case) == "COMPLETED"

    values = gov.variables(case)
    assert values["caseOutcome"]["result"] == "approved"
    assert {stage: p["permitNo"] for stage, p in values["caseOutcome"]["permits"].items()} == {
        "planning": "地字第320500202500001号", "engineering": "建字第320500202500001号",
        "construction": "施字第320500202500001号"}
    assert set(values["reviews"]) == {"planning", "engineering", "construction", "U1:all"}
    assert all(r["decision"] == "approve" and not r["tacit"] for stage in values["reviews"].values()
               for r in stage.values())
    clocks = gov.clocks(case)
    assert {c["stage"] for c in clocks} >= {"case", "planning", "engineering", "construction", "acceptance", "review"}
    assert all(c["outcome"] == "decided" and c["status"] == "green" for c in clocks)
    [whole] = gov.clocks(case, "case")
    assert whole["limit"] == {"value": 40.0, "unit": "workdays"} and whole["kind"] == "promised"


def test_construction_permit_waits_for_the_engineering_permit_while_the_land_contract_is_unsigned(gov):
    case = open_case(gov, "GC-2025-0002", risk_grade="low")
    gov.complete(case, "Task_intake_planning", **intake())
    gov.complete_all(case, "Task_review", **APPROVE)
    gov.complete(case, "Task_issue_planning", **issue("地字第2号", land_contract_signed="no"))
    assert gov.open_keys(case) == ["Task_intake_engineering"]
    gov.complete(case, "Task_intake_engineering", **intake())
    gov.complete_all(case, "Task_review", **APPROVE)
    assert gov.open_keys(case) == ["Task_issue_engineering"]
    gov.complete(case, "Task_issue_engineering", **issue("建字第2号"))
    assert gov.open_keys(case) == ["Task_intake_construction"]     # the signal 工程建设许可已核发


def test_a_silent_department_is_deemed_to_approve_at_its_legal_deadline_and_answers_for_it(gov):
    case = open_case(gov, "GC-2025-0003", project_class="government", risk_grade="low")
    gov.complete(case, "Task_intake_planning", **intake())
    assert departments_reviewing(gov, case) == ["fgw", "zrzy"]
    [fgw] = gov.tasks(case, "Task_review", group="fgw")
    assert fgw["due"].startswith("2025-11-10T23:59:59")        # 5 working days, the day of acceptance not counted
    gov.complete(case, "Task_review", group="zrzy", **APPROVE)

    gov.at("2025-11-10T16:00:00+08:00")                         # past 80 %: the yellow card (催办)
    stats = lambda: gov.admin.get("/api/v1/statistics", query_string={                       # noqa: E731
        "processDefinitionKey": "construction_permit", "department": "fgw"}).get_json()["totals"]
    assert eventually(lambda: stats()["warnings"] == 1)
    assert gov.tasks(case, "Task_review", group="fgw")            # still the department's to decide

    gov.at("2025-11-11T00:00:01+08:00")
    assert eventually(lambda: gov.open_keys(case) == ["Task_issue_planning"])
    [silent] = [c for c in gov.clocks(case, "review") if c["department"] == "fgw"]
    assert silent["outcome"] == "tacit_approval" and silent["status"] == "red"
    fgw_result = gov.variables(case)["reviews"]["planning"]["fgw"]
    assert fgw_result["decision"] == "approve" and fgw_result["tacit"] is True
    assert fgw_result["tacitApproval"]["department"] == "fgw"
    assert gov.ended_at(case, "Task_record_tacit") == 1
    totals = stats()
    assert totals["tacitApprovals"] == 1 and totals["tacitApprovalRate"] == 1.0


def test_a_correction_round_stops_the_department_clock_while_the_applicant_corrects(gov):
    case = open_case(gov, "GC-2025-0004", risk_grade="low")
    gov.complete(case, "Task_intake_planning", **intake())
    assert departments_reviewing(gov, case) == ["zrzy"]
    [review] = gov.clocks(case, "review")
    assert review["deadline"] == "2025-11-12T23:59:59+08:00"    # 7 working days

    gov.at("2025-11-04T10:00:00+08:00")
    gov.complete(case, "Task_review", group="zrzy", decision="correction", opinion="规划条件图缺少坐标",
                 correctionItems="补充用地红线坐标")
    [review] = gov.clocks(case, "review")
    assert review["paused"] is True and review["deadline"] is None
    assert gov.open_keys(case) == ["Task_correct"]

    gov.at("2025-11-06T10:00:00+08:00")                          # corrected two working days later
    gov.complete(case, "Task_correct", group="window", correctedMaterials="用地红线坐标图", correctedOn="2025-11-06")
    [review] = gov.clocks(case, "review")
    assert review["paused"] is False and review["deadline"] == "2025-11-14T23:59:59+08:00"
    assert review["pauses"][0]["reason"] == "申请人补正（窗口收件）"
    [task] = gov.tasks(case, "Task_review")
    assert task["due"].startswith("2025-11-14T23:59:59")

    gov.at("2025-11-13T10:00:00+08:00")                          # past the first deadline: not tacit yet
    gov.complete(case, "Task_review", group="zrzy", **APPROVE)
    result = gov.variables(case)["reviews"]["planning"]["zrzy"]
    assert result["decision"] == "approve" and result["correctionRounds"] == 1 and result["tacit"] is False
    [review] = gov.clocks(case, "review")
    assert review["outcome"] == "decided" and review["status"] != "red"


def test_deficient_materials_not_supplied_in_time_withdraw_the_acceptance(gov):
    case = open_case(gov, "GC-2025-0005", risk_grade="low")
    gov.complete(case, "Task_intake_planning", **intake(mode="deficiency"))
    assert gov.open_keys(case) == ["Task_review", "Task_supplement"]
    assert gov.variables(case)["reviewPlan_planning"][0]["route"] == "deficiency"

    gov.at("2025-11-10T23:00:00+08:00")                          # the 5th working day: still in time
    assert gov.state(case) == "ACTIVE" and gov.tasks(case, "Task_supplement")
    gov.at("2025-11-11T00:00:01+08:00")
    assert eventually(lambda: gov.waiting_topics("GC-2025-0005") == ["notify.applicant"])
    assert gov.open_keys(case) == []                             # the review was withdrawn with it
    assert gov.ended_at(case, "Task_withdraw") == 1
    outcome = gov.variables(case)["caseOutcome"]
    assert outcome == {"result": "withdrawn", "stage": "planning", "departments": ["zrzy"]}
    # the department's review, the stage and the whole case ended without a decision
    assert {c["stage"]: c["outcome"] for c in gov.clocks(case)} == {
        "review": "withdrawn", "planning": "withdrawn", "case": "withdrawn"}
    notice = gov.answer("notify.applicant", "GC-2025-0005", notificationId="SMS-5")
    assert "撤回" in notice["variables"]["notifyText"]["value"]
    assert gov.state(case) == "COMPLETED"
    totals = gov.admin.get("/api/v1/statistics", query_string={"processDefinitionKey": "construction_permit"}
                           ).get_json()["totals"]
    assert totals["decided"] == 0 and totals["open"] == 0


def test_a_department_that_decided_keeps_its_decision_when_the_lapsed_supplement_withdraws_the_case(gov):
    case = open_case(gov, "GC-2025-0014", risk_grade="low")
    gov.complete(case, "Task_intake_planning", **intake(mode="deficiency"))
    gov.at("2025-11-04T10:00:00+08:00")
    gov.complete(case, "Task_review", group="zrzy", **APPROVE)
    gov.at("2025-11-11T00:00:01+08:00")                          # the materials never came
    assert eventually(lambda: gov.waiting_topics("GC-2025-0014") == ["notify.applicant"])
    assert gov.variables(case)["caseOutcome"]["result"] == "withdrawn"
    clocks = {c["stage"]: c for c in gov.clocks(case)}
    assert clocks["review"]["outcome"] == "decided" and clocks["review"]["stopped"][:16] == "2025-11-04T10:00"
    assert clocks["planning"]["outcome"] == "withdrawn" and clocks["case"]["outcome"] == "withdrawn"


def test_deficient_materials_supplied_in_time_let_the_stage_go_on(gov):
    case = open_case(gov, "GC-2025-0006", risk_grade="low")
    gov.complete(case, "Task_intake_planning", **intake(mode="deficiency"))
    gov.complete(case, "Task_review", group="zrzy", **APPROVE)
    assert gov.open_keys(case) == ["Task_supplement"]            # approval waits for the materials
    gov.complete(case, "Task_supplement", suppliedMaterials="节能评估报告", suppliedOn="2025-11-05")
    assert gov.open_keys(case) == ["Task_issue_planning"]


def test_under_deficiency_acceptance_the_department_answers_for_its_review_not_for_the_applicants_supplement(gov):
    case = open_case(gov, "GC-2025-0013", risk_grade="low")
    gov.complete(case, "Task_intake_planning", **intake(mode="deficiency"))
    gov.at("2025-11-04T10:00:00+08:00")                          # zrzy decides on its first working day
    gov.complete(case, "Task_review", group="zrzy", **APPROVE)
    [review] = gov.clocks(case, "review")
    assert review["outcome"] == "decided" and review["stopped"][:16] == "2025-11-04T10:00"

    gov.at("2025-11-10T16:00:00+08:00")                          # the applicant supplies on the last day
    gov.complete(case, "Task_supplement", suppliedMaterials="节能评估报告", suppliedOn="2025-11-10")
    assert gov.open_keys(case) == ["Task_issue_planning"]
    [review] = gov.clocks(case, "review")                        # the waiting was the applicant's time
    assert review["stopped"][:16] == "2025-11-04T10:00" and review["status"] == "green"


def test_a_breached_commitment_revokes_the_permit_and_ends_the_case(gov):
    case = open_case(gov, "GC-2025-0007", risk_grade="low")
    gov.complete(case, "Task_intake_planning", **intake(commitment="yes"))
    assert gov.open_keys(case) == ["Task_commitment"]            # approval on the applicant's commitment
    gov.complete(case, "Task_commitment", group="zrzy", commitmentLetterNo="CN-2025-0007", decision="approve",
                 opinion="申请人书面承诺符合条件，当场准予")
    gov.complete(case, "Task_issue_planning", **issue("地字第7号"))

    # verification runs beside the next stage, with its own deadline
    assert gov.open_keys(case) == ["Task_intake_engineering", "Task_verify"]
    [verification] = gov.clocks(case, "verification")
    assert verification["department"] == "zrzy" and verification["limit"] == {"value": 20.0, "unit": "workdays"}
    gov.complete(case, "Task_intake_engineering", **intake())
    assert departments_reviewing(gov, case) == ["swj", "zrzy"]

    gov.complete(case, "Task_verify", group="zrzy", result="breach", findings="实际用地超出承诺红线", method="onsite")
    gov.complete(case, "Task_revoke", group="zrzy", revocationNo="撤字〔2025〕7号",
                 revocationReason="违反告知承诺，依法撤销", creditRecorded=True)
    assert eventually(lambda: gov.waiting_topics("GC-2025-0007") == ["notify.applicant"])
    assert gov.open_keys(case) == []                             # the engineering stage ended with it
    values = gov.variables(case)
    assert values["caseOutcome"] == {"result": "revoked", "stage": "planning", "departments": ["zrzy"]}
    assert values["verifications"]["planning"]["zrzy"]["revoked"] is True
    [whole] = gov.clocks(case, "case")
    assert whole["outcome"] == "revoked"                         # not a case decided in time
    # the engineering stage and its reviews, cut off by the revocation, do not run on for good
    cut_off = [(c["stage"], c["department"], c["outcome"]) for c in gov.clocks(case) if c["outcome"] == "cancelled"]
    assert sorted(cut_off) == [("engineering", "zrzy", "cancelled"), ("review", "swj", "cancelled"),
                               ("review", "zrzy", "cancelled")]
    assert [c for c in gov.clocks(case) if c["stopped"] is None] == []
    gov.answer("notify.applicant", "GC-2025-0007", notificationId="SMS-7")
    assert gov.state(case) == "COMPLETED"


def test_a_kept_commitment_is_verified_without_holding_up_the_stages(gov):
    case = open_case(gov, "GC-2025-0008", risk_grade="low")
    gov.complete(case, "Task_intake_planning", **intake(commitment="yes"))
    gov.complete(case, "Task_commitment", group="zrzy", commitmentLetterNo="CN-2025-0008", decision="approve",
                 opinion="当场准予")
    gov.complete(case, "Task_issue_planning", **issue("地字第8号"))
    gov.complete(case, "Task_verify", group="zrzy", result="compliant", findings="已按承诺履行", method="document")
    assert gov.open_keys(case) == ["Task_intake_engineering"]
    assert gov.ended_at(case, "End_compliant") == 1 and gov.ended_at(case, "Task_revoke") == 0
    [verification] = gov.clocks(case, "verification")
    assert verification["outcome"] == "decided" and verification["status"] == "green"


def test_a_verification_past_its_limit_is_escalated_naming_department_item_and_case_with_a_due_date(gov):
    case = open_case(gov, "GC-2025-0013", risk_grade="low")
    gov.complete(case, "Task_intake_planning", **intake(commitment="yes"))
    gov.complete(case, "Task_commitment", group="zrzy", commitmentLetterNo="CN-2025-0013", decision="approve",
                 opinion="当场准予")
    gov.complete(case, "Task_issue_planning", **issue("地字第13号"))
    [verification] = gov.clocks(case, "verification")
    assert verification["deadline"] == "2025-12-01T23:59:59+08:00"  # 20 working days
    gov.at("2025-12-02T00:00:01+08:00")                            # Tuesday
    assert eventually(lambda: gov.tasks(case, "Task_verify_escalate"))
    [escalation] = gov.tasks(case, "Task_verify_escalate")
    assert escalation["name"] == ("核查超期督办：自然资源和规划局「建设用地规划许可证核发」"
                                  "告知承诺事后核查逾期未办结（GC-2025-0013）")
    assert escalation["due"] == "2025-12-04T23:59:59.000+0800"
    assert gov.tasks(case, "Task_verify", group="zrzy")          # the verification goes on


def test_a_case_past_its_whole_process_limit_is_escalated_naming_project_and_case_with_a_due_date(gov):
    case = open_case(gov, "GC-2025-0014")                        # social: 40 working days in all
    [whole] = gov.clocks(case, "case")
    assert whole["deadline"] == "2025-12-29T23:59:59+08:00"
    gov.at("2025-12-30T00:00:01+08:00")                          # Tuesday
    assert eventually(lambda: gov.tasks(case, "Task_case_supervise"))
    [supervision] = gov.tasks(case, "Task_case_supervise")
    assert supervision["name"] == "全流程超时督办：「苏州某产业园研发楼」超过全流程承诺时限（GC-2025-0014）"
    # Wednesday 31 December, then 1-3 January off: Sunday 4 January is an adjusted working day
    assert supervision["due"] == "2026-01-04T23:59:59.000+0800"


def test_an_item_without_tacit_approval_is_escalated_to_the_supervisors_at_its_deadline(gov):
    case = open_case(gov, "GC-2025-0009")                        # social, general risk: 环评 by sthj
    gov.complete(case, "Task_intake_planning", **intake())
    gov.complete(case, "Task_review", group="zrzy", **APPROVE)
    [sthj] = [c for c in gov.clocks(case, "review") if c["department"] == "sthj"]
    assert sthj["deadline"] == "2025-11-17T23:59:59+08:00"      # 10 working days
    gov.at("2025-11-18T00:00:01+08:00")
    assert eventually(lambda: gov.escalations("GC-2025-0009"))
    assert gov.tasks(case, "Task_review", group="sthj")          # 环评 is never deemed approved
    # the supervisors' list tells which department and case, and when the escalation is due:
    # items.json supervision.dueWorkdays (2) working days, the day it opened not counted
    [escalation] = gov.escalations("GC-2025-0009")
    assert escalation["processInstanceId"] != case               # a case of its own (督办件)
    assert escalation["name"] == "超期督办：生态环境局「环境影响评价审批」逾期未办结（GC-2025-0009）"
    assert escalation["due"] == "2025-11-20T23:59:59.000+0800"     # opened Tuesday 00:00:01
    gov.complete_task(escalation, measure="notice", supervisionOpinion="限一日内办结")
    gov.complete(case, "Task_review", group="sthj", **APPROVE)
    assert gov.open_keys(case) == ["Task_issue_planning"]
    totals = gov.admin.get("/api/v1/statistics", query_string={"department": "sthj"}).get_json()["totals"]
    assert totals["escalations"] == 1 and totals["decidedOverdue"] == 1 and totals["tacitApprovals"] == 0
    # the supervisors' measure stays in their case, not in the applicant's
    assert "measure" not in gov.variables(case) and "supervisionOpinion" not in gov.variables(case)


def test_an_open_escalation_holds_up_neither_the_review_nor_the_case(gov):
    """督办 is the supervisors' accountability work on the department: once the department has
    decided, the stage and the case go on (and the case's clock stops at issuance) while the
    supervisors' escalation is still open."""
    case = open_case(gov, "GC-2025-0015")
    gov.complete(case, "Task_intake_planning", **intake())
    gov.complete(case, "Task_review", group="zrzy", **APPROVE)
    gov.at("2025-11-18T00:00:01+08:00")                          # sthj's 10 working days have run out
    assert eventually(lambda: gov.escalations("GC-2025-0015"))
    gov.complete(case, "Task_review", group="sthj", **APPROVE)
    assert gov.open_keys(case) == ["Task_issue_planning"]        # the review call ended at the decision
    assert "Call_reviews_planning" not in running_activities(gov, case)
    [escalation] = gov.escalations("GC-2025-0015")               # still the supervisors' to do
    gov.complete(case, "Task_issue_planning", **issue("地字第15号"))
    assert gov.open_keys(case) == ["Task_intake_engineering"]
    [planning] = gov.clocks(case, "planning")                    # the stage's promised clock stopped at issuance
    assert planning["stopped"] is not None and planning["outcome"] == "decided"
    gov.complete_task(escalation, measure="interview", supervisionOpinion="约谈生态环境局分管负责人")
    assert gov.escalations("GC-2025-0015") == []
    assert gov.state(escalation["processInstanceId"]) == "COMPLETED"
    totals = gov.admin.get("/api/v1/statistics", query_string={"department": "sthj"}).get_json()["totals"]
    assert totals["escalations"] == 1 and totals["decidedOverdue"] == 1


def test_a_rejection_by_one_department_ends_the_case_not_approved(gov):
    case = open_case(gov, "GC-2025-0010")
    gov.complete(case, "Task_intake_planning", **intake())
    gov.complete(case, "Task_review", group="zrzy", **APPROVE)
    gov.complete(case, "Task_review", group="sthj", decision="reject", opinion="项目位于生态红线内，不予批准")
    assert gov.waiting_topics("GC-2025-0010") == ["notify.applicant"]
    assert gov.variables(case)["caseOutcome"] == {"result": "rejected", "stage": "planning", "departments": ["sthj"]}
    gov.answer("notify.applicant", "GC-2025-0010", notificationId="SMS-10")
    assert gov.state(case) == "COMPLETED" and gov.ended_at(case, "End_done") == 1


def test_a_verification_finished_after_the_last_stage_still_ends_the_case_approved(gov):
    bk = "GC-2025-0011"
    case = open_case(gov, bk, risk_grade="low")
    gov.complete(case, "Task_intake_planning", **intake(commitment="yes"))
    gov.complete(case, "Task_commitment", group="zrzy", commitmentLetterNo="CN-2025-0011", decision="approve",
                 opinion="当场准予")
    gov.complete(case, "Task_issue_planning", **issue("地字第11号", land_contract_signed="yes"))
    for stage in ("engineering", "construction"):
        gov.complete(case, f"Task_intake_{stage}", **intake())
    gov.complete_all(case, "Task_review", **APPROVE)
    gov.complete(case, "Task_issue_engineering", **issue("建字第11号"))
    gov.complete(case, "Task_issue_construction", **issue("施字第11号"))
    accept_joint_acceptance(gov, case, bk)
    assert gov.open_keys(case) == ["Task_verify"]                # everything else waits at the final join
    gov.complete(case, "Task_verify", group="zrzy", result="compliant", findings="已按承诺履行", method="onsite")
    assert gov.open_keys(case) == ["Task_window_issue"]
    assert gov.variables(case)["caseOutcome"]["result"] == "approved"


def test_special_steps_have_their_own_limit_and_stop_the_review_clock_only_where_configured(gov):
    case = open_case(gov, "GC-2025-0012", risk_grade="low")
    gov.complete(case, "Task_intake_planning", **intake())
    [review] = gov.clocks(case, "review")
    assert review["deadline"] == "2025-11-12T23:59:59+08:00"

    # 专家评审 does not count in the review's limit (items.json specialSteps.expert_review.pausesClock)
    gov.at("2025-11-04T10:00:00+08:00")
    gov.complete(case, "Task_review", group="zrzy", decision="special", specialStep="expert_review",
                 opinion="规划条件复杂，提请专家评审")
    assert gov.open_keys(case) == ["Task_special_paused"]
    [review] = gov.clocks(case, "review")
    [special] = gov.clocks(case, "special")
    assert review["paused"] is True and special["limit"] == {"value": 10.0, "unit": "workdays"}
    gov.at("2025-11-06T10:00:00+08:00")
    gov.complete(case, "Task_special_paused", group="zrzy", specialResult="专家评审通过", specialCompletedOn="2025-11-06")
    [review] = gov.clocks(case, "review")
    assert review["deadline"] == "2025-11-14T23:59:59+08:00"       # two working days later
    assert [c["outcome"] for c in gov.clocks(case, "special")] == ["decided"]

    # 现场勘验 counts in it; which step it is, the form requires
    [task] = gov.tasks(case, "Task_review")
    missing = gov.officer("zrzy").post(f"/engine-rest/task/{task['id']}/complete", json={"variables": typed(
        decision="special", opinion="需现场勘验用地边界")})
    assert missing.status_code == 400, missing.get_json()
    assert missing.get_json()["type"] == "FormFieldValidationException"
    assert "specialStep" in missing.get_json()["message"] and 'decision != "special"' in missing.get_json()["message"]
    assert gov.open_keys(case) == ["Task_review"] and gov.clocks(case, "review")[0]["paused"] is False
    gov.complete(case, "Task_review", group="zrzy", decision="special", specialStep="site_survey",
                 opinion="需现场勘验用地边界")
    assert gov.open_keys(case) == ["Task_special_counted"]
    assert gov.clocks(case, "review")[0]["paused"] is False
    gov.complete(case, "Task_special_counted", group="zrzy", specialResult="边界与红线一致")
    gov.complete(case, "Task_review", group="zrzy", **APPROVE)
    result = gov.variables(case)["reviews"]["planning"]["zrzy"]
    assert result["specialStepRounds"] == 2 and result["correctionRounds"] == 0
    assert gov.open_keys(case) == ["Task_issue_planning"]


def test_a_planning_review_an_earlier_version_left_standing_goes_on_when_the_server_starts(gov, settings, monkeypatch):
    """Before da152e4 the departments' reviews, created before a restart, ended unheard: the
    case stood after its last department with no task and no incident (found by an upgrade
    probe).  The upgraded server runs it on as the review would have: to the permit."""
    from tests.api.test_multi_instance_repair import server_before_the_fix
    from tests.conftest import restarted_server
    case = open_case(gov, "GC-2025-0009")
    gov.complete(case, "Task_intake_planning", **intake())
    assert departments_reviewing(gov, case) == ["sthj", "zrzy"]
    gov.officer("sthj"), gov.officer("zrzy")
    with server_before_the_fix(settings, monkeypatch) as old:
        gov.on(old).complete(case, "Task_review", group="zrzy", **APPROVE)
        gov.on(old).complete(case, "Task_review", group="sthj", decision="approve", opinion="生态环境：同意")
        assert gov.on(old).open_keys(case) == []
    with restarted_server(settings) as upgraded:
        assert gov.on(upgraded).open_keys(case) == ["Task_issue_planning"]
        reviews = gov.on(upgraded).variables(case)["reviews"]["planning"]
        assert {dept: r["opinion"] for dept, r in reviews.items()} == {
            "sthj": "生态环境：同意", "zrzy": APPROVE["opinion"]}
        gov.on(upgraded).complete(case, "Task_issue_planning", **issue("地字第320500202500009号"))
        assert gov.on(upgraded).open_keys(case) == ["Task_intake_engineering"]
        stopped = {(c["stage"], c["outcome"]) for c in gov.on(upgraded).clocks(case) if c["stage"] != "case"}
        assert stopped == {("planning", "decided"), ("review", "decided")}

