"""The runtime against the real server where the engine's answer decides: an outcome the engine
refuses becomes an incident at once (not a task run again every lock duration)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from workers import BpmnError, RetryPolicy, Worker

PROBE = Path(__file__).parent / "fixtures" / "probe_outcomes.bpmn"
WORKER_USER = ("probe_worker", "pw")


@pytest.fixture
def engine_url(app, client, serve):
    client.create_user(WORKER_USER[0], ["external-workers"], password=WORKER_USER[1])
    r = client.deploy(PROBE, name="probe")
    assert r.status_code == 200, r.get_json()
    return serve(app).url + "/engine-rest"


@pytest.fixture
def worker(engine_url):
    started = []

    def start(handler, retry=RetryPolicy(retries=3, initial_ms=50), **options) -> Worker:
        made = Worker(engine_url, auth=WORKER_USER, worker_id="probe-1", lock_duration=2_000,
                      async_response_timeout=500, retry=retry, **options)
        made.subscribe("probe.topic", handler=handler)
        started.append(made.start())
        return made
    yield start
    for made in started:
        made.stop(timeout=10, now=True)


def wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    return predicate()


def incidents(client, case):
    return client.get("/engine-rest/incident", query_string={"processInstanceId": case["id"]}).get_json()


def external_task(client, case):
    [task] = client.get("/engine-rest/external-task", query_string={"processInstanceId": case["id"]}).get_json()
    return task


@pytest.mark.parametrize("outcome, refusal", [
    ("an error code no boundary event catches", "no error boundary event catches errorCode 'NOT_CAUGHT'"),
    ("a value out of Long's range", "huge"),
    ("a completion whose output mapping fails", "output mapping of Task_probe failed"),
])
def test_an_outcome_the_engine_refuses_opens_an_incident_at_once_with_the_engines_message(
        client, worker, outcome, refusal):
    runs = []

    def handler(task):
        runs.append(task.retries)
        if outcome.startswith("an error code"):
            raise BpmnError("NOT_CAUGHT", "the department said no")
        if outcome.startswith("a value"):
            return {"huge": 2**70}
        return {"other": 1}                 # the output mapping reads `answer`, which nobody set

    case = client.start("probe_outcomes", business_key="PROBE-1")
    worker(handler)
    assert wait(lambda: incidents(client, case)), f"{outcome}: no incident"
    [incident] = incidents(client, case)
    assert incident["incidentType"] == "failedExternalTask"
    assert "the engine refused" in incident["incidentMessage"] and refusal in incident["incidentMessage"]
    task = external_task(client, case)
    assert task["retries"] == 0
    assert runs == [None]                   # run once: the department was not called again
