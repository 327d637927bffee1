"""Signals (POST /signal): Camunda 7's broadcast.  A signal reaches every waiting signal
catch (intermediate catch event, boundary event, event-gateway branch) of every running
case, and starts the latest version of every process whose start event waits for it.

Receivers are found by a query on the event subscriptions (engine/subscriptions.py),
not by opening every case.  The whole broadcast is one transaction, as in Camunda
(`RuntimeService#signalEventReceived` is one command): either every receiving case
moves and every process starts, or, when one of them fails (a gateway's condition, a
value no state can hold), nothing changes and the answer names the case.  The cases are
locked in the order of their ids, as POST /message with `all` locks its cases, so two
such commands reaching the same cases queue on PostgreSQL instead of deadlocking (any
other command locks one case).

A signal thrown inside a case (an intermediate throw or end event) reaches the catches
of that case only (SpiffWorkflow's event manager delivers it there): the throwing case is
locked before it is known to throw, so no order of locks could keep two cases throwing at
each other from deadlocking, and models rely on it (the construction permit's signal is
meant for its own case).  It does start, as in Camunda 7, the latest version of every
process whose signal start event waits for it (`start_thrown`), in the thrower's
transaction: a new case is locked by nobody else, so that cannot deadlock.  The
department review's red escalation (督办) starts the supervisors' case this way, so the
review ends when the department decides.  The README's designer's guide says so.

The signal's variables become process variables of each receiving case and of each case
started, checked as on a start or a completion (api: `from_wire`; the state: on save).
Each delivery is a `SignalReceived` event in that case's audit chain (全程留痕).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.exceptions import WorkflowException
from sqlalchemy import select

from . import authz, event_names, runtime, subscriptions
from .clock import utcnow
from .errors import BadRequest, EngineError, ModelError, NotFound
from .identity import Principal
from .models import ActivityInstance, ProcessDefinition, ProcessInstance
from .specs import ThrownSignalEventDefinition
from .workflows import model_error


@dataclass
class SignalRequest:
    name: str | None
    execution_id: str | None = None
    variables: dict = field(default_factory=dict)      # name -> plain value
    tenant_id: str | None = None
    without_tenant_id: bool = False


def throw(engine, principal: Principal, request: SignalRequest) -> None:
    """Deliver the signal to every case waiting for it and start the processes it starts.

    Nobody waiting is no error (Camunda): a signal is a broadcast, not an order to one case."""
    authz.require_event_sender(principal, "throw signals: POST /signal")
    _check(request)
    with engine.uow() as uow:
        if not event_names.knows_signal(uow.session, request.name):
            raise BadRequest(f"no deployed process declares a signal named '{request.name}': a signal is sent "
                             "by the name of its <bpmn:signal> (not its id); check the spelling")
        delivered = [_deliver(uow, principal, instance_id, request)
                     for instance_id in sorted(_receivers(uow.session, request))]      # the lock order: by id
        if request.execution_id is not None and not any(delivered):
            _no_such_execution(uow.session, request)
        if request.execution_id is None:
            for definition in event_names.latest_starting(uow.session, subscriptions.SIGNAL, request.name,
                                                          _tenant(request)):
                _start(uow, principal, definition, request)
        uow.commit()


def _check(request: SignalRequest) -> None:
    if not request.name:
        raise BadRequest("No signal name given: send \"name\", the name of a <bpmn:signal> of a deployed model")
    if request.execution_id is not None and (request.tenant_id is not None or request.without_tenant_id):
        raise BadRequest("It is not possible to specify a tenant-id when delivering a signal to a single "
                         "execution: send executionId or tenantId/withoutTenantId, not both")
    if request.tenant_id is not None and request.without_tenant_id:
        raise BadRequest("tenantId and withoutTenantId exclude each other: send one")


def _tenant(request: SignalRequest):
    return event_names.NO_TENANT if request.without_tenant_id else request.tenant_id


def _receivers(session, request: SignalRequest) -> set:
    """The ids of the cases with a waiting catch for the signal (as the projection has it;
    each case's own catches are read again from its workflow once it is locked)."""
    t, cases = subscriptions.TABLE.c, ProcessInstance.__table__.c
    query = select(t.instance_id).where(t.event_type == subscriptions.SIGNAL, t.message_name == request.name)
    tenant = _tenant(request)
    if tenant is not None:
        query = event_names.for_tenant(query.join(ProcessInstance.__table__, cases.id == t.instance_id),
                                       cases.tenant_id, tenant)
    if request.execution_id is not None:
        query = query.where((t.task_id == request.execution_id) | (t.instance_id == request.execution_id)
                            | (t.instance_id == select(ActivityInstance.instance_id)
                               .where(ActivityInstance.id == request.execution_id).scalar_subquery()))
    return set(session.execute(query).scalars())


def _no_such_execution(session, request: SignalRequest) -> None:
    """Camunda answers both with a 500; here what was wrong is the caller's to fix."""
    execution = request.execution_id
    known = (session.get(ProcessInstance, execution) is not None
             or session.get(ActivityInstance, execution) is not None)
    if not known:
        raise NotFound(f"Cannot find execution with id '{execution}': send the id of an activity instance "
                       "(GET /process-instance/{id}/activity-instances) or of a process instance")
    raise BadRequest(f"Execution with id '{execution}' has not subscribed to a signal event with name "
                     f"'{request.name}'")


def _deliver(uow, principal: Principal, instance_id: str, request: SignalRequest) -> bool:
    """Deliver to the case's waiting catches; False if, once locked, it waits for none
    (it moved on, ended or was deleted after the receivers were read)."""
    try:
        command = runtime.open_instance(uow, instance_id, principal)
    except (NotFound, BadRequest):          # gone, or no longer running
        return False
    try:
        waiting = _waiting(command.workflow, instance_id, request)
        for task, activity_id in waiting:
            _catch(command, task, activity_id, request)
        if waiting:
            runtime.save(command)
        return bool(waiting)
    except EngineError as err:
        err.message = f"signal '{request.name}' was not delivered to any case: process instance {instance_id} " \
                      f"failed to take it: {err.message}"
        raise


def _waiting(workflow, instance_id: str, request: SignalRequest) -> list:
    """(task, activity id) of the case's catches for the signal, or of the one execution."""
    found = []
    for (task_id, kind, name), activity_id in subscriptions.waiting(workflow).items():
        if kind != subscriptions.SIGNAL or name != request.name:
            continue
        task = workflow.get_task_from_id(task_id)
        if request.execution_id in (None, instance_id) or request.execution_id in _execution_ids(task):
            found.append((task, activity_id))
    return found


def _execution_ids(task) -> set:
    """What this server shows as the execution of a waiting catch: its own activity
    instance id, and for a boundary event the activity it is attached to."""
    ids = {str(task.id)}
    if type(task.task_spec).__name__ == "BoundaryEvent" and task.parent is not None:
        ids |= {str(sibling.id) for sibling in task.parent.children
                if type(sibling.task_spec).__name__ != "BoundaryEvent"}
    return ids


def _catch(command, task, activity_id: str, request: SignalRequest) -> None:
    if task.id not in command.workflow.event_manager.tasks:
        return              # an earlier catch of the same signal in this case cancelled it (a boundary event)
    definition = subscriptions.definition_for(task.task_spec.event_definition, subscriptions.SIGNAL, request.name)
    runtime.receive(command, request.variables)
    try:
        task.task_spec.catch(task, BpmnEvent(definition, payload=dict(request.variables)))
        task.task_spec._update(task)
    except WorkflowException as err:
        raise model_error(err) from err
    command.record_event("SignalReceived", {"signalName": request.name, "variables": request.variables},
                         activity_id, str(task.id))


def _start(uow, principal: Principal, definition, request: SignalRequest) -> None:
    try:
        runtime.start_at_event(uow, definition, request.variables.copy(), None, principal, subscriptions.SIGNAL,
                               request.name, {}, ("SignalReceived", {"signalName": request.name, "start": True}))
    except EngineError as err:
        err.message = f"signal '{request.name}' was not delivered to any case: starting process " \
                      f"'{definition.key}' at it failed: {err.message}"
        raise


# --- signals thrown inside a case: the processes they start -------------------------------

MAX_STARTED = 1000          # cases one request may start by thrown signals (a process starting itself)


@dataclass(frozen=True)
class ThrownStart:
    definition: ProcessDefinition
    signal: str
    variables: dict         # what the thrower's camunda:in mappings pass
    business_key: str | None
    thrown_by: str          # the throwing case


def thrown_starts(command) -> list[ThrownStart]:
    """The cases the signals thrown in this step will start (`start_thrown`, once the
    thrower is saved): each signal that starts a process is a `SignalThrown` event in the
    thrower's audit chain, naming the definitions.  A case of a tenant starts the
    definitions of its tenant and those of none (Camunda 7)."""
    thrown = command.workflow.__dict__.pop(ThrownSignalEventDefinition.THROWN, [])
    starts = []
    for name, variables, passes_key, activity_id in thrown:
        definitions = [d for d in event_names.latest_starting(command.session, subscriptions.SIGNAL, name)
                       if d.tenant_id in (None, command.record.tenant_id)]
        if definitions:
            command.record_event("SignalThrown", {"signalName": name, "starts": [d.id for d in definitions]},
                                 activity_id)
        business_key = command.record.business_key if passes_key else None
        starts += [ThrownStart(d, name, variables, business_key, command.record.id) for d in definitions]
    return starts


def start_thrown(command, starts: list[ThrownStart]) -> None:
    """Start the cases of `thrown_starts` in the thrower's transaction, by its actor."""
    uow = command.uow
    for start in starts:
        count = uow.__dict__.get("_approvals_signal_starts", 0) + 1
        if count > MAX_STARTED:
            raise ModelError(f"signals thrown in this step started more than {MAX_STARTED} cases (the last: "
                             f"'{start.definition.key}' on '{start.signal}'): does a process throw a signal that "
                             "starts it again?")
        uow.__dict__["_approvals_signal_starts"] = count
        try:
            runtime.start_at_event(uow, start.definition, copy.deepcopy(start.variables), start.business_key,
                                   command.actor, subscriptions.SIGNAL, start.signal, {},
                                   ("SignalReceived", {"signalName": start.signal, "start": True,
                                                       "thrownBy": start.thrown_by}))
        except EngineError as err:
            err.message = f"signal '{start.signal}' thrown by process instance {start.thrown_by}: starting " \
                          f"process '{start.definition.key}' at it failed: {err.message}"
            raise


# --- cases that waited before signal catches were mirrored ------------------------------

SUBSCRIBED_FROM = "0014"        # the migration from which a command mirrors its signal catches


def mirror_waiting_catches(engine) -> int:
    """Write the subscription rows of the signal catches that running cases waited at
    when migration 0014 ran (no command had mirrored them); returns how many.  A case
    waiting only for a signal would have no next command to write them, so POST /signal
    would never reach it.  Run once, by `python app.py migrate` crossing 0014: each case
    that may wait for a signal (its definition's file declares one, or it calls another
    process) is read, rows already there are kept."""
    with engine.uow(write=False) as uow:
        session = uow.session
        declaring = [d.id for d in session.execute(select(ProcessDefinition)).scalars()
                     if event_names.of(session, d).signals]
        cases = ProcessInstance.__table__.c
        candidates = [row.id for row in session.execute(select(cases.id, cases.called_definitions)
                                                        .where(cases.state == runtime.ACTIVE))
                      if row.called_definitions] + list(session.execute(
            select(cases.id).where(cases.state == runtime.ACTIVE, cases.definition_id.in_(declaring))).scalars())
    added = 0
    for instance_id in sorted(set(candidates)):
        with engine.uow() as uow:
            added += _mirror(uow, instance_id)
            uow.commit()
    return added


def _mirror(uow, instance_id: str) -> int:
    record = runtime.load_record(uow.session, instance_id, lock="wait")
    if record.state != runtime.ACTIVE:
        return 0
    with runtime.peek_workflow(uow, instance_id) as workflow:
        waiting = {key: activity for key, activity in subscriptions.waiting(workflow).items()
                   if key[1] == subscriptions.SIGNAL}
    t = subscriptions.TABLE.c
    there = {(row.task_id, row.message_name) for row in uow.session.execute(
        select(t.task_id, t.message_name).where(t.instance_id == instance_id, t.event_type == subscriptions.SIGNAL))}
    missing = {key: activity for key, activity in waiting.items() if (str(key[0]), key[2]) not in there}
    subscriptions.write(uow.session, record, {}, missing, utcnow())
    return len(missing)
