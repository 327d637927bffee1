"""Engine unit cases: the Camunda dialect on SpiffWorkflow, persistence and races."""
from __future__ import annotations

import pytest
from SpiffWorkflow.util.task import TaskState

from engine import identity, instances, runtime, tasks
from engine.context import Engine
from engine.deployments import Upload, deploy
from engine.errors import Conflict, ModelError
from engine.parser import (has_unterminated_expression, is_expression, is_iso_literal, is_template, text_parts,
                           timer_expression, unwrap_placeholder)
from engine.workflows import dump_state, load_state, parse_resources, run_until_waiting
from tests.api.test_deployment import minimal
from tests.conftest import FIXTURES, ROOT

TIMER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="t">
  <bpmn:process id="timer" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="Wait"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>PT2S</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="E"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Wait" />
    <bpmn:sequenceFlow id="F2" sourceRef="Wait" targetRef="E" />
  </bpmn:process>
</bpmn:definitions>"""


@pytest.mark.parametrize("text,literal", [("PT2S", True), ("P3D", True), ("R3/PT10M", True),
                                          ("2025-10-01T09:00:00+08:00", True), ("2025-10-01", True),
                                          ("workdays(3)", False), ('"PT2S"', False), ("deadline", False)])
def test_iso_timer_literals_are_recognised(text, literal):
    assert is_iso_literal(text) is literal


def test_timer_literals_without_quotes_become_python_strings():
    assert timer_expression("PT2S") == "'PT2S'"
    assert timer_expression('"PT2S"') == '"PT2S"'
    assert timer_expression("${legal_deadline('review')}") == "legal_deadline('review')"
    assert unwrap_placeholder("${a and b}") == "a and b"


@pytest.mark.parametrize("text, parts, lone, template, unclosed", [
    ("${a}", ["a"], True, False, False),
    (" #{a > 1} ", [" ", "a > 1", " "], True, False, False),
    ("${a}-${b}", ["a", "-", "b"], False, True, False),          # Camunda's composite expression
    ("${a}${b}", ["a", "b"], False, True, False),
    ("dept_${region}", ["dept_", "region"], False, True, False),
    ("${ {'k': 1}[key] }", [" {'k': 1}[key] "], True, False, False),   # braces inside an expression
    ("${x == '}'}-${y}", ["x == '}'", "-", "y"], False, True, False),  # and a brace in a string
    ("plain", ["plain"], False, False, False),
    ("${dept", ["${dept"], False, False, True),
    ("${a}-${b", ["a", "-${b"], False, True, True),
])
def test_text_is_cut_into_literals_and_expressions_as_camunda_reads_it(text, parts, lone, template, unclosed):
    assert text_parts(text) == (parts, unclosed)
    assert (is_expression(text), is_template(text), has_unterminated_expression(text)) == (lone, template, unclosed)


def test_only_a_lone_expression_is_unwrapped():
    assert unwrap_placeholder(" ${ a + 1 } ") == "a + 1"
    assert unwrap_placeholder("${a}-${b}") == "${a}-${b}"        # was `a}-${b`, a syntax error


def test_an_unquoted_duration_timer_parses_and_waits():
    parser = parse_resources([("timer.bpmn", TIMER.encode())])
    spec = parser.get_spec("timer")
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from engine.script_engine import ApprovalScriptEngine
    workflow = BpmnWorkflow(spec, {}, script_engine=ApprovalScriptEngine())
    run_until_waiting(workflow)
    [waiting] = workflow.get_tasks(state=TaskState.WAITING)
    assert waiting.task_spec.bpmn_id == "Wait"
    assert waiting.internal_data["event_value"]          # the due time was computed from 'PT2S'


def test_plain_and_manual_tasks_pass_straight_through_as_in_camunda():
    xml = minimal("pass").replace('<bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw">',
                                  '<bpmn:manualTask id="T">').replace("</bpmn:userTask>", "</bpmn:manualTask>")
    parser = parse_resources([("p.bpmn", xml.encode())])
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from engine.script_engine import ApprovalScriptEngine
    workflow = BpmnWorkflow(parser.get_spec("pass"), {}, script_engine=ApprovalScriptEngine())
    workflow.task_tree.data["approved"] = True
    run_until_waiting(workflow)
    assert workflow.completed


def test_state_round_trips_with_the_spec_by_reference():
    parser = parse_resources([("q.bpmn", (ROOT / "examples/quickstart/parallel_review.bpmn").read_bytes())])
    spec, subs = parser.get_spec("quickstart_review"), parser.get_subprocess_specs("quickstart_review")
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from engine.script_engine import ApprovalScriptEngine
    workflow = BpmnWorkflow(spec, subs, script_engine=ApprovalScriptEngine())
    run_until_waiting(workflow)
    state = dump_state(workflow)
    assert '"spec": "quickstart_review"' in state and "task_specs" not in state
    restored = load_state(state, spec, subs, ApprovalScriptEngine())
    assert sorted(t.task_spec.bpmn_id for t in restored.get_tasks(state=TaskState.READY)) == \
        ["Task_review_fgw", "Task_review_zjj", "Task_review_zrzy"]


def _deploy_simple(engine):
    with engine.uow() as uow:
        deploy(uow, [Upload("simple.bpmn", minimal().encode())], identity.SYSTEM)
        uow.commit()
    with engine.uow() as uow:
        record, _ = instances.start(uow, identity.SYSTEM, {}, None, key="simple")
    return record


def test_a_case_survives_a_restart_of_the_engine(engine, settings):
    record = _deploy_simple(engine)
    engine.close()
    fresh = Engine(settings)         # new caches, new connections: only the database remains
    with fresh.uow(write=False) as uow:
        [view] = tasks.query(uow.session, identity.SYSTEM, tasks.TaskQuery(process_instance_id=record.id))
        task_id = view.row.id
    with fresh.uow() as uow:
        tasks.complete(uow, identity.SYSTEM, task_id, {"approved": True})
    with fresh.uow(write=False) as uow:
        assert instances.get(uow.session, identity.SYSTEM, record.id, running_only=False).state == "COMPLETED"
    fresh.close()


def test_two_commands_on_one_instance_the_second_to_save_gets_a_conflict(engine):
    """Commands lock the instance row first, so concurrent ones queue; the version check is
    the second line of defence, for a command that read the instance without the lock."""
    record = _deploy_simple(engine)
    # a read-started UoW can interleave on SQLite; PostgreSQL's reading units are READ ONLY
    first, second = engine.uow(), engine.uow(write=engine.db.dialect.name == "postgresql")
    with first, second:
        a = runtime.open_instance(first, record.id, identity.SYSTEM)
        b = runtime.open_instance(second, record.id, identity.SYSTEM, lock=None)
        runtime.save(a)
        first.commit()
        second.session.commit()                    # end b's read snapshot so it sees a's write
        with pytest.raises(Conflict):
            runtime.save(b)


def test_a_command_waits_for_the_instance_lock_instead_of_failing(engine, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serializes writers with BEGIN IMMEDIATE; row locks are PostgreSQL's")
    import threading
    record = _deploy_simple(engine)
    holder = engine.uow()
    with holder:
        runtime.open_instance(holder, record.id, identity.SYSTEM)          # holds the row lock
        done = threading.Event()

        def other():
            with engine.uow() as uow:
                runtime.open_instance(uow, record.id, identity.SYSTEM)
                done.set()
        thread = threading.Thread(target=other)
        thread.start()
        assert not done.wait(0.5)                   # queued behind the holder
        with engine.uow() as uow, pytest.raises(Conflict):
            runtime.open_instance(uow, record.id, identity.SYSTEM, lock="skip")
    thread.join(5)
    assert done.is_set()                            # ... and ran once the holder ended


def test_a_failed_command_leaves_no_trace(engine):
    record = _deploy_simple(engine)
    with engine.uow(write=False) as uow:
        [view] = tasks.query(uow.session, identity.SYSTEM, tasks.TaskQuery(process_instance_id=record.id))
        task_id = view.row.id
        before = runtime.load_record(uow.session, record.id).version
    with engine.uow() as uow, pytest.raises(ModelError):
        # the gateway condition reads `approved`; without it the command fails after the task ran
        tasks.complete(uow, identity.SYSTEM, task_id, {})
    with engine.uow(write=False) as uow:
        assert runtime.load_record(uow.session, record.id).version == before
        assert [v.row.id for v in tasks.query(uow.session, identity.SYSTEM,
                                              tasks.TaskQuery(process_instance_id=record.id))] == [task_id]
    with engine.uow() as uow:                      # the cache did not keep the half-run workflow
        tasks.complete(uow, identity.SYSTEM, task_id, {"approved": False})


def test_call_activity_fixture_pair_parses_across_files():
    parser = parse_resources([("c.bpmn", (FIXTURES / "call_child.bpmn").read_bytes()),
                              ("p.bpmn", (FIXTURES / "call_parent.bpmn").read_bytes())])
    assert "department_check" in parser.get_subprocess_specs("stage_parent")
