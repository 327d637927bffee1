"""Camunda 7's GET /process-definition/statistics, as Cockpit's dashboard reads it: every
deployed version with its running cases, and on request its failed jobs (failedJob
incidents) and open incidents by type."""
from __future__ import annotations

from datetime import timedelta

import pytest

from engine import scheduler
from engine.clock import clock
from tests.api.test_external_task_topics import fetch, model
from tests.conftest import typed

STATS = "/engine-rest/process-definition/statistics"
CLASS = "org.camunda.bpm.engine.rest.dto.repository.ProcessDefinitionStatisticsResultDto"


@pytest.fixture
def settings(settings):
    settings.timers_enabled = False          # the test fires the timers itself
    return settings


def by_id(response) -> dict:
    assert response.status_code == 200, response.get_json()
    return {row["id"]: row for row in response.get_json()}


def test_statistics_count_running_cases_failed_jobs_and_open_incidents_per_version(client, engine):
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

