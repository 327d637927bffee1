"""Camunda 7's /filter as its Tasklist uses it: saved task queries, an administrator's
shared with everyone and a user's own, listed for each user as that user."""
from __future__ import annotations

import pytest

from tests.security.models import one_task

FILTER = "/engine-rest/filter"
MY_TASKS = {"resourceType": "Task", "name": "我的待办", "query": {"assigneeExpression": "${currentUser()}"},
            "properties": {"color": "#3e4d2f", "priority": 1}}
MY_GROUPS = {"resourceType": "Task", "name": "部门待办",
             "query": {"candidateGroupsExpression": "${currentUserGroups()}", "sorting": [
                 {"sortBy": "created", "sortOrder": "asc"}]}}


@pytest.fixture
def hall(client):
    """Three cases for fgw (one claimed by fgw1) and one for zjj."""
    for key, group in (("fgw_review", "fgw"), ("zjj_review", "zjj")):
        model = one_task(key, task_attrs=f'camunda:candidateGroups="{group}"')
        assert client.deploy(extra={f"{key}.bpmn": model}).status_code == 200
    people = {"fgw1": client.create_user("fgw1", ["fgw"]), "fgw2": client.create_user("fgw2", ["fgw"]),
              "zjj1": client.create_user("zjj1", ["zjj"])}
    for _ in range(3):
        client.start("fgw_review")
    client.start("zjj_review")
    first = people["fgw1"].tasks(candidateGroup="fgw")[0]
    assert people["fgw1"].post(f"/engine-rest/task/{first['id']}/claim", json={"userId": "fgw1"}).status_code == 204
    return people


def _create(user, body):
    r = user.post(f"{FILTER}/create", json=body)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_a_shared_filter_lists_for_each_officer_what_is_theirs(client, hall):
    mine, groups = _create(client, MY_TASKS), _create(client, MY_GROUPS)
    assert mine["owner"] is None and mine["properties"] == MY_TASKS["properties"]
    fgw1, fgw2, zjj1 = hall["fgw1"], hall["fgw2"], hall["zjj1"]
    assert [t["assignee"] for t in fgw1.get(f"{FILTER}/{mine['id']}/list").get_json()] == ["fgw1"]
    assert fgw2.get(f"{FILTER}/{mine['id']}/list").get_json() == []
    assert fgw1.get(f"{FILTER}/{mine['id']}/count").get_json() == {"count": 1}
    assert len(fgw2.get(f"{FILTER}/{groups['id']}/list").get_json()) == 2         # the unassigned ones
    assert [t["processDefinitionKey"] for t in zjj1.get(f"{FILTER}/{groups['id']}/list").get_json()] == ["zjj_review"]
    page = fgw2.get(f"{FILTER}/{groups['id']}/list", query_string={"firstResult": 1, "maxResults": 5}).get_json()
    assert len(page) == 1
    single = fgw1.get(f"{FILTER}/{mine['id']}/singleResult")
    assert single.status_code == 200 and single.get_json()["assignee"] == "fgw1"
    assert fgw2.get(f"{FILTER}/{mine['id']}/singleResult").status_code == 204
    assert fgw2.get(f"{FILTER}/{groups['id']}/singleResult").status_code == 400
    # the body extends the query (Tasklist's search box)
    r = fgw2.post(f"{FILTER}/{groups['id']}/list", json={"processDefinitionKey": "zjj_review"})
    assert r.status_code == 200 and r.get_json() == []
    r = client.post(f"{FILTER}/{groups['id']}/count", json={"processDefinitionKey": "zjj_review"})
    assert r.get_json() == {"count": 0}                           # the administrator is in no department
    listed = fgw2.get(FILTER, query_string={"itemCount": "true"}).get_json()
    assert {(f["name"], f["itemCount"]) for f in listed} == {("我的待办", 0), ("部门待办", 2)}


def test_an_officer_keeps_filters_of_their_own_and_changes_no_shared_one(client, hall):
    shared = _create(client, MY_GROUPS)
    fgw1, fgw2 = hall["fgw1"], hall["fgw2"]
    own = _create(fgw1, {"resourceType": "Task", "name": "发改：已认领", "query": {"assigned": True}})
    assert own["owner"] == "fgw1"
    assert {f["name"] for f in fgw1.get(FILTER).get_json()} == {"部门待办", "发改：已认领"}
    assert {f["name"] for f in fgw2.get(FILTER).get_json()} == {"部门待办"}
    assert fgw2.get(f"{FILTER}/{own['id']}").status_code == 404                   # another's is not there
    assert fgw2.get(FILTER + "/count").get_json() == {"count": 1}
    assert client.get(FILTER + "/count").get_json() == {"count": 2}
    assert fgw1.put(f"{FILTER}/{shared['id']}", json={**MY_GROUPS, "name": "x"}).status_code == 403
    assert fgw1.delete(f"{FILTER}/{shared['id']}").status_code == 403
    r = fgw1.post(f"{FILTER}/create", json={**MY_GROUPS, "owner": "fgw2"})
    assert r.status_code == 403, r.get_json()
    assert fgw1.put(f"{FILTER}/{own['id']}", json={"resourceType": "Task", "name": "已认领",
                                                   "query": {"assigned": True}}).status_code == 204
    assert fgw1.get(f"{FILTER}/{own['id']}").get_json()["name"] == "已认领"
    assert fgw1.delete(f"{FILTER}/{own['id']}").status_code == 204
    assert fgw1.get(f"{FILTER}/{own['id']}").status_code == 404


@pytest.mark.parametrize("body, says", [
    ({"resourceType": "Case", "name": "x"}, "Task"),
    ({"resourceType": "Task", "name": " "}, "name"),
    ({"resourceType": "Task", "name": "x", "query": {"dueBefore": "tomorrow"}}, "dueBefore"),
    ({"resourceType": "Task", "name": "x", "query": {"candidateGroupLike": "f%"}}, "candidateGroupLike"),
    ({"resourceType": "Task", "name": "x", "query": {"assigneeExpression": "${someone()}"}}, "assigneeExpression"),
    ({"resourceType": "Task", "name": "x", "query": [1, 2]}, "query"),
], ids=["resource", "name", "date", "unserved", "expression", "not-an-object"])
def test_a_filter_the_task_query_would_refuse_is_a_400_and_nothing_is_saved(client, hall, body, says):
    r = client.post(f"{FILTER}/create", json=body)
    assert r.status_code == 400 and says in r.get_data(as_text=True), r.get_json()
    assert client.get(FILTER + "/count").get_json() == {"count": 0}
    assert client.get(f"{FILTER}/no-such-filter").status_code == 404
