"""GET /process-definition[/count] as Camunda 7.22's process definition query: the filters
whose data a definition holds, a 400 naming any other of Camunda's, and the definition's
versionTag, historyTimeToLive and startableInTasklist as Camunda shows them."""
from __future__ import annotations

import pytest

PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="D" targetNamespace="t">
  <bpmn:process id="{key}" name="{name}" isExecutable="true" {attributes}>
    <bpmn:startEvent id="S"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="T" camunda:candidateGroups="fgw"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T" />
    <bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def process(key, name=None, **attributes):
    written = " ".join(f'camunda:{attr}="{value}"' for attr, value in attributes.items())
    return PROCESS.format(key=key, name=name or key, attributes=written)


def _keys(client, **query):
    r = client.get("/engine-rest/process-definition", query_string=query)
    assert r.status_code == 200, r.get_json()
    count = client.get("/engine-rest/process-definition/count", query_string=query)
    assert count.status_code == 200 and count.get_json()["count"] == len(r.get_json())
    return [f"{d['key']}:{d['version']}" for d in r.get_json()]


@pytest.fixture
def catalogue(client):
    """Three processes: one tagged v1.2 and not startable in Tasklist, one tagged v2.0 in
    two versions, one untagged for a tenant."""
    assert client.deploy(extra={"vt.bpmn": process("vt", "Version tag", versionTag="v1.2",
                                                   historyTimeToLive="P30D", isStartableInTasklist="false")},
                         name="a").status_code == 200
    for name in ("Permit", "Permit v2"):
        assert client.deploy(extra={"permit.bpmn": process("permit", name, versionTag="v2.0",
                                                           historyTimeToLive="180")}, name="b").status_code == 200
    assert client.deploy(extra={"hall.bpmn": process("hall", "Hall")}, name="c", tenant_id="t1").status_code == 200
    return client


def test_a_definition_shows_its_version_tag_history_time_to_live_and_tasklist_flag_as_camunda_does(catalogue):
    shown = {d["key"]: d for d in catalogue.get("/engine-rest/process-definition",
                                                query_string={"latestVersion": "true"}).get_json()}
    assert (shown["vt"]["versionTag"], shown["vt"]["historyTimeToLive"], shown["vt"]["startableInTasklist"]) == \
        ("v1.2", 30, False)
    assert (shown["permit"]["versionTag"], shown["permit"]["historyTimeToLive"],
            shown["permit"]["startableInTasklist"]) == ("v2.0", 180, True)
    assert (shown["hall"]["historyTimeToLive"], shown["hall"]["versionTag"]) == (None, None)
    by_key = catalogue.get("/engine-rest/process-definition/key/vt").get_json()
    assert by_key["historyTimeToLive"] == 30


def test_tasklists_start_dialog_lists_only_the_processes_startable_there(catalogue):
    # what Camunda Tasklist's "Start process" dialog asks
    query = {"latestVersion": "true", "active": "true", "startableInTasklist": "true",
             "startablePermissionCheck": "true", "sortBy": "name", "sortOrder": "asc", "firstResult": 0,
             "maxResults": 15}
    assert _keys(catalogue, **query) == ["hall:1", "permit:2"]
    assert _keys(catalogue, notStartableInTasklist="true") == ["vt:1"]
    assert _keys(catalogue, startableInTasklist="false") == ["hall:1", "permit:1", "permit:2", "vt:1"]


def test_the_start_dialog_lists_only_what_the_user_may_start(client):
    client.deploy(extra={"open.bpmn": process("open"),
                         "fgw_only.bpmn": process("fgw_only", candidateStarterGroups="fgw")})
    clerk = client.create_user("clerk", groups=["zjj"])
    assert _keys(clerk, startablePermissionCheck="true") == ["open:1"]
    page = clerk.get("/engine-rest/process-definition",
                     query_string={"startablePermissionCheck": "true", "maxResults": 1, "firstResult": 1})
    assert page.get_json() == []
    assert _keys(clerk) == ["fgw_only:1", "open:1"]
    assert _keys(client, startablePermissionCheck="true") == ["fgw_only:1", "open:1"]


@pytest.mark.parametrize("query, expected", [
    ({"versionTag": "v1.2"}, ["vt:1"]),
    ({"versionTag": "v9"}, []),
    ({"versionTagLike": "v2%"}, ["permit:1", "permit:2"]),
    ({"withoutVersionTag": "true"}, ["hall:1"]),
    ({"key": "permit"}, ["permit:1", "permit:2"]),
    ({"keysIn": "vt,hall"}, ["hall:1", "vt:1"]),
    ({"key": "vt", "keysIn": "permit,hall"}, []),
    ({"keyLike": "p%"}, ["permit:1", "permit:2"]),
    ({"name": "Permit v2"}, ["permit:2"]),
    ({"nameLike": "%tag"}, ["vt:1"]),
    ({"version": 2}, ["permit:2"]),
    ({"latestVersion": "true"}, ["hall:1", "permit:2", "vt:1"]),
    ({"latestVersion": "true", "name": "Permit"}, []),
    ({"resourceName": "hall.bpmn"}, ["hall:1"]),
    ({"resourceNameLike": "%t.bpmn"}, ["permit:1", "permit:2", "vt:1"]),
    ({"tenantIdIn": "t1"}, ["hall:1"]),
    ({"tenantIdIn": "t1", "includeProcessDefinitionsWithoutTenantId": "true", "key": "vt"}, ["vt:1"]),
    ({"withoutTenantId": "true"}, ["permit:1", "permit:2", "vt:1"]),
    ({"suspended": "true"}, []),
    ({"active": "true", "keyLike": "v%"}, ["vt:1"]),
    ({"sortBy": "versionTag", "sortOrder": "desc"}, ["hall:1", "permit:1", "permit:2", "vt:1"]),
    ({"sortBy": "versionTag", "sortOrder": "asc"}, ["vt:1", "permit:1", "permit:2", "hall:1"]),
    ({"sortBy": "tenantId", "sortOrder": "desc"}, ["permit:1", "permit:2", "vt:1", "hall:1"]),
    ({"sortBy": "tenantId", "sortOrder": "asc"}, ["hall:1", "permit:1", "permit:2", "vt:1"]),
    ({"sortBy": "deployTime", "sortOrder": "desc"}, ["hall:1", "permit:2", "permit:1", "vt:1"]),
])
def test_camundas_filters_and_orders_narrow_the_list_and_its_count(catalogue, query, expected):
    assert _keys(catalogue, **query) == expected


def test_the_id_deployment_and_deploy_time_filters(catalogue):
    [vt] = catalogue.get("/engine-rest/process-definition", query_string={"key": "vt"}).get_json()
    assert _keys(catalogue, processDefinitionId=vt["id"]) == ["vt:1"]
    assert _keys(catalogue, processDefinitionIdIn=f"{vt['id']},nope") == ["vt:1"]
    assert _keys(catalogue, deploymentId=vt["deploymentId"]) == ["vt:1"]
    deployed = catalogue.get(f"/engine-rest/deployment/{vt['deploymentId']}").get_json()["deploymentTime"]
    assert _keys(catalogue, deployedAt=deployed) == ["vt:1"]
    assert "vt:1" not in _keys(catalogue, deployedAfter=deployed)
    assert _keys(catalogue, deployedAfter="2000-01-01T00:00:00.000+0800") == [
        "hall:1", "permit:1", "permit:2", "vt:1"]


@pytest.mark.parametrize("parameter, value", [
    ("category", "http://bpmn.io/schema/bpmn"), ("categoryLike", "%"), ("startableBy", "admin"),
    ("incidentType", "failedExternalTask"), ("incidentMessageLike", "%"),
])
def test_camundas_other_parameters_are_a_400_naming_them(catalogue, parameter, value):
    for path in ("/engine-rest/process-definition", "/engine-rest/process-definition/count"):
        r = catalogue.get(path, query_string={parameter: value})
        assert r.status_code == 400, (path, r.get_json())
        assert f"parameter {parameter} of Camunda's process definition query is not supported here" in \
            r.get_json()["message"]


@pytest.mark.parametrize("query, said", [
    ({"sortBy": "bogus", "sortOrder": "asc"}, "sortBy"),
    ({"sortBy": "key"}, "Only a single sorting parameter specified"),
    ({"deployedAfter": "yesterday"}, "deployedAfter"),
])
def test_a_bad_order_or_date_is_a_400(catalogue, query, said):
    r = catalogue.get("/engine-rest/process-definition", query_string=query)
    assert r.status_code == 400 and said in r.get_json()["message"]


def test_a_parameter_camunda_does_not_have_is_ignored_as_camunda_ignores_it(catalogue):
    assert _keys(catalogue, _="1712345678") == ["hall:1", "permit:1", "permit:2", "vt:1"]


@pytest.mark.parametrize("value", ["P30", "PT1H", "-1", "thirty"])
def test_a_history_time_to_live_camunda_refuses_is_refused_at_deploy_naming_the_process(client, value):
    r = client.deploy(extra={"bad.bpmn": process("bad", historyTimeToLive=value)})
    assert r.status_code == 400
    [problem] = r.get_json()["details"]["bad.bpmn"]["errors"]
    assert "historyTimeToLive" in problem["message"] and value in problem["message"]
    assert problem["mainElementId"] == "bad"
    assert client.get("/engine-rest/process-definition/count").get_json()["count"] == 0
