"""Camunda 7's historic tasks (GET /history/task[/count]): the "completed tasks" view of a
Tasklist or Cockpit, each task as it was when it ended (or is now, while open), with
Camunda's filters and order, read by whoever takes part in its case."""
from __future__ import annotations

import pytest

from tests.security.models import one_task, two_tasks

HISTORY = "/engine-rest/history/task"
DUE = "2025-10-10T17:00:00.000+0800"


@pytest.fixture
def worked(client):
    """Three cases of the hall: `done` (its task claimed, dated and completed by fgw1),
    `running` (its first task completed by fgw2, its second claimed by fgw2 and open),
    `withdrawn` (deleted with a reason while its task was open)."""
    deployed = client.deploy(extra={"single.bpmn": one_task("single").replace(
        '<bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw">',
        '<bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw">'
        '<bpmn:documentation>核对申请材料</bpmn:documentation>'), "double.bpmn": two_tasks("double")})
    assert deployed.status_code == 200, deployed.get_json()
    fgw1, fgw2 = client.create_user("fgw1", ["fgw"]), client.create_user("fgw2", ["fgw"])
    zjj1 = client.create_user("zjj1", ["zjj"])
    cases = {"done": client.start("single", business_key="SZ-H-1")["id"],
             "running": client.start("double", business_key="SZ-H-2")["id"],
             "withdrawn": client.start("single", business_key="SZ-H-3")["id"]}
    [done] = fgw1.tasks(processInstanceId=cases["done"])
    assert fgw1.post(f"/engine-rest/task/{done['id']}/claim", json={"userId": "fgw1"}).status_code == 204
    assert fgw1.put(f"/engine-rest/task/{done['id']}", json={"due": DUE, "priority": 70}).status_code == 204
    assert fgw1.complete(done["id"]).status_code == 204
    [first] = fgw2.tasks(processInstanceId=cases["running"])
    assert fgw2.complete(first["id"]).status_code == 204
    [second] = fgw2.tasks(processInstanceId=cases["running"])
    assert fgw2.post(f"/engine-rest/task/{second['id']}/claim", json={"userId": "fgw2"}).status_code == 204
    [withdrawn] = fgw1.tasks(processInstanceId=cases["withdrawn"])
    r = client.delete(f"/engine-rest/process-instance/{cases['withdrawn']}", query_string={"deleteReason": "申请人撤回"})
    assert r.status_code == 204
    ids = {"done": done["id"], "first": first["id"], "second": second["id"], "withdrawn": withdrawn["id"]}
    return {"fgw1": fgw1, "fgw2": fgw2, "zjj1": zjj1}, cases, ids


def history(reader, **query) -> list:
    r = reader.get(HISTORY, query_string=query)
    assert r.status_code == 200, r.get_json()
    listed = r.get_json()
    counted = reader.get(f"{HISTORY}/count", query_string={k: v for k, v in query.items()
                                                           if k not in ("firstResult", "maxResults")})
    assert counted.status_code == 200, counted.get_json()
    if "maxResults" not in query and "firstResult" not in query:
        assert counted.get_json() == {"count": len(listed)}, query
    return listed


def test_a_completed_task_shows_what_it_was_when_it_ended_in_camundas_fields(client, worked):
    officers, cases, ids = worked
    [task] = history(client, processInstanceId=cases["done"])
    definition = client.get("/engine-rest/process-definition/key/single").get_json()
    assert task["id"] == ids["done"] and task["activityInstanceId"] == ids["done"]
    assert (task["processDefinitionKey"], task["processDefinitionId"]) == ("single", definition["id"])
    assert task["processInstanceId"] == task["executionId"] == task["rootProcessInstanceId"] == cases["done"]
    assert (task["name"], task["description"], task["taskDefinitionKey"]) == ("审查", "核对申请材料", "T")
    assert (task["assignee"], task["owner"], task["priority"], task["due"]) == ("fgw1", None, 70, DUE)
    assert task["deleteReason"] == "completed" and task["taskState"] == "Completed"
    assert task["startTime"] <= task["endTime"] and isinstance(task["duration"], int) and task["duration"] >= 0
    assert task["followUp"] is None and task["parentTaskId"] is None and task["tenantId"] is None
    assert task["removalTime"] is None and task["caseInstanceId"] is None


def test_the_usual_filters_and_their_counts(client, worked):
    officers, cases, ids = worked

    def found(**query):
        return {task["id"] for task in history(client, **query)}
    assert found(finished="true") == {ids["done"], ids["first"], ids["withdrawn"]}
    assert found(unfinished="true") == {ids["second"]}
    assert found(taskDeleteReason="completed") == {ids["done"], ids["first"]}
    assert found(taskDeleteReason="申请人撤回") == {ids["withdrawn"]}
    assert found(taskDeleteReasonLike="%撤回") == {ids["withdrawn"]}
    assert found(taskAssignee="fgw2") == {ids["first"], ids["second"]}          # the open one's claim too
    assert found(taskAssignee="fgw2", finished="true") == {ids["first"]}
    assert found(processInstanceBusinessKey="SZ-H-2") == {ids["first"], ids["second"]}
    assert found(processInstanceBusinessKeyLike="SZ-H-%", taskDefinitionKey="T2") == {ids["second"]}
    assert found(processDefinitionKey="single") == {ids["done"], ids["withdrawn"]}
    assert found(taskName="复核") == {ids["second"]}
    assert found(taskNameLike="审%", processFinished="true") == {ids["done"], ids["withdrawn"]}
    assert found(processUnfinished="true") == {ids["first"], ids["second"]}
    assert found(taskDueDateBefore="2025-10-11T00:00:00.000+0800") == {ids["done"]}
    assert found(withoutTaskDueDate="true", finished="true") == {ids["first"], ids["withdrawn"]}
    assert found(taskPriority=70) == {ids["done"]}
    assert found(unassigned="true") == {ids["withdrawn"]}
    assert found(taskId=ids["first"]) == {ids["first"]}
    assert found(finished="false") == set(ids.values())                          # Camunda's "true only" flag


def test_completed_tasks_newest_first_a_page_at_a_time(client, worked):
    officers, cases, ids = worked
    newest = history(client, finished="true", sortBy="endTime", sortOrder="desc")
    assert [t["id"] for t in newest] == [ids["withdrawn"], ids["first"], ids["done"]]
    page = history(client, finished="true", sortBy="endTime", sortOrder="desc", firstResult=1, maxResults=1)
    assert page == newest[1:2]
    by_name = [t["name"] for t in history(client, sortBy="taskName", sortOrder="asc")]
    assert by_name == sorted(by_name)
    for sort_by in ("taskId", "activityInstanceId", "processDefinitionId", "processInstanceId", "executionId",
                    "duration", "endTime", "startTime", "taskName", "taskDescription", "assignee", "owner",
                    "dueDate", "followUpDate", "deleteReason", "taskDefinitionKey", "priority", "tenantId"):
        assert len(history(client, sortBy=sort_by, sortOrder="desc")) == 4, sort_by
    r = client.get(HISTORY, query_string={"sortBy": "caseInstanceId", "sortOrder": "asc"})
    assert r.status_code == 400
    r = client.get(HISTORY, query_string={"sortBy": "endTime"})
    assert r.status_code == 400 and "sortOrder" in r.get_json()["message"]


def test_the_history_of_tasks_is_read_by_who_takes_part_in_the_case(client, worked):
    officers, cases, ids = worked
    # fgw1 worked `done`, and `running` has a task offered to fgw; nobody of fgw worked the
    # withdrawn case, which took its offer with it: as for the case's other history
    assert {t["id"] for t in history(officers["fgw1"])} == {ids["done"], ids["first"], ids["second"]}
    assert history(officers["fgw1"], processInstanceId=cases["withdrawn"]) == []
    assert len(history(client)) == 4
    assert history(officers["zjj1"]) == []
    assert officers["zjj1"].get(f"{HISTORY}/count").get_json() == {"count": 0}
    assert history(officers["zjj1"], processInstanceId=cases["done"]) == []
    applicant = client.create_user("zhang", ["applicants"])
    assert history(applicant) == []


def test_a_parameter_of_camundas_that_is_not_served_is_a_400_naming_it(client, worked):
    for name, value, why in (("taskHadCandidateGroup", "fgw", "candidate"), ("caseInstanceId", "c1", "CMMN"),
                             ("taskParentTaskId", "t1", "subtasks"), ("taskVariables", "a_eq_1", "variables"),
                             ("withCandidateGroups", "true", "candidate")):
        for path in (HISTORY, f"{HISTORY}/count"):
            r = client.get(path, query_string={name: value})
            assert r.status_code == 400, (name, r.get_json())
            message = r.get_json()["message"]
            assert f"parameter {name} of Camunda's historic task query is not supported here" in message
            assert why in message, message
    assert client.get(HISTORY, query_string={"withCandidateGroups": "false", "_": "1712345678"}).status_code == 200
    r = client.get(HISTORY, query_string={"taskDueDateBefore": "tomorrow"})
    assert r.status_code == 400 and r.get_json()["message"].startswith("taskDueDateBefore")
