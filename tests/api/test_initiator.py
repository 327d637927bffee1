"""camunda:initiator on a start event: the case variable it names holds the user who
started the case, as Camunda 7 sets it when a case is created, whichever way it starts
(a request, a start form, a message, a signal); a timer start has no user: null."""
from __future__ import annotations

from datetime import timedelta

import pytest

from engine import scheduler
from engine.clock import clock
from tests.conftest import typed
from tests.security.models import HEAD


@pytest.fixture
def settings(settings):
    settings.test_clock = True
    settings.timers_enabled = False          # the timer test fires its timer itself
    return settings


def started_at(key: str, start: str, task_attrs: str = 'camunda:assignee="${initiator}"', extra: str = "") -> str:
    """`start` (a start event with id S) → T, assigned by the initiator → end."""
    return HEAD.format(key=key) + f"""{extra}
  <bpmn:process id="{key}" isExecutable="true">
    {start}
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T" />
    <bpmn:userTask id="T" name="补充材料" {task_attrs} />
    <bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


NONE_START = '<bpmn:startEvent id="S" camunda:initiator="initiator" />'


def variables(client, case_id: str) -> dict:
    r = client.get(f"/engine-rest/process-instance/{case_id}/variables")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def only_task(client, **query) -> dict:
    [task] = client.tasks(**query)
    return task


def test_the_initiator_variable_names_the_user_who_started_the_case_and_assigns_the_task(client):
    john = client.create_user("john", groups=["window"])
    assert client.deploy(extra={"mine.bpmn": started_at("mine", NONE_START)}).status_code == 200
    r = john.post("/engine-rest/process-definition/key/mine/start", json={"variables": typed(amount=5)})
    assert r.status_code == 200, r.get_json()
    case = r.get_json()["id"]
    assert variables(client, case)["initiator"] == {"value": "john", "type": "String", "valueInfo": {}}
    assert only_task(client, processInstanceId=case)["assignee"] == "john"
    history = client.get("/engine-rest/history/process-instance/" + case).get_json()
    assert history["startUserId"] == "john"


def test_a_start_variable_of_the_same_name_wins_as_in_camunda(client):
    """Camunda sets the initiator when it creates the case, then the start's variables."""
    john = client.create_user("john", groups=["window"])
    assert client.deploy(extra={"mine.bpmn": started_at("mine", NONE_START)}).status_code == 200
    r = john.post("/engine-rest/process-definition/key/mine/start", json={"variables": typed(initiator="mary")})
    assert r.status_code == 200, r.get_json()
    assert variables(client, r.get_json()["id"])["initiator"]["value"] == "mary"


def test_another_name_and_a_start_form_start(client):
    start = ('<bpmn:startEvent id="S" camunda:initiator="applicantUser" '
             'camunda:formKey="camunda-forms:deployment:start.form" />')
    form = ('{"components": [{"type": "textfield", "key": "name", "id": "N", "label": "Name"}], "type": "default", '
            '"id": "start_form", "executionPlatform": "Camunda Platform", "schemaVersion": 16}')
    john = client.create_user("john", groups=["window"])
    model = started_at("formed", start, task_attrs='camunda:assignee="${applicantUser}"')
    assert client.deploy(extra={"formed.bpmn": model, "start.form": form}).status_code == 200
    r = john.post("/engine-rest/process-definition/key/formed/submit-form", json={"variables": typed(name="a")})
    assert r.status_code == 200, r.get_json()
    case = r.get_json()["id"]
    assert variables(client, case)["applicantUser"]["value"] == "john"
    assert only_task(client, processInstanceId=case)["assignee"] == "john"


def test_a_message_start_names_the_system_that_sent_the_message(client):
    start = ('<bpmn:startEvent id="S" camunda:initiator="initiator">'
             '<bpmn:messageEventDefinition id="MD" messageRef="M" /></bpmn:startEvent>')
    bank = client.create_user("bank", groups=["external-workers"])
    model = started_at("online", start, extra='  <bpmn:message id="M" name="OnlineApplication" />')
    assert client.deploy(extra={"online.bpmn": model}).status_code == 200
    r = bank.post("/engine-rest/message", json={"messageName": "OnlineApplication", "resultEnabled": True})
    assert r.status_code == 200, r.get_json()
    case = r.get_json()[0]["processInstance"]["id"]
    assert variables(client, case)["initiator"]["value"] == "bank"
    assert only_task(client, processInstanceId=case)["assignee"] == "bank"


def test_a_signal_start_names_the_system_that_sent_the_signal(client):
    start = ('<bpmn:startEvent id="S" camunda:initiator="initiator">'
             '<bpmn:signalEventDefinition id="SD" signalRef="Sig" /></bpmn:startEvent>')
    bank = client.create_user("bank", groups=["external-workers"])
    model = started_at("announced", start, extra='  <bpmn:signal id="Sig" name="PolicyChanged" />')
    assert client.deploy(extra={"announced.bpmn": model}).status_code == 200
    assert bank.post("/engine-rest/signal", json={"name": "PolicyChanged"}).status_code == 204
    task = only_task(client, processDefinitionKey="announced")
    assert variables(client, task["processInstanceId"])["initiator"]["value"] == "bank"
    assert task["assignee"] == "bank"


def test_a_timer_start_has_no_user_so_the_initiator_is_null(client, engine):
    start = ('<bpmn:startEvent id="S" camunda:initiator="initiator"><bpmn:timerEventDefinition id="TD">'
             '<bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:startEvent>')
    model = started_at("nightly", start, task_attrs='camunda:candidateGroups="fgw" camunda:assignee="${initiator}"')
    assert client.deploy(extra={"nightly.bpmn": model}).status_code == 200
    clock.set(clock.now() + timedelta(hours=2))
    scheduler.fire_due(engine)
    task = only_task(client, processDefinitionKey="nightly")
    assert variables(client, task["processInstanceId"])["initiator"] == {"value": None, "type": "Null",
                                                                         "valueInfo": {}}
    assert task["assignee"] is None


def test_a_process_without_the_attribute_sets_no_such_variable(client):
    model = started_at("plain", '<bpmn:startEvent id="S" />', task_attrs='camunda:candidateGroups="fgw"')
    assert client.deploy(extra={"plain.bpmn": model}).status_code == 200
    case = client.start("plain")["id"]
    assert "initiator" not in variables(client, case)
