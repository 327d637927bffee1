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
