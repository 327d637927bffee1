"""Message correlation (POST /message): departments that answer later, e.g. the bank
that opens the account and calls back.

Every waiting message catch (intermediate catch event, receive task, boundary event,
event-gateway branch) is mirrored into `message_subscription` with the command that
made it wait (engine/subscriptions.py), so finding the receivers is a query by message
name and business key.
Message start events are found on the latest definitions (their message names are
read once per definition version from the deployed XML).

Correlation follows Camunda 7: waiting executions first; a start event only when no
execution matches (or with `all`).  The message's variables become process variables.
An idempotency key (`messageId` or the `Idempotency-Key` header) is recorded in the same
transaction: a redelivery returns the first result and changes nothing.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.exceptions import WorkflowException
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from . import authz, event_names, external_tasks, projections, runtime, subscriptions, variable_types
from .clock import utcnow
from .errors import BadRequest, Conflict
from .fastsql import Shapes
from .identity import Principal
from .models import ProcessDefinition, ProcessedMessage
from .variables import map_to_wire
from .workflows import model_error

MISMATCH = "org.camunda.bpm.engine.MismatchingMessageCorrelationException"


# --- correlation ----------------------------------------------------------------------

@dataclass
class CorrelationRequest:
    message_name: str
    business_key: str | None = None
    correlation_keys: dict = field(default_factory=dict)        # name -> plain value (process variables)
    local_correlation_keys: dict = field(default_factory=dict)  # name -> plain value (the waiting task's data)
    process_instance_id: str | None = None
    process_variables: dict = field(default_factory=dict)
    process_variables_local: dict = field(default_factory=dict)
    all: bool = False
    variables_in_result: bool = False
    message_id: str | None = None


def correlate(engine, principal: Principal, request: CorrelationRequest) -> list[dict]:
    """Deliver the message; returns one neutral result per correlation (see `_result`).

    A redelivered `message_id` returns the stored results of the first delivery."""
    authz.require_event_sender(principal, "correlate messages: POST /message")
    _check(request)
    try:
        return _correlate_once(engine, principal, request)
    except IntegrityError:
        # a concurrent delivery of the same message id committed first: answer as it did
        if request.message_id is None:
            raise
        with engine.uow(write=False) as uow:
            stored = uow.session.get(ProcessedMessage, request.message_id)
            if stored is None:
                raise
            return _replayed(stored, request)


def _check(request: CorrelationRequest) -> None:
    if not request.message_name:
        raise BadRequest("No message name supplied")
    if request.message_id is not None and not (0 < len(request.message_id) <= 255):
        raise BadRequest("messageId (Idempotency-Key) must be 1 to 255 characters")


def _correlate_once(engine, principal: Principal, request: CorrelationRequest) -> list[dict]:
    with engine.uow() as uow:
        session = uow.session
        if request.message_id is not None:
            stored = session.get(ProcessedMessage, request.message_id)
            if stored is not None:
                return _replayed(stored, request)
            # claim the key first: a concurrent duplicate waits on it (PostgreSQL) or queues (SQLite)
            session.add(ProcessedMessage(key=request.message_id, message_name=request.message_name,
                                         processed_at=utcnow(), result=None))
            session.flush()
        results = _deliver_all(uow, principal, request)
        if request.message_id is not None:
            session.get(ProcessedMessage, request.message_id).result = results
        uow.commit()
        return results


def _replayed(stored: ProcessedMessage, request: CorrelationRequest) -> list[dict]:
    if stored.message_name != request.message_name:
        raise Conflict(f"messageId '{stored.key}' was already used for message '{stored.message_name}'; "
                       "use a new id for a different message")
    return list(stored.result or [])


def _deliver_all(uow, principal: Principal, request: CorrelationRequest) -> list[dict]:
    executions = _matching_executions(uow, principal, request)
    starts = []
    if request.process_instance_id is None and (request.all or not executions):
        starts = _start_definitions(uow.session, request.message_name)
    if not executions and not starts:
        raise external_tasks.RestException(f"{MISMATCH}: Cannot correlate message '{request.message_name}': "
                            "No process definition or execution matches the parameters")
    if not request.all:
        if len(executions) > 1:
            raise external_tasks.RestException(
                f"{MISMATCH}: Cannot correlate a message with name '{request.message_name}' to a single "
                f"execution. {len(executions)} executions match the correlation keys: "
                f"businessKey={request.business_key}, processInstanceId={request.process_instance_id}, "
                f"correlationKeys={request.correlation_keys}; narrow them or send \"all\": true")
        if not executions and len(starts) > 1:
            raise external_tasks.RestException(
                f"{MISMATCH}: Cannot correlate message '{request.message_name}': more than one process "
                f"definition starts with it ({', '.join(d.key for d in starts)})")
    results = []
    by_instance: dict = OrderedDict()
    for command, subscription in executions:
        by_instance.setdefault(command.record.id, (command, []))[1].append(subscription)
    for command, subs in by_instance.values():
        command.act()
        for subscription in subs:
            _deliver(command, subscription, request)
        runtime.save(command)
        results += [_result("Execution", command, s.task_id, request) for s in subs]
    for definition in starts:
        command, task_id = _start(uow, principal, definition, request)
        results.append(_result("ProcessDefinition", command, task_id, request))
    return results


def _matching_executions(uow, principal: Principal, request: CorrelationRequest) -> list:
    """(open command, subscription) for every waiting execution the message matches.

    The cases are opened (locked) in the order of their ids, as POST /signal does, so a
    message to several cases and a signal reaching them queue instead of deadlocking."""
    session = uow.session
    candidates = [s for s in _subscriptions(session, request)
                  if not request.correlation_keys or _has_values(session, s.instance_id, request.correlation_keys)]
    commands = {instance_id: runtime.open_instance(uow, instance_id, principal)
                for instance_id in sorted({s.instance_id for s in candidates})}
    matches = []
    for subscription in candidates:
        command = commands[subscription.instance_id]
        if request.local_correlation_keys:
            task = runtime.find_task(command.workflow, subscription.task_id)
            if any(task.data.get(k, _MISSING) != v for k, v in request.local_correlation_keys.items()):
                continue
        matches.append((command, subscription))
    return matches


_MISSING = object()


_WAITING = Shapes()          # a statement per shape: with or without a business key, an instance id


def _subscriptions(session, request: CorrelationRequest) -> list:
    """The waiting catches for the message (instance_id, task_id, activity_id), oldest
    first, built once per shape of the request and run on the driver's cursor
    (engine/fastsql.py): built through the ORM, the lookup took a quarter of a message's
    CPU (bench/TUNING.md)."""
    values = {"name": request.message_name, "business_key": request.business_key,
              "instance_id": request.process_instance_id}
    values = {k: v for k, v in values.items() if v is not None}
    shape = ("business_key" in values, "instance_id" in values)

    def build():
        t = subscriptions.TABLE.c
        stmt = select(t.instance_id, t.task_id, t.activity_id).where(t.event_type == subscriptions.MESSAGE,
                                                                     t.message_name == bindparam("name"))
        if "business_key" in values:
            stmt = stmt.where(t.business_key == bindparam("business_key"))
        if "instance_id" in values:
            stmt = stmt.where(t.instance_id == bindparam("instance_id"))
        return stmt.order_by(t.created, t.id)
    return _WAITING.get(shape, build).execute(session, values).all()


def _has_values(session, instance_id: str, wanted: dict) -> bool:
    values = external_tasks.process_variable_values(session, instance_id, list(wanted))
    return all(name in values and values[name] == value for name, value in wanted.items())


def _deliver(command, subscription, request: CorrelationRequest) -> None:
    task = runtime.find_task(command.workflow, subscription.task_id)
    definition = _message_definition(task.task_spec.event_definition, request.message_name)
    payload = {**request.process_variables, **request.process_variables_local}
    event = BpmnEvent(definition, payload=payload)
    if definition is None or not task.task_spec.catches(task, event):
        raise Conflict(f"process instance {command.record.id} stopped waiting for message "
                       f"'{request.message_name}' at the same time; retry")
    runtime.receive(command, request.process_variables, request.process_variables_local)
    try:
        task.task_spec.catch(task, event)
        task.task_spec._update(task)
    except WorkflowException as err:
        raise model_error(err) from err
    command.record_event("MessageCorrelated", {"messageName": request.message_name, "variables": payload,
                                               "messageId": request.message_id},
                         subscription.activity_id, subscription.task_id)


def _message_definition(definition, name: str):
    return subscriptions.definition_for(definition, subscriptions.MESSAGE, name)


def _result(kind: str, command, task_id: str, request: CorrelationRequest) -> dict:
    """A neutral, JSON-storable result; the REST layer renders Camunda's DTO from it."""
    record = command.record
    result = {"resultType": kind, "executionId": str(task_id), "processInstanceId": record.id,
              "definitionId": record.definition_id, "definitionKey": record.definition_key,
              "businessKey": record.business_key, "tenantId": record.tenant_id,
              "ended": bool(command.workflow.completed or command.final_state)}
    if request.variables_in_result:
        result["variables"] = map_to_wire(variable_types.typed(command.workflow,
                                                               projections.process_variables(command.workflow)))
    return result


# --- message start events -------------------------------------------------------------

def _start_definitions(session, message_name: str) -> list[ProcessDefinition]:
    return event_names.latest_starting(session, subscriptions.MESSAGE, message_name)


def _start(uow, principal: Principal, definition: ProcessDefinition, request: CorrelationRequest):
    """Start an instance at its message start event and hand it the message."""
    command, task = runtime.start_at_event(
        uow, definition, request.process_variables.copy(), request.business_key, principal,
        subscriptions.MESSAGE, request.message_name, request.process_variables_local.copy(),
        ("MessageCorrelated", {"messageName": request.message_name, "start": True, "messageId": request.message_id}))
    return command, str(task.id)
