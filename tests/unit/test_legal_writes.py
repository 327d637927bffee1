"""What a command writes for its legal clocks (engine/legal.py `ClockSet.write`): the
clocks it started or changed and the events it recorded, and a task's `due` only where
its clock was started, moved or passed to it since the task showed it.  Two departments
review in parallel, each under a clock of its own with tacit approval at its deadline.
Storage test: SQLite and PostgreSQL."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event

from engine import identity, instances, tasks
from engine.deployments import Upload, deploy
from tests.security.models import HEAD


def _department(dept: str) -> str:
    return f"""
    <bpmn:sequenceFlow id="F_{dept}" sourceRef="Split" targetRef="T_{dept}" />
    <bpmn:userTask id="T_{dept}" name="{dept} 审查" camunda:candidateGroups="{dept}">
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="legalClock.start" value="{dept}" />
        <camunda:property name="legalClock.limit" value="{3 if dept == 'fgw' else 5}wd" />
        <camunda:property name="legalClock.stop" value="{dept}" />
      </camunda:properties></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="Tacit_{dept}" attachedToRef="T_{dept}">
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="legalClock.event" value="tacitApproval" />
        <camunda:property name="legalClock.stage" value="{dept}" />
      </camunda:properties></bpmn:extensionElements>
      <bpmn:timerEventDefinition><bpmn:timeDate xsi:type="bpmn:tFormalExpression">${{legal_deadline("{dept}")}}</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:exclusiveGateway id="M_{dept}" />
    <bpmn:sequenceFlow id="D_{dept}" sourceRef="T_{dept}" targetRef="M_{dept}" />
    <bpmn:sequenceFlow id="A_{dept}" sourceRef="Tacit_{dept}" targetRef="M_{dept}" />
    <bpmn:sequenceFlow id="J_{dept}" sourceRef="M_{dept}" targetRef="Join" />"""


MODEL = HEAD.format(key="two_clocks") + f"""
  <bpmn:process id="two_clocks" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F0" sourceRef="S" targetRef="Split" />
    <bpmn:parallelGateway id="Split" />{_department("fgw")}{_department("zjj")}
    <bpmn:parallelGateway id="Join" />
    <bpmn:sequenceFlow id="F_end" sourceRef="Join" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def _writes(engine, step) -> list[str]:
    """The statements `step()` sends that change rows, each as its first words."""
    sent = []

    def record(conn, cursor, statement, *_):
        words = statement.split()
        if words[0] in ("INSERT", "UPDATE", "DELETE"):
            sent.append(" ".join(words[:3]))
    event.listen(engine.db, "before_cursor_execute", record)
    try:
        step()
    finally:
        event.remove(engine.db, "before_cursor_execute", record)
    return sent


def _clocks_and_tasks(engine, instance_id: str) -> tuple[dict, dict]:
    with engine.uow(write=False) as uow:
        clocks = {r.stage: r for r in uow.session.execute(sa.text(
            "SELECT stage, deadline_at, stopped_at, outcome FROM legal_clock WHERE instance_id = :i"),
            {"i": instance_id})}
        due = dict(uow.session.execute(sa.text(
            "SELECT task_definition_key, due FROM user_task WHERE instance_id = :i"), {"i": instance_id}).all())
    return clocks, due


def test_a_start_and_a_completion_write_the_clocks_and_no_due_twice(engine):
    with engine.uow() as uow:
        deploy(uow, [Upload("two_clocks.bpmn", MODEL.encode())], identity.SYSTEM)
        uow.commit()
    started = {}

    def start():
        with engine.uow() as uow:
            started["record"], _ = instances.start(uow, identity.SYSTEM, {}, "LC-1", key="two_clocks")
    writes = _writes(engine, start)
    instance_id = started["record"].id
    assert writes.count("INSERT INTO legal_clock") == 1                # both clocks, in one executemany
    assert not any(w.startswith("UPDATE user_task") for w in writes)    # the new tasks carry their due
    clocks, due = _clocks_and_tasks(engine, instance_id)
    assert clocks["fgw"].deadline_at != clocks["zjj"].deadline_at
    assert due == {"T_fgw": clocks["fgw"].deadline_at, "T_zjj": clocks["zjj"].deadline_at}

    with engine.uow(write=False) as uow:
        [fgw] = tasks.query(uow.session, identity.SYSTEM, tasks.TaskQuery(process_instance_id=instance_id,
                                                                          task_definition_key="T_fgw"))

    def complete():
        with engine.uow() as uow:
            tasks.complete(uow, identity.SYSTEM, fgw.row.id, {})
    writes = _writes(engine, complete)
    assert writes.count("UPDATE legal_clock SET") == 1 and writes.count("INSERT INTO legal_event") == 1
    assert not any(w.startswith("UPDATE user_task") for w in writes)    # zjj's clock did not move
    after, due = _clocks_and_tasks(engine, instance_id)
    assert after["fgw"].outcome == "decided" and after["fgw"].stopped_at is not None
    assert after["zjj"].stopped_at is None and due == {"T_zjj": clocks["zjj"].deadline_at}
