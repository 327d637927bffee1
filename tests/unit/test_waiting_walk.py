"""The engine's walk for waiting tasks (engine.workflows._waiting_in_walk_order) gives
what SpiffWorkflow's TaskIterator gives, in the same order; a tree as large as the
iterator's depth limit is left to the iterator; the test suite's lockstep check
(`_update_waiting` with APPROVALS_CHECK_STATE=1) catches a walk that does not agree."""
from __future__ import annotations

import pytest
from SpiffWorkflow.util.task import TaskIterator, TaskState

from engine import workflows
from engine.script_engine import ApprovalScriptEngine
from engine.workflows import ApprovalWorkflow, parse_resources, run_until_waiting

WARNED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="D" targetNamespace="t">
  <bpmn:process id="warned" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:parallelGateway id="Split" />
    <bpmn:userTask id="Review_a" camunda:candidateGroups="fgw" />
    <bpmn:userTask id="Review_b" camunda:candidateGroups="zjj" />
    <bpmn:boundaryEvent id="Warn_a" attachedToRef="Review_a" cancelActivity="false">
      <bpmn:timerEventDefinition><bpmn:timeDuration>P10D</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:boundaryEvent id="Warn_b" attachedToRef="Review_b" cancelActivity="false">
      <bpmn:timerEventDefinition><bpmn:timeDuration>P10D</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="Warned_a" /><bpmn:endEvent id="Warned_b" />
    <bpmn:parallelGateway id="Join" />
    <bpmn:endEvent id="E" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Split" />
    <bpmn:sequenceFlow id="F2" sourceRef="Split" targetRef="Review_a" />
    <bpmn:sequenceFlow id="F3" sourceRef="Split" targetRef="Review_b" />
    <bpmn:sequenceFlow id="F4" sourceRef="Review_a" targetRef="Join" />
    <bpmn:sequenceFlow id="F5" sourceRef="Review_b" targetRef="Join" />
    <bpmn:sequenceFlow id="F6" sourceRef="Join" targetRef="E" />
    <bpmn:sequenceFlow id="F7" sourceRef="Warn_a" targetRef="Warned_a" />
    <bpmn:sequenceFlow id="F8" sourceRef="Warn_b" targetRef="Warned_b" />
  </bpmn:process>
</bpmn:definitions>"""


def _stages():
    """The case after its start, after the first review, and after the second."""
    spec = parse_resources([("warned.bpmn", WARNED.encode())]).get_spec("warned")
    workflow = ApprovalWorkflow(spec, {}, script_engine=ApprovalScriptEngine())
    run_until_waiting(workflow)
    yield "started", workflow
    for name in ("Review_a", "Review_b"):
        [task] = [t for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.bpmn_id == name]
        task.run()
        run_until_waiting(workflow)
        yield f"{name} done", workflow


def test_the_walk_gives_spiffworkflows_tasks_in_its_order():
    waited = 0
    for stage, workflow in _stages():
        theirs = list(TaskIterator(workflow.task_tree, state=TaskState.WAITING))
        assert list(workflows._waiting_in_walk_order(workflow.task_tree)) == theirs, stage
        waited += len(theirs)
    assert waited >= 3                   # the timers and the join did wait: the comparison was not of nothing


def test_a_tree_as_large_as_the_depth_limit_is_walked_by_spiffworkflows_iterator(monkeypatch):
    _, workflow = next(_stages())
    monkeypatch.setattr(workflows, "_WALK_DEPTH", len(workflow.tasks))

    def refused(root):
        raise AssertionError("the faster walk does not count depth")
    monkeypatch.setattr(workflows, "_waiting_in_walk_order", refused)
    workflow.update_waiting_tasks()
    assert len(workflow.get_tasks(state=TaskState.WAITING)) == 2


def test_the_lockstep_check_catches_a_walk_in_another_order(monkeypatch):
    monkeypatch.setattr(workflows, "CHECK_STATE", True)
    _, workflow = next(_stages())
    waiting = list(workflows._waiting_in_walk_order(workflow.task_tree))
    assert len(waiting) == 2
    monkeypatch.setattr(workflows, "_waiting_in_walk_order", lambda root: iter(waiting[::-1]))
    with pytest.raises(AssertionError, match="walk for waiting tasks"):
        workflow.update_waiting_tasks()
    monkeypatch.setattr(workflows, "_waiting_in_walk_order", lambda root: iter(waiting[:1]))
    with pytest.raises(AssertionError, match="found a task this one did not"):
        workflow.update_waiting_tasks()
