"""POST /task/{id}/bpmnError (Camunda 7.10+'s handleBpmnError on a user task): a reviewer
reports a business error (驳回, REJECTED) from their task; the task ends and the error
boundary event on it takes over, with the variables sent set on the case."""
from __future__ import annotations

import pytest

from tests.conftest import FIXTURES, typed

TASK = "/engine-rest/task"


@pytest.fixture
def reviewer(client):
    deployed = client.deploy(FIXTURES / "user_task_rejection.bpmn", name="rejection")
    assert deployed.status_code == 200, deployed.get_json()
    return client.create_user("reviewer", ["dept-review"])


def review_task(client, business_key="SZ-2025-0500"):
    case = client.start("user_task_rejection", typed(applicantName="苏州某某科技有限公司"), business_key)
    [task] = client.tasks(processInstanceId=case["id"])
    return case, task


def open_steps(client, case) -> list:
    return [t["taskDefinitionKey"] for t in client.tasks(processInstanceId=case["id"])]


def unchanged(client, case, task) -> None:
    assert open_steps(client, case) == ["R_review"]
    assert client.get(f"{TASK}/{task['id']}").status_code == 200
    assert client.variable_values(case["id"]) == {"applicantName": "苏州某某科技有限公司"}
    trail = client.get(f"/api/v1/process-instance/{case['id']}/dossier").get_json()["auditTrail"]["events"]
    assert not [e for e in trail if e["kind"] == "TaskBpmnError"]


def test_a_reviewer_rejecting_their_task_ends_it_and_the_case_takes_the_rejection_boundary(client, reviewer):
    case, task = review_task(client)
    done = reviewer.post(f"{TASK}/{task['id']}/bpmnError", json={
        "errorCode": "REJECTED", "errorMessage": "营业执照已过期", "variables": typed(reason="licence expired")})
    assert done.status_code == 204, done.get_json()

    assert client.get(f"{TASK}/{task['id']}").status_code == 404
    assert open_steps(client, case) == ["R_refusal"]
    assert client.variable_values(case["id"]) == {"applicantName": "苏州某某科技有限公司", "reason": "licence expired",
                                            "code": "REJECTED", "msg": "营业执照已过期"}
    [review] = client.get("/engine-rest/history/activity-instance", query_string={
        "processInstanceId": case["id"], "activityId": "R_review"}).get_json()
    assert review["canceled"] is True and review["endTime"] is not None
    [history] = client.get("/engine-rest/history/task", query_string={"taskId": task["id"]}).get_json()
    assert history["endTime"] is not None and history["deleteReason"] == "deleted"
    trail = client.get(f"/api/v1/process-instance/{case['id']}/dossier").get_json()["auditTrail"]["events"]
    [thrown] = [e for e in trail if e["kind"] == "TaskBpmnError"]
    assert thrown["actor"] == "reviewer"
    assert thrown["data"]["errorCode"] == "REJECTED" and thrown["data"]["caughtBy"] == "R_rejected"


@pytest.mark.parametrize("body", [{}, {"errorCode": ""}, {"errorCode": None}])
def test_a_bpmn_error_without_an_error_code_is_refused_and_nothing_changes(client, reviewer, body):
    case, task = review_task(client)
    refused = reviewer.post(f"{TASK}/{task['id']}/bpmnError", json={**body, "variables": typed(reason="x")})
    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["type"] == "InvalidRequestException"
    assert "errorCode" in refused.get_json()["message"]
    unchanged(client, case, task)


def test_a_bpmn_error_on_an_unknown_task_is_a_404(client, reviewer):
    missing = reviewer.post(f"{TASK}/no-such-task/bpmnError", json={"errorCode": "REJECTED"})
    assert missing.status_code == 404, missing.get_json()
    assert missing.get_json()["type"] == "InvalidRequestException"
    assert missing.get_json()["message"] == "No matching task with id no-such-task"    # the task's 404, not the route's


def test_an_officer_who_may_not_complete_the_task_may_not_reject_it_either(client, reviewer):
    case, task = review_task(client)
    outsider = client.create_user("clerk", ["window"])
    refused = outsider.post(f"{TASK}/{task['id']}/bpmnError", json={"errorCode": "REJECTED"})
    assert refused.status_code == outsider.post(f"{TASK}/{task['id']}/complete", json={}).status_code == 403
    unchanged(client, case, task)
    # a colleague in the department, once the reviewer claimed it, is refused as completing would be
    colleague = client.create_user("colleague", ["dept-review"])
    assert reviewer.post(f"{TASK}/{task['id']}/claim", json={"userId": "reviewer"}).status_code == 204
    taken = colleague.post(f"{TASK}/{task['id']}/bpmnError", json={"errorCode": "REJECTED"})
    assert taken.status_code == colleague.post(f"{TASK}/{task['id']}/complete", json={}).status_code == 403
    assert open_steps(client, case) == ["R_review"]


def test_an_error_no_boundary_event_catches_is_refused_and_nothing_changes(client, reviewer):
    """As an external task's bpmnError: Camunda would end the execution silently, which an
    approval case must never do."""
    case, task = review_task(client)
    refused = reviewer.post(f"{TASK}/{task['id']}/bpmnError", json={
        "errorCode": "NO_SUCH_ERROR", "variables": typed(reason="x")})
    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["type"] == "RestException"
    assert "no error boundary event catches errorCode 'NO_SUCH_ERROR' thrown at 'R_review'" \
        in refused.get_json()["message"]
    unchanged(client, case, task)
