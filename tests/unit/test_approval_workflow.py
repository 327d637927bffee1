"""ApprovalWorkflow: SpiffWorkflow's workflow without the tree walks that would find nothing.

A case with many finished tasks must not be walked task by task on every step; where a
walk can find something (a waiting join, an automatic task made ready), it still runs
and the process moves on as SpiffWorkflow moves it."""
from __future__ import annotations

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.util import task as spiff_task
from SpiffWorkflow.util.task import TaskState

from engine.workflows import ApprovalWorkflow, SERIALIZER, dump_state, load_state, parse_resources, run_until_waiting
from tests.unit.test_state_json import HEAD, LOOP, no_check  # noqa: F401 (autouse: these tests compare by themselves)

PARALLEL = (HEAD + '<bpmn:process id="par" isExecutable="true"><bpmn:startEvent id="S" />'
            '<bpmn:parallelGateway id="Split" /><bpmn:userTask id="A" /><bpmn:userTask id="B" />'
            '<bpmn:parallelGateway id="Join" /><bpmn:scriptTask id="Count"><bpmn:script>joined = 1</bpmn:script>'
            '</bpmn:scriptTask><bpmn:endEvent id="E" />'
            '<bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Split" />'
            '<bpmn:sequenceFlow id="F2" sourceRef="Split" targetRef="A" />'
            '<bpmn:sequenceFlow id="F3" sourceRef="Split" targetRef="B" />'
            '<bpmn:sequenceFlow id="F4" sourceRef="A" targetRef="Join" />'
            '<bpmn:sequenceFlow id="F5" sourceRef="B" targetRef="Join" />'
            '<bpmn:sequenceFlow id="F6" sourceRef="Join" targetRef="Count" />'
            '<bpmn:sequenceFlow id="F7" sourceRef="Count" targetRef="E" /></bpmn:process></bpmn:definitions>')


# An inclusive join waits while another branch could still reach it; when that branch
# ends elsewhere (B decides "skip"), only the walk over WAITING tasks wakes the join.
INCLUSIVE = (HEAD + '<bpmn:process id="inc" isExecutable="true"><bpmn:startEvent id="S" />'
             '<bpmn:inclusiveGateway id="Split" /><bpmn:userTask id="A" /><bpmn:userTask id="B" />'
             '<bpmn:exclusiveGateway id="Decide" default="F_skip" /><bpmn:task id="C" />'
             '<bpmn:inclusiveGateway id="Join" /><bpmn:scriptTask id="Count"><bpmn:script>joined = 1</bpmn:script>'
             '</bpmn:scriptTask><bpmn:endEvent id="E" /><bpmn:endEvent id="E_skip" />'
             '<bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Split" />'
             '<bpmn:sequenceFlow id="F2" sourceRef="Split" targetRef="A">'
             '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">True</bpmn:conditionExpression></bpmn:sequenceFlow>'
             '<bpmn:sequenceFlow id="F3" sourceRef="Split" targetRef="B">'
             '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">True</bpmn:conditionExpression></bpmn:sequenceFlow>'
             '<bpmn:sequenceFlow id="F4" sourceRef="A" targetRef="Join" />'
             '<bpmn:sequenceFlow id="F5" sourceRef="B" targetRef="Decide" />'
             '<bpmn:sequenceFlow id="F_via_c" sourceRef="Decide" targetRef="C">'
             '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">via_c</bpmn:conditionExpression></bpmn:sequenceFlow>'
             '<bpmn:sequenceFlow id="F_skip" sourceRef="Decide" targetRef="E_skip" />'
             '<bpmn:sequenceFlow id="F6" sourceRef="C" targetRef="Join" />'
             '<bpmn:sequenceFlow id="F7" sourceRef="Join" targetRef="Count" />'
             '<bpmn:sequenceFlow id="F8" sourceRef="Count" targetRef="E" /></bpmn:process></bpmn:definitions>')


def _start(cls, xml: str, key: str, **data):
    spec = parse_resources([(f"{key}.bpmn", xml.encode())]).get_spec(key)
    workflow = cls(spec, {}, script_engine=PythonScriptEngine())
    workflow.task_tree.data.update(data)
    workflow.do_engine_steps()
    return workflow, spec


def _complete(workflow, name: str | None = None) -> None:
    ready = workflow.get_tasks(state=TaskState.READY, manual=True)
    [task] = [t for t in ready if name is None or t.task_spec.bpmn_id == name]
    task.run()
    workflow.do_engine_steps()


@pytest.fixture
def walks(monkeypatch):
    """How many tree walks SpiffWorkflow starts (every one builds a TaskIterator)."""
    count = [0]
    original = spiff_task.TaskIterator.__init__

    def counting(self, *args, **kwargs):
        count[0] += 1
        original(self, *args, **kwargs)
    monkeypatch.setattr(spiff_task.TaskIterator, "__init__", counting)
    return count


@pytest.mark.parametrize("cls, expect_walks", [(ApprovalWorkflow, False), (BpmnWorkflow, True)])
def test_a_step_in_a_case_with_finished_tasks_walks_no_tree(cls, expect_walks, walks):
    workflow, _ = _start(cls, LOOP, "loop", rounds=50)
    for _ in range(20):
        _complete(workflow)
    [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
    walks[0] = 0
    task.run()
    workflow.do_engine_steps()
    assert (walks[0] > 0) is expect_walks         # BpmnWorkflow: the control, it does walk
    assert len(workflow.get_tasks(state=TaskState.READY, manual=True)) == 1


def test_a_waiting_join_and_the_script_after_it_still_run():
    workflow, _ = _start(ApprovalWorkflow, PARALLEL, "par")
    _complete(workflow, "A")
    [join] = [t for t in workflow.get_tasks(spec_name="Join") if t.state == TaskState.WAITING]
    _complete(workflow, "B")
    assert workflow.completed
    assert workflow.last_task.data["joined"] == 1


@pytest.mark.parametrize("cls", [ApprovalWorkflow, BpmnWorkflow])
def test_a_join_waiting_on_a_branch_that_ends_elsewhere_is_woken(cls):
    workflow, _ = _start(cls, INCLUSIVE, "inc", via_c=False)
    _complete(workflow, "A")
    assert TaskState.WAITING in [t.state for t in workflow.get_tasks(spec_name="Join")]
    _complete(workflow, "B")
    assert workflow.completed
    assert [t.data.get("joined") for t in workflow.get_tasks(spec_name="Count")] == [1]


def test_restored_as_approval_workflow_under_spiffworkflows_type_name():
    workflow, spec = _start(ApprovalWorkflow, LOOP, "loop", rounds=3)
    text = dump_state(workflow)
    assert text == SERIALIZER.serialize_json(workflow)
    assert '"typename": "BpmnWorkflow"' in text
    restored = load_state(text, spec, {}, PythonScriptEngine())
    assert type(restored) is ApprovalWorkflow
    _complete(restored)
    _complete(restored)
    _complete(restored)
    assert restored.completed


# a loop drawn with gateways around a parallel split and join: every round nests deeper
LOOPED_PARALLEL = (HEAD + '<bpmn:process id="looped" isExecutable="true"><bpmn:startEvent id="S" />'
                   '<bpmn:exclusiveGateway id="Again" /><bpmn:parallelGateway id="Split" />'
                   '<bpmn:userTask id="A" /><bpmn:userTask id="B" /><bpmn:userTask id="C" />'
                   '<bpmn:parallelGateway id="Join" /><bpmn:scriptTask id="Count"><bpmn:script>n = n + 1</bpmn:script>'
                   '</bpmn:scriptTask><bpmn:exclusiveGateway id="More" default="F_end" /><bpmn:endEvent id="E" />'
                   '<bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Again" />'
                   '<bpmn:sequenceFlow id="F2" sourceRef="Again" targetRef="Split" />'
                   '<bpmn:sequenceFlow id="F3" sourceRef="Split" targetRef="A" />'
                   '<bpmn:sequenceFlow id="F4" sourceRef="Split" targetRef="B" />'
                   '<bpmn:sequenceFlow id="F5" sourceRef="Split" targetRef="C" />'
                   '<bpmn:sequenceFlow id="F6" sourceRef="A" targetRef="Join" />'
                   '<bpmn:sequenceFlow id="F7" sourceRef="B" targetRef="Join" />'
                   '<bpmn:sequenceFlow id="F8" sourceRef="C" targetRef="Join" />'
                   '<bpmn:sequenceFlow id="F9" sourceRef="Join" targetRef="Count" />'
                   '<bpmn:sequenceFlow id="F10" sourceRef="Count" targetRef="More" />'
                   '<bpmn:sequenceFlow id="F_again" sourceRef="More" targetRef="Again">'
                   '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">n &lt; 4</bpmn:conditionExpression>'
                   '</bpmn:sequenceFlow><bpmn:sequenceFlow id="F_end" sourceRef="More" targetRef="E" />'
                   '</bpmn:process></bpmn:definitions>')


@pytest.mark.parametrize("xml, key, data", [(PARALLEL, "par", {}), (INCLUSIVE, "inc", {"via_c": True}),
                                            (LOOPED_PARALLEL, "looped", {"n": 0}), (LOOP, "loop", {"rounds": 5})])
@pytest.mark.parametrize("pick", [0, -1])
def test_tasks_by_spec_name_come_in_spiffworkflows_walk_order(xml, key, data, pick):
    """Every spec name, after every step, completing the first or the last ready task."""
    workflow, spec = _start(ApprovalWorkflow, xml, key, **data)
    names = list(spec.task_specs)
    compared = 0
    for _ in range(40):
        for name in names:
            expected = BpmnWorkflow.get_tasks(workflow, spec_name=name)
            assert workflow.get_tasks(spec_name=name) == expected, name
            compared += len(expected) > 1
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        if not ready:
            break
        ready[pick].run()
        workflow.do_engine_steps()
    assert workflow.completed and compared > 0


# A loop that throws a signal at every round, with nobody waiting for it.
SIGNALLING = (HEAD + '<bpmn:signal id="Sig" name="roundDone" /><bpmn:process id="sig" isExecutable="true">'
              '<bpmn:startEvent id="S" /><bpmn:userTask id="Round" />'
              '<bpmn:intermediateThrowEvent id="Tell"><bpmn:signalEventDefinition id="SD" signalRef="Sig" />'
              '</bpmn:intermediateThrowEvent><bpmn:exclusiveGateway id="Again" default="F_end" />'
              '<bpmn:endEvent id="E" />'
              '<bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Round" />'
              '<bpmn:sequenceFlow id="F2" sourceRef="Round" targetRef="Tell" />'
              '<bpmn:sequenceFlow id="F3" sourceRef="Tell" targetRef="Again" />'
              '<bpmn:sequenceFlow id="F_again" sourceRef="Again" targetRef="Round">'
              '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">again</bpmn:conditionExpression>'
              '</bpmn:sequenceFlow><bpmn:sequenceFlow id="F_end" sourceRef="Again" targetRef="E" />'
              '</bpmn:process></bpmn:definitions>')


def test_a_signal_nobody_catches_is_not_kept_in_the_cases_state():
    """SpiffWorkflow keeps uncaught events for the application, in the state document; the
    engine has nowhere to deliver them, so they grew the state by one event a round."""
    workflow, spec = _start(ApprovalWorkflow, SIGNALLING, "sig", again=True)
    for _ in range(5):
        [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
        task.run()
        run_until_waiting(workflow)
        assert workflow.bpmn_events == []
    assert '"bpmn_events": []' in dump_state(workflow)
