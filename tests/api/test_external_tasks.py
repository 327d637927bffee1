"""Department systems as external workers, through Camunda 7's external-task REST API:
企业开办 (company setup) registers the company with market regulation, then orders the
seal; a rejected registration goes back to the window for correction (补正)."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from engine import external_tasks
from engine.clock import clock
from engine.variables import format_date
from tests.conftest import FIXTURES, typed

ET = "/engine-rest/external-task"


@pytest.fixture
def worker(client):
    deployed = client.deploy(FIXTURES / "external_registration.bpmn", name="company-setup")
    assert deployed.status_code == 200, deployed.get_json()
    return client.create_user("scjg_system", ["external-workers"])


def start(client, business_key="SZ-2025-0100", **variables):
    return client.start("company_setup", typed(applicantName="苏州某某科技有限公司", **variables), business_key)


def fetch(worker, topic="registration", worker_id="scjg-1", lock=60_000, max_tasks=5, **options):
    topic_options = {k: options.pop(k) for k in list(options) if k in (
        "businessKey", "variables", "localVariables", "includeExtensionProperties", "processVariables",
        "processDefinitionKey")}
    body = {"workerId": worker_id, "maxTasks": max_tasks,
            "topics": [{"topicName": topic, "lockDuration": lock, **topic_options}], **options}
    response = worker.post(f"{ET}/fetchAndLock", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_worker_locks_the_registration_completes_it_and_the_case_moves_on_to_the_seal(client, worker):
    case = start(client)
    [task] = fetch(worker, includeExtensionProperties=True)
    assert task["activityId"] == "Task_register" and task["topicName"] == "registration"
    assert task["workerId"] == "scjg-1" and task["lockExpirationTime"] is not None
    assert task["processInstanceId"] == case["id"] and task["businessKey"] == "SZ-2025-0100"
    assert task["priority"] == 20 and task["retries"] is None
    assert task["variables"]["applicantName"] == {"value": "苏州某某科技有限公司", "type": "String", "valueInfo": {}}
    assert task["variables"]["registry"]["value"] == "SAMR"          # camunda:inputParameter, task-local
    assert task["extensionProperties"] == {"department": "scjg"}
    assert fetch(worker) == []                                        # locked: nobody else gets it

    done = worker.post(f"{ET}/{task['id']}/complete", json={
        "workerId": "scjg-1", "variables": {"creditCode": {"value": "91320500MA1XXXXX0X", "type": "String"}}})
    assert done.status_code == 204, done.get_json()

    assert worker.get(f"{ET}/{task['id']}").status_code == 404
    [seal] = fetch(worker, topic="seal", worker_id="seal-1")
    assert seal["variables"]["creditCode"]["value"] == "91320500MA1XXXXX0X"
    assert "registry" not in seal["variables"]                         # the input stayed local to its task
    history = client.get("/engine-rest/history/activity-instance",
                         query_string={"processInstanceId": case["id"], "activityId": "Task_register"}).get_json()
    assert len(history) == 1 and history[0]["endTime"] is not None and history[0]["activityType"] == "serviceTask"


def test_only_the_lock_owner_may_complete_fail_or_extend_and_nothing_changes_otherwise(client, worker):
    start(client)
    [task] = fetch(worker, worker_id="scjg-1")
    tid = task["id"]
    for verb, body, sentence in (
            ("complete", {}, f"External Task {tid} cannot be completed by worker 'intruder'"),
            ("failure", {"retries": 0, "errorMessage": "x"},
             f"Failure of External Task {tid} cannot be reported by worker 'intruder'"),
            ("bpmnError", {"errorCode": "REGISTRATION_REJECTED"},
             f"Bpmn error of External Task {tid} cannot be reported by worker 'intruder'"),
            ("extendLock", {"newDuration": 1000},
             f"The lock of the External Task {tid} cannot be extended by worker 'intruder'")):
        refused = worker.post(f"{ET}/{tid}/{verb}", json={"workerId": "intruder", **body})
        assert refused.status_code == 400, verb
        assert refused.get_json()["type"] == "RestException"
        assert refused.get_json()["message"] == f"{sentence}. It is locked by worker 'scjg-1'."
    unchanged = worker.get(f"{ET}/{tid}").get_json()
    assert unchanged["workerId"] == "scjg-1" and unchanged["retries"] is None
    assert client.get("/engine-rest/incident/count").get_json() == {"count": 0}

    missing = worker.post(f"{ET}/no-such-task/complete", json={"workerId": "scjg-1"})
    assert missing.status_code == 404
    assert missing.get_json()["message"] == "External task with id no-such-task does not exist"
    assert worker.get(f"{ET}/no-such-task").status_code == 404


def test_a_department_officer_may_not_use_the_external_task_api(client, worker):
    start(client)
    officer = client.create_user("fgw_officer", ["fgw"])
    for response in (officer.post(f"{ET}/fetchAndLock", json={"workerId": "x", "maxTasks": 1, "topics": [
                         {"topicName": "registration", "lockDuration": 1000}]}),
                     officer.get(ET), officer.get("/engine-rest/incident")):
        assert response.status_code == 403, response.get_json()
        assert response.get_json()["type"] == "AuthorizationException"
    assert len(client.get(ET).get_json()) == 1                        # admins may


def test_a_worker_killed_mid_task_loses_its_lock_and_the_task_is_done_once_by_the_next_worker(client, worker):
    case = start(client)
    [task] = fetch(worker, worker_id="scjg-1", lock=60_000)
    assert fetch(worker, worker_id="scjg-2") == []
    clock.set(clock.now() + timedelta(minutes=2))                      # scjg-1 died; its lock ran out
    [again] = fetch(worker, worker_id="scjg-2")
    assert again["id"] == task["id"] and again["workerId"] == "scjg-2"

    late = worker.post(f"{ET}/{task['id']}/complete", json={"workerId": "scjg-1"})
    assert late.status_code == 400 and "locked by worker 'scjg-2'" in late.get_json()["message"]
    assert worker.post(f"{ET}/{task['id']}/complete", json={"workerId": "scjg-2"}).status_code == 204
    replay = worker.post(f"{ET}/{task['id']}/complete", json={"workerId": "scjg-2"})
    assert replay.status_code == 404                                  # done once: a replay finds nothing
    seals = client.get(ET, query_string={"processInstanceId": case["id"]}).get_json()
    assert [t["activityId"] for t in seals] == ["Task_seal"]
    registered = client.get("/engine-rest/history/activity-instance", query_string={
        "processInstanceId": case["id"], "activityId": "Task_register"}).get_json()
    assert len(registered) == 1


def test_a_failure_with_retry_timeout_hides_the_task_until_the_timeout_has_passed(client, worker):
    start(client)
    [task] = fetch(worker)
    failed = worker.post(f"{ET}/{task['id']}/failure", json={
        "workerId": "scjg-1", "errorMessage": "registration system unreachable", "errorDetails": "ConnectTimeout",
        "retries": 2, "retryTimeout": 30_000})
    assert failed.status_code == 204, failed.get_json()
    assert fetch(worker) == []
    row = worker.get(f"{ET}/{task['id']}").get_json()
    assert row["retries"] == 2 and row["errorMessage"] == "registration system unreachable"
    details = worker.get(f"{ET}/{task['id']}/errorDetails")
    assert details.status_code == 200 and details.get_data(as_text=True) == "ConnectTimeout"

    clock.set(clock.now() + timedelta(seconds=31))
    [retry] = fetch(worker, worker_id="scjg-2")
    assert retry["id"] == task["id"] and retry["retries"] == 2
    assert retry["errorMessage"] == "registration system unreachable"


def test_zero_retries_open_an_incident_and_restoring_retries_resolves_it(client, worker):
    case = start(client)
    [task] = fetch(worker)
    assert worker.post(f"{ET}/{task['id']}/failure", json={
        "workerId": "scjg-1", "errorMessage": "credit code rejected", "retries": 0, "retryTimeout": 0}).status_code == 204
    clock.set(clock.now() + timedelta(minutes=10))
    assert fetch(worker) == []                                        # out of retries: never fetched
    [incident] = client.get("/engine-rest/incident", query_string={"processInstanceId": case["id"]}).get_json()
    assert incident["incidentType"] == "failedExternalTask" and incident["configuration"] == task["id"]
    assert incident["activityId"] == "Task_register" and incident["incidentMessage"] == "credit code rejected"
    assert [t["id"] for t in client.get(ET, query_string={"noRetriesLeft": "true"}).get_json()] == [task["id"]]
    assert client.get(ET, query_string={"withRetriesLeft": "true"}).get_json() == []

    assert worker.put(f"{ET}/{task['id']}/retries", json={"retries": 3}).status_code == 204
    assert client.get("/engine-rest/incident/count",
                      query_string={"incidentType": "failedExternalTask"}).get_json() == {"count": 0}
    [again] = fetch(worker, worker_id="scjg-2")
    assert again["id"] == task["id"] and again["retries"] == 3


def test_a_rejected_registration_follows_the_error_boundary_to_the_window(client, worker):
    case = start(client)
    [task] = fetch(worker)
    wrong = worker.post(f"{ET}/{task['id']}/bpmnError", json={"workerId": "scjg-1", "errorCode": "NO_SUCH_CODE"})
    assert wrong.status_code == 400 and "no error boundary event catches errorCode 'NO_SUCH_CODE'" in \
        wrong.get_json()["message"]
    assert worker.get(f"{ET}/{task['id']}").get_json()["workerId"] == "scjg-1"    # nothing changed

    thrown = worker.post(f"{ET}/{task['id']}/bpmnError", json={
        "workerId": "scjg-1", "errorCode": "REGISTRATION_REJECTED", "errorMessage": "name already registered",
        "variables": {"rejectReason": {"value": "企业名称重复", "type": "String"}}})
    assert thrown.status_code == 204, thrown.get_json()
    assert client.get(ET, query_string={"processInstanceId": case["id"]}).get_json() == []
    [correction] = client.tasks(processInstanceId=case["id"])
    assert correction["taskDefinitionKey"] == "Task_correct"
    variables = client.get(f"/engine-rest/process-instance/{case['id']}/variables").get_json()
    assert variables["rejectReason"]["value"] == "企业名称重复"
    boundary = client.get("/engine-rest/history/activity-instance", query_string={
        "processInstanceId": case["id"], "activityId": "Boundary_rejected"}).get_json()
    assert len(boundary) == 1
    cancelled = client.get("/engine-rest/history/activity-instance", query_string={
        "processInstanceId": case["id"], "activityId": "Task_register"}).get_json()
    assert cancelled[0]["canceled"] is True


def test_a_waiting_fetch_is_woken_as_soon_as_a_task_is_created(client, worker, app, monkeypatch):
    monkeypatch.setattr(external_tasks, "POLL_SECONDS", 60.0)        # only the wake-up can answer in time
    waiting = worker.__class__(app.test_client(), worker.user)
    result = {}

    def long_poll():
        began = time.monotonic()
        result["tasks"] = fetch(waiting, asyncResponseTimeout=5_000)
        result["seconds"] = time.monotonic() - began

    thread = threading.Thread(target=long_poll)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "the fetch returned before any task existed"
    created = time.monotonic()
    case = start(client)
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert [t["processInstanceId"] for t in result["tasks"]] == [case["id"]]
    assert time.monotonic() - created < 4.0         # before the 5 s timeout: the wake-up answered it


def test_a_waiting_fetch_without_work_answers_an_empty_list_after_its_timeout(client, worker):
    began = time.monotonic()
    assert fetch(worker, asyncResponseTimeout=300) == []
    assert 0.25 <= time.monotonic() - began < 5


def test_extend_lock_and_unlock(client, worker):
    start(client)
    [task] = fetch(worker, lock=1_000)
    assert worker.post(f"{ET}/{task['id']}/extendLock", json={"workerId": "scjg-1", "newDuration": 600_000}).status_code == 204
    clock.set(clock.now() + timedelta(minutes=5))
    assert fetch(worker, worker_id="scjg-2") == []                    # the extended lock still holds
    assert worker.post(f"{ET}/{task['id']}/unlock").status_code == 204
    [taken] = fetch(worker, worker_id="scjg-2")
    assert taken["workerId"] == "scjg-2"
    ended = client.get(f"{ET}/{task['id']}").get_json()["lockExpirationTime"]
    clock.set(clock.now() + timedelta(hours=1))
    expired = worker.post(f"{ET}/{task['id']}/extendLock", json={"workerId": "scjg-2", "newDuration": 1000})
    assert expired.status_code == 400 and "Cannot extend a lock that expired" in expired.get_json()["message"]
    assert f"ended at {ended};" in expired.get_json()["message"]           # the API's date format, China time


def test_a_worker_locks_a_task_by_id_and_another_worker_may_not_take_it(client, worker):
    case = start(client)
    [task] = client.get(ET, query_string={"processInstanceId": case["id"]}).get_json()
    tid = task["id"]
    assert worker.post(f"{ET}/{tid}/lock", json={"workerId": "scjg-1", "lockDuration": 60_000}).status_code == 204
    locked = worker.get(f"{ET}/{tid}").get_json()
    assert locked["workerId"] == "scjg-1" and locked["lockExpirationTime"] is not None
    assert fetch(worker, worker_id="scjg-2") == []                    # a real lock: no fetch takes it

    taken = worker.post(f"{ET}/{tid}/lock", json={"workerId": "scjg-2", "lockDuration": 60_000})
    assert taken.status_code == 400 and taken.get_json()["type"] == "RestException"
    assert taken.get_json()["message"] == \
        f"External Task {tid} cannot be locked by worker 'scjg-2'. It is locked by worker 'scjg-1'."
    clock.set(clock.now() + timedelta(seconds=30))
    assert worker.post(f"{ET}/{tid}/lock", json={"workerId": "scjg-1", "lockDuration": 600_000}).status_code == 204
    relocked = worker.get(f"{ET}/{tid}").get_json()                   # its own lock starts anew, from now
    assert relocked["lockExpirationTime"] > locked["lockExpirationTime"]

    clock.set(clock.now() + timedelta(minutes=11))                    # scjg-1's lock ran out
    assert worker.post(f"{ET}/{tid}/lock", json={"workerId": "scjg-2", "lockDuration": 60_000}).status_code == 204
    assert worker.post(f"{ET}/{tid}/complete", json={"workerId": "scjg-1"}).status_code == 400
    assert worker.post(f"{ET}/{tid}/complete", json={"workerId": "scjg-2"}).status_code == 204


def test_lock_refuses_what_camunda_refuses(client, worker):
    start(client)
    [task] = client.get(ET).get_json()
    tid = task["id"]
    for body, fragment in (({"workerId": "w", "lockDuration": 0}, "lockDuration"),
                           ({"workerId": "w", "lockDuration": -5}, "lockDuration"),
                           ({"lockDuration": 1000}, "workerId"),
                           ({"workerId": "w"}, "lockDuration")):
        refused = worker.post(f"{ET}/{tid}/lock", json=body)
        assert refused.status_code == 400 and fragment in refused.get_json()["message"], body
    missing = worker.post(f"{ET}/no-such-task/lock", json={"workerId": "w", "lockDuration": 1000})
    assert missing.status_code == 404
    assert missing.get_json()["message"] == "External task with id no-such-task does not exist"
    officer = client.create_user("fgw_officer", ["fgw"])
    assert officer.post(f"{ET}/{tid}/lock", json={"workerId": "w", "lockDuration": 1000}).status_code == 403
    assert worker.get(f"{ET}/{tid}").get_json()["workerId"] is None   # nothing changed


def test_a_failure_without_retries_opens_an_incident_as_in_camunda(client, worker):
    case = start(client)
    [task] = fetch(worker)
    failed = worker.post(f"{ET}/{task['id']}/failure", json={"workerId": "scjg-1", "errorMessage": "seal refused"})
    assert failed.status_code == 204, failed.get_json()
    row = worker.get(f"{ET}/{task['id']}").get_json()
    assert row["retries"] == 0 and row["errorMessage"] == "seal refused"
    [incident] = client.get("/engine-rest/incident", query_string={"processInstanceId": case["id"]}).get_json()
    assert incident["incidentType"] == "failedExternalTask" and incident["configuration"] == task["id"]
    assert fetch(worker, worker_id="scjg-2") == []                    # retryTimeout 0, but no retries left


def fail(worker, task, retries, worker_id="scjg-1", retry_timeout=0, message="registration system down"):
    failed = worker.post(f"{ET}/{task['id']}/failure", json={
        "workerId": worker_id, "errorMessage": message, "retries": retries, "retryTimeout": retry_timeout})
    assert failed.status_code == 204, failed.get_json()


def test_a_failure_with_retries_left_after_an_incident_resolves_it_as_restoring_retries_does(client, worker):
    case = start(client)
    [task] = fetch(worker)
    fail(worker, task, retries=0, retry_timeout=60_000, message="one")
    assert client.get("/engine-rest/incident/count", query_string={"processInstanceId": case["id"]}).get_json() == {
        "count": 1}

    fail(worker, task, retries=2, message="again")        # Camunda's setRetriesAndManageIncidents: 0 -> 2
    assert worker.get(f"{ET}/{task['id']}").get_json()["retries"] == 2
    assert client.get("/engine-rest/incident/count", query_string={"processInstanceId": case["id"]}).get_json() == {
        "count": 0}
    assert client.get("/engine-rest/process-instance", query_string={"withIncident": "true"}).get_json() == []
    trail = client.get(f"/api/v1/process-instance/{case['id']}/dossier").get_json()["auditTrail"]["events"]
    kinds = [e["kind"] for e in trail if e["kind"].startswith(("Incident", "ExternalTaskFailed"))]
    assert kinds == ["ExternalTaskFailed", "IncidentCreated", "ExternalTaskFailed", "IncidentResolved"]
    [again] = fetch(worker, worker_id="scjg-2")
    assert again["id"] == task["id"] and again["retries"] == 2 and again["errorMessage"] == "again"


def test_a_failure_with_retries_left_wakes_a_waiting_fetch_as_restoring_retries_does(client, worker, app,
                                                                                      monkeypatch):
    monkeypatch.setattr(external_tasks, "POLL_SECONDS", 600.0)       # no periodic re-query to hide behind
    start(client)
    [task] = fetch(worker)
    fail(worker, task, retries=0)
    result = {}
    waiting = worker.__class__(app.test_client(), worker.user)
    thread = threading.Thread(target=lambda: result.setdefault(
        "tasks", fetch(waiting, worker_id="scjg-2", asyncResponseTimeout=120_000)), daemon=True)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "the fetch returned while the task had no retries left"
    fail(worker, task, retries=1)
    thread.join(timeout=60)             # woken, not left to its 2-minute timeout
    assert not thread.is_alive()
    assert [t["id"] for t in result["tasks"]] == [task["id"]]


def test_the_list_takes_camundas_lock_expiration_bounds_and_refuses_a_bad_date(client, worker):
    started = {start(client, business_key=key)["id"]: key for key in ("SHORT", "LONG", "FREE")}
    fetch(worker, businessKey="SHORT", lock=60_000)
    fetch(worker, businessKey="LONG", lock=600_000)
    bound = format_date(clock.now() + timedelta(minutes=5))

    def listed(**query):
        response = client.get(ET, query_string=query)
        assert response.status_code == 200, response.get_json()
        counted = client.get(f"{ET}/count", query_string=query).get_json()["count"]
        keys = sorted(started[t["processInstanceId"]] for t in response.get_json())
        assert counted == len(keys)
        return keys

    assert listed(lockExpirationAfter=bound) == ["LONG"]
    assert listed(lockExpirationBefore=bound) == ["SHORT"]            # an unlocked task has no lock to expire
    assert listed(lockExpirationAfter=format_date(clock.now() + timedelta(hours=1))) == []
    assert listed(lockExpirationBefore="2020-01-01T00:00:00.000+0800") == []
    assert listed(lockExpirationAfter="2020-01-01T00:00:00.000+0800") == ["LONG", "SHORT"]
    assert listed(priorityHigherThanOrEquals=str(2**40)) == []        # Camunda's long
    for path in (ET, f"{ET}/count"):
        for query, fragment in (({"lockExpirationAfter": "garbage"}, "lockExpirationAfter"),
                                ({"lockExpirationBefore": "next week"}, "lockExpirationBefore"),
                                ({"sortBy": "id"}, "Only a single sorting parameter specified"),
                                ({"sortOrder": "desc"}, "Only a single sorting parameter specified"),
                                ({"sortBy": "topicName", "sortOrder": "asc"}, "sortBy"),
                                ({"priorityLowerThanOrEquals": str(2**64)}, "priorityLowerThanOrEquals")):
            refused = client.get(path, query_string=query)
            assert refused.status_code == 400, (path, query, refused.get_json())
            assert fragment in refused.get_json()["message"], (path, query, refused.get_json())


def test_the_query_and_count_take_camundas_json_body(client, worker):
    first, second, third = (start(client, business_key=key)["id"] for key in ("A", "B", "C"))
    [locked] = fetch(worker, businessKey="B")
    ids = {t["processInstanceId"]: t["id"] for t in client.get(ET).get_json()}
    body = {"processInstanceIdIn": [first, second], "sorting": [{"sortBy": "createTime", "sortOrder": "desc"}]}
    listed = worker.post(ET, json=body)
    assert listed.status_code == 200, listed.get_json()
    assert [t["processInstanceId"] for t in listed.get_json()] == [second, first]
    paged = worker.post(ET, query_string={"firstResult": 1, "maxResults": 1}, json=body).get_json()
    assert [t["processInstanceId"] for t in paged] == [first]
    assert worker.post(f"{ET}/count", json=body).get_json() == {"count": 2}
    assert worker.post(f"{ET}/count", json={"locked": True}).get_json() == {"count": 1}
    assert worker.post(f"{ET}/count", json={"locked": False, "externalTaskIdIn": "x,y"}).get_json() == {"count": 0}
    assert worker.post(f"{ET}/count", json={"externalTaskId": ids[third], "externalTaskIdIn": [ids[first]]}
                       ).get_json() == {"count": 0}                  # every filter holds, as in Camunda
    assert worker.post(f"{ET}/count", json={"lockExpirationAfter": format_date(clock.now())}).get_json() == {
        "count": 1}
    for bad, fragment in (({"lockExpirationAfter": "garbage"}, "lockExpirationAfter"),
                          ({"sorting": [{"sortBy": "id"}]}, "sortOrder"),
                          ({"sortBy": "id"}, "Only a single sorting parameter specified"),
                          ([], "JSON object")):
        refused = worker.post(ET, json=bad)
        assert refused.status_code == 400 and fragment in refused.get_json()["message"], (bad, refused.get_json())
    assert locked["processInstanceId"] == second


def test_retries_set_for_many_tasks_at_once_resolve_their_incidents_in_one_transaction(client, worker):
    cases = [start(client, business_key=key)["id"] for key in ("A", "B", "C")]
    tasks = {t["processInstanceId"]: t for t in fetch(worker, max_tasks=3)}
    for task in tasks.values():
        fail(worker, task, retries=0)
    incidents = "/engine-rest/incident/count"
    assert client.get(incidents).get_json() == {"count": 3}

    for body, status, fragment in (
            ({"retries": 2, "externalTaskIds": [tasks[cases[0]]["id"], "no-such-task"]}, 404, "no-such-task"),
            ({"retries": 2, "externalTaskIds": []}, 400, "externalTaskIds is empty"),
            ({"retries": 2, "processInstanceIds": ["no-such-case"]}, 400, "externalTaskIds is empty"),
            ({"retries": None, "externalTaskIds": [tasks[cases[0]]["id"]]}, 400, "retries cannot be null"),
            ({"retries": -1, "externalTaskIds": [tasks[cases[0]]["id"]]}, 400, "retries"),
            ({"retries": 2, "processInstanceQuery": {"businessKey": "A"}}, 400, "processInstanceQuery"),
            ({"retries": 2, "externalTaskQuery": {"lockExpirationAfter": "garbage"}}, 400, "lockExpirationAfter")):
        refused = worker.put(f"{ET}/retries", json=body)
        assert refused.status_code == status and fragment in refused.get_json()["message"], (body, refused.get_json())
    assert client.get(incidents).get_json() == {"count": 3}          # nothing changed

    done = worker.put(f"{ET}/retries", json={"retries": 2, "externalTaskIds": [tasks[cases[0]]["id"]],
                                             "processInstanceIds": [cases[1]],
                                             "externalTaskQuery": {"processInstanceId": cases[1]}})
    assert done.status_code == 204, done.get_json()
    assert client.get(incidents).get_json() == {"count": 1}
    assert [t["retries"] for t in (worker.get(f"{ET}/{tasks[c]['id']}").get_json() for c in cases)] == [2, 2, 0]
    assert worker.put(f"{ET}/retries", json={"retries": 1, "externalTaskQuery": {"noRetriesLeft": True}}
                      ).status_code == 204
    assert client.get(incidents).get_json() == {"count": 0}
    everything = worker.put(f"{ET}/retries", json={"retries": 3, "externalTaskQuery": {}})   # as in Camunda: all
    assert everything.status_code == 204, everything.get_json()
    assert [worker.get(f"{ET}/{tasks[c]['id']}").get_json()["retries"] for c in cases] == [3, 3, 3]
    assert sorted(t["processInstanceId"] for t in fetch(worker, worker_id="scjg-2")) == sorted(cases)


def test_queries_filters_priority_and_topic_names(client, worker):
    first = start(client, business_key="A-1", applicationNo="A-1")
    second = start(client, business_key="B-2", applicationNo="B-2")
    [by_key] = fetch(worker, businessKey="B-2", max_tasks=1)
    assert by_key["processInstanceId"] == second["id"]
    [by_variable] = fetch(worker, worker_id="scjg-2", processVariables={"applicationNo": "A-1"})
    assert by_variable["processInstanceId"] == first["id"]
    assert fetch(worker, worker_id="x") == []
    assert client.get(f"{ET}/count", query_string={"topicName": "registration", "locked": "true"}).get_json() == {
        "count": 2}
    assert client.get(f"{ET}/count", query_string={"workerId": "scjg-2"}).get_json() == {"count": 1}
    assert client.get(f"{ET}/count", query_string={"notLocked": "true"}).get_json() == {"count": 0}
    assert client.get(f"{ET}/topic-names").get_json() == ["registration"]
    assert client.get(f"{ET}/topic-names", query_string={"withUnlockedTasks": "true"}).get_json() == []
    listed = client.get(ET, query_string={"sortBy": "createTime", "sortOrder": "desc"}).get_json()
    assert [t["processInstanceId"] for t in listed] == [second["id"], first["id"]]
    assert worker.post(f"{ET}/{by_key['id']}/unlock").status_code == 204
    [named] = fetch(worker, worker_id="y", variables=["applicationNo"], usePriority=True)
    assert named["variables"] == {"applicationNo": {"value": "B-2", "type": "String", "valueInfo": {}}}


def test_bad_requests_are_refused_with_a_clear_400_and_change_nothing(client, worker):
    start(client)
    for body, fragment in (
            ({"maxTasks": 1, "topics": []}, "workerId"),
            ({"workerId": "w", "maxTasks": 1, "asyncResponseTimeout": 1_800_001, "topics": []}, "1800000"),
            ({"workerId": "w", "maxTasks": 1, "topics": [{"topicName": "registration", "lockDuration": 0}]},
             "lockDuration"),
            ({"workerId": "w", "maxTasks": "many", "topics": []}, "maxTasks")):
        refused = worker.post(f"{ET}/fetchAndLock", json=body)
        assert refused.status_code == 400, body
        assert fragment in refused.get_json()["message"]
    [task] = fetch(worker)
    tid = task["id"]
    for verb, body, fragment in (
            ("failure", {"workerId": "scjg-1", "retries": -1}, "retries"),
            ("failure", {"workerId": "scjg-1", "retries": 1, "retryTimeout": -5}, "retryTimeout"),
            ("complete", {"workerId": "scjg-1", "variables": {"n": {"value": "abc", "type": "Integer"}}}, "Integer"),
            ("bpmnError", {"workerId": "scjg-1"}, "errorCode"),
            ("extendLock", {"workerId": "scjg-1", "newDuration": 0}, "newDuration")):
        refused = worker.post(f"{ET}/{tid}/{verb}", json=body)
        assert refused.status_code == 400, (verb, refused.get_json())
        assert fragment in refused.get_json()["message"]
    null = worker.put(f"{ET}/{tid}/retries", json={"retries": None})
    assert null.status_code == 400 and null.get_json()["message"] == "The number of retries cannot be null."
    unchanged = worker.get(f"{ET}/{tid}").get_json()
    assert unchanged["retries"] is None and unchanged["workerId"] == "scjg-1" and unchanged["errorMessage"] is None


def test_on_postgresql_a_task_created_by_another_server_process_wakes_the_waiting_fetch(
        client, worker, app, settings, monkeypatch):
    if settings.is_sqlite:
        pytest.skip("one SQLite server process: in-process wake-ups only")
    from app import create_app
    from engine.context import Engine
    monkeypatch.setattr(external_tasks, "POLL_SECONDS", 60.0)        # no periodic re-query to hide behind
    other_engine = Engine(settings)                                  # a second server process, as far as
    other_app = create_app(settings, other_engine)                   # the signal and its NOTIFY know
    try:
        other = client.__class__(other_app.test_client())
        result = {}
        thread = threading.Thread(target=lambda: result.setdefault(
            "tasks", fetch(worker.__class__(app.test_client(), worker.user), asyncResponseTimeout=5_000)))
        thread.start()
        time.sleep(0.5)
        created = time.monotonic()
        case = start(other)
        thread.join(timeout=10)
        assert [t["processInstanceId"] for t in result["tasks"]] == [case["id"]]
        assert time.monotonic() - created < 4.0         # before the 5 s timeout: the wake-up answered it
    finally:
        scheduler = other_app.extensions.get("approvals_scheduler")
        if scheduler is not None:
            scheduler.stop()
        other_engine.close()


def test_a_long_poll_with_no_server_thread_to_wait_on_answers_at_once(client, worker, monkeypatch):
    from contextlib import contextmanager

    from api import serving

    @contextmanager
    def no_thread_free():
        yield False                                  # what the request pool says when every thread is taken

    monkeypatch.setattr(serving, "step_aside", no_thread_free)
    began = time.monotonic()
    assert fetch(worker, asyncResponseTimeout=5_000) == []
    assert time.monotonic() - began < 2.5            # not held for the 5 s: it would hold up the queue


@pytest.mark.parametrize("cache", ["cached", "restored"])
def test_the_error_boundary_sets_the_code_and_message_variables_the_designer_named(client, worker, engine,
                                                                                   monkeypatch, cache):
    if cache == "restored":
        monkeypatch.setattr(engine.workflows, "size", 0)
    assert client.deploy(FIXTURES / "error_variables.bpmn", name="errors").status_code == 200
    case = client.start("error_from_worker", typed(applicantName="某某"))
    [task] = fetch(worker, topic="name.check")
    thrown = worker.post(f"{ET}/{task['id']}/bpmnError", json={
        "workerId": "scjg-1", "errorCode": "REJ", "errorMessage": "name taken"})
    assert thrown.status_code == 204, thrown.get_json()
    [fix] = client.tasks(processInstanceId=case["id"])
    assert fix["taskDefinitionKey"] == "W_fix"
    variables = client.get(f"/engine-rest/process-instance/{case['id']}/variables").get_json()
    assert {name: v["value"] for name, v in variables.items()} == {"applicantName": "某某", "code": "REJ",
                                                                  "msg": "name taken"}

    case = client.start("error_from_subprocess")         # an error end event, its message on the bpmn:error
    [fix] = client.tasks(processInstanceId=case["id"])
    assert fix["taskDefinitionKey"] == "S_fix"
    variables = client.get(f"/engine-rest/process-instance/{case['id']}/variables").get_json()
    assert {name: v["value"] for name, v in variables.items()} == {"code": "INCOMPLETE",
                                                                  "msg": "materials incomplete"}
