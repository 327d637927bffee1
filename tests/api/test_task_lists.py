"""GET /task and /task/count build a list's SQL once per shape (which filters, how many
groups, the order, the paging) and bind each request's values in it (engine/tasks.py):
whoever asks next, with other values in the same shape, gets their own answer."""
from __future__ import annotations

import pytest

from engine import tasks
from tests.security.models import one_task


@pytest.fixture
def offices(client):
    """Two cases offered to fgw, three to zjj, one to the user wang by name.  Returns
    {name: client} for officers of one department, of both, of none, and wang."""
    r = client.deploy(extra={"fgw.bpmn": one_task("for_fgw"),
                             "zjj.bpmn": one_task("for_zjj", 'camunda:candidateGroups="zjj"'),
                             "wang.bpmn": one_task("for_wang", 'camunda:candidateUsers="wang"')})
    assert r.status_code == 200, r.get_json()
    for key, cases in (("for_fgw", 2), ("for_zjj", 3), ("for_wang", 1)):
        for _ in range(cases):
            client.start(key)
    return {"fgw1": client.create_user("fgw1", ["fgw"]), "fgw2": client.create_user("fgw2", ["fgw"]),
            "zjj1": client.create_user("zjj1", ["zjj"]), "both": client.create_user("both", ["fgw", "zjj"]),
            "nobody": client.create_user("nobody"), "wang": client.create_user("wang")}


def keys(listed: list) -> list:
    return sorted(t["processDefinitionKey"] for t in listed)


def count(officer, **query) -> int:
    r = officer.get("/engine-rest/task/count", query_string=query)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["count"]


QUERIES = ({}, {"candidateGroup": "fgw"}, {"candidateGroup": "zjj"}, {"candidateUser": "wang"},
           {"sortBy": "dueDate", "maxResults": 2}, {"firstResult": 1, "maxResults": 15})


def test_each_reader_gets_their_own_list_from_the_same_statements(offices):
    fgw, zjj, wang = ["for_fgw"] * 2, ["for_zjj"] * 3, ["for_wang"]
    seen = {"fgw1": fgw, "fgw2": fgw, "zjj1": zjj, "both": fgw + zjj, "nobody": [], "wang": wang}
    for _ in range(2):                              # the second round reads through built statements
        for name, officer in offices.items():
            assert keys(officer.tasks()) == seen[name], name
            assert count(officer) == len(seen[name]), name
            for group in ("fgw", "zjj"):
                expect = [k for k in seen[name] if k == f"for_{group}"] if name != "wang" else []
                assert keys(officer.tasks(candidateGroup=group)) == expect, (name, group)
                assert count(officer, candidateGroup=group) == len(expect), (name, group)
    assert keys(offices["wang"].tasks(candidateUser="wang")) == wang
    assert offices["fgw1"].tasks(candidateUser="wang") == []
    assert [len(offices["both"].tasks(firstResult=first, maxResults=2)) for first in (0, 2, 4)] == [2, 2, 1]


def test_a_second_officer_of_the_same_shape_reuses_the_statements(offices):
    def ask(officer):
        for query in QUERIES:
            officer.tasks(**query)
            count(officer, **query)
    tasks._LISTS.clear()
    ask(offices["fgw1"])
    built = len(tasks._LISTS)
    ask(offices["fgw2"])                            # same department count, other values
    assert len(tasks._LISTS) == built
    ask(offices["both"])                            # two departments: statements of their own
    assert len(tasks._LISTS) > built


def test_a_queue_count_follows_each_change_of_assignee(client):
    """A group's queue is counted from task_candidate alone (engine/tasks.py
    `_group_count`): its copy of whether a task is unassigned follows a claim, an
    unclaim, a reassignment and an assignee the model gives; a task naming the group
    twice counts once."""
    r = client.deploy(extra={"q.bpmn": one_task("for_fgw"),
                             "twice.bpmn": one_task("fgw_twice", 'camunda:candidateGroups="fgw, fgw"'),
                             "given.bpmn": one_task("fgw_given",
                                                    'camunda:candidateGroups="fgw" camunda:assignee="fgw2"')})
    assert r.status_code == 200, r.get_json()
    fgw1, fgw2 = client.create_user("fgw1", ["fgw"]), client.create_user("fgw2", ["fgw"])
    for key in ("for_fgw", "for_fgw", "fgw_twice", "fgw_given"):
        client.start(key)

    def counts():
        """(the queue, the queue with the assigned tasks), each as counted and as listed"""
        queue = count(fgw1, candidateGroup="fgw"), len(fgw1.tasks(candidateGroup="fgw"))
        every = (count(fgw1, candidateGroup="fgw", includeAssignedTasks="true"),
                 len(fgw1.tasks(candidateGroup="fgw", includeAssignedTasks="true")))
        return queue, every

    assert counts() == ((3, 3), (4, 4))
    first, second = [t["id"] for t in fgw1.tasks(processDefinitionKey="for_fgw")]
    assert fgw1.post(f"/engine-rest/task/{first}/claim", json={"userId": "fgw1"}).status_code == 204
    assert counts() == ((2, 2), (4, 4))
    assert fgw1.post(f"/engine-rest/task/{second}/assignee", json={"userId": "fgw2"}).status_code == 204
    assert counts() == ((1, 1), (4, 4))
    assert fgw1.post(f"/engine-rest/task/{first}/unclaim").status_code == 204
    assert counts() == ((2, 2), (4, 4))
    assert fgw2.post(f"/engine-rest/task/{second}/assignee", json={"userId": None}).status_code == 204
    assert counts() == ((3, 3), (4, 4))
    assert client.complete(first).status_code == 204
    assert counts() == ((2, 2), (3, 3))
