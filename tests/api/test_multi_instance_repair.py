"""Cases that an earlier version left standing at a multi-instance go on after an upgrade.

Before da152e4 a spec parsed anew (a restart, another server process) did not connect a
multi-instance to its instances: instances created before it completed unheard, and the
multi-instance waited for ever, with no task and no incident.  Such a case is stored that
way: its instances COMPLETED, none of them among the multi-instance's merged ones.  These
tests make that state as the old version did (a server whose specs are not connected, after
a restart) and start the fixed server on it."""
from __future__ import annotations

from contextlib import contextmanager

import pytest

from engine import definitions, multi_instances
from engine.context import Engine
from tests.conftest import FIXTURES, at_once, restarted_server, typed

MODEL = (FIXTURES / "mi_local_element.bpmn").read_text()
SEQUENTIAL = MODEL.replace("<bpmn:multiInstanceLoopCharacteristics ",
                           '<bpmn:multiInstanceLoopCharacteristics isSequential="true" ')
FIRST_DONE = MODEL.replace(' camunda:elementVariable="dept" />', ' camunda:elementVariable="dept">'
                           '<bpmn:completionCondition>${nrOfCompletedInstances &gt;= 1}</bpmn:completionCondition>'
                           '</bpmn:multiInstanceLoopCharacteristics>')
CALLING = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_mi_calling" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="mi_calling" isExecutable="true">
    <bpmn:startEvent id="Start_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:callActivity id="Call" calledElement="{called}">
      <bpmn:extensionElements><camunda:in variables="all" /><camunda:out variables="all" /></bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>{loop}
    </bpmn:callActivity>
    <bpmn:userTask id="Archive" name="Archive" camunda:candidateGroups="window">
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="End_1"><bpmn:incoming>F3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Call" />
    <bpmn:sequenceFlow id="F2" sourceRef="Call" targetRef="Archive" />
    <bpmn:sequenceFlow id="F3" sourceRef="Archive" targetRef="End_1" />
  </bpmn:process>
</bpmn:definitions>"""
LOOP = MODEL.replace('<bpmn:multiInstanceLoopCharacteristics camunda:collection="${depts}" camunda:elementVariable="dept" />',
                     '<bpmn:standardLoopCharacteristics><bpmn:loopCondition>${rounds &lt; 2}</bpmn:loopCondition>'
                     '</bpmn:standardLoopCharacteristics>').replace("Review ${dept}", "Review fgw").replace(
                         'camunda:candidateGroups="${dept}"', 'camunda:candidateGroups="fgw"')
DEPARTMENT_CHECK = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_dept_check" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="dept_check" isExecutable="true">
    <bpmn:startEvent id="Start_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Review" name="Review ${dept}" camunda:candidateGroups="${dept}">
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="End_1"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_1" targetRef="Review" />
    <bpmn:sequenceFlow id="F2" sourceRef="Review" targetRef="End_1" />
  </bpmn:process>
</bpmn:definitions>"""


@contextmanager
def server_before_the_fix(settings, monkeypatch):
    """The server restarted as versions before da152e4 ran: it parses every spec anew and
    connects no multi-instance to its instances (SpiffWorkflow does so only when it
    creates an instance)."""
    with monkeypatch.context() as old:
        old.setattr(definitions, "connect_multi_instances", lambda spec, subprocess_specs: None)
        old.setattr(multi_instances, "resume_stuck", lambda engine: 0)     # they had no start-up pass
        with restarted_server(settings) as server:
            yield server


def open_keys(client, case) -> list[str]:
    return sorted(t["taskDefinitionKey"] for t in client.tasks(processInstanceId=case["id"]))


def complete_review(client, case, dept: str, **variables) -> None:
    [task] = [t for t in client.tasks(processInstanceId=case["id"]) if t["name"] == f"Review {dept}"]
    assert client.complete(task["id"], typed(**variables)).status_code == 204


def trail(client, case, kind: str) -> list[dict]:
    dossier = client.get(f"/api/v1/process-instance/{case['id']}/dossier").get_json()
    assert dossier["auditTrail"]["verification"]["valid"] is True, dossier["auditTrail"]["verification"]
    return [e for e in dossier["auditTrail"]["events"] if e["kind"] == kind]


def test_a_parallel_review_stuck_after_its_last_department_goes_on_when_the_server_starts(client, settings,
                                                                                          monkeypatch):
    assert client.deploy(extra={"mi_local_element.bpmn": MODEL}).status_code == 200
    case = client.start("mi_local_element", typed(depts=["fgw", "zrzy"]))
    with server_before_the_fix(settings, monkeypatch) as old:
        complete_review(old, case, "zrzy", opinion="zrzy: agreed")      # the later department first
        complete_review(old, case, "fgw", opinion="fgw: agreed")
        assert open_keys(old, case) == []                               # stuck, as the old version left it
    with restarted_server(settings) as upgraded:
        assert open_keys(upgraded, case) == ["Issue"]
        # merged in the order the departments ended, as the multi-instance would have heard them
        assert upgraded.variable_values(case["id"])["opinion"] == "fgw: agreed"
        assert "dept" not in upgraded.variable_values(case["id"])
        history = upgraded.get("/engine-rest/history/variable-instance",
                               query_string={"processInstanceId": case["id"], "variableName": "opinion"})
        assert [row["value"] for row in history.get_json()] == ["fgw: agreed"]
        [resumed] = trail(upgraded, case, "MultiInstanceResumed")
        assert resumed["actor"] == "system" and resumed["activityId"] == "Review"
        assert len(resumed["data"]["instances"]) == 2
        body = upgraded.get("/engine-rest/history/activity-instance",
                            query_string={"processInstanceId": case["id"], "activityType": "multiInstanceBody"})
        [row] = body.get_json()
        assert row["endTime"] is not None and row["canceled"] is False
    with restarted_server(settings) as again:                           # merged once: nothing more to do
        assert len(trail(again, case, "MultiInstanceResumed")) == 1
        [issue] = again.tasks(processInstanceId=case["id"])
        assert again.complete(issue["id"]).status_code == 204
        assert again.get(f"/engine-rest/history/process-instance/{case['id']}").get_json()["state"] == "COMPLETED"


def test_a_sequential_review_stuck_after_its_first_department_opens_the_next_one(client, settings, monkeypatch):
    assert client.deploy(extra={"mi_local_element.bpmn": SEQUENTIAL}).status_code == 200
    case = client.start("mi_local_element", typed(depts=["fgw", "zrzy", "zjj"]))
    with server_before_the_fix(settings, monkeypatch) as old:
        complete_review(old, case, "fgw")
        assert open_keys(old, case) == []
    with restarted_server(settings) as upgraded:
        assert [t["name"] for t in upgraded.tasks(processInstanceId=case["id"])] == ["Review zrzy"]
    with restarted_server(settings) as again:       # heard from now on, across restarts
        complete_review(again, case, "zrzy")
        complete_review(again, case, "zjj")
        assert open_keys(again, case) == ["Issue"]
        assert len(trail(again, case, "MultiInstanceResumed")) == 1


def test_a_department_that_ended_unheard_while_others_still_review_is_merged_at_the_next_command(
        client, settings, monkeypatch):
    """No start-up pass finds such a case (it does not stand still); the next command that
    opens it merges the unheard department first, then does its own work."""
    assert client.deploy(extra={"mi_local_element.bpmn": MODEL}).status_code == 200
    case = client.start("mi_local_element", typed(depts=["fgw", "zrzy"]))
    with server_before_the_fix(settings, monkeypatch) as old:
        complete_review(old, case, "fgw", fgwOpinion="agreed")
        assert open_keys(old, case) == ["Review"]
    with restarted_server(settings) as upgraded:
        assert trail(upgraded, case, "MultiInstanceResumed") == []
        complete_review(upgraded, case, "zrzy", zrzyOpinion="agreed")
        assert open_keys(upgraded, case) == ["Issue"]
        variables = upgraded.variable_values(case["id"])
        assert variables["fgwOpinion"] == "agreed" and variables["zrzyOpinion"] == "agreed"
        assert len(trail(upgraded, case, "MultiInstanceResumed")) == 1


def test_a_completion_condition_decides_as_the_departments_ended(client, settings, monkeypatch):
    """`nrOfCompletedInstances >= 1`: the first department to have ended closes the review;
    the one that ended after it is not merged, as a heard review would have cancelled it."""
    assert client.deploy(extra={"mi_local_element.bpmn": FIRST_DONE}).status_code == 200
    case = client.start("mi_local_element", typed(depts=["fgw", "zrzy"]))
    with server_before_the_fix(settings, monkeypatch) as old:
        complete_review(old, case, "zrzy", opinion="zrzy first")
        complete_review(old, case, "fgw", opinion="fgw second")
        assert open_keys(old, case) == []
    with restarted_server(settings) as upgraded:
        assert open_keys(upgraded, case) == ["Issue"]
        assert upgraded.variable_values(case["id"])["opinion"] == "zrzy first"
        [resumed] = trail(upgraded, case, "MultiInstanceResumed")
        assert len(resumed["data"]["instances"]) == 1


@pytest.mark.parametrize("where", ["instances-called", "inside-the-called-process"])
def test_a_multi_instance_of_a_called_process_goes_on(client, settings, monkeypatch, where):
    """The called process runs inside its caller's case: a multi-instance whose instances
    are call activities (each department's check), or one inside the called process."""
    if where == "instances-called":
        loop = '<bpmn:multiInstanceLoopCharacteristics camunda:collection="${depts}" camunda:elementVariable="dept" />'
        files = {"calling.bpmn": CALLING.replace("{called}", "dept_check").replace("{loop}", loop),
                 "dept_check.bpmn": DEPARTMENT_CHECK}
    else:
        files = {"calling.bpmn": CALLING.replace("{called}", "mi_local_element").replace("{loop}", ""),
                 "mi_local_element.bpmn": MODEL}
    assert client.deploy(extra=files).status_code == 200
    case = client.start("mi_calling", typed(depts=["fgw", "zrzy"]))
    with server_before_the_fix(settings, monkeypatch) as old:
        complete_review(old, case, "fgw")
        complete_review(old, case, "zrzy")
        assert open_keys(old, case) == []
    with restarted_server(settings) as upgraded:
        expected = ["Archive"] if where == "instances-called" else ["Issue"]
        assert open_keys(upgraded, case) == expected
        assert len(trail(upgraded, case, "MultiInstanceResumed")) == 1


def test_a_case_whose_late_merge_fails_stays_as_it_was_and_can_still_be_deleted(client, settings, monkeypatch,
                                                                                caplog):
    """A completionCondition that cannot be evaluated would have refused the last department's
    completion; the old version never asked it.  The case is left as stored, the failure
    logged at every start, and the commands it takes still work."""
    broken = FIRST_DONE.replace("nrOfCompletedInstances &gt;= 1", "quorum &gt;= 1")
    assert client.deploy(extra={"mi_local_element.bpmn": broken}).status_code == 200
    case = client.start("mi_local_element", typed(depts=["fgw", "zrzy"]))
    with server_before_the_fix(settings, monkeypatch) as old:
        complete_review(old, case, "fgw")
        complete_review(old, case, "zrzy")
    with restarted_server(settings) as upgraded:
        assert open_keys(upgraded, case) == []
        assert case["id"] in caplog.text and "quorum" in caplog.text
        assert upgraded.delete(f"/engine-rest/process-instance/{case['id']}").status_code == 204


def test_two_server_processes_starting_at_once_move_the_case_once(client, settings, monkeypatch):
    assert client.deploy(extra={"mi_local_element.bpmn": MODEL}).status_code == 200
    case = client.start("mi_local_element", typed(depts=["fgw", "zrzy"]))
    with server_before_the_fix(settings, monkeypatch) as old:
        complete_review(old, case, "fgw")
        complete_review(old, case, "zrzy")
    engines = [Engine(settings), Engine(settings)]
    try:
        moved = at_once([lambda e=e: multi_instances.resume_stuck(e) for e in engines])
    finally:
        for e in engines:
            e.close()
    assert sorted(moved) == [0, 1]
    with restarted_server(settings) as upgraded:
        assert open_keys(upgraded, case) == ["Issue"]
        assert len(trail(upgraded, case, "MultiInstanceResumed")) == 1


def test_a_standard_loop_stuck_after_a_round_runs_its_next_round(client, settings, monkeypatch):
    """SpiffWorkflow connects a standard loop to its rounds as it does a multi-instance, only
    when it creates one: the same defect, the same repair."""
    assert client.deploy(extra={"mi_local_element.bpmn": LOOP}).status_code == 200
    case = client.start("mi_local_element", typed(rounds=0))
    with server_before_the_fix(settings, monkeypatch) as old:
        complete_review(old, case, "fgw", rounds=1)
        assert open_keys(old, case) == []
    with restarted_server(settings) as upgraded:
        assert open_keys(upgraded, case) == ["Review"]                  # the second round
        complete_review(upgraded, case, "fgw", rounds=2)
        assert open_keys(upgraded, case) == ["Issue"]


def system_events(client, kind: str) -> list[dict]:
    response = client.get("/api/v1/audit/system-events", query_string={"kind": kind})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_start_up_pass_runs_until_it_leaves_no_case_standing(client, settings, monkeypatch, caplog):
    """The pass reads the open activity history, which grows with the database: once it has
    left no case standing it says so in the system audit chain, and later starts skip it.
    A case it could not move (busy, or its merge failing) keeps it running at every start."""
    assert system_events(client, multi_instances.CHECKED) == []         # no running case: no mark
    broken = FIRST_DONE.replace("nrOfCompletedInstances &gt;= 1", "quorum &gt;= 1")
    assert client.deploy(extra={"mi_local_element.bpmn": broken}).status_code == 200
    failing = client.start("mi_local_element", typed(depts=["fgw", "zrzy"]))
    with server_before_the_fix(settings, monkeypatch) as old:
        complete_review(old, failing, "fgw")
        complete_review(old, failing, "zrzy")
    for _ in range(2):                                                  # its merge fails: looked at each time
        caplog.clear()
        with restarted_server(settings) as upgraded:
            assert failing["id"] in caplog.text and "quorum" in caplog.text
            assert system_events(upgraded, multi_instances.CHECKED) == []
    assert client.delete(f"/engine-rest/process-instance/{failing['id']}").status_code == 204
    case = client.start("mi_local_element", typed(depts=["fgw", "zrzy"], quorum=0))
    with server_before_the_fix(settings, monkeypatch) as old:
        complete_review(old, case, "fgw")
        complete_review(old, case, "zrzy")
    with restarted_server(settings) as upgraded:                        # moved, and marked
        assert open_keys(upgraded, case) == ["Issue"]
        [mark] = system_events(upgraded, multi_instances.CHECKED)
        assert mark["actor"] == "system" and mark["data"] == {"moved": 1}
    with restarted_server(settings) as later:                           # skipped
        assert len(system_events(later, multi_instances.CHECKED)) == 1
