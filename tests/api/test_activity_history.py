"""The activity history (GET /history/activity-instance) and the running tree
(GET /process-instance/{id}/activity-instances) as Camunda 7 writes them for subprocesses:
an event subprocess begins when its start event fires."""
from __future__ import annotations

from datetime import timedelta

import pytest

from engine import scheduler
from engine.clock import clock
from tests.api.test_deployment import TIMER, _with_event_subprocess
from tests.security.models import HEAD


@pytest.fixture
def settings(settings):
    settings.test_clock = True
    settings.timers_enabled = False          # the tests fire the timers themselves
    return settings


def history(client, case) -> list:
    r = client.get("/engine-rest/history/activity-instance",
                   query_string={"processInstanceId": case, "sortBy": "startTime", "sortOrder": "asc"})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def rows_of(client, case, activity_id) -> list:
    return [row for row in history(client, case) if row["activityId"] == activity_id]


def running(client, case) -> list:
    """The running tree as (activity id, type, [children, as the same pairs and lists])."""
    r = client.get(f"/engine-rest/process-instance/{case}/activity-instances")
    assert r.status_code == 200, r.get_json()

    def shape(node):
        return (node["activityId"], node["activityType"],
                sorted((shape(child) for child in node["childActivityInstances"]), key=str))
    return shape(r.get_json())[2]


def an_hour_passes(engine, hours=1) -> None:
    clock.set(clock.now() + timedelta(hours=hours, minutes=1))
    scheduler.fire_due(engine)


def test_an_event_subprocess_is_a_subprocess_in_the_history_from_when_its_timer_fires(client, engine):
    """It was a callActivity, running from the case's start with its start event waiting."""
    assert client.deploy(extra={"evsub.bpmn": _with_event_subprocess(f'isInterrupting="false">{TIMER}')}) \
        .status_code == 200
    case = client.start("evsub")["id"]
    assert sorted(row["activityId"] for row in history(client, case)) == ["S", "T1"]
    assert running(client, case) == [("T1", "userTask", [])]

    an_hour_passes(engine, hours=2)
    [sub], [start] = rows_of(client, case, "EvSub"), rows_of(client, case, "ES")
    assert sub["activityType"] == "subProcess" and sub["endTime"] is None
    assert start["activityType"] == "startTimerEvent" and start["parentActivityInstanceId"] == sub["id"]
    assert sub["startTime"] == start["startTime"] == start["endTime"]
    assert running(client, case) == [("EvSub", "subProcess", [("ET", "userTask", [])]), ("T1", "userTask", [])]

    tasks = {t["taskDefinitionKey"]: t["id"] for t in client.tasks(processInstanceId=case)}
    assert client.complete(tasks["ET"]).status_code == 204
    [sub] = rows_of(client, case, "EvSub")
    assert sub["endTime"] is not None and not sub["canceled"]
    assert running(client, case) == [("T1", "userTask", [])]


EMBEDDED = HEAD.format(key="embedded") + """
  <bpmn:process id="embedded" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Stage" />
    <bpmn:subProcess id="Stage" name="技术审查">
      <bpmn:startEvent id="StageStart" />
      <bpmn:sequenceFlow id="SF1" sourceRef="StageStart" targetRef="Check" />
      <bpmn:userTask id="Check" camunda:candidateGroups="fgw" />
      <bpmn:sequenceFlow id="SF2" sourceRef="Check" targetRef="StageEnd" />
      <bpmn:endEvent id="StageEnd" />
    </bpmn:subProcess>
    <bpmn:sequenceFlow id="F2" sourceRef="Stage" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_an_embedded_subprocess_is_a_subprocess_not_a_call_activity(client):
    assert client.deploy(extra={"embedded.bpmn": EMBEDDED}).status_code == 200
    case = client.start("embedded")["id"]
    [stage] = rows_of(client, case, "Stage")
    assert stage["activityType"] == "subProcess"
    assert running(client, case) == [("Stage", "subProcess", [("Check", "userTask", [])])]
