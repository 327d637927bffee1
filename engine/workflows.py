"""SpiffWorkflow glue: serializing instances with the spec by reference, the parsed
spec cache, the live-workflow cache, and running engine steps until every branch waits.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import re
import secrets
import threading
import uuid
import weakref
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import chain
from json.encoder import encode_basestring_ascii
from typing import Callable
from weakref import WeakSet

from lxml import etree
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.event_definition import (ErrorEscalationEventDefinitionConverter,
                                                                    MessageEventDefinitionConverter)
from SpiffWorkflow.bpmn.serializer.default.task_spec import (BpmnTaskSpecConverter, MultiInstanceTaskConverter,
                                                             SubWorkflowConverter as SubWorkflowSpecConverter)
from SpiffWorkflow.bpmn.serializer.default.workflow import (BpmnEventConverter, BpmnSubWorkflowConverter,
                                                            BpmnWorkflowConverter, TaskConverter)
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from SpiffWorkflow.bpmn.specs.defaults import UserTask
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition as CatchMessageDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskIterator, TaskState

from .errors import ModelError
from .parser import SAFE_XML_PARSER, ApprovalParser
from .specs import (CalledProcess, CamundaErrorEventDefinition, CamundaParallelMultiInstance, CamundaSequentialMultiInstance,
                    EventSubprocess, ExternalTask, PassThroughTask)


# --- state JSON -----------------------------------------------------------------------
#
# An instance's state is SpiffWorkflow's own serialization, with these changes:
#   * the process spec is stored by name (specs live in the definition cache, so the
#     state stays small and parsing happens once per definition version);
#   * each task's JSON text is kept on the live workflow with what it was made from
#     (_task_key), and reused by the next command's dump while that is unchanged.  Most
#     tasks do not change in a command: the finished ones never do, and the predicted
#     ones (FUTURE, LIKELY, MAYBE) wait untouched.  Serializing the whole tree again on
#     every command made a step in a case with 500 finished tasks cost ~5x one in a
#     fresh case (bench/bench_flatness.py), and converting the ~20 predicted tasks of a
#     five-department review was a third of every dump (bench/bench_overhead.py).
#   * a finished task that stays unchanged is sealed (_SealedTask): the next dumps take
#     its text without computing its key, until something it depends on changes;
#   * a sealed task whose text is in its row is settled (_TaskMap): the dump of a case
#     kept in rows, and the scans for open tasks, pass it by;
#   * a case whose variables have declared types (engine/variable_types.py) keeps them
#     as "declared_types", a key SpiffWorkflow does not read.
#
# The output is byte for byte what SpiffWorkflow writes, with that key (APPROVALS_CHECK_STATE=1,
# set by the test suite, compares the two on every dump).

_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)
_SPLICE_TOKEN = "\x00tasks-" + secrets.token_hex(8) + "-"
_splices: ContextVar[dict | None] = ContextVar("approvals_state_splices", default=None)
_skip_settled: ContextVar[bool] = ContextVar("approvals_skip_settled", default=False)     # dump_stored, see _TaskMap
_restored_ids: ContextVar[dict | None] = ContextVar("approvals_restored_ids", default=None)   # load_state, see _uuid
CHECK_STATE = os.environ.get("APPROVALS_CHECK_STATE") == "1"


def _content(values: dict):
    """`values` as a comparable tuple if it holds only scalars or lists of scalars
    (nothing SpiffWorkflow's shallow data copies could share with a running task), else
    None.  Equal tuples mean equal JSON: every value carries its type ([1] is not [1.0]),
    and floats compare by repr (0.0 is not -0.0)."""
    items = []
    for key, value in values.items():
        kind = type(value)
        if kind is list or kind is tuple:
            # in C where it can be: a multi-instance task lists every round it merged
            kinds = set(map(type, value))
            if not kinds <= _SCALAR_TYPES:
                return None
            if float in kinds:
                value = ("mixed", tuple((type(v), repr(v) if type(v) is float else v) for v in value))
            elif len(kinds) == 1:
                value = ("all", *kinds, tuple(value))
            else:
                value = ("mixed", tuple(zip(map(type, value), value)))
        elif not isinstance(value, _SCALARS):
            return None
        elif kind is float:
            value = repr(value)
        items.append((key, kind, value))
    return tuple(items)


class _PlainCopies:
    """Copies (copy, copy.copy, deepcopy, pickle) of a watching container are of its
    plain type (`_plain`): a copy is nobody's to watch."""

    __slots__ = ()
    _plain: type

    def copy(self):
        return self._plain(self)

    def __copy__(self):
        return self._plain(self)

    def __deepcopy__(self, memo):
        return copy.deepcopy(self._plain(self), memo)

    def __reduce__(self):
        return self._plain, (self._plain(self),)


class _WatchedDict(_PlainCopies, dict):
    """A finished task's data (or internal data) that keeps its _content until changed.

    A finished task's data hardly ever changes, but it can (a test edits it, a value set
    on the case).  Every change through the dict's methods drops the kept content and
    unseals the task it was made for (its owner, see _SealedTask); only dicts whose values
    are all immutable are watched, since a list inside could change without the dict
    seeing it.  Copies are plain dicts."""

    __slots__ = ("content", "owner")
    _plain = dict

    def __init__(self, values: dict, content: tuple, owner) -> None:
        super().__init__(values)
        self.content, self.owner = content, owner

    def _changed(self) -> None:
        self.content = None
        _unseal(self.owner)


def _watch(cls, methods) -> None:
    """Make each of `methods` (mutators of the type `cls` derives from) call
    `cls._changed` before it changes anything."""
    def wrap(method):
        def changing(self, *args, **kwargs):
            self._changed()
            return method(self, *args, **kwargs)
        changing.__name__ = method.__name__
        return changing
    for method in methods:
        setattr(cls, method.__name__, wrap(method))


_watch(_WatchedDict, (dict.__setitem__, dict.__delitem__, dict.__ior__, dict.update, dict.pop, dict.popitem,
                      dict.setdefault, dict.clear))


_FINISHED = TaskState.FINISHED_MASK


class _SealedTask(Task):
    """A finished task whose JSON text is known: a dump takes the text without looking
    at the task (see _task_bodies).  Everything its text depends on turns it back into a
    plain Task when it changes:
      * any attribute set on it (its state, data, children, parent...);
      * a change in place to its children list (_SealedChildren) or to its data or
        internal data (_WatchedDict, of which it is the owner);
      * a change of its parent's data, which its text stores a delta against: the parent
        keeps its sealed children (weakly) with the content they were sealed against
        (`_approvals_child_base`), and a dump that finds the parent's data changed
        unseals those whose delta it changes (_unseal_children): a multi-instance task
        whose rounds write different data changes at every round, and most rounds'
        deltas stay the same.
    A case with 500 finished tasks spent a third of each command computing every task's
    key (bench/bench_flatness.py)."""

    __slots__ = ()

    @property
    def __class__(self):                    # to everyone but type(): serializers look converters up by it
        return Task

    def __setattr__(self, name, value):
        _unseal(self)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        _unseal(self)
        object.__delattr__(self, name)

    def __reduce_ex__(self, protocol):      # a copy is a plain Task, and so is this one from now on
        _unseal(self)
        return Task.__reduce_ex__(self, protocol)


_SET_CLASS = object.__dict__["__class__"].__set__        # past _SealedTask's __class__ property


def _unseal(task) -> None:
    """Make a sealed task a plain Task again, before anything of it changes; a settled
    one goes back among its workflow's unsettled tasks, noting the state it had
    (`_approvals_reopened`: the activity projection compares with it when the snapshot
    before the command left the task out)."""
    if type(task) is not _SealedTask:
        return
    _SET_CLASS(task, Task)
    fields = task.__dict__
    if fields.pop("_approvals_settled", False):
        workflow = fields["workflow"]
        tasks = workflow.tasks
        if type(tasks) is _TaskMap and tasks.get(task.id) is task:
            tasks.unsettled[id(task)] = task
            tasks.reopens += 1
            fields["_approvals_reopened"] = fields["_state"]


class _SealedChildren(_PlainCopies, list):
    """A sealed task's list of child ids: a change in place unseals the task.  Copies
    are plain lists."""

    __slots__ = ("task",)
    _plain = list

    def __init__(self, ids=(), task=None) -> None:      # (ids) alone, as SpiffWorkflow's registry rebuilds lists
        super().__init__(ids)
        self.task = task

    def _changed(self) -> None:
        _unseal(self.task)


_watch(_SealedChildren, (list.append, list.extend, list.insert, list.remove, list.pop, list.clear, list.sort,
                         list.reverse, list.__setitem__, list.__delitem__, list.__iadd__, list.__imul__))


class _TaskMap(_PlainCopies, dict):
    """An ApprovalWorkflow's tasks by id, which also keeps, in `unsettled` (id() of the
    task -> task: a UUID's hash is Python code), those that are not settled.  A settled
    task is sealed and its text is the one in its row (_mark_stored): nothing of it
    changes until it is unsealed, which puts it back (_unseal).  Settled tasks are
    finished, so the scans for READY, WAITING and open tasks (open_tasks), the snapshot
    of the projections and the rows' dump pass them by: each visited all ~600 tasks of a
    case with 500 finished ones, several times a command (bench/bench_flatness.py).
    Copies are plain dicts."""

    __slots__ = ("unsettled", "reopens")
    _plain = dict

    def __init__(self, tasks=()) -> None:
        super().__init__(tasks)
        self.reopens = 0                    # settled tasks put back (_unseal), ever
        self._index()

    def _index(self) -> None:
        self.unsettled = {id(task): task for task in dict.values(self)
                          if not (type(task) is _SealedTask and task.__dict__.get("_approvals_settled"))}

    def __setitem__(self, task_id, task) -> None:
        size = len(self)
        there = dict.setdefault(self, task_id, task)        # one hash of the id, as a plain set
        if len(self) > size:
            self.unsettled[id(task)] = task
        elif there is not task:             # another task under this id: not SpiffWorkflow's way
            dict.__setitem__(self, task_id, task)
            self._forget(there)
            self._index()

    def __delitem__(self, task_id) -> None:
        self.pop(task_id)

    def pop(self, task_id, *default):
        task = dict.pop(self, task_id, _MISSING)
        if task is _MISSING:
            if default:
                return default[0]
            raise KeyError(task_id)
        self._forget(task)
        return task

    def popitem(self):
        task_id, task = dict.popitem(self)
        self._forget(task)
        return task_id, task

    def _forget(self, task) -> None:
        """A task out of the workflow loses its place among the unsettled, its seal and its
        text (dump_stored deletes its row): put back, it is dumped and stored anew."""
        self.unsettled.pop(id(task), None)
        if isinstance(task, Task):
            _unseal(task)
            task.__dict__.pop("_approvals_json", None)

    def setdefault(self, task_id, task=None):
        if task_id not in self:
            self[task_id] = task
        return self[task_id]

    def update(self, *args, **kwargs) -> None:
        for task_id, task in dict(*args, **kwargs).items():
            self[task_id] = task

    def __ior__(self, other):
        self.update(other)
        return self

    def clear(self) -> None:
        tasks = list(dict.values(self))
        dict.clear(self)
        for task in tasks:
            self._forget(task)


def _settle(task) -> None:
    """A sealed task of an ApprovalWorkflow whose text is now in its row leaves the
    workflow's unsettled tasks."""
    fields = task.__dict__
    tasks = fields["workflow"].tasks
    if type(tasks) is _TaskMap and tasks.unsettled.pop(id(task), None) is task:
        fields["_approvals_settled"] = True


def _unsettled(tasks: dict):
    """The tasks of one workflow's map but the settled ones (all of a plain dict's)."""
    return tasks.unsettled.values() if type(tasks) is _TaskMap else tasks.values()


def open_tasks(workflow: BpmnWorkflow):
    """Every task of the instance that may be READY, STARTED or WAITING (or anything
    but finished): all but the settled ones, subprocesses included."""
    own = _unsettled(workflow.tasks)
    if not workflow.subprocesses:
        return own
    return chain(own, *(sub.tasks.values() for sub in workflow.subprocesses.values()))


# Tasks are sealed in a case with this many (in one workflow or subprocess).  The
# five-department review (~30 tasks, 4 of them sealed per dump) completed 2-3 % slower
# with every case sealing (bench/bench_overhead.py).
SEAL_FROM = 50


class _ChildBase(list):
    """A parent's [data content its sealed children were sealed against, those children
    (weakly), their values by key (_candidates), references indexed].  A copy has no
    sealed children (copying a sealed task unseals it, and weak references do not
    pickle)."""

    __slots__ = ()

    def __reduce__(self):
        return _child_base, (self[0],)


def _child_base(content) -> _ChildBase:
    return _ChildBase((content, WeakSet(), {}, 0))


def _seal(task, body: tuple, parent_content) -> None:
    """Seal a finished task whose text is `body` (its entry in _task_bodies), computed
    against its parent's data content `parent_content`, if its data dicts are its own
    watched ones."""
    fields = task.__dict__
    data, internal = fields["data"], fields["internal_data"]
    if (type(data) is not _WatchedDict or data.owner is not task or data.content is None
            or type(internal) is not _WatchedDict or internal.owner is not task or internal.content is None):
        return
    parent = task.workflow.tasks.get(task._parent)
    if parent is None:
        return
    base = parent.__dict__.get("_approvals_child_base")
    if base is None:
        base = parent.__dict__["_approvals_child_base"] = _child_base(parent_content)
    elif not (base[0] is parent_content or base[0] == parent_content):
        return                              # sealed children with another base: left to the next dump
    base[1].add(task)
    if base[2]:
        _index_child(base, task, data)
    fields["_approvals_sealed"] = body
    children = fields["_children"]
    if type(children) is not _SealedChildren or children.task is not task:
        fields["_children"] = _SealedChildren(children, task)
    _SET_CLASS(task, _SealedTask)
    if body[3] is None:                     # its text is already the one in its row (restored from it)
        _settle(task)


def _unseal_children(task, content, stale: list) -> None:
    """Where the task's data content is no longer the one its sealed children were sealed
    against, unseal those whose delta it changes (_same_view); their sealed entries go to
    `stale`."""
    fields = task.__dict__
    base = fields["_approvals_child_base"]       # _ChildBase
    old = base[0]
    if content is not None and (content is old or content == old):
        return
    changed = None if content is None else _changed_keys(old, content)
    data, sealed = task.data, base[1]
    candidates = None if changed is None else _candidates(base, old, data, changed)
    for child in (list(sealed) if candidates is None else candidates):
        if type(child) is not _SealedTask:
            sealed.discard(child)
        elif content is None or not _same_view(child, data, changed):
            stale.append(child.__dict__["_approvals_sealed"])
            _unseal(child)
            sealed.discard(child)
    if content is None:
        del fields["_approvals_child_base"]
    else:
        base[0] = content


def _candidates(base: list, old: tuple, data: dict, changed: list) -> list | None:
    """The sealed children whose delta a change of the parent's `changed` keys (from the
    content `old` to the data `data`) may change: a child's key is in its delta if its
    value differs from the parent's, so only the children holding the old or the new
    value may flip.  They are found in an index of the children's values by key, built
    on first use and grown as children are sealed; None (look at every child) where a
    value is not a plain scalar.  Rounds of a multi-instance task that each write an
    opinion of their own change the parent's data at every round: looking at all 500
    rounds took a fifth of a command (bench/bench_flatness.py)."""
    before = {key: (kind, value) for key, kind, value in old}
    index, found = base[2], {}
    for key in changed:
        kind, old_value = before[key]
        new_value = data[key]
        if kind not in _SCALAR_TYPES or type(new_value) not in _SCALAR_TYPES:
            return None
        if kind is float:
            old_value = float(old_value)    # kept as its repr
        by_value = index.get(key)
        if by_value is None:
            by_value = index[key] = {}
            for child in list(base[1]):
                if type(child) is _SealedTask:
                    _index_value(base, by_value, child, child.__dict__["data"].get(key, _MISSING))
        if _UNINDEXED in by_value:
            return None
        for value in (old_value, new_value):
            for ref in by_value.get(value, ()):
                child = ref()
                if child is not None:
                    found[id(child)] = child
    if base[3] > len(index) * (2 * len(base[1]) + 64):    # references to children unsealed since: start again
        base[2], base[3] = {}, 0
    return list(found.values())


def _index_child(base: list, task, data: dict) -> None:
    for key, by_value in base[2].items():
        _index_value(base, by_value, task, data.get(key, _MISSING))


def _index_value(base: list, by_value: dict, task, value) -> None:
    kind = type(value)
    if kind in _SCALAR_TYPES:
        by_value.setdefault(value, []).append(weakref.ref(task))
        base[3] += 1
    elif kind is not tuple and value is not _MISSING:
        # a subclass of a scalar (an IntEnum...) may equal the parent's value in ways the
        # index cannot tell: this key's changes look at every child.  A tuple never
        # equals a scalar
        by_value[_UNINDEXED] = True


_UNINDEXED = object()


def _changed_keys(old: tuple, new: tuple) -> list | None:
    """The keys whose values differ between two _content tuples of the same keys in the
    same order; None if the keys differ."""
    if len(old) != len(new) or any(a[0] != b[0] for a, b in zip(old, new)):
        return None
    return [b[0] for a, b in zip(old, new) if a != b]


def _delta_view(parent_data: dict, data: dict) -> tuple:
    """What a task's stored delta takes from its parent's data: which of the task's keys
    the parent lacks or holds with another value (DeepMerge.get_updated_keys), and which
    of the parent's keys the task lacks (get_deleted_keys)."""
    return (tuple(key for key in data if key not in parent_data or data[key] != parent_data[key]),
            tuple(key for key in parent_data if key not in data))


def _same_view(task, parent_data: dict, changed: list | None) -> bool:
    """Whether the task's delta against `parent_data` is the one its cached text has
    (`_approvals_view`: the delta it was made with).  With `changed` (the parent's keys
    are the same, in the same order, and only these have other values) only those keys
    are compared."""
    view = task.__dict__.get("_approvals_view")
    if view is None:
        return False
    data, (updated, deleted) = task.data, view
    if changed is None:
        return _delta_view(parent_data, data) == (tuple(updated), deleted)
    for key in changed:
        if key in data and (key in updated) != (data[key] != parent_data[key]):
            return False
    return True


def _kept_content(task, name: str):
    """_content of the task's data (name "data") or internal data ("internal_data").
    A finished task's comparable dict of immutable values is replaced by a _WatchedDict
    holding it, so the next dumps read it instead of going through the values again (a
    case with 500 finished tasks, bench/bench_flatness.py)."""
    values = getattr(task, name)
    if type(values) is _WatchedDict:
        content = values.content
        if content is not None:
            return content
    content = _content(values)
    if (content is not None and task._state & _FINISHED and task._parent is not None
            and all(kind is not list for _, kind, _ in content)):
        setattr(task, name, _WatchedDict(values, content, task))
    return content


def _task_key(task, contents):
    """Everything a task's JSON depends on besides what never changes (its id, parent and
    spec), or None if its data holds a value that cannot be compared safely.  Its data is
    stored as a delta against its parent's, which may change (a multi-instance body
    collects its rounds): the parent's data is part of the key.  A key that changed only
    there is looked at again by _only_parent_moved, which compares the delta itself."""
    # `contents` (id() of a task id -> that task's data's _content) serves the task's own
    # key and its children's.  A parent comes before its children in the workflow's
    # tasks, and a child's _parent is its parent's id object while the workflow lives:
    # looked up by id(), a UUID is not hashed (in Python) for every task
    values = task.data                      # a watched dict's content, without a call
    data = values.content if type(values) is _WatchedDict else None
    if data is None:
        data = _kept_content(task, "data")
    contents[id(task.id)] = data
    values = task.internal_data
    internal = values.content if type(values) is _WatchedDict else None
    if internal is None:
        internal = _kept_content(task, "internal_data")
    if data is None or internal is None:
        return None
    parent_id = task._parent
    if parent_id is None:
        content = None                          # the root stores its data whole
    else:
        content = contents.get(id(parent_id), _MISSING)
        if content is _MISSING:
            parent = task.parent
            content = None if parent is None else _kept_content(parent, "data")
            contents[id(parent_id)] = content
        if content is None:
            return None
    return (task._state, task.last_state_change, task.triggered, tuple(task._children), data, internal, content)


_MISSING = object()


def _uuid(text: str) -> uuid.UUID:
    """UUID(text), one object per id while load_state restores a workflow: a task's id
    is written four times (its key, its own "id", its children's "parent", its parent's
    "children"), and parsing a UUID is Python code (a fifth of restoring the
    five-department review, bench/bench_overhead.py "cache off").  A child's _parent is
    then its parent's very id object, as in a live workflow (_task_key relies on it)."""
    ids = _restored_ids.get()
    if ids is None:
        return uuid.UUID(text)
    found = ids.get(text)
    if found is None:
        found = ids[text] = uuid.UUID(text)
    return found


class _SplicedTasks:
    """WorkflowConverter.to_dict with the tasks as a placeholder: dump_state splices in
    their JSON, dump_stored hands them over as rows."""

    def mapping_from_dict(self, mapping, key_class=None, **kwargs):
        if key_class is uuid.UUID:              # the tasks by id
            return {_uuid(k): self.registry.restore(v, **kwargs) for k, v in mapping.items()}
        return super().mapping_from_dict(mapping, key_class, **kwargs)

    def set_default_attributes(self, workflow, dct):
        data = dct.pop("data", {})
        super().set_default_attributes(workflow, dct)
        workflow.data = self.registry.restore_data(data)

    def workflow_to_dict(self, workflow) -> dict:
        splices = _splices.get()
        if splices is None:                  # a plain to_dict (not through dump_state)
            tasks = self.mapping_to_dict(workflow.tasks)
        else:
            tasks = f"{_SPLICE_TOKEN}{len(splices)}"
            splices[tasks] = (workflow, self._task_bodies(workflow))
        return {
            "data": self.registry.convert(self.registry.clean(workflow.data)),
            "correlations": workflow.correlations,
            "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
            "success": workflow.success,
            "completed": workflow.completed,
            "tasks": tasks,
            "root": str(workflow.task_tree.id),
        }

    def _task_bodies(self, workflow) -> list:
        """(task id, the task's JSON text, '"<id>": <text>', the task or None) for every
        task, in the workflow's order; for dump_stored (_skip_settled), every task but
        the settled ones (_TaskMap), whose texts are in their rows.  None: the text is
        the one stored in the task's row, as dump_stored marked it (or the load found
        it), so dump_stored skips it; a dump_state in between marks nothing."""
        bodies, contents, stale = [], {}, []
        encoder = SERIALIZER._encoder_cls
        tasks = workflow.tasks
        # not on a workflow's first dump: a workflow restored for one command (the cache
        # off, or another process's) would pay ~1 us a task for nothing.  Not in a small
        # case either, where computing the keys costs less than sealing
        seal = len(tasks) >= SEAL_FROM and workflow.__dict__.get("_approvals_dumped", False)
        skip = type(tasks) is _TaskMap and _skip_settled.get()
        items = [(task.id, task) for task in tasks.unsettled.values()] if skip else tasks.items()
        reopens = tasks.reopens if skip else 0
        for task_id, task in items:
            if type(task) is _SealedTask:       # unchanged, or it would not be sealed
                bodies.append(task.__dict__["_approvals_sealed"])
                continue
            key = _task_key(task, contents)
            fields = task.__dict__
            if "_approvals_child_base" in fields:
                _unseal_children(task, contents[id(task.id)], stale)
            hit = fields.get("_approvals_json")
            if key is not None and hit is not None and (hit[0] == key or _only_parent_moved(task, hit[0], key)):
                entry = hit[1]
                if type(entry[0]) is dict:      # as restored by load_state: encode it once
                    body = json.dumps(entry[0], cls=encoder)
                    entry = (body, f'"{task_id}": {body}', False)
                    task._approvals_json = (key, entry)
                elif entry[1] is None:          # a text as loaded
                    entry = (entry[0], f'"{task_id}": {entry[0]}', entry[2])
                    task._approvals_json = (key, entry)
            else:
                dct = self.registry.convert(task)
                delta = dct["delta"]
                # the delta's updates (a dict of plain values) and deletions, in containers
                # the garbage collector stops tracking: kept as the delta dict itself, they
                # cost the review's dump ~15 us (more for the collector to go through)
                fields["_approvals_view"] = (delta["updates"], tuple(delta["deletions"])) if delta else None
                body = _encode_task(dct, task, encoder)
                entry = (body, f'"{task_id}": {body}', False)
                task._approvals_json = (key, entry) if key is not None else None
            body = (task_id, entry[0], entry[1], None if entry[2] else task)
            bodies.append(body)
            if seal and key is not None and key[0] & _FINISHED and key[6] is not None:
                _seal(task, body, key[6])
        if stale:
            # a parent comes before its children; if one did not, the pass is redone
            # rather than keep the child's old text.  So is a pass that left out a
            # settled child (unsealed now, so unsettled)
            stale_ids = {id(entry) for entry in stale}
            if (skip and tasks.reopens != reopens) or any(id(entry) in stale_ids for entry in bodies):
                return self._task_bodies(workflow)
        workflow._approvals_dumped = True
        # the settled tasks left out, for dump_stored (settled before this pass: those it
        # settled are among the bodies)
        workflow.__dict__["_approvals_skipped"] = len(tasks) - len(items) if skip else 0
        return bodies


def _only_parent_moved(task, before: tuple, key: tuple) -> bool:
    """Whether a task whose key changed only in its parent's data content still has the
    same delta (a multi-instance task whose rounds write different data changes at every
    round; each round's text changes only if its delta does).  If so, its cached text is
    kept under the new key."""
    if before[6] is key[6] or before[6] == key[6] or before[:6] != key[:6]:
        return False
    parent = task.parent
    if parent is None or not _same_view(task, parent.data, None):
        return False
    task._approvals_json = (key, task.__dict__["_approvals_json"][1])
    return True


class ReferencedSpecWorkflowConverter(_SplicedTasks, BpmnWorkflowConverter):
    def to_dict(self, workflow):
        dct = self.workflow_to_dict(workflow)
        dct["spec"] = workflow.spec.name
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        declared = workflow.__dict__.get("declared_types")
        if declared:                # only where a case has some: other states stay as they were
            dct["declared_types"] = {name: list(entry) for name, entry in declared.items()}
        return dct


class SubWorkflowConverter(_SplicedTasks, BpmnSubWorkflowConverter):
    def to_dict(self, workflow):
        dct = self.workflow_to_dict(workflow)
        dct["parent_task_id"] = str(workflow.parent_task_id)
        dct["spec"] = workflow.spec.name
        return dct


class _TaskConverter(TaskConverter):
    """SpiffWorkflow's, with a task's many children's ids converted to text once, and its
    long lists of strings in internal data copied instead of converted item by item.  A
    multi-instance task lists every round it made and every round it merged; with 500
    rounds, converting them on each dump was a third of the dump, then converting the
    merged rounds alone was half of what a dump still cost (bench/bench_flatness.py)."""

    MANY = 16

    def from_dict(self, dct, workflow):
        """SpiffWorkflow's (3.2.0), with the ids made by _uuid."""
        task_spec = workflow.spec.task_specs.get(dct["task_spec"])
        task = self.target_class(workflow, task_spec, state=dct["state"], id=_uuid(dct["id"]))
        task._parent = _uuid(dct["parent"]) if dct["parent"] is not None else None
        task._children = [_uuid(child) for child in dct["children"]]
        task.last_state_change = dct["last_state_change"]
        task.triggered = dct["triggered"]
        task.internal_data = self._internal_data(dct["internal_data"], task_spec)
        if isinstance(task_spec, CatchingEvent) and task.has_state(TaskState.WAITING):
            task.workflow.top_workflow.event_manager.add_task(task)
        delta = dct.get("delta")
        if delta and task.parent is not None:
            data = DeepMerge.merge({}, task.parent.data)
            data.update(self.registry.restore_data(delta.get("updates", {})))
            for key in delta.get("deletions", {}):
                if key in data:
                    del data[key]
        else:
            data = self.registry.restore_data(dct["data"])
        task.data = data
        return task

    def _internal_data(self, internal: dict, task_spec) -> dict:
        """A task's internal data, where a caught event keeps its payload under the event's
        name until the task takes it in: the payload is variables too (restore_data)."""
        if not internal:
            return {}
        definition = getattr(task_spec, "event_definition", None)
        if definition is None:
            return self.registry.restore_data(internal)
        names = {definition.name, *(d.name for d in getattr(definition, "event_definitions", ()))}
        return {key: self.registry.restore_data(value) if key in names else self.registry.restore(value)
                for key, value in internal.items()}

    def to_dict(self, task):
        children = task._children
        if len(children) < self.MANY:           # the merged rounds are as many as the children
            return super().to_dict(task)
        fields = task.__dict__
        internal = fields["internal_data"]
        strings = [name for name, value in internal.items()
                   if type(value) is list and len(value) >= self.MANY and not set(map(type, value)) - {str}]
        # the command owns the workflow: no one else looks.  Not through setattr, which
        # would unseal the task (_SealedTask)
        fields["_children"] = []
        if strings:
            fields["internal_data"] = {name: value for name, value in internal.items() if name not in strings}
        try:
            dct = super().to_dict(task)
        finally:
            fields["_children"], fields["internal_data"] = children, internal
        dct["children"] = _child_ids(task, children)
        if strings:                             # in the task's order, less what the registry cleans out
            converted = dct["internal_data"]
            dct["internal_data"] = {name: list(value) if name in strings else converted[name]
                                    for name, value in internal.items() if name in strings or name in converted}
        return dct


def _child_ids(task, children: list) -> list:
    """[str(id) for id in children], reusing the texts of the ids seen before (rounds are
    appended; the same id objects stay in the list while the workflow lives)."""
    seen, texts = task.__dict__.get("_approvals_child_ids", ((), []))
    n = len(seen)
    if n > len(children) or children[:n] != seen:
        n, texts = 0, []
    texts = texts + [str(child) for child in children[n:]]
    task.__dict__["_approvals_child_ids"] = (list(children), texts)      # not through setattr: it would unseal
    return list(texts)


def _encode_task(dct: dict, task, encoder) -> str:
    """json.dumps(dct, cls=encoder) for a task's dict, with its long lists of strings (a
    multi-instance task's children and the rounds it merged, 500 of each in a case with
    500 rounds: 42 kB) put together from the text kept for the part seen before."""
    lists = []
    if len(dct["children"]) >= _TaskConverter.MANY:
        lists.append((dct, "children"))
    internal = dct["internal_data"]
    names = [name for name, v in internal.items() if type(v) is list and len(v) >= _TaskConverter.MANY]
    if names:
        dct["internal_data"] = internal = dict(internal)         # not the task's own dict
        lists += [(internal, name) for name in names]
    texts = {}
    for owner, name in lists:
        text = _list_text(task, name, owner[name])
        if text is not None:
            placeholder = f"{_SPLICE_TOKEN}list-{len(texts)}"
            texts[json.dumps(placeholder)] = text
            owner[name] = placeholder
    body = json.dumps(dct, cls=encoder)
    for placeholder, text in texts.items():
        body = body.replace(placeholder, text, 1)
    return body


def _list_text(task, name: str, items: list) -> str | None:
    """The JSON text of `items` if they are all strings (as json.dumps writes it), from
    the text kept on the task for the items it had before (lists that only grow are
    encoded once per item); None for any other list."""
    kept = task.__dict__.setdefault("_approvals_lists", {})
    seen, text = kept.get(name, ((), ""))
    n = len(seen)
    if n > len(items) or items[:n] != seen:       # strings: equal is the same JSON
        n, text = 0, ""
    new = items[n:]
    if set(map(type, new)) - {str}:
        kept.pop(name, None)
        return None
    if new:
        more = ", ".join(map(encode_basestring_ascii, new))
        text = f"{text}, {more}" if text else more
    kept[name] = (list(items), text)
    return f"[{text}]"


_WALK_DEPTH = 999           # SpiffWorkflow's task iterator does not go deeper than 1000


class ApprovalWorkflow(BpmnWorkflow):
    """SpiffWorkflow's workflow, minus tree walks that would find nothing or little.

    After every task it runs, SpiffWorkflow walks the whole task tree for WAITING tasks,
    and every engine step walks it for READY ones: in a case with 500 finished tasks
    that was a third of a command (bench/bench_flatness.py).  A flat pass over the task
    dicts tells first whether a walk could find anything; only then does the walk run,
    unchanged, so what runs and in which order stays SpiffWorkflow's.  The flat pass
    leaves out the settled tasks (its tasks are a _TaskMap)."""

    def __init__(self, spec, subprocess_specs=None, script_engine=None, **kwargs):
        super().__init__(spec, subprocess_specs, script_engine, **kwargs)
        if not kwargs.get("deserializing"):         # restored: the converter sets the tasks
            self.tasks = _TaskMap(self.tasks)

    def collect_log_extras(self, dct: dict | None = None) -> dict:
        """SpiffWorkflow's log extras, only when its log takes INFO (see quiet_spiffworkflow_logs)."""
        if _WORKFLOW_LOG.isEnabledFor(logging.INFO):
            return super().collect_log_extras(dct)
        return {} if dct is None else dct

    def _do_engine_steps(self, will_complete_task=None, did_complete_task=None):
        # with an active subprocess SpiffWorkflow also updates the task that called it
        if not self.get_active_subprocesses() and not _automatic_ready(self):
            return False
        return super()._do_engine_steps(will_complete_task, did_complete_task)

    def update_waiting_tasks(self) -> None:
        waiting = TaskState.WAITING
        for task in _unsettled(self.tasks):
            if task._state == waiting:
                _update_waiting(self)
                return

    def get_tasks(self, first_task=None, **kwargs) -> list:
        """A parallel join asks for every task of its spec (get_tasks(spec_name=...)) each
        time it is updated, twice per completion in a parallel review: a walk of the whole
        tree, 13 % of a completion (bench/bench_overhead.py).  Those few tasks are found
        in the task dict and put in the walk's order (depth first, children in order)."""
        if first_task is None and len(kwargs) == 1 and "spec_name" in kwargs and not self.subprocesses:
            found = self._by_spec_name(kwargs["spec_name"])
            if found is not None:
                return found
        return super().get_tasks(first_task, **kwargs)

    def _by_spec_name(self, name: str) -> list | None:
        """The tasks of spec `name` in SpiffWorkflow's walk order, or None where the walk
        might differ (a task it would not reach: detached, or deeper than its limit)."""
        root, placed = self.task_tree, []
        for task in self.tasks.values():
            if task.task_spec.name != name:
                continue
            path, node = [], task
            while node is not root:
                parent = node.parent
                if parent is None or len(path) >= _WALK_DEPTH:
                    return None
                try:
                    path.append(parent._children.index(node.id))
                except ValueError:
                    return None
                node = parent
            path.reverse()
            placed.append((path, task))
        placed.sort(key=lambda entry: entry[0])
        return [task for _, task in placed]


_WORKFLOW_LOG, _TASK_LOG = logging.getLogger("spiff.workflow"), logging.getLogger("spiff.task")
_spiff_task_log_extras = Task.collect_log_extras


def _task_log_extras(self, dct: dict | None = None) -> dict:
    if _TASK_LOG.isEnabledFor(logging.INFO) or not isinstance(getattr(self.workflow, "top_workflow", None),
                                                             ApprovalWorkflow):
        return _spiff_task_log_extras(self, dct)
    return {} if dct is None else dct


def quiet_spiffworkflow_logs() -> None:
    """SpiffWorkflow builds the extras of a log record (spec and task names, state name,
    parent id; with its logger's own level unset, every task's id and data too) at every
    task state change and when a workflow starts, before the logger decides to drop the
    record: ~6 µs a state change, and a walk of the tree when a case starts; 0.43 ms over
    a five-department review's start and five completions, 1-2 % of a completion and 1-4 %
    of a start side by side (bench/TUNING.md).  The engine's workflows build them only
    when `spiff.task` / `spiff.workflow` take INFO, as `app.py` sets them not to (the
    audit trail records what happened to a case); records at WARNING and above are not
    affected, and other workflows in the process (bench/bench_overhead.py's bare
    SpiffWorkflow) keep SpiffWorkflow's own behaviour.  Installed by the engine, once per
    process, as `timers.route_spiffworkflow_clock`."""
    Task.collect_log_extras = _task_log_extras


def _update_waiting(workflow) -> None:
    """SpiffWorkflow's `Workflow.update_waiting_tasks`, with a faster walk where the tree
    is smaller than the walk's depth limit.  In the test suite (APPROVALS_CHECK_STATE=1)
    SpiffWorkflow's own iterator runs in lockstep, seeing the same updates, and every task
    the two walks give must be the same one."""
    root = workflow.task_tree
    if len(workflow.tasks) >= _WALK_DEPTH:
        walk = TaskIterator(root, state=TaskState.WAITING)
    else:
        walk = _waiting_in_walk_order(root)
    theirs = TaskIterator(root, state=TaskState.WAITING) if CHECK_STATE else None
    for task in walk:
        if theirs is not None and next(theirs, None) is not task:
            raise AssertionError(f"the walk for waiting tasks reached {task.task_spec.name} where "
                                 "SpiffWorkflow's reached another task")
        task.task_spec._update(task)
    if theirs is not None and next(theirs, None) is not None:
        raise AssertionError("SpiffWorkflow's walk for waiting tasks found a task this one did not")


def _waiting_in_walk_order(root):
    """What SpiffWorkflow's `TaskIterator(root, state=TaskState.WAITING)` yields, in its
    order and as lazily (`Workflow.update_waiting_tasks` updates each task before the walk
    goes on, and the walk sees what the update changed, as SpiffWorkflow's does): depth
    first, into the children of every task that is not predicted.  For a tree of fewer
    tasks than the iterator's depth limit, which it then never reaches: the tasks a walk
    expands were in the tree when it began (an update changes the updated task's own
    branch, whose children the walk has already taken), so it counts no depth.
    SpiffWorkflow's iterator also pops the front of a list, prepends every task's
    children to the rest and climbs the parents after every leaf to keep its count: ~0.4
    ms a command in the review with a boundary timer on each task, where some task always
    waits (bench/TUNING.md).  This one keeps the same list reversed, as a stack."""
    waiting, definite = TaskState.WAITING, TaskState.FUTURE
    stack = [root]
    while stack:
        task = stack.pop()
        if task._children and task._state >= definite:
            get = task.workflow.tasks.get            # Task.children, in reverse
            stack.extend([get(child) for child in reversed(task._children)])
        if task._state & waiting and task.last_state_change >= 0:
            yield task


class _ApprovalWorkflowConverter(ReferencedSpecWorkflowConverter):
    """Restores ApprovalWorkflow, under SpiffWorkflow's own type name."""

    def __init__(self, target_class, registry, typename=None):
        super().__init__(target_class, registry, typename="BpmnWorkflow")

    def from_dict(self, dct):
        declared = dct.pop("declared_types", None)
        workflow = super().from_dict(dct)
        workflow.tasks = _TaskMap(workflow.tasks)
        if declared:
            workflow.declared_types = {name: tuple(entry) for name, entry in declared.items()}
        return workflow


class _CatchMessageConverter(MessageEventDefinitionConverter):
    """Message catch events use SpiffWorkflow's standard message definition (engine/parser.py),
    which its camunda configuration does not convert.  A state holds one where an event-based
    gateway keeps the events it saw: the first message it caught made the dump fail (a 500
    on POST /message, the case unchanged but never able to take the message).  Its own type
    name: the camunda definition's converter already answers to "MessageEventDefinition"."""

    def __init__(self, target_class, registry, typename=None):
        super().__init__(target_class, registry, typename="CatchMessageEventDefinition")


class _ErrorConverter(ErrorEscalationEventDefinitionConverter):
    """engine/specs.py's error, with its message and the variables a catch sets."""

    def to_dict(self, event_definition):
        return {**super().to_dict(event_definition), "message": event_definition.message,
                "code_variable": event_definition.code_variable, "message_variable": event_definition.message_variable}


class _EventConverter(BpmnEventConverter):
    """SpiffWorkflow's, with an event's payload restored variable by variable (restore_data):
    an event-based gateway keeps the events it caught in its internal data ("seen_events"),
    and a message whose variables were named "typename" and "value" was restored as a typed
    value there (a 500 on every command once the case left the workflow cache)."""

    def from_dict(self, dct):
        return self.target_class(self.registry.restore(dct["event_definition"]),
                                 self.registry.restore_data(dct["payload"]),
                                 self.mapping_from_dict(dct["correlations"]))


def _serializer_config() -> dict:
    config = dict(CAMUNDA_CONFIG)
    config[CatchMessageDefinition] = _CatchMessageConverter
    config[BpmnEvent] = _EventConverter
    config[BpmnWorkflow] = ReferencedSpecWorkflowConverter
    config[Task] = _TaskConverter
    config[ApprovalWorkflow] = _ApprovalWorkflowConverter        # after BpmnWorkflow: it restores
    config[BpmnSubWorkflow] = SubWorkflowConverter
    # Every spec class of ours needs a converter (SpiffWorkflow has none for them).
    config[UserTask] = BpmnTaskSpecConverter
    config[PassThroughTask] = BpmnTaskSpecConverter
    config[ExternalTask] = BpmnTaskSpecConverter
    config[CalledProcess] = SubWorkflowSpecConverter
    config[EventSubprocess] = SubWorkflowSpecConverter
    config[CamundaErrorEventDefinition] = _ErrorConverter
    config[CamundaParallelMultiInstance] = MultiInstanceTaskConverter
    config[CamundaSequentialMultiInstance] = MultiInstanceTaskConverter
    return config


class _Registry(DefaultRegistry):
    """SpiffWorkflow's registry, except that a dict whose "typename" names no type it
    restores is data, restored as a dict: SpiffWorkflow's own restore calls None on it, so
    a variable such as {"typename": "Invoice"} made every command on its case fail once
    the case was restored from its stored state.  The typenames it does restore are
    refused where values come in (engine/variables.py `unstorable_shape`)."""

    _PLAIN = frozenset({str, int, float, bool, type(None)})

    def restore(self, val, **kwargs):
        # SpiffWorkflow's order of tests, its dicts and plain values handled here (an extra
        # call per value through super() made restoring a case a fifth slower)
        kind = type(val)
        if kind in self._PLAIN:
            return val
        if kind is dict:
            if "typename" in val:
                typename = val["typename"]
                from_dict = self.convert_from_dict.get(typename) if type(typename) is str else None
                if from_dict is not None:
                    dct = dict(val)
                    del dct["typename"]
                    return from_dict(dct, **kwargs)
            return {k: self.restore(v, **kwargs) for k, v in val.items()}
        return super().restore(val, **kwargs)

    def restore_data(self, data):
        """A workflow's or a task's data, or an event's payload: a dict of variables, whatever
        their names (two variables named "typename" and "value" are not a typed value); any
        other value as restore does."""
        if type(data) is not dict:
            return self.restore(data)
        return {name: self.restore(value) for name, value in data.items()}


SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_serializer_config(), _Registry()))


def _dump(workflow: BpmnWorkflow, skip_settled: bool = False) -> tuple[str, dict]:
    """The state JSON with a placeholder string for each workflow's tasks, and the
    placeholders: placeholder -> (workflow, its task bodies).  `skip_settled`: the
    bodies leave out settled tasks (_TaskMap)."""
    splices: dict = {}
    token, skip_token = _splices.set(splices), _skip_settled.set(skip_settled)
    try:
        with _encoding():
            dct = SERIALIZER.to_dict(workflow)
            dct[SERIALIZER.VERSION_KEY] = SERIALIZER.VERSION
            text = json.dumps(dct, cls=SERIALIZER._encoder_cls)
    finally:
        _splices.reset(token)
        _skip_settled.reset(skip_token)
    return text, splices


@contextmanager
def _encoding():
    """SpiffWorkflow's registry in the mode its JSON encoder converts typed values in."""
    registry = SERIALIZER.registry
    registry._encoder_mode = True
    try:
        yield
    finally:
        registry._encoder_mode = False


def check_storable(data: dict) -> None:
    """Raise TypeError or ValueError where the state document could not hold `data`
    (SpiffWorkflow's encoder refuses a dict keyed by a tuple, say): what the command
    that ends a case, which writes no document, checks of the data it ends with."""
    with _encoding():
        json.dumps(data, cls=SERIALIZER._encoder_cls)


def unstorable(workflow: BpmnWorkflow, err: Exception) -> ModelError | None:
    """The command's error when its state cannot be stored: the variables at fault, by
    name; None when no variable fails on its own (the error is the engine's, not the
    data's, and stays a server error with its traceback)."""
    names = set()
    datas = [workflow.data, *(sub.data for sub in workflow.subprocesses.values()),
             *(task.data for task in iter_all_tasks(workflow))]
    for data in datas:
        for name, value in data.items():
            if name not in names:
                try:
                    check_storable({name: value})
                except (TypeError, ValueError):
                    names.add(name)
    if not names:
        return None
    return ModelError(f"variable{'s' if len(names) > 1 else ''} {', '.join(sorted(names))} cannot be stored: "
                      f"{err}. A script or an output mapping must leave JSON values (a dict's keys strings, "
                      "numbers, booleans or null), datetimes, timedeltas or UUIDs", variables=sorted(names))


def _spliced(text: str, splices: dict) -> str:
    for placeholder, (_, bodies) in splices.items():
        tasks = "{" + ", ".join(part for _, _, part, _ in bodies) + "}"
        text = text.replace(json.dumps(placeholder), tasks, 1)
    return text


def _whole(workflow, text: str, splices: dict) -> str:
    """The state JSON with every task in it; in check mode (the test suite) compared with
    SpiffWorkflow's own serialization of the workflow."""
    text = _spliced(text, splices)
    if CHECK_STATE and text != SERIALIZER.serialize_json(workflow):
        raise AssertionError("the state JSON spliced from cached task texts differs from SpiffWorkflow's")
    return text


def dump_state(workflow: BpmnWorkflow) -> str:
    """SpiffWorkflow's serialization of `workflow` (with the spec by name), in one text."""
    return _whole(workflow, *_dump(workflow))


# A case with this many tasks keeps them as instance_task rows; a smaller one keeps them
# inside its state JSON.  Rows make a command write what it changed instead of the whole
# state, but they are one or two statements more: a five-department review (~20 tasks)
# completed 5 % (SQLite) to 15 % (PostgreSQL) slower with rows, a case with 500 finished
# tasks 4 % (SQLite) to 29 % (PostgreSQL) faster (bench/bench_flatness.py).
ROWS_FROM = int(os.environ.get("APPROVALS_STATE_ROWS_FROM", "100"))


@dataclass
class StoredState:
    """What a command writes: the state JSON (whole, or with empty "tasks" mappings once
    the case keeps its tasks in rows) and the instance_task rows that changed since the
    workflow was loaded or last stored."""
    document: str
    inserts: list = field(default_factory=list)       # dicts: task_id, workflow_id, seq, body
    updates: list = field(default_factory=list)       # (task id, body)
    deletes: list = field(default_factory=list)       # task ids


def dump_stored(workflow: BpmnWorkflow) -> StoredState:
    """The state of `workflow` as it is to be written.  Once its tasks are rows, the
    workflow remembers what it handed out (`_approvals_stored`: task id -> (seq, body))
    as stored: a command's workflow is dropped, not reused, when its transaction does
    not commit.  A case moves into rows once it has ROWS_FROM tasks, and stays there."""
    stored = getattr(workflow, "_approvals_stored", None)
    # a case in rows passes its settled tasks by: their texts are in their rows
    text, splices = _dump(workflow, skip_settled=bool(stored))
    if not stored and sum(len(bodies) for _, bodies in splices.values()) < ROWS_FROM:
        return StoredState(_whole(workflow, text, splices))
    stored = stored or {}
    seq = getattr(workflow, "_approvals_next_seq", 0)
    out, found, inserted = StoredState(document=""), 0, []
    for owner, _ in splices.values():           # left out of the bodies, and stored
        found += owner.__dict__.get("_approvals_skipped", 0)
    for placeholder, (owner, bodies) in splices.items():
        text = text.replace(json.dumps(placeholder), "{}", 1)
        workflow_id = str(owner.parent_task_id) if isinstance(owner, BpmnSubWorkflow) else None
        for task_id, body, _, task in bodies:
            if task is None and task_id in stored:      # its text is the one stored (see _task_bodies)
                found += 1
                continue
            before = stored.get(task_id)
            if before is None:
                out.inserts.append({"task_id": str(task_id), "workflow_id": workflow_id, "seq": seq, "body": body})
                inserted.append((task_id, (seq, body)))
                seq += 1
            else:
                found += 1
                if before[1] is not body and before[1] != body:
                    out.updates.append((str(task_id), body))
                    stored[task_id] = (before[0], body)
            if task is not None:
                _mark_stored(task, body)
    if found != len(stored):                  # some stored tasks are gone (dropped, a subprocess deleted)
        current = set(chain.from_iterable(owner.tasks for owner, _ in splices.values()))
        gone = [task_id for task_id in stored if task_id not in current]
        out.deletes = [str(task_id) for task_id in gone]
        for task_id in gone:
            del stored[task_id]
    stored.update(inserted)
    out.document = text
    workflow._approvals_stored, workflow._approvals_next_seq = stored, seq
    if CHECK_STATE:                           # the test suite: the whole state, as SpiffWorkflow writes it
        dump_state(workflow)
    return out


def _mark_stored(task, body: str) -> None:
    """Its cached text is now the one in its row (the next dump_stored skips it)."""
    fields = task.__dict__                  # not through setattr, which would unseal it
    record = fields.get("_approvals_json")
    if record is not None and record[1][0] is body:
        fields["_approvals_json"] = (record[0], (body, record[1][1], True))
        sealed = fields.get("_approvals_sealed")
        if sealed is not None and sealed[1] is body:
            fields["_approvals_sealed"] = (sealed[0], body, sealed[2], None)
            if type(task) is _SealedTask:
                _settle(task)


def load_state(state_json: str, spec, subprocess_specs: dict, script_engine, keep_texts: bool = False,
               fetch_rows: Callable[[], list] | None = None) -> BpmnWorkflow:
    """The workflow stored in `state_json`.  A document without its tasks (a case that
    keeps them in instance_task) gets them from `fetch_rows()`: rows (task_id,
    workflow_id, seq, body) in seq order; a document stored whole (a small case, or one
    stored before instance_task) needs none.  `keep_texts` (for a command, which dumps
    it again): the tasks keep the texts they were loaded from, so the next dump uses
    them instead of converting and encoding the tasks again (a case restored for every
    command: bench/bench_overhead.py and bench/bench_flatness.py "cache off")."""
    dct, texts = _loads_keeping_tasks(state_json) if keep_texts else (json.loads(state_json), None)
    task_rows = fetch_rows() if fetch_rows is not None and not dct["tasks"] else None
    if task_rows:
        texts = put_rows(dct, task_rows)
    migrated = dct.get(SERIALIZER.VERSION_KEY) != SERIALIZER.VERSION
    SERIALIZER.migrate(dct)
    dct["spec"] = spec                          # objects pass through restore unchanged
    dct["subprocess_specs"] = subprocess_specs
    subprocesses = dict(dct["subprocesses"])    # the restore pops each one it restores
    token = _restored_ids.set({})
    try:
        workflow = SERIALIZER.from_dict(dct)
    finally:
        _restored_ids.reset(token)
    workflow.script_engine = script_engine     # not serialized: re-attach every time
    if keep_texts:
        # a text is the task's JSON as converting it now would give, unless migrated
        stored = bool(task_rows) and not migrated
        for sub, loaded in chain([(workflow, dct)], ((sub, subprocesses.get(str(sub_id)))
                                                     for sub_id, sub in workflow.subprocesses.items())):
            if loaded is not None:
                _keep_loaded(sub, texts if texts is not None and not migrated else loaded["tasks"], stored)
    if task_rows:
        workflow._approvals_stored = {uuid.UUID(task_id): (seq, body) for task_id, _, seq, body in task_rows}
        workflow._approvals_next_seq = task_rows[-1][2] + 1
    return workflow


_SCAN = json.JSONDecoder().scan_once          # json.loads's own scanner (C): a value at an index
_SPACE = re.compile(r"[ \t\n\r]*")
_PLAIN_KEY = re.compile(r'[^"\\\x00-\x1f]*')    # a key's characters up to its quote, without escapes


def _loads_keeping_tasks(text: str) -> tuple[dict, dict | None]:
    """json.loads(text) of a state document, and each task's text in it (task id -> the
    JSON text of its dict, as the document has it).  The text is what encoding the dict
    again would give: SpiffWorkflow's encoder wrote it (dump_state, dump_stored), and
    json reads back what it writes.  Encoding the ~30 tasks a five-department review
    does not change in a command was an eighth of a command on a case restored from its
    document (bench/bench_overhead.py "cache off").  A document this cannot walk is left
    to json.loads (and its error), with no texts."""
    texts: dict = {}

    def workflow_member(key: str, idx: int):
        if key == "tasks" and text.startswith("{", idx):
            return _task_texts(text, idx, texts)
        return _SCAN(text, idx)

    def top_member(key: str, idx: int):
        if key == "subprocesses" and text.startswith("{", idx):
            return _json_object(text, idx, lambda _, at: _json_object(text, at, workflow_member))
        return workflow_member(key, idx)
    try:
        dct, end = _json_object(text, _SPACE.match(text).end(), top_member)
        if _SPACE.match(text, end).end() == len(text) and type(dct) is dict:
            return dct, texts
    except (ValueError, IndexError, StopIteration):   # StopIteration: the scanner found no value
        pass
    return json.loads(text), None


def _json_object(text: str, idx: int, member: Callable) -> tuple[dict, int]:
    """The JSON object at text[idx] and the index after it; `member(key, index)` reads
    each value as (value, end)."""
    if text[idx] != "{":
        raise ValueError("not an object")
    out: dict = {}
    idx = _SPACE.match(text, idx + 1).end()
    if text[idx] == "}":
        return out, idx + 1
    while True:
        if text[idx] != '"':
            raise ValueError("not a key")
        key, idx = json.decoder.scanstring(text, idx + 1)
        idx = _SPACE.match(text, idx).end()
        if text[idx] != ":":
            raise ValueError("no colon")
        out[key], idx = member(key, _SPACE.match(text, idx + 1).end())
        idx = _SPACE.match(text, idx).end()
        if text[idx] == "}":
            return out, idx + 1
        if text[idx] != ",":
            raise ValueError("no comma")
        idx = _SPACE.match(text, idx + 1).end()


def _task_texts(text: str, idx: int, texts: dict) -> tuple[dict, int]:
    """A "tasks" mapping at text[idx], as SpiffWorkflow's encoder writes it ('"<id>":
    <task>' joined by ', '), recording each task's text; anything else raises ValueError.
    _json_object with a recording member would do the same; this one reads the ~38
    members of a five-department review in 123 µs against its 150 (the whole 15 kB
    document; json.loads takes 92)."""
    out: dict = {}
    if text.startswith("{}", idx):
        return out, idx + 2
    idx += 1
    while True:
        close = _PLAIN_KEY.match(text, idx + 1).end()
        if text[idx] != '"' or text[close] != '"' or not text.startswith(": ", close + 1):
            raise ValueError("not a task id")           # or one with an escape: json.loads decides
        key = text[idx + 1:close]
        start = close + 3
        out[key], end = _SCAN(text, start)
        texts[key] = text[start:end]
        if text.startswith(", ", end):
            idx = end + 2
        elif text.startswith("}", end):
            return out, end + 1
        else:
            raise ValueError("not a tasks mapping")


def put_rows(dct: dict, task_rows: list) -> dict:
    """Fill the "tasks" mappings of `dct` from the rows; returns task id -> text."""
    texts, groups = {}, {}
    for task_id, workflow_id, _, body in task_rows:
        texts[task_id] = body
        groups.setdefault(workflow_id, []).append(f'"{task_id}": {body}')
    for workflow_id, parts in groups.items():
        target = dct if workflow_id is None else dct["subprocesses"][workflow_id]
        target["tasks"] = json.loads("{" + ", ".join(parts) + "}")
    return texts


def _keep_loaded(workflow, tasks: dict, stored: bool) -> None:
    """Seed `_task_bodies`'s cache: each task's key with the text (from its row if
    `stored`, else from the document) or dict (from a migrated document) it came from,
    which is what converting it would give as long as the key stays the same."""
    by_id = workflow.tasks                  # a child's _parent is its parent's id object (_uuid)
    contents = {}
    for task_id, task in by_id.items():
        key = _task_key(task, contents)
        if key is not None:
            loaded = tasks.get(str(task_id))
            if loaded is not None:
                task._approvals_json = (key, (loaded, None, stored))


# --- parsed specs -----------------------------------------------------------------

def parse_resources(resources: list[tuple[str, bytes]]) -> ApprovalParser:
    """Feed (filename, xml) pairs to a fresh parser; the XML is parsed safely."""
    parser = ApprovalParser()
    for filename, content in resources:
        tree = etree.fromstring(content, SAFE_XML_PARSER)
        parser.add_bpmn_xml(tree, filename)
    return parser


class SpecCache:
    """(definition id, pinned called definitions) -> (spec, subprocess specs).

    Definitions are immutable once deployed, so entries never go stale."""

    def __init__(self, max_entries: int = 512) -> None:
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get(self, key, build: Callable[[], tuple]):
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry
        entry = build()
        with self._lock:
            self._entries[key] = entry
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class WorkflowCache:
    """Live workflows by instance id and state version.

    A command *takes* the workflow out (no other thread can see it half-applied) and
    puts it back only after its transaction committed; a failed command drops it."""

    def __init__(self, size: int) -> None:
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def take(self, instance_id: str, version: int):
        with self._lock:
            entry = self._entries.pop(instance_id, None)
        if entry is not None and entry[0] == version:
            return entry[1]
        return None

    def borrow(self, instance_id: str, version: int):
        """A reader's take: only the workflow of `version` (a newer one stays for commands)."""
        with self._lock:
            entry = self._entries.get(instance_id)
            if entry is None or entry[0] != version:
                return None
            del self._entries[instance_id]
            return entry[1]

    def put(self, instance_id: str, version: int, workflow, replace: bool = True) -> None:
        """`replace=False`: a reader giving back what it borrowed, unless a command put a
        newer version meanwhile."""
        if self.size <= 0:
            return
        with self._lock:
            if not replace and instance_id in self._entries:
                return
            self._entries[instance_id] = (version, workflow)
            self._entries.move_to_end(instance_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def rekey(self, instance_id: str, old: int, new: int) -> None:
        """The row moved to version `new` without touching the workflow (a claim)."""
        with self._lock:
            entry = self._entries.get(instance_id)
            if entry is not None and entry[0] == old:
                self._entries[instance_id] = (new, entry[1])

    def drop(self, instance_id: str) -> None:
        with self._lock:
            self._entries.pop(instance_id, None)


# --- running ----------------------------------------------------------------------

def describe_task(task) -> str:
    spec = task.task_spec
    name = getattr(spec, "bpmn_name", None)
    ident = getattr(spec, "bpmn_id", None) or spec.name
    return f"{ident} ({name})" if name else ident


def model_error(err: Exception) -> ModelError:
    """A SpiffWorkflow failure as a client-facing error naming the element."""
    task = getattr(err, "task", None)
    where = f"at {describe_task(task)}: " if task is not None else ""
    message = getattr(err, "message", None) or str(err)
    notes = [n for n in getattr(err, "__notes__", []) if n not in message]
    text = f"{where}{message}" + (f" ({'; '.join(notes)})" if notes else "")
    return ModelError(text, activityId=getattr(task.task_spec, "bpmn_id", None) if task else None)


def run_until_waiting(workflow: BpmnWorkflow, max_rounds: int = 1000) -> None:
    """Engine steps until every branch waits on a person, a worker, a timer or a message.

    SpiffWorkflow's `do_engine_steps` ends with `refresh_timers`, and an expired timer
    only becomes READY there, so loop until nothing automatic is ready."""
    try:
        for _ in range(max_rounds):
            workflow.do_engine_steps()
            # the cheap scan first; SpiffWorkflow's own iterator decides (it skips finished
            # subprocesses and stops at depth 1000, and do_engine_steps runs what it finds)
            if not _automatic_ready(workflow) or workflow.get_next_task(state=TaskState.READY, manual=False) is None:
                _drop_uncaught_events(workflow)
                return
        raise ModelError(f"the process did not come to rest after {max_rounds} rounds (an endless loop?)")
    except WorkflowException as err:
        raise model_error(err) from err


def _drop_uncaught_events(workflow: BpmnWorkflow) -> None:
    """Events no task of the case caught (a signal thrown while nobody waits for it, a
    called process's terminate end event): SpiffWorkflow keeps them in `bpmn_events` for
    the application to deliver elsewhere, and its state document carries them from then
    on.  This engine delivers a thrown signal within its case only, so nothing would ever
    read them: a signal thrown at every round of a loop grew the case's state by one
    event per round."""
    if workflow.bpmn_events:
        workflow.bpmn_events = []


def _automatic_ready(workflow: BpmnWorkflow) -> bool:
    """Whether any engine task is READY, by a plain scan (SpiffWorkflow's filtered tree
    iterator cost 8 % of a step in a case with 500 finished tasks; it only runs when this
    finds one, which is rare: an expired timer made READY by refresh_timers)."""
    ready = TaskState.READY
    for task in open_tasks(workflow):               # a loop: any() over a generator costs more
        if task._state == ready and not task.task_spec.manual:
            return True
    return False


def iter_all_tasks(workflow: BpmnWorkflow):
    """Every task of the instance, subprocesses included (dict views chained in C: a
    case with 500 finished tasks is scanned several times per command)."""
    if not workflow.subprocesses:
        return workflow.tasks.values()
    return chain(workflow.tasks.values(), *(sub.tasks.values() for sub in workflow.subprocesses.values()))
