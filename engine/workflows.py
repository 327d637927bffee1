"""SpiffWorkflow glue: serializing instances with the spec by reference, the parsed
spec cache, the live-workflow cache, and running engine steps until every branch waits.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Callable

from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.task_spec import BpmnTaskSpecConverter, MultiInstanceTaskConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.defaults import UserTask
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState

from .errors import ModelError
from .parser import SAFE_XML_PARSER, ApprovalParser
from .specs import (CamundaParallelMultiInstance, CamundaSequentialMultiInstance,
                    ExternalTask, PassThroughTask)


class ReferencedSpecWorkflowConverter(BpmnWorkflowConverter):
    """Stores the process spec by name: specs live in the definition cache, so an
    instance's state stays small and parsing happens once per definition version."""

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["spec"] = workflow.spec.name
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct


def _serializer_config() -> dict:
    config = dict(CAMUNDA_CONFIG)
    config[BpmnWorkflow] = ReferencedSpecWorkflowConverter
    # Every spec class of ours needs a converter (SpiffWorkflow has none for them).
    config[UserTask] = BpmnTaskSpecConverter
    config[PassThroughTask] = BpmnTaskSpecConverter
    config[ExternalTask] = BpmnTaskSpecConverter
    config[CamundaParallelMultiInstance] = MultiInstanceTaskConverter
    config[CamundaSequentialMultiInstance] = MultiInstanceTaskConverter
    return config


SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(_serializer_config()))


def dump_state(workflow: BpmnWorkflow) -> str:
    return SERIALIZER.serialize_json(workflow)


def load_state(state_json: str, spec, subprocess_specs: dict, script_engine) -> BpmnWorkflow:
    dct = json.loads(state_json)
    SERIALIZER.migrate(dct)
    dct["spec"] = spec                          # objects pass through restore unchanged
    dct["subprocess_specs"] = subprocess_specs
    workflow = SERIALIZER.from_dict(dct)
    workflow.script_engine = script_engine     # not serialized: re-attach every time
    return workflow


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

    def put(self, instance_id: str, version: int, workflow) -> None:
        if self.size <= 0:
            return
        with self._lock:
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
            if workflow.get_next_task(state=TaskState.READY, manual=False) is None:
                return
        raise ModelError(f"the process did not come to rest after {max_rounds} rounds (an endless loop?)")
    except WorkflowException as err:
        raise model_error(err) from err


def iter_all_tasks(workflow: BpmnWorkflow):
    """Every task of the instance, subprocesses included (plain dict walks: cheap)."""
    yield from workflow.tasks.values()
    for sub in workflow.subprocesses.values():
        yield from sub.tasks.values()
