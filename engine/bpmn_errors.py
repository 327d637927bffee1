"""BPMN errors thrown at a waiting task from outside the model: a worker's bpmnError on an
external task (engine/external_tasks.py) and an officer's on a user task (engine/tasks.py).
The error boundary event that catches the code takes over and the task is cancelled."""
from __future__ import annotations

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.exceptions import WorkflowException

from .errors import RestException
from .specs import CamundaErrorEventDefinition
from .workflows import model_error


def throw(task, code: str, message: str | None, variables: dict, thrown_by: str, advice: str) -> str:
    """Throw the BPMN error `code` at the waiting `task`, `variables` going with it to the
    process: the error boundary event that catches it (on the task or an enclosing
    subprocess) takes over and the task is cancelled.  Returns the catching event's id.
    Uncaught, it is refused and nothing changes (`thrown_by`, `advice`: what the 400 says):
    Camunda would end the execution silently, which an approval case must never do."""
    event = BpmnEvent(CamundaErrorEventDefinition(code, code, message=message), payload=dict(variables))
    catcher = error_catcher(task, event)
    if catcher is None:
        raise RestException(f"no error boundary event catches errorCode '{code}' thrown at "
                            f"'{task.task_spec.bpmn_id}'{thrown_by} (nor one on an enclosing subprocess); nothing "
                            f"was changed. {advice}")
    try:
        catcher.task_spec.catch(catcher, event)
        catcher.task_spec._update(catcher)
    except WorkflowException as err:
        raise model_error(err) from err
    return catcher.task_spec.bpmn_id


def error_catcher(task, event):
    """The waiting error boundary event that catches `event` thrown at `task`: the task's
    own first, then those of each enclosing (embedded or called) subprocess."""
    node = task
    while node is not None:
        split = node.parent
        if split is not None and isinstance(split.task_spec, BoundaryEventSplit):
            for sibling in split.children:
                if (sibling is not node and isinstance(sibling.task_spec, BoundaryEvent)
                        and sibling.task_spec.catches(sibling, event)):
                    return sibling
        parent_id = node.workflow.parent_task_id
        node = node.workflow.top_workflow.get_task_from_id(parent_id) if parent_id is not None else None
    return None
