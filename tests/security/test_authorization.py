"""Who may do what: every rule of the README's authorization table, each refusal a 403
with a reason, and every refused write an audit event outside the case's own chain."""
from __future__ import annotations

import pytest

from tests.conftest import typed
from tests.security.models import application, one_task

ET = "/engine-rest/external-task"


def system_events(client, **query):
    r = client.get("/api/v1/audit/system-events", query_string=query)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def case_events(client, instance_id):
    r = client.get(f"/api/v1/process-instance/{instance_id}/dossier")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["auditTrail"]


def refused(response, *words):
    assert response.status_code == 403, (response.status_code, response.get_json())
    body = response.get_json()
    assert body["type"] == "AuthorizationException"
    for word in words:
        assert word in body["message"], body["message"]
    return body["message"]


@pytest.fixture
def people(client):
    """The hall: two applicants, the window (综合窗口), two 发改 officers, one 自然资源 officer,
    a designer and a department system."""
    return {name: client.create_user(name, groups) for name, groups in {
        "zhang": ["applicants"], "wang": ["applicants"], "window1": ["window"], "fgw1": ["fgw"],
        "fgw2": ["fgw"], "zrzy1": ["zrzy"], "designer1": ["designers"], "system1": ["external-workers"],
    }.items()}


@pytest.fixture
def deployed(client):
    r = client.deploy(extra={"application.bpmn": application(),
                             "internal.bpmn": one_task("internal"),
                             "hall_only.bpmn": one_task("hall_only", process_attrs='camunda:candidateStarterUsers="fgw2"'
                                                        ' camunda:candidateStarterGroups="window"')})
    assert r.status_code == 200, r.get_json()


def start(who, key="application", **variables):
    r = who.post(f"/engine-rest/process-definition/key/{key}/start", json={"variables": typed(**variables)})
    return r


def started(who, key="application", **variables):
    r = start(who, key, **variables)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["id"]


# --- deploying and administering ------------------------------------------------------

def test_only_designers_and_administrators_deploy_and_delete_deployments(client, people):
    officer, designer = people["fgw1"], people["designer1"]
    refused(officer.deploy(extra={"x.bpmn": one_task("x")}), "designers")
    assert client.get("/engine-rest/deployment/count").get_json()["count"] == 0
    ok = designer.deploy(extra={"x.bpmn": one_task("x")})
    assert ok.status_code == 200, ok.get_json()
    refused(officer.delete(f"/engine-rest/deployment/{ok.get_json()['id']}"), "designers")
    assert designer.delete(f"/engine-rest/deployment/{ok.get_json()['id']}").status_code == 204
    kinds = [(e["kind"], e["actor"], e["outcome"]) for e in system_events(client) if e["actor"] in ("fgw1", "designer1")]
    assert kinds == [("AccessDenied", "fgw1", "denied"), ("DeploymentCreated", "designer1", "done"),
                     ("AccessDenied", "fgw1", "denied"), ("DeploymentDeleted", "designer1", "done")]


@pytest.mark.parametrize("who", ["fgw1", "designer1", "zhang", "system1"])
def test_only_administrators_manage_users_groups_calendars_and_clocks(client, people, deployed, who):
    user = people[who]
    case = started(client)
    for response in (
            user.post("/engine-rest/user/create", json={"profile": {"id": "mole"}, "credentials": {"password": "x"}}),
            user.post("/engine-rest/group/create", json={"id": "fgw-shadow", "name": "x"}),
            user.put(f"/engine-rest/group/camunda-admin/members/{who}"),
            user.delete("/engine-rest/group/fgw/members/fgw2"),
            user.put("/engine-rest/user/fgw2/credentials", json={"password": "taken-over"}),
            user.put("/api/v1/calendar/days/2025-10-08", json={"working": True}),
            user.post("/api/v1/calendar/import", json={"year": 2027, "days": []}),
            user.post("/api/v1/calendars", json={"id": "CN-shadow", "base": "CN"}),
            user.post(f"/api/v1/process-instance/{case}/legal-clocks", json={"stage": "review", "limit": "3wd"})):
        refused(response, "camunda-admin")
    assert "camunda-admin" not in [g["id"] for g in client.get("/engine-rest/group", query_string={"member": who}).get_json()]
    assert client.get("/engine-rest/user", query_string={"id": "mole"}).get_json() == []
    assert len(system_events(client, actor=who, outcome="denied")) == 9


def test_users_change_their_own_password_only_and_only_with_the_current_one(client, people):
    token = people["fgw1"].post("/api/v1/tokens", json={}).get_json()["token"]
    stolen = {"Authorization": f"Bearer {token}"}
    refused(client.http.put("/engine-rest/user/fgw1/credentials", headers=stolen, json={"password": "mine-now"}),
            "current password")
    refused(client.http.put("/engine-rest/user/fgw1/credentials", headers=stolen,
                            json={"password": "mine-now", "authenticatedUserPassword": "guess"}), "current password")
    assert people["fgw1"].put("/engine-rest/user/fgw1/credentials",
                              json={"password": "new-pw", "authenticatedUserPassword": "pw"}).status_code == 204
    assert client.as_user("fgw1", "new-pw").get("/engine-rest/task").status_code == 200
    assert client.as_user("fgw1", "pw").get("/engine-rest/task").status_code == 401
    [event] = system_events(client, kind="PasswordChanged")
    assert event["actor"] == "fgw1" and event["data"] == {"userId": "fgw1"}
    assert len(system_events(client, kind="AccessDenied", actor="fgw1")) == 2


@pytest.mark.parametrize("who", ["fgw1", "zhang", "designer1"])
def test_only_external_workers_and_administrators_use_the_external_task_message_and_signal_apis(client, people,
                                                                                               who):
    user = people[who]
    refused(user.post(f"{ET}/fetchAndLock", json={"workerId": "w", "maxTasks": 1, "topics": [
        {"topicName": "registration", "lockDuration": 1000}]}), "external-workers")
    refused(user.get(ET), "external-workers")
    refused(user.post("/engine-rest/message", json={"messageName": "BankAccountOpened"}), "external-workers")
    refused(user.post("/engine-rest/signal", json={"name": "PolicyChanged"}), "external-workers")
    worker = people["system1"]
    assert worker.post(f"{ET}/fetchAndLock", json={"workerId": "w", "maxTasks": 1, "topics": [
        {"topicName": "registration", "lockDuration": 1000}]}).status_code == 200


# --- applicants (申请人) ----------------------------------------------------------------

def test_an_applicant_starts_only_processes_that_name_applicants_as_candidate_starters(client, people, deployed):
    zhang = people["zhang"]
    assert start(zhang).status_code == 200
    refused(start(zhang, "internal"), "does not admit applicants", "candidateStarterGroups")
    refused(start(zhang, "hall_only"), "candidate starters are group 'window', user 'fgw2'")
    assert start(people["window1"], "hall_only").status_code == 200        # by group
    assert start(people["fgw2"], "hall_only").status_code == 200           # by name
    refused(start(people["fgw1"], "hall_only"), "may not start process 'hall_only'")
    assert start(people["fgw1"], "internal").status_code == 200            # no starters named: any staff user
    assert client.get("/engine-rest/process-instance/count",
                      query_string={"processDefinitionKey": "hall_only"}).get_json()["count"] == 2
    denied = system_events(client, outcome="denied", kind="AccessDenied")
    assert [e["actor"] for e in denied] == ["zhang", "zhang", "fgw1"]
    assert denied[0]["target"] == "POST /engine-rest/process-definition/key/internal/start"


def test_an_applicant_sees_only_the_cases_they_started(client, people, deployed):
    zhang, wang = people["zhang"], people["wang"]
    mine, theirs = started(zhang, applicantName="张三"), started(wang, applicantName="王五")
    assert [c["id"] for c in zhang.get("/engine-rest/process-instance").get_json()] == [mine]
    assert [c["id"] for c in zhang.get("/engine-rest/history/process-instance").get_json()] == [mine]
    assert zhang.get(f"/engine-rest/process-instance/{mine}/variables").get_json()["applicantName"]["value"] == "张三"
    for path in (f"/engine-rest/process-instance/{theirs}", f"/engine-rest/process-instance/{theirs}/variables",
                 f"/engine-rest/history/process-instance/{theirs}", f"/api/v1/process-instance/{theirs}/legal-clocks",
                 f"/engine-rest/process-instance/{theirs}/activity-instances"):
        refused(zhang.get(path), "takes no part")
    everything = zhang.get("/engine-rest/history/variable-instance").get_json()
    assert {v["processInstanceId"] for v in everything} == {mine}
    assert zhang.get("/engine-rest/history/variable-instance",
                     query_string={"processInstanceId": theirs}).get_json() == []
    assert {a["processInstanceId"] for a in zhang.get("/engine-rest/history/activity-instance").get_json()} == {mine}
    refused(zhang.delete(f"/engine-rest/process-instance/{theirs}"), "takes no part")
    assert wang.get(f"/engine-rest/process-instance/{theirs}").status_code == 200


def test_a_correction_offered_to_applicants_reaches_only_the_applicant_of_that_case(client, people, deployed):
    zhang, wang, fgw1 = people["zhang"], people["wang"], people["fgw1"]
    mine, theirs = started(zhang), started(wang)
    for case in (mine, theirs):
        [review] = fgw1.tasks(processInstanceId=case)
        assert fgw1.complete(review["id"], typed(decision="correction")).status_code == 204
    [own] = zhang.tasks()
    assert own["processInstanceId"] == mine and own["taskDefinitionKey"] == "Task_correct"
    assert zhang.tasks(candidateGroup="applicants") == [own]
    [other] = client.tasks(processInstanceId=theirs)
    refused(zhang.get(f"/engine-rest/task/{other['id']}"), "neither assignee nor candidate")
    refused(zhang.post(f"/engine-rest/task/{other['id']}/claim", json={"userId": "zhang"}))
    refused(zhang.complete(other["id"], typed(corrected=True)))
    refused(client.as_user("wang").post(f"/engine-rest/task/{own['id']}/assignee", json={"userId": "wang"}))
    assert [t["processInstanceId"] for t in zhang.tasks()] == [mine]          # untouched: still only theirs
    assert client.tasks(processInstanceId=theirs)[0]["assignee"] is None
    refused(zhang.post(f"/engine-rest/task/{own['id']}/assignee", json={"userId": "wang"}), "not a candidate")
    assert zhang.complete(own["id"], typed(corrected=True)).status_code == 204
    assert [t["taskDefinitionKey"] for t in fgw1.tasks(processInstanceId=mine)] == ["Task_review"]


# --- departments (部门) -----------------------------------------------------------------

def test_a_department_lists_claims_and_completes_only_tasks_offered_to_it(client, people, deployed):
    fgw1, fgw2, zrzy1 = people["fgw1"], people["fgw2"], people["zrzy1"]
    case = started(people["window1"])
    [task] = fgw1.tasks()
    assert zrzy1.tasks() == [] and zrzy1.tasks(candidateGroup="fgw") == []
    assert zrzy1.get("/engine-rest/task/count").get_json()["count"] == 0
    refused(zrzy1.get(f"/engine-rest/task/{task['id']}"), "neither assignee nor candidate", "fgw")
    refused(zrzy1.post(f"/engine-rest/task/{task['id']}/claim", json={"userId": "zrzy1"}))
    refused(zrzy1.complete(task["id"], typed(decision="approve")))
    refused(zrzy1.get(f"/engine-rest/process-instance/{case}/variables"), "takes no part")
    refused(fgw1.post(f"/engine-rest/task/{task['id']}/claim", json={"userId": "fgw2"}), "for themselves")
    assert fgw1.post(f"/engine-rest/task/{task['id']}/claim", json={"userId": "fgw1"}).status_code == 204
    refused(fgw2.complete(task["id"], typed(decision="approve")), "assigned to 'fgw1'")
    refused(fgw2.post(f"/engine-rest/task/{task['id']}/unclaim"), "assigned to 'fgw1'")
    assert fgw1.get(f"/engine-rest/process-instance/{case}/variables").status_code == 200
    assert fgw1.complete(task["id"], typed(decision="approve")).status_code == 204
    assert client.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"] == "COMPLETED"
    assert fgw1.get(f"/engine-rest/history/process-instance/{case}").status_code == 200   # took part: reads on
    refused(zrzy1.get(f"/engine-rest/history/process-instance/{case}"), "takes no part")


def test_a_department_may_hand_its_task_only_to_a_colleague_who_is_a_candidate(client, people, deployed):
    fgw1 = people["fgw1"]
    started(people["window1"])
    [task] = fgw1.tasks()
    refused(fgw1.post(f"/engine-rest/task/{task['id']}/assignee", json={"userId": "zrzy1"}), "not a candidate")
    assert client.get(f"/engine-rest/task/{task['id']}").get_json()["assignee"] is None
    assert people["zrzy1"].tasks() == []
    assert fgw1.post(f"/engine-rest/task/{task['id']}/assignee", json={"userId": "fgw2"}).status_code == 204
    assert [t["id"] for t in people["fgw2"].tasks(assignee="fgw2")] == [task["id"]]
    assert client.post(f"/engine-rest/task/{task['id']}/assignee", json={"userId": "zrzy1"}).status_code == 204


def test_a_task_offered_to_a_user_by_name_reaches_that_user_only(client, people):
    client.deploy(extra={"named.bpmn": one_task("named", 'camunda:candidateUsers="fgw2"')})
    case = started(client, "named")
    assert people["fgw1"].tasks() == []
    [task] = people["fgw2"].tasks()
    assert task["processInstanceId"] == case
    assert people["fgw2"].complete(task["id"]).status_code == 204


def test_every_reader_counts_exactly_the_tasks_it_lists(client, people, deployed):
    """GET /task/count and a list sorted by anything but creation or due date read the
    candidate conditions as sets of task ids, a list in creation order, and a queue by due
    date, read them task by task along an index (engine/tasks.py): all four must agree for
    every reader and filter."""
    zhang, wang, fgw1 = people["zhang"], people["wang"], people["fgw1"]
    for applicant in (zhang, wang):                      # a correction offered to applicants in each case
        [review] = fgw1.tasks(processInstanceId=started(applicant))
        assert fgw1.complete(review["id"], typed(decision="correction")).status_code == 204
    [claimed] = fgw1.tasks(processInstanceId=started(people["window1"]))
    assert fgw1.post(f"/engine-rest/task/{claimed['id']}/claim", json={"userId": "fgw1"}).status_code == 204
    started(people["window1"])                                                   # one left in fgw's queue
    client.deploy(extra={"named.bpmn": one_task("named", 'camunda:candidateUsers="fgw2"')})
    started(client, "named")
    queries = [{}, {"candidateGroup": "fgw"}, {"candidateGroup": "applicants"}, {"candidateGroup": "zrzy"},
               {"candidateUser": "fgw1"}, {"candidateUser": "fgw2"}, {"candidateUser": "zhang"}, {"assignee": "fgw1"},
               {"unassigned": "true"}, {"candidateGroup": "fgw", "includeAssignedTasks": "true"}]
    counted = {}
    for name in ("zhang", "wang", "fgw1", "fgw2", "zrzy1", "admin"):
        reader = client if name == "admin" else people[name]
        for query in queries:
            listed = reader.tasks(**query)
            r = reader.get("/engine-rest/task/count", query_string=query)
            assert r.status_code == 200, r.get_json()
            assert r.get_json()["count"] == len(listed), (name, query, [t["name"] for t in listed])
            by_priority = reader.tasks(sortBy="priority", sortOrder="desc", **query)
            assert sorted(t["id"] for t in by_priority) == sorted(t["id"] for t in listed), (name, query)
            by_due = reader.tasks(sortBy="dueDate", sortOrder="asc", **query)
            assert sorted(t["id"] for t in by_due) == sorted(t["id"] for t in listed), (name, query)
            counted[name, tuple(query.items())] = len(listed)
    assert [counted[name, ()] for name in ("zhang", "wang", "fgw1", "fgw2", "zrzy1", "admin")] == [1, 1, 2, 3, 0, 5]
    assert counted["fgw1", (("candidateGroup", "fgw"),)] == 1                    # the claimed task is not in the queue
    assert counted["zrzy1", (("candidateGroup", "fgw"),)] == 0                   # another department's queue
    assert counted["fgw1", (("candidateGroup", "fgw"), ("includeAssignedTasks", "true"))] == 2
    assert counted["zhang", (("candidateGroup", "applicants"),)] == 1             # not wang's correction
    assert counted["admin", (("candidateGroup", "applicants"),)] == 2
    assert counted["fgw2", (("candidateUser", "fgw2"),)] == 2                     # offered by name, and fgw's queue


# --- the audit of refusals --------------------------------------------------------------

def test_every_refused_write_is_audited_outside_the_cases_chain_and_reads_are_not(client, people, deployed):
    case = started(people["window1"])
    [task] = client.tasks(processInstanceId=case)
    before = case_events(client, case)
    zrzy1 = people["zrzy1"]
    refused(zrzy1.complete(task["id"], typed(decision="approve", opinion="越权")))
    refused(zrzy1.post(f"/engine-rest/task/{task['id']}/claim", json={"userId": "zrzy1"}))
    refused(zrzy1.delete(f"/engine-rest/process-instance/{case}"))
    refused(zrzy1.get(f"/engine-rest/task/{task['id']}"))                  # a read: refused, not recorded
    denied = system_events(client, outcome="denied", actor="zrzy1")
    assert [(e["target"], e["processInstanceId"]) for e in denied] == [
        (f"POST /engine-rest/task/{task['id']}/complete", case),
        (f"POST /engine-rest/task/{task['id']}/claim", case),
        (f"DELETE /engine-rest/process-instance/{case}", case)]
    assert all(e["data"]["reason"] and e["data"]["groups"] == ["zrzy"] for e in denied)
    assert "越权" not in str(denied)                                       # what was refused is not kept
    after = case_events(client, case)
    assert after["events"] == before["events"] and after["verification"]["valid"] is True
    dossier = client.get(f"/api/v1/process-instance/{case}/dossier").get_json()
    assert [d["request"] for d in dossier["denials"]] == [e["target"] for e in denied]
    verdict = client.get("/api/v1/audit/verification").get_json()
    assert verdict["valid"] is True, verdict


def test_every_decision_on_a_case_is_an_event_of_its_chain(client, people, deployed):
    fgw1, fgw2 = people["fgw1"], people["fgw2"]
    case = started(people["window1"], applicantName="某公司")
    [task] = fgw1.tasks()
    assert fgw1.post(f"/engine-rest/task/{task['id']}/claim", json={"userId": "fgw1"}).status_code == 204
    assert fgw1.post(f"/engine-rest/task/{task['id']}/unclaim").status_code == 204
    assert fgw1.post(f"/engine-rest/task/{task['id']}/assignee", json={"userId": "fgw2"}).status_code == 204
    assert fgw2.complete(task["id"], typed(decision="correction")).status_code == 204
    other = started(client)
    assert client.delete(f"/engine-rest/process-instance/{other}", query_string={"deleteReason": "撤回"}).status_code == 204
    trail = case_events(client, case)
    assert [(e["kind"], e["actor"]) for e in trail["events"]] == [
        ("ProcessInstanceStarted", "window1"), ("TaskClaimed", "fgw1"), ("TaskUnclaimed", "fgw1"),
        ("TaskAssigned", "fgw1"), ("TaskCompleted", "fgw2")]
    assert trail["events"][-1]["data"]["variables"] == {"decision": "correction"}
    assert [e["kind"] for e in case_events(client, other)["events"]][-1] == "ProcessInstanceDeleted"


def test_every_change_outside_a_case_is_an_event_of_the_system_chain(client):
    clerk = client.create_user("clerk", ["window"])
    token = clerk.post("/api/v1/tokens", json={"label": "窗口电脑"}).get_json()
    assert clerk.delete(f"/api/v1/tokens/{token['id']}").status_code == 204
    assert client.delete("/engine-rest/group/window/members/clerk").status_code == 204
    assert client.put("/api/v1/calendar/days/2025-10-11", json={"working": False, "name": "台风停工"}).status_code == 200
    assert client.deploy(extra={"x.bpmn": one_task("x")}).status_code == 200
    kinds = [(e["kind"], e["actor"]) for e in system_events(client)]
    assert kinds[-8:] == [("UserCreated", "admin"), ("GroupCreated", "admin"), ("MembershipAdded", "admin"),
                          ("TokenIssued", "clerk"), ("TokenRevoked", "clerk"), ("MembershipRemoved", "admin"),
                          ("CalendarDaySet", "admin"), ("DeploymentCreated", "admin")]
    assert token["token"] not in str(system_events(client))


def test_removing_a_membership_that_is_not_there_records_nothing(client):
    client.create_user("clerk", ["window"])
    client.create_user("fgw9", ["fgw"])
    before = len(system_events(client))
    assert client.delete("/engine-rest/group/fgw/members/clerk").status_code == 204      # not a member
    for path in ("/engine-rest/group/nosuch/members/clerk", "/engine-rest/group/window/members/nosuch"):
        r = client.delete(path)
        assert r.status_code == 404 and "nosuch" in r.get_json()["message"], r.get_json()
    assert len(system_events(client)) == before
    assert client.delete("/engine-rest/group/window/members/clerk").status_code == 204
    assert [e["kind"] for e in system_events(client)][before:] == ["MembershipRemoved"]
