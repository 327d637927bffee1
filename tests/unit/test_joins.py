"""The three-way merge at joins (engine/joins.py): what each branch changed since the
split stays changed, wherever the split is (nested, in a loop's later round, an
inclusive gateway, the end of a process whose paths end apart, a boundary event's path)."""
from __future__ import annotations

import pytest
from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.util.task import TaskState

from engine.joins import merge_branches
from engine.workflows import ApprovalWorkflow, dump_state, load_state, parse_resources
from tests.unit.test_state_json import HEAD, no_check  # noqa: F401 (autouse: these tests compare by themselves)


# --- the merge itself ------------------------------------------------------------------

def test_a_variable_no_branch_changed_keeps_the_splits_value():
    base = {"flag": None, "counts": {"a": 0}, "note": "x"}
    merged = merge_branches(base, [{**base, "flag": "objection", "counts": {"a": 1}}, dict(base)])
    assert merged == {"flag": "objection", "counts": {"a": 1}, "note": "x"}


def test_branches_changing_different_keys_of_a_dict_keep_both_and_the_later_wins_a_shared_key():
    base = {"checks": {"tax": False, "social": False, "fire": False}}
    first = {"checks": {"tax": True, "social": False, "fire": "pending"}}
    later = {"checks": {"tax": False, "social": True, "fire": "done"}}
    assert merge_branches(base, [first, later]) == {"checks": {"tax": True, "social": True, "fire": "done"}}


def test_a_deleted_variable_is_a_change_and_a_later_change_wins_over_it():
    base = {"draft": "待补", "note": 1}
    assert merge_branches(base, [{"note": 1}, dict(base)]) == {"note": 1}
    assert merge_branches(base, [{"note": 1}, {"draft": "已补", "note": 1}]) == {"draft": "已补", "note": 1}


def test_a_dict_a_branch_set_goes_in_key_by_key_beside_the_keys_it_left_out():
    base = {"permits": {"planning": "地字1号"}}
    assert merge_branches(base, [{"permits": {"construction": "施字1号"}}, dict(base)]) == {
        "permits": {"planning": "地字1号", "construction": "施字1号"}}
    assert merge_branches(base, [{"permits": {"engineering": "建字1号"}}, {"permits": {"construction": "施字1号"}}]) == {
        "permits": {"planning": "地字1号", "engineering": "建字1号", "construction": "施字1号"}}


def test_variables_two_branches_added_merge_as_before_key_by_key():
    merged = merge_branches({}, [{"reviews": {"fgw": "同意"}}, {"reviews": {"zrzy": "同意"}, "done": True}])
    assert merged == {"reviews": {"fgw": "同意", "zrzy": "同意"}, "done": True}


def test_lists_both_branches_changed_merge_position_by_position():
    base = {"items": ["a", "b", "c"]}
    assert merge_branches(base, [{"items": ["A", "b", "c"]}, {"items": ["a", "b", "C"]}]) == {"items": ["A", "b", "C"]}
    assert merge_branches(base, [{"items": ["A", "b", "c"]}, {"items": ["a", "b"]}]) == {"items": ["A", "b"]}
    assert merge_branches({"items": []}, [{"items": ["x"]}, {"items": ["y"]}]) == {"items": ["y"]}


def test_nothing_given_is_changed_in_place():
    base = {"c": {"n": {"a": 0}}, "l": [{"k": 0}]}
    first, later = {"c": {"n": {"a": 1}}, "l": [{"k": 1}]}, {"c": {"n": {"a": 0, "b": 2}}, "l": [{"k": 0, "j": 1}]}
    merged = merge_branches(base, [first, later])
    assert merged == {"c": {"n": {"a": 1, "b": 2}}, "l": [{"k": 1, "j": 1}]}
    assert base == {"c": {"n": {"a": 0}}, "l": [{"k": 0}]}
    assert first == {"c": {"n": {"a": 1}}, "l": [{"k": 1}]} and later["c"] == {"n": {"a": 0, "b": 2}}


# --- where the split is ----------------------------------------------------------------

def _model(key: str, nodes: str, *flows, conditions: dict | None = None) -> str:
    """A process of `nodes` and flows given as (source, target) pairs, a flow's id F_source_target."""
    def flow(source, target):
        condition = (conditions or {}).get((source, target))
        body = (f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>'
                if condition else "")
        return f'<bpmn:sequenceFlow id="F_{source}_{target}" sourceRef="{source}" targetRef="{target}">{body}</bpmn:sequenceFlow>'
    return (HEAD + f'<bpmn:process id="{key}" isExecutable="true">{nodes}'
            + "".join(flow(*pair) for pair in flows) + "</bpmn:process></bpmn:definitions>")


def _script(bpmn_id: str, script: str) -> str:
    return f'<bpmn:scriptTask id="{bpmn_id}"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>'


def _start(xml: str, key: str, **data):
    spec = parse_resources([(f"{key}.bpmn", xml.encode())]).get_spec(key)
    workflow = ApprovalWorkflow(spec, {}, script_engine=PythonScriptEngine())
    workflow.task_tree.data.update(data)
    workflow.do_engine_steps()
    return workflow, spec


def _complete(workflow, name: str, **data):
    [task] = [t for t in workflow.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.bpmn_id == name]
    task.data.update(data)
    task.run()
    workflow.do_engine_steps()
    workflow.refresh_waiting_tasks()
    workflow.do_engine_steps()


def _ready(workflow) -> list[str]:
    return sorted(t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY, manual=True))


NESTED = _model(
    "nested", '<bpmn:startEvent id="S" /><bpmn:parallelGateway id="Outer" /><bpmn:userTask id="A" />'
    '<bpmn:parallelGateway id="Inner" /><bpmn:userTask id="B" /><bpmn:userTask id="C" />'
    '<bpmn:parallelGateway id="InnerJoin" /><bpmn:parallelGateway id="OuterJoin" /><bpmn:userTask id="After" />'
    '<bpmn:endEvent id="E" />',
    ("S", "Outer"), ("Outer", "A"), ("Outer", "Inner"), ("Inner", "B"), ("Inner", "C"), ("B", "InnerJoin"),
    ("C", "InnerJoin"), ("A", "OuterJoin"), ("InnerJoin", "OuterJoin"), ("OuterJoin", "After"), ("After", "E"))


@pytest.mark.parametrize("order", [("B", "A", "C"), ("A", "C", "B"), ("C", "B", "A")])
def test_nested_splits_each_join_against_its_own_split(order):
    workflow, _ = _start(NESTED, "nested", x=0, y=0, z=0)
    changes = {"A": {"x": 1}, "B": {"y": 1}, "C": {}}
    for name in order:
        _complete(workflow, name, **changes[name])
    assert _ready(workflow) == ["After"]
    [after] = workflow.get_tasks(state=TaskState.READY, manual=True)
    assert after.data == {"x": 1, "y": 1, "z": 0}


LOOP = _model(
    "rounds", '<bpmn:startEvent id="S" />' + _script("Round", "n = n + 1\nx = 0") + '<bpmn:parallelGateway id="Split" />'
    '<bpmn:userTask id="A" /><bpmn:userTask id="B" /><bpmn:parallelGateway id="Join" />'
    '<bpmn:exclusiveGateway id="Again" default="F_Again_After" /><bpmn:userTask id="After" /><bpmn:endEvent id="E" />',
    ("S", "Round"), ("Round", "Split"), ("Split", "A"), ("Split", "B"), ("A", "Join"), ("B", "Join"),
    ("Join", "Again"), ("Again", "Round"), ("Again", "After"), ("After", "E"), conditions={("Again", "Round"): "n &lt; 2"})


def test_a_later_round_of_a_loop_is_not_merged_with_the_branches_of_an_earlier_one():
    workflow, _ = _start(LOOP, "rounds", n=0, x=0)
    _complete(workflow, "A", x=1)                   # round 1: A sets x, which the next round sets back to 0
    _complete(workflow, "B")
    assert _ready(workflow) == ["A", "B"]
    _complete(workflow, "A")                        # round 2: nobody changes x
    _complete(workflow, "B")
    [after] = workflow.get_tasks(state=TaskState.READY, manual=True)
    assert (after.task_spec.bpmn_id, after.data) == ("After", {"n": 2, "x": 0})


INCLUSIVE = _model(
    "inclusive", '<bpmn:startEvent id="S" /><bpmn:inclusiveGateway id="Split" /><bpmn:userTask id="A" />'
    '<bpmn:userTask id="B" /><bpmn:inclusiveGateway id="Join" /><bpmn:userTask id="After" /><bpmn:endEvent id="E" />',
    ("S", "Split"), ("Split", "A"), ("Split", "B"), ("A", "Join"), ("B", "Join"), ("Join", "After"), ("After", "E"),
    conditions={("Split", "A"): "True", ("Split", "B"): "True"})


@pytest.mark.parametrize("order", [("A", "B"), ("B", "A")])
def test_an_inclusive_join_merges_three_way(order):
    workflow, _ = _start(INCLUSIVE, "inclusive", objection=None, counts={"a": 0, "b": 0})
    changes = {"A": {"objection": "债权人异议", "counts": {"a": 1, "b": 0}}, "B": {"counts": {"a": 0, "b": 1}}}
    for name in order:
        _complete(workflow, name, **changes[name])
    [after] = workflow.get_tasks(state=TaskState.READY, manual=True)
    assert after.data == {"objection": "债权人异议", "counts": {"a": 1, "b": 1}}


APART = _model(
    "apart", '<bpmn:startEvent id="S" /><bpmn:parallelGateway id="Split" /><bpmn:userTask id="A" />'
    '<bpmn:userTask id="B" /><bpmn:endEvent id="EndA" /><bpmn:endEvent id="EndB" />',
    ("S", "Split"), ("Split", "A"), ("Split", "B"), ("A", "EndA"), ("B", "EndB"))


@pytest.mark.parametrize("order", [("A", "B"), ("B", "A")])
def test_paths_that_end_apart_keep_what_each_changed_in_the_cases_result(order):
    workflow, _ = _start(APART, "apart", permit=None, archived=False)
    changes = {"A": {"permit": "许可证 2025-001"}, "B": {"archived": True}}
    for name in order:
        _complete(workflow, name, **changes[name])
    assert workflow.completed
    assert workflow.data == {"permit": "许可证 2025-001", "archived": True}


BOUNDARY = _model(
    "boundary", '<bpmn:signal id="Sig" name="remind" /><bpmn:startEvent id="S" /><bpmn:userTask id="Review" />'
    '<bpmn:boundaryEvent id="Remind" attachedToRef="Review" cancelActivity="false">'
    '<bpmn:signalEventDefinition signalRef="Sig" /></bpmn:boundaryEvent><bpmn:userTask id="Notice" />'
    '<bpmn:endEvent id="E" /><bpmn:endEvent id="ENotice" />',
    ("S", "Review"), ("Review", "E"), ("Remind", "Notice"), ("Notice", "ENotice"))


@pytest.mark.parametrize("review_first", [True, False])
def test_a_boundary_events_path_does_not_bring_back_the_values_from_before_the_task(review_first):
    workflow, _ = _start(BOUNDARY, "boundary", decision=None, reminded=0)
    workflow.catch(BpmnEvent(SignalEventDefinition("remind")))
    workflow.do_engine_steps()
    steps = [lambda: _complete(workflow, "Review", decision="approve"), lambda: _complete(workflow, "Notice", reminded=1)]
    for step in steps if review_first else reversed(steps):
        step()
    assert workflow.completed
    assert workflow.data == {"decision": "approve", "reminded": 1}


def test_a_restored_case_joins_as_the_live_one():
    workflow, spec = _start(NESTED, "nested", x=0, y=0, z=0)
    _complete(workflow, "A", x=1)
    _complete(workflow, "B", y=1)
    workflow = load_state(dump_state(workflow), spec, {}, PythonScriptEngine())
    _complete(workflow, "C")
    [after] = workflow.get_tasks(state=TaskState.READY, manual=True)
    assert after.data == {"x": 1, "y": 1, "z": 0}
