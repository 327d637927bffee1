"""The repair of multi-instances that did not hear their instances (engine/multi_instances.py)
leaves a healthy case as it is stored: restoring one for a command merges nothing, records
nothing, and its dump is the stored state, with no task row to write.  Storage tests: SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from engine import identity, instances, multi_instances, runtime, tasks, workflows
from engine.deployments import Upload, deploy
from engine.workflows import dump_stored
from tests.conftest import FIXTURES

MODEL = (FIXTURES / "mi_local_element.bpmn").read_text()


def _start(engine, model: str, departments: list) -> str:
    with engine.uow() as uow:
        deploy(uow, [Upload("mi_local_element.bpmn", model.encode())], identity.SYSTEM)
        uow.commit()
    with engine.uow() as uow:
        record, _ = instances.start(uow, identity.SYSTEM, {"depts": departments}, None, key="mi_local_element")
    return record.id


def _complete_review(engine, instance_id: str) -> None:
    with engine.uow(write=False) as uow:
        views = tasks.query(uow.session, identity.SYSTEM, tasks.TaskQuery(process_instance_id=instance_id))
        task_id = next(v.row.id for v in views if v.row.task_definition_key == "Review")
    with engine.uow() as uow:
        tasks.complete(uow, identity.SYSTEM, task_id, {"opinion": "同意"})


@pytest.mark.parametrize("kept", ["document", "rows"])
@pytest.mark.parametrize("sequential", [False, True])
def test_a_healthy_multi_instance_restored_for_a_command_is_left_as_stored(engine, monkeypatch, kept, sequential):
    if kept == "rows":                          # tasks in rows, as a big case keeps them
        monkeypatch.setattr(workflows, "ROWS_FROM", 0)
    model = MODEL.replace("<bpmn:multiInstanceLoopCharacteristics ",
                          '<bpmn:multiInstanceLoopCharacteristics isSequential="true" ') if sequential else MODEL
    instance_id = _start(engine, model, ["fgw", "zrzy", "zjj"])
    _complete_review(engine, instance_id)                   # heard: merged in its own command
    monkeypatch.setattr(engine.workflows, "size", 0)        # every command restores the case
    engine.workflows.drop(instance_id)
    with engine.uow() as uow:
        session, ctx = uow.session, uow.ctx
        record = runtime.load_record(session, instance_id)
        definition = ctx.definitions.definition(session, record.definition_id)
        spec, subprocess_specs = ctx.definitions.spec_for(session, definition, record.called_definitions)
        workflow = runtime._restore(session, instance_id, spec, subprocess_specs, ctx.script_engine, keep_texts=True)
        assert multi_instances.unheard(workflow) == []
        stored = dump_stored(workflow)
        assert (stored.inserts, stored.updates, stored.deletes) == ([], [], [])
        assert stored.document == runtime._STATE_AND_VERSION.execute(session, {"instance_id": instance_id}).one()[0]
        command = runtime.open_instance(uow, instance_id, identity.SYSTEM)
        assert command.events == []


def test_the_start_up_pass_leaves_running_multi_instances_alone(engine):
    instance_id = _start(engine, MODEL, ["fgw", "zrzy"])
    _complete_review(engine, instance_id)
    with engine.uow(write=False) as uow:
        version = runtime.load_record(uow.session, instance_id).version
    assert multi_instances.resume_stuck(engine) == 0
    with engine.uow(write=False) as uow:
        assert runtime.load_record(uow.session, instance_id).version == version
