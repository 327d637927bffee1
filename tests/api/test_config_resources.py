"""Item configuration as data: `.json` resources deployed with the diagrams and read by
expressions through config(name)."""
from __future__ import annotations

import json

import pytest

from tests.api.test_deployment import minimal
from tests.conftest import typed

ITEMS = {"review": {"departments": {"low": ["fgw"], "high": ["fgw", "zjj"]}, "limit": "5wd"}}


def routed(condition):
    return minimal(key="routed", condition=condition)



def offered(departments_expression):
    return minimal(key="routed").replace('camunda:candidateGroups="fgw"',
                                         f'camunda:candidateGroups="{departments_expression}"')


def test_expressions_read_the_deployed_configuration_and_a_redeploy_changes_it(client):
    expression = "${','.join(config('items')['review']['departments'][risk])}"
    r = client.deploy(extra={"routed.bpmn": offered(expression), "items.json": json.dumps(ITEMS)})
    assert r.status_code == 200, r.get_json()
    names = {x["name"] for x in client.get(f"/engine-rest/deployment/{r.get_json()['id']}/resources").get_json()}
    assert "items.json" in names
    first = client.start("routed", typed(risk="high"))
    assert client.tasks(processInstanceId=first["id"])[0]["candidateGroups"] == ["fgw", "zjj"]

    changed = {"review": {**ITEMS["review"], "departments": {"low": [], "high": ["zrzy"]}}}
    assert client.deploy(extra={"items.json": json.dumps(changed)}).status_code == 200
    second = client.start("routed", typed(risk="high"))
    assert client.tasks(processInstanceId=second["id"])[0]["candidateGroups"] == ["zrzy"]
    assert client.tasks(processInstanceId=first["id"])[0]["candidateGroups"] == ["fgw", "zjj"]


class TestTheTestClockSetBack:
    @pytest.fixture
    def settings(self, settings):
        settings.test_clock = True
        return settings

    def test_the_last_deployed_configuration_is_read_even_with_the_clock_set_back(self, client):
        """The latest is the last deployed (deployment order), not the one with the latest
        deployment time: a demo server's clock set back to 2025 must not hide a new file."""
        expression = "${','.join(config('items')['review']['departments'][risk])}"
        assert client.put("/api/v1/test/clock", json={"now": "2026-12-01T09:00:00+08:00"}).status_code == 200
        assert client.deploy(extra={"routed.bpmn": offered(expression),
                                    "items.json": json.dumps(ITEMS)}).status_code == 200
        assert client.put("/api/v1/test/clock", json={"now": "2025-10-09T09:00:00+08:00"}).status_code == 200
        changed = {"review": {**ITEMS["review"], "departments": {"low": [], "high": ["zrzy"]}}}
        assert client.deploy(extra={"items.json": json.dumps(changed)}).status_code == 200
        case = client.start("routed", typed(risk="high"))
        assert client.tasks(processInstanceId=case["id"])[0]["candidateGroups"] == ["zrzy"]


def test_broken_configuration_deploys_nothing_and_says_where(client):
    r = client.deploy(extra={"routed.bpmn": routed("True"), "items.json": '{"review": [1, 2,]}'})
    assert r.status_code == 400
    body = r.get_json()
    assert "items.json" in body["message"] and "line 1" in body["message"]
    assert client.get("/engine-rest/process-definition").get_json() == []
    r = client.deploy(extra={"items.json": "[1, 2]"})
    assert r.status_code == 400 and "JSON object" in r.get_json()["message"]


def test_a_missing_configuration_is_a_clear_error_and_changes_nothing(client):
    assert client.deploy(extra={"routed.bpmn": routed('config("nowhere")["x"] == 1')}).status_code == 200
    instance = client.start("routed")
    task = client.tasks(processInstanceId=instance["id"])[0]
    r = client.complete(task["id"])
    assert r.status_code == 400 and "nowhere.json" in r.get_json()["message"]
    assert client.tasks(processInstanceId=instance["id"])[0]["id"] == task["id"]


def test_a_model_changing_what_it_read_does_not_change_the_configuration(client):
    mutate = minimal(key="routed").replace(
        'camunda:candidateGroups="fgw"',
        'camunda:candidateGroups="${config(\'items\')[\'review\'][\'departments\'][\'high\'].pop()}"')
    assert client.deploy(extra={"routed.bpmn": mutate, "items.json": json.dumps(ITEMS)}).status_code == 200
    groups = [client.tasks(processInstanceId=client.start("routed")["id"])[0]["candidateGroups"] for _ in range(2)]
    assert groups == [["zjj"], ["zjj"]]          # each case pops from its own copy
