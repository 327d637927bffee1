"""Camunda 7's GET /process-definition/statistics, as Cockpit's dashboard reads it: every
deployed version with its running cases, and on request its failed jobs (failedJob
incidents) and open incidents by type; and GET /process-definition/{id}/statistics, the
same per activity of one version (the counts Cockpit draws on the diagram)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from engine import scheduler
from engine.clock import clock
from tests.api.test_external_task_topics import fetch, model
from tests.conftest import typed
from tests.security.models import one_task

STATS = "/engine-rest/process-definition/statistics"
CLASS = "org.camunda.bpm.engine.rest.dto.repository.ProcessDefinitionStatisticsResultDto"
ACTIVITY_CLASS = "org.camunda.bpm.engine.rest.dto.repository.ActivityStatisticsResultDto"


@pytest.fixture
def settings(settings):
    settings.timers_enabled = False          # the test fires the timers itself
    return settings


def by_id(response) -> dict:
    assert response.status_code == 200, response.get_json()
    return {row["id"]: row for row in response.get_json()}


def cases_with_incidents(client, engine) -> tuple[str, str, str, str, object]:
    """Version 1 of `later` with a case whose timer failed (failedJob), one whose worker gave
    up (failedExternalTask) and a withdrawn one; version 2 without cases.  Returns both
    versions' ids, the two running cases' and the worker."""
    assert client.deploy(extra={"later.bpmn": model("later", "dept.${region}", wait="PT1H")}).status_code == 200
    no_region = client.start("later")["id"]                      # its timer will fail: a failedJob incident
    sz = client.start("later", typed(region="sz"))["id"]         # its worker will give up: failedExternalTask
    withdrawn = client.start("later", typed(region="wx"))["id"]
    assert client.delete(f"/engine-rest/process-instance/{withdrawn}").status_code == 204
    clock.set(clock.now() + timedelta(hours=2))
    scheduler.fire_due(engine)
    worker = client.create_user("dept_system", ["external-workers"])
    [task] = fetch(worker, "dept.sz")
    assert worker.post(f"/engine-rest/external-task/{task['id']}/failure", json={
        "workerId": "w", "errorMessage": "down", "retries": 0, "retryTimeout": 0}).status_code == 204
    assert client.deploy(extra={"later.bpmn": model("later", "dept.${area}", wait="PT1H")}).status_code == 200
    versions = client.get("/engine-rest/process-definition",
                          query_string={"key": "later", "sortBy": "version", "sortOrder": "asc"}).get_json()
    v1, v2 = (d["id"] for d in versions)
    assert {c["id"] for c in client.get("/engine-rest/process-instance").get_json()} == {no_region, sz}
    return v1, v2, no_region, sz, worker


def test_statistics_count_running_cases_failed_jobs_and_open_incidents_per_version(client, engine):
    v1, v2, _, _, worker = cases_with_incidents(client, engine)

    clerk = client.create_user("clerk", ["fgw"])                  # an officer: every department's counts are not theirs
    refused = clerk.get(STATS)
    assert refused.status_code == 403 and "supervisors" in refused.get_json()["message"], refused.get_json()
    plain = by_id(client.create_user("inspector", ["supervisors"]).get(STATS))      # 督查 read every department's
    assert by_id(worker.get(STATS)).keys() == {v1, v2}             # the department systems see the incidents
    assert plain.keys() == {v1, v2}
    assert (plain[v1]["instances"], plain[v1]["failedJobs"], plain[v1]["incidents"]) == (2, 0, [])
    assert (plain[v2]["instances"], plain[v2]["failedJobs"], plain[v2]["incidents"]) == (0, 0, [])
    assert plain[v1]["@class"] == CLASS
    assert plain[v1]["definition"] == client.get(f"/engine-rest/process-definition/{v1}").get_json()

    assert by_id(client.get(STATS, query_string={"failedJobs": "true"}))[v1]["failedJobs"] == 1
    everything = by_id(client.get(STATS, query_string={"failedJobs": "true", "incidents": "true"}))
    assert everything[v1]["incidents"] == [{"incidentType": "failedExternalTask", "incidentCount": 1},
                                           {"incidentType": "failedJob", "incidentCount": 1}]
    assert (everything[v2]["failedJobs"], everything[v2]["incidents"]) == (0, [])
    assert by_id(client.get(STATS, query_string={"rootIncidents": "true"}))[v1]["incidents"] == \
        everything[v1]["incidents"]
    one_type = by_id(client.get(STATS, query_string={"incidentsForType": "failedJob"}))
    assert (one_type[v1]["failedJobs"], one_type[v1]["incidents"]) == (0, [{"incidentType": "failedJob",
                                                                            "incidentCount": 1}])


@pytest.mark.parametrize("query", [{"incidents": "true", "incidentsForType": "failedJob"},
                                   {"incidents": "true", "rootIncidents": "true"},
                                   {"rootIncidents": "true", "incidentsForType": "failedJob"}])
def test_statistics_take_one_incident_option_at_most(client, query):
    r = client.get(STATS, query_string=query)
    assert r.status_code == 400 and "Only one of" in r.get_json()["message"], r.get_json()



def activity_stats(reader, definition_id: str, **query) -> list:
    response = reader.get(f"/engine-rest/process-definition/{definition_id}/statistics", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_two_cases_waiting_at_a_user_task_and_an_external_task_count_2_at_each(client):
    assert client.deploy(extra={"review.bpmn": one_task("review"),
                                "push.bpmn": model("push", "dept.sz")}).status_code == 200
    for key in ("review", "review", "push", "push"):
        client.start(key)
    review = client.get("/engine-rest/process-definition/key/review").get_json()["id"]
    push = client.get("/engine-rest/process-definition/key/push").get_json()["id"]
    assert activity_stats(client, review) == [{"@class": ACTIVITY_CLASS, "id": "T", "instances": 2,
                                               "failedJobs": 0, "incidents": []}]
    assert activity_stats(client, push) == [{"@class": ACTIVITY_CLASS, "id": "Task_send", "instances": 2,
                                             "failedJobs": 0, "incidents": []}]
    assert client.get("/engine-rest/process-definition/key/push/statistics").get_json() == activity_stats(client, push)
    assert client.deploy(extra={"push.bpmn": model("push", "dept.sz")}, tenant_id="sz").status_code == 200
    of_tenant = client.get("/engine-rest/process-definition/key/push/tenant-id/sz/statistics")
    assert (of_tenant.status_code, of_tenant.get_json()) == (200, []), of_tenant.get_json()   # its own, no cases
    [task] = client.get("/engine-rest/task", query_string={"processDefinitionKey": "review"}).get_json()[:1]
    assert client.post(f"/engine-rest/task/{task['id']}/complete", json={}).status_code == 204
    assert [(a["id"], a["instances"]) for a in activity_stats(client, review)] == [("T", 1)]   # one case ended


def test_activity_statistics_count_failed_jobs_and_incidents_where_they_happened(client, engine):
    v1, v2, _, _, worker = cases_with_incidents(client, engine)
    plain = {a["id"]: a for a in activity_stats(client, v1)}
    assert {a: (r["instances"], r["failedJobs"], r["incidents"]) for a, r in plain.items()} == {
        "Wait": (1, 0, []), "Task_send": (1, 0, [])}                 # the timer that failed waits still
    assert activity_stats(client, v2) == []                            # nothing to report: no rows
    assert {a["id"]: a["failedJobs"] for a in activity_stats(worker, v1, failedJobs="true")} == {
        "Wait": 1, "Task_send": 0}
    everything = {a["id"]: (a["failedJobs"], a["incidents"])
                  for a in activity_stats(client, v1, failedJobs="true", incidents="true")}
    assert everything == {"Wait": (1, [{"incidentType": "failedJob", "incidentCount": 1}]),
                          "Task_send": (0, [{"incidentType": "failedExternalTask", "incidentCount": 1}])}
    one_type = {a["id"]: a["incidents"] for a in activity_stats(client, v1, incidentsForType="failedExternalTask")}
    assert one_type == {"Wait": [], "Task_send": [{"incidentType": "failedExternalTask", "incidentCount": 1}]}
    both = client.get(f"/engine-rest/process-definition/{v1}/statistics",
                      query_string={"incidents": "true", "incidentsForType": "failedJob"})
    assert both.status_code == 400 and "Only one of" in both.get_json()["message"], both.get_json()


def test_activity_statistics_of_an_unknown_version_is_a_404_and_not_for_an_officer(client):
    assert client.deploy(extra={"review.bpmn": one_task("review")}).status_code == 200
    client.start("review")
    unknown = client.get("/engine-rest/process-definition/nope:1:x/statistics")
    assert unknown.status_code == 404, unknown.get_json()
    assert unknown.get_json()["message"] == client.get("/engine-rest/process-definition/nope:1:x").get_json()["message"]
    assert client.get("/engine-rest/process-definition/key/nope/statistics").status_code == 404
    clerk = client.create_user("clerk", ["fgw"])                  # the officer the task is offered to
    refused = clerk.get("/engine-rest/process-definition/key/review/statistics")
    assert refused.status_code == 403 and "supervisors" in refused.get_json()["message"], refused.get_json()
    inspector = client.create_user("inspector", ["supervisors"])
    assert [(a["id"], a["instances"]) for a in activity_stats(
        inspector, client.get("/engine-rest/process-definition/key/review").get_json()["id"])] == [("T", 1)]
