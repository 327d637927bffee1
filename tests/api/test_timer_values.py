"""A timer whose value is wrong: a 400 naming the element when a request reaches it, an
incident when it fires, and never a scheduler stuck on it while other cases' timers wait.
And a repeating start timer after the server was down: one case, not one per missed beat."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import scheduler
from engine.clock import clock, utcnow
from engine.models import Timer
from tests.conftest import typed
from tests.security.models import HEAD, one_task


@pytest.fixture
def settings(settings):
    settings.test_clock = True
    settings.timers_enabled = False          # the tests fire the timers themselves
    return settings


def waits(key: str, first: str, then: str) -> str:
    """start → timer `first` → timer `then` → T (fgw) → end, as Camunda Modeler writes it."""
    def timer(id_, value):
        return (f'<bpmn:intermediateCatchEvent id="{id_}" name="等待"><bpmn:timerEventDefinition id="TD_{id_}">'
                f'<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">{value}</bpmn:timeDuration>'
                '</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="W1" />
    {timer("W1", first)}
    <bpmn:sequenceFlow id="F2" sourceRef="W1" targetRef="W2" />
    {timer("W2", then)}
    <bpmn:sequenceFlow id="F3" sourceRef="W2" targetRef="T" />
    <bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F4" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def started_by_timer(key: str, cycle: str) -> str:
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:timerEventDefinition id="TD">
      <bpmn:timeCycle xsi:type="bpmn:tFormalExpression">{cycle}</bpmn:timeCycle>
    </bpmn:timerEventDefinition></bpmn:startEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T" />
    <bpmn:userTask id="T" name="汇总" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def count(client, what: str, **query) -> int:
    return client.get(f"/engine-rest/{what}/count", query_string=query).get_json()["count"]


@pytest.mark.parametrize("value, said", [("garbage", "'garbage' is not an ISO 8601 duration"),
                                         (5, "not int"), (None, "not NoneType"),
                                         ("-PT1H", "cannot be negative"),
                                         ("2026-12-20T10:00:00+08:00", "is not an ISO 8601 duration")])
def test_a_timer_whose_expression_gives_no_duration_is_a_400_naming_it(client, value, said):
    assert client.deploy(extra={"w.bpmn": waits("w", "${waitFor}", "PT1H")}).status_code == 200
    r = client.post("/engine-rest/process-definition/key/w/start", json={"variables": typed(waitFor=value)})
    assert r.status_code == 400, r.get_json()
    message = r.get_json()["message"]
    assert "W1" in message and "waitFor" in message and said in message, message
    assert count(client, "process-instance") == 0 and count(client, "history/process-instance") == 0


def test_a_literal_negative_duration_is_refused_at_deploy(client):
    r = client.deploy(extra={"neg.bpmn": waits("neg", "-PT1H", "PT1H")})
    assert r.status_code == 400 and "-PT1H" in r.get_json()["message"], r.get_json()
    assert count(client, "process-definition", key="neg") == 0


@pytest.mark.parametrize("value", ["PTxyz", "PT", "PT_2H", "PTO_days"])
@pytest.mark.parametrize("kind", ["timeDuration", "timeDate"])
def test_a_bare_word_written_like_a_duration_is_refused_at_deploy(client, value, kind):
    """`PTxyz` deployed as an expression naming a variable `PTxyz`: every case failed at the timer."""
    from tests.security.models import boundary_timer
    model = waits("typo", value, "PT1H") if kind == "timeDuration" else boundary_timer("typo", value)
    r = client.deploy(extra={"typo.bpmn": model})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["typo.bpmn"]["errors"]
    assert f"timer {kind} '{value}' is not a valid ISO-8601 duration" in problem["message"], problem
    assert f"write ${{{value}}}" in problem["message"], problem          # how to read a variable of that name
    assert problem["mainElementId"] == ("TD_W1" if kind == "timeDuration" else "TD"), problem
    assert "typo.bpmn" in r.get_json()["message"] and count(client, "process-definition", key="typo") == 0


@pytest.mark.parametrize("value", ["${PTxyz}", "${due}", "Period", "due", "hours_left and 'PT1H'"])
def test_an_expression_or_a_variable_not_written_like_a_duration_still_gives_the_timer_its_value(client, value):
    assert client.deploy(extra={"read.bpmn": waits("read", value, "PT1H")}).status_code == 200
    case = client.start("read", typed(PTxyz="PT1H", due="PT1H", Period="PT1H", hours_left=1))["id"]
    tree = client.get(f"/engine-rest/process-instance/{case}/activity-instances").get_json()
    assert [a["activityId"] for a in tree["childActivityInstances"]] == ["W1"]


def test_a_timer_that_fails_when_it_fires_is_an_incident_and_the_others_still_fire(client, engine):
    assert client.deploy(extra={"w.bpmn": waits("w", "PT1H", "${waitFor}")}).status_code == 200
    broken = client.start("w", typed(waitFor="garbage"))["id"]
    fine = client.start("w", typed(waitFor="PT1H"))["id"]
    clock.set(clock.now() + timedelta(hours=3))
    scheduler.fire_due(engine)        # the broken case's W1 failed to read W2's value: incident, backoff
    [incident] = client.get("/engine-rest/incident", query_string={"processInstanceId": broken}).get_json()
    assert incident["incidentType"] == "failedJob" and incident["activityId"] == "W1", incident
    assert "'garbage' is not an ISO 8601 duration" in incident["incidentMessage"], incident
    tree = client.get(f"/engine-rest/process-instance/{broken}/activity-instances").get_json()
    assert [a["activityId"] for a in tree["childActivityInstances"]] == ["W1"]
    clock.set(clock.now() + timedelta(hours=3))
    scheduler.fire_due(engine)        # W2 of the fine case, while the broken one backs off
    assert [t["taskDefinitionKey"] for t in client.tasks(processInstanceId=fine)] == ["T"]
    assert client.tasks(processInstanceId=broken) == []


def test_an_unexpected_error_firing_one_timer_leaves_the_others_firing(client, engine, monkeypatch):
    assert client.deploy(extra={"w.bpmn": waits("w", "PT1H", "PT1H")}).status_code == 200
    first = client.start("w")["id"]
    second = client.start("w")["id"]
    fire = scheduler.fire_one

    def fail_for_first(uow, timer_id):
        if uow.session.get(Timer, timer_id).instance_id == first:
            raise RuntimeError("the department's database went away")
        return fire(uow, timer_id)
    monkeypatch.setattr(scheduler, "fire_one", fail_for_first)
    clock.set(clock.now() + timedelta(hours=3))
    scheduler.fire_due(engine)
    [incident] = client.get("/engine-rest/incident", query_string={"processInstanceId": first}).get_json()
    assert "RuntimeError: the department's database went away" in incident["incidentMessage"], incident
    tree = client.get(f"/engine-rest/process-instance/{second}/activity-instances").get_json()
    assert [a["activityId"] for a in tree["childActivityInstances"]] == ["W2"]
    with engine.uow(write=False) as uow:
        due = uow.session.execute(select(Timer.due_at).where(Timer.instance_id == first)).scalar()
    assert due > utcnow()             # backed off: not claimed again at once


@pytest.mark.parametrize("cycle, left", [("R/PT1H", True), ("R5/PT1H", False)])
def test_a_repeating_start_timer_starts_one_case_for_the_beats_missed_while_down(client, engine, cycle, left):
    assert client.deploy(extra={"daily.bpmn": started_by_timer("daily", cycle)}).status_code == 200
    clock.set(clock.now() + timedelta(hours=9, minutes=30))       # the server was down for 9 beats
    scheduler.fire_due(engine)
    assert count(client, "process-instance") == 1
    with engine.uow(write=False) as uow:
        rest = uow.session.execute(select(Timer.due_at).where(Timer.instance_id.is_(None))).scalars().all()
    if not left:                      # R5: the five beats are spent
        assert rest == []
        return
    [due] = rest
    assert utcnow() < due <= utcnow() + timedelta(hours=1)
    clock.set(clock.now() + timedelta(hours=1))
    scheduler.fire_due(engine)
    assert count(client, "process-instance") == 2


def reminder(key: str, cycle: str) -> str:
    """T (fgw) with a non-interrupting boundary timer repeating `cycle` (a reminder)."""
    return one_task(key, after=f"""<bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="E" />
    <bpmn:boundaryEvent id="Remind" attachedToRef="T" cancelActivity="false">
      <bpmn:timerEventDefinition id="TD"><bpmn:timeCycle xsi:type="bpmn:tFormalExpression">{cycle}</bpmn:timeCycle></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="F_r" sourceRef="Remind" targetRef="E2" />
    <bpmn:endEvent id="E2" />""")


@pytest.mark.parametrize("cycle, said", [("R/PT0S", "a cycle's period must be longer than zero"),
                                         ("R3/P5000000Y", "longer than 100 years")])
def test_a_cycle_that_would_never_end_or_never_come_is_a_400_not_a_server_held(client, cycle, said):
    # R/PT0S fired without end inside one command (6.9 GB in 2 minutes, every request waiting);
    # SpiffWorkflow counted P5000000Y out month by month, holding the writer for 48 s
    assert client.deploy(extra={"r.bpmn": reminder("r", "${d}")}).status_code == 200
    r = client.post("/engine-rest/process-definition/key/r/start", json={"variables": typed(d=cycle)})
    assert r.status_code == 400 and "Remind" in r.get_json()["message"] and said in r.get_json()["message"], r.get_json()
    assert count(client, "process-instance") == 0
    r = client.deploy(extra={"r2.bpmn": reminder("r2", cycle)})
    assert r.status_code == 400 and said in r.get_json()["message"], r.get_json()


def test_a_duration_beyond_a_century_is_a_400(client):
    assert client.deploy(extra={"w.bpmn": waits("w", "${waitFor}", "PT1H")}).status_code == 200
    r = client.post("/engine-rest/process-definition/key/w/start", json={"variables": typed(waitFor="P1000000Y")})
    assert r.status_code == 400 and "longer than 100 years" in r.get_json()["message"], r.get_json()
    assert client.start("w", typed(waitFor="P99Y"))["id"]


def test_a_cycle_on_an_intermediate_catch_event_is_refused_at_deploy(client):
    # SpiffWorkflow passed the token on at every beat: R/PT5S added two tasks every ten seconds
    r = client.deploy(extra={"c.bpmn": waits("c", "PT1H", "PT1H").replace(
        '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT1H</bpmn:timeDuration>',
        '<bpmn:timeCycle xsi:type="bpmn:tFormalExpression">R/PT5S</bpmn:timeCycle>', 1)})
    assert r.status_code == 400, r.get_json()
    assert "timeCycle on an intermediate catch event" in r.get_json()["message"] and "W1" in r.get_json()["message"]


def fan_out(key: str, attrs: str = "", cardinality: str = "") -> str:
    child = f"<bpmn:loopCardinality>{cardinality}</bpmn:loopCardinality>" if cardinality else ""
    return one_task(key, inner=f"<bpmn:multiInstanceLoopCharacteristics {attrs}>{child}"
                               "</bpmn:multiInstanceLoopCharacteristics>")


@pytest.mark.parametrize("attrs, cardinality, variables, said", [
    ("", "99999999999", {}, "its loopCardinality asks for 99999999999 instances"),
    ('camunda:collection="${depts}" camunda:elementVariable="dept"', "", {"depts": [f"d{i}" for i in range(1001)]},
     "asks for 1001 instances"),
    ("", "${n}", {"n": "3"}, "gave '3': not a whole number"),
])
def test_a_multi_instance_beyond_a_thousand_is_a_400_naming_it(client, attrs, cardinality, variables, said):
    # loopCardinality 99999999999 took 3.3 GB and the server; 20,000 departments held it 80 s
    assert client.deploy(extra={"mi.bpmn": fan_out("mi", attrs, cardinality)}).status_code == 200
    r = client.post("/engine-rest/process-definition/key/mi/start", json={"variables": typed(**variables)})
    assert r.status_code == 400 and "at T" in r.get_json()["message"] and said in r.get_json()["message"], r.get_json()
    assert count(client, "process-instance") == 0


def test_a_multi_instance_of_a_thousand_runs(client):
    assert client.deploy(extra={"mi.bpmn": fan_out("mi", 'isSequential="true" camunda:collection="${depts}" '
                                                         'camunda:elementVariable="dept"')}).status_code == 200
    case = client.start("mi", typed(depts=[f"d{i}" for i in range(1000)]))["id"]
    assert len(client.tasks(processInstanceId=case)) == 1


@pytest.mark.parametrize("value, said", [("P1.5DT12H", "only the last part of a duration may have a fraction"),
                                         ("P1201M", "longer than 100 years")])
def test_a_fraction_before_the_last_part_or_a_century_in_months_is_refused_at_deploy(client, value, said):
    # SpiffWorkflow dropped a fraction that was not in the last part: P1.5DT12H waited 12 hours
    r = client.deploy(extra={"w.bpmn": waits("w", value, "PT1H")})
    assert r.status_code == 400 and said in r.get_json()["message"], r.get_json()


def test_a_century_is_a_century_in_any_unit(client):
    for value in ("P100Y", "P1200M", "P36600D"):
        assert client.deploy(extra={"w.bpmn": waits("w", value, "PT1H")}).status_code == 200, value


def test_a_documentation_pool_is_not_held_to_the_executable_process_checks(client):
    # Camunda Modeler's collaboration: the applicant's side drawn as a non-executable pool
    pool = """<bpmn:process id="applicant_side" isExecutable="false">
    <bpmn:startEvent id="A_S" /><bpmn:sequenceFlow id="A_F" sourceRef="A_S" targetRef="A_G" />
    <bpmn:exclusiveGateway id="A_G" />
    <bpmn:intermediateCatchEvent id="A_W"><bpmn:timerEventDefinition id="A_TD">
      <bpmn:timeCycle xsi:type="bpmn:tFormalExpression">R/P1D</bpmn:timeCycle></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:task id="A_T"><bpmn:extensionElements><camunda:properties><camunda:property value="x" />
    </camunda:properties></bpmn:extensionElements></bpmn:task>
  </bpmn:process>
</bpmn:definitions>"""
    diagram = waits("w", "PT1H", "PT1H").replace("</bpmn:definitions>", pool)
    r = client.deploy(extra={"w.bpmn": diagram})
    assert r.status_code == 200, r.get_json()
    assert client.start("w")["id"]
