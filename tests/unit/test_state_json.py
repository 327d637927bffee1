"""The state JSON spliced from cached task texts is SpiffWorkflow's own serialization.

engine.workflows keeps each finished task's JSON text on the live workflow and reuses it
on the next dump; these tests change the things such a text depends on and compare the
dump with SpiffWorkflow's serialize_json, byte for byte."""
from __future__ import annotations

import json

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.util.task import TaskState

from engine import workflows
from engine.workflows import SERIALIZER, dump_state, load_state, parse_resources

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="D" targetNamespace="http://bpmn.io/schema/bpmn">\n')
LOOP = (HEAD + '<bpmn:process id="loop" isExecutable="true"><bpmn:startEvent id="S" />'
        '<bpmn:userTask id="Round"><bpmn:multiInstanceLoopCharacteristics isSequential="true">'
        '<bpmn:loopCardinality xsi:type="bpmn:tFormalExpression">rounds</bpmn:loopCardinality>'
        '</bpmn:multiInstanceLoopCharacteristics></bpmn:userTask><bpmn:endEvent id="E" />'
        '<bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Round" />'
        '<bpmn:sequenceFlow id="F2" sourceRef="Round" targetRef="E" /></bpmn:process></bpmn:definitions>')


@pytest.fixture(autouse=True)
def no_check(monkeypatch):
    """The suite runs with APPROVALS_CHECK_STATE=1; these tests compare by themselves.
    Their small workflows seal finished tasks as big ones do (SEAL_FROM)."""
    monkeypatch.setattr(workflows, "CHECK_STATE", False)
    monkeypatch.setattr(workflows, "SEAL_FROM", 0)


def _loop(rounds: int = 6):
    parser = parse_resources([("loop.bpmn", LOOP.encode())])
    spec = parser.get_spec("loop")
    workflow = BpmnWorkflow(spec, {}, script_engine=PythonScriptEngine())
    workflow.task_tree.data["rounds"] = rounds
    workflow.do_engine_steps()
    return workflow, spec


def _complete_one(workflow, **data):
    [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
    task.data.update(data)
    task.run()
    workflow.do_engine_steps()
    return task


def _assert_same(workflow):
    assert dump_state(workflow) == SERIALIZER.serialize_json(workflow)


def test_repeated_dumps_reuse_finished_tasks_and_match_spiffworkflow():
    workflow, _ = _loop()
    for n in range(5):
        _complete_one(workflow, opinion=f"round {n}")
        _assert_same(workflow)
        _assert_same(workflow)                               # the second dump is all cache hits
    kept = [t for t in workflow.tasks.values() if t.__dict__.get("_approvals_json")]
    assert len(kept) >= 5                                    # finished rounds were kept


def test_a_finished_task_changed_in_place_is_serialized_again():
    workflow, _ = _loop()
    done = _complete_one(workflow, opinion="first")
    _complete_one(workflow, opinion="second")
    dump_state(workflow)
    done.data["opinion"] = "edited afterwards"
    done.internal_data["note"] = "x"
    assert '"edited afterwards"' in dump_state(workflow)
    _assert_same(workflow)


MUTATIONS = {
    "setitem": lambda d: d.__setitem__("opinion", "edited"),
    "update": lambda d: d.update(opinion="edited"),
    "ior": lambda d: d.__ior__({"opinion": "edited"}),
    "setdefault": lambda d: d.setdefault("added", "new"),
    "delitem": lambda d: d.__delitem__("opinion"),
    "pop": lambda d: d.pop("opinion"),
    "popitem": lambda d: d.popitem(),
    "clear": lambda d: d.clear(),
}


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
@pytest.mark.parametrize("which", ["data", "internal_data"])
def test_every_change_to_a_watched_finished_task_is_seen(mutate, which):
    """A finished task's dict of plain values is watched after a dump (its content is
    kept, not recomputed); each way of changing it in place drops what was kept."""
    workflow, _ = _loop()
    done = _complete_one(workflow, opinion="first")
    _complete_one(workflow, opinion="second")
    done.internal_data["opinion"] = "kept"
    dump_state(workflow)
    dump_state(workflow)
    values = getattr(done, which)
    assert type(values) is workflows._WatchedDict and values.content is not None
    mutate(values)
    _assert_same(workflow)


def test_watched_dicts_copy_as_plain_dicts():
    import copy
    workflow, _ = _loop()
    done = _complete_one(workflow, opinion="first")
    dump_state(workflow)
    assert type(done.data) is workflows._WatchedDict
    for twin in (copy.copy(done.data), copy.deepcopy(done.data), done.data.copy(), done.data | {}):
        assert type(twin) is dict and twin == done.data


def test_a_finished_task_with_a_list_is_not_watched():
    """A list could change without its dict seeing it (SpiffWorkflow's copies share it)."""
    workflow, _ = _loop()
    done = _complete_one(workflow, items=["a"])
    dump_state(workflow)
    assert type(done.data) is dict
    done.data["items"].append("b")
    _assert_same(workflow)


def test_a_change_of_the_parents_data_recomputes_the_childrens_deltas():
    workflow, _ = _loop()
    _complete_one(workflow, opinion="first")
    dump_state(workflow)
    body = next(t for t in workflow.tasks.values() if t.task_spec.name == "Round")
    body.data["collected"] = ["a", "b"]                      # a multi-instance body gathers results
    _assert_same(workflow)
    body.data["collected"].append("c")                       # ...in place, too
    _assert_same(workflow)


def test_nested_data_is_never_cached_and_still_correct():
    workflow, _ = _loop()
    _complete_one(workflow, form={"decision": "approve", "items": [{"n": 1}]})
    dump_state(workflow)
    finished = [t for t in workflow.tasks.values() if t.state == TaskState.COMPLETED and "form" in t.data]
    finished[0].data["form"]["items"][0]["n"] = 2            # shared by SpiffWorkflow's shallow copies
    _assert_same(workflow)


def test_the_spliced_state_restores_to_the_same_workflow():
    workflow, spec = _loop()
    for n in range(3):
        _complete_one(workflow, opinion=f"round {n}")
        dump_state(workflow)
    text = dump_state(workflow)
    restored = load_state(text, spec, {}, PythonScriptEngine())
    assert dump_state(restored) == text
    assert json.loads(text)["tasks"].keys() == {str(t) for t in workflow.tasks}


def test_a_restored_childs_parent_id_is_its_parents_own_object():
    """_task_key finds a parent's content by id() of the child's _parent; SpiffWorkflow
    restores a UUID of its own there, so the load hands over the parent's."""
    workflow, spec = _loop()
    _complete_one(workflow, opinion="first")
    restored = load_state(dump_state(workflow), spec, {}, PythonScriptEngine(), keep_texts=True)
    children = [t for t in restored.tasks.values() if t._parent is not None]
    assert children and all(t._parent is restored.tasks[t._parent].id for t in children)
    _assert_same(restored)


def test_the_check_mode_catches_a_stale_text(monkeypatch):
    workflow, _ = _loop()
    _complete_one(workflow, opinion="first")
    dump_state(workflow)
    task = next(t for t in workflow.tasks.values() if t.__dict__.get("_approvals_json"))
    cache_key, (body, part, stored) = task._approvals_json   # {...}, '"id": {...}', in its row?
    assert '"state": 64' in body and part.endswith(body)    # COMPLETED
    stale = body.replace('"state": 64', '"state": 65')
    task._approvals_json = (cache_key, (stale, f'"{task.id}": {stale}', stored))
    monkeypatch.setattr(workflows, "CHECK_STATE", True)
    with pytest.raises(AssertionError):
        dump_state(workflow)


@pytest.mark.parametrize("before, after", [([1], [1.0]), ([1], [True]), (0.0, -0.0), (1, 1.0), ("1.0", 1.0)])
def test_values_equal_in_python_but_not_in_json_are_told_apart(before, after):
    workflow, _ = _loop()
    _complete_one(workflow, opinion="first")
    done = next(t for t in workflow.tasks.values() if t.state == TaskState.COMPLETED and t.parent is None)
    done.data["value"] = before
    dump_state(workflow)
    done.data["value"] = after
    _assert_same(workflow)


PARALLEL_MI = LOOP.replace('isSequential="true"', 'isSequential="false"')


@pytest.mark.parametrize("xml", [LOOP, PARALLEL_MI], ids=["sequential", "parallel"])
def test_the_task_converter_writes_what_spiffworkflows_own_writes(xml):
    """The check mode compares dumps with SERIALIZER, which has engine.workflows'
    _TaskConverter; this compares with SpiffWorkflow's own TaskConverter, for tasks with
    many children (the ones whose child ids it converts once), also after a restore."""
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.serializer.default.workflow import TaskConverter
    from SpiffWorkflow.task import Task
    config = workflows._serializer_config()
    config[Task] = TaskConverter
    stock = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))
    parser = parse_resources([("loop.bpmn", xml.encode())])
    spec = parser.get_spec("loop")
    workflow = BpmnWorkflow(spec, {}, script_engine=PythonScriptEngine())
    workflow.task_tree.data["rounds"] = 40
    workflow.do_engine_steps()
    many = 0
    for n in range(40):
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        ready[0].data["opinion"] = f"round {n}"
        ready[0].run()
        workflow.do_engine_steps()
        assert dump_state(workflow) == stock.serialize_json(workflow)
        many = max(many, max(len(t._children) for t in workflow.tasks.values()))
        if n == 25:
            workflow = load_state(dump_state(workflow), spec, {}, PythonScriptEngine(), keep_texts=True)
    assert workflow.completed and many >= workflows._TaskConverter.MANY


# --- sealed tasks: a dump takes a finished task's text without looking at the task ------------

CHAIN = (HEAD + '<bpmn:process id="chain" isExecutable="true"><bpmn:startEvent id="S" />'
         '<bpmn:userTask id="A" /><bpmn:userTask id="B" /><bpmn:userTask id="C" /><bpmn:endEvent id="E" />'
         '<bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="A" />'
         '<bpmn:sequenceFlow id="F2" sourceRef="A" targetRef="B" />'
         '<bpmn:sequenceFlow id="F3" sourceRef="B" targetRef="C" />'
         '<bpmn:sequenceFlow id="F4" sourceRef="C" targetRef="E" /></bpmn:process></bpmn:definitions>')


def _chain():
    """A and B finished in sequence: B's parent is A, and both are sealed by a dump."""
    spec = parse_resources([("chain.bpmn", CHAIN.encode())]).get_spec("chain")
    workflow = BpmnWorkflow(spec, {}, script_engine=PythonScriptEngine())
    workflow.do_engine_steps()
    a = _complete_one(workflow, opinion="a")
    b = _complete_one(workflow, opinion="b")
    dump_state(workflow)
    assert type(a) is not workflows._SealedTask             # not on a workflow's first dump
    dump_state(workflow)
    assert type(a) is workflows._SealedTask and type(b) is workflows._SealedTask
    assert b.parent is a
    return workflow, a, b


def test_finished_tasks_are_sealed_and_the_next_dump_computes_no_key_for_them(monkeypatch):
    from SpiffWorkflow.task import Task
    workflow, _ = _loop(rounds=12)
    for _ in range(10):
        _complete_one(workflow, opinion="同意")            # the same each round: see the next test
        dump_state(workflow)
    sealed = [t for t in workflow.tasks.values() if type(t) is workflows._SealedTask]
    assert len(sealed) >= 10
    assert all(t.__class__ is Task and isinstance(t, Task) for t in sealed)   # as serializers see them
    keys = []
    real = workflows._task_key
    monkeypatch.setattr(workflows, "_task_key", lambda task, contents: keys.append(task) or real(task, contents))
    _assert_same(workflow)
    assert keys and not set(keys) & set(sealed)


@pytest.mark.parametrize("sealing", [True, False])
def test_rounds_whose_parent_changes_keep_their_texts_where_their_deltas_do_not(monkeypatch, sealing):
    """Each round merges its data into the multi-instance task, their parent, and each
    round's text stores its data as a delta against the parent's.  Rounds that write
    their own opinions change the parent at every round; a round is encoded again (and
    unsealed) only where its delta changes: where its values meet the parent's old or new
    ones, by Python's equality (1 == 1.0 == True).  Sealed rounds stay sealed; without
    sealing, a round's key changes with its parent's data and its delta is compared."""
    if not sealing:
        monkeypatch.setattr(workflows, "SEAL_FROM", 10**6)
    opinions = ["同意" if n % 5 == 0 else f"第 {n} 轮意见" for n in range(32)]     # some meet again
    scores = [float(n - 1) if n % 6 == 0 else True if n == 1 else n for n in range(32)]   # 5.0 == 5
    workflow, _ = _loop(rounds=len(opinions))
    body = next(t for t in workflow.tasks.values() if t.task_spec.name == "Round")
    encoded, keyed = [], []
    real, real_key = workflows._encode_task, workflows._task_key
    monkeypatch.setattr(workflows, "_encode_task", lambda dct, task, enc: encoded.append(task) or real(dct, task, enc))
    monkeypatch.setattr(workflows, "_task_key", lambda task, contents: keyed.append(task) or real_key(task, contents))
    for n, (opinion, score) in enumerate(zip(opinions, scores)):
        _complete_one(workflow, opinion=opinion, score=score)
        encoded.clear()
        keyed.clear()
        dump_state(workflow)
        rounds = [t for t in workflow.tasks.values() if t._parent == body.id and t.task_spec.name == "Round [child]"]
        again = [t for t in encoded if t in rounds]
        looked_at = [t for t in keyed if t in rounds]               # the others stayed sealed
        _assert_same(workflow)
        if n >= 6:      # the finished round, the next one, and the rounds whose values meet the
            # parent's old or new ones: the earlier "同意" rounds, a score and its float twin
            assert len(again) <= 4 + n // 5, (n, len(again), len(rounds))
            if sealing:
                assert len(looked_at) <= 4 + n // 5, (n, len(looked_at), len(rounds))
                assert sum(type(t) is workflows._SealedTask for t in rounds) >= len(rounds) / 2


SEALED_CHANGES = {
    "state": lambda t: t._set_state(TaskState.CANCELLED),
    "triggered": lambda t: setattr(t, "triggered", not t.triggered),
    "last_state_change": lambda t: setattr(t, "last_state_change", 1.5),
    "data replaced": lambda t: setattr(t, "data", {"opinion": "replaced"}),
    "internal data replaced": lambda t: setattr(t, "internal_data", {"note": "replaced"}),
    "data changed": lambda t: t.data.__setitem__("opinion", "edited"),
    "internal data changed": lambda t: t.internal_data.update(note="edited"),
    "children append": lambda t: t._children.append(t.id),
    "children extend": lambda t: t._children.extend([t.id]),
    "children insert": lambda t: t._children.insert(0, t.id),
    "children +=": lambda t: t._children.__iadd__([t.id]),
    "children slice": lambda t: t._children.__setitem__(slice(None), [t.id]),
    "children pop": lambda t: t._children.pop(),
    "children remove": lambda t: t._children.remove(t._children[0]),
    "children del": lambda t: t._children.__delitem__(0),
    "children clear": lambda t: t._children.clear(),
    "children *=": lambda t: t._children.__imul__(2),
    "children sort": lambda t: t._children.sort(key=str),
    "children reverse": lambda t: t._children.reverse(),
    "attribute deleted": lambda t: delattr(t, "_approvals_json"),
    "children replaced": lambda t: setattr(t, "children", []),
}


@pytest.mark.parametrize("change", SEALED_CHANGES.values(), ids=SEALED_CHANGES.keys())
def test_every_change_to_a_sealed_task_unseals_it(change):
    workflow, a, _ = _chain()
    assert a._children                                      # A has B as its child
    change(a)
    assert type(a) is not workflows._SealedTask
    _assert_same(workflow)


@pytest.mark.parametrize("change", ["in place", "replaced"])
def test_a_change_of_a_sealed_parents_data_unseals_its_children(change):
    """B's text stores its data as a delta against A's: a key A gains is one B lacks."""
    workflow, a, b = _chain()
    if change == "in place":
        a.data["extra"] = 1
    else:
        a.data = {**a.data, "extra": 1}
    assert type(b) is workflows._SealedTask                 # until the dump sees A's new data
    _assert_same(workflow)
    assert json.loads(dump_state(workflow))["tasks"][str(b.id)]["delta"]["deletions"] == ["extra"]


def test_a_child_placed_before_its_parent_is_redone():
    """Parents come before children in a workflow's tasks; if one did not, the dump that
    finds the parent's data changed runs again instead of keeping the child's old text."""
    workflow, a, b = _chain()
    workflow.tasks = {b.id: b, **{k: v for k, v in workflow.tasks.items() if v is not b}}
    a.data["extra"] = 1
    _assert_same(workflow)


def test_a_dict_shared_with_another_task_does_not_hide_a_change():
    """A watched dict unseals the task it was made for; a task holding another task's
    dict is never sealed."""
    workflow, a, b = _chain()
    b.data = a.data
    dump_state(workflow)
    assert type(b) is not workflows._SealedTask and type(a) is workflows._SealedTask
    b.data["opinion"] = "through b"
    assert type(a) is not workflows._SealedTask
    _assert_same(workflow)
    dump_state(workflow)
    a.data["opinion"] = "through a"
    _assert_same(workflow)


def test_a_dropped_child_is_not_kept_alive_by_its_parent():
    """A parent keeps its sealed children weakly: a branch that SpiffWorkflow drops (a
    reset) is freed although the parent's data never changes again."""
    import gc
    import weakref
    workflow, a, b = _chain()
    _complete_one(workflow, opinion="c")                    # the workflow's last task is C now
    assert b in a.__dict__["_approvals_child_base"][1]
    gone = weakref.ref(b)
    workflow._remove_task(b.id)
    del b
    gc.collect()
    assert gone() is None
    _assert_same(workflow)


def test_the_rows_dump_marks_sealed_entries_stored(monkeypatch):
    """dump_stored skips an entry without a task (its text is the one in its row); a
    sealed task's entry says so once its row was written."""
    monkeypatch.setattr(workflows, "ROWS_FROM", 0)
    workflow, _, _ = _chain()
    workflows.dump_stored(workflow)
    workflows.dump_stored(workflow)
    sealed = [t for t in workflow.tasks.values() if type(t) is workflows._SealedTask]
    assert sealed and all(t.__dict__["_approvals_sealed"][3] is None for t in sealed)
    assert not workflows.dump_stored(workflow).updates


def test_copies_of_a_sealed_task_are_plain_tasks():
    import copy
    from SpiffWorkflow.task import Task
    workflow, a, _ = _chain()
    twin = copy.deepcopy(a)
    assert type(twin) is Task and type(twin._children) is list and type(twin.data) is dict
    assert type(a) is Task                                   # the original, too: nothing stale to share
    _assert_same(workflow)


def test_a_small_case_is_not_sealed(monkeypatch):
    monkeypatch.setattr(workflows, "SEAL_FROM", 50)
    workflow, _ = _loop(rounds=60)
    seen = set()
    for n in range(60):
        _complete_one(workflow, opinion=f"round {n}")
        big = len(workflow.tasks) >= 50
        dump_state(workflow)
        sealed = any(type(t) is workflows._SealedTask for t in workflow.tasks.values())
        assert sealed == big, len(workflow.tasks)
        seen.add(big)
        _assert_same(workflow)
    assert seen == {False, True}


def test_a_long_list_beside_a_value_the_registry_cleans_out():
    """SpiffWorkflow's registry drops callables and modules from internal data; the
    converter's copy of a long list of strings keeps the order of what remains."""
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.serializer.default.workflow import TaskConverter
    from SpiffWorkflow.task import Task
    config = workflows._serializer_config()
    config[Task] = TaskConverter
    stock = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))
    workflow, _ = _loop(rounds=20)
    for _ in range(18):
        _complete_one(workflow, opinion="同意")
    body = next(t for t in workflow.tasks.values() if t.task_spec.name == "Round")
    assert len(body._children) >= workflows._TaskConverter.MANY
    body.internal_data = {"first": 1, "hook": len, **body.internal_data, "last": "x"}
    assert dump_state(workflow) == stock.serialize_json(workflow)


def test_serializing_does_not_unseal_a_task_with_many_children():
    """The check mode serializes the workflow after every dump: that must leave sealed
    tasks as the server has them (a parallel split with 16 branches)."""
    branches = range(workflows._TaskConverter.MANY)
    xml = (HEAD + '<bpmn:process id="wide" isExecutable="true"><bpmn:startEvent id="S" />'
           '<bpmn:parallelGateway id="Split" /><bpmn:parallelGateway id="Join" /><bpmn:endEvent id="E" />'
           '<bpmn:sequenceFlow id="F0" sourceRef="S" targetRef="Split" />'
           + "".join(f'<bpmn:userTask id="T{n}" /><bpmn:sequenceFlow id="A{n}" sourceRef="Split" targetRef="T{n}" />'
                     f'<bpmn:sequenceFlow id="B{n}" sourceRef="T{n}" targetRef="Join" />' for n in branches)
           + '<bpmn:sequenceFlow id="F1" sourceRef="Join" targetRef="E" /></bpmn:process></bpmn:definitions>')
    spec = parse_resources([("wide.bpmn", xml.encode())]).get_spec("wide")
    workflow = BpmnWorkflow(spec, {}, script_engine=PythonScriptEngine())
    workflow.do_engine_steps()
    dump_state(workflow)
    dump_state(workflow)
    [split] = [t for t in workflow.tasks.values() if t.task_spec.name == "Split"]
    assert len(split._children) >= workflows._TaskConverter.MANY and type(split) is workflows._SealedTask
    SERIALIZER.serialize_json(workflow)
    assert type(split) is workflows._SealedTask
    _assert_same(workflow)


def test_a_case_restored_for_a_command_keeps_its_tasks_texts_from_the_document():
    """A command on a case restored from its document (the workflow cache missed) dumps it
    again: the tasks it does not change keep the texts they were read from instead of
    being encoded again."""
    workflow, spec = _loop()
    _complete_one(workflow, opinion="first")
    text = dump_state(workflow)
    restored = load_state(text, spec, {}, PythonScriptEngine(), keep_texts=True)
    stored_tasks = json.loads(text)["tasks"]
    kept = {str(t.id): t._approvals_json[1] for t in restored.tasks.values() if t.__dict__.get("_approvals_json")}
    assert kept.keys() == stored_tasks.keys()
    for task_id, (body, part, in_row) in kept.items():
        assert type(body) is str and part is None and in_row is False      # a text, not in a row
        assert body == json.dumps(stored_tasks[task_id], cls=SERIALIZER._encoder_cls)
    assert dump_state(restored) == text
    _complete_one(restored, opinion="second")
    _assert_same(restored)


def test_the_document_walk_reads_what_json_reads_and_each_workflows_tasks_texts():
    document = ('{"data": {"tasks": {"not": "a task"}}, "tasks": {"a": {"n": 1, "s": "\\u540c\\"}"}, '
                '"b": {"l": [1, 2.5, null]}}, "subprocesses": {"s1": {"tasks": {"c": {}}, "x": [{"tasks": 1}]}}, '
                '"root": "a"}')
    dct, texts = workflows._loads_keeping_tasks(document)
    assert dct == json.loads(document)
    assert texts == {"a": '{"n": 1, "s": "\\u540c\\"}"}', "b": '{"l": [1, 2.5, null]}', "c": "{}"}


@pytest.mark.parametrize("document", [
    '{"tasks": {"a": {"n": 1}}}',
    '{"tasks": {}, "subprocesses": {}}',
    '{ "tasks" : { "a" : {} } }',                                       # not as the encoder writes it
    json.dumps({"tasks": {"a": {"n": [1, 2]}}, "subprocesses": {"s": {"tasks": {"b": {}}}}}, indent=2),
    '{"tasks": {"a\\u0022": {}}}',                                      # an escape in an id
    '{"tasks": [], "subprocesses": []}',
    '[1, 2]',
])
def test_the_document_walk_gives_what_json_loads_gives(document):
    dct, texts = workflows._loads_keeping_tasks(document)
    assert dct == json.loads(document)
    for task_id, text in (texts or {}).items():
        assert json.loads(text) == (dct["tasks"].get(task_id) or
                                    next(s["tasks"][task_id] for s in dct["subprocesses"].values() if task_id in s["tasks"]))


@pytest.mark.parametrize("document", ['{"tasks": {"a": {"n": 1}}', '{"tasks": {"a": {"n": 1}}} x', '{"tasks": {"a": }}', "",
                                      '{"tasks": {"a\nb": {}}}', '{"tasks": {"a": {"s": "x\ny"}}}',    # raw control characters
                                      '{"tasks":\u00a0{}}'])                                        # not JSON's whitespace
def test_a_broken_document_raises_what_json_loads_raises(document):
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(document)
    with pytest.raises(json.JSONDecodeError) as raised:
        workflows._loads_keeping_tasks(document)
    assert str(raised.value) == str(expected.value)


SUBPROCESS = (HEAD + '<bpmn:process id="sub" isExecutable="true"><bpmn:startEvent id="S" />'
              '<bpmn:subProcess id="Sub"><bpmn:startEvent id="SubS" /><bpmn:userTask id="A" />'
              '<bpmn:endEvent id="SubE" /><bpmn:sequenceFlow id="SF1" sourceRef="SubS" targetRef="A" />'
              '<bpmn:sequenceFlow id="SF2" sourceRef="A" targetRef="SubE" /></bpmn:subProcess>'
              '<bpmn:userTask id="B" /><bpmn:endEvent id="E" />'
              '<bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Sub" />'
              '<bpmn:sequenceFlow id="F2" sourceRef="Sub" targetRef="B" />'
              '<bpmn:sequenceFlow id="F3" sourceRef="B" targetRef="E" /></bpmn:process></bpmn:definitions>')


def test_a_restored_subprocess_keeps_its_tasks_texts_too():
    """SpiffWorkflow's restore pops each subprocess out of the document it restores."""
    parser = parse_resources([("sub.bpmn", SUBPROCESS.encode())])
    spec, subprocess_specs = parser.get_spec("sub"), parser.get_subprocess_specs("sub")
    workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=PythonScriptEngine())
    workflow.do_engine_steps()
    text = dump_state(workflow)
    restored = load_state(text, spec, subprocess_specs, PythonScriptEngine(), keep_texts=True)
    [sub] = restored.subprocesses.values()
    assert sub.tasks and all(type(t._approvals_json[1][0]) is str for t in sub.tasks.values())
    assert dump_state(restored) == text
    _complete_one(restored, opinion="in the subprocess")
    _assert_same(restored)


def test_a_migrated_document_keeps_no_texts(monkeypatch):
    """A document SpiffWorkflow migrates on reading is not what it would write now: its
    tasks are converted again, from what the migration made of them."""
    workflow, spec = _loop()
    _complete_one(workflow, opinion="first")
    text = dump_state(workflow)
    document = json.loads(text)
    document[SERIALIZER.VERSION_KEY] = "older"
    finished = next(k for k, t in document["tasks"].items() if t["state"] == TaskState.COMPLETED)

    def migrate(dct):                         # a migration that changes a task
        dct[SERIALIZER.VERSION_KEY] = SERIALIZER.VERSION
        dct["tasks"][finished]["last_state_change"] += 1.0
    monkeypatch.setattr(SERIALIZER, "migrate", migrate)
    restored = load_state(json.dumps(document), spec, {}, PythonScriptEngine(), keep_texts=True)
    assert all(type(t._approvals_json[1][0]) is dict for t in restored.tasks.values() if t.__dict__.get("_approvals_json"))
    _assert_same(restored)
    assert json.loads(dump_state(restored))["tasks"][finished]["last_state_change"] == \
        document["tasks"][finished]["last_state_change"] + 1.0
