"""Task comments (Camunda 7's /task/{id}/comment): an officer's notes on a task, read by
whoever may see the task and, once it is done, by whoever takes part in its case."""
from __future__ import annotations

import pytest

from tests.security.models import one_task


@pytest.fixture
def officers(client):
    assert client.deploy(extra={"noted.bpmn": one_task("noted")}).status_code == 200
    return {"fgw": client.create_user("fgw1", ["fgw"]), "zjj": client.create_user("zjj1", ["zjj"])}


def test_an_officer_notes_a_task_and_the_note_stays_with_the_case_after_the_task_is_done(client, officers):
    fgw, zjj = officers["fgw"], officers["zjj"]
    case = client.start("noted")["id"]
    [task] = fgw.tasks()
    url = f"/engine-rest/task/{task['id']}/comment"
    r = fgw.post(f"{url}/create", json={"message": "已电话联系申请人补正材料", "processInstanceId": case})
    assert r.status_code == 200, r.get_json()
    note = r.get_json()
    assert note["userId"] == "fgw1" and note["taskId"] == task["id"] and note["processInstanceId"] == case
    assert note["message"] == "已电话联系申请人补正材料" and note["time"].endswith("+0800")
    assert note["links"][0]["href"].endswith(f"{url}/{note['id']}")
    assert fgw.post(f"{url}/create", json={"message": "材料已补齐"}).status_code == 200
    assert [c["message"] for c in fgw.get(url).get_json()] == ["已电话联系申请人补正材料", "材料已补齐"]
    assert fgw.get(f"{url}/{note['id']}").get_json()["message"] == "已电话联系申请人补正材料"

    assert zjj.get(url).status_code == 403                       # another department's task
    assert zjj.post(f"{url}/create", json={"message": "x"}).status_code == 403
    for body, says in [({"message": "  "}, "message"), ({"message": "x" * 4001}, "4000"),
                       ({"message": "x", "processInstanceId": "another-case"}, "belongs to"), ({}, "message")]:
        r = fgw.post(f"{url}/create", json=body)
        assert r.status_code == 400 and says in r.get_data(as_text=True), (body, r.get_json())
    assert len(fgw.get(url).get_json()) == 2                      # nothing written by the refusals

    assert fgw.complete(task["id"]).status_code == 204
    assert [c["message"] for c in fgw.get(url).get_json()] == ["已电话联系申请人补正材料", "材料已补齐"]
    assert client.get(url).status_code == 200                     # the administrator
    assert zjj.get(url).status_code == 403                        # takes no part in the case
    assert fgw.post(f"{url}/create", json={"message": "迟到的备注"}).status_code == 404     # done
    assert fgw.get("/engine-rest/task/no-such-task/comment").status_code == 404
    assert fgw.get(f"{url}/no-such-comment").status_code == 404


def test_an_applicant_reads_and_writes_no_note_even_on_their_own_case(client):
    """Officers' notes are the hall's own: the applicant who started the case takes part in
    it (they read its tasks' history) but not in its notes."""
    from tests.security.models import application
    assert client.deploy(extra={"application.bpmn": application()}).status_code == 200
    fgw = client.create_user("fgw1", ["fgw"])
    applicant = client.create_user("zhangsan", ["applicants"])
    r = applicant.post("/engine-rest/process-definition/key/application/start", json={})
    assert r.status_code == 200, r.get_json()
    [task] = fgw.tasks()
    url = f"/engine-rest/task/{task['id']}/comment"
    assert fgw.post(f"{url}/create", json={"message": "申请人材料疑似伪造，待核"}).status_code == 200
    assert applicant.get(url).status_code == 403
    assert fgw.complete(task["id"], {"decision": {"value": "done", "type": "String"}}).status_code == 204
    assert applicant.get(url).status_code == 403 and len(fgw.get(url).get_json()) == 1
