"""The activity history (GET /history/activity-instance) and the running tree
(GET /process-instance/{id}/activity-instances) as Camunda 7 writes them for subprocesses
and repeating timers: an event subprocess begins when its start event fires, and every
beat of a repeating reminder is a row of its own."""
from __future__ import annotations

from datetime import timedelta

import pytest

from engine import scheduler
from engine.clock import clock
from tests.api.test_deployment import TIMER, _with_event_subprocess
from tests.api.test_timer_values import reminder
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


@pytest.mark.parametrize("hours_between_firings", [[1, 1, 1, 1], [5]], ids=["beat by beat", "three beats at once"])
def test_every_beat_of_a_repeating_reminder_is_a_boundary_timer_row(client, engine, hours_between_firings):
    """Only the last of R3's beats had a row (when the cycle ran out), also when the server
    was down over all three and fired them in one go."""
    assert client.deploy(extra={"r.bpmn": reminder("r", "R3/PT1H")}).status_code == 200
    case = client.start("r")["id"]
    for hours in hours_between_firings:
        an_hour_passes(engine, hours)
    beats = rows_of(client, case, "Remind")
    assert len(beats) == len(rows_of(client, case, "E2")) == 3
    assert len({row["id"] for row in beats}) == 3
    assert all(row["activityType"] == "boundaryTimer" and row["startTime"] == row["endTime"]
               and not row["canceled"] for row in beats)
    if len(hours_between_firings) > 1:
        assert len({row["startTime"] for row in beats}) == 3
    assert running(client, case) == [("T", "userTask", [])]


def test_an_endless_reminder_leaves_the_beats_that_fired_when_its_task_is_done(client, engine):
    assert client.deploy(extra={"r.bpmn": reminder("r", "R/PT1H")}).status_code == 200
    case = client.start("r")["id"]
    an_hour_passes(engine)
    an_hour_passes(engine)
    [task] = client.tasks(processInstanceId=case)
    assert client.complete(task["id"]).status_code == 204
    beats = rows_of(client, case, "Remind")
    assert len(beats) == 2 and all(row["endTime"] == row["startTime"] for row in beats)


def start_repeating_event_subprocess(client) -> str:
    """A case of T1 (fgw) beside an event subprocess on a non-interrupting R2/PT1H timer."""
    cycle = ('<bpmn:timerEventDefinition><bpmn:timeCycle xsi:type="bpmn:tFormalExpression">R2/PT1H'
             '</bpmn:timeCycle></bpmn:timerEventDefinition>')
    assert client.deploy(extra={"evsub.bpmn": _with_event_subprocess(f'isInterrupting="false">{cycle}')}) \
        .status_code == 200
    return client.start("evsub")["id"]


def test_a_repeating_event_subprocess_timer_has_a_row_a_beat_in_the_one_subprocess(client, engine):
    """SpiffWorkflow runs every beat in the one subprocess it started with the case."""
    case = start_repeating_event_subprocess(client)
    an_hour_passes(engine)
    an_hour_passes(engine)
    assert client.get("/engine-rest/incident/count").get_json()["count"] == 0
    [sub], beats = rows_of(client, case, "EvSub"), rows_of(client, case, "ES")
    assert [row["parentActivityInstanceId"] for row in beats] == [sub["id"]] * 2
    assert sub["startTime"] == beats[0]["startTime"] and sub["endTime"] is None
    assert [t["taskDefinitionKey"] for t in client.tasks(processInstanceId=case)].count("ET") == 2


def test_a_case_waits_for_its_repeating_event_subprocess_s_running_beat_and_ends_after_it(client, engine):
    """A timeCycle's start event waits on between beats: a beat whose task is open is not
    an event subprocess still waiting for its event, and the case's end does not cancel it
    (Camunda 7 ends the scope when that instance has ended)."""
    case = start_repeating_event_subprocess(client)
    an_hour_passes(engine)
    tasks = {t["taskDefinitionKey"]: t["id"] for t in client.tasks(processInstanceId=case)}
    assert sorted(tasks) == ["ET", "T1"]
    assert client.complete(tasks["T1"]).status_code == 204
    assert [t["taskDefinitionKey"] for t in client.tasks(processInstanceId=case)] == ["ET"]
    assert client.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"] == "ACTIVE"
    assert client.complete(tasks["ET"]).status_code == 204
    assert client.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"] == "COMPLETED"
    assert [row["canceled"] for row in rows_of(client, case, "ET")] == [False]
