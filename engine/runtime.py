"""Process-instance commands.  Each is one unit of work:

    load the instance row (version N) -> restore the workflow (cache or state JSON)
    -> apply the command -> run engine steps until every branch waits
    -> write state (version N+1) and every projection -> commit

A lost race on the same instance fails the version check and becomes a 409.
"""
from __future__ import annotations

import copy
import json
import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.control import StartEventSplit
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask as UserTaskSpec
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, delete, insert, select, update

from . import (audit, due_dates, legal, multi_instances, projections, signals, subscriptions, transient_variables,
               variable_types, workflows)
from . import forms as form_schema
from .clock import utcnow
from .db import UnitOfWork
from .definitions import form_reference, require_business_key, resolve_called, start_form_reference
from .errors import BadRequest, Conflict, FormInvalid, ModelError, NotFound
from .fastsql import Statement
from .identity import SYSTEM, Principal
from .models import InstanceTask, ProcessDefinition, ProcessInstance
from .validation import PRIORITY_MAX, PRIORITY_MIN
from .variables import VariableMap, display_zone, unfit_for_state
from .workflows import (ApprovalWorkflow, StoredState, dump_state, dump_stored, iter_all_tasks, load_state,
                        model_error, put_rows, run_until_waiting)

log = logging.getLogger(__name__)

ACTIVE, COMPLETED = "ACTIVE", "COMPLETED"
EXTERNALLY_TERMINATED, INTERNALLY_TERMINATED = "EXTERNALLY_TERMINATED", "INTERNALLY_TERMINATED"


@dataclass
class InstanceRecord:
    """The process_instance row as plain values (no ORM dirty-tracking: the row is
    only ever written by the version-checked UPDATE in `save`)."""
    id: str
    definition_id: str
    definition_key: str
    business_key: str | None
    state: str
    version: int
    called_definitions: dict
    audit: audit.ChainHead
    tenant_id: str | None = None
    start_time: datetime | None = None      # task_candidate repeats it (engine/projections.py)


@dataclass
class Command:
    """One open instance inside a unit of work."""
    uow: UnitOfWork
    record: InstanceRecord
    definition: ProcessDefinition
    workflow: BpmnWorkflow
    before: projections.Snapshot
    actor: Principal
    is_new: bool = False
    final_state: str | None = None                  # set when the command ends the instance
    completed_assignees: dict = field(default_factory=dict)   # user task id -> assignee, for history
    events: list = field(default_factory=list)      # (kind, payload, activity_id, task_id)
    legal: Any = None                               # legal.ClockSet, made on first use
    deleted_variables: set = field(default_factory=set)     # names removed by change_variables, for the projection
    transient: frozenset = frozenset()              # transient variables it was sent: seen, never stored
    delete_reason: str | None = None                # a deleted case's reason, its open tasks' (history)

    def __post_init__(self) -> None:
        self.act()

    def act(self) -> None:
        """Make this the command the model hooks and legal_deadline() act for: the one whose
        workflow runs next (a message reaching several cases opens them all first)."""
        legal.current.set(self)

    @property
    def session(self):
        return self.uow.session

    def record_event(self, kind: str, payload: dict | None = None, activity_id=None, task_id=None) -> None:
        self.events.append((kind, payload or {}, activity_id, task_id))


# --- opening and saving -----------------------------------------------------------

# Every command reads and writes the instance row: the statements are built once and run
# on the driver's cursor (engine/fastsql.py).
_INSTANCES = ProcessInstance.__table__
_RECORD = select(_INSTANCES.c.id, _INSTANCES.c.definition_id, _INSTANCES.c.definition_key,
                 _INSTANCES.c.business_key, _INSTANCES.c.state, _INSTANCES.c.version,
                 _INSTANCES.c.called_definitions, _INSTANCES.c.audit_head, _INSTANCES.c.audit_seq,
                 _INSTANCES.c.tenant_id, _INSTANCES.c.start_time).where(_INSTANCES.c.id == bindparam("instance_id"))
_RECORD_BY_LOCK = {None: Statement(_RECORD), "wait": Statement(_RECORD.with_for_update()),
                   "skip": Statement(_RECORD.with_for_update(skip_locked=True))}
_STATE_AND_VERSION = Statement(select(_INSTANCES.c.state_json, _INSTANCES.c.version)
                               .where(_INSTANCES.c.id == bindparam("instance_id")))
_VERSION = Statement(select(_INSTANCES.c.version).where(_INSTANCES.c.id == bindparam("instance_id")))
_RESTORE_TRIES = 5
_SAVE = Statement(update(_INSTANCES).where(_INSTANCES.c.id == bindparam("row_id"),
                                           _INSTANCES.c.version == bindparam("expected_version")))
_INSERT = Statement(insert(_INSTANCES))
_SAVE_NEW = Statement(update(_INSTANCES).where(_INSTANCES.c.id == bindparam("row_id")))
# the tasks of the state, one row each: a command writes those it changed
_TASKS = InstanceTask.__table__
_TASK_ROWS = Statement(select(_TASKS.c.task_id, _TASKS.c.workflow_id, _TASKS.c.seq, _TASKS.c.body)
                       .where(_TASKS.c.instance_id == bindparam("instance_id")).order_by(_TASKS.c.seq))
_TASK_INSERT = Statement(insert(_TASKS))
_TASK_UPDATE = Statement(update(_TASKS).where(_TASKS.c.instance_id == bindparam("row_id"),
                                              _TASKS.c.task_id == bindparam("row_task_id"))
                         .values(body=bindparam("body")))
_TASK_DELETE = Statement(delete(_TASKS).where(_TASKS.c.instance_id == bindparam("row_id"),
                                              _TASKS.c.task_id == bindparam("row_task_id")))
_TASKS_OF_CASE_DELETE = Statement(delete(_TASKS).where(_TASKS.c.instance_id == bindparam("instance_id")))


def load_record(session, instance_id: str, lock: str | None = None) -> InstanceRecord:
    """The instance row.  `lock="wait"` takes its row lock first (PostgreSQL; SQLite's
    BEGIN IMMEDIATE already serializes writers), so every command on one instance locks
    in the same order and concurrent commands queue instead of deadlocking;
    `lock="skip"` raises Conflict at once if another transaction holds it."""
    t = _INSTANCES
    row = _RECORD_BY_LOCK[lock].execute(session, {"instance_id": instance_id}).first()
    if row is None:
        if lock == "skip" and session.execute(select(t.c.id).where(t.c.id == instance_id)).first():
            raise Conflict(f"process instance '{instance_id}' is busy with another command")
        raise NotFound(f"no process instance with id '{instance_id}'")
    return InstanceRecord(row.id, row.definition_id, row.definition_key, row.business_key, row.state,
                          row.version, row.called_definitions or {}, audit.ChainHead(row.audit_head, row.audit_seq or 0),
                          row.tenant_id, row.start_time)


def open_instance(uow: UnitOfWork, instance_id: str, actor: Principal, lock: str = "wait") -> Command:
    session, ctx = uow.session, uow.ctx
    record = load_record(session, instance_id, lock)
    if record.state != ACTIVE:
        raise BadRequest(f"process instance '{instance_id}' is {record.state.lower().replace('_', ' ')}; "
                         "it accepts no more commands")
    definition = ctx.definitions.definition(session, record.definition_id)
    workflow, resumed = ctx.workflows.take(instance_id, record.version), ()
    if workflow is None:
        workflow, before, resumed = _restore_for_command(session, instance_id, definition, record, ctx)
    else:
        # as the command that put it there left it, with that command's snapshot (see save)
        before = getattr(workflow, "_approvals_snapshot", None) or projections.snapshot(workflow)
    command = Command(uow, record, definition, workflow, before, actor)
    for body, instances in resumed:
        command.record_event(multi_instances.RESUMED, {"instances": instances}, body.task_spec.bpmn_id, str(body.id))
    return command


def _restore_for_command(session, instance_id: str, definition: ProcessDefinition, record: InstanceRecord, ctx):
    """(workflow, its snapshot as stored, multi-instances moved): the workflow restored
    from its stored state, with the instances that an earlier version's multi-instances
    did not hear merged (engine/multi_instances.py), after the snapshot, so that the
    command writes their progress as its own.  A merge that fails leaves the case as it
    was stored, logged: the command (a deletion, say) must not fail for it."""
    spec, subprocess_specs = ctx.definitions.spec_for(session, definition, record.called_definitions)
    workflow = _restore(session, instance_id, spec, subprocess_specs, ctx.script_engine, keep_texts=True)
    before = projections.snapshot(workflow)
    unheard = multi_instances.unheard(workflow)
    if not unheard:
        return workflow, before, ()
    # the merge changes the multi-instance's data in place (a dict of the reviews gets a
    # department), and the snapshot's variables are those very values: kept apart, the
    # projection sees the change
    before = replace(before, variables=copy.deepcopy(before.variables))
    try:
        return workflow, before, multi_instances.merge(unheard)
    except WorkflowException as err:
        log.warning("process instance %s: merging the instances its multi-instance did not hear failed (%s); "
                    "it stays as it was, and the server tries again when it starts (set what the case lacks, "
                    "or delete it)", instance_id, model_error(err).message)
    workflow = _restore(session, instance_id, spec, subprocess_specs, ctx.script_engine, keep_texts=True)
    return workflow, projections.snapshot(workflow), ()


@contextmanager
def peek_workflow(uow: UnitOfWork, instance_id: str) -> Iterator[BpmnWorkflow]:
    """The instance's workflow as committed, to read inside the block: the live one of
    the workflow cache when it holds the row's version (borrowed for the read, so no
    command sees it meanwhile: one that wants it restores its own; and given back unless
    a command has put a newer one), otherwise a copy restored from the stored state.
    What the caller keeps must be copied inside the block: a later command may change
    the live workflow's data in place.  Restoring a five-department review for every
    read cost more than a completion (bench/TUNING.md)."""
    session, ctx = uow.session, uow.ctx
    record = load_record(session, instance_id)
    live = ctx.workflows.borrow(instance_id, record.version)
    if live is None:
        definition = ctx.definitions.definition(session, record.definition_id)
        spec, subprocess_specs = ctx.definitions.spec_for(session, definition, record.called_definitions)
        yield _restore(session, instance_id, spec, subprocess_specs, ctx.script_engine)
        return
    try:
        yield live
    finally:
        ctx.workflows.put(instance_id, record.version, live, replace=False)


class _Moved(Exception):
    """The case changed between reading its document and its task rows."""


def _restore(session, instance_id: str, spec, subprocess_specs: dict, script_engine, keep_texts: bool = False):
    """The workflow from its stored state.  The document and its task rows are two reads:
    a reader without the row lock (peek_workflow) on PostgreSQL, where each statement
    sees what was committed when it began, could get the document of one version and
    the rows of the next.  The version is read with the document and again after the
    rows; if it moved, the reads start over."""
    params = {"instance_id": instance_id}
    for _ in range(_RESTORE_TRIES):
        state_json, version = _STATE_AND_VERSION.execute(session, params).one()
        if state_json is None:            # it ended after the reader found it running (PostgreSQL)
            raise NotFound(f"process instance {instance_id} has ended: what is left of it is its history "
                           "(/history/process-instance, /history/variable-instance)")

        def rows() -> list:
            found = _TASK_ROWS.execute(session, params).all()
            if _VERSION.execute(session, params).scalar_one() != version:
                raise _Moved
            return found
        try:
            return load_state(state_json, spec, subprocess_specs, script_engine, keep_texts=keep_texts,
                              fetch_rows=rows)
        except _Moved:
            continue
    raise Conflict(f"process instance '{instance_id}' changed {_RESTORE_TRIES} times while it was read; retry")


def _store_tasks(session, instance_id: str, stored: StoredState) -> None:
    """The task rows a command changed (after the instance row: they reference it)."""
    _TASK_DELETE.executemany(session, [{"row_id": instance_id, "row_task_id": task_id} for task_id in stored.deletes])
    _TASK_UPDATE.executemany(session, [{"row_id": instance_id, "row_task_id": task_id, "body": body}
                                       for task_id, body in stored.updates])
    _TASK_INSERT.executemany(session, [dict(r, instance_id=instance_id) for r in stored.inserts])


def _check_stored(command: Command, ended: bool) -> None:
    """The state JSON and task rows as stored spell the workflow's full state, in order;
    of an ended case, nothing is left."""
    session, instance_id = command.session, command.record.id
    text = _STATE_AND_VERSION.execute(session, {"instance_id": instance_id}).one()[0]
    if ended:
        if text is not None or _TASK_ROWS.execute(session, {"instance_id": instance_id}).first():
            raise AssertionError(f"process instance {instance_id} ended and kept its runtime state")
        return
    document = json.loads(text)
    put_rows(document, _TASK_ROWS.execute(session, {"instance_id": instance_id}).all())
    if json.dumps(document) != json.dumps(json.loads(dump_state(command.workflow))):
        raise AssertionError(f"process instance {instance_id}: the stored rows do not spell its state")


def save(command: Command) -> None:
    """Run the engine to rest, activate new tasks, write state and projections."""
    workflow, session, ctx = command.workflow, command.session, command.uow.ctx
    command.act()
    try:
        run_until_waiting(workflow)
        starts = signals.thrown_starts(command)
        legal.stop_ended(command)
        legal.refresh_timers(command)
        legal.check_clocks_exist(command)
        now = utcnow()                  # the new tasks' creation, which their due dates' durations count from
        activated = activate_new_tasks(command, now)
    except WorkflowException as err:
        raise model_error(err) from err
    after = projections.snapshot(workflow)
    if command.transient:
        after = transient_variables.hidden(after, command.transient)
    variable_types.settle(workflow, after.variables)
    projections.write(command, after, activated, now)       # a new external task's inputs see transients
    legal.write(command)
    if command.transient:
        transient_variables.drop(command)
    head = command.record.audit
    for kind, payload, activity_id, task_id in command.events:
        head = audit.append(session, head, command.record.id, now, command.actor.user_id, kind, payload,
                            activity_id, task_id)
    ended = workflow.completed or command.final_state is not None
    # An ended case keeps its history (the projections and the audit chain), not its
    # runtime state, as in Camunda: no command or read restores it again (the document
    # was 12.6 of an ended case's 28.3 kB on SQLite, bench/TUNING.md).  Its last data
    # must still be what a state could hold, as every command's before it.
    final = projections.process_variables(workflow) if ended else None
    try:
        stored = None if ended else dump_stored(workflow)
        if ended:
            workflows.check_storable(final)
    except (TypeError, ValueError) as err:
        refused = workflows.unstorable(workflow, err)
        if refused is None:
            raise
        raise refused from err
    values = dict(state_json=stored.document if stored else None, audit_head=head.hash, audit_seq=head.seq)
    if ended:
        values.update(state=command.final_state or COMPLETED, end_time=now,
                      end_activity_id=projections.end_activity(workflow))
    version = command.record.version
    if command.is_new:
        _SAVE_NEW.execute(session, dict(row_id=command.record.id, **values))
    else:
        result = _SAVE.execute(session, dict(row_id=command.record.id, expected_version=version,    # SET from the keys
                                             version=version + 1, **values))
        if result.rowcount != 1:
            raise Conflict(f"process instance '{command.record.id}' was changed by someone else at the same time; "
                           "read it again and retry")
        version += 1
    if stored is not None:
        _store_tasks(session, command.record.id, stored)
    elif getattr(workflow, "_approvals_stored", None):
        _TASKS_OF_CASE_DELETE.execute(session, {"instance_id": command.record.id})
    if workflows.CHECK_STATE:             # the test suite: the rows restore to this very workflow
        _check_stored(command, ended)
    command.record.version = version
    if not ended:
        instance_id = command.record.id
        workflow._approvals_snapshot = after       # the next command's "before", if it finds it cached
        command.uow.after_commit.append(lambda: ctx.workflows.put(instance_id, version, workflow))
    if starts:
        signals.start_thrown(command, starts)


def bump(uow: UnitOfWork, record: InstanceRecord, actor: Principal, kind: str, payload: dict,
         activity_id=None, task_id=None) -> None:
    """A change beside the workflow state (claim, unclaim): audit it and move the
    version, so that it races cleanly with commands on the same instance."""
    now = utcnow()
    head = audit.append(uow.session, record.audit, record.id, now, actor.user_id, kind, payload, activity_id, task_id)
    result = uow.session.execute(update(ProcessInstance)
                                 .where(ProcessInstance.id == record.id, ProcessInstance.version == record.version)
                                 .values(version=record.version + 1, audit_head=head.hash, audit_seq=head.seq))
    if result.rowcount != 1:
        raise Conflict(f"process instance '{record.id}' was changed by someone else at the same time; retry")
    workflows, old, new = uow.ctx.workflows, record.version, record.version + 1
    uow.after_commit.append(lambda: workflows.rekey(record.id, old, new))


# --- starting ---------------------------------------------------------------------

def start_instance(uow: UnitOfWork, definition: ProcessDefinition, variables: dict, business_key: str | None,
                   actor: Principal, start_form_check: bool = True, prepare=None,
                   start_activity: str | None = None, by_request: bool = False) -> tuple[InstanceRecord, BpmnWorkflow]:
    """`prepare(workflow)` runs before the first engine step (a timer start event marks
    its own timer as run out there); `start_activity` names the start event used;
    `by_request`: a start through the API, which needs a none start event."""
    session, ctx = uow.session, uow.ctx
    if definition.suspended:
        raise BadRequest(f"process definition '{definition.id}' is suspended")
    require_business_key(definition, business_key)
    sent = variables                # with the types the request named (a form's check returns plain values)
    start_form = start_form_reference(definition.start_form) if start_form_check else None
    if start_form is not None:
        # a case has no variables yet: a valuesKey's options are the ones submitted with the form
        variables = validate_form(uow, start_form, definition.deployment_id, variables, {}, options=variables)
    called = resolve_called(session, definition)
    spec, subprocess_specs = ctx.definitions.spec_for(session, definition, called)
    if by_request:
        _require_none_start(spec, definition)
    workflow = ApprovalWorkflow(spec, subprocess_specs, script_engine=ctx.script_engine)
    initiator = initiator_variable(spec)
    if initiator is not None:
        # Camunda 7 sets it as it creates the case, before the start's variables (one of its name wins);
        # a timer start has no user who started it: null
        workflow.task_tree.data[initiator] = None if actor is SYSTEM else actor.user_id
    workflow.task_tree.data.update(variables)
    sent = as_sent(sent, variables)
    variable_types.declare(workflow, sent)
    record = InstanceRecord(str(uuid.uuid4()), definition.id, definition.key, business_key, ACTIVE, 1, called,
                            audit.ChainHead(None, 0), definition.tenant_id, utcnow())
    if prepare is not None:
        prepare(workflow)
    start_event = start_activity or next((t.task_spec.bpmn_id for t in workflow.get_tasks()
                                          if type(t.task_spec).__name__ == "StartEvent"), None)
    session.flush()                 # what the session holds (a definition deployed in this unit of work)
    _INSERT.execute(session, dict(id=record.id, definition_id=definition.id, definition_key=definition.key,
                                  business_key=business_key, state=ACTIVE, start_time=record.start_time,
                                  start_activity_id=start_event, start_user_id=actor.user_id,
                                  tenant_id=definition.tenant_id, called_definitions=called, version=1, audit_seq=0))
    command = Command(uow, record, definition, workflow, projections.EMPTY, actor, is_new=True)
    transient_variables.accept(command, sent, check=False)
    command.record_event("ProcessInstanceStarted", {"definitionId": definition.id, "businessKey": business_key,
                                                    "variables": variables})
    save(command)
    if workflow.completed:
        record.state = COMPLETED
    return record, workflow


def start_at_event(uow: UnitOfWork, definition: ProcessDefinition, variables: dict, business_key: str | None,
                   actor: Principal, kind: str, name: str, payload: dict, audited: tuple) -> tuple[Command, Any]:
    """Start a case at its message or signal start event (`kind`, `name`) and hand it the
    event with `payload`; `audited` is the (kind, payload) of the audit event recorded.
    Transient variables come with the event, so that what follows the start event sees them."""
    variables, transient = transient_variables.split(variables)
    record, workflow = start_instance(uow, definition, variables, business_key, actor, start_form_check=False)
    fresh = load_record(uow.session, record.id)        # the audit head and version after the start
    command = Command(uow, fresh, definition, workflow, projections.snapshot(workflow), actor)
    command.transient = frozenset(transient) | transient_variables.names_of(payload)
    payload = {**transient, **payload}
    waiting = [t for t in workflow.event_manager.tasks.values()
               if type(t.task_spec).__name__ == "StartEvent"
               and subscriptions.definition_for(t.task_spec.event_definition, kind, name) is not None]
    if not waiting:
        raise BadRequest(f"process '{definition.key}' did not wait at its {kind} start event for "
                         f"'{name}' (does it also have a none start event?)")
    task = waiting[0]
    event = BpmnEvent(subscriptions.definition_for(task.task_spec.event_definition, kind, name), payload=payload)
    try:
        task.task_spec.catch(task, event)
        task.task_spec._update(task)
    except WorkflowException as err:
        raise model_error(err) from err
    command.record_event(audited[0], audited[1], task.task_spec.bpmn_id, str(task.id))
    save(command)
    return command, task


def _require_none_start(spec, definition: ProcessDefinition) -> None:
    """A process whose start events all wait for something (a message, a timer, a signal,
    a condition) is started by that, not by a request: such a case stood at its start
    event for good, as no message or signal reaches a start event of a running case
    (POST /message and POST /signal start a new case there)."""
    starts = _start_events(spec)
    if not starts or any(type(s.event_definition).__name__ == "NoneEventDefinition" for s in starts):
        return
    ways = []
    for start in starts:
        kind = type(start.event_definition).__name__.replace("EventDefinition", "")
        if kind == "Message":
            ways.append(f"the message '{start.event_definition.name}' (POST /engine-rest/message)")
        elif kind == "Signal":
            ways.append(f"the signal '{start.event_definition.name}' (POST /engine-rest/signal)")
        elif kind in ("TimeDate", "DurationTimer", "CycleTimer"):
            ways.append(f"its timer ({start.bpmn_id})")
        else:
            ways.append(f"a {kind.lower()} event ({start.bpmn_id}), which nothing sends to a new case here")
    raise BadRequest(f"process '{definition.key}' has no none start event: it starts on {' or '.join(ways)}")


def _start_events(spec) -> list:
    """The start events of a process (not those of its event subprocesses)."""
    # several start events sit behind one StartEventSplit (SpiffWorkflow): its outputs are them
    return [s for out in spec.start.outputs for s in (out.outputs if isinstance(out, StartEventSplit) else [out])]


def initiator_variable(spec) -> str | None:
    """The variable a start event's camunda:initiator names (engine/parser.py): it holds the
    user who started the case.  Camunda 7 keeps one per process, whichever start event
    starts the case; a start event of an event subprocess names none."""
    return next((s.extensions["initiator"] for s in _start_events(spec)
                 if (getattr(s, "extensions", None) or {}).get("initiator")), None)


# --- user tasks -------------------------------------------------------------------

def activate_new_tasks(command: Command, now: datetime) -> list:
    """Tasks that became ready in this command (created `now`, naive UTC): apply
    camunda:inputOutput inputs and work out who gets them (candidate groups/users,
    assignee, due date, form)."""
    activated = []
    before = command.before.ready_user_tasks
    for task in projections.ready_user_tasks(command.workflow):
        if task.id in before:
            continue
        apply_inputs(task, command.uow.ctx.script_engine)
        facts = task_facts(task, command.uow.ctx.script_engine, now)
        if facts["due"] is None:
            facts["due"] = legal.task_due(command, task)
        activated.append((task, facts))
    return activated


def apply_inputs(task, script_engine) -> None:
    inputs = task.task_spec.extensions.get("inputOutput", {}).get("inputs", [])
    if not inputs:
        return
    names = [p["name"] for p in inputs]
    shadow(task, names)
    for param in inputs:                # in order: a parameter sees those before it, as in Camunda 7
        task.data[param["name"]] = _fit_to_store(task, "input", param["name"],
                                                 script_engine.evaluate_text(task, param["expression"]))
    task.internal_data["locals"] = sorted(set(task.internal_data.get("locals", [])) | set(names))


def shadow(task, names) -> None:
    """Set aside the case's values of the variables `names` that are about to become local
    to `task` (its camunda:inputParameters, a worker's localVariables): Camunda 7 keeps a
    local beside the process variable it shadows, which has its value again when the
    activity ends.  SpiffWorkflow has one dict per task, so the local overwrote it, and
    dropping the local at the end deleted the case's variable (and, at a join, in every
    branch)."""
    held = set(task.internal_data.get("locals", ()))
    shadowed = {name: task.data[name] for name in names if name in task.data and name not in held}
    if shadowed:
        task.internal_data["shadowed"] = {**task.internal_data.get("shadowed", {}), **shadowed}


def apply_outputs(task, submitted: dict, script_engine) -> None:
    """Camunda 7 semantics: with output parameters the activity is its own scope, so
    only the mapped outputs reach the process; without them the submission does."""
    io = task.task_spec.extensions.get("inputOutput", {})
    outputs = io.get("outputs", [])
    if not outputs:
        data = dict(projections.visible_data(task))
        data.update(submitted)
        task.data = data
        return
    try:
        mapped = {p["name"]: script_engine.evaluate_text(task, p["expression"], local=submitted) for p in outputs}
    except Exception as err:   # sandbox errors name the expression
        raise ModelError(f"output mapping of {task.task_spec.bpmn_id} failed: {err}",
                         activityId=task.task_spec.bpmn_id) from err
    for name, value in mapped.items():
        _fit_to_store(task, "output", name, value)
    data = dict(projections.visible_data(task))
    data.update(mapped)
    task.data = data


def output_names(task) -> list[str]:
    """The names of the task's camunda:outputParameters (with them, only they reach the case)."""
    return [p["name"] for p in task.task_spec.extensions.get("inputOutput", {}).get("outputs", [])]


def _fit_to_store(task, kind: str, name: str, value):
    problem = unfit_for_state(value)
    if problem:
        raise ModelError(f"{kind} mapping of {task.task_spec.bpmn_id} left variable '{name}' unfit to store: {problem}",
                         activityId=task.task_spec.bpmn_id)
    return value


def _names(value) -> list[str]:
    """Candidate groups or users, each once (a group's queue is counted by its rows, one per task)."""
    if value is None:
        return []
    if isinstance(value, str):
        names = [v.strip() for v in value.split(",")]
    elif isinstance(value, (list, tuple, set)):
        names = [str(v).strip() for v in value]
    else:
        names = [str(value)]
    return list(dict.fromkeys(name for name in names if name))


def task_facts(task, script_engine, created: datetime) -> dict:
    """What a new user task's attributes give: `created` (naive UTC) is when it opens, which a
    due date written as a duration counts from (engine/due_dates.py)."""
    ext = task.task_spec.extensions
    where = task.task_spec.bpmn_id

    def value(attr):
        return script_engine.evaluate_text(task, ext.get(attr))

    def when(attr):
        try:
            return due_dates.resolve(value(attr), created, f"camunda:{attr}")
        except BadRequest as err:
            raise ModelError(f"{where}: {err.message}", activityId=where) from None

    priority = value("priority")
    try:
        priority = int(priority) if priority not in (None, "") else 50
    except (TypeError, ValueError, OverflowError):
        raise ModelError(f"{where}: camunda:priority {priority!r} is not a number", activityId=where) from None
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ModelError(f"{where}: camunda:priority {priority} is out of range: a task's priority is a whole number "
                         f"from {PRIORITY_MIN} to {PRIORITY_MAX} (Camunda's int)", activityId=where)
    assignee = value("assignee")
    form_ref = None
    if ext.get("formRef"):
        form_ref = {"key": value("formRef"), "binding": ext.get("formRefBinding") or "latest",
                    "version": ext.get("formRefVersion")}
    form_key = value("formKey")
    return {
        "name": task_name(task, script_engine), "description": task.task_spec.documentation,
        "candidate_groups": _names(value("candidateGroups")),
        "candidate_users": _names(value("candidateUsers")),
        "assignee": str(assignee) if assignee not in (None, "") else None,
        "due": when("dueDate"), "follow_up": when("followUpDate"), "priority": priority,
        "form_key": form_key, "form_ref": form_reference(form_ref, form_key),
        "properties": ext.get("properties", {}),
    }


NAME_LIMIT = 255


def task_name(task, script_engine) -> str | None:
    """A user task's name with its ${...} expressions evaluated, as Camunda 7 does
    (`审查：${applicantName}`): the name a department's list shows."""
    name = task.task_spec.bpmn_name
    if not name or "{" not in name:
        return name
    try:
        shown = script_engine.evaluate_text(task, name)
    except WorkflowException as err:     # the script engine's errors name the expression
        where = task.task_spec.bpmn_id
        raise ModelError(f"{where}: the task name {name!r}: {err}", activityId=where) from None
    return ("" if shown is None else str(shown))[:NAME_LIMIT]       # user_task.name holds 255 characters


def find_task(workflow: BpmnWorkflow, task_id: str):
    try:
        task = workflow.get_task_from_id(uuid.UUID(task_id))
    except (ValueError, KeyError, TypeError):
        task = None
    if task is None:
        raise NotFound(f"no task with id '{task_id}' in this process instance")
    return task


def validate_form(uow: UnitOfWork, form_ref: dict, deployment_id: str | None, values: dict, context: dict,
                  options: dict | None = None) -> dict:
    definitions, session = uow.ctx.definitions, uow.session
    row = definitions.form_definition_row(session, form_ref, deployment_id)
    form = definitions.form(session, row)
    try:
        checked = form_schema.validate_submission(form, _form_values(form, values), context=context, options=options)
    except form_schema.FormValidationError as err:
        listing = "; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in err.errors.items())   # each a sentence
        raise FormInvalid(f"form '{form.id}' rejected the submission: {listing}", errors=err.errors) from None
    # a Date the form accepted stays a Date, not the text the form checked
    return {key: values[key] if _is_date(values.get(key)) else value for key, value in checked.items()}


def _form_values(form, values: dict) -> dict:
    """Dates arrive as datetime from typed variables (type Date); the form checks text, as
    form-js submits it: ISO date-time text, and for a datetime field of subtype date a Date
    at midnight in the engine's zone as its day (2024-05-01), which is what it means there."""
    days = {f.key for f in form.fields if f.type == "datetime" and (f.component.get("subtype") or "date") == "date"}
    return {key: _as_text(value, key in days) if _is_date(value) else value for key, value in values.items()}


def _is_date(value) -> bool:
    return hasattr(value, "isoformat")


def _as_text(value, day: bool) -> str:
    if day and isinstance(value, datetime):
        local = value.astimezone(display_zone()) if value.tzinfo else value
        if local.time() == time(0):
            return local.date().isoformat()
    return value.isoformat()


def as_sent(sent: Mapping, written: Mapping) -> Mapping:
    """The variables of a request (`sent`, with the types it named) that a form's check kept
    (`written`), as they were sent: a value the check changed has its own type then.  A
    read-only field's, which the check drops, declares no type and is no transient: the
    case's variable keeps its type as well as its value (a Long 500 stays a Long whatever
    was sent for it)."""
    if written is sent:                 # no form
        return sent
    values = {name: value for name, value in sent.items() if name in written}
    if not isinstance(sent, VariableMap):
        return values
    return VariableMap(values, {name: t for name, t in sent.types.items() if name in written},
                       frozenset(name for name in sent.transient if name in written))


def receive(command: Command, variables: Mapping, local_variables: Mapping | None = None) -> None:
    """What a request sends the case (a start's aside): the types its variables are declared
    with are kept (engine/variable_types.py), its transient variables noted, to be dropped
    when the command is saved (engine/transient_variables.py; a clash with a process
    variable is a 400 here, before anything changes)."""
    variable_types.declare(command.workflow, variables)
    transient_variables.accept(command, variables)
    if local_variables is not None:
        transient_variables.accept(command, local_variables)


def complete_user_task(command: Command, task_id: str, variables: dict, form_ref: dict | None) -> Any:
    task = find_task(command.workflow, task_id)
    if not isinstance(task.task_spec, UserTaskSpec):
        raise BadRequest(f"task '{task_id}' is not a user task")
    if task.state != TaskState.READY:
        # the task row was read before a concurrent command finished it: a lost race
        raise Conflict(f"task {task_id} was completed or cancelled concurrently "
                       f"(now {TaskState.get_name(task.state)}); it cannot be completed again")
    sent = variables
    if form_ref is not None:
        variables = validate_form(command.uow, form_ref, command.definition.deployment_id, variables, task.data)
    receive(command, as_sent(sent, variables))
    apply_outputs(task, variables, command.uow.ctx.script_engine)
    try:
        task.run()
    except WorkflowException as err:
        raise model_error(err) from err
    command.record_event("TaskCompleted", {"variables": variables, "name": task.task_spec.bpmn_name},
                         task.task_spec.bpmn_id, task_id)
    return task


def change_variables(command: Command, modifications: dict, deletions: list, task_id: str | None = None) -> None:
    """Set and remove process variables of a running case (Camunda's PUT/DELETE/POST
    .../variables), deletions after modifications as Camunda orders them.  SpiffWorkflow
    keeps a copy of the data in every task, so every copy changes: each open or predicted
    task gets the new values (but where a name is local to its scope, local_names), and
    each finished task that holds a name changes too: a waiting event takes its parent's
    data again whenever it is updated, and a parallel join merges the last task of every
    branch, so an old copy there would bring a value back.  Then the waiting tasks are
    updated, as SpiffWorkflow does after each task it runs: a conditional event whose
    condition now holds fires (Camunda 7 evaluates them when variables are set), and
    save() runs the case on."""
    workflow = command.workflow
    receive(command, modifications)
    gone = set(deletions)
    previous = projections.process_variables(workflow)
    for task in iter_all_tasks(workflow):
        data, finished = task.data, task._state & TaskState.FINISHED_MASK
        shadowed = () if finished else local_names(task)
        for name, value in modifications.items():
            if name not in gone and name not in shadowed and (not finished or name in data):
                data[name] = copy.deepcopy(value)       # no two tasks share a value a merge could change in place
        for name in gone:
            if name in data and name not in shadowed:
                del data[name]
    variable_types.forget(workflow, gone)
    try:
        for each in (workflow, *workflow.subprocesses.values()):
            each.update_waiting_tasks()
    except WorkflowException as err:     # a waiting condition that fails on the new values
        raise model_error(err) from err
    command.deleted_variables |= gone
    changed = {name: value for name, value in modifications.items() if name not in gone}
    command.record_event("VariablesModified", {
        "modifications": changed, "deletions": sorted(gone),
        "previous": {name: copy.deepcopy(previous[name]) for name in (*changed, *sorted(gone)) if name in previous}},
        *_activity_of(workflow, task_id))


def local_names(task) -> set:
    """The names local to the scope an open task runs in, which a process variable of the
    same name does not reach (Camunda 7): its own camunda:inputParameters, and the
    camunda:elementVariable of every multi-instance it is an instance of or runs inside,
    also from the called process of a multi-instance call activity (each
    department_review's `review`).  The task after a multi-instance hangs under it in
    SpiffWorkflow's tree as its instances do, but is none of them: not inside it."""
    names = set(task.internal_data.get("locals", ()))
    node = task
    while node is not None:
        parent = node.parent
        if parent is None and getattr(node.workflow, "parent_task_id", None) is not None:
            parent = node.workflow.top_workflow.get_task_from_id(node.workflow.parent_task_id)
        item = getattr(parent.task_spec, "input_item", None) if parent is not None else None
        if item is not None and node.task_spec.name == parent.task_spec.task_spec:
            names.add(item.bpmn_id)
        node = parent
    return names


def _activity_of(workflow: BpmnWorkflow, task_id: str | None) -> tuple:
    """(activity id, task id) for the audit event of a change made through a task."""
    if task_id is None:
        return None, None
    return find_task(workflow, task_id).task_spec.bpmn_id, task_id


def terminate(command: Command, reason: str | None) -> None:
    command.workflow.cancel()
    command.final_state = EXTERNALLY_TERMINATED
    command.delete_reason = reason
    command.record_event("ProcessInstanceDeleted", {"reason": reason})
