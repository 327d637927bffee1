"""Supervisors' statistics over real cases of the library: per process and per stage,
parallel-approval rate, commitment (告知承诺) and deficiency (容缺) shares, on-time rate,
working days used."""
from __future__ import annotations

from tests.e2e.conftest import APPROVE, enterprise, eventually, intake
from tests.e2e.test_construction_permit import departments_reviewing, open_case


def statistics(gov, **query):
    r = gov.admin.get("/api/v1/statistics", query_string=query)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_the_planning_stage_figures_of_three_cases(gov):
    parallel = open_case(gov, "GC-ST-1")                          # general risk: two departments in parallel
    gov.complete(parallel, "Task_intake_planning", **intake())
    assert departments_reviewing(gov, parallel) == ["sthj", "zrzy"]
    gov.at("2025-11-05T10:00:00+08:00")                          # two working days later
    gov.complete_all(parallel, "Task_review", **APPROVE)

    committed = open_case(gov, "GC-ST-2", risk_grade="low")
    gov.complete(committed, "Task_intake_planning", **intake(commitment="yes"))
    gov.complete(committed, "Task_commitment", group="zrzy", commitmentLetterNo="CN-ST-2", decision="approve",
                 opinion="当场准予")

    deficient = open_case(gov, "GC-ST-3", risk_grade="low")
    gov.complete(deficient, "Task_intake_planning", **intake(mode="deficiency"))

    figures = statistics(gov, processDefinitionKey="construction_permit")
    [process] = figures["processes"]
    assert process["cases"] == 3 and process["running"] == 3 and process["completed"] == 0
    assert process["commitmentCases"] == 1 and process["deficiencyCases"] == 1
    assert process["commitmentShare"] == round(1 / 3, 4)
    # only the first case had two departments reviewing one stage, and they did so at once;
    # zrzy alone reviewed the other two, to which the KPI does not apply
    assert (process["multiDepartmentCases"], process["parallelCases"]) == (1, 1)
    assert process["parallel" + "ApprovalRate"] == 1.0

    reviews = {s["department"]: s for s in figures["stages"] if s["stage"] == "review"}
    assert reviews["sthj"]["decided"] == 1 and reviews["sthj"]["onTimeRate"] == 1.0
    # accepted Monday 10:00, decided Wednesday 10:00: the day of acceptance is not counted,
    # so Tuesday and Wednesday's first office hour (of seven) are used
    assert reviews["sthj"]["avgWorkingDays"] == 1.14 and reviews["sthj"]["p90WorkingDays"] == 1.14
    assert reviews["zrzy"]["clocks"] == 3 and reviews["zrzy"]["open"] == 1

    monthly = statistics(gov, processDefinitionKey="construction_permit", period="month", stage="review")
    assert {p["period"] for p in monthly["processes"]} == {"2025-11"}
    assert all(s["stage"] == "review" and s["period"] == "2025-11" for s in monthly["stages"])
    assert gov.admin.get("/api/v1/statistics", query_string={"period": "decade"}).status_code == 400


def test_a_department_s_view_lists_the_cases_it_reviews_and_judges_parallel_approval_on_the_whole_case(gov):
    case = open_case(gov, "GC-ST-4")                              # general risk: sthj and zrzy at once
    gov.complete(case, "Task_intake_planning", **intake())
    gov.at("2025-11-05T10:00:00+08:00")
    gov.complete_all(case, "Task_review", **APPROVE)
    opening = gov.start("enterprise_opening", "QY-ST-4", **enterprise(items=["registration"]))
    gov.complete(opening, "Task_accept", accepted="yes", acceptanceOpinion="一表申请材料齐全")
    assert gov.clocks(opening, "opening")                         # one promised clock, no department review

    r = gov.officer("sthj").get("/api/v1/statistics", query_string={"department": "sthj"})
    assert r.status_code == 200, r.get_json()
    mine = r.get_json()
    # sthj takes no part in enterprise opening; in the permit its review ran beside zrzy's
    assert [p["processDefinitionKey"] for p in mine["processes"]] == ["construction_permit"]
    assert mine["processes"][0]["parallelApprovalRate"] == 1.0 and mine["processes"][0]["cases"] == 1
    assert {g["department"] for g in mine["groups"]} == {s["department"] for s in mine["stages"]} == {"sthj"}

    everyone = {p["processDefinitionKey"]: p for p in statistics(gov)["processes"]}
    assert everyone["construction_permit"]["parallelApprovalRate"] == 1.0
    # one clock for the whole bundle: no two departments' clocks, the KPI does not apply
    assert everyone["enterprise_opening"]["parallelApprovalRate"] is None
    assert everyone["enterprise_opening"]["multiDepartmentCases"] == 0


def test_supervisors_read_every_department_s_overdue_tasks_clocks_and_figures_but_decide_only_their_own(gov):
    case = open_case(gov, "GC-ST-5")                              # 环评 by sthj: escalated, never tacit
    gov.complete(case, "Task_intake_planning", **intake())
    gov.complete(case, "Task_review", group="zrzy", **APPROVE)
    gov.at("2025-11-18T00:00:01+08:00")                          # sthj's 10 working days have run out
    assert eventually(lambda: gov.escalations("GC-ST-5"))
    supervisor = gov.officer("supervisors")

    r = supervisor.get("/engine-rest/task", query_string={
        "dueBefore": "2025-11-18T00:00:00.000+0800", "sortBy": "dueDate", "sortOrder": "asc"})
    assert r.status_code == 200, r.get_json()
    [overdue] = r.get_json()
    assert overdue["taskDefinitionKey"] == "Task_review" and overdue["candidateGroups"] == ["sthj"]
    assert supervisor.get("/engine-rest/task/count", query_string={
        "dueBefore": "2025-11-18T00:00:00.000+0800"}).get_json() == {"count": 1}
    assert supervisor.get(f"/engine-rest/task/{overdue['id']}").status_code == 200
    [sthj] = [c for c in supervisor.get(f"/api/v1/process-instance/{case}/legal-clocks").get_json()
              if c["stage"] == "review" and c["department"] == "sthj"]
    assert sthj["status"] == "red"

    r = supervisor.get("/api/v1/statistics")
    assert r.status_code == 200, r.get_json()
    assert {g["department"] for g in r.get_json()["groups"]} >= {"sthj", "zrzy"}
    assert r.get_json()["totals"]["escalations"] == 1
    assert supervisor.get("/api/v1/statistics", query_string={"department": "sthj"}).status_code == 200

    # reading is all: sthj's review stays sthj's to claim and decide
    r = supervisor.post(f"/engine-rest/task/{overdue['id']}/claim", json={"userId": "supervisors1"})
    assert r.status_code == 403, r.get_json()
    r = supervisor.post(f"/engine-rest/task/{overdue['id']}/complete", json={"variables": {
        "decision": {"value": "approve"}, "opinion": {"value": "督办代批"}}})
    assert r.status_code == 403, r.get_json()
    assert gov.tasks(case, "Task_review", group="sthj")[0]["assignee"] is None
    gov.complete_task(gov.escalations("GC-ST-5")[0], measure="notice", supervisionOpinion="限一日内办结")
    gov.complete(case, "Task_review", group="sthj", **APPROVE)
    assert gov.open_keys(case) == ["Task_issue_planning"]


def test_a_withdrawn_case_is_counted_apart_and_raises_neither_the_completion_rate_nor_the_end_to_end_days(gov):
    gov.at("2025-11-03T10:00:00+08:00")                          # Monday
    opened = gov.start("enterprise_opening", "QY-ST-6", **enterprise(items=["registration"],
                                                                      enterprise_type="llc_sole_natural_person"))
    gov.answer("market.registration", "QY-ST-6", creditCode="91320594MA27ABCD1X", marketRegistrationNo="3205940006")
    gov.answer("licence.issue", "QY-ST-6", eLicenceId="EL-ST-6")
    gov.answer("notify.applicant", "QY-ST-6", notificationId="SMS-ST-6")
    assert gov.state(opened) == "COMPLETED"                      # opened the day it was applied for

    given_up = gov.start("enterprise_opening", "QY-ST-7", **enterprise(enterprise_type="llc_natural_person"))
    gov.refuse("market.registration", "QY-ST-7", "MARKET_REJECTED", marketRejectReason="住所不符合要求")
    gov.at("2025-11-04T16:00:00+08:00")                          # the next working day the applicant gives up
    gov.complete(given_up, "Task_registration_rejected", registrationAction="abandon",
                 applicantName="苏州星湖智能科技有限公司")
    assert gov.state(given_up) == "COMPLETED" and gov.clocks(given_up, "opening")[0]["outcome"] == "withdrawn"

    [process] = statistics(gov, processDefinitionKey="enterprise_opening")["processes"]
    assert (process["cases"], process["completed"], process["withdrawn"], process["running"]) == (2, 1, 1, 0)
    assert process["completionRate"] == 0.5
    assert process["endToEndAvgWorkingDays"] == 0.0              # the opened case alone
