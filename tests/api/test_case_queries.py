"""The lists of cases and of their history as a service hall's front end asks for them,
with Camunda 7's query parameters: GET /process-instance, /history/process-instance,
/history/activity-instance and /history/variable-instance (and their counts).

Four cases that differ in what the filters read (the hall, below); each filter is asked
as an administrator, who sees them all, and as the officer of fgw, who sees the two he
takes part in.  A list and its count always agree.  A parameter of Camunda's that is not
supported here is a 400 naming it (not a list that ignored it), as are a malformed date,
an unknown sortBy, and a sortBy without its sortOrder."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from engine.clock import clock
from tests.conftest import FIXTURES, typed
from tests.security.models import HEAD, one_task

CN = timezone(timedelta(hours=8))
P1, P2, S1, X = "JS-2025-001", "JS-2025-002", "SZ-2025-001", "SZ-2025-0100"
ALL, OFFICERS = {P1, P2, S1, X}, {P1, P2}
CASES, HISTORY = "/engine-rest/process-instance", "/engine-rest/history/process-instance"
ACTIVITIES, VARIABLES = "/engine-rest/history/activity-instance", "/engine-rest/history/variable-instance"


def reviewed(key: str, name: str) -> str:
    """start → 审查 (offered to fgw) → end, in a process named `name`."""
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" name="{name}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T" />
    <bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def at(day: int, hour: int = 9) -> None:
    clock.set(datetime(2025, 3, day, hour, tzinfo=CN))


def ok(response) -> object:
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def hall(client):
    """P1: 施工许可 v1, started by the administrator on 1 March, completed by fgw1 on 2 March.
    P2: 施工许可 v2, started by fgw1 on 5 March, waiting in 审查.
    S1: 刻章备案 of tenant sz, started on 10 March, deleted (externally terminated) on 11 March.
    X: 企业开办, started on 12 March, its registration out of retries: an open incident.
    Returns (the officer, {business key: case id}, {definition key: deployment id})."""
    officer = client.create_user("fgw1", ["fgw"])
    at(1, 8)
    first = ok(client.deploy(FIXTURES / "external_registration.bpmn", name="hall",
                             extra={"permit.bpmn": reviewed("permit", "施工许可")}))
    seal = ok(client.deploy(name="seal", tenant_id="sz", extra={"seal.bpmn": reviewed("seal", "刻章备案")}))
    ids = {}
    at(1)
    ids[P1] = client.start("permit", typed(applicant="张三", amount=100), P1)["id"]
    at(2, 10)
    [task] = officer.tasks(processInstanceId=ids[P1])
    assert officer.complete(task["id"]).status_code == 204
    at(4)
    ok(client.deploy(name="hall", extra={"permit.bpmn": reviewed("permit", "施工许可（新）")}))
    at(5)
    ids[P2] = officer.start("permit", typed(applicant="李四"), P2)["id"]
    at(10)
    [seal_definition] = seal["deployedProcessDefinitions"].values()
    ids[S1] = ok(client.post(f"/engine-rest/process-definition/{seal_definition['id']}/start", json={
        "businessKey": S1, "variables": typed(applicant="王五")}))["id"]
    at(11)
    assert client.delete(f"{CASES}/{ids[S1]}").status_code == 204
    at(12)
    ids[X] = client.start("company_setup", typed(applicantName="苏州某某科技有限公司"), X)["id"]
    worker = client.create_user("scjg_system", ["external-workers"])
    [locked] = ok(worker.post("/engine-rest/external-task/fetchAndLock", json={
        "workerId": "scjg-1", "maxTasks": 1, "topics": [{"topicName": "registration", "lockDuration": 60000}]}))
    assert worker.post(f"/engine-rest/external-task/{locked['id']}/failure", json={
        "workerId": "scjg-1", "errorMessage": "credit code rejected", "retries": 0, "retryTimeout": 0}
    ).status_code == 204
    return officer, ids, {"hall": first["id"], "seal": seal["id"]}


def business_keys(reader, path: str, query: dict) -> set:
    """The business keys of the cases `reader` lists with `query`, checked against the count."""
    listed = ok(reader.get(path, query_string=query))
    assert ok(reader.get(f"{path}/count", query_string=query)) == {"count": len(listed)}, query
    return {case["businessKey"] for case in listed}


def refused(reader, path: str, query: dict) -> str:
    for where in (path, f"{path}/count"):
        response = reader.get(where, query_string=query)
        assert response.status_code == 400, (where, query, response.get_json())
    return response.get_json()["message"]


def check_filters(client, officer, path, table) -> None:
    for query, everyone, officers in table:
        assert business_keys(client, path, query) == everyone, ("administrator", query)
        assert business_keys(officer, path, query) == officers, ("officer", query)


def test_the_history_of_cases_filters_by_camundas_parameters(client, hall):
    officer, ids, deployments = hall
    check_filters(client, officer, HISTORY, [
        ({}, ALL, OFFICERS),
        ({"processInstanceBusinessKeyLike": "%-001"}, {P1, S1}, {P1}),
        # LIKE minds case and takes \ as its escape on both stores (SQLite's ignored case and had no escape)
        ({"processInstanceBusinessKeyLike": "js%"}, set(), set()),
        ({"processInstanceBusinessKeyLike": "JS\\-2025%"}, {P1, P2}, {P1, P2}),
        ({"processInstanceBusinessKeyIn": f"{P2},{S1}"}, {P2, S1}, {P2}),
        ({"processDefinitionKeyIn": "permit,seal"}, {P1, P2, S1}, OFFICERS),
        ({"processDefinitionKeyNotIn": "permit"}, {S1, X}, set()),
        ({"processDefinitionKeyNotIn": "permit,company_setup"}, {S1}, set()),
        ({"processDefinitionName": "施工许可"}, {P1}, {P1}),
        ({"processDefinitionNameLike": "施工许可%"}, {P1, P2}, OFFICERS),
        ({"startedBefore": "2025-03-04T00:00:00.000+0800"}, {P1}, {P1}),
        ({"startedAfter": "2025-03-05T00:00:00.000+0800"}, {P2, S1, X}, {P2}),
        ({"startedAfter": "2025-03-01T00:00:00.000+0800", "startedBefore": "2025-03-10T12:00:00.000+0800"},
         {P1, P2, S1}, OFFICERS),
        ({"finishedBefore": "2025-03-03T00:00:00.000+0800"}, {P1}, {P1}),
        ({"finishedAfter": "2025-03-02T00:00:00.000+0800"}, {P1, S1}, {P1}),
        ({"finishedAfter": "2025-03-02T03:00:00.000Z"}, {S1}, set()),          # 2 March 11:00 in the hall
        ({"startedBy": "fgw1"}, {P2}, {P2}),
        ({"startedBy": "admin"}, {P1, S1, X}, {P1}),
        ({"active": "true"}, {P2, X}, {P2}),
        ({"completed": "true"}, {P1}, {P1}),
        ({"externallyTerminated": "true"}, {S1}, set()),
        ({"internallyTerminated": "true"}, set(), set()),
        ({"suspended": "true"}, set(), set()),
        ({"active": "false"}, ALL, OFFICERS),                                   # Camunda: false is no filter
        ({"tenantIdIn": "sz"}, {S1}, set()),
        ({"tenantIdIn": "sz,other"}, {S1}, set()),
        ({"withoutTenantId": "true"}, {P1, P2, X}, OFFICERS),
        ({"activeActivityIdIn": "T"}, {P2}, {P2}),
        ({"activeActivityIdIn": "T,Task_register"}, {P2, X}, {P2}),
        ({"executedActivityIdIn": "T"}, {P1, S1}, {P1}),
        ({"executedActivityAfter": "2025-03-10T00:00:00.000+0800"}, {S1, X}, set()),
        ({"executedActivityBefore": "2025-03-02T00:00:00.000+0800"}, {P1}, {P1}),
        ({"executedActivityAfter": "2025-03-02T00:00:00.000+0800",
          "executedActivityBefore": "2025-03-03T00:00:00.000+0800"}, {P1}, {P1}),
        ({"rootProcessInstances": "true"}, ALL, OFFICERS),
        ({"variables": "applicant_eq_张三"}, {P1}, {P1}),
        ({"variables": "applicant_neq_张三"}, {P2, S1}, {P2}),
        ({"variables": "applicant_neq_张三,applicant_neq_李四"}, {S1}, set()),
        ({"variables": "applicant_like_李%"}, {P2}, {P2}),
        ({"variables": "applicantName_eq_苏州某某科技有限公司"}, {X}, set()),
        ({"variables": "nobody_neq_x"}, set(), set()),             # neq needs the variable, as in Camunda
        ({"processDefinitionKey": "permit", "startedAfter": "2025-03-02T00:00:00.000+0800"}, {P2}, {P2}),
        ({"processInstanceId": ids[S1]}, {S1}, set()),
    ])


def test_a_number_in_variables_is_text_as_camundas_get_reads_it(client, hall):
    # amount is an Integer 100: Camunda's GET compares "100" with String variables only
    assert business_keys(client, HISTORY, {"variables": "amount_eq_100"}) == set()
    assert business_keys(client, HISTORY, {"variables": "amount_neq_100"}) == {P1}


def test_the_running_cases_filter_by_camundas_parameters(client, hall):
    officer, ids, deployments = hall
    [incident] = ok(client.get("/engine-rest/incident", query_string={"processInstanceId": ids[X]}))
    check_filters(client, officer, CASES, [
        ({}, {P2, X}, {P2}),
        ({"businessKeyLike": "JS%"}, {P2}, {P2}),
        ({"businessKeyLike": "%0100"}, {X}, set()),
        ({"processDefinitionKeyIn": "company_setup,seal"}, {X}, set()),
        ({"processDefinitionKeyNotIn": "company_setup"}, {P2}, {P2}),
        ({"deploymentId": deployments["hall"]}, {X}, set()),                   # P2 runs on the second one
        ({"deploymentId": deployments["seal"]}, set(), set()),
        ({"withIncident": "true"}, {X}, set()),
        ({"withIncident": "false"}, {P2, X}, {P2}),
        ({"incidentId": incident["id"]}, {X}, set()),
        ({"incidentType": "failedExternalTask"}, {X}, set()),
        ({"incidentType": "failedJob"}, set(), set()),
        ({"incidentMessage": "credit code rejected"}, {X}, set()),
        ({"incidentMessageLike": "credit%"}, {X}, set()),
        ({"active": "true"}, {P2, X}, {P2}),
        ({"suspended": "true"}, set(), set()),
        ({"withoutTenantId": "true"}, {P2, X}, {P2}),
        ({"processDefinitionWithoutTenantId": "true"}, {P2, X}, {P2}),
        ({"tenantIdIn": "sz"}, set(), set()),                                   # S1 has ended
        ({"rootProcessInstances": "true"}, {P2, X}, {P2}),
        ({"leafProcessInstances": "true"}, {P2, X}, {P2}),
        ({"variables": "applicant_eq_李四"}, {P2}, {P2}),
        ({"variables": "applicant_neq_李四"}, set(), set()),
    ])


def activity_names(reader, query: dict) -> set:
    listed = ok(reader.get(ACTIVITIES, query_string=query))
    assert ok(reader.get(f"{ACTIVITIES}/count", query_string=query)) == {"count": len(listed)}, query
    return {(a["processInstanceId"], a["activityId"]) for a in listed}


def test_the_history_of_activities_filters_by_camundas_parameters(client, hall):
    officer, ids, _ = hall
    p1, p2, s1, x = ids[P1], ids[P2], ids[S1], ids[X]
    everything = activity_names(client, {})
    assert everything == {(p1, "S"), (p1, "T"), (p1, "E"), (p2, "S"), (p2, "T"), (s1, "S"), (s1, "T"),
                          (x, "StartEvent_1"), (x, "Task_register")}
    assert activity_names(officer, {}) == {(p1, "S"), (p1, "T"), (p1, "E"), (p2, "S"), (p2, "T")}
    [p1_task] = ok(client.get(ACTIVITIES, query_string={"processInstanceId": p1, "activityId": "T"}))
    [p2_task] = ok(client.get(ACTIVITIES, query_string={"processInstanceId": p2, "activityId": "T"}))
    for query, everyone, officers in [
        ({"activityInstanceId": p1_task["id"]}, {(p1, "T")}, {(p1, "T")}),
        ({"activityName": "审查"}, {(p1, "T"), (p2, "T"), (s1, "T")}, {(p1, "T"), (p2, "T")}),
        ({"canceled": "true"}, {(s1, "T")}, set()),
        ({"completeScope": "true"}, {(p1, "E")}, {(p1, "E")}),
        ({"executionId": p2}, {(p2, "S"), (p2, "T")}, {(p2, "S"), (p2, "T")}),
        ({"executionId": p2, "processInstanceId": p1}, set(), set()),
        ({"processDefinitionId": p2_task["processDefinitionId"]}, {(p2, "S"), (p2, "T")}, {(p2, "S"), (p2, "T")}),
        ({"startedAfter": "2025-03-10T00:00:00.000+0800"}, {(s1, "S"), (s1, "T"), (x, "StartEvent_1"),
                                                            (x, "Task_register")}, set()),
        ({"startedBefore": "2025-03-02T00:00:00.000+0800"}, {(p1, "S"), (p1, "T")}, {(p1, "S"), (p1, "T")}),
        ({"finishedAfter": "2025-03-02T00:00:00.000+0800", "finishedBefore": "2025-03-03T00:00:00.000+0800"},
         {(p1, "T"), (p1, "E")}, {(p1, "T"), (p1, "E")}),
        ({"finishedAfter": "2025-03-11T00:00:00.000+0800"}, {(s1, "T"), (x, "StartEvent_1")}, set()),
        ({"finishedBefore": "2025-03-01T12:00:00.000+0800"}, {(p1, "S")}, {(p1, "S")}),
        ({"finishedAfter": "2025-03-02T00:00:00.000+0800", "canceled": "true"}, {(s1, "T")}, set()),
        ({"unfinished": "true", "activityType": "userTask"}, {(p2, "T")}, {(p2, "T")}),
    ]:
        assert activity_names(client, query) == everyone, ("administrator", query)
        assert activity_names(officer, query) == officers, ("officer", query)


def variable_names(reader, query: dict) -> set:
    listed = ok(reader.get(VARIABLES, query_string=query))
    assert ok(reader.get(f"{VARIABLES}/count", query_string=query)) == {"count": len(listed)}, query
    return {(v["processInstanceId"], v["name"]) for v in listed}


def test_the_history_of_variables_filters_by_camundas_parameters(client, hall):
    officer, ids, _ = hall
    p1, p2, s1, x = ids[P1], ids[P2], ids[S1], ids[X]
    assert variable_names(client, {}) == {(p1, "applicant"), (p1, "amount"), (p2, "applicant"), (s1, "applicant"),
                                          (x, "applicantName")}
    [p2_variable] = ok(client.get(VARIABLES, query_string={"processInstanceId": p2}))
    for query, everyone, officers in [
        ({"processInstanceIdIn": f"{p1},{s1}"}, {(p1, "applicant"), (p1, "amount"), (s1, "applicant")},
         {(p1, "applicant"), (p1, "amount")}),
        ({"executionIdIn": s1}, {(s1, "applicant")}, set()),
        ({"executionIdIn": s1, "processInstanceIdIn": p1}, set(), set()),
        ({"variableNameIn": "amount,applicantName"}, {(p1, "amount"), (x, "applicantName")}, {(p1, "amount")}),
        ({"variableName": "applicant", "variableValue": "李四"}, {(p2, "applicant")}, {(p2, "applicant")}),
        ({"variableName": "amount", "variableValue": "100"}, set(), set()),         # text: a String's value
        ({"variableTypeIn": "integer"}, {(p1, "amount")}, {(p1, "amount")}),
        ({"variableTypeIn": "String,Integer"}, {(p1, "applicant"), (p1, "amount"), (p2, "applicant"),
                                                (s1, "applicant"), (x, "applicantName")},
         {(p1, "applicant"), (p1, "amount"), (p2, "applicant")}),
        ({"processDefinitionKey": "company_setup"}, {(x, "applicantName")}, set()),
        ({"processDefinitionId": p2_variable["processDefinitionId"]}, {(p2, "applicant")}, {(p2, "applicant")}),
        ({"variableNameLike": "applicant%", "processDefinitionKey": "permit"},
         {(p1, "applicant"), (p2, "applicant")}, {(p1, "applicant"), (p2, "applicant")}),
        ({"includeDeleted": "false"}, {(p1, "applicant"), (p1, "amount"), (p2, "applicant"), (s1, "applicant"),
                                       (x, "applicantName")}, {(p1, "applicant"), (p1, "amount"), (p2, "applicant")}),
    ]:
        assert variable_names(client, query) == everyone, ("administrator", query)
        assert variable_names(officer, query) == officers, ("officer", query)


# --- sorting ------------------------------------------------------------------------

def in_order(rows: list, field: str, descending: bool) -> list:
    """`rows` (in the default order) as Camunda's sortBy orders them here: by `field`, an
    unset one last going up and first going down, ties in the default order."""
    return sorted(rows, key=lambda r: (r[field] is None, r[field]), reverse=descending)      # stable both ways


def check_sorting(reader, path: str, fields: dict, identity) -> None:
    default = ok(reader.get(path))
    assert len(default) > 1
    for sort_by, field in fields.items():
        for order in ("asc", "desc"):
            query = {"sortBy": sort_by, "sortOrder": order}
            listed = ok(reader.get(path, query_string=query))
            assert [identity(r) for r in listed] == [identity(r) for r in in_order(default, field, order == "desc")], \
                query
            page = ok(reader.get(path, query_string={**query, "firstResult": 1, "maxResults": 2}))
            assert [identity(r) for r in page] == [identity(r) for r in listed[1:3]], query


def test_the_history_of_cases_sorts_by_each_of_camundas_keys_both_ways(client, hall):
    officer = hall[0]
    fields = {"instanceId": "id", "definitionId": "processDefinitionId", "definitionKey": "processDefinitionKey",
              "definitionName": "processDefinitionName", "definitionVersion": "processDefinitionVersion",
              "businessKey": "businessKey", "startTime": "startTime", "endTime": "endTime",
              "duration": "durationInMillis", "tenantId": "tenantId"}
    for reader in (client, officer):
        check_sorting(reader, HISTORY, fields, lambda case: case["id"])
    by_end = ok(client.get(HISTORY, query_string={"sortBy": "endTime", "sortOrder": "asc"}))
    assert [c["businessKey"] for c in by_end] == [P1, S1, P2, X]          # the running ones last
    by_duration = ok(client.get(HISTORY, query_string={"sortBy": "duration", "sortOrder": "desc"}))
    assert [c["businessKey"] for c in by_duration] == [P2, X, P1, S1]       # 25 h, 24 h after the running


def test_the_running_cases_sort_by_each_of_camundas_keys_both_ways(client, hall):
    officer = hall[0]
    for business_key in ("JS-2025-004", "JS-2025-003"):
        officer.start("permit", typed(applicant="赵六"), business_key)
    fields = {"instanceId": "id", "definitionId": "definitionId", "definitionKey": "definitionKey",
              "businessKey": "businessKey", "tenantId": "tenantId"}
    for reader in (client, officer):
        check_sorting(reader, CASES, fields, lambda case: case["id"])
    assert "sortBy" in refused(client, CASES, {"sortBy": "startTime", "sortOrder": "asc"})    # not Camunda's here


def test_the_history_of_activities_sorts_by_each_of_camundas_keys_both_ways(client, hall):
    officer = hall[0]
    fields = {"activityInstanceId": "id", "instanceId": "processInstanceId", "executionId": "executionId",
              "activityId": "activityId", "activityName": "activityName", "activityType": "activityType",
              "startTime": "startTime", "endTime": "endTime", "duration": "durationInMillis",
              "definitionId": "processDefinitionId", "occurrence": "startTime"}
    for reader in (client, officer):
        check_sorting(reader, ACTIVITIES, fields, lambda activity: activity["id"])


def test_the_history_of_variables_sorts_by_each_of_camundas_keys_both_ways(client, hall):
    officer = hall[0]
    fields = {"instanceId": "processInstanceId", "variableName": "name"}
    for reader in (client, officer):
        check_sorting(reader, VARIABLES, fields, lambda variable: variable["id"])


# --- what is refused ----------------------------------------------------------------


def three_reviews(key: str) -> str:
    """start → three parallel reviews (all offered to fgw) → end: a case with several tasks at once."""
    flows = "".join(f"""
    <bpmn:sequenceFlow id="In{t}" sourceRef="Split" targetRef="{t}" />
    <bpmn:userTask id="{t}" name="审查 {t}" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="Out{t}" sourceRef="{t}" targetRef="Join" />""" for t in ("Ta", "Tb", "Tc"))
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Split" />
    <bpmn:parallelGateway id="Split" />{flows}
    <bpmn:parallelGateway id="Join" />
    <bpmn:sequenceFlow id="F2" sourceRef="Join" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_case_an_officer_takes_part_in_several_times_over_is_one_case_on_every_page(client):
    """Four cases of three parallel reviews offered to fgw: li was assigned two reviews of
    the first two, wang worked two of the last two.  fgw's officer (three offers a case), li
    (two tasks a case) and wang (two steps a case) each page through their cases one and
    two at a time: every page holds its cases, each case once, and the count agrees."""
    fgw1, li, wang = (client.create_user(user, groups) for user, groups in
                      [("fgw1", ["fgw"]), ("li", ["xf"]), ("wang", ["xf"])])
    ok(client.deploy(name="reviews", extra={"reviews.bpmn": three_reviews("reviews")}))
    ids = []
    for day in range(1, 5):
        at(day)
        ids.append(client.start("reviews", None, f"JS-2025-10{day}")["id"])
    for case, (user, reader) in zip(ids, [("li", li), ("li", li), ("wang", wang), ("wang", wang)]):
        for task in [t for t in client.tasks(processInstanceId=case) if t["taskDefinitionKey"] != "Tc"]:
            assert client.post(f"/engine-rest/task/{task['id']}/assignee", json={"userId": user}).status_code == 204
            if user == "wang":
                assert reader.complete(task["id"]).status_code == 204
    for reader, cases in [(fgw1, ids), (li, ids[:2]), (wang, ids[2:])]:
        assert [case["id"] for case in ok(reader.get(CASES))] == cases, reader.user
        assert ok(reader.get(f"{CASES}/count")) == {"count": len(cases)}, reader.user
        for size in (1, 2):
            paged = [case["id"] for first in range(0, len(cases) + size, size)
                     for case in ok(reader.get(CASES, query_string={"firstResult": first, "maxResults": size}))]
            assert paged == cases, (reader.user, size)

@pytest.mark.parametrize("path", [CASES, HISTORY, ACTIVITIES, VARIABLES])
def test_a_sort_needs_both_sortby_and_sortorder_and_a_known_key(client, path):
    message = "Only a single sorting parameter specified. sortBy and sortOrder required"
    sort_by = "instanceId"
    assert message in refused(client, path, {"sortBy": sort_by})
    assert message in refused(client, path, {"sortOrder": "desc"})
    assert "sortBy" in refused(client, path, {"sortBy": "bogus", "sortOrder": "asc"})
    assert "sortOrder" in refused(client, path, {"sortBy": sort_by, "sortOrder": "up"})


@pytest.mark.parametrize("path, parameter", [(HISTORY, "startedAfter"), (HISTORY, "startedBefore"),
                                             (HISTORY, "finishedAfter"), (HISTORY, "finishedBefore"),
                                             (HISTORY, "executedActivityAfter"), (ACTIVITIES, "startedAfter"),
                                             (ACTIVITIES, "finishedBefore")])
def test_a_malformed_date_is_a_400_naming_the_parameter(client, path, parameter):
    message = refused(client, path, {parameter: "garbage"})
    assert message.startswith(f"{parameter}: ") and "2025-09-26T10:00:00.000+0800" in message


@pytest.mark.parametrize("path, parameter, value", [
    (CASES, "superProcessInstance", "x"), (CASES, "caseInstanceId", "x"), (CASES, "activityIdIn", "T"),
    (CASES, "variableValuesIgnoreCase", "true"),
    (HISTORY, "withIncidents", "true"), (HISTORY, "incidentType", "failedExternalTask"),
    (HISTORY, "superProcessInstanceId", "x"), (HISTORY, "executedJobAfter", "2025-03-01T00:00:00.000+0800"),
    (HISTORY, "activityIdIn", "T"), (HISTORY, "variableNamesIgnoreCase", "true"),
    (ACTIVITIES, "tenantIdIn", "sz"), (ACTIVITIES, "withoutTenantId", "true"),
    (VARIABLES, "taskIdIn", "x"), (VARIABLES, "includeDeleted", "true"), (VARIABLES, "caseInstanceId", "x"),
])
def test_a_camunda_parameter_not_supported_here_is_a_400_naming_it(client, path, parameter, value):
    query = {"historic process instance": HISTORY, "process instance": CASES,
             "historic activity instance": ACTIVITIES, "historic variable instance": VARIABLES}
    name = next(name for name, where in query.items() if where == path)
    message = refused(client, path, {parameter: value})
    assert message.startswith(f"parameter {parameter} of Camunda's {name} query is not supported here"), message


@pytest.mark.parametrize("path", [CASES, HISTORY, ACTIVITIES, VARIABLES])
def test_a_parameter_camunda_does_not_have_is_ignored_as_camunda_ignores_it(client, path):
    assert ok(client.get(path, query_string={"colour": "blue"})) == ok(client.get(path))
    assert ok(client.get(f"{path}/count", query_string={"colour": "blue"})) == {"count": 0}


def test_an_unsupported_flag_set_to_false_is_no_filter(client, hall):
    assert business_keys(client, HISTORY, {"withIncidents": "false", "withRootIncidents": "false"}) == ALL


@pytest.mark.parametrize("expression, words", [
    ("applicant_eq", "has to have format KEY_OPERATOR_VALUE"),
    ("my_name_eq_x", "has to have format KEY_OPERATOR_VALUE"),
    ("applicant_gt_x", "operator gt is not supported here"),
    ("applicant_is_x", "Invalid variable comparator specified: is"),
    ("due_eq_2025-03-01T09:00:00.000+0800", "date"),
])
def test_a_variables_expression_that_cannot_be_applied_is_a_400(client, expression, words):
    for path in (CASES, HISTORY):
        message = refused(client, path, {"variables": expression})
        assert message.startswith("variables: ") and words in message, message


def test_two_states_at_once_are_a_400_as_in_camunda(client):
    assert "Already querying for historic process instance with another state" in refused(
        client, HISTORY, {"active": "true", "completed": "true"})
    assert "another state" in refused(client, HISTORY, {"state": "ACTIVE", "externallyTerminated": "true"})
    assert ok(client.get(HISTORY, query_string={"state": "ACTIVE", "active": "true"})) == []


def test_a_variable_value_without_its_name_is_a_400_as_in_camunda(client):
    assert "variable name and value are required" in refused(client, VARIABLES, {"variableValue": "x"})


def test_deleting_a_case_that_is_gone_with_fail_if_not_exists_false_is_a_204(client):
    """Camunda's failIfNotExists=false: a case already deleted (or ended, or never known)
    is no error; without it, a 404 as before."""
    assert client.deploy(extra={"gone.bpmn": one_task("gone")}).status_code == 200
    case = client.start("gone")["id"]
    url = f"/engine-rest/process-instance/{case}"
    assert client.delete(url).status_code == 204
    assert client.delete(url).status_code == 404
    assert client.delete(url, query_string={"failIfNotExists": "false"}).status_code == 204
    never = "/engine-rest/process-instance/never"
    assert client.delete(never, query_string={"failIfNotExists": "false"}).status_code == 204
    assert client.delete(never, query_string={"failIfNotExists": "true"}).status_code == 404
    running = client.start("gone")["id"]
    outsider = client.create_user("zjj1", ["zjj"])
    r = outsider.delete(f"/engine-rest/process-instance/{running}", query_string={"failIfNotExists": "false"})
    assert r.status_code == 403                                  # a running case stays the starter's to delete
    assert client.get(f"/engine-rest/history/process-instance/{running}").get_json()["state"] == "ACTIVE"
