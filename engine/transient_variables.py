"""Transient variables: a typed value sent with `"valueInfo": {"transient": true}` (Camunda 7).

The command that receives one sees it as any variable of the case: the task's output
mappings, the conditions of the gateways and sequence flows it reaches, the input
mappings and expressions of the tasks it opens, its scripts, all until every branch
waits again (a command runs the case to rest, as Camunda's transaction does).  Nothing
keeps it: `runtime.save` takes it out of the case before the command is written, so it
is in no process variable (GET .../variables, /history/variable-instance), no audit
event and no stored state, and the next command does not see it.

As in Camunda 7, a transient variable may not take the name of a process variable the
case already has (Camunda: ENGINE-17006 "Cannot set transient variable with name x to
non-transient variable and vice versa"); here that is a 400 and nothing changes.  A
worker's or a message's *local* transient variable may not either (Camunda would keep it
apart in the task's own scope): a case here has one scope, and dropping the transient
must not take the process variable with it.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

from SpiffWorkflow.util.task import TaskState

from . import projections, variable_types
from .errors import BadRequest
from .workflows import iter_all_tasks

# the audit payload entries that carry a request's variables
_VARIABLE_ENTRIES = ("variables", "localVariables", "modifications")


def names_of(values: Mapping) -> frozenset:
    """The names `values` (a request's VariableMap) sent as transient."""
    return getattr(values, "transient", frozenset())


def accept(command, values: Mapping, check: bool = True) -> None:
    """Note the transient variables of `values` for `command` (runtime.save drops them).
    `check`: refuse a name the case has as a process variable; off for a case's first
    variables (a start: they are in the case already, and there is nothing else)."""
    names = names_of(values)
    if not names:
        return
    if check:
        existing = projections.process_variables(command.workflow)
        clash = sorted(name for name in names if name in existing and name not in command.transient)
        if clash:
            listed = ", ".join(f"'{name}'" for name in clash)
            raise BadRequest(f"cannot set transient variable {listed}: process instance {command.record.id} has "
                             "a process variable of that name (Camunda: a transient variable cannot replace a "
                             "non-transient one); send it without valueInfo.transient, or under another name")
    command.transient |= names


def split(values: Mapping) -> tuple[Mapping, dict]:
    """(`values` without its transient variables, the transient ones)."""
    names = names_of(values)
    if not names:
        return values, {}
    kept = values.copy()
    for name in names:
        kept.pop(name, None)
        kept.types.pop(name, None)
    kept.transient = frozenset()
    return kept, {name: values[name] for name in names}


def hidden(snapshot, names: frozenset):
    """The snapshot as the projections see it: without the transient variables."""
    return dataclasses.replace(snapshot, variables={k: v for k, v in snapshot.variables.items() if k not in names},
                               types={k: v for k, v in snapshot.types.items() if k not in names})


def drop(command) -> None:
    """Take the command's transient variables out of the case and of its audit events.
    An open task keeps an input parameter of the name (its own local, which a task this
    command opened may have mapped from the transient); a finished task keeps nothing of
    it, or the steps after it would inherit it.  Only data that holds a name is touched:
    a finished task's data is watched, and a write would make the next dump encode it."""
    names, workflow = command.transient, command.workflow
    for task in iter_all_tasks(workflow):
        keep = () if task.has_state(TaskState.FINISHED_MASK) else _input_names(task.task_spec)
        for holder in (task.data, *_event_payloads(task)):
            for name in names:
                if name in holder and name not in keep:
                    del holder[name]
        held = task.internal_data.get("locals")
        if held and not names.isdisjoint(held):    # a worker's local transient (a failure keeps the task open)
            task.internal_data["locals"] = [n for n in held if n not in names or n in keep]
    variable_types.forget(workflow, names)
    command.events = [(kind, _without(payload, names), activity_id, task_id)
                      for kind, payload, activity_id, task_id in command.events]


def refuse_inputs(task, values: Mapping) -> None:
    """A transient sent to an open task (a worker's failure) may not take the name of one
    of its input parameters: it would replace the input's value, and the task keeps it."""
    clash = sorted(names_of(values) & _input_names(task.task_spec))
    if clash:
        listed = ", ".join(f"'{name}'" for name in clash)
        raise BadRequest(f"cannot set transient variable {listed}: task {task.task_spec.bpmn_id} has an input "
                         "parameter of that name, which a transient value would replace")


def _input_names(spec) -> set:
    """A task's own camunda:inputParameters: local variables, not the process's."""
    io = getattr(spec, "extensions", {}).get("inputOutput") or {}
    return {p["name"] for p in io.get("inputs", ())}


def _event_payloads(task) -> list:
    """The payloads of the events the task caught (a message's, a signal's or an error's
    variables, which SpiffWorkflow keeps in internal_data under the event's name)."""
    definition = getattr(task.task_spec, "event_definition", None)
    if definition is None:
        return []
    keys = {definition.name, *(d.name for d in getattr(definition, "event_definitions", ()))}
    return [task.internal_data[key] for key in keys if isinstance(task.internal_data.get(key), dict)]


def _without(payload: dict, names: frozenset) -> dict:
    if not any(isinstance(payload.get(entry), Mapping) and names & payload[entry].keys()
               for entry in _VARIABLE_ENTRIES):
        return payload
    return {key: ({k: v for k, v in value.items() if k not in names}
                  if key in _VARIABLE_ENTRIES and isinstance(value, Mapping) else value)
            for key, value in payload.items()}
