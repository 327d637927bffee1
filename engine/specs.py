"""Task specs where Camunda 7 semantics differ from SpiffWorkflow's defaults."""
from __future__ import annotations

import copy
from collections.abc import Sized

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.specs.defaults import (CallActivity, NoneTask, ParallelMultiInstanceTask,
                                               SequentialMultiInstanceTask)
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition, SignalEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.bpmn_spec_mixin import BpmnSpecMixin
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask, MultiInstanceTask
from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.camunda.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from .joins import merge_at_joins, merge_branch


class PassThroughTask(NoneTask):
    """bpmn:task and bpmn:manualTask: Camunda passes straight through them, Spiff
    would wait for someone to complete them."""

    def __init__(self, wf_spec, bpmn_id, **kwargs):
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False

    def _run_hook(self, my_task):
        """camunda:inputOutput applies here as on any Camunda 7 activity: a none task with
        output parameters is the rule step that sets variables without a script task."""
        if self.extensions.get("inputOutput"):
            from .runtime import apply_inputs, apply_outputs     # runtime imports this module
            apply_inputs(my_task, my_task.workflow.script_engine)
            apply_outputs(my_task, {}, my_task.workflow.script_engine)
        return super()._run_hook(my_task)


class UnsentMessageEventDefinition(MessageEventDefinition):
    """A message throw event (intermediate or end) drawn without an implementation passes
    through, as in Camunda 7, which sends a message only through the event's implementation
    (Java code, or an external task) and never to a catch event of its own.  SpiffWorkflow's
    camunda flavour evaluated the missing camunda:expression (a 500 when a case reached the
    event) and would have kept the message in the case's state, where nothing reads it."""

    def throw(self, my_task):
        pass


class ThrownSignalEventDefinition(SignalEventDefinition):
    """A signal thrown by a case (an intermediate throw or end event).  It reaches the
    case's own catches as SpiffWorkflow delivers it, with the thrower's variables, and, as
    in Camunda 7, starts the latest version of every process whose signal start event waits
    for it (engine/signals.py `start_thrown`): the new case gets what the camunda:in
    mappings on the signalEventDefinition pass (none: no variables) and, with
    `camunda:in businessKey="#{execution.processBusinessKey}"`, the thrower's business key.
    The starts wait in the top workflow's THROWN list until the thrower's step is saved."""

    THROWN = "_approvals_thrown_signals"

    def __init__(self, name, mappings=(), **kwargs):
        super().__init__(name, **kwargs)
        self.mappings = list(mappings)

    def throw(self, my_task):
        # the catches compare definitions by class (SpiffWorkflow): they get a plain one
        plain = SignalEventDefinition(self.name, description=self.description)
        top = my_task.workflow.top_workflow
        top.catch(BpmnEvent(plain, payload=copy.deepcopy(my_task.data)))
        thrown = top.__dict__.setdefault(self.THROWN, [])
        thrown.append((self.name, passed_variables(self.mappings, my_task),
                       any("businessKey" in m for m in self.mappings), my_task.task_spec.bpmn_id))


class CamundaErrorEventDefinition(ErrorEventDefinition):
    """A BPMN error with Camunda 7's message (`camunda:errorMessage` on the bpmn:error, or the
    one a worker's bpmnError sends), and, where it is caught, camunda:errorCodeVariable and
    camunda:errorMessageVariable: the variables the catching event sets to the error's code
    and message (null without one).  Thrown and caught errors are both of this class, as
    SpiffWorkflow matches an error only with one of its own class."""

    def __init__(self, name, code=None, message=None, code_variable=None, message_variable=None, **kwargs):
        super().__init__(name, code, **kwargs)
        self.message = message
        self.code_variable = code_variable
        self.message_variable = message_variable

    def catch(self, my_task, event=None):
        super().catch(my_task, event)
        payload = dict(my_task.internal_data.get(self.name) or {})
        if self.code_variable:
            payload[self.code_variable] = event.event_definition.code
        if self.message_variable:
            payload[self.message_variable] = getattr(event.event_definition, "message", None)
        my_task.internal_data[self.name] = payload


class ExternalTask(BpmnSpecMixin):
    """A service task with camunda:type="external": it waits until an external
    worker completes it through the external-task API (topic in `extensions`)."""

    def __init__(self, wf_spec, bpmn_id, **kwargs):
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = True

    @property
    def topic(self) -> str | None:
        return self.extensions.get("topic")


class CalledProcess(CallActivity):
    """A call activity with Camunda 7's variables once it declares a camunda:in or
    camunda:out mapping: the called process gets only what its camunda:in mappings pass
    (none: no variables), and its caller only what the camunda:out mappings bring back.
    One that declares neither passes every variable both ways, as SpiffWorkflow does and
    this engine did before it read the mappings: cases already running on such a version
    go on as they started (a stored diagram is parsed again when its case is restored).
    The mappings are in `extensions["in"]` / `["out"]` (engine/parser.py), checked at deploy."""

    def _mapped(self) -> bool:
        return bool(self.extensions.get("in") or self.extensions.get("out"))

    def copy_data(self, my_task, subworkflow):
        if not self._mapped():
            return super().copy_data(my_task, subworkflow)
        start = subworkflow.get_next_task(subworkflow.task_tree, skip_subprocesses=True, spec_name="Start")
        start.set_data(**passed_variables(self.extensions.get("in", ()), my_task))

    def update_data(self, my_task, subworkflow):
        if not self._mapped():
            return super().update_data(my_task, subworkflow)
        my_task.data = {**my_task.data, **passed_variables(self.extensions.get("out", ()), subworkflow.last_task)}


class EventSubprocess(CallActivity):
    """A bpmn:subProcess with triggeredByEvent="true".  SpiffWorkflow's camunda parser makes
    it a CallActivity like any embedded subprocess, started with its case to wait at its
    start event; it runs just as that one did, and its own class tells the history that it
    begins only when its start event fires (as in Camunda 7, engine/projections.py)."""

    def _update_hook(self, my_task):
        """SpiffWorkflow updates the task of an unfinished subprocess at every engine step;
        once a beat's path has ended and the subprocess only waits for its event again, the
        end join of its scope, which waited for that path, is asked again (SpiffWorkflow
        updates the waiting tasks of the subprocess's workflow only)."""
        done = super()._update_hook(my_task)
        if not done and waits_for_its_event(my_task):
            for task in list(my_task.workflow.tasks.values()):
                if task._state == TaskState.WAITING and isinstance(task.task_spec, _EndJoin):
                    task.task_spec._update(task)
        return done


# a task that is open (the history's open activities; a subprocess whose calling task was open)
OPEN = TaskState.READY | TaskState.STARTED | TaskState.WAITING
_UNDER_WAY = OPEN | TaskState.ERROR


def waits_for_its_event(task) -> bool:
    """Whether `task` is an event subprocess that only waits for its event: nothing in it is
    under way but its start event (waiting for the first beat, or for the next beat of a
    timeCycle once the last one's path has ended) and its own end join, which waits for
    that start event.  A beat whose path is still under way is a running subprocess."""
    if not isinstance(task.task_spec, EventSubprocess) or task._state != TaskState.STARTED:
        return False
    subworkflow = task.workflow.top_workflow.get_subprocess(task)
    return subworkflow is None or not any(
        t._state & _UNDER_WAY and not isinstance(t.task_spec, (StartEvent, _EndJoin)) for t in subworkflow.get_tasks())


def _scope_tasks(my_task, end_spec: str, state: int, waiting: list | None = None):
    """The tasks of `my_task`'s scope in `state`, as SpiffWorkflow's end join walks them (to
    the end join's spec), without the event subprocesses that wait for their event and
    what lies behind them (put in `waiting` when given).  A generator: the end join's
    check stops at the first task that keeps it waiting, as SpiffWorkflow's walk did."""
    stack = [my_task.workflow.task_tree]
    while stack:
        task = stack.pop()
        if waits_for_its_event(task):
            if waiting is not None:
                waiting.append(task)
            continue
        if task._state & state:
            yield task
        if task.task_spec.name != end_spec:
            stack.extend(task.children)


def _end_beside_waiting_event_subprocesses() -> None:
    """A scope ends when its paths have ended, whatever event subprocess still waits for its
    event there (Camunda 7 removes the subscription with the scope); SpiffWorkflow's end
    join waited for every unfinished task of the scope, so such a case never ended.  One
    that fired runs to its end first, as in Camunda."""
    if hasattr(_EndJoin._check_threshold_unstructured, "__wrapped__"):
        return
    check, run = _EndJoin._check_threshold_unstructured, _EndJoin._run_hook

    def _check_threshold_unstructured(self, my_task):
        return not any(task is not my_task for task in _scope_tasks(my_task, self.name, TaskState.NOT_FINISHED_MASK))

    def _run_hook(self, my_task):
        waiting = []
        for _ in _scope_tasks(my_task, self.name, TaskState.STARTED, waiting):
            pass
        for task in waiting:
            task.cancel()
        return run(self, my_task)

    _check_threshold_unstructured.__wrapped__ = check
    _EndJoin._check_threshold_unstructured = _check_threshold_unstructured
    _EndJoin._run_hook = _run_hook


_end_beside_waiting_event_subprocesses()
merge_at_joins()


def connect_multi_instances(spec, subprocess_specs: dict) -> None:
    """SpiffWorkflow's multi-instance task hears that an instance ended through its
    instances' spec (`completed_event`), which it connects only when it creates an instance.
    A spec parsed anew (a restart, another server process, a case the spec cache had let
    go) had none: instances created before completed and the multi-instance never did (a
    construction permit's parallel review stood still after its last department).  Every
    parsed process is connected here, as SpiffWorkflow would when creating an instance."""
    for process in [spec, *subprocess_specs.values()]:
        for task_spec in process.task_specs.values():
            if isinstance(task_spec, LoopTask):       # a multi-instance, or a standard loop alike
                instances = process.task_specs[task_spec.task_spec]
                if not instances.completed_event.is_connected(task_spec.merge_child):
                    instances.completed_event.connect(task_spec.merge_child)


def passed_variables(mappings, task) -> dict:
    """What camunda:in (or camunda:out) mappings take from `task`'s variables, in their
    order: `variables="all"` every one, `source` one (a missing one passes as null, as in
    Camunda 7), `sourceExpression` its value; a `businessKey` mapping passes nothing (the
    called process runs in its caller's case, under its business key)."""
    values: dict = {}
    for mapping in mappings:
        if mapping.get("variables") == "all":
            from .projections import visible_data              # projections imports this module
            values.update(visible_data(task))
        elif "sourceExpression" in mapping:
            values[mapping["target"]] = task.workflow.script_engine.evaluate(task, mapping["sourceExpression"])
        elif "source" in mapping:
            values[mapping["target"]] = task.data.get(mapping["source"])
    return copy.deepcopy(values)


MAX_INSTANCES = 1000       # a multi-instance's instances: departments, materials, rounds (_LocalElementVariable)


class _LocalElementVariable(MultiInstanceTask):
    """camunda:elementVariable is local to each instance (as in Camunda 7): a case variable
    of that name is set aside while the instances run (SpiffWorkflow refused to start them,
    and its instances inherit their body's data, which would hide their element) and is
    back when the body completes; the element is dropped from the merged data so a later
    multi-instance may reuse the name."""

    SET_ASIDE = "caseValues"        # the body's internal data: the case's values of the element's name

    def _update_hook(self, my_task):
        """Refuse a multi-instance of more than MAX_INSTANCES before SpiffWorkflow builds it:
        a loopCardinality of 99999999999 took 3.3 GB and the server with it, and a start
        naming 20,000 departments held the writer for 80 s.  (SpiffWorkflow's own hook, which
        the parallel and sequential kinds call first, gives the task its data.)"""
        ready = super()._update_hook(my_task)
        if self.data_input is not None:
            collection = self.data_input.get(my_task)
            size = len(collection) if isinstance(collection, Sized) else None
            what = f"its collection {self.data_input.bpmn_id!r}"
        else:
            size = my_task.workflow.script_engine.evaluate(my_task, self.cardinality)
            what = "its loopCardinality"
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise WorkflowTaskException(f"{what} {self.cardinality!r} gave {size!r}: not a whole number of "
                                            "instances", task=my_task)
        if size is not None and size > MAX_INSTANCES:
            raise WorkflowTaskException(f"{what} asks for {size} instances; a multi-instance runs at most "
                                        f"{MAX_INSTANCES}", task=my_task)
        return ready

    def create_child(self, my_task, item, key_or_index=None):
        name = self.input_item.bpmn_id if self.input_item is not None else None
        if name is not None and name in my_task.data:
            my_task.internal_data.setdefault(self.SET_ASIDE, {})[name] = my_task.data.pop(name)
        super().create_child(my_task, item, key_or_index)

    def _run_hook(self, my_task):
        my_task.data.update(my_task.internal_data.pop(self.SET_ASIDE, {}))
        return super()._run_hook(my_task)

    def merge_child(self, workflow, child):
        if isinstance(self, ParallelMultiInstanceTask) and (self.data_output is None or self.output_item is None):
            # instances side by side, each on its own copy of the variables, merge as a join's
            # branches do, against the variables the multi-instance started from (its parent's):
            # SpiffWorkflow laid each copy over the others whole.  Then the rest of its
            # MultiInstanceTask.merge_child
            my_task = child.parent
            merge_branch(my_task.data, my_task.parent.data, child.data)
            my_task.internal_data["merged"].append(str(child.id))
        else:
            super().merge_child(workflow, child)
        item = self.input_item
        if item is not None and (self.output_item is None or self.output_item.bpmn_id != item.bpmn_id):
            child.parent.data.pop(item.bpmn_id, None)

    def check_completion_condition(self, my_task):
        """SpiffWorkflow's, with Camunda 7's counters beside the case's variables, as
        completion conditions are written (`nrOfCompletedInstances >= 2`): without them
        such a condition failed at every completion and the case could never move on."""
        merged = my_task.internal_data.get("merged", [])
        if not merged or self.condition is None:
            return False
        last = next(child for child in my_task.children if str(child.id) == merged[-1])
        completed = len(merged)
        if isinstance(self, ParallelMultiInstanceTask):
            total = sum(1 for _ in self._instances(my_task))
            active = total - completed
        else:
            if self.data_input is not None:
                total = completed + len(my_task.internal_data.get("remaining", []))
            else:
                total = my_task.internal_data.get("cardinality", completed)
            active = 1 if completed < total else 0
        counters = {"nrOfInstances": total, "nrOfActiveInstances": active, "nrOfCompletedInstances": completed}
        from .script_engine import ApprovalScriptEngine     # it imports engine.parser, which imports this module
        engine = my_task.workflow.script_engine
        if isinstance(engine, ApprovalScriptEngine):        # the counters hide a variable of their name, as in Camunda 7
            return engine.evaluate(last, self.condition, local=counters)
        return engine.evaluate(last, self.condition, external_context=counters)


class CamundaParallelMultiInstance(ParallelMultiInstanceTask, _LocalElementVariable):
    pass


class CamundaSequentialMultiInstance(SequentialMultiInstanceTask, _LocalElementVariable):
    pass
