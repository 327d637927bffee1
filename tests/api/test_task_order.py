"""GET /task sorted by due date: the hall's view of what is most urgent.  A task without a
due date comes after every task with one (sortOrder=asc) and before them (desc), tasks due
at the same time by id in the list's direction, on both stores (SQLite's own rule puts
NULL first, PostgreSQL's last).  A department's queue is read along its own index
(engine/tasks.py, migration 0010), other lists by the candidate sets: the order is the same."""
from __future__ import annotations

import pytest

from engine.clock import clock
from tests.conftest import typed
from tests.security.models import one_task

SOONER, LATER = "2030-03-01T09:00:00", "2030-03-04T17:30:00"


@pytest.fixture
def queue(client):
    """Six tasks in fgw's queue: two due SOONER, one LATER, three without a due date, started
    in an order unlike the due dates'.  Returns (the officer, {task id: due or None})."""
    r = client.deploy(extra={"dated.bpmn": one_task("dated", 'camunda:candidateGroups="fgw" camunda:dueDate="${due}"'),
                             "undated.bpmn": one_task("undated")})
    assert r.status_code == 200, r.get_json()
    officer = client.create_user("fgw1", ["fgw"])
    due = {}
    for key, when in (("undated", None), ("dated", LATER), ("dated", SOONER), ("undated", None),
                      ("dated", SOONER), ("undated", None)):
        case = client.start(key, typed(due=when) if when else {})["id"]
        [task] = client.tasks(processInstanceId=case)
        due[task["id"]] = when
    return officer, due


def expected(due: dict, descending: bool = False) -> list:
    ascending = sorted(due, key=lambda task: (due[task] is None, due[task] or "", task))
    return ascending[::-1] if descending else ascending


def ids(tasks: list) -> list:
    return [t["id"] for t in tasks]


def test_a_queue_by_due_date_puts_the_soonest_first_and_the_undated_last(queue):
    officer, due = queue
    listed = officer.tasks(candidateGroup="fgw", sortBy="dueDate", sortOrder="asc")
    assert ids(listed) == expected(due)
    assert [t["due"][:10] if t["due"] else None for t in listed] == \
        ["2030-03-01", "2030-03-01", "2030-03-04", None, None, None]
    assert ids(officer.tasks(candidateGroup="fgw", sortBy="dueDate", sortOrder="desc")) == expected(due, True)


def test_a_page_of_the_queue_by_due_date_is_a_slice_of_the_whole_list(queue):
    officer, due = queue
    for order, descending in (("asc", False), ("desc", True)):
        pages = [officer.tasks(candidateGroup="fgw", sortBy="dueDate", sortOrder=order,
                               firstResult=first, maxResults=2) for first in (0, 2, 4)]
        assert [ids(page) for page in pages] == [expected(due, descending)[k:k + 2] for k in (0, 2, 4)]


def test_every_list_by_due_date_has_the_queues_order(client, queue):
    """The queue walks its index; a list that holds assigned tasks too, or read by someone
    who sees it through another way, is read by the sets and sorted: the same order."""
    officer, due = queue
    assert ids(client.tasks(sortBy="dueDate", sortOrder="asc")) == expected(due)                 # admin, all tasks
    assert ids(officer.tasks(sortBy="dueDate", sortOrder="desc")) == expected(due, True)         # all they may see
    claimed = expected(due)[1]
    assert officer.post(f"/engine-rest/task/{claimed}/claim", json={"userId": "fgw1"}).status_code == 204
    left = {task: when for task, when in due.items() if task != claimed}
    assert ids(officer.tasks(candidateGroup="fgw", sortBy="dueDate", sortOrder="asc")) == expected(left)
    assert ids(officer.tasks(candidateGroup="fgw", includeAssignedTasks="true", sortBy="dueDate",
                             sortOrder="asc")) == expected(due)
    assert ids(officer.tasks(candidateUser="fgw1", sortBy="dueDate", sortOrder="desc")) == expected(left, True)


def test_tasks_created_at_the_same_moment_go_by_id_in_the_lists_direction(client, monkeypatch):
    """sortBy=created walks the other index, (assignee, created): its ties too go by id in
    the list's direction, so that the descending list is the ascending one backwards."""
    assert client.deploy(extra={"undated.bpmn": one_task("undated")}).status_code == 200
    officer = client.create_user("fgw1", ["fgw"])
    moment = clock.now()
    monkeypatch.setattr(clock, "now", lambda: moment)
    started = [client.start("undated")["id"] for _ in range(4)]
    tasks = {t["id"]: t["created"] for t in client.tasks() if t["processInstanceId"] in started}
    assert len(tasks) == 4 and len(set(tasks.values())) == 1, tasks
    by_id = sorted(tasks)
    assert ids(officer.tasks(candidateGroup="fgw", sortBy="created", sortOrder="asc")) == by_id
    assert ids(officer.tasks(candidateGroup="fgw", sortBy="created", sortOrder="desc")) == by_id[::-1]


def test_the_task_list_is_sent_as_its_schema_would_dump_it(queue):
    """GET /task is sent as api/render.py writes it, without marshmallow's dump
    (api/blueprint.py, rendered=True): the dump must change nothing."""
    from api.schemas import Task
    officer, _ = queue
    listed = officer.tasks(candidateGroup="fgw", sortBy="dueDate", sortOrder="asc")
    assert len(listed) == 6 and Task(many=True).dump(listed) == listed
    for task in listed:                                    # and GET /task/{id}, the same way
        one = officer.get(f"/engine-rest/task/{task['id']}").get_json()
        assert one == task and Task().dump(one) == one
