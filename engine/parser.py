"""BPMN parsing in the Camunda 7 Modeler dialect, on SpiffWorkflow's CamundaParser.

SpiffWorkflow's camunda parser ignores most camunda:* attributes.  One mixin,
`CamundaExtensions`, is placed in front of every task/event parser class: it collects
the camunda attributes, properties and input/output mappings into `spec.extensions`,
accepts ISO-8601 timer literals without quotes, and maps camunda:collection /
camunda:elementVariable onto SpiffWorkflow's standard multi-instance.  A call activity's
camunda:in / camunda:out go into `spec.extensions` as "in" / "out" (engine/specs.py
`CalledProcess` passes them; engine/validation.py refuses what it cannot pass); an external
task's camunda:errorEventDefinitions as "errorEventDefinitions" (engine/external_tasks.py).
"""
from __future__ import annotations

import re

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.event_parsers import (CANCEL_EVENT_XPATH, ERROR_EVENT_XPATH, ESCALATION_EVENT_XPATH,
                                                     MESSAGE_EVENT_XPATH, SIGNAL_EVENT_XPATH, TERMINATION_EVENT_XPATH,
                                                     EventDefinitionParser)
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.bpmn.parser.task_parsers import SubprocessParser
from SpiffWorkflow.bpmn.specs.data_spec import TaskDataReference
from SpiffWorkflow.bpmn.specs.defaults import UserTask
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.camunda.parser.event_parsers import (CamundaBoundaryEventParser, CamundaEndEventParser,
                                                      CamundaIntermediateCatchEventParser,
                                                      CamundaIntermediateThrowEventParser,
                                                      CamundaStartEventParser)
from SpiffWorkflow.camunda.parser.task_spec import CallActivityParser, CamundaTaskParser, SubWorkflowParser

from .specs import (CalledProcess, CamundaErrorEventDefinition, CamundaParallelMultiInstance, CamundaSequentialMultiInstance,
                    EventSubprocess, ExternalTask, PassThroughTask, ThrownSignalEventDefinition,
                    UnsentMessageEventDefinition)

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"

# camunda:* attributes we honour on flow nodes (Camunda Modeler, Camunda 7 mode)
TASK_ATTRIBUTES = (
    "candidateGroups", "candidateUsers", "assignee", "dueDate", "followUpDate", "priority",
    "formKey", "formRef", "formRefBinding", "formRefVersion",
    "type", "topic", "taskPriority", "asyncBefore", "asyncAfter",
    "class", "expression", "delegateExpression", "resultVariable",
    "calledElementBinding", "calledElementVersion",
    "initiator",            # a start event's: the variable that holds who started the case (runtime.start_instance)
)

_ISO_DURATION = re.compile(r"^-?P(?=\d|T\d)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
                           r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$", re.IGNORECASE)
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_ISO_CYCLE = re.compile(r"^R\d*/[^\s]+$", re.IGNORECASE)
# the attributes of a call activity's camunda:in / camunda:out that are kept (the others are refused at deploy)
CALL_MAPPING_ATTRIBUTES = ("source", "sourceExpression", "target", "variables", "businessKey", "local")


def is_iso_literal(text: str) -> bool:
    text = text.strip()
    return bool(_ISO_DURATION.match(text) or _ISO_DATETIME.match(text) or _ISO_CYCLE.match(text))


class Expression(str):
    """The source of one `${...}` in a text (without `${` and `}`)."""


class Condition(str):
    """The source of a condition (a sequence flow's, a conditional event's, a multi-instance's
    completionCondition), which must give a Boolean as in Camunda 7 (ApprovalScriptEngine.evaluate);
    `element` says where it is drawn.  SpiffWorkflow hands a condition's text to the script engine
    from several places; marking the text here lets that one seam tell a condition apart."""

    element: str | None

    def __new__(cls, text: str, element: str | None = None) -> "Condition":
        condition = super().__new__(cls, text)
        condition.element = element     # a copy (pickle, deepcopy) is built from the text, then given it back
        return condition


def condition(text: str | None, element: str) -> Condition | None:
    return None if text is None else Condition(text, element)


def text_parts(text: str) -> tuple[list[str], bool]:
    """`text` cut into literal pieces (str) and expressions (Expression), as Camunda 7 reads
    a composite expression (`${a}-${b}`, `审查：${applicantName}`), and whether a `${` is
    never closed (the text from it on is then one literal piece).  An expression ends at
    the `}` that closes its `{`: braces and quoted strings inside it (`${ {'a': 1}[k] }`,
    `${x == '}'}`) do not end it."""
    parts: list[str] = []
    literal_from = i = 0
    unclosed = False
    while i < len(text) - 1 and not unclosed:
        if text[i] in "$#" and text[i + 1] == "{":
            end = _closing_brace(text, i + 2)
            if end is None:
                unclosed = True
                continue
            if i > literal_from:
                parts.append(text[literal_from:i])
            parts.append(Expression(text[i + 2:end]))
            literal_from = i = end + 1
        else:
            i += 1
    if literal_from < len(text):
        parts.append(text[literal_from:])
    return parts, unclosed


def _closing_brace(text: str, i: int) -> int | None:
    depth, quote = 1, None
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def embedded_expressions(text: str | None) -> list[Expression]:
    """The expressions of each `${...}` in `text` (a closed one; see `text_parts`)."""
    return [p for p in text_parts(text or "")[0] if isinstance(p, Expression)]


def _lone_expression(text: str | None) -> Expression | None:
    """`expr` when `text` is one `${expr}` alone (blanks around it allowed)."""
    if text is None:
        return None
    parts, unclosed = text_parts(text.strip())
    return parts[0] if not unclosed and len(parts) == 1 and isinstance(parts[0], Expression) else None


def unwrap_placeholder(text: str | None) -> str | None:
    """`${expr}` (Camunda's expression syntax) -> `expr`; anything else unchanged."""
    if text is None:
        return None
    lone = _lone_expression(text)
    return lone.strip() if lone is not None else text.strip()


def is_expression(value: str | None) -> bool:
    """One `${expr}` alone: its value keeps its type (a number, a list), as in Camunda 7."""
    return _lone_expression(value) is not None


def is_template(value: str | None) -> bool:
    """Text with `${...}` inside it (`dept_${region}`, `${a}-${b}`), which Camunda 7 evaluates
    as the text with each expression's value put in (a composite expression)."""
    return not is_expression(value) and bool(embedded_expressions(value))


def has_unterminated_expression(value: str | None) -> bool:
    """A `${` whose `}` never comes (`${dept`, `审查：${applicantName`)."""
    return value is not None and text_parts(value)[1]


def timer_expression(text: str | None) -> str:
    """Timer text as SpiffWorkflow wants it: a Python expression.

    Camunda Modeler writes literals (`PT2S`, `2025-10-01T09:00:00+08:00`, `R3/PT1H`);
    those become string literals.  `${expr}` and anything else are expressions."""
    text = (text or "").strip()
    if not text:
        return text
    if is_iso_literal(text):
        return repr(text)
    return unwrap_placeholder(text)


class CamundaExtensions:
    """Mixed in front of every node parser class (see `ApprovalParser`)."""

    PARALLEL_MI_CLASS = CamundaParallelMultiInstance
    SEQUENTIAL_MI_CLASS = CamundaSequentialMultiInstance

    def parse_extensions(self, node=None):
        node = self.node if node is None else node
        ext: dict = {}
        for attr in TASK_ATTRIBUTES:
            value = node.get(f"{{{CAMUNDA_NS}}}{attr}")
            if value is not None:
                ext[attr] = value
        props = node.xpath("./bpmn:extensionElements/camunda:properties/camunda:property",
                           namespaces={"bpmn": BPMN_NS, "camunda": CAMUNDA_NS})
        if props:
            # a nameless one is refused at deploy (engine/deployments.py); one stored before is ignored
            ext["properties"] = {p.get("name"): p.get("value") for p in props if p.get("name")}
        io = self._input_output(node)
        if io:
            ext["inputOutput"] = io
        if node.tag == full_tag("callActivity"):
            ext.update(self._call_mappings(node))
        thrown = self._thrown_errors(node)
        if thrown:
            ext["errorEventDefinitions"] = thrown
        return ext

    def _thrown_errors(self, node) -> list[dict]:
        """An external task's camunda:errorEventDefinitions, in document order: the BPMN error
        each throws when its expression is true as the worker completes or fails the task
        (engine/external_tasks.py).  Checked at deploy (engine/validation.py)."""
        errors = self.process_parser.parser.errors
        found = []
        for definition in node.xpath("./bpmn:extensionElements/camunda:errorEventDefinition",
                                     namespaces={"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}):
            error = errors.get(definition.get("errorRef") or "") or {}
            found.append({"id": definition.get("id"), "errorRef": definition.get("errorRef"),
                          "expression": definition.get("expression"), "code": error.get("error_code")})
        return found

    @staticmethod
    def _call_mappings(node) -> dict:
        """camunda:in / camunda:out, in document order, as {"in": [...], "out": [...]}."""
        ns = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}
        return {kind: [{attr: m.get(attr) for attr in CALL_MAPPING_ATTRIBUTES if m.get(attr) is not None}
                       for m in node.xpath(f"./bpmn:extensionElements/camunda:{kind}", namespaces=ns)]
                for kind in ("in", "out")}

    @staticmethod
    def _input_output(node) -> dict:
        ns = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}
        result = {}
        for kind in ("inputParameter", "outputParameter"):
            params = node.xpath(f"./bpmn:extensionElements/camunda:inputOutput/camunda:{kind}", namespaces=ns)
            if params:
                result["inputs" if kind == "inputParameter" else "outputs"] = [
                    {"name": p.get("name"), "expression": (p.text or "").strip(),
                     "line": p.sourceline} for p in params]
        return result

    # Camunda 7 ignores data store references (documentation only); SpiffWorkflow wants an
    # implementation of each and refused the diagram with an object's repr.  Data objects
    # stay SpiffWorkflow's.
    def parse_incoming_data_references(self):
        return self._data_objects("dataInputAssociation", "sourceRef")

    def parse_outgoing_data_references(self):
        return self._data_objects("dataOutputAssociation", "targetRef")

    def _data_objects(self, association: str, end: str) -> list:
        ns = {"bpmn": BPMN_NS}
        root = self.node.getroottree().getroot()
        specs = []
        for ref in self.node.xpath(f"./bpmn:{association}/bpmn:{end}", namespaces=ns):
            target = (ref.text or "").strip()
            if root.xpath(".//bpmn:dataStoreReference[@id=$i]", namespaces=ns, i=target):
                continue
            reference = self.process_parser.get_data_object_reference(target)
            if reference is None:
                found = root.xpath(".//bpmn:dataObjectReference[@id=$i]", namespaces=ns, i=target)
                reference = found[0] if found else None
            data_object = self._data_object(reference)
            if data_object is None:
                self.raise_validation_exception(f"{association} {end} '{target}' is neither a data object "
                                                "reference nor a data store reference")
            specs.append(data_object)
        return specs

    def _data_object(self, reference):
        """The data object a reference points to, in this process or an enclosing one."""
        current = self.process_parser if reference is not None else None
        while current is not None:
            found = current.spec.data_objects.get(reference.get("dataObjectRef"))
            if found is not None:
                return found
            current = current.parent
        return None

    def parse_message_event(self, message_event):
        """Catching events: a correlated message's variables become process variables (Camunda 7);
        SpiffWorkflow's camunda flavour would file them under one `<id>_Response` variable.
        Throwing events (intermediate and end) pass through (engine/specs.py)."""
        if isinstance(self, (CamundaStartEventParser, CamundaIntermediateCatchEventParser,
                             CamundaBoundaryEventParser)):
            return EventDefinitionParser.parse_message_event(self, message_event)
        definition = super().parse_message_event(message_event)
        if isinstance(self, (CamundaIntermediateThrowEventParser, CamundaEndEventParser)):
            implemented = [f"camunda:{attr}" for attr in ("type", "topic", "class", "expression", "delegateExpression")
                           if message_event.get(f"{{{CAMUNDA_NS}}}{attr}") is not None]
            if implemented:
                self.raise_validation_exception(
                    f"a message throw event with an implementation ({', '.join(implemented)}) is not supported: "
                    "draw a send task with camunda:type=\"external\" and a camunda:topic before the event, and "
                    "leave the event's implementation empty (it then passes, as in Camunda 7)")
            definition = UnsentMessageEventDefinition(definition.name, definition.correlation_properties)
        return definition

    def parse_signal_event(self, signal_event):
        """A throwing event's signal also starts the processes waiting at a signal start event
        for it, with its camunda:in mappings (engine/specs.py `ThrownSignalEventDefinition`;
        checked at deploy as a call activity's are, engine/validation.py)."""
        definition = super().parse_signal_event(signal_event)
        if not isinstance(self, (CamundaIntermediateThrowEventParser, CamundaEndEventParser)):
            return definition
        mappings = [{attr: m.get(attr) for attr in CALL_MAPPING_ATTRIBUTES if m.get(attr) is not None}
                    for m in signal_event.xpath("./bpmn:extensionElements/camunda:in",
                                                namespaces={"bpmn": BPMN_NS, "camunda": CAMUNDA_NS})]
        return ThrownSignalEventDefinition(definition.name, mappings, description=definition.description)

    def parse_error_event(self, error_event):
        """Camunda 7's error message and the variables a catching event sets (engine/specs.py)."""
        definition = super().parse_error_event(error_event)
        error = error_event.xpath("//bpmn:error[@id=$ref]", ref=error_event.get("errorRef") or "",
                                  namespaces={"bpmn": BPMN_NS})
        return CamundaErrorEventDefinition(
            definition.name, definition.code, description=definition.description,
            message=error[0].get(f"{{{CAMUNDA_NS}}}errorMessage") if error else None,
            code_variable=error_event.get(f"{{{CAMUNDA_NS}}}errorCodeVariable"),
            message_variable=error_event.get(f"{{{CAMUNDA_NS}}}errorMessageVariable"))

    def parse_condition(self, sequence_flow):
        return condition(super().parse_condition(sequence_flow), f"sequence flow '{sequence_flow.get('id')}'")

    def parse_conditional_event(self, event):
        definition = super().parse_conditional_event(event)
        definition.expression = condition(definition.expression, f"conditional event '{self.bpmn_id}'")
        return definition

    def parse_timer_event(self, event):
        definition = super().parse_timer_event(event)
        definition.expression = timer_expression(definition.expression)
        return definition

    def _add_multiinstance_task(self, loop_characteristics):
        """camunda:collection + camunda:elementVariable, or a standard loopCardinality."""
        sequential = loop_characteristics.get("isSequential") == "true"
        ns = {"bpmn": BPMN_NS}
        cardinality = loop_characteristics.xpath("./bpmn:loopCardinality", namespaces=ns)
        cardinality = unwrap_placeholder(cardinality[0].text) if cardinality else None
        collection = unwrap_placeholder(loop_characteristics.get(f"{{{CAMUNDA_NS}}}collection"))
        element = loop_characteristics.get(f"{{{CAMUNDA_NS}}}elementVariable")
        completion = loop_characteristics.xpath("./bpmn:completionCondition", namespaces=ns)
        completion = condition(unwrap_placeholder(completion[0].text) if completion else None,
                               f"multi-instance '{self.bpmn_id}' (completionCondition)")
        if (cardinality is None) == (collection is None):
            self.raise_validation_exception(
                "a multi-instance activity needs exactly one of camunda:collection or loopCardinality")
        if collection is not None and not collection.isidentifier():
            self.raise_validation_exception(
                f"camunda:collection must name a process variable holding a list, got {collection!r}")
        original = self.spec.task_specs.pop(self.task.name)
        params = {
            "task_spec": "",
            "cardinality": cardinality,
            "data_input": TaskDataReference(collection) if collection else None,
            "input_item": TaskDataReference(element) if element else None,
            "condition": completion,
        }
        cls = self.SEQUENTIAL_MI_CLASS if sequential else self.PARALLEL_MI_CLASS
        self.task = cls(self.spec, original.name, **params)
        self._copy_task_attrs(original, loop_characteristics)


class ExternalTaskParser(CamundaTaskParser):
    """serviceTask / sendTask with camunda:type="external"."""

    def create_task(self):
        if self.node.get(f"{{{CAMUNDA_NS}}}type") != "external":
            self.raise_validation_exception(
                "only external service tasks are supported: set Implementation to 'External' "
                "and a Topic in Camunda Modeler (camunda:type=\"external\" camunda:topic=\"...\")")
        if not self.node.get(f"{{{CAMUNDA_NS}}}topic"):
            self.raise_validation_exception("an external service task needs a camunda:topic")
        return self.spec_class(self.spec, self.bpmn_id, **self.bpmn_attributes)


class UserTaskParser(CamundaTaskParser):
    def create_task(self):
        return self.spec_class(self.spec, self.bpmn_id, **self.bpmn_attributes)


class SubProcessParser(SubWorkflowParser):
    """An embedded subprocess; an event subprocess (triggeredByEvent) as an `EventSubprocess`,
    which SpiffWorkflow's camunda parser does not tell apart from the embedded one."""

    def create_task(self):
        # "true" as SpiffWorkflow's process parser reads it (it connects this to the Start)
        spec_class = EventSubprocess if self.node.get("triggeredByEvent") == "true" else self.spec_class
        subworkflow_spec = SubprocessParser.get_subprocess_spec(self)
        return spec_class(self.spec, self.bpmn_id, subworkflow_spec=subworkflow_spec, **self.bpmn_attributes)


class EndEventParser(CamundaEndEventParser):
    """An end event, with the signal end event that SpiffWorkflow 3.2's parser leaves out
    (it reads the end event as a none end event, so the signal was never thrown)."""

    def create_task(self):
        event_definition = self.get_event_definition(
            [MESSAGE_EVENT_XPATH, SIGNAL_EVENT_XPATH, CANCEL_EVENT_XPATH, ERROR_EVENT_XPATH, ESCALATION_EVENT_XPATH,
             TERMINATION_EVENT_XPATH])
        task = self._create_task(event_definition)
        task.connect(self.spec.end)
        return task


def _with_extensions(parser_class):
    return type(f"Approval{parser_class.__name__}", (CamundaExtensions, parser_class), {})


class ApprovalParser(CamundaParser):
    """The parser every deployment and every spec cache miss goes through."""

    OVERRIDE_PARSER_CLASSES = {
        **CamundaParser.OVERRIDE_PARSER_CLASSES,
        full_tag("userTask"): (UserTaskParser, UserTask),
        full_tag("task"): (CamundaTaskParser, PassThroughTask),
        full_tag("manualTask"): (CamundaTaskParser, PassThroughTask),
        full_tag("serviceTask"): (ExternalTaskParser, ExternalTask),
        full_tag("sendTask"): (ExternalTaskParser, ExternalTask),
        full_tag("callActivity"): (CallActivityParser, CalledProcess),
        full_tag("subProcess"): (SubProcessParser, CamundaParser.OVERRIDE_PARSER_CLASSES[full_tag("subProcess")][1]),
        full_tag("endEvent"): (EndEventParser, CamundaParser.OVERRIDE_PARSER_CLASSES[full_tag("endEvent")][1]),
    }
    OVERRIDE_PARSER_CLASSES = {
        tag: (_with_extensions(p) if issubclass(p, TaskParser) else p, s)
        for tag, (p, s) in {**CamundaParser.PARSER_CLASSES, **OVERRIDE_PARSER_CLASSES}.items()
    }

    def _add_data_stores(self, bpmn):
        """Data stores are documentation, as in Camunda 7 (see CamundaExtensions)."""


SAFE_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                  dtd_validation=False, huge_tree=False, remove_comments=False)
