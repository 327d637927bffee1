"""A process model is not a way into the server: known escape payloads and resource bombs
in gateway conditions, timer and due-date expressions, input/output mappings and script
tasks are refused at deploy or fail as a clear 400 (or, when a timer fires, an incident)
that changes nothing, and never reach a file, a process or the network."""
from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

from engine import scheduler
from engine.clock import clock
from tests.conftest import typed
from tests.security import models

SENTINEL = Path("/tmp/approvals-sandbox-escaped")

ESCAPES = [
    "().__class__.__base__.__subclasses__()",
    "__import__('os').system('touch /tmp/approvals-sandbox-escaped')",
    "open('/tmp/approvals-sandbox-escaped', 'w')",
    "'{0.__class__.__init__.__globals__}'.format(applicantName)",
    "(x for x in []).gi_frame.f_back.f_globals",
    "type(applicantName).mro()",
]

# where an expression can sit in a model: (name, model builder)
PLACES = {
    "gateway condition": lambda key, e: models.gateway(key, escape("${" + e + "}")),
    "timer expression": lambda key, e: models.boundary_timer(key, escape("${" + e + "}")),
    "due date": lambda key, e: models.one_task(key, 'camunda:candidateGroups="fgw" camunda:dueDate='
                                               + quoteattr("${" + e + "}")),
    "input mapping": lambda key, e: models.io_mapping(key, inputs=[("x", escape("${" + e + "}"))]),
    "output mapping": lambda key, e: models.io_mapping(key, outputs=[("x", escape("${" + e + "}"))]),
}


def no_escape():
    assert not SENTINEL.exists(), "a model wrote a file on the server"


def count(client, path):
    return client.get(f"/engine-rest/{path}/count").get_json()["count"]


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("payload", ESCAPES)
def test_an_escape_payload_anywhere_in_a_model_is_refused_at_deploy(client, place, payload):
    r = client.deploy(extra={"evil.bpmn": PLACES[place]("evil", payload)})
    assert r.status_code == 400, r.get_json()
    body = r.get_json()
    assert body["type"] == "ParseException"
    [problem] = body["details"]["evil.bpmn"]["errors"]
    assert problem["line"] > 0 and problem["mainElementId"], problem
    assert "not allowed" in problem["message"] or "not available" in problem["message"], problem
    assert count(client, "deployment") == 0 and count(client, "process-definition") == 0
    no_escape()


@pytest.mark.parametrize("payload", ESCAPES + ["import os\nos.system('touch /tmp/approvals-sandbox-escaped')",
                                               "x = 1\nclass A:\n    pass"])
def test_an_escape_payload_in_a_script_task_is_refused_at_deploy(client, scripts_on, payload):
    r = client.deploy(extra={"evil.bpmn": models.script_task("evil", escape(payload))})
    assert r.status_code == 400, r.get_json()
    [problem] = r.get_json()["details"]["evil.bpmn"]["errors"]
    assert problem["mainElementId"] == "Script"
    no_escape()


def test_script_tasks_are_off_unless_the_operator_enables_them(client, engine, monkeypatch):
    script = models.script_task("calc", "fee = 100 * 2")
    r = client.deploy(extra={"calc.bpmn": script})
    assert r.status_code == 400
    assert "script tasks are disabled" in r.get_json()["details"]["calc.bpmn"]["errors"][0]["message"]
    monkeypatch.setattr(engine.settings, "script_tasks_enabled", True)
    monkeypatch.setattr(engine.script_engine, "scripts_enabled", True)
    assert client.deploy(extra={"calc.bpmn": script}).status_code == 200
    case = client.start("calc")
    assert client.get(f"/engine-rest/process-instance/{case['id']}/variables").get_json()["fee"]["value"] == 200
    monkeypatch.setattr(engine.script_engine, "scripts_enabled", False)   # the operator switched them off again
    r = client.post("/engine-rest/process-definition/key/calc/start", json={})
    assert r.status_code == 400 and "script tasks are disabled" in r.get_json()["message"]
    assert count(client, "process-instance") == 1


def _script_last(key, script):
    """start → T (fgw) → script task → end: the script runs in the command that ends the case."""
    return models.HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T" />
    <bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="Script" />
    <bpmn:scriptTask id="Script" name="计算" scriptFormat="python"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="F3" sourceRef="Script" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_value_the_state_cannot_hold_is_refused_wherever_the_script_runs(client, scripts_on):
    script = "fees = {(1, 2): 100}"           # a dict keyed by a tuple: no JSON for it
    assert client.deploy(extra={"mid.bpmn": models.script_task("mid", script),
                                "last.bpmn": _script_last("last", script)}).status_code == 200
    r = client.post("/engine-rest/process-definition/key/mid/start", json={})
    assert r.status_code == 400, r.get_json()
    assert r.get_json()["message"].startswith("variable fees cannot be stored: keys must be str")
    assert count(client, "process-instance") == 0
    case = client.start("last")
    [task] = client.tasks(processInstanceId=case["id"])
    r = client.complete(task["id"])                 # ends the case, which then writes no state
    assert r.status_code == 400 and "variable fees cannot be stored" in r.get_json()["message"]
    assert client.get(f"/engine-rest/process-instance/{case['id']}").get_json()["ended"] is False
    assert [t["id"] for t in client.tasks(processInstanceId=case["id"])] == [task["id"]]


LOOKALIKE = '{"typename": "datetime", "value": "nope"}'       # the state's own encoding of a datetime


def test_a_value_spelling_the_states_own_typed_value_is_refused_where_the_model_makes_it(client, scripts_on):
    """Restored as a datetime, such a dict failed every later command on its case (the API
    refuses it in variables; a script or a mapping could still make it)."""
    assert client.deploy(extra={
        "script.bpmn": models.script_task("script", escape(f"fees = [1, ({LOOKALIKE},)]")),
        "inputs.bpmn": models.io_mapping("inputs", inputs=[("x", escape("${" + LOOKALIKE + "}"))]),
        "outputs.bpmn": models.io_mapping("outputs", outputs=[("x", escape("${" + LOOKALIKE + "}"))]),
    }).status_code == 200
    for key, message in (("script", "script left variable 'fees' unfit to store"),
                         ("inputs", "input mapping of T left variable 'x' unfit to store")):
        r = client.post(f"/engine-rest/process-definition/key/{key}/start", json={})
        assert r.status_code == 400 and message in r.get_json()["message"], r.get_json()
        assert "'datetime' is how the engine stores its own typed values" in r.get_json()["message"]
    assert count(client, "process-instance") == 0
    case = client.start("outputs")["id"]
    [task] = client.tasks(processInstanceId=case)
    r = client.complete(task["id"])
    assert r.status_code == 400 and "output mapping of T left variable 'x' unfit to store" in r.get_json()["message"]
    assert [t["id"] for t in client.tasks(processInstanceId=case)] == [task["id"]]


def test_text_no_database_could_encode_is_refused_where_the_script_or_mapping_makes_it(client, scripts_on):
    """A lone surrogate, which the API refuses in a request's body: made by a script, it was
    kept, and every read of the case's variables was a 500 (no response can encode it)."""
    assert client.deploy(extra={
        "script.bpmn": models.script_task("script", 'note = ["ok", ("\\ud800",)]'),
        "outputs.bpmn": models.io_mapping("outputs", outputs=[("x", escape('${"a" + "\\udfff"}'))]),
    }).status_code == 200
    r = client.post("/engine-rest/process-definition/key/script/start", json={})
    assert r.status_code == 400 and "script left variable 'note' unfit to store: invalid text at [1][0]" in \
        r.get_json()["message"], r.get_json()
    case = client.start("outputs")["id"]
    [task] = client.tasks(processInstanceId=case)
    r = client.complete(task["id"])
    assert r.status_code == 400 and "output mapping of T left variable 'x' unfit to store" in r.get_json()["message"]
    assert [t["id"] for t in client.tasks(processInstanceId=case)] == [task["id"]]
    assert count(client, "process-instance") == 1


def test_a_fault_of_the_engine_in_the_dump_stays_a_server_error(client, monkeypatch):
    """Only a variable that fails on its own is the model's fault (a 400); a TypeError
    of the engine's own serialization, with every variable storable, stays a 500."""
    from engine import workflows

    def broken(*_args):
        raise TypeError("'NoneType' object is not subscriptable")
    assert client.deploy(extra={"plain.bpmn": models.one_task("plain")}).status_code == 200
    monkeypatch.setattr(workflows, "_encode_task", broken)
    client.http.application.config["PROPAGATE_EXCEPTIONS"] = False
    r = client.post("/engine-rest/process-definition/key/plain/start", json={})
    assert r.status_code == 500, r.get_json()


# --- bombs that pass the static check: a bound stops them at run time -----------------------

BOMBS = {
    "huge power": "10**10**10",
    "huge string": "'a' * 10**9",
    "huge list from data": "len([applicantName] * copies) > 0",
    "runaway comprehension": "len([i for i in range(copies)]) > 0",
}


def started_or_refused(client, key, **variables):
    return client.post(f"/engine-rest/process-definition/key/{key}/start", json={"variables": typed(**variables)})


def refused_quickly(response, started_at):
    elapsed = time.perf_counter() - started_at
    assert response.status_code == 400, (response.status_code, response.get_json())
    body = response.get_json()
    assert body["type"] == "ProcessEngineException"
    assert "limit" in body["message"] or "CPU time" in body["message"], body["message"]
    assert elapsed < 5, f"took {elapsed:.1f}s"
    return body


@pytest.mark.parametrize("bomb", BOMBS)
@pytest.mark.parametrize("place", ["timer expression", "due date", "input mapping"])
def test_a_bomb_evaluated_when_a_task_starts_refuses_the_start_and_creates_nothing(client, place, bomb):
    assert client.deploy(extra={"m.bpmn": PLACES[place]("m", BOMBS[bomb])}).status_code == 200
    t0 = time.perf_counter()
    body = refused_quickly(started_or_refused(client, "m", applicantName="x" * 100, copies=10**9), t0)
    assert "activityId" in body or "T" in body["message"]
    assert count(client, "process-instance") == 0 and count(client, "task") == 0
    assert count(client, "history/process-instance") == 0


@pytest.mark.parametrize("bomb", BOMBS)
@pytest.mark.parametrize("place", ["gateway condition", "output mapping"])
def test_a_bomb_evaluated_when_a_task_completes_refuses_the_completion_and_changes_nothing(client, place, bomb):
    assert client.deploy(extra={"m.bpmn": PLACES[place]("m", BOMBS[bomb])}).status_code == 200
    case = client.start("m", typed(applicantName="x" * 100, copies=10**9))["id"]
    [task] = client.tasks(processInstanceId=case)
    before = client.get(f"/api/v1/process-instance/{case}/dossier").get_json()["auditTrail"]["events"]
    t0 = time.perf_counter()
    refused_quickly(client.complete(task["id"], typed(decision="approve")), t0)
    assert [t["id"] for t in client.tasks(processInstanceId=case)] == [task["id"]]
    assert "decision" not in client.get(f"/engine-rest/process-instance/{case}/variables").get_json()
    assert client.get(f"/api/v1/process-instance/{case}/dossier").get_json()["auditTrail"]["events"] == before
    if "copies" in BOMBS[bomb]:                                                      # sane data goes through
        assert client.complete(task["id"], typed(copies=3)).status_code == 204


@pytest.mark.parametrize("script", [
    "while True:\n    pass",
    "s = 'a'\nfor i in range(100):\n    s = s + s",
    "x = 10**10**10",
    "d = {}\ni = 0\nwhile True:\n    d[i] = i\n    i += 1",
])
def test_a_script_that_runs_away_is_stopped_and_the_case_is_not_started(client, scripts_on, script):
    assert client.deploy(extra={"calc.bpmn": models.script_task("calc", escape(script))}).status_code == 200
    t0 = time.perf_counter()
    body = refused_quickly(started_or_refused(client, "calc"), t0)
    assert "Script" in body["message"]
    assert count(client, "process-instance") == 0


def test_deeply_nested_code_is_refused_at_deploy(client):
    for expression in ("-" * 5000 + "1", "not " * 400 + "approved", "[" * 180 + "]" * 180):
        r = client.deploy(extra={"deep.bpmn": models.gateway("deep", escape("${" + expression + "}"))})
        assert r.status_code == 400, expression[:40]
        assert "nested" in str(r.get_json()["details"]), r.get_json()
    assert count(client, "deployment") == 0


def test_deeply_nested_data_is_a_400_not_a_crash(client):
    assert client.deploy(extra={"m.bpmn": models.gateway("m", "${doc == other}")}).status_code == 200
    deep = "[" * 5000 + "]" * 5000
    for body in ('{"variables": {"doc": {"value": "%s", "type": "Json"}}}' % deep,
                 '{"variables": {"doc": {"value": %s}}}' % deep,
                 '{"variables": {"doc": {"value": %s}}}' % ("[" * 101 + "]" * 101),
                 '{"variables": %s}' % deep):
        r = client.post("/engine-rest/process-definition/key/m/start", data=body, content_type="application/json")
        assert r.status_code == 400, (body[:60], r.get_data(as_text=True)[:200])
        assert "nest" in r.get_json()["message"] or "variables" in r.get_json()["message"]
    assert count(client, "process-instance") == 0
    case = client.start("m", {"doc": {"value": "[" * 100 + "]" * 100, "type": "Json"}})["id"]   # 100 levels: fine
    [task] = client.tasks(processInstanceId=case)
    assert client.complete(task["id"], typed(other=[[1]])).status_code == 204


# --- a bomb reached when a timer fires: an incident, the case waits where it was ---------------

def test_a_bomb_reached_when_a_timer_fires_is_an_incident_and_the_case_stays_at_the_timer(client, engine):
    assert client.deploy(extra={"wait.bpmn": models.timer_then_gateway("wait", "${[0] * copies}")}).status_code == 200
    case = client.start("wait", typed(copies=10**9))["id"]
    clock.set(clock.now() + timedelta(hours=2))
    deadline = time.monotonic() + 20
    incidents = []
    while not incidents and time.monotonic() < deadline:
        scheduler.fire_due(engine)
        incidents = client.get("/engine-rest/incident", query_string={"processInstanceId": case}).get_json()
        time.sleep(0.1)
    [incident] = incidents
    assert incident["incidentType"] == "failedJob" and incident["activityId"] == "Wait"
    assert "limit" in incident["incidentMessage"], incident
    assert client.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"] == "ACTIVE"
    tree = client.get(f"/engine-rest/process-instance/{case}/activity-instances").get_json()
    assert [a["activityId"] for a in tree["childActivityInstances"]] == ["Wait"]
    assert count(client, "task") == 0
    dossier = client.get(f"/api/v1/process-instance/{case}/dossier").get_json()
    assert dossier["incidents"][0]["type"] == "failedJob"
    assert dossier["auditTrail"]["verification"]["valid"] is True
