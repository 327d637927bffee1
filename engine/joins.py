"""What a join hands on: the variables of the branches it joins, merged against the
variables they had when they split (a three-way merge).

SpiffWorkflow gives each parallel branch its own copy of the case's variables, and its
joins (parallel and inclusive gateways, and the end join of a process or subprocess
that waits for every path) laid the copies over one another whole, the last branch to
arrive last: a variable one branch set came back with the value another branch had
copied at the split and never touched.  A creditor's objection a message had recorded
in one branch of a deregistration was gone when the department's pre-check finished
later, and the case took the wrong path.  Camunda 7 keeps one copy of a case's
variables, so what a branch sets stays set until something else sets it again.

Here a branch's value counts only for the variables that branch changed (set, changed
or deleted), measured against the split: the data of the task where the branches' paths
in the task tree meet.  Variables no branch changed keep the split's value; when two
branches changed one, the one that reached the join later wins.  Dicts merge key by key
in the same way (a key a branch's dict lacks is not deleted: joins always merged dicts
so, and the library's stages write their results under their own keys), and lists that
two branches changed merge position by position.  A parallel multi-instance merges its
instances with merge_branch too (engine/specs.py).

When a join fires is SpiffWorkflow's reasoning too, counted over the current round
only: in a loop back to the split (a case returned for correction, the departments
review again) the library counted an earlier round's arrivals, and the join fired on
the first branch of the round.
"""
from __future__ import annotations

from copy import copy

from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.util.task import TaskState

_MISSING = object()
_CONTAINERS = (dict, list, set)


def merge_branches(base: dict, branches) -> dict:
    """The variables after a join: `base` (the split's), changed by each of `branches`
    (each branch's variables, in the order the branches arrived) where it differs from
    `base`.  Nothing given is changed in place; values a branch did not change are
    shared with `base` as SpiffWorkflow's copies share them (one level deep)."""
    merged = {key: copy(value) if type(value) in _CONTAINERS else value for key, value in base.items()}
    for data in branches:
        merge_branch(merged, base, data)
    return merged


def merge_branch(merged: dict, base: dict, data: dict) -> None:
    """Bring into `merged` what one branch's variables `data` changed against `base`: the
    variables it set, changed or deleted.  The values of `merged` are replaced, never
    changed in place."""
    _merge_keys(merged, base, data)
    for key in base:
        if key not in data:
            merged.pop(key, None)


def _merge_keys(merged: dict, base: dict, data: dict) -> None:
    for key, value in data.items():
        old = base.get(key, _MISSING)
        if not _same(value, old):
            merged[key] = _merged_value(merged.get(key, _MISSING), old, value)


def _merged_value(current, old, new):
    """The value of a variable (or of a key or an item inside one) a branch changed from
    `old` to `new`, where `current` is the value from the branches before it.  A dict
    goes into the current dict key by key: the keys the branch set or changed, not the
    ones it left out, as a join always merged dicts (a stage's branch writes
    `permits = {"engineering": ...}` beside the other stages' permits).  A list another
    branch changed too merges position by position.  Anything else is the new value."""
    if type(new) is dict and type(current) is dict:
        merged = dict(current)
        _merge_keys(merged, old if type(old) is dict else {}, new)
        return merged
    if type(new) is list and type(current) is list and not _same(current, old):
        return _merged_list(current, old if type(old) is list else [], new)
    return copy(new) if type(new) in _CONTAINERS else new


def _same(value, other) -> bool:
    """Unchanged: equal and of one type (a Double 1.0 set over an Integer 1 is a change)."""
    return value is other or (type(value) is type(other) and value == other)


def _merged_list(current: list, old: list, new: list) -> list:
    """Position by position: the new list's item where it differs from the old one's,
    else the current item; as long as the new list where its branch changed the length."""
    merged = []
    for index, value in enumerate(new):
        before = old[index] if index < len(old) else _MISSING
        if index >= len(current):
            merged.append(value)
        elif _same(value, before):
            merged.append(current[index])
        else:
            merged.append(_merged_value(current[index], before, value))
    if len(new) == len(old):
        merged.extend(current[len(new):])
    return merged


class _Ancestry:
    """The joining task's ancestors, walked only as far as needed: where another task's
    path meets them (its branch's split) and the join's own last activation (the
    previous round of a loop), whose branches are not joined again."""

    def __init__(self, task) -> None:
        self.spec = task.task_spec
        self.chain, self.index = [task], {id(task): 0}
        self.previous = None                # index of the join's last activation among them
        self.done = False

    def _extend(self):
        if self.done:
            return None
        parent = self.chain[-1].parent
        if parent is None:
            self.done = True
            return None
        self.index[id(parent)] = len(self.chain)
        self.chain.append(parent)
        if self.previous is None and parent.task_spec is self.spec:
            self.previous = len(self.chain) - 1
        return parent

    def meet(self, task) -> int | None:
        """The index of the first of the ancestors that is `task` or one of its ancestors
        (None: another tree).  Both walks go up one step at a time, so each stops near
        where they meet: a case with hundreds of finished tasks is not walked to its root."""
        seen, node = set(), task
        while True:
            if node is not None:
                found = self.index.get(id(node))
                if found is not None:
                    return found
                seen.add(id(node))
                node = node.parent
            added = self._extend()
            if added is not None and id(added) in seen:
                return len(self.chain) - 1
            if node is None and self.done:
                return None


def _run_join(self, my_task) -> bool:
    """UnstructuredJoin._run_hook (SpiffWorkflow 3.2) with the three-way merge: the other
    finished tasks of the join's spec (each the end of a branch that arrived earlier, or
    of a branch of an earlier activation, which is left out) give their parents' data."""
    others = [task for task in my_task.workflow.tasks.values()
              if task.task_spec is self and task is not my_task and task._state & TaskState.FINISHED_MASK]
    my_task._inherit_data()
    if not others:                          # a split, or a join of one branch
        return True
    ancestry, branches, split = _Ancestry(my_task), [], 0
    for task in others:
        where = ancestry.meet(task)
        if where is None or ancestry.chain[where] is task:
            continue                        # an earlier activation the joining task descends from
        if task._state == TaskState.COMPLETED:
            # SpiffWorkflow's: a case reset into a branch that had been cancelled
            task._drop_children(force=True)
        if ancestry.previous is not None and where > ancestry.previous:
            continue                        # a branch of an earlier round of a loop
        if task.parent._state != TaskState.COMPLETED:
            continue                        # a path cancelled before it got here brings nothing
        branches.append(task.parent)
        split = max(split, where)
    if branches:
        branches.sort(key=lambda tip: tip.last_state_change)
        base = ancestry.chain[split].data
        my_task.data = merge_branches(base, [*(tip.data for tip in branches), my_task.data])
    return True


def _round_of(ancestry: _Ancestry, task) -> str:
    """Where another task of the join's spec stands against the joining task: "later" (it
    descends from the joining task: predicted past a loop back into the join), "earlier"
    (an earlier activation the joining task descends from, or a branch of an earlier
    round of a loop, whose token that activation consumed), or "current"."""
    where = ancestry.meet(task)
    if where == 0:
        return "later"
    if where is None or ancestry.chain[where] is task:
        return "earlier"
    if ancestry.previous is not None and where > ancestry.previous:
        return "earlier"
    return "current"


def _parallel_inputs_arrived(self, my_task) -> bool:
    """ParallelGateway._check_threshold_unstructured (SpiffWorkflow 3.2), counting only the
    branches of this round.  Each arrival leaves a task of the join's spec, and the
    library counted every such task but the joining one's ancestors: in a loop back to
    the split (returned for correction, the departments review again) the task an
    earlier round's other branch left counted as that branch having arrived again, and
    the join fired on the first branch of the round, skipping the other's review."""
    waiting = set(self.inputs)
    ancestry = _Ancestry(my_task)
    for task in my_task.workflow.tasks.values():
        if task.task_spec is not self:
            continue
        found = "current" if task is my_task else _round_of(ancestry, task)
        if found == "later":
            # the library's: an input the join's own outputs lead back to is not waited for
            node = task
            while node is not None and node.task_spec not in waiting:
                node = node.parent
            if node is not None:
                waiting.discard(node.task_spec)
        elif found == "current" and task.parent._state == TaskState.COMPLETED:
            waiting.discard(task.parent.task_spec)
    return not waiting


def _inclusive_inputs_arrived(self, my_task) -> bool:
    """InclusiveGateway._check_threshold_unstructured (SpiffWorkflow 3.2) over this round.
    The library walked the tree only as far as the join's tasks: from the second round of
    a loop on it saw the first round's arrivals, not this round's nor the tasks still on
    their way, and fired at once.  Here the walk goes on through the join's earlier
    activations the joining task descends from and counts this round's arrivals only;
    which inputs a task still under way can reach is the library's reasoning, unchanged."""
    ancestry, tasks, sources = _Ancestry(my_task), [my_task], []
    behind = set()                              # the join's earlier activations on my_task's path
    node = my_task.parent
    while node is not None:
        if node.task_spec is self:
            behind.add(id(node))
        node = node.parent
    stack = [my_task.workflow.task_tree]
    while stack:
        task = stack.pop()
        if task.task_spec is self:
            if id(task) not in behind:
                if task is not my_task and _round_of(ancestry, task) == "current":
                    tasks.append(task)
                continue
        elif task._state & (TaskState.READY | TaskState.WAITING):
            sources.append(task.task_spec)
        stack.extend(task.children)

    completed = {task.parent.task_spec for task in tasks if task.parent._state == TaskState.COMPLETED}
    if any(task.parent._state & TaskState.DEFINITE_MASK and task.parent.task_spec not in completed for task in tasks):
        return False                            # a branch of this round is on its way to the join
    checked = []

    def source_of(spec):
        # the library's: back through a spec's inputs to a task under way, if any
        checked.append(spec)
        for parent in spec.inputs:
            if parent not in checked:
                return parent if parent in sources else source_of(parent)

    for spec in completed:
        source = source_of(spec)
        if source is not None:
            sources.remove(source)
    return not any(source_of(spec) is not None for spec in self.inputs if spec not in completed)


def merge_at_joins() -> None:
    """Make SpiffWorkflow's unstructured joins (parallel and inclusive gateways, and the
    end join of a process) merge three-way.  InclusiveGateway and _EndJoin call this hook
    through UnstructuredJoin, so one replacement serves all three.  The parallel and
    inclusive gateways count this round's arrivals only (the end join waits for every
    unfinished task of its scope, engine/specs.py, and has no rounds)."""
    if getattr(UnstructuredJoin._run_hook, "__wrapped__", None) is not None:
        return
    for spec, check in ((ParallelGateway, _parallel_inputs_arrived), (InclusiveGateway, _inclusive_inputs_arrived)):
        check.__wrapped__ = spec._check_threshold_unstructured
        spec._check_threshold_unstructured = check
    _run_join.__wrapped__ = UnstructuredJoin._run_hook
    UnstructuredJoin._run_hook = _run_join
