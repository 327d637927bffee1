"""camunda:topic as an expression, as Camunda 7 evaluates it when the task opens:
`${topic}` is the variable's value, `dept.${region}` that text with the value put in.
The worker fetches the evaluated topic; a topic that cannot be evaluated is a 400 naming
the task when a request reaches it, an incident when a timer does, and an expression
that does not parse is refused at deploy."""
from __future__ import annotations

from datetime import timedelta

import pytest

from engine import scheduler
from engine.clock import clock
from tests.conftest import typed
from tests.security.models import HEAD

ET = "/engine-rest/external-task"


@pytest.fixture
def settings(settings):
    settings.timers_enabled = False          # the tests fire the timers themselves
    return settings


def model(key: str, topic: str, wait: str | None = None) -> str:
    """start → (a timer of `wait`) → external task Task_send on `topic` → end."""
    timer = (f'<bpmn:intermediateCatchEvent id="Wait"><bpmn:timerEventDefinition id="TD">'
             f'<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">{wait}</bpmn:timeDuration>'
             '</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
             '<bpmn:sequenceFlow id="F0" sourceRef="Wait" targetRef="Task_send" />') if wait else ""
    first = "Wait" if wait else "Task_send"
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="{first}" />
    {timer}
    <bpmn:serviceTask id="Task_send" name="送部门" camunda:type="external" camunda:topic="{topic}" />
    <bpmn:sequenceFlow id="F2" sourceRef="Task_send" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>"""


@pytest.fixture
def worker(client):
    return client.create_user("dept_system", ["external-workers"])


def fetch(worker, topic: str) -> list:
    response = worker.post(f"{ET}/fetchAndLock", json={
        "workerId": "w", "maxTasks": 5, "topics": [{"topicName": topic, "lockDuration": 60_000}]})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def cases(client, key: str) -> int:
    return client.get("/engine-rest/process-instance/count", query_string={"processDefinitionKey": key}
                      ).get_json()["count"]


@pytest.mark.parametrize("topic, variables, evaluated", [
    ("${topic}", {"topic": "t.ok"}, "t.ok"),
    ("dept.${region}", {"region": "sz"}, "dept.sz"),
    ("${dept}.${region}", {"dept": "police", "region": "sz"}, "police.sz"),
    ("plain.topic", {}, "plain.topic"),
])
def test_the_worker_fetches_the_topic_the_expression_gave_when_the_task_opened(client, worker, topic, variables,
                                                                                evaluated):
    assert client.deploy(extra={"send.bpmn": model("send", topic)}).status_code == 200
    case = client.start("send", typed(**variables))
    [listed] = client.get(ET, query_string={"processInstanceId": case["id"]}).get_json()
    assert listed["topicName"] == evaluated
    assert client.get(ET, query_string={"topicName": evaluated}).get_json() == [listed]
    assert client.get(f"{ET}/topic-names").get_json() == [evaluated]
    if evaluated != topic:
        assert fetch(worker, topic) == []                             # the text as drawn is no topic
    [task] = fetch(worker, evaluated)
    assert task["id"] == listed["id"] and task["topicName"] == evaluated
    assert worker.post(f"{ET}/{task['id']}/complete", json={"workerId": "w"}).status_code == 204


@pytest.mark.parametrize("variables, fragment", [
    ({}, "topic"),                                                     # no such variable
    ({"topic": 5}, "gave 5"),                                          # not text
    ({"topic": ""}, "gave ''"),
])
def test_a_topic_the_expression_cannot_give_is_a_400_naming_the_task_and_no_case_starts(client, variables,
                                                                                        fragment):
    assert client.deploy(extra={"send.bpmn": model("send", "${topic}")}).status_code == 200
    refused = client.post("/engine-rest/process-definition/key/send/start", json={"variables": typed(**variables)})
    assert refused.status_code == 400, refused.get_json()
    message = refused.get_json()["message"]
    assert "Task_send" in message and "camunda:topic" in message and fragment in message, message
    assert cases(client, "send") == 0 and client.get(ET).get_json() == []


def test_a_topic_that_fails_when_a_timer_reaches_the_task_is_an_incident_and_the_case_waits(client, engine):
    assert client.deploy(extra={"later.bpmn": model("later", "dept.${region}", wait="PT1H")}).status_code == 200
    case = client.start("later")["id"]                                 # no region
    clock.set(clock.now() + timedelta(hours=2))
    scheduler.fire_due(engine)
    [incident] = client.get("/engine-rest/incident", query_string={"processInstanceId": case}).get_json()
    assert incident["incidentType"] == "failedJob", incident
    assert "Task_send" in incident["incidentMessage"] and "camunda:topic" in incident["incidentMessage"], incident
    assert client.get(ET).get_json() == []
    tree = client.get(f"/engine-rest/process-instance/{case}/activity-instances").get_json()
    assert [a["activityId"] for a in tree["childActivityInstances"]] == ["Wait"]


@pytest.mark.parametrize("topic, fragment", [
    ("dept.${region", "never closed"),
    ("${topic", "never closed"),
    ("${region ==}", "camunda:topic"),
])
def test_a_topic_whose_expression_does_not_parse_is_refused_at_deploy(client, topic, fragment):
    refused = client.deploy(extra={"bad.bpmn": model("bad", topic)})
    assert refused.status_code == 400, refused.get_json()
    [problem] = [p for r in refused.get_json()["details"].values() for p in r["errors"]]
    assert fragment in problem["message"] and "camunda:topic" in problem["message"], problem
    assert problem["mainElementId"] == "Task_send", problem
