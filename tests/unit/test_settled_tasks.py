"""Settled tasks: the scans and the rows' dump pass them by, and nothing is lost.

An ApprovalWorkflow keeps its tasks in a _TaskMap that knows which ones are settled
(sealed, their text in their row).  The READY/WAITING scans, the projections' snapshot
and dump_stored look at the others only; a change to a settled task unsettles it first.
These tests change settled tasks in every way there is and check what the rows spell,
what the scans find and what the activity projection writes.  Engine-level tests run on
SQLite and PostgreSQL."""
from __future__ import annotations

import copy
import json
import math
import random

import pytest
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from engine import identity, instances, projections, runtime, tasks, workflows
from engine.models import ActivityInstance
from engine.workflows import SERIALIZER, ApprovalWorkflow, dump_stored, open_tasks, parse_resources, put_rows
from tests.unit.test_state_json import CHAIN, LOOP, SEALED_CHANGES
from tests.unit.test_state_rows import _complete, _start


@pytest.fixture(autouse=True)
def small_cases_too(monkeypatch):
    """Cases of a few tasks keep rows and seal, as those of 100 and 50 tasks do."""
    monkeypatch.setattr(workflows, "ROWS_FROM", 0)
    monkeypatch.setattr(workflows, "SEAL_FROM", 0)


class Rows:
    """instance_task as dump_stored's inserts, updates and deletes leave it."""

    def __init__(self) -> None:
        self.rows: dict = {}              # task id -> (workflow id, seq, body)

    def apply(self, stored) -> None:
        for task_id in stored.deletes:
            del self.rows[task_id]
        for task_id, body in stored.updates:
            workflow_id, seq, _ = self.rows[task_id]
            self.rows[task_id] = (workflow_id, seq, body)
        for row in stored.inserts:
            assert row["task_id"] not in self.rows
            self.rows[row["task_id"]] = (row["workflow_id"], row["seq"], row["body"])

    def spell(self, document: str) -> str:
        """The state the document and the rows make, as SpiffWorkflow would write it."""
        dct = json.loads(document)
        ordered = sorted(((seq, task_id, workflow_id, body) for task_id, (workflow_id, seq, body) in self.rows.items()))
        put_rows(dct, [(task_id, workflow_id, seq, body) for seq, task_id, workflow_id, body in ordered])
        return json.dumps(dct, sort_keys=True)


def _whole(workflow) -> str:
    return json.dumps(json.loads(SERIALIZER.serialize_json(workflow)), sort_keys=True)


def _workflow(xml: str, key: str, **data):
    spec = parse_resources([(f"{key}.bpmn", xml.encode())]).get_spec(key)
    workflow = ApprovalWorkflow(spec, {}, script_engine=PythonScriptEngine())
    workflow.task_tree.data.update(data)
    workflow.do_engine_steps()
    return workflow


def _complete_one(workflow, **data):
    [task] = [t for t in open_tasks(workflow) if t._state == TaskState.READY and t.task_spec.manual]
    task.data.update(data)
    task.run()
    workflow.do_engine_steps()
    return task


def _settled(workflow) -> list:
    return [t for t in workflow.tasks.values() if id(t) not in workflow.tasks.unsettled]


def _store(workflow, rows: Rows) -> None:
    stored = dump_stored(workflow)
    rows.apply(stored)
    assert rows.spell(stored.document) == _whole(workflow)
    tasks_map = workflow.tasks
    assert set(map(id, tasks_map.unsettled.values())) == set(tasks_map.unsettled)
    assert {t.id for t in tasks_map.unsettled.values()} <= set(tasks_map)
    for task in _settled(workflow):                     # settled: sealed, finished, text in its row
        assert type(task) is workflows._SealedTask and task._state & TaskState.FINISHED_MASK
        assert task.__dict__["_approvals_sealed"][1] == rows.rows[str(task.id)][2]


def _in_step(tasks_map) -> bool:
    """Every task of the map is unsettled (none is settled here), by id() and in order."""
    return list(tasks_map.unsettled.values()) == list(dict.values(tasks_map)) and \
        list(tasks_map.unsettled) == [id(task) for task in dict.values(tasks_map)]


def test_the_task_map_keeps_its_unsettled_tasks_in_step():
    workflow = _workflow(LOOP, "loop", rounds=4)
    tasks_map = workflow.tasks
    assert type(tasks_map) is workflows._TaskMap and _in_step(tasks_map)
    first, second, *_ = tasks_map
    task = tasks_map[first]
    operations = [lambda m: m.pop(first), lambda m: m.__delitem__(first), lambda m: m.popitem(),
                  lambda m: m.clear(), lambda m: m.update({first: None}), lambda m: m.setdefault(first, None),
                  lambda m: m.__ior__({"new": task}), lambda m: m.pop("nothing", None),
                  lambda m: m.__setitem__(first, m[second]), lambda m: m.setdefault("new", task)]
    for operation in operations:
        copied = workflows._TaskMap(tasks_map)
        operation(copied)
        assert _in_step(copied) or list(copied.unsettled.values()) == [
            t for t in {id(v): v for v in dict.values(copied)}.values()]          # one task under two ids
    with pytest.raises(KeyError):
        workflows._TaskMap(tasks_map).pop("nothing")
    assert type(tasks_map.copy()) is dict and type(copy.copy(tasks_map)) is dict
    assert type(copy.deepcopy(workflows._TaskMap({1: "a"}))) is dict
    restored = workflows.load_state(workflows.dump_state(workflow), workflow.spec, {}, PythonScriptEngine())
    assert type(restored.tasks) is workflows._TaskMap and _in_step(restored.tasks)


def test_rounds_settle_and_the_rows_still_spell_the_case():
    workflow, rows = _workflow(LOOP, "loop", rounds=40), Rows()
    for n in range(30):
        _complete_one(workflow, opinion="同意")
        _store(workflow, rows)
    settled = _settled(workflow)
    assert len(settled) >= 25
    assert not set(settled) & set(open_tasks(workflow))
    ready = [t for t in open_tasks(workflow) if t._state == TaskState.READY]
    assert ready == [t for t in workflow.tasks.values() if t._state == TaskState.READY]
    stored = dump_stored(workflow)                     # nothing changed: nothing written
    assert not (stored.inserts or stored.updates or stored.deletes)


@pytest.mark.parametrize("change", SEALED_CHANGES.values(), ids=SEALED_CHANGES.keys())
def test_every_change_to_a_settled_task_unsettles_it_and_reaches_its_row(change):
    workflow, rows = _workflow(CHAIN, "chain"), Rows()
    _store(workflow, rows)
    a = _complete_one(workflow, opinion="a")
    _store(workflow, rows)
    _complete_one(workflow, opinion="b")
    _store(workflow, rows)
    _store(workflow, rows)
    assert a in _settled(workflow)
    state = a._state
    change(a)
    assert id(a) in workflow.tasks.unsettled
    assert workflow.__dict__["_approvals_reopened"][a] == state          # the state it was settled with
    _store(workflow, rows)


def test_a_settled_task_dropped_from_the_workflow_loses_its_row():
    workflow, rows = _workflow(CHAIN, "chain"), Rows()
    _store(workflow, rows)
    for opinion in "ab":
        _complete_one(workflow, opinion=opinion)
        _store(workflow, rows)
    _store(workflow, rows)
    b = next(t for t in workflow.tasks.values() if t.task_spec.name == "B")
    assert b in _settled(workflow)
    workflow._remove_task(b.id)                           # B and what follows it
    stored = dump_stored(workflow)
    assert str(b.id) in stored.deletes
    rows.apply(stored)
    assert rows.spell(stored.document) == _whole(workflow)


VALUES = ["同意", "同意", "不同意", "", None, True, False, 0, 1, 1.0, 2, 2.0, -0.0, 0.0, 3.5, "1", 10**20]


@pytest.mark.parametrize("seed", range(6))
def test_rounds_with_values_of_their_own_in_a_random_walk(seed):
    """Each round writes values that meet earlier ones or not, by Python's equality and
    not by JSON's (1 == 1.0 == True; 0.0 == -0.0): every dump's rows spell the case, and
    settled rounds are unsettled only where their delta changes.  Now and then a settled
    round is changed by hand."""
    rng = random.Random(seed)
    workflow, rows = _workflow(LOOP, "loop", rounds=60), Rows()
    for n in range(55):
        data = {key: rng.choice(VALUES) for key in rng.sample(["opinion", "score", "flag"], rng.randint(1, 3))}
        _complete_one(workflow, **data)
        if n % 9 == 8:
            settled = _settled(workflow)
            if settled:
                victim = rng.choice(settled)
                rng.choice(list(SEALED_CHANGES.values())[:7])(victim)
        _store(workflow, rows)
    assert len(_settled(workflow)) > 20


def test_a_nan_round_is_spelled_as_spiffworkflow_writes_it():
    workflow, rows = _workflow(LOOP, "loop", rounds=8), Rows()
    for value in [math.nan, 1.0, math.nan, "x", math.nan, math.nan]:
        _complete_one(workflow, score=value)
        _store(workflow, rows)


# --- through the engine: the activity projection of a settled task reset --------------

def _activities(engine, instance_id: str) -> list:
    with engine.uow(write=False) as uow:
        return uow.session.execute(select(ActivityInstance.activity_id, ActivityInstance.end_time)
                                   .where(ActivityInstance.instance_id == instance_id)).all()


def test_a_settled_user_task_reset_by_a_command_is_offered_again(engine):
    """SpiffWorkflow's reset_from_task_id makes a finished (settled) task READY again and
    drops what followed it.  The command's projections see the task's settled state
    (COMPLETED), not a new task: its activity is not inserted a second time, its user task
    is offered again, and the rows spell the case (APPROVALS_CHECK_STATE)."""
    instance_id = _start(engine, CHAIN, "chain", {})
    for name in ("A", "B"):
        _complete(engine, instance_id, name, {"opinion": name})
    with engine.uow() as uow:                            # a command that changes nothing: B settles
        command = runtime.open_instance(uow, instance_id, identity.SYSTEM)
        runtime.save(command)
        uow.commit()
    before = _activities(engine, instance_id)
    with engine.uow() as uow:
        command = runtime.open_instance(uow, instance_id, identity.SYSTEM)
        workflow = command.workflow
        a = next(t for t in workflow.tasks.values() if t.task_spec.name == "A")
        assert a in _settled(workflow) and a not in command.before.states
        workflow.reset_from_task_id(a.id)
        runtime.save(command)
        uow.commit()
    with engine.uow(write=False) as uow:
        offered = tasks.query(uow.session, identity.SYSTEM, tasks.TaskQuery(process_instance_id=instance_id))
        assert [v.row.task_definition_key for v in offered] == ["A"]
    after = _activities(engine, instance_id)
    assert len(after) == len(before)
    assert [row for row in after if row[0] == "A"] == [row for row in before if row[0] == "A"]
    assert dict(before)["C"] is None and dict(after)["C"] is not None        # C was dropped: closed
    for name in ("A", "B", "C"):
        _complete(engine, instance_id, name, {"opinion": name})
    with engine.uow(write=False) as uow:
        assert instances.get(uow.session, identity.SYSTEM, instance_id, running_only=False).state == "COMPLETED"


def test_the_snapshot_leaves_settled_tasks_out_and_the_next_command_writes_nothing_for_them(engine):
    instance_id = _start(engine, LOOP, "loop", {"rounds": 30})
    for _ in range(20):
        _complete(engine, instance_id)
    with engine.uow(write=False) as uow:
        record = runtime.load_record(uow.session, instance_id)
    workflow = engine.workflows.take(instance_id, record.version)
    assert workflow is not None
    snapshot = projections.snapshot(workflow)
    assert len(snapshot.states) < len(workflow.tasks) / 2
    engine.workflows.put(instance_id, record.version, workflow)
    rows = len(_activities(engine, instance_id))
    _complete(engine, instance_id)
    assert len(_activities(engine, instance_id)) == rows + 1          # the next round, nothing else
