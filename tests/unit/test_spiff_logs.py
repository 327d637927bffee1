"""The engine's workflows build SpiffWorkflow's log extras only when its log takes INFO
(engine.workflows.quiet_spiffworkflow_logs); a workflow that is not the engine's, and a
log that takes INFO, get SpiffWorkflow's own."""
from __future__ import annotations

import logging

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow

from engine.script_engine import ApprovalScriptEngine
from engine.workflows import ApprovalWorkflow, parse_resources, quiet_spiffworkflow_logs, run_until_waiting
from tests.api.test_deployment import minimal


@pytest.fixture
def spec():
    quiet_spiffworkflow_logs()
    return parse_resources([("simple.bpmn", minimal().encode())]).get_spec("simple")


@pytest.fixture
def spiff_level():
    """Sets the level of the `spiff` loggers for one test, and puts it back."""
    spiff = logging.getLogger("spiff")
    before = spiff.level

    def set_level(level):
        spiff.setLevel(level)
    yield set_level
    spiff.setLevel(before)


def _started(cls, spec):
    workflow = cls(spec, {}, script_engine=ApprovalScriptEngine())
    run_until_waiting(workflow)
    return workflow, workflow.get_next_task()


def test_the_engines_workflows_skip_the_extras_the_log_drops(spec, spiff_level):
    spiff_level(logging.WARNING)
    workflow, task = _started(ApprovalWorkflow, spec)
    assert task.collect_log_extras() == {} and task.collect_log_extras({"elapsed": 1}) == {"elapsed": 1}
    assert workflow.collect_log_extras() == {}


def test_a_workflow_that_is_not_the_engines_keeps_spiffworkflows_extras(spec, spiff_level):
    spiff_level(logging.WARNING)
    workflow, task = _started(BpmnWorkflow, spec)
    assert task.collect_log_extras()["task_spec"] == task.task_spec.name
    assert workflow.collect_log_extras()["workflow_spec"] == "simple"


def test_with_the_log_at_info_the_records_carry_spiffworkflows_extras(spec, spiff_level, caplog):
    spiff_level(logging.INFO)
    with caplog.at_level(logging.INFO, logger="spiff"):
        workflow, task = _started(ApprovalWorkflow, spec)
    changes = [r for r in caplog.records if r.name == "spiff.task" and r.getMessage().startswith("State changed")]
    assert changes and all(r.task_spec and r.workflow_spec == "simple" for r in changes)
    [started] = [r for r in caplog.records if r.name == "spiff.workflow" and r.getMessage() == "Initialized workflow"]
    assert started.workflow_spec == "simple"
    assert task.collect_log_extras()["task_id"] == task.id
