"""The runtime against the real server where the engine's answer decides: an outcome the engine
refuses becomes an incident at once (not a task run again every lock duration), a naive
datetime is the engine's local time as over REST, and a handler that hangs gives its task back
without taking the worker's slots with it."""
from __future__ import annotations

import threading
import time
from datetime import date, datetime, timezone
from decimal import Decimal
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


class Receipt:
    """What a department client library hands back: no JSON for it."""


def returns_a_string(task):
    return "sent"


def returns_a_decimal(task):
    return {"answer": "ok", "fee": Decimal("12.50")}


def raises_an_error_with_an_object(task):
    raise BpmnError("E_KNOWN", "known", {"receipt": Receipt()})


@pytest.mark.parametrize("handler, named", [
    (returns_a_string, "returns_a_string for topic 'probe.topic' returned a str ('sent')"),
    (returns_a_decimal, "returns_a_decimal for topic 'probe.topic' returned variable 'fee' holds a Decimal"),
    (raises_an_error_with_an_object, "raises_an_error_with_an_object for topic 'probe.topic' raised BpmnError "
                                     "'E_KNOWN' whose variable 'receipt' holds a Receipt"),
])
def test_a_result_the_worker_cannot_send_opens_an_incident_at_once_naming_the_handler_and_the_type(
        client, worker, handler, named):
    runs = []

    def counted(task):
        runs.append(task.retries)
        return handler(task)
    counted.__qualname__ = handler.__name__

    case = client.start("probe_outcomes", business_key="PROBE-UNSENDABLE")
    worker(counted)
    assert wait(lambda: incidents(client, case)), "no incident"
    [incident] = incidents(client, case)
    assert named in incident["incidentMessage"]
    assert external_task(client, case)["retries"] == 0
    assert runs == [None]                   # run once: retrying the same code returns the same thing


def test_a_naive_datetime_or_a_date_from_a_handler_is_the_engines_local_time_as_over_rest(client, worker):
    case = client.start("probe_outcomes", business_key="PROBE-2")
    worker(lambda task: {"answer": "ok", "signedAt": datetime(2025, 1, 2, 3, 4, 5), "validFrom": date(2025, 1, 2),
                         "sentAt": datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)})
    assert wait(lambda: client.tasks(processInstanceId=case["id"]))
    url = f"/engine-rest/process-instance/{case['id']}/variables"
    assert client.put(url + "/typedOverRest", json={"value": "2025-01-02T03:04:05", "type": "Date"}).status_code == 204
    values = {name: (v["type"], v["value"]) for name, v in client.get(url).get_json().items()}
    assert values["signedAt"] == ("Date", "2025-01-02T03:04:05.000+0800") == values["typedOverRest"]
    assert values["validFrom"] == ("Date", "2025-01-02T00:00:00.000+0800")
    assert values["sentAt"] == ("Date", "2025-01-02T11:04:05.000+0800")        # an offset is kept


def test_a_hung_handler_gives_its_task_back_after_its_timeout_and_the_worker_keeps_working(client, worker):
    release = threading.Event()
    runs = []

    def handler(task):
        runs.append(task.business_key)
        if task.business_key == "PROBE-HUNG":
            release.wait(30)                # a department call that never answers
            return {"answer": "too late"}
        return {"answer": "ok"}

    hung = client.start("probe_outcomes", business_key="PROBE-HUNG")
    # one slot and one thread: without the timeout the first hang would stop the worker for good
    worker(handler, retry=RetryPolicy(retries=1, initial_ms=50), max_tasks=1, threads=1, handler_timeout=0.5)
    try:
        assert wait(lambda: incidents(client, hung))
        [incident] = incidents(client, hung)
        assert "did not finish within 0.5 s" in incident["incidentMessage"]
        task = external_task(client, hung)
        details = client.get(f"/engine-rest/external-task/{task['id']}/errorDetails").get_data(as_text=True)
        assert "release.wait(30)" in details                       # where the handler hung
        assert runs == ["PROBE-HUNG", "PROBE-HUNG"]                 # retried once, as for an exception

        fine = client.start("probe_outcomes", business_key="PROBE-FINE")
        assert wait(lambda: client.tasks(processInstanceId=fine["id"])), "the worker stopped working"
    finally:
        release.set()
    time.sleep(0.3)                         # the hung handlers return now: their results are dropped
    assert external_task(client, hung)["retries"] == 0 and incidents(client, hung)
