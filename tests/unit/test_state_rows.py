"""The tasks of an instance's state are rows of their own (instance_task).

A command writes the rows of the tasks it changed, not the whole state; what is stored
restores the case exactly, in the tasks' order, with subprocesses and with the tasks
SpiffWorkflow dropped; a case stored whole (before instance_task) moves into rows on
its next command.  Storage tests: SQLite and PostgreSQL."""
from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import event, select, update

from engine import identity, instances, runtime, tasks, workflows
from engine.config import Settings
from engine.context import Engine
from engine.deployments import Upload, deploy
from engine.errors import NotFound
from engine.models import ActivityInstance, InstanceTask, ProcessInstance, VariableInstance
from engine.workflows import dump_state
from tests.unit.test_state_json import HEAD, LOOP

# a subprocess (its tasks live in a workflow of their own), then a decision that drops
# the tasks SpiffWorkflow had predicted on the branch not taken
BRANCHES = (HEAD + '<bpmn:process id="rows_branches" isExecutable="true"><bpmn:startEvent id="S" />'
            '<bpmn:subProcess id="Sub"><bpmn:startEvent id="SubS" /><bpmn:userTask id="A" />'
            '<bpmn:endEvent id="SubE" /><bpmn:sequenceFlow id="SF1" sourceRef="SubS" targetRef="A" />'
            '<bpmn:sequenceFlow id="SF2" sourceRef="A" targetRef="SubE" /></bpmn:subProcess>'
            '<bpmn:exclusiveGateway id="Decide" default="F_c" /><bpmn:userTask id="B" /><bpmn:userTask id="C" />'
            '<bpmn:endEvent id="E" />'
            '<bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Sub" />'
            '<bpmn:sequenceFlow id="F2" sourceRef="Sub" targetRef="Decide" />'
            '<bpmn:sequenceFlow id="F_b" sourceRef="Decide" targetRef="B">'
            '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">x &gt; 0</bpmn:conditionExpression>'
            '</bpmn:sequenceFlow><bpmn:sequenceFlow id="F_c" sourceRef="Decide" targetRef="C" />'
            '<bpmn:sequenceFlow id="F3" sourceRef="B" targetRef="E" />'
            '<bpmn:sequenceFlow id="F4" sourceRef="C" targetRef="E" /></bpmn:process></bpmn:definitions>')


@pytest.fixture(autouse=True)
def rows_from(monkeypatch):
    """Every case of these tests keeps its tasks in rows (the default moves them at 100)
    and seals its finished tasks (the default at 50), as a big case does."""
    monkeypatch.setattr(workflows, "ROWS_FROM", 0)
    monkeypatch.setattr(workflows, "SEAL_FROM", 0)


@pytest.fixture
def written(engine):
    """instance_task rows written, by kind ("INSERT", "UPDATE", "DELETE"), since reset."""
    counts = {}

    def count(conn, cursor, statement, parameters, context, executemany):
        if "instance_task" in statement:
            kind = statement.split()[0].upper()
            rows = len(parameters) if executemany else 1
            counts[kind] = counts.get(kind, 0) + rows
    event.listen(engine.db, "before_cursor_execute", count)
    yield counts
    event.remove(engine.db, "before_cursor_execute", count)


def _start(engine, xml: str, key: str, variables: dict) -> str:
    with engine.uow() as uow:
        deploy(uow, [Upload(f"{key}.bpmn", xml.encode())], identity.SYSTEM)
        uow.commit()
    with engine.uow() as uow:
        record, _ = instances.start(uow, identity.SYSTEM, variables, None, key=key)
    return record.id


def _complete(engine, instance_id: str, name: str | None = None, variables: dict | None = None) -> None:
    with engine.uow(write=False) as uow:
        views = tasks.query(uow.session, identity.SYSTEM, tasks.TaskQuery(process_instance_id=instance_id))
        [task_id] = [v.row.id for v in views if name is None or v.row.task_definition_key == name]
    with engine.uow() as uow:
        tasks.complete(uow, identity.SYSTEM, task_id, variables or {})


def _stored(engine, instance_id: str) -> tuple[dict, list]:
    with engine.uow(write=False) as uow:
        document = uow.session.execute(select(ProcessInstance.state_json).where(
            ProcessInstance.id == instance_id)).scalar_one()
        rows = uow.session.execute(select(InstanceTask.task_id, InstanceTask.workflow_id, InstanceTask.seq)
                                   .where(InstanceTask.instance_id == instance_id)).all()
    return json.loads(document), rows


def _peek(engine, instance_id: str):
    """The case restored from what is stored (the cached live workflow set aside meanwhile)."""
    with engine.uow(write=False) as uow:
        record = runtime.load_record(uow.session, instance_id)
        live = engine.workflows.borrow(instance_id, record.version)
        try:
            with runtime.peek_workflow(uow, instance_id) as workflow:
                return workflow
        finally:
            if live is not None:
                engine.workflows.put(instance_id, record.version, live)


def test_a_read_borrows_the_live_case_and_a_command_meanwhile_restores_its_own(engine):
    instance_id = _start(engine, LOOP, "loop", {"rounds": 3})
    _complete(engine, instance_id, variables={"opinion": "同意"})
    with engine.uow(write=False) as uow:
        record = runtime.load_record(uow.session, instance_id)
        cached = instances.variables(uow, identity.SYSTEM, instance_id)          # from the live case
        with runtime.peek_workflow(uow, instance_id):
            assert engine.workflows.borrow(instance_id, record.version) is None    # lent out
            _complete(engine, instance_id)               # restores its own and commits the next version
    assert engine.workflows.borrow(instance_id, record.version) is None           # not given back over it
    assert engine.workflows.borrow(instance_id, record.version + 1) is not None
    with engine.uow(write=False) as uow:                 # nothing cached: restored from the rows
        restored = instances.variables(uow, identity.SYSTEM, instance_id)
    assert cached["opinion"] == restored["opinion"] == "同意"


def test_a_command_writes_the_rows_it_changed_not_the_case(engine, written):
    instance_id = _start(engine, LOOP, "loop", {"rounds": 100})
    for _ in range(30):
        _complete(engine, instance_id)
    document, rows = _stored(engine, instance_id)
    assert len(rows) > 30 and document["tasks"] == {}
    written.clear()
    _complete(engine, instance_id)
    # the finished round, the next round and the multi-instance task that holds them
    assert 1 <= written.get("INSERT", 0) <= 2 and written.get("UPDATE", 0) <= 3, written
    assert len(_stored(engine, instance_id)[1]) == len(rows) + written["INSERT"]


def test_the_rows_restore_the_case_in_order_with_subprocesses_and_dropped_tasks(engine, written):
    instance_id = _start(engine, BRANCHES, "rows_branches", {})
    _, rows = _stored(engine, instance_id)
    assert any(workflow_id is not None for _, workflow_id, _ in rows)       # the subprocess's own tasks
    written.clear()
    _complete(engine, instance_id, "A", {"x": 1})
    assert written.get("DELETE", 0) > 0                                       # the tasks on C's branch
    live = _peek(engine, instance_id)
    assert [t.task_spec.bpmn_id for t in live.get_tasks(state=16)] == ["B"]
    with engine.uow(write=False) as uow:
        record = runtime.load_record(uow.session, instance_id)
    cached = engine.workflows.take(instance_id, record.version)
    assert cached is not None
    assert dump_state(live) == dump_state(cached)                              # byte for byte, same order
    ids = [str(i) for i in cached.tasks] + [str(i) for s in cached.subprocesses.values() for i in s.tasks]
    _, rows = _stored(engine, instance_id)
    assert sorted(str(task_id) for task_id, _, _ in rows) == sorted(ids)
    _complete(engine, instance_id, "B")                                       # from the rows (cache taken)
    with engine.uow(write=False) as uow:
        assert instances.get(uow.session, identity.SYSTEM, instance_id, running_only=False).state == "COMPLETED"


def test_an_ended_case_keeps_its_history_not_its_runtime_state(engine, written):
    done = _start(engine, BRANCHES, "rows_branches", {"x": 1})
    _complete(engine, done, "A")
    assert _stored(engine, done)[1]                       # in rows while it runs
    _complete(engine, done, "B")
    deleted = _start(engine, BRANCHES, "rows_branches", {"x": 1})
    with engine.uow() as uow:
        instances.delete(uow, identity.SYSTEM, deleted, "withdrawn")
    running = _start(engine, BRANCHES, "rows_branches", {"x": 1})
    with engine.uow(write=False) as uow:
        kept = dict(uow.session.execute(select(ProcessInstance.id, ProcessInstance.state_json)).all())
        rows = {i for (i,) in uow.session.execute(select(InstanceTask.instance_id))}
        ended = {i: instances.get(uow.session, identity.SYSTEM, i, running_only=False).state for i in (done, deleted)}
        with pytest.raises(NotFound):
            instances.variables(uow, identity.SYSTEM, done)
    assert ended == {done: "COMPLETED", deleted: "EXTERNALLY_TERMINATED"}
    assert kept[done] is None and kept[deleted] is None and rows == {running}
    assert json.loads(kept[running])["spec"]                    # the running case keeps its own
    with engine.uow(write=False) as uow:                          # and the ended ones their history
        history = {i: (uow.session.execute(select(VariableInstance.name, VariableInstance.value)
                                           .where(VariableInstance.instance_id == i)).all(),
                       uow.session.execute(select(ActivityInstance.activity_id).where(
                           ActivityInstance.instance_id == i, ActivityInstance.end_time.is_not(None))).scalars().all())
                   for i in (done, deleted)}
    assert history[done][0] == [("x", 1)] and history[deleted][0] == [("x", 1)]
    assert {"A", "Decide", "B", "E"} <= set(history[done][1]) and "A" in history[deleted][1]
    _complete(engine, running, "A")
    # a reader that found the case running just before it ended (PostgreSQL reads each
    # statement's own snapshot) is told so, not a failure to restore
    with engine.uow(write=False) as uow, pytest.raises(NotFound, match="has ended"):
        with runtime.peek_workflow(uow, done):
            pass


def test_a_case_stored_whole_moves_into_rows_on_its_next_command(engine, written):
    instance_id = _start(engine, LOOP, "loop", {"rounds": 3})
    _complete(engine, instance_id)
    whole = dump_state(_peek(engine, instance_id))
    with engine.uow() as uow:                        # as a case stored before instance_task
        uow.session.execute(InstanceTask.__table__.delete().where(InstanceTask.instance_id == instance_id))
        uow.session.execute(update(ProcessInstance).where(ProcessInstance.id == instance_id)
                            .values(state_json=whole, version=ProcessInstance.version + 1))
        uow.commit()
    assert dump_state(_peek(engine, instance_id)) == whole
    written.clear()
    _complete(engine, instance_id)
    document, rows = _stored(engine, instance_id)
    assert document["tasks"] == {}
    assert written["INSERT"] == len(rows) == len(_peek(engine, instance_id).tasks)     # every task moved
    _complete(engine, instance_id)
    with engine.uow(write=False) as uow:
        assert instances.get(uow.session, identity.SYSTEM, instance_id, running_only=False).state == "COMPLETED"


def test_a_case_moves_into_rows_when_it_grows_past_rows_from(engine, written, monkeypatch):
    monkeypatch.setattr(workflows, "ROWS_FROM", 12)
    instance_id = _start(engine, LOOP, "loop", {"rounds": 40})
    document, rows = _stored(engine, instance_id)
    assert rows == [] and len(document["tasks"]) < 12                 # small: whole, as before
    while not rows:
        written.clear()
        _complete(engine, instance_id)
        document, rows = _stored(engine, instance_id)
    assert written["INSERT"] == len(rows) >= 12 and document["tasks"] == {}
    _complete(engine, instance_id)
    assert written.get("DELETE", 0) == 0 and len(_stored(engine, instance_id)[1]) > len(rows)


def test_only_a_case_in_rows_reads_rows_when_restored(engine, written, monkeypatch):
    small = _start(engine, LOOP, "loop", {"rounds": 3})            # ROWS_FROM 0: in rows
    monkeypatch.setattr(workflows, "ROWS_FROM", 100)
    whole = _start(engine, LOOP, "loop", {"rounds": 3})
    assert _stored(engine, whole)[1] == [] and len(_stored(engine, small)[1]) > 0
    written.clear()
    _peek(engine, whole)
    assert written.get("SELECT", 0) == 0                                 # the document has its tasks
    _peek(engine, small)
    assert written.get("SELECT", 0) == 1


def test_without_the_workflow_cache_every_command_restores_from_the_rows(settings):
    engine = Engine(dataclasses.replace(settings, workflow_cache_size=0))
    try:
        instance_id = _start(engine, BRANCHES, "rows_branches", {})
        _complete(engine, instance_id, "A", {"x": 0})
        _complete(engine, instance_id, "C")
        with engine.uow(write=False) as uow:
            row = instances.get(uow.session, identity.SYSTEM, instance_id, running_only=False)
            assert row.state == "COMPLETED" and row.end_activity_id == "E"
    finally:
        engine.close()


def test_the_workflow_cache_keeps_as_many_cases_as_the_environment_says(settings):
    """APPROVALS_WORKFLOW_CACHE (README, `make run`): the running cases a process keeps live."""
    configured = Settings.from_env({"DATABASE_URL": settings.database_url, "APPROVALS_WORKFLOW_CACHE": "2"})
    engine = Engine(dataclasses.replace(configured, timers_enabled=False))
    try:
        cases = [_start(engine, BRANCHES, "rows_branches", {}) for _ in range(3)]
        kept = [case for case in cases if engine.workflows.take(case, 1) is not None]
        assert kept == cases[1:]                                 # the oldest went
    finally:
        engine.close()
    assert Settings.from_env({}).workflow_cache_size == 256


def test_a_reader_racing_the_end_of_a_case_reads_it_whole_or_is_told_it_ended(settings, monkeypatch):
    """The case ends between a reader's read of its document and of its task rows: on
    SQLite the reader keeps its snapshot and reads the case as it was; on PostgreSQL the
    version moved, the reader starts over and finds it ended (a 404, not a failure)."""
    reader = Engine(dataclasses.replace(settings, workflow_cache_size=0))
    writer = Engine(settings)
    try:
        case = _start(writer, BRANCHES, "rows_branches", {"x": 1})
        _complete(writer, case, "A")
        rows, ended = runtime._TASK_ROWS, []

        class EndsTheCaseFirst:
            def execute(self, session, params):
                if not ended:                    # once (the suite's state check reads rows too)
                    ended.append(case)
                    _complete(writer, case, "B")
                return rows.execute(session, params)
        monkeypatch.setattr(runtime, "_TASK_ROWS", EndsTheCaseFirst())
        with reader.uow(write=False) as uow:
            if reader.db.dialect.name == "sqlite":
                assert instances.variables(uow, identity.SYSTEM, case) == {"x": 1}
            else:
                with pytest.raises(NotFound, match="has ended"):
                    instances.variables(uow, identity.SYSTEM, case)
        assert ended == [case]
    finally:
        reader.close()
        writer.close()


def test_a_whole_dump_in_between_does_not_hide_a_change_from_the_rows():
    """dump_state (the whole text) marks nothing as stored: a task changed before it is
    still written by the next dump_stored."""
    from tests.unit.test_state_json import _complete_one, _loop
    workflow, _ = _loop()
    done = _complete_one(workflow, opinion="first")
    _complete_one(workflow, opinion="second")
    rows = {row["task_id"]: row["body"] for row in workflows.dump_stored(workflow).inserts}
    done.data["opinion"] = "edited afterwards"
    dump_state(workflow)
    out = workflows.dump_stored(workflow)
    assert [task_id for task_id, _ in out.updates] == [str(done.id)]
    rows.update(out.updates)
    assert '"edited afterwards"' in rows[str(done.id)]
    assert not workflows.dump_stored(workflow).updates          # stored now: nothing more to write
