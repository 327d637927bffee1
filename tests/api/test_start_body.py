"""POST /process-definition/{id}/start (by key, by a tenant's key) with Camunda 7.22's
body: what is not supported here (starting before another activity, skipping listeners
or mappings, a CMMN case) is a 400 naming it and starts nothing, never a normal start
that dropped it; withVariablesInReturn answers the case's variables."""
from __future__ import annotations

import pytest

from tests.api.test_process_definitions import process
from tests.conftest import typed


@pytest.fixture
def routes(client):
    """The three start routes of one process, for no tenant and for tenant t1."""
    assert client.deploy(extra={"permit.bpmn": process("permit")}).status_code == 200
    assert client.deploy(extra={"permit.bpmn": process("permit")}, tenant_id="t1").status_code == 200
    [mine] = client.get("/engine-rest/process-definition", query_string={"key": "permit",
                                                                         "withoutTenantId": "true"}).get_json()
    base = "/engine-rest/process-definition"
    return [f"{base}/key/permit/start", f"{base}/key/permit/tenant-id/t1/start", f"{base}/{mine['id']}/start"]


def cases(client) -> int:
    running = client.get("/engine-rest/process-instance/count").get_json()["count"]
    return running + client.get("/engine-rest/history/process-instance/count").get_json()["count"]


@pytest.mark.parametrize("field, value, said", [
    ("startInstructions", [{"type": "startBeforeActivity", "activityId": "T"}], "a case starts at its start event"),
    ("skipIoMappings", True, "only with startInstructions"),
    ("skipCustomListeners", True, "only with startInstructions"),
    ("caseInstanceId", "c-1", "there are no CMMN cases here"),
])
def test_what_is_not_supported_is_a_400_naming_it_and_nothing_starts(client, routes, field, value, said):
    for route in routes:
        r = client.post(route, json={"variables": typed(amount=5), field: value})
        assert r.status_code == 400, (route, r.get_json())
        message = r.get_json()["message"]
        assert f"parameter {field} of Camunda's process start is not supported here" in message, message
        assert said in message and "nothing was started" in message, message
    assert cases(client) == 0


@pytest.mark.parametrize("extra", [{"startInstructions": []}, {"startInstructions": None},
                                   {"skipIoMappings": False, "skipCustomListeners": False},
                                   {"caseInstanceId": None}])
def test_camundas_defaults_start_the_case_as_usual(client, routes, extra):
    for route in routes:
        r = client.post(route, json={"variables": typed(amount=5), **extra})
        assert r.status_code == 200, (route, r.get_json())
    assert cases(client) == 2 * len(routes)         # each running, and in the history


def test_with_variables_in_return_answers_the_cases_variables_on_every_route(client, routes):
    for route in routes:
        r = client.post(route, json={"variables": typed(amount=5), "withVariablesInReturn": True})
        assert r.status_code == 200, (route, r.get_json())
        assert r.get_json()["variables"] == {"amount": {"value": 5, "type": "Integer", "valueInfo": {}}}
        assert "variables" not in client.post(route, json={"variables": typed(amount=5)}).get_json()
