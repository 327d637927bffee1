"""Supervisors' statistics over real cases of the library: per process and per stage,
parallel-approval rate, commitment (告知承诺) and deficiency (容缺) shares, on-time rate,
working days used."""
from __future__ import annotations

from tests.e2e.conftest import APPROVE, intake
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
    # only the first case had two reviews running at once
    assert process["parallel" + "ApprovalRate"] == round(1 / 3, 4)

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
