"""Event subscriptions (Camunda's ACT_RU_EVENT_SUBSCR): every waiting message or signal
catch of a running case (intermediate catch event, receive task, boundary event,
event-gateway branch) as a row of `message_subscription`, written with the command
that made the case wait or stop waiting (projections.write).  POST /message and POST
/signal find their receivers by a query on it instead of opening every case.

A case that ends or is deleted stops waiting (SpiffWorkflow cancels its catches), so
the same difference removes its rows; a deployment deleted with its cases takes them
by ON DELETE CASCADE.  A case restored from its stored state waits for what it waited
for before (SpiffWorkflow's serializer rebuilds the event manager), so its rows stand.
"""
from __future__ import annotations

from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from sqlalchemy import bindparam, delete, insert

from .fastsql import Statement
from .models import MessageSubscription

MESSAGE, SIGNAL = "message", "signal"
TABLE = MessageSubscription.__table__


def kind_of(definition) -> str | None:
    """'message', 'signal' or None (an event definition no request delivers)."""
    if isinstance(definition, MessageEventDefinition):
        return MESSAGE
    if isinstance(definition, SignalEventDefinition):
        return SIGNAL
    return None


def definition_for(definition, kind: str, name: str):
    """The task spec's own event definition of that kind and name (a gateway's or a
    multiple event's child), or None.  An event sent to a task must carry the very class
    of definition its parser made (SpiffWorkflow matches definitions by class)."""
    children = definition.event_definitions if isinstance(definition, MultipleEventDefinition) else [definition]
    return next((d for d in children if kind_of(d) == kind and d.name == name), None)


def waiting(workflow) -> dict:
    """(task id, kind, name) -> activity id for every message and signal the case waits for.

    Start events are left out: a message or signal start event starts a new case (Camunda)."""
    found = {}
    for task in workflow.event_manager.tasks.values():
        spec = task.task_spec
        if type(spec).__name__ == "StartEvent":
            continue
        definition = getattr(spec, "event_definition", None)
        if isinstance(definition, MultipleEventDefinition):
            gateway = type(spec).__name__ == "EventBasedGateway"
            for index, child in enumerate(definition.event_definitions):
                kind = kind_of(child)
                if kind is not None:
                    target = spec.outputs[index] if gateway and index < len(spec.outputs) else spec
                    found[(task.id, kind, child.name)] = target.bpmn_id
        else:
            kind = kind_of(definition)
            if kind is not None:
                found[(task.id, kind, definition.name)] = spec.bpmn_id
    return found


_UNSUBSCRIBE = Statement(delete(TABLE).where(TABLE.c.task_id == bindparam("task_id"),
                                             TABLE.c.event_type == bindparam("kind"),
                                             TABLE.c.message_name == bindparam("name")))
_SUBSCRIBE = Statement(insert(TABLE))


def write(session, record, before: dict, after: dict, now) -> None:
    """Delete the rows of the catches in `before` only and insert those in `after` only
    (both as `waiting` gives them), for the case `record`."""
    _UNSUBSCRIBE.executemany(session, [{"task_id": str(task_id), "kind": kind, "name": name}
                                       for task_id, kind, name in before.keys() - after.keys()])
    _SUBSCRIBE.executemany(session, [dict(task_id=str(task_id), instance_id=record.id,
                                          definition_id=record.definition_id, event_type=kind, message_name=name,
                                          activity_id=after[(task_id, kind, name)],
                                          business_key=record.business_key, created=now)
                                     for task_id, kind, name in after.keys() - before.keys()])
