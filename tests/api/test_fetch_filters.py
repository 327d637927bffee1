"""fetchAndLock's topic filters, several topics in one request, its order, and its
statements: built once per shape of a request, with the values bound
(engine/external_tasks.py), so a worker asking the same shape with other values gets
its own tasks from the same statements."""
from __future__ import annotations

from datetime import timedelta

import pytest

from engine import external_tasks
from engine.clock import clock
from tests.conftest import FIXTURES

ET = "/engine-rest/external-task"
SOURCE = (FIXTURES / "external_registration.bpmn").read_text()


@pytest.fixture
def cases(client):
    """Four registrations a minute apart: A and C of company_setup (no tenant), B of
    company_setup_b (tenant "sz"), D of company_setup_b; each with applicationNo."""
    assert client.deploy(FIXTURES / "external_registration.bpmn", name="setup").status_code == 200
    other = SOURCE.replace('id="company_setup"', 'id="company_setup_b"')
    assert client.deploy(name="setup-sz", extra={"setup_b.bpmn": other}, tenant_id="sz").status_code == 200
    definitions = {d["key"]: d["id"] for d in client.get("/engine-rest/process-definition").get_json()}
    worker = client.create_user("scjg_system", ["external-workers"])
    started = {}
    for name, key in (("A", "company_setup"), ("B", "company_setup_b"), ("C", "company_setup"),
                      ("D", "company_setup_b")):
        clock.set(clock.now() + timedelta(minutes=1))
        body = {"businessKey": name, "variables": {"applicationNo": {"value": name, "type": "String"}}}
        response = client.post(f"/engine-rest/process-definition/{definitions[key]}/start", json=body)
        assert response.status_code == 200, response.get_json()
        started[response.get_json()["id"]] = name
    return worker, definitions, started


def fetch(worker, started, *topics, unlock=True, **options):
    """The cases (by name) whose registration the worker locks, in the answer's order;
    with `unlock`, the locks are lifted again so the next fetch sees every task."""
    body = {"workerId": "w", "maxTasks": 10,
            "topics": [{"topicName": "registration", "lockDuration": 60_000, **t} for t in topics or ({},)],
            **options}
    response = worker.post(f"{ET}/fetchAndLock", json=body)
    assert response.status_code == 200, response.get_json()
    locked = response.get_json()
    for task in locked if unlock else ():
        assert worker.post(f"{ET}/{task['id']}/unlock").status_code == 204
    return "".join(started[t["processInstanceId"]] for t in locked)


def test_each_filter_of_a_topic_selects_its_tasks(cases):
    worker, definitions, started = cases
    a_key, b_key = "company_setup", "company_setup_b"
    assert fetch(worker, started) == "ABCD"
    assert fetch(worker, started, {"processDefinitionKey": b_key}) == "BD"
    assert fetch(worker, started, {"processDefinitionKeyIn": [a_key, b_key]}) == "ABCD"
    assert fetch(worker, started, {"processDefinitionIdIn": [definitions[a_key]]}) == "AC"
    assert fetch(worker, started, {"processDefinitionId": definitions[b_key],
                                   "processDefinitionIdIn": [definitions[a_key]]}) == "ABCD"
    assert fetch(worker, started, {"tenantIdIn": ["sz"]}) == "BD"
    assert fetch(worker, started, {"tenantIdIn": ["sz", "wx"]}) == "BD"
    assert fetch(worker, started, {"withoutTenantId": True}) == "AC"
    assert fetch(worker, started, {"businessKey": "C"}) == "C"
    assert fetch(worker, started, {"businessKey": "C", "processDefinitionKey": b_key}) == ""
    assert fetch(worker, started, {"processVariables": {"applicationNo": "D"}}) == "D"
    assert fetch(worker, started, {"topicName": "seal"}) == ""


def test_several_topics_in_one_request_lock_what_any_of_them_selects(cases):
    worker, _, started = cases
    assert fetch(worker, started, {"businessKey": "A"}, {"businessKey": "D"}) == "AD"
    assert fetch(worker, started, {"businessKey": "A"}, {"tenantIdIn": ["sz"]}) == "ABD"
    assert fetch(worker, started, {"topicName": "seal"}, {"withoutTenantId": True}) == "AC"


def test_the_order_and_the_number_locked(cases):
    worker, _, started = cases
    assert fetch(worker, started, sorting=[{"sortBy": "createTime", "sortOrder": "desc"}]) == "DCBA"
    assert fetch(worker, started, sorting=[{"sortBy": "createTime", "sortOrder": "asc"}]) == "ABCD"
    assert fetch(worker, started, maxTasks=2, sorting=[{"sortBy": "createTime", "sortOrder": "desc"}]) == "DC"
    assert fetch(worker, started, maxTasks=3, usePriority=True) == "ABC"
    assert fetch(worker, started, {"processVariables": {"applicationNo": "B"}}, {"businessKey": "D"},
                 maxTasks=1) == "B"
    assert fetch(worker, started, maxTasks=3, unlock=False) == "ABC"        # locked now
    assert fetch(worker, started) == "D"
    assert fetch(worker, started, maxTasks=0) == ""


def test_a_request_of_the_same_shape_reuses_the_statements_and_another_builds_its_own(cases):
    worker, _, started = cases
    external_tasks._FETCHES.clear()
    assert fetch(worker, started, {"businessKey": "A"}) == "A"
    built = len(external_tasks._FETCHES)
    assert built == 2                                   # the read before the lock, and the lock's
    assert fetch(worker, started, {"businessKey": "C"}) == "C"
    assert len(external_tasks._FETCHES) == built
    assert fetch(worker, started, {"tenantIdIn": ["sz"]}) == "BD"
    assert fetch(worker, started, {"tenantIdIn": ["sz", "wx"]}) == "BD"      # two tenants: a shape of its own
    assert fetch(worker, started, {"tenantIdIn": ["wx", "sz"]}) == "BD"
    assert len(external_tasks._FETCHES) == built + 4


def test_a_locked_task_is_sent_as_its_schema_would_dump_it(cases):
    """fetchAndLock is sent as api/external_task.py renders it, without marshmallow's dump
    (api/blueprint.py, rendered=True): the dump must change nothing."""
    from api.external_task import LockedExternalTaskDto
    worker, _, _ = cases
    body = {"workerId": "w", "maxTasks": 2, "topics": [{"topicName": "registration", "lockDuration": 60_000,
                                                       "includeExtensionProperties": True}]}
    locked = worker.post(f"{ET}/fetchAndLock", json=body).get_json()
    assert len(locked) == 2 and locked[0]["variables"] and locked[0]["extensionProperties"]
    assert LockedExternalTaskDto(many=True).dump(locked) == locked


def test_the_version_tag_selects_the_tasks_of_the_definitions_so_tagged(client):
    """camunda:versionTag: a worker for the 2025 rules takes only cases started on them."""
    for tag in ("2024", "2025"):
        tagged = SOURCE.replace('id="company_setup"', f'id="company_setup" camunda:versionTag="{tag}"')
        assert client.deploy(name=f"setup-{tag}", extra={"setup.bpmn": tagged}).status_code == 200
    definitions = client.get("/engine-rest/process-definition", query_string={"key": "company_setup"}).get_json()
    by_tag = {d["versionTag"]: d["id"] for d in definitions}
    worker = client.create_user("scjg_system", ["external-workers"])
    started = {}
    for name, tag in (("A", "2024"), ("B", "2025"), ("C", "2024")):
        clock.set(clock.now() + timedelta(minutes=1))
        response = client.post(f"/engine-rest/process-definition/{by_tag[tag]}/start", json={"businessKey": name})
        assert response.status_code == 200, response.get_json()
        started[response.get_json()["id"]] = name
    assert fetch(worker, started, {"processDefinitionVersionTag": "2025"}) == "B"
    assert fetch(worker, started, {"processDefinitionVersionTag": "2024"}) == "AC"
    assert fetch(worker, started, {"processDefinitionVersionTag": "1.0"}) == ""
    assert fetch(worker, started, {"processDefinitionVersionTag": "2024"}, {"businessKey": "B"}) == "ABC"
    [task] = worker.post(f"{ET}/fetchAndLock", json={"workerId": "w", "maxTasks": 1, "topics": [
        {"topicName": "registration", "lockDuration": 60_000, "processDefinitionVersionTag": "2025"}]}).get_json()
    assert task["processDefinitionVersionTag"] == "2025" and started[task["processInstanceId"]] == "B"


def test_a_topic_key_this_server_does_not_know_is_refused_not_ignored(cases):
    worker, _, _ = cases
    body = {"workerId": "w", "maxTasks": 10, "topics": [
        {"topicName": "registration", "lockDuration": 60_000, "processDefinitionVersionTagg": "2025"}]}
    refused = worker.post(f"{ET}/fetchAndLock", json=body)
    assert refused.status_code == 400
    assert "processDefinitionVersionTagg" in refused.get_json()["message"]
    assert worker.get(f"{ET}/count", query_string={"locked": "true"}).get_json() == {"count": 0}
