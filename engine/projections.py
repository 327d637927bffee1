"""Projection tables, written in the command's transaction from the difference between
the workflow before and after the command: open user tasks and their candidates,
activity history, and the latest value of each process variable."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask as UserTaskSpec
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, delete, func, insert, update
from sqlalchemy.dialects import postgresql, sqlite

from . import external_tasks, subscriptions, timers, variable_types
from .fastsql import Statement
from .models import ActivityInstance, TaskCandidate, UserTask, VariableInstance
from .specs import OPEN, EventSubprocess
from .task_history import TASK_HISTORY, copy_to_history
from .variables import jsonable, type_of
from .workflows import iter_all_tasks, open_tasks

FINISHED = TaskState.COMPLETED | TaskState.CANCELLED | TaskState.ERROR
# Projection rows are written with Core statements built once and run on the driver's
# cursor (engine/fastsql.py): the ORM's bulk path, and building a statement, each cost
# 2-4x executing it, and every command runs several of them (bench/bench_overhead.py).
TASKS, CANDIDATES = UserTask.__table__, TaskCandidate.__table__
ACTIVITIES, VARIABLES = ActivityInstance.__table__, VariableInstance.__table__
_INSERT_TASKS, _INSERT_CANDIDATES = Statement(insert(TASKS)), Statement(insert(CANDIDATES))
_INSERT_ACTIVITIES = Statement(insert(ACTIVITIES))
# an event subprocess's row, begun when its start event fires: a timeCycle's later beats find it there
_BEGIN_ACTIVITIES = Statement({name: dialect.insert(ACTIVITIES).on_conflict_do_nothing(index_elements=[ACTIVITIES.c.id])
                               for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))})
# task_candidate rows go by ON DELETE CASCADE; RETURNING gives the assignee
_DELETE_TASK = Statement(delete(TASKS).where(TASKS.c.id == bindparam("task_id")).returning(TASKS.c.assignee))
# one executemany for all closed activities; an assignee is recorded only where one is known
_CLOSE_ACTIVITY = Statement(
    update(ACTIVITIES).where(ACTIVITIES.c.id == bindparam("row_id"), ACTIVITIES.c.end_time.is_(None))
    .values(end_time=bindparam("end_time"), canceled=bindparam("canceled"), delete_reason=bindparam("delete_reason"),
            assignee=func.coalesce(bindparam("new_assignee", type_=ACTIVITIES.c.assignee.type), ACTIVITIES.c.assignee)))


def _upsert_variables(dialect_module):
    """The row of a variable is inserted, or updated in place (id and created kept) if
    the case has it already: one executemany for all of a command's variables, which
    psycopg sends in one round trip, where an UPDATE per variable and an INSERT of the
    missing ones took one more each."""
    statement = dialect_module.insert(VARIABLES)
    new = statement.excluded
    return statement.on_conflict_do_update(index_elements=[VARIABLES.c.instance_id, VARIABLES.c.name],
                                           set_={"type": new.type, "value": new.value, "updated": new.updated})


_UPSERT_VARIABLES = Statement({"postgresql": _upsert_variables(postgresql), "sqlite": _upsert_variables(sqlite)})
_DELETE_VARIABLE = Statement(delete(VARIABLES).where(VARIABLES.c.instance_id == bindparam("instance_id"),
                                                     VARIABLES.c.name == bindparam("name")))


@dataclass(frozen=True)
class Snapshot:
    states: dict                 # task -> state, for every task drawn on the diagram but the settled ones
                                 # (engine.workflows._TaskMap: finished, and left so), by the task object:
                                 # "before" and "after" are taken from the same workflow, and a UUID's
                                 # hash is Python code, 2 calls per task and command in a big case
    ready_user_tasks: frozenset
    variables: dict
    timers: dict                 # task id -> (due, kind, activity id)
    ready_external_tasks: frozenset = frozenset()
    subscriptions: dict = field(default_factory=dict)     # (task id, message|signal, name) -> activity id
    types: dict = field(default_factory=dict)             # variable name -> declared type (engine/variable_types.py)
    cycles: dict = field(default_factory=dict)            # task waiting on a timeCycle -> beats left (engine/timers.py)


EMPTY = Snapshot({}, frozenset(), {}, {})


def snapshot(workflow) -> Snapshot:
    """One pass over the tasks that are not settled (a case with 500 finished tasks has
    ~600, most of them settled)."""
    states, ready, external, active = {}, set(), set(), []
    ready_state = TaskState.READY
    for task in open_tasks(workflow):
        state = task._state                 # SpiffWorkflow's property, without the call
        if state & OPEN:
            active.append(task)
        spec = task.task_spec
        if getattr(spec, "bpmn_id", None) is None:
            continue
        states[task] = state
        if state == ready_state:
            if isinstance(spec, UserTaskSpec):
                ready.add(task.id)
            elif external_tasks.is_ready_external(task):
                external.add(task.id)
    variables = process_variables(workflow, active)
    return Snapshot(states, frozenset(ready), variables, timers.waiting_timers(workflow),
                    frozenset(external), subscriptions.waiting(workflow), variable_types.of(workflow, variables),
                    timers.cycles_left(workflow))


def ready_user_tasks(workflow) -> list:
    ready = TaskState.READY
    return [t for t in open_tasks(workflow) if t._state == ready and isinstance(t.task_spec, UserTaskSpec)]


def visible_data(task) -> dict:
    """A task's data as its case sees it: without its locals (camunda:inputParameters, a
    worker's localVariables), with the case's values they shadow (engine/runtime.py
    `shadow`).  The task's own data when it has no locals."""
    local = task.internal_data.get("locals")
    if not local:
        return task.data
    data = {k: v for k, v in task.data.items() if k not in local}
    data.update(task.internal_data.get("shadowed", ()))
    return data


def process_variables(workflow, active: list | None = None) -> dict:
    """Camunda's process-scope view: the newest data of every branch still running,
    or, once the instance has ended, the data it ended with.  `active`: the open tasks,
    if the caller has them."""
    if workflow.completed and workflow.last_task is not None:
        return dict(workflow.last_task.data)
    merged: dict = {}
    if active is None:
        active = [t for t in open_tasks(workflow) if t._state & OPEN]
    for task in sorted(active, key=lambda t: t.last_state_change):
        merged.update(_case_data(task))
    return merged


def _case_data(task) -> dict:
    """What a task adds to its case's variables: its data without its camunda:inputOutput
    locals and without the camunda:elementVariable of the multi-instance it is an instance
    of (or runs inside, as a called process or subprocess does), which is local to the
    instance; a multi-instance body adds the case's values it set aside (engine/specs.py)."""
    data = visible_data(task)
    aside = task.internal_data.get("caseValues")
    if aside:
        data = {**data, **aside}
    for node in (task, _calling_task(task)):
        body = node.parent if node is not None else None
        item = getattr(body.task_spec, "input_item", None) if body is not None else None
        if item is not None and item.bpmn_id in data and node.task_spec.name == body.task_spec.task_spec:
            data = {k: v for k, v in data.items() if k != item.bpmn_id}
    return data


def _calling_task(task):
    """The task whose subprocess (embedded or called) `task` runs in; None at the top."""
    parent_id = getattr(task.workflow, "parent_task_id", None)
    return task.workflow.top_workflow.get_task_from_id(parent_id) if parent_id is not None else None


def end_activity(workflow) -> str | None:
    ends = [t for t in iter_all_tasks(workflow)
            if t.state == TaskState.COMPLETED and type(t.task_spec).__name__ == "EndEvent"]
    return max(ends, key=lambda t: t.last_state_change).task_spec.bpmn_id if ends else None


# an event's activity type, Camunda 7's ActivityTypes, by its class and its definition's kind
_EVENT_KINDS = {"TimeDate": "Timer", "DurationTimer": "Timer", "CycleTimer": "Timer", "UnsentMessage": "Message",
                "CamundaError": "Error", "ThrownSignal": "Signal"}
_EVENT_TYPES = {
    "StartEvent": {"None": "startEvent", "Timer": "startTimerEvent", "Message": "messageStartEvent",
                   "Signal": "signalStartEvent", "Escalation": "escalationStartEvent",
                   "Compensation": "compensationStartEvent", "Error": "errorStartEvent",
                   "Conditional": "conditionalStartEvent"},
    "BoundaryEvent": {"Timer": "boundaryTimer", "Message": "boundaryMessage", "Signal": "boundarySignal",
                      "Compensation": "compensationBoundaryCatch", "Error": "boundaryError",
                      "Escalation": "boundaryEscalation", "Cancel": "cancelBoundaryCatch",
                      "Conditional": "boundaryConditional"},
    "IntermediateCatchEvent": {"Message": "intermediateMessageCatch", "Timer": "intermediateTimer",
                               "Link": "intermediateLinkCatch", "Signal": "intermediateSignalCatch",
                               "Conditional": "intermediateConditional"},
    "IntermediateThrowEvent": {"None": "intermediateNoneThrowEvent", "Signal": "intermediateSignalThrow",
                               "Compensation": "intermediateCompensationThrowEvent",
                               "Message": "intermediateMessageThrowEvent",
                               "Escalation": "intermediateEscalationThrowEvent"},
    "EndEvent": {"None": "noneEndEvent", "Error": "errorEndEvent", "Cancel": "cancelEndEvent",
                 "Terminate": "terminateEndEvent", "Message": "messageEndEvent", "Signal": "signalEndEvent",
                 "Compensation": "compensationEndEvent", "Escalation": "escalationEndEvent"},
}


def activity_type(spec) -> str:
    cls = type(spec).__name__
    if isinstance(spec, LoopTask):
        return "multiInstanceBody"
    if cls in _EVENT_TYPES:
        definition = getattr(spec, "event_definition", None)
        event = type(definition).__name__.replace("EventDefinition", "") if definition is not None else "None"
        event = _EVENT_KINDS.get(event, event)
        return _EVENT_TYPES[cls].get(event) or f"{cls[0].lower()}{cls[1:]}{event}"
    return {"UserTask": "userTask", "ExternalTask": "serviceTask", "PassThroughTask": "task",
            "ScriptTask": "scriptTask", "ExclusiveGateway": "exclusiveGateway",
            "ParallelGateway": "parallelGateway", "InclusiveGateway": "inclusiveGateway",
            # SpiffWorkflow's CallActivity is a bpmn:subProcess here (a bpmn:callActivity is a CalledProcess)
            "EventBasedGateway": "eventBasedGateway", "CallActivity": "subProcess", "EventSubprocess": "subProcess",
            "CalledProcess": "callActivity", "SubWorkflowTask": "subProcess", "TransactionSubprocess": "transaction",
            "ReceiveTask": "receiveTask", "BusinessRuleTask": "businessRuleTask"}.get(cls, cls[0].lower() + cls[1:])


def activity_id(spec) -> str:
    return f"{spec.bpmn_id}#multiInstanceBody" if isinstance(spec, LoopTask) else spec.bpmn_id


def parent_activity(task) -> str | None:
    if task.parent is not None and isinstance(task.parent.task_spec, LoopTask):
        return str(task.parent.id)
    parent_task_id = getattr(task.workflow, "parent_task_id", None)
    return str(parent_task_id) if parent_task_id is not None else None


def _is_waiting_alternative(task) -> bool:
    """Boundary events, event-gateway branches and the start events of event subprocesses
    only count once they fire (as in Camunda)."""
    return type(task.task_spec).__name__ == "BoundaryEvent" or (
        task.parent is not None and type(task.parent.task_spec).__name__ == "EventBasedGateway") or (
        _event_subprocess_of(task) is not None)


def _event_subprocess_of(task):
    """The event subprocess whose start event `task` is; None for any other task."""
    if type(task.task_spec).__name__ != "StartEvent":
        return None
    calling = _calling_task(task)
    return calling if calling is not None and isinstance(calling.task_spec, EventSubprocess) else None


def write(command, after: Snapshot, activated: list, now) -> None:
    _write_user_tasks(command, after, activated, now)
    _write_activities(command, after, now, {str(task.id): facts for task, facts in activated})
    _write_variables(command, after, now)
    external_tasks.write(command, command.before.ready_external_tasks, after.ready_external_tasks, now)
    subscriptions.write(command.session, command.record, command.before.subscriptions, after.subscriptions, now)
    earliest = timers.write(command, command.before.timers, after.timers, now)
    if earliest is not None:
        ctx = command.uow.ctx
        command.uow.after_commit.append(lambda: ctx.timer_scheduled(earliest))


def _write_user_tasks(command, after: Snapshot, activated: list, now) -> None:
    session, record = command.session, command.record
    gone = [str(t) for t in command.before.ready_user_tasks - after.ready_user_tasks]
    for task_id in gone:
        assignee = _DELETE_TASK.execute(session, {"task_id": task_id}).scalar()
        if assignee is not None:
            command.completed_assignees.setdefault(task_id, assignee)
    rows, candidates = [], []
    case = dict(instance_id=record.id, instance_start_time=record.start_time)     # for the reads of cases
    for task, facts in activated:
        spec = task.task_spec
        task_id = str(task.id)
        rows.append(dict(
            id=task_id, instance_id=record.id, definition_id=record.definition_id,
            definition_key=record.definition_key, task_definition_key=spec.bpmn_id,
            activity_instance_id=task_id, name=facts["name"], description=facts["description"],
            assignee=facts["assignee"], priority=facts["priority"], created=now, last_updated=now,
            due=facts["due"], follow_up=facts["follow_up"], form_key=facts["form_key"],
            form_ref=facts["form_ref"], business_key=record.business_key, tenant_id=record.tenant_id,
            properties=facts["properties"]))
        unassigned = facts["assignee"] is None
        candidates += [dict(task_id=task_id, group_id=g, user_id=None, unassigned=unassigned, **case)
                       for g in facts["candidate_groups"]]
        candidates += [dict(task_id=task_id, group_id=None, user_id=u, unassigned=unassigned, **case)
                       for u in facts["candidate_users"]]
    _INSERT_TASKS.executemany(session, rows)
    _INSERT_CANDIDATES.executemany(session, candidates)


def _write_activities(command, after: Snapshot, now, facts: dict) -> None:
    """`facts`: a user task activated in this command -> what its task row got (runtime.task_facts)."""
    session, record = command.session, command.record
    before, states = command.before.states, after.states
    assignees, cycles = command.completed_assignees, command.before.cycles
    inserts, closes, begun = [], [], {}
    for task, state in states.items():
        prev = before.get(task)
        if prev is None:                       # new, or settled at "before" and unsettled since,
            prev = task.__dict__.get("_approvals_reopened")     # which noted its state then
        if prev == state:                      # most open tasks: nothing to write
            continue
        was_open = prev is not None and bool(prev & OPEN)
        was_finished = prev is not None and bool(prev & FINISHED)
        if state & OPEN and not was_open and not was_finished:
            # an event subprocess waits from its case's start, and begins when its start event fires
            if not _is_waiting_alternative(task) and not isinstance(task.task_spec, EventSubprocess):
                inserts.append(_activity_row(record, task, now, None, facts=facts.pop(str(task.id), None)))
        elif state & FINISHED and not was_finished:
            cancelled = state != TaskState.COMPLETED
            if was_open and not _is_waiting_alternative(task):
                task_id = str(task.id)
                # a completed task's officer is who completed it, if nobody had claimed it (the
                # history's "who did what"); a cancelled one keeps its own assignee, or none, as
                # in Camunda 7: the timer, signal or officer that cancelled it did not hold it
                closes.append((task_id, cancelled, assignees.get(task_id) if cancelled
                               else assignees.get(task_id, _actor(command, task)), _delete_reason(command, task)))
            elif not cancelled and task not in cycles:         # a timeCycle's beats are rows of their own
                inserts.append(_activity_row(record, task, now, now, _actor(command, task)))
                _begin_event_subprocess(record, task, now, begun)
    for task, left in cycles.items():         # a timeCycle fires and waits on: a row a beat (Camunda's)
        beats = timers.beats_since(task, left)
        inserts += [{**_activity_row(record, task, now, now), "id": str(uuid.uuid4())} for _ in range(beats)]
        if beats:
            _begin_event_subprocess(record, task, now, begun)
    for task, state in before.items():        # open tasks that are gone (settled ones are finished)
        if state & OPEN and task not in states:
            closes.append((str(task.id), True, None, _delete_reason(command, task)))
    _BEGIN_ACTIVITIES.executemany(session, list(begun.values()))
    _INSERT_ACTIVITIES.executemany(session, inserts)
    _CLOSE_ACTIVITY.executemany(session, [dict(row_id=task_id, end_time=now, canceled=cancelled, new_assignee=assignee,
                                               delete_reason=reason)
                                          for task_id, cancelled, assignee, reason in closes])
    # a user task whose row was begun in an earlier command (open before it was ready)
    copy_to_history(session, [{"task_id": task_id, **_task_columns(values)} for task_id, values in facts.items()])


def _delete_reason(command, task) -> str | None:
    """Why a user task ended, as Camunda's historic task says it: `completed`, or the
    deleted case's reason, or `deleted` (cancelled: a boundary event, a terminate end, a
    case deleted without a reason); None for other activities."""
    if not isinstance(task.task_spec, UserTaskSpec):
        return None
    if task.state == TaskState.COMPLETED:
        return "completed"
    return command.delete_reason or "deleted"


def _begin_event_subprocess(record, task, now, begun: dict) -> None:
    """`task` fired: if it is the start event of an event subprocess, the subprocess begins."""
    subprocess = _event_subprocess_of(task)
    if subprocess is not None:
        begun[subprocess.id] = _activity_row(record, subprocess, now, None)


def _actor(command, task) -> str | None:
    return command.actor.user_id if isinstance(task.task_spec, UserTaskSpec) else None


_NO_TASK = dict.fromkeys(TASK_HISTORY.values())


def _task_columns(facts: dict) -> dict:
    """A new user task's fields (runtime.task_facts, as its task row got them) under
    user_task's names of TASK_HISTORY."""
    return {"name": facts["name"], "description": facts["description"], "assignee": facts["assignee"],
            "owner": None, "priority": facts["priority"], "due": facts["due"], "follow_up": facts["follow_up"]}


def _activity_row(record, task, start, end, assignee=None, facts: dict | None = None) -> dict:
    """A row of activity_instance; a user task's with its fields, where `facts` has them."""
    spec = task.task_spec
    row = dict(id=str(task.id), instance_id=record.id, definition_id=record.definition_id,
               definition_key=record.definition_key, activity_id=activity_id(spec),
               activity_name=spec.bpmn_name, activity_type=activity_type(spec),
               parent_activity_instance_id=parent_activity(task),
               task_id=str(task.id) if isinstance(spec, UserTaskSpec) else None,
               start_time=start, end_time=end, canceled=False, delete_reason=None, **_NO_TASK)
    if facts is not None:
        row.update({TASK_HISTORY[column]: value for column, value in _task_columns(facts).items()})
    if row["assignee"] is None:
        row["assignee"] = assignee
    return row


def _write_variables(command, after: Snapshot, now) -> None:
    """Upsert what changed.  A variable missing from `after` keeps its row (a branch's
    copy may be out of view a while, at a join) unless the command deleted it
    (runtime.change_variables): Camunda's history then leaves it out by default."""
    instance_id = command.record.id
    _DELETE_VARIABLE.executemany(command.session, [dict(instance_id=instance_id, name=name)
                                                   for name in sorted(command.deleted_variables)
                                                   if name not in after.variables])
    before, values = command.before.variables, after.variables
    # by type too: 5.0 == 5 == True, and a Double set over an Integer is a Double from then on
    changed = {k: v for k, v in values.items() if k not in before or before[k] != v or type(before[k]) is not type(v)}
    types, types_before = after.types, command.before.types
    if types or types_before:           # a type declared, or dropped, with the value unchanged
        changed.update((k, values[k]) for k in types.keys() | types_before.keys()
                       if k in values and types.get(k) != types_before.get(k))
    if not changed:
        return
    _UPSERT_VARIABLES.executemany(command.session, [
        dict(id=str(uuid.uuid4()), instance_id=instance_id, name=name, type=types.get(name) or type_of(value),
             value=jsonable(value), created=now, updated=now) for name, value in changed.items()])
