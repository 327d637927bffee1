"""A reader without the instance's row lock (GET variables, a task's form variables)
reads the state's document and its task rows in two statements; a command that commits
between them must not give it the document of one version with the rows of the next.
Storage test: SQLite and PostgreSQL (where each statement sees its own commits)."""
from __future__ import annotations

import pytest

from engine import identity, instances, runtime, workflows
from engine.errors import Conflict
from tests.unit.test_state_json import HEAD, LOOP
from tests.unit.test_state_rows import _complete, _start

# the subprocess appears with the next version: its rows name a workflow the older
# document does not have
THEN_SUB = (HEAD + '<bpmn:process id="then_sub" isExecutable="true"><bpmn:startEvent id="S" />'
            '<bpmn:userTask id="A" />'
            '<bpmn:subProcess id="Sub"><bpmn:startEvent id="SubS" /><bpmn:userTask id="X" />'
            '<bpmn:endEvent id="SubE" /><bpmn:sequenceFlow id="SF1" sourceRef="SubS" targetRef="X" />'
            '<bpmn:sequenceFlow id="SF2" sourceRef="X" targetRef="SubE" /></bpmn:subProcess>'
            '<bpmn:endEvent id="E" />'
            '<bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="A" />'
            '<bpmn:sequenceFlow id="F2" sourceRef="A" targetRef="Sub" />'
            '<bpmn:sequenceFlow id="F3" sourceRef="Sub" targetRef="E" /></bpmn:process></bpmn:definitions>')


def _racing_rows(monkeypatch, commits):
    """The task-row query, with `commits` (callables) run just before its first calls:
    another request committing between the document and the rows."""
    real, pending, busy = runtime._TASK_ROWS, list(commits), []

    class Racing:
        def execute(self, session, params):
            if pending and not busy:             # not inside the racing command's own reads
                busy.append(1)
                try:
                    pending.pop(0)()
                finally:
                    busy.pop()
            return real.execute(session, params)
    monkeypatch.setattr(runtime, "_TASK_ROWS", Racing())


def test_a_commit_between_the_document_and_the_rows_is_read_again(engine, monkeypatch):
    monkeypatch.setattr(workflows, "ROWS_FROM", 0)
    instance_id = _start(engine, THEN_SUB, "then_sub", {"seen": 1})
    _racing_rows(monkeypatch, [lambda: _complete(engine, instance_id, "A", {"seen": 2})])
    engine.workflows.drop(instance_id)                  # a read restores the case (and meets the race)
    with engine.uow(write=False) as uow:
        variables = instances.variables(uow, identity.SYSTEM, instance_id)
        with runtime.peek_workflow(uow, instance_id) as workflow:
            ready = [t.task_spec.bpmn_id for t in workflow.get_tasks(state=16)]
    # one version, whole: SQLite's reader keeps the snapshot it began with (the older),
    # PostgreSQL's reads again and gets the newer
    assert (variables["seen"], ready) in [(1, ["A"]), (2, ["X"])]
    if engine.db.dialect.name == "postgresql":
        assert variables["seen"] == 2


def test_a_case_that_keeps_changing_while_read_is_a_conflict(engine, monkeypatch):
    if engine.db.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: a SQLite reader keeps one snapshot, commits do not reach it")
    monkeypatch.setattr(workflows, "ROWS_FROM", 0)
    instance_id = _start(engine, LOOP, "loop", {"rounds": 20})
    _racing_rows(monkeypatch, [lambda: _complete(engine, instance_id)] * runtime._RESTORE_TRIES)
    engine.workflows.drop(instance_id)                  # a read restores the case (and meets the races)
    with engine.uow(write=False) as uow, pytest.raises(Conflict):
        with runtime.peek_workflow(uow, instance_id):
            pass

