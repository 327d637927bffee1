"""The quickstart as departments work it: deploy a Camunda-Modeler diagram with three
parallel reviews, a gateway and forms; four department users drive it to the end."""
from __future__ import annotations

from datetime import datetime

import pytest

from engine.clock import clock
from tests.conftest import ROOT, typed

QUICKSTART = ROOT / "examples" / "quickstart" / "parallel_review.bpmn"
FORMS = [ROOT / "forms" / "department_review.form", ROOT / "forms" / "application_intake.form"]
DEPARTMENTS = {"fgw": "Task_review_fgw", "zrzy": "Task_review_zrzy", "zjj": "Task_review_zjj"}
APPLICATION = {"applicantName": "苏州某某科技有限公司", "creditCode": "91320500MA1XXXXX0X"}


@pytest.fixture
def people(client):
    deployed = client.deploy(QUICKSTART, *FORMS, name="quickstart")
    assert deployed.status_code == 200, deployed.get_json()
    users = {dept: client.create_user(f"{dept}_officer", [dept]) for dept in DEPARTMENTS}
    users["window"] = client.create_user("window_clerk", ["window"])
    return users


def start_case(client, business_key="SZ-2025-0001"):
    return client.start("quickstart_review", typed(**APPLICATION), business_key)


def review(user, decision="approve", opinion="材料齐全，同意"):
    [task] = user.tasks()
    return user.complete(task["id"], typed(decision=decision, opinion=opinion))


def test_three_departments_review_in_parallel_and_the_window_issues_the_result(client, people):
    case = start_case(client)
    open_tasks = client.tasks(processInstanceId=case["id"])
    assert sorted(t["taskDefinitionKey"] for t in open_tasks) == sorted(DEPARTMENTS.values())

    assert people["window"].tasks() == []          # nothing for the window yet
    for dept in DEPARTMENTS:
        user = people[dept]
        [task] = user.tasks()
        assert task["taskDefinitionKey"] == DEPARTMENTS[dept]
        assert task["candidateGroups"] == [dept]
        assert task["businessKey"] == "SZ-2025-0001"
        assert user.post(f"/engine-rest/task/{task['id']}/claim", json={"userId": f"{dept}_officer"}).status_code == 204
        assert review(user).status_code == 204

    [issue] = people["window"].tasks()
    assert issue["taskDefinitionKey"] == "Task_issue"
    assert people["window"].complete(issue["id"], typed(decision="approve", opinion="已出件")).status_code == 204

    history = client.get(f"/engine-rest/history/process-instance/{case['id']}").get_json()
    assert history["state"] == "COMPLETED" and history["endTime"] is not None
    activities = client.get("/engine-rest/history/activity-instance",
                            query_string={"processInstanceId": case["id"], "activityType": "userTask"}).get_json()
    assert {a["activityId"]: a["assignee"] for a in activities} == {
        "Task_review_fgw": "fgw_officer", "Task_review_zrzy": "zrzy_officer", "Task_review_zjj": "zjj_officer",
        "Task_issue": "window_clerk"}
    ends = client.get("/engine-rest/history/activity-instance",
                      query_string={"processInstanceId": case["id"], "activityId": "End_approved"}).get_json()
    assert len(ends) == 1


def test_one_department_refusing_takes_the_not_approved_path(client, people):
    case = start_case(client)
    review(people["fgw"])
    review(people["zrzy"], decision="reject", opinion="用地不符合规划")
    review(people["zjj"])
    assert people["window"].tasks() == []
    history = client.get(f"/engine-rest/history/process-instance/{case['id']}").get_json()
    assert history["state"] == "COMPLETED"
    variables = client.get("/engine-rest/history/variable-instance",
                           query_string={"processInstanceId": case["id"]}).get_json()
    values = {v["name"]: v["value"] for v in variables}
    assert values["zrzyDecision"] == "reject" and values["fgwDecision"] == "approve"
    assert "decision" not in values        # outputs map each department's local decision


def test_a_department_cannot_see_or_complete_another_departments_task(client, people):
    case = start_case(client)
    fgw_task = next(t for t in client.tasks(processInstanceId=case["id"]) if t["candidateGroups"] == ["fgw"])
    intruder = people["zjj"]
    assert intruder.get(f"/engine-rest/task/{fgw_task['id']}").status_code == 403
    r = intruder.complete(fgw_task["id"], typed(decision="approve", opinion="x"))
    assert r.status_code == 403 and r.get_json()["type"] == "AuthorizationException"
    assert client.get(f"/engine-rest/task/{fgw_task['id']}").status_code == 200      # still open


def test_a_claimed_task_is_reserved_for_its_claimant(client, people):
    start_case(client)
    colleague = client.create_user("fgw_colleague", ["fgw"])
    [task] = people["fgw"].tasks()
    assert people["fgw"].post(f"/engine-rest/task/{task['id']}/claim", json={"userId": "fgw_officer"}).status_code == 204
    r = colleague.post(f"/engine-rest/task/{task['id']}/claim", json={"userId": "fgw_colleague"})
    assert r.status_code == 409 and r.get_json()["type"] == "TaskAlreadyClaimedException"
    assert colleague.complete(task["id"], typed(decision="approve", opinion="x")).status_code == 403
    assert colleague.tasks(candidateGroup="fgw") == []     # claimed tasks leave the group queue
    assert people["fgw"].post(f"/engine-rest/task/{task['id']}/unclaim").status_code == 204
    assert [t["id"] for t in colleague.tasks(candidateGroup="fgw")] == [task["id"]]


def test_completing_with_values_the_form_refuses_is_a_400_listing_every_field(client, people):
    start_case(client)
    [task] = people["fgw"].tasks()
    r = people["fgw"].complete(task["id"], typed(decision="maybe", opinion=""))
    assert r.status_code == 400
    body = r.get_json()
    assert body["type"] == "FormFieldValidationException"
    assert set(body["errors"]) >= {"decision", "opinion"}
    assert [t["id"] for t in people["fgw"].tasks()] == [task["id"]]       # untouched


def test_starting_without_the_start_forms_required_fields_is_refused(client, people):
    r = client.post("/engine-rest/process-definition/key/quickstart_review/start", json={"variables": {}})
    assert r.status_code == 400 and "applicantName" in r.get_json()["message"]
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 0


def test_the_deployed_forms_are_served_for_the_task_and_the_start_event(client, people):
    start_case(client)
    [task] = people["zjj"].tasks()
    form = people["zjj"].get(f"/engine-rest/task/{task['id']}/deployed-form").get_json()
    assert form["id"] == "department_review"
    ref = people["zjj"].get(f"/engine-rest/task/{task['id']}/form").get_json()
    assert ref["camundaFormRef"] == {"key": "department_review", "binding": "latest", "version": None}
    start_form = client.get("/engine-rest/process-definition/key/quickstart_review/deployed-start-form").get_json()
    assert start_form["id"] == "application_intake"
    variables = people["zjj"].get(f"/engine-rest/task/{task['id']}/form-variables").get_json()
    assert variables["applicantName"] == {"type": "String", "value": APPLICATION["applicantName"], "valueInfo": {}}


def test_a_tasklist_submits_the_form_reads_some_of_its_variables_and_the_links_of_one_type(client, people):
    """POST /task/{id}/submit-form (Camunda's Tasklist and forms SDK) is /complete with the
    form's check; form-variables?variableNames= and identity-links?type= narrow their
    answers, as in Camunda (they were ignored)."""
    case = start_case(client)
    fgw = people["fgw"]
    [task] = fgw.tasks()
    url = f"/engine-rest/task/{task['id']}"
    some = fgw.get(f"{url}/form-variables", query_string={"variableNames": "applicantName,noSuchName"}).get_json()
    assert some == {"applicantName": {"type": "String", "value": APPLICATION["applicantName"], "valueInfo": {}}}
    assert set(fgw.get(f"{url}/form-variables").get_json()) >= {"applicantName", "creditCode"}
    before = fgw.get(url).get_json()
    assert before["taskState"] == "Created" and before["lastUpdated"] == before["created"]
    clock.set(datetime.fromisoformat("2030-01-02T09:00:00+08:00"))          # reset by the app fixture
    assert fgw.post(f"{url}/claim", json={"userId": "fgw_officer"}).status_code == 204
    after = fgw.get(url).get_json()          # Camunda 7.21: a claim updates the task
    assert after["taskState"] == "Updated" and after["lastUpdated"].startswith("2030-01-02T09:00:0"), after
    assert fgw.get(f"{url}/identity-links", query_string={"type": "assignee"}).get_json() == [
        {"userId": "fgw_officer", "groupId": None, "type": "assignee"}]
    assert fgw.get(f"{url}/identity-links", query_string={"type": "candidate"}).get_json() == [
        {"userId": None, "groupId": "fgw", "type": "candidate"}]
    assert fgw.get(f"{url}/identity-links", query_string={"type": "owner-ish"}).status_code == 400
    r = fgw.post(f"{url}/submit-form", json={"variables": typed(decision="maybe", opinion="")})
    assert r.status_code == 400 and r.get_json()["type"] == "FormFieldValidationException", r.get_json()
    r = fgw.post(f"{url}/submit-form", json={"variables": typed(decision="approve", opinion="同意"),
                                              "withVariablesInReturn": True})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["fgwDecision"]["value"] == "approve"
    assert fgw.tasks() == [] and fgw.post(f"{url}/submit-form", json={}).status_code == 409     # as /complete
    assert {t["taskDefinitionKey"] for t in client.tasks(processInstanceId=case["id"])} == {
        "Task_review_zrzy", "Task_review_zjj"}


def test_withdrawing_a_case_terminates_it_and_removes_its_tasks(client, people):
    case = start_case(client)
    assert client.delete(f"/engine-rest/process-instance/{case['id']}",
                         query_string={"deleteReason": "申请人撤回"}).status_code == 204
    assert client.tasks(processInstanceId=case["id"]) == []
    assert client.get(f"/engine-rest/process-instance/{case['id']}").status_code == 404
    history = client.get("/engine-rest/history/process-instance",
                         query_string={"state": "EXTERNALLY_TERMINATED"}).get_json()
    assert [h["id"] for h in history] == [case["id"]]
    canceled = client.get("/engine-rest/history/activity-instance",
                          query_string={"processInstanceId": case["id"], "activityType": "userTask"}).get_json()
    assert all(a["canceled"] and a["endTime"] for a in canceled) and len(canceled) == 3


def test_activity_instance_tree_shows_the_three_running_reviews(client, people):
    case = start_case(client)
    tree = client.get(f"/engine-rest/process-instance/{case['id']}/activity-instances").get_json()
    assert tree["id"] == case["id"] and tree["activityType"] == "processDefinition"
    assert sorted(c["activityId"] for c in tree["childActivityInstances"]) == sorted(DEPARTMENTS.values())


def test_business_key_and_candidate_queries_find_the_case(client, people):
    case = start_case(client, business_key="SZ-QUERY-1")
    start_case(client, business_key="SZ-QUERY-2")
    found = client.get("/engine-rest/process-instance", query_string={"businessKey": "SZ-QUERY-1"}).get_json()
    assert [f["id"] for f in found] == [case["id"]]
    assert len(client.tasks(processInstanceBusinessKey="SZ-QUERY-1")) == 3
    assert len(client.tasks(candidateGroup="zrzy")) == 2
    assert len(client.tasks(candidateUser="zrzy_officer")) == 2
    assert client.get("/engine-rest/task/count", query_string={"candidateGroup": "fgw"}).get_json() == {"count": 2}


def test_an_officer_reads_the_history_of_the_cases_they_take_part_in(client, people):
    """GET /history/activity-instance (engine/history.py, a statement per shape, sent as
    rendered): an officer sees the activities of the cases offered to their department,
    every filter and the paging narrow the same rows the count counts, and the answer is
    what the schema would dump."""
    from api.schemas import HistoricActivityInstance
    ours, other = start_case(client, "SZ-H-1"), start_case(client, "SZ-H-2")
    fgw, window = people["fgw"], people["window"]
    [task] = fgw.tasks(processInstanceId=ours["id"])       # fgw finishes its task of the first case
    assert fgw.complete(task["id"], typed(decision="approve", opinion="同意")).status_code == 204

    def read(user, **query):
        listed = user.get("/engine-rest/history/activity-instance", query_string=query)
        counted = user.get("/engine-rest/history/activity-instance/count", query_string=query)
        assert listed.status_code == 200 and counted.status_code == 200, (listed.get_json(), counted.get_json())
        rows = listed.get_json()
        assert HistoricActivityInstance(many=True).dump(rows) == rows
        if not {"firstResult", "maxResults"} & set(query):
            assert counted.get_json()["count"] == len(rows)
        return rows

    every = read(client)
    assert {a["processInstanceId"] for a in every} == {ours["id"], other["id"]}
    assert {a["processInstanceId"] for a in read(fgw)} == {ours["id"], other["id"]}   # offered to fgw in both
    assert read(window) == []                              # nothing offered to the window yet
    done = read(fgw, processInstanceId=ours["id"], activityType="userTask", finished="true")
    assert [(a["activityId"], a["assignee"]) for a in done] == [("Task_review_fgw", "fgw_officer")]
    assert [a["activityId"] for a in read(fgw, taskAssignee="fgw_officer")] == ["Task_review_fgw"]
    mine = read(fgw, processInstanceId=ours["id"])
    assert read(fgw, processInstanceId=ours["id"], firstResult=1, maxResults=2) == mine[1:3]
    open_ones = read(fgw, processInstanceId=ours["id"], unfinished="true")
    assert {a["activityId"] for a in open_ones} == {"Task_review_zrzy", "Task_review_zjj", "Gateway_join"}


def test_a_case_read_alone_is_for_who_takes_part_in_it(client, people):
    """GET /process-instance/{id}, its activity tree and GET /history/process-instance/{id}
    (engine/instances.py `get`: the case and whether the reader takes part in it in one
    statement per shape, on a bare connection, sent as rendered): an administrator and an
    officer of one department read in turn (their statements differ in shape), the window,
    offered nothing yet, is refused, an unknown case is a 404, and each answer is what its
    schema would dump."""
    from api.schemas import ActivityInstance, HistoricProcessInstance, ProcessInstance
    case = start_case(client, "SZ-R-1")["id"]
    fgw, window = people["fgw"], people["window"]
    reads = {f"/engine-rest/process-instance/{case}": ProcessInstance(),
             f"/engine-rest/process-instance/{case}/activity-instances": ActivityInstance(),
             f"/engine-rest/history/process-instance/{case}": HistoricProcessInstance()}
    for reader in (client, fgw, client, fgw):
        for path, schema in reads.items():
            r = reader.get(path)
            assert r.status_code == 200, (path, r.get_json())
            assert schema.dump(r.get_json()) == r.get_json()
        tree = reader.get(f"/engine-rest/process-instance/{case}/activity-instances").get_json()
        assert tree["activityId"] == "quickstart_review" and tree["name"] == tree["activityName"] is not None
        assert {a["activityId"] for a in tree["childActivityInstances"]} == set(DEPARTMENTS.values())
        history = reader.get(f"/engine-rest/history/process-instance/{case}").get_json()
        assert (history["state"], history["businessKey"], history["processDefinitionVersion"]) == ("ACTIVE", "SZ-R-1", 1)
    for path in reads:
        r = window.get(path)
        assert r.status_code == 403 and "takes no part" in r.get_json()["message"], path
        r = fgw.get(path.replace(case, "no-such-case"))
        assert r.status_code == 404 and "no-such-case" in r.get_json()["message"], path

    for dept in DEPARTMENTS:                                # the window's task opens: it takes part now
        review(people[dept])
    assert window.get(f"/engine-rest/process-instance/{case}").status_code == 200
    [issue] = window.tasks()
    assert window.complete(issue["id"], typed(decision="approve", opinion="已出件")).status_code == 204
    assert fgw.get(f"/engine-rest/process-instance/{case}").status_code == 404       # ended: history only
    history = fgw.get(f"/engine-rest/history/process-instance/{case}").get_json()
    assert history["state"] == "COMPLETED" and history["endTime"] is not None


def test_an_officer_lists_the_cases_and_variables_they_take_part_in(client, people):
    """GET /process-instance, /history/process-instance and /history/variable-instance, and
    their counts (engine/history.py `_query`: a statement per shape, sent as rendered): an
    officer lists the cases offered to their department and their variables, each filter
    and the paging narrow the rows the count counts, the answer is the schema's dump."""
    from api.schemas import HistoricProcessInstance, HistoricVariableInstance, ProcessInstance
    first, second = start_case(client, "SZ-L-1")["id"], start_case(client, "SZ-L-2")["id"]
    fgw, window = people["fgw"], people["window"]
    for dept in DEPARTMENTS:                                # the first case reaches the window, then ends
        [task] = people[dept].tasks(processInstanceId=first)
        assert people[dept].complete(task["id"], typed(decision="approve", opinion="同意")).status_code == 204
    [issue] = window.tasks()
    assert window.complete(issue["id"], typed(decision="approve", opinion="已出件")).status_code == 204

    def read(user, path, schema, **query):
        listed = user.get(path, query_string=query)
        counted = user.get(f"{path}/count", query_string=query)
        assert listed.status_code == 200 and counted.status_code == 200, (listed.get_json(), counted.get_json())
        rows = listed.get_json()
        assert schema.dump(rows) == rows
        if not {"firstResult", "maxResults"} & set(query):
            assert counted.get_json()["count"] == len(rows)
        return rows

    def running(user, **query):
        return [c["businessKey"] for c in read(user, "/engine-rest/process-instance", ProcessInstance(many=True),
                                               **query)]

    def cases(user, **query):
        return [c["businessKey"] for c in read(user, "/engine-rest/history/process-instance",
                                               HistoricProcessInstance(many=True), **query)]

    assert running(client) == running(fgw) == ["SZ-L-2"]
    assert running(window) == []                            # nothing of the second case offered to the window
    assert cases(client) == cases(fgw) == ["SZ-L-1", "SZ-L-2"]
    assert cases(window) == ["SZ-L-1"]
    assert cases(fgw, finished="true") == ["SZ-L-1"] and cases(fgw, unfinished="true") == ["SZ-L-2"]
    assert cases(fgw, state="COMPLETED") == ["SZ-L-1"] and cases(fgw, state="ACTIVE") == ["SZ-L-2"]
    assert cases(fgw, processInstanceIds=f"{first},{second}") == ["SZ-L-1", "SZ-L-2"]
    assert cases(fgw, processInstanceId=second) == ["SZ-L-2"] and cases(fgw, processInstanceBusinessKey="SZ-L-1") == [
        "SZ-L-1"]
    assert cases(fgw, processDefinitionKey="quickstart_review", firstResult=1, maxResults=5) == ["SZ-L-2"]
    assert running(fgw, businessKey="SZ-L-1") == [] and running(fgw, processInstanceIds=f"{first},{second}") == [
        "SZ-L-2"]

    def variables(user, **query):
        rows = read(user, "/engine-rest/history/variable-instance", HistoricVariableInstance(many=True), **query)
        assert all(v["processDefinitionKey"] == "quickstart_review" and v["processDefinitionId"] for v in rows)
        return [(v["processInstanceId"], v["name"], v["value"]) for v in rows]

    every = variables(fgw)
    assert every == variables(client) and {case for case, _, _ in every} == {first, second}
    assert variables(window) == [v for v in every if v[0] == first]
    assert variables(fgw, processInstanceId=second, variableName="applicantName") == [
        (second, "applicantName", APPLICATION["applicantName"])]
    assert {name for _, name, _ in variables(fgw, variableNameLike="applicant%")} == {"applicantName"}
    assert variables(fgw, processInstanceId=second, variableName="applicantName", variableNameLike="applicant%") == [
        (second, "applicantName", APPLICATION["applicantName"])]                      # both filters on the name
    assert variables(fgw, firstResult=1, maxResults=2) == every[1:3]
