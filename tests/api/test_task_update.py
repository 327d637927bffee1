"""A task's own fields changed as Camunda 7's Tasklist changes them: PUT /task/{id}
(Update Task: its "set due date" and "set follow-up date" put the whole task back),
delegation (委派: /delegate and /resolve), and the task query's delegationState and
owner, within who may work on a task (the README's "Who may do what")."""
from __future__ import annotations

import pytest

from tests.conftest import typed
from tests.security.models import one_task

DUE = "2025-10-10T17:00:00.000+0800"
FOLLOW_UP = "2025-10-08T09:00:00.000+0800"


@pytest.fixture
def settings(settings):
    settings.test_clock = True                 # the legal clock's tests move the engine's clock
    return settings


@pytest.fixture
def hall(client):
    assert client.deploy(extra={"updated.bpmn": one_task("updated")}).status_code == 200
    officers = {name: client.create_user(name, [group]) for name, group in
                (("fgw1", "fgw"), ("fgw2", "fgw"), ("fgw3", "fgw"), ("zjj1", "zjj"))}
    client.create_user("outsider")
    case = client.start("updated", business_key="SZ-UPD-1")["id"]
    [task] = officers["fgw1"].tasks(processInstanceId=case)
    return officers, case, task["id"]


def task_of(reader, task_id) -> dict:
    r = reader.get(f"/engine-rest/task/{task_id}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def trail(client, case) -> list:
    r = client.get(f"/api/v1/process-instance/{case}/dossier")
    assert r.status_code == 200, r.get_json()
    return [(e["kind"], e["actor"], e["data"]) for e in r.get_json()["auditTrail"]["events"]]


def refused(response, status, *words) -> dict:
    body = response.get_json()
    assert response.status_code == status, (response.status_code, body)
    assert all(word in body["message"] for word in words), body
    return body


# --- PUT /task/{id} ---------------------------------------------------------------------

def test_tasklist_sets_a_due_and_a_follow_up_date_by_putting_the_whole_task_back(client, hall):
    officers, case, task_id = hall
    fgw1 = officers["fgw1"]
    assert fgw1.post(f"/engine-rest/task/{task_id}/claim", json={"userId": "fgw1"}).status_code == 204
    before = task_of(fgw1, task_id)
    r = fgw1.put(f"/engine-rest/task/{task_id}", json={**before, "due": DUE, "followUp": FOLLOW_UP})
    assert r.status_code == 204, r.get_json()
    after = task_of(fgw1, task_id)
    assert after["due"] == DUE and after["followUp"] == FOLLOW_UP
    unchanged = ("name", "description", "assignee", "owner", "priority", "delegationState", "created")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert after["taskState"] == "Updated" and after["lastUpdated"] >= before["lastUpdated"]
    assert [t["id"] for t in fgw1.tasks(dueBefore="2025-10-11T00:00:00.000+0800")] == [task_id]
    assert fgw1.tasks(followUpAfter="2025-10-09T00:00:00.000+0800") == []

    # a field left out keeps its value; one sent as null is cleared
    r = fgw1.put(f"/engine-rest/task/{task_id}", json={"name": "审查（加急）", "description": "申请人来电催办",
                                                        "priority": 80, "followUp": None})
    assert r.status_code == 204, r.get_json()
    after = task_of(fgw1, task_id)
    assert (after["name"], after["description"], after["priority"]) == ("审查（加急）", "申请人来电催办", 80)
    assert after["due"] == DUE and after["followUp"] is None and after["assignee"] == "fgw1"
    assert [t["id"] for t in fgw1.tasks(nameLike="%加急%", minPriority=80)] == [task_id]

    # the whole task sent back unchanged changes nothing, and records nothing
    events = trail(client, case)
    assert fgw1.put(f"/engine-rest/task/{task_id}", json=task_of(fgw1, task_id)).status_code == 204
    assert trail(client, case) == events
    kind, actor, data = events[-1]
    assert (kind, actor) == ("TaskUpdated", "fgw1")
    assert data["changes"] == {"name": "审查（加急）", "description": "申请人来电催办", "priority": 80, "followUp": None}
    assert data["previous"] == {"name": "审查", "description": None, "priority": 50, "followUp": FOLLOW_UP}


def test_who_may_put_a_task_is_who_may_work_on_it(client, hall):
    officers, case, task_id = hall
    fgw1, fgw2, zjj1 = officers["fgw1"], officers["fgw2"], officers["zjj1"]
    # unclaimed: any candidate may set its dates; another department may not even see it
    assert fgw2.put(f"/engine-rest/task/{task_id}", json={"due": DUE}).status_code == 204
    refused(zjj1.put(f"/engine-rest/task/{task_id}", json={"due": DUE}), 403, "zjj1")
    supervisor = client.create_user("du1", ["supervisors"])
    refused(supervisor.put(f"/engine-rest/task/{task_id}", json={"priority": 90}), 403)
    # claimed: the assignee's (and an administrator's) alone
    assert fgw1.post(f"/engine-rest/task/{task_id}/claim", json={"userId": "fgw1"}).status_code == 204
    refused(fgw2.put(f"/engine-rest/task/{task_id}", json={"priority": 90}), 403, "assigned to 'fgw1'")
    assert client.put(f"/engine-rest/task/{task_id}", json={"priority": 90}).status_code == 204
    assert task_of(fgw1, task_id)["priority"] == 90
    assert client.put("/engine-rest/task/no-such-task", json={"priority": 1}).status_code == 404
    denied = client.get("/api/v1/audit/system-events", query_string={"outcome": "denied"}).get_json()
    assert any(e["target"] == f"PUT /engine-rest/task/{task_id}" and e["actor"] == "fgw2" for e in denied)


def test_put_changes_the_assignee_and_owner_by_the_rules_of_assignment(client, hall):
    officers, case, task_id = hall
    fgw1, fgw2 = officers["fgw1"], officers["fgw2"]
    assert fgw1.put(f"/engine-rest/task/{task_id}", json={"assignee": "fgw1"}).status_code == 204    # a claim
    assert task_of(fgw1, task_id)["assignee"] == "fgw1"
    refused(fgw1.put(f"/engine-rest/task/{task_id}", json={"assignee": "zjj1"}), 403, "not a candidate")
    refused(fgw1.put(f"/engine-rest/task/{task_id}", json={"owner": "outsider"}), 403, "not a candidate")
    refused(fgw1.put(f"/engine-rest/task/{task_id}", json={"assignee": "nobody"}), 400, "no user with id 'nobody'")
    assert fgw1.put(f"/engine-rest/task/{task_id}", json={"assignee": "fgw2", "owner": "fgw1"}).status_code == 204
    task = task_of(fgw2, task_id)
    assert (task["assignee"], task["owner"]) == ("fgw2", "fgw1")
    assert [t["id"] for t in fgw1.tasks(owner="fgw1")] == [task_id]
    kinds = [kind for kind, _, _ in trail(client, case)]
    assert kinds[-2:] == ["TaskUpdated", "TaskUpdated"]
    # an administrator gives a task to anyone
    assert client.put(f"/engine-rest/task/{task_id}", json={"assignee": "outsider"}).status_code == 204
    assert task_of(client.as_user("outsider"), task_id)["assignee"] == "outsider"


@pytest.mark.parametrize("body, says", [
    ({"delegationState": "LATER"}, "Valid values for property 'delegationState' are 'PENDING' or 'RESOLVED', "
                                   "but was 'LATER'"),
    ({"parentTaskId": "t1"}, "there are no subtasks here"),
    ({"caseInstanceId": "c1"}, "there are no CMMN cases here"),
    ({"tenantId": "other"}, "tenant"),
    ({"priority": 2**31}, "priority"),
    ({"due": "next friday"}, "due"),
    ({"name": "x" * 256}, "name"),
])
def test_a_field_that_cannot_be_set_is_a_400_and_changes_nothing(client, hall, body, says):
    officers, case, task_id = hall
    before = task_of(client, task_id)
    r = client.put(f"/engine-rest/task/{task_id}", json={"priority": 77, **body})
    refused(r, 400, says)
    assert r.get_json()["type"] == "InvalidRequestException"
    assert task_of(client, task_id) == before


def test_a_delegation_state_put_in_any_case_is_camundas_name(client, hall):
    _, _, task_id = hall
    assert client.put(f"/engine-rest/task/{task_id}", json={"delegationState": "resolved"}).status_code == 204
    assert task_of(client, task_id)["delegationState"] == "RESOLVED"
    assert client.put(f"/engine-rest/task/{task_id}", json={"delegationState": None}).status_code == 204
    assert task_of(client, task_id)["delegationState"] is None


# --- delegation (委派) ----------------------------------------------------------------------

def test_an_officer_delegates_a_task_and_gets_it_back_resolved(client, hall):
    officers, case, task_id = hall
    fgw1, fgw2, fgw3 = officers["fgw1"], officers["fgw2"], officers["fgw3"]
    assert fgw1.post(f"/engine-rest/task/{task_id}/claim", json={"userId": "fgw1"}).status_code == 204
    r = fgw1.post(f"/engine-rest/task/{task_id}/delegate", json={"userId": "fgw2"})
    assert r.status_code == 204, r.get_json()
    task = task_of(fgw2, task_id)
    assert (task["assignee"], task["owner"], task["delegationState"]) == ("fgw2", "fgw1", "PENDING")
    assert [t["id"] for t in fgw1.tasks(delegationState="PENDING")] == [task_id]
    assert fgw1.tasks(delegationState="RESOLVED") == []
    assert [t["id"] for t in fgw1.tasks(owner="fgw1", assignee="fgw2")] == [task_id]
    r = fgw1.post("/engine-rest/task", json={"delegationState": "pending"})
    assert [t["id"] for t in r.get_json()] == [task_id]
    assert fgw1.get("/engine-rest/task/count", query_string={"delegationState": "PENDING"}).get_json() == {"count": 1}
    refused(fgw1.get("/engine-rest/task", query_string={"delegationState": "LATER"}), 400, "'PENDING' or 'RESOLVED'")
    links = fgw1.get(f"/engine-rest/task/{task_id}/identity-links").get_json()
    assert {"userId": "fgw1", "groupId": None, "type": "owner"} in links
    assert {"userId": "fgw2", "groupId": None, "type": "assignee"} in links

    refused(fgw3.post(f"/engine-rest/task/{task_id}/resolve", json={}), 403, "assigned to 'fgw2'")
    r = fgw2.post(f"/engine-rest/task/{task_id}/resolve",
                  json={"variables": typed(opinion="现场核查无误")})
    assert r.status_code == 204, r.get_json()
    task = task_of(fgw1, task_id)
    assert (task["assignee"], task["owner"], task["delegationState"]) == ("fgw1", "fgw1", "RESOLVED")
    variables = fgw1.get(f"/engine-rest/task/{task_id}/variables").get_json()
    assert variables["opinion"]["value"] == "现场核查无误"
    refused(fgw1.post(f"/engine-rest/task/{task_id}/resolve", json={}), 400, "not delegated")

    kinds = [(kind, actor) for kind, actor, _ in trail(client, case)]
    assert kinds[-3:] == [("TaskDelegated", "fgw1"), ("VariablesModified", "fgw2"), ("TaskResolved", "fgw2")]
    assert fgw1.complete(task_id).status_code == 204


def test_a_delegation_goes_only_to_a_colleague_the_task_is_offered_to(client, hall):
    officers, case, task_id = hall
    fgw1, fgw2, zjj1 = officers["fgw1"], officers["fgw2"], officers["zjj1"]
    assert fgw1.post(f"/engine-rest/task/{task_id}/claim", json={"userId": "fgw1"}).status_code == 204
    refused(fgw1.post(f"/engine-rest/task/{task_id}/delegate", json={"userId": "zjj1"}), 403, "not a candidate")
    refused(fgw1.post(f"/engine-rest/task/{task_id}/delegate", json={"userId": "nobody"}), 400, "no user")
    refused(fgw1.post(f"/engine-rest/task/{task_id}/delegate", json={}), 400)
    refused(fgw2.post(f"/engine-rest/task/{task_id}/delegate", json={"userId": "fgw2"}), 403, "assigned to 'fgw1'")
    refused(zjj1.post(f"/engine-rest/task/{task_id}/delegate", json={"userId": "zjj1"}), 403)
    assert task_of(fgw1, task_id)["delegationState"] is None
    assert client.post("/engine-rest/task/no-such-task/delegate", json={"userId": "fgw2"}).status_code == 404


def test_a_delegated_task_may_still_be_completed_as_in_camunda(client, hall):
    officers, case, task_id = hall
    fgw1, fgw2 = officers["fgw1"], officers["fgw2"]
    assert fgw1.post(f"/engine-rest/task/{task_id}/claim", json={"userId": "fgw1"}).status_code == 204
    assert fgw1.post(f"/engine-rest/task/{task_id}/delegate", json={"userId": "fgw2"}).status_code == 204
    assert fgw2.complete(task_id).status_code == 204
    [done] = client.get("/engine-rest/history/task", query_string={"processInstanceId": case}).get_json()
    assert (done["assignee"], done["owner"], done["deleteReason"]) == ("fgw2", "fgw1", "completed")


def test_the_owner_of_a_delegated_task_sees_it_and_may_take_it_back(client):
    """A task assigned by the model to one officer (no candidates): delegated, it stays
    in its owner's list and the owner may take it back."""
    assert client.deploy(extra={"direct.bpmn": one_task("direct", 'camunda:assignee="li"')}).status_code == 200
    li, wang = client.create_user("li", ["fgw"]), client.create_user("wang", ["fgw"])
    client.start("direct")
    [task] = li.tasks()
    # wang is no candidate: only an administrator hands li's task to him
    refused(li.post(f"/engine-rest/task/{task['id']}/delegate", json={"userId": "wang"}), 403, "not a candidate")
    assert client.post(f"/engine-rest/task/{task['id']}/delegate", json={"userId": "wang"}).status_code == 204
    assert [t["id"] for t in li.tasks()] == [task["id"]] == [t["id"] for t in wang.tasks()]
    assert li.get("/engine-rest/task/count").get_json() == {"count": 1}
    assert li.post(f"/engine-rest/task/{task['id']}/assignee", json={"userId": "li"}).status_code == 204
    assert task_of(li, task["id"])["assignee"] == "li"
    assert wang.tasks() == []


# --- the legal clock and a due date set by hand -------------------------------------------

def test_a_due_date_set_by_hand_moves_the_tasks_due_not_the_legal_clock(client):
    from tests.api.test_legal_clock import TACIT, clocks, eventually, set_clock, state
    set_clock(client, "2025-09-26T10:00:00+08:00")             # Friday: 3 working days end Tue 30th
    assert client.deploy(TACIT).status_code == 200
    case = client.start("tacit_review", typed(limit="3wd"))["id"]
    [task] = client.tasks(processInstanceId=case)
    assert task["due"] == "2025-09-30T23:59:59.000+0800"
    # earlier: the officer's own target; the clock, its warning and its tacit approval stay
    r = client.put(f"/engine-rest/task/{task['id']}", json={"due": "2025-09-29T12:00:00.000+0800"})
    assert r.status_code == 204, r.get_json()
    assert task_of(client, task["id"])["due"] == "2025-09-29T12:00:00.000+0800"
    assert clocks(client, case)["review"]["deadline"] == "2025-09-30T23:59:59+08:00"
    # later than the legal deadline, or none: it would hide a task the law calls overdue
    for due in ("2025-10-01T00:00:00.000+0800", None):
        refused(client.put(f"/engine-rest/task/{task['id']}", json={"due": due}), 400,
                "legal clock 'review'", "2025-09-30T23:59:59")
    assert task_of(client, task["id"])["due"] == "2025-09-29T12:00:00.000+0800"
    set_clock(client, "2025-10-01T00:00:01+08:00")
    assert eventually(lambda: state(client, case) == "COMPLETED")
    assert clocks(client, case)["review"]["outcome"] == "tacit_approval"


def test_the_legal_clock_moving_sets_the_due_to_its_new_deadline(client):
    from tests.api.test_legal_clock import TACIT, clocks, set_clock
    set_clock(client, "2025-09-26T10:00:00+08:00")
    assert client.deploy(TACIT).status_code == 200
    case = client.start("tacit_review", typed(limit="3wd"))["id"]
    [task] = client.tasks(processInstanceId=case)
    r = client.put(f"/engine-rest/task/{task['id']}", json={"due": "2025-09-29T12:00:00.000+0800"})
    assert r.status_code == 204, r.get_json()
    r = client.put("/api/v1/calendar/days/2025-09-29", json={"working": False, "name": "台风停工"})
    assert r.status_code == 200
    assert clocks(client, case)["review"]["deadline"] == "2025-10-09T23:59:59+08:00"
    assert task_of(client, task["id"])["due"] == "2025-10-09T23:59:59.000+0800"
