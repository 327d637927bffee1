"""GET /task and /task/count build a list's SQL once per shape (which filters, how many
groups, the order, the paging) and bind each request's values in it (engine/tasks.py):
whoever asks next, with other values in the same shape, gets their own answer."""
from __future__ import annotations

import pytest

from engine import tasks
from tests.conftest import typed
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
           {"sortBy": "dueDate", "sortOrder": "asc", "maxResults": 2}, {"firstResult": 1, "maxResults": 15})


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


@pytest.fixture
def three_ways(client):
    """li, of fgw, may see fgw's three cases; one task offered to fgw and to li by name and
    assigned to li by its model (visible all three ways); one of zjj's offered to li by
    name; one of zjj's assigned to li.  wang, of no department, may see one task offered
    to and assigned to wang, one offered to wang, one of zjj's assigned to wang.  zjj's
    three other cases are neither's.  Returns the readers, the ids each may see and the
    ids by process."""
    r = client.deploy(extra={
        "fgw.bpmn": one_task("for_fgw"),
        "zjj.bpmn": one_task("for_zjj", 'camunda:candidateGroups="zjj"'),
        "all.bpmn": one_task("all_ways", 'camunda:candidateGroups="fgw" camunda:candidateUsers="li" '
                                         'camunda:assignee="li"'),
        "named.bpmn": one_task("named_li", 'camunda:candidateGroups="zjj" camunda:candidateUsers="li"'),
        "wang.bpmn": one_task("wang_both", 'camunda:candidateUsers="wang" camunda:assignee="wang"'),
        "wang_named.bpmn": one_task("named_wang", 'camunda:candidateUsers="wang"')})
    assert r.status_code == 200, r.get_json()
    readers = {"li": client.create_user("li", ["fgw"]), "wang": client.create_user("wang")}
    for key, cases in (("for_fgw", 3), ("for_zjj", 5), ("all_ways", 1), ("named_li", 1), ("wang_both", 1),
                       ("named_wang", 1)):
        for _ in range(cases):
            client.start(key)
    by_key = {}
    for t in client.tasks():
        by_key.setdefault(t["processDefinitionKey"], []).append(t["id"])
    to_li, to_wang = by_key["for_zjj"][:2]
    for task_id, user in ((to_li, "li"), (to_wang, "wang")):
        r = client.post(f"/engine-rest/task/{task_id}/assignee", json={"userId": user})
        assert r.status_code == 204, r.get_json()
    seen = {"li": set(by_key["for_fgw"] + by_key["all_ways"] + by_key["named_li"] + [to_li]),
            "wang": set(by_key["wang_both"] + by_key["named_wang"] + [to_wang])}
    return readers, seen, by_key


PAGED_QUERIES = ({}, {"unassigned": "true"}, {"sortBy": "dueDate", "sortOrder": "asc"},
                 {"sortBy": "name", "sortOrder": "desc"},
                 {"sortBy": "created", "sortOrder": "desc"})


@pytest.mark.parametrize("ways_reach", [tasks._WAYS_REACH, 3])
def test_a_task_visible_three_ways_is_listed_and_counted_once_and_pages_of_the_union_are_stable(
        three_ways, monkeypatch, ways_reach):
    """Everything a reader may see (GET /task, /task/count without a candidate filter) is
    the union of the ways a task is visible (engine/tasks.py `_visible_only`): assigned,
    offered by name, offered to a department.  A task visible all three ways is one task,
    once, with its own candidates; other departments' tasks are not there; the count is
    the list's length; pages of every size, in several orders, make the whole list.  With
    `ways_reach` 3, pages further down are read by the single SELECT instead (_read_as)."""
    monkeypatch.setattr(tasks, "_WAYS_REACH", ways_reach)
    readers, seen, by_key = three_ways
    assigned = set(by_key["all_ways"] + by_key["wang_both"] + by_key["for_zjj"][:2])
    [every_way] = [t for t in readers["li"].tasks() if t["processDefinitionKey"] == "all_ways"]
    assert (every_way["assignee"], every_way["candidateGroups"], every_way["candidateUsers"]) == \
        ("li", ["fgw"], ["li"])
    for name, reader in readers.items():
        whole = reader.tasks()
        assert sorted(t["id"] for t in whole) == sorted(seen[name]), name          # each once, no other's
        assert not set(by_key["for_zjj"][2:]) & {t["id"] for t in whole}, name
        for query in PAGED_QUERIES:
            whole = reader.tasks(**query)
            if query.get("unassigned"):
                assert {t["id"] for t in whole} == seen[name] - assigned, name
            assert count(reader, **query) == len(whole), (name, query)
            for size in (1, 2, 4):
                pages = [reader.tasks(firstResult=first, maxResults=size, **query)
                         for first in range(0, len(whole) + size, size)]
                assert [t for page in pages for t in page] == whole, (name, query, size)


def test_a_task_whose_stored_form_version_is_not_a_number_does_not_fail_the_list(client, engine):
    """A diagram deployed before camunda:formRefVersion was checked may hold "abc": rendering
    its tasks was a 500 for GET /task of the whole department; the version reads as null."""
    from sqlalchemy import update

    from engine.config import ROOT
    from engine.models import ProcessDefinition, UserTask
    ref = 'camunda:formRef="department_review" camunda:formRefBinding="version" camunda:formRefVersion="1"'
    r = client.deploy(extra={"versioned.bpmn": one_task("versioned", 'camunda:candidateGroups="fgw" ' + ref)
                             .replace('<bpmn:startEvent id="S" />', f'<bpmn:startEvent id="S" {ref} />'),
                             "review.form": (ROOT / "forms" / "department_review.form").read_bytes()})
    assert r.status_code == 200, r.get_json()
    case = client.start("versioned", typed(decision="approve", opinion="同意"))["id"]
    with engine.uow() as uow:                           # as an older version stored it
        uow.session.execute(update(UserTask).values(form_ref={"key": "department_review", "binding": "version",
                                                              "version": "abc"}))
        uow.session.execute(update(ProcessDefinition).values(start_form={"formRef": "department_review",
                                                                         "binding": "version", "version": "abc"}))
        uow.commit()
    officer = client.create_user("fgw1", ["fgw"])
    r = officer.get("/engine-rest/task")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    [task] = r.get_json()
    expected = {"key": "department_review", "binding": "version", "version": None}
    assert task["processInstanceId"] == case and task["camundaFormRef"] == expected, task
    for path in (f"/engine-rest/task/{task['id']}", f"/engine-rest/task/{task['id']}/form",
                 "/engine-rest/process-definition/key/versioned/startForm"):
        r = officer.get(path)
        assert r.status_code == 200 and r.get_json()["camundaFormRef"] == expected, (path, r.get_data(as_text=True))
