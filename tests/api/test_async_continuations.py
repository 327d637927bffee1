"""camunda:asyncBefore / camunda:asyncAfter (and the job settings beside them) deploy and run
synchronously: there are no jobs here.  A step that fails after a task fails the request
that completes it, and nothing of that request is kept; Camunda 7 would have committed the
completion at the async boundary and raised an incident on the job (README, designer's guide)."""
from __future__ import annotations

from tests.conftest import typed
from tests.security.models import one_task

ASYNC_THEN_ASSIGNED = one_task(
    "async_review", 'camunda:candidateGroups="fgw" camunda:asyncBefore="true" camunda:asyncAfter="true" '
                    'camunda:exclusive="false" camunda:jobPriority="10"',
    inner='<bpmn:extensionElements><camunda:failedJobRetryTimeCycle>R5/PT5M</camunda:failedJobRetryTimeCycle>'
          '</bpmn:extensionElements>',
    after="""<bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="U" />
    <bpmn:userTask id="U" name="签发" camunda:assignee="${signer}" />
    <bpmn:sequenceFlow id="F3" sourceRef="U" targetRef="E" />""")


def test_a_failure_after_an_async_after_task_refuses_the_completion_and_keeps_the_task_open(client):
    assert client.deploy(extra={"async_review.bpmn": ASYNC_THEN_ASSIGNED}).status_code == 200
    case = client.start("async_review")["id"]
    [task] = client.tasks(processInstanceId=case)
    assert task["taskDefinitionKey"] == "T"            # asyncBefore: the task opened within the start
    r = client.complete(task["id"], typed(approved=True))
    assert r.status_code == 400, r.get_json()
    assert r.get_json()["activityId"] == "U" and "signer" in r.get_json()["message"], r.get_json()
    # nothing of the completion was kept: the task is open, its variables were not written
    assert [t["id"] for t in client.tasks(processInstanceId=case)] == [task["id"]]
    assert "approved" not in client.get(f"/engine-rest/process-instance/{case}/variables").get_json()
    assert client.get("/engine-rest/incident/count").get_json()["count"] == 0
    assert client.complete(task["id"], typed(approved=True, signer="li")).status_code == 204
    [signing] = client.tasks(processInstanceId=case)
    assert (signing["taskDefinitionKey"], signing["assignee"]) == ("U", "li")
