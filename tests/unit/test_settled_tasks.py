"""Settled tasks: the scans and the rows' dump pass them by, and nothing is lost.

An ApprovalWorkflow keeps its tasks in a _TaskMap that knows which ones are settled
(sealed, their text in their row).  The READY/WAITING scans, the projections' snapshot
and dump_stored look at the others only; a change to a settled task unsettles it first.
These tests change settled tasks in every way there is and check what the rows spell,
what the scans find and what the activity projection writes.  Engine-level tests run on
SQLite and PostgreSQL."""
from __future__ import annotations

import copy
import enum
import json
import math
import pickle
import random

import pytest
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from engine import identity, instances, projections, runtime, tasks, workflows
from engine.models import ActivityInstance
from engine.workflows import SERIALIZER, ApprovalWorkflow, dump_stored, open_tasks, parse_resources, put_rows
from tests.unit.test_state_json import CHAIN, LOOP, SEALED_CHANGES
from tests.unit.test_state_rows import BRANCHES, _complete, _start


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
        """The state the document and the rows make (in the rows' order, as a load
        reads them), to compare with what SpiffWorkflow writes (runtime._check_stored)."""
        dct = json.loads(document)
        ordered = sorted(((seq, task_id, workflow_id, body) for task_id, (workflow_id, seq, body) in self.rows.items()))
        put_rows(dct, [(task_id, workflow_id, seq, body) for seq, task_id, workflow_id, body in ordered])
        return json.dumps(dct)

    def restore(self, workflow, document: str):
        """The workflow as a command restores it from the document and its rows."""
        ordered = sorted((seq, task_id, workflow_id, body) for task_id, (workflow_id, seq, body) in self.rows.items())
        rows = [(task_id, workflow_id, seq, body) for seq, task_id, workflow_id, body in ordered]
        return workflows.load_state(document, workflow.spec, workflow.subprocess_specs, PythonScriptEngine(),
                                    keep_texts=True, fetch_rows=lambda: rows)


def _whole(workflow) -> str:
    return json.dumps(json.loads(SERIALIZER.serialize_json(workflow)))


def _workflow(xml: str, key: str, **data):
    parser = parse_resources([(f"{key}.bpmn", xml.encode())])
    workflow = ApprovalWorkflow(parser.get_spec(key), parser.get_subprocess_specs(key),
                                script_engine=PythonScriptEngine())
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


def _settled_chain():
    """CHAIN with A and B finished and stored until they settle: (workflow, rows, A)."""
    workflow, rows = _workflow(CHAIN, "chain"), Rows()
    _store(workflow, rows)
    for opinion in "ab":
        _complete_one(workflow, opinion=opinion)
        _store(workflow, rows)
    _store(workflow, rows)
    a = next(t for t in workflow.tasks.values() if t.task_spec.name == "A")
    assert a in _settled(workflow)
    return workflow, rows, a


def _store(workflow, rows: Rows):
    stored = dump_stored(workflow)
    rows.apply(stored)
    assert rows.spell(stored.document) == _whole(workflow)
    tasks_map = workflow.tasks
    assert set(map(id, tasks_map.unsettled.values())) == set(tasks_map.unsettled)
    assert {t.id for t in tasks_map.unsettled.values()} <= set(tasks_map)
    for task in _settled(workflow):                     # settled: sealed, finished, text in its row
        assert type(task) is workflows._SealedTask and task._state & TaskState.FINISHED_MASK
        assert task.__dict__["_approvals_sealed"][1] == rows.rows[str(task.id)][2]
    return stored


def _in_step(tasks_map) -> bool:
    """`unsettled` holds, by id() and in the map's order, every task not settled."""
    expected = [task for task in dict.values(tasks_map)
                if not (type(task) is workflows._SealedTask and task.__dict__.get("_approvals_settled"))]
    return list(tasks_map.unsettled.values()) == list({id(t): t for t in expected}.values()) and \
        list(tasks_map.unsettled) == list({id(t): t for t in expected})


def _settled_loop():
    workflow, rows = _workflow(LOOP, "loop", rounds=8), Rows()
    for _ in range(5):
        _complete_one(workflow, opinion="同意")
        _store(workflow, rows)
    tasks_map = workflow.tasks
    settled, unsettled = _settled(workflow), list(tasks_map.unsettled.values())
    assert type(tasks_map) is workflows._TaskMap and settled and _in_step(tasks_map)
    return workflow, settled[0].id, unsettled[0].id, unsettled[-1]


def test_the_task_map_keeps_its_unsettled_tasks_in_step():
    workflow, done, live, newcomer = _settled_loop()
    tasks_map = workflow.tasks
    operations = {
        "pop settled": lambda m: m.pop(done), "pop unsettled": lambda m: m.pop(live),
        "del": lambda m: m.__delitem__(live), "popitem": lambda m: m.popitem(), "clear": lambda m: m.clear(),
        "update": lambda m: m.update({"new": newcomer}), "|=": lambda m: m.__ior__({"new": newcomer}),
        "setdefault": lambda m: m.setdefault("new", newcomer), "pop missing": lambda m: m.pop("nothing", None),
        "replace a settled task": lambda m: m.__setitem__(done, newcomer),
        "set a settled task again": lambda m: m.__setitem__(done, m[done]),
        "replace a task by a settled one": lambda m: m.__setitem__(live, m[done]),
    }
    for name, operation in operations.items():
        workflow, done, live, newcomer = _settled_loop()         # a task taken out is unsealed
        copied = workflows._TaskMap(workflow.tasks)
        assert _in_step(copied) and copied.unsettled == workflow.tasks.unsettled
        operation(copied)
        assert _in_step(copied), name
    with pytest.raises(KeyError):
        workflows._TaskMap(tasks_map).pop("nothing")
    assert type(tasks_map.copy()) is dict and type(copy.copy(tasks_map)) is dict
    assert type(copy.deepcopy(workflows._TaskMap({1: "a"}))) is dict
    restored = workflows.load_state(workflows.dump_state(workflow), workflow.spec, {}, PythonScriptEngine())
    assert type(restored.tasks) is workflows._TaskMap and len(restored.tasks.unsettled) == len(restored.tasks)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_workflow_runs_with_its_tasks_in_a_plain_dict(how):
    workflow, rows = _workflow(LOOP, "loop", rounds=8), Rows()
    for _ in range(4):
        _complete_one(workflow, opinion="同意")
        _store(workflow, rows)
    twin = copy.deepcopy(workflow) if how == "deepcopy" else pickle.loads(pickle.dumps(workflow))
    assert type(twin.tasks) is dict
    assert len(list(open_tasks(twin))) == len(twin.tasks)
    _complete_one(twin, opinion="副本")
    assert workflows.dump_state(twin) == SERIALIZER.serialize_json(twin)


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
    workflow, rows, a = _settled_chain()
    state = a._state
    change(a)
    assert id(a) in workflow.tasks.unsettled
    assert a.__dict__["_approvals_reopened"] == state                   # the state it was settled with
    _store(workflow, rows)


@pytest.mark.parametrize("name", ["B", "C"])
def test_a_dropped_task_loses_its_row_while_others_stay_settled(name):
    """B is settled; C (READY) is not.  Dropping either (with what follows it) deletes
    their rows and no other, while the tasks before them stay settled (A, when C goes)
    or not (A is unsealed as its children change, when B goes)."""
    workflow, rows, _ = _settled_chain()
    assert {t.task_spec.name for t in _settled(workflow)} >= {"A", "B"}
    dropped = next(t for t in workflow.tasks.values() if t.task_spec.name == name)
    gone = [str(t.id) for t in dropped]                   # it and its descendants
    workflow._remove_task(dropped.id)
    if name == "C":
        assert "A" in {t.task_spec.name for t in _settled(workflow)}
    stored = dump_stored(workflow)
    assert sorted(stored.deletes) == sorted(gone)
    rows.apply(stored)
    assert rows.spell(stored.document) == _whole(workflow)


def test_a_settled_task_taken_out_and_put_back_gets_its_row_again(monkeypatch):
    """Not SpiffWorkflow's way, but a map's: while A is out, B's parent is missing and
    no serialization of the workflow is right, so the check mode waits for A's return."""
    monkeypatch.setattr(workflows, "CHECK_STATE", False)
    workflow, rows, a = _settled_chain()
    workflow.tasks.pop(a.id)                              # not _remove_task: its children stay
    stored = dump_stored(workflow)
    assert stored.deletes == [str(a.id)]
    rows.apply(stored)
    workflow.tasks[a.id] = a
    assert str(a.id) in [row["task_id"] for row in _store(workflow, rows).inserts]


def test_a_settled_task_replaced_under_its_id_and_put_back_gets_its_row_again(monkeypatch):
    """Another object under a settled task's id (Task() with that id) replaces it: the
    old one is unsealed and forgets its stored text, so each object's text reaches the
    row when it is the one in the map."""
    from SpiffWorkflow.task import Task
    monkeypatch.setattr(workflows, "CHECK_STATE", False)
    workflow, rows, a = _settled_chain()
    twin = Task(workflow, a.task_spec, state=a._state, id=a.id)        # puts itself in the map
    twin._parent, twin._children = a._parent, list(a._children)
    twin.data, twin.internal_data = {**a.data, "opinion": "replaced"}, dict(a.internal_data)
    twin.last_state_change, twin.triggered = a.last_state_change, a.triggered
    assert type(a) is not workflows._SealedTask and "_approvals_json" not in a.__dict__
    assert '"replaced"' in [body for task_id, body in _store(workflow, rows).updates if task_id == str(a.id)][0]
    workflow.tasks[a.id] = a
    assert str(a.id) in [task_id for task_id, _ in _store(workflow, rows).updates]


def test_a_subprocess_task_taken_out_and_put_back_gets_its_row_again(monkeypatch):
    """A subprocess keeps its tasks in a plain dict: a task of it whose text is marked as
    the stored one still gets its row again once put back after its row was deleted."""
    monkeypatch.setattr(workflows, "CHECK_STATE", False)
    workflow, rows = _workflow(BRANCHES, "rows_branches"), Rows()
    _store(workflow, rows)
    _store(workflow, rows)
    [sub] = workflow.subprocesses.values()
    start = next(t for t in sub.tasks.values() if t.task_spec.name == "SubS")
    assert start.__dict__["_approvals_json"][1][2]          # its text is the one in its row
    sub.tasks.pop(start.id)
    stored = dump_stored(workflow)
    assert stored.deletes == [str(start.id)]
    rows.apply(stored)
    sub.tasks[start.id] = start
    assert str(start.id) in [row["task_id"] for row in _store(workflow, rows).inserts]


def test_tasks_restored_from_their_rows_settle(monkeypatch):
    """A case restored from its rows (the cache missed) settles its finished tasks again:
    their texts are the ones in their rows from the start.  (Without the check mode,
    whose extra whole dump would settle them too.)"""
    monkeypatch.setattr(workflows, "CHECK_STATE", False)
    workflow, rows = _workflow(LOOP, "loop", rounds=60), Rows()
    for _ in range(30):
        _complete_one(workflow, opinion="同意")
        stored = _store(workflow, rows)
    settled = len(_settled(workflow))
    workflow = rows.restore(workflow, stored.document)
    assert not _settled(workflow)
    for _ in range(3):
        _complete_one(workflow, opinion="同意")
        _store(workflow, rows)
    assert len(_settled(workflow)) >= settled
    assert len(workflow.tasks.unsettled) < 10


VALUES = ["同意", "同意", "不同意", "", None, True, False, 0, 1, 1.0, 2, 2.0, -0.0, 0.0, 3.5, "1", 10**20]


class Level(enum.IntEnum):
    ONE = 1


@pytest.mark.parametrize("seed", range(6))
def test_rounds_with_values_of_their_own_in_a_random_walk(seed):
    """Each round writes values that meet earlier ones or not, by Python's equality and
    not by JSON's (1 == 1.0 == True; 0.0 == -0.0; an IntEnum equal to 1): every dump's
    rows spell the case.  Now and then a settled round is changed by hand, or the case
    is restored from its rows."""
    rng = random.Random(seed)
    workflow, rows = _workflow(LOOP, "loop", rounds=60), Rows()
    for n in range(55):
        data = {key: rng.choice(VALUES + [Level.ONE] * (seed % 2))
                for key in rng.sample(["opinion", "score", "flag"], rng.randint(1, 3))}
        _complete_one(workflow, **data)
        if n % 9 == 8:
            settled = _settled(workflow)
            if settled:
                victim = rng.choice(settled)
                rng.choice(list(SEALED_CHANGES.values())[:7])(victim)
        stored = _store(workflow, rows)
        if n % 13 == 12:
            workflow = rows.restore(workflow, stored.document)
    assert len(_settled(workflow)) > 20


@pytest.mark.parametrize("value", [1, Level.ONE], ids=["int", "IntEnum"])
def test_a_sealed_round_equal_to_the_parents_new_value_is_found(value):
    """A round holding 1 (or an int subclass equal to 1) is in its delta while the
    parent's value differs; when the parent's value becomes 1, the round's delta loses
    the key and its row must say so."""
    workflow, rows = _workflow(LOOP, "loop", rounds=10), Rows()
    for score in [5, 6, 7, value, 2, 3, 1]:
        _complete_one(workflow, score=score)
        _store(workflow, rows)
        _store(workflow, rows)                             # the rounds settle


def test_rounds_with_opinions_of_their_own_look_at_few_sealed_rounds(monkeypatch):
    """When the rounds' parent changes only in values, the sealed rounds compared are
    those holding its old or new values (the value index), not all of them."""
    workflow, rows = _workflow(LOOP, "loop", rounds=80), Rows()
    compared = []
    real = workflows._same_view
    monkeypatch.setattr(workflows, "_same_view",
                        lambda task, data, changed: compared.append(changed) or real(task, data, changed))
    for n in range(70):
        _complete_one(workflow, opinion=f"第 {n} 轮: 同意", score=1)
        compared.clear()
        _store(workflow, rows)
        assert len(compared) <= 6, (n, len(compared))       # the last round's old and new opinion holders
    assert len(_settled(workflow)) > 60


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
