"""Deployment checks for BPMN files: safe XML, the BPMN 2.0 XSD, our dialect's rules
and every expression, each problem reported with file, line and element id.

Parsing never resolves entities, loads a DTD or touches the network; a document
that carries a DTD at all is refused (billion-laughs and XXE need one).
"""
from __future__ import annotations

import ast
import os
import re
import textwrap
import threading
from copy import deepcopy
from dataclasses import dataclass, field

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import XSD_PATH
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from . import due_dates, sandbox
from .expressions import FUNCTION_NAMES
from .parser import (BPMN_NS, CALL_MAPPING_ATTRIBUTES, CAMUNDA_NS, SAFE_XML_PARSER, embedded_expressions,
                     has_unterminated_expression, is_expression, is_iso_literal, unwrap_placeholder)

NS = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS}
MAX_BPMN_BYTES = 5 * 1024 * 1024
# camunda attributes whose value may be `${expression}`
EXPRESSION_ATTRIBUTES = ("candidateGroups", "candidateUsers", "assignee", "dueDate", "followUpDate",
                         "priority", "formKey", "taskPriority", "topic")
UNSUPPORTED_EXTENSIONS = {
    "formData": "generated task forms are not supported; draw a Camunda Form and link it with camunda:formRef",
    "connector": "Camunda connectors are not supported; use an external service task",
    "field": "field injection targets Java delegates; use an external service task",
}
# flow nodes drawn in the modeler that the engine cannot run: refused at deploy with advice
UNSUPPORTED_ELEMENTS = {
    "businessRuleTask": "business rule tasks (DMN decisions) are not supported: compute the result in a rule "
                        "step (a task with camunda:inputOutput output parameters), or ask a department system "
                        "with a service task (camunda:type=\"external\" and a camunda:topic)",
    "adHocSubProcess": "ad-hoc subprocesses are not supported (as in Camunda 7): draw a subprocess whose "
                       "tasks are joined by sequence flows, or parallel tasks after a parallel gateway",
}


@dataclass
class Problem:
    resource: str
    message: str
    line: int | None = None
    column: int | None = None
    element_id: str | None = None
    warning: bool = False

    def as_camunda(self) -> dict:
        """Camunda 7.20's ParseException `details` entry."""
        return {"message": self.message, "line": self.line or 0, "column": self.column or 0,
                "mainElementId": self.element_id, "elementIds": [self.element_id] if self.element_id else [],
                # Camunda's DTO spells this key with a Cyrillic "е"; the modeler reads that one
                "\u0435lementIds": [self.element_id] if self.element_id else []}

    def __str__(self) -> str:
        where = self.resource + (f":{self.line}" if self.line else "")
        element = f" (element '{self.element_id}')" if self.element_id else ""
        return f"{where}{element}: {self.message}"


@dataclass
class CheckedBpmn:
    name: str
    tree: etree._Element
    processes: list = field(default_factory=list)     # executable process elements


_schema = None
_schema_lock = threading.Lock()


def _bpmn_schema() -> etree.XMLSchema:
    global _schema
    with _schema_lock:
        if _schema is None:
            parser = etree.XMLParser(resolve_entities=False, no_network=True)
            _schema = etree.XMLSchema(etree.parse(XSD_PATH, parser))
        return _schema


def parse_xml(name: str, content: bytes, problems: list) -> etree._Element | None:
    if len(content) > MAX_BPMN_BYTES:
        problems.append(Problem(name, f"the file is {len(content)} bytes; BPMN files are limited to {MAX_BPMN_BYTES}"))
        return None
    if _declares_dtd(content):
        problems.append(Problem(name, "DTDs and entity declarations are not allowed in BPMN files; "
                                      "remove the <!DOCTYPE ...> block"))
        return None
    try:
        root = etree.fromstring(content, SAFE_XML_PARSER)
    except etree.XMLSyntaxError as err:
        line, column = (err.position if err.position else (None, None))
        problems.append(Problem(name, f"not well-formed XML: {err.msg}", line, column))
        return None
    if root.getroottree().docinfo.doctype:
        problems.append(Problem(name, "DTDs are not allowed in BPMN files"))
        return None
    if root.tag != f"{{{BPMN_NS}}}definitions":
        problems.append(Problem(name, f"the root element must be bpmn:definitions, found {root.tag!r}", root.sourceline))
        return None
    return root


# XML spells these in capitals; searched in every encoding a BPMN file may arrive in
_DTD_MARKERS = tuple(marker.encode(encoding) for marker in ("<!DOCTYPE", "<!ENTITY")
                     for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"))


def _declares_dtd(content: bytes) -> bool:
    """Refused before any parsing, anywhere in the file (a DTD may follow a long comment)
    and in UTF-16/32 too; libxml2's entity-amplification limit is the second line."""
    return any(marker in content for marker in _DTD_MARKERS)


def check_xsd(name: str, root, problems: list) -> None:
    schema = _bpmn_schema()
    # bpmn-js writes correlation retrieval expressions in a form the XSD rejects;
    # SpiffWorkflow's validator rewrites them the same way before validating (in a deep
    # copy, which keeps the lines: a copy parsed again from text lost the XML declaration's)
    copy = deepcopy(root)
    for expr in copy.xpath(".//bpmn:correlationPropertyRetrievalExpression/bpmn:formalExpression", namespaces=NS):
        expr.tag = f"{{{BPMN_NS}}}messagePath"
    if not schema.validate(copy):
        for error in list(schema.error_log)[:20]:
            problems.append(_xsd_problem(name, root, error))


# libxml2 says this of an id used twice, and of one that is not an XML name
_BAD_ID = re.compile(r"attribute 'id': '(.*)' is not a valid value of the atomic type 'xs:ID'")


def _xsd_problem(name: str, root, error) -> Problem:
    bad_id = _BAD_ID.search(error.message)
    if bad_id is None:
        return Problem(name, f"BPMN 2.0 schema: {error.message}", error.line, error.column,
                       _element_id_at(root, error.line))
    value = bad_id.group(1)
    holders = root.xpath("//*[@id=$i]", i=value)
    if len(holders) > 1:
        lines = ", ".join(str(e.sourceline) for e in holders)
        message = (f"duplicate id '{value}': {len(holders)} elements have it (lines {lines}); ids must be unique "
                   "within a file, rename all but one")
    else:
        message = (f"id '{value}' is not a valid XML id: start it with a letter or '_' and use letters, digits, "
                   "'-', '_' and '.' only")
    return Problem(name, message, error.line, error.column, value)


def _element_id_at(root, line: int | None) -> str | None:
    if not line:
        return None
    for element in root.iter():
        if element.sourceline == line and element.get("id"):
            return element.get("id")
    return None


def _owner_id(element) -> str | None:
    while element is not None:
        if element.get("id"):
            return element.get("id")
        element = element.getparent()
    return None


def check_expression(name: str, element, source: str | None, what: str, problems: list, mode: str = "eval",
                     element_id: str | None = None) -> None:
    """`element_id`: the element the modeler shows the problem on, when not `element`'s own
    or nearest (a camunda:errorEventDefinition's id is no diagram element; its task is)."""
    element_id = element_id or _owner_id(element)
    if source is None or not source.strip():
        problems.append(Problem(name, f"{what} is empty", element.sourceline, None, element_id))
        return
    code = unwrap_placeholder(source) if mode == "eval" else source
    try:
        sandbox.check(code, mode, FUNCTION_NAMES)
    except sandbox.SandboxError as err:
        line = element.sourceline + max((getattr(err, "line", None) or 1) - 1, 0) if mode == "exec" else element.sourceline
        problems.append(Problem(name, f"{what} {source.strip()!r}: {err}{_juel_hint(source, err)}", line,
                                getattr(err, "column", None), element_id))
        return
    idioms = _camunda_idioms(code, mode)
    if idioms:
        first = idioms[0][0]
        uses = ", ".join(dict.fromkeys(f"`{ast.unparse(node)}`" for node, _ in idioms))
        line = element.sourceline + first.lineno - 1 if mode == "exec" else element.sourceline
        problems.append(Problem(name, f"{what} {source.strip()!r}: {uses} would fail on every case "
                                      f"(line {first.lineno}, column {first.col_offset + 1}); "
                                      f"{_in_python(list(dict.fromkeys(s for _, s in idioms)))}",
                                line, None, element_id))


# JUEL (Camunda 7's expression language) spellings a designer may bring, and Python's
_JUEL = ((r"&&", "`and` for `&&`"), (r"\|\|", "`or` for `||`"), (r"!(?!=)", "`not` for `!`"),
         (r"\bgt\b", "`>` for `gt`"), (r"\blt\b", "`<` for `lt`"), (r"\bge\b", "`>=` for `ge`"),
         (r"\ble\b", "`<=` for `le`"), (r"\beq\b", "`==` for `eq`"), (r"\bne\b", "`!=` for `ne`"),
         (r"\bempty\s", "`not x` for `empty x`"), (r"\bdiv\b", "`/` for `div`"), (r"\bmod\b", "`%` for `mod`"),
         (r"\?[^?]*:", "`b if a else c` for `a ? b : c`"))
# ... and the Java methods and Camunda objects a JUEL expression calls, which parse as Python
# but fail on every value (no value here has these attributes: sandbox.ATTRIBUTE_NAMES)
_JAVA_METHODS = {"equals": "`a == b` for `a.equals(b)`", "size": "`len(x)` for `x.size()`",
                 "length": "`len(x)` for `x.length()`", "isEmpty": "`not x` for `x.isEmpty()`",
                 "contains": "`y in x` for `x.contains(y)`"}
_EXECUTION = {"getVariable": "`variable('name', default)` for `execution.getVariable('name')`",
              "processBusinessKey": "`business_key()` for `execution.processBusinessKey`",
              "getProcessBusinessKey": "`business_key()` for `execution.getProcessBusinessKey()`",
              "businessKey": "`business_key()` for `execution.businessKey`"}
_NO_EXECUTION = ("a variable's name or `variable('name', default)` for a variable, `business_key()` for the "
                 "business key (Camunda's `execution` object does not exist here)")


def _in_python(spellings: list[str]) -> str:
    return f"expressions here are Python (a safe subset), not JUEL: write {', '.join(spellings)}"


def _juel_hint(source: str, err) -> str:
    if "syntax error" not in str(err):
        return ""
    spellings = [python for juel, python in _JUEL if re.search(juel, source)]
    return f"; {_in_python(spellings)}" if spellings else ""


def _camunda_idioms(code: str, mode: str) -> list[tuple[ast.Attribute, str]]:
    """`execution.getVariable('who')`, `status.equals("ok")`, `items.size()`, each with the
    Python spelling: code that passed sandbox.check but would fail whatever the case holds."""
    tree = ast.parse(code.strip() if mode == "eval" else textwrap.dedent(code), mode=mode)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or node.attr in sandbox.ATTRIBUTE_NAMES:
            continue
        if isinstance(node.value, ast.Name) and node.value.id == "execution":
            found.append((node, _EXECUTION.get(node.attr, _NO_EXECUTION)))
        elif node.attr in _JAVA_METHODS:
            found.append((node, _JAVA_METHODS[node.attr]))
    return sorted(found, key=lambda pair: (pair[0].lineno, pair[0].col_offset))


def check_text(name: str, element, text: str, what: str, problems: list) -> None:
    """An attribute or parameter evaluated as Camunda 7 does (ScriptEngine.evaluate_text): one
    `${expression}`, text with expressions in it (`dept_${region}`, `${a}-${b}`), or plain
    text.  An unclosed `${` would be taken as plain text: refused."""
    if has_unterminated_expression(text):
        problems.append(Problem(name, f"{what} {text!r}: an expression's '${{' is never closed with '}}' (it would "
                                      "be taken as plain text); close it, e.g. ${dept}", element.sourceline, None,
                                _owner_id(element)))
    elif is_expression(text):
        check_expression(name, element, text, what, problems)
    else:
        for expression in embedded_expressions(text):
            check_expression(name, element, expression, f"{what} {text!r}, its expression", problems)


def _listener_refusal(listener) -> str:
    """What the listener is (a script, an expression, Java code) and what to draw instead."""
    kind = etree.QName(listener).localname
    script = listener.find("camunda:script", NS)
    if script is not None:
        what = f"a script listener ({script.get('scriptFormat') or 'no scriptFormat'}) is not run here"
    elif listener.get("expression") is not None:
        what = f"an expression listener ({listener.get('expression')}) calls Camunda 7's engine API (execution, " \
               "task), which does not exist here"
    else:
        what = "it runs Java code (class, delegateExpression)"
    return (f"camunda:{kind} is not supported: {what}; to set variables, draw a rule step (a task with "
            "camunda:inputOutput output parameters) or a Python script task (where the operator enables them), "
            "for other work an external service task")


# what Camunda Modeler writes for "Business key" on a call activity's In mappings: the
# caller's own business key, which a called process here has anyway (it runs in its caller's case)
_CALLERS_BUSINESS_KEY = re.compile(r"^[$#]\{\s*execution\.processBusinessKey\s*\}$")


def check_call_mapping(name: str, mapping, problems: list) -> None:
    """A call activity's camunda:in / camunda:out: `variables="all"`, or a `target` with a
    `source` or a `sourceExpression` (engine/specs.py `passed_variables`)."""
    kind = etree.QName(mapping).localname
    attrs = {k: v for k, v in mapping.attrib.items() if "}" not in k}
    what = f"camunda:{kind}"

    def refuse(message):
        problems.append(Problem(name, f"{what}: {message}", mapping.sourceline, None, _owner_id(mapping)))

    unknown = sorted(set(attrs) - set(CALL_MAPPING_ATTRIBUTES))
    if unknown:
        return refuse(f"the attribute {', '.join(unknown)} is not supported")
    if attrs.pop("local", "false") != "false":
        return refuse('local="true" is not supported: a called process and its caller share no local scopes here; '
                      "map the variables with source and target")
    if "businessKey" in attrs:
        if kind == "out" or len(attrs) > 1 or not _CALLERS_BUSINESS_KEY.match(attrs["businessKey"].strip()):
            refuse(f"businessKey {attrs['businessKey']!r} is not supported: a called process runs in its caller's "
                   "case under the caller's business key (only #{execution.processBusinessKey} is accepted)")
        return
    if "variables" in attrs:
        if attrs["variables"] != "all" or len(attrs) > 1:
            refuse(f"variables={attrs['variables']!r} passes nothing: write variables=\"all\" alone, or a source "
                   "and a target")
        return
    sources = [a for a in ("source", "sourceExpression") if a in attrs]
    if len(sources) != 1 or not attrs.get("target"):
        return refuse("needs a target and exactly one of source and sourceExpression (or variables=\"all\")")
    if sources == ["sourceExpression"]:
        check_expression(name, mapping, attrs["sourceExpression"], f"{what} sourceExpression", problems)


# the tasks Camunda 7 evaluates a camunda:errorEventDefinition on: external service and send tasks
_THROWING_TASKS = ("serviceTask", "sendTask")


def check_thrown_error(name: str, root, definition, problems: list) -> None:
    """A camunda:errorEventDefinition (Camunda 7.16+): the BPMN error an external task throws
    when its expression is true as the worker completes or fails it (engine/external_tasks.py).
    Refused where the engine could not throw it: Camunda would deploy some of these and then
    fail the completion, or never throw."""
    owner = definition.getparent()
    if etree.QName(owner).localname == "extensionElements":
        owner = owner.getparent()
    what = "camunda:errorEventDefinition" + (f" '{definition.get('id')}'" if definition.get("id") else "")

    def refuse(message):
        problems.append(Problem(name, f"{what}: {message}", definition.sourceline, None, owner.get("id")))

    if etree.QName(owner).localname not in _THROWING_TASKS or owner.get(f"{{{CAMUNDA_NS}}}type") != "external":
        return refuse("error event definitions work only on an external service task (camunda:type=\"external\"), "
                      "where the worker's completion or failure is checked against them; on this element nothing "
                      "would evaluate it. Draw the check as an exclusive gateway after the task instead")
    ref = definition.get("errorRef")
    if not ref:
        return refuse("names no error: pick the BPMN error it throws under 'Error' in the modeler (errorRef)")
    error = root.xpath("//bpmn:error[@id=$ref]", ref=ref, namespaces=NS)
    if not error:
        return refuse(f"errorRef '{ref}' is no bpmn:error of this file: pick the BPMN error it throws")
    if not (error[0].get("errorCode") or "").strip():
        return refuse(f"the error '{ref}' has no errorCode, which the error boundary event catches it by: "
                      "give the error a code in the modeler")
    expression = definition.get("expression")
    if expression is None or not expression.strip():
        return refuse("has no expression, so it would never throw: write the condition, e.g. ${creditScore < 60}")
    check_expression(name, definition, expression, f"{what}: expression", problems, element_id=owner.get("id"))


_LOOKS_ISO = re.compile(r"^(R\d*/|P\d|PT\d|\d{4}-\d{2})", re.IGNORECASE)
# one word beginning as a duration's `PT` does (`PTxyz`, `PT_2H`, `PT`; `PT2X` is one of
# _LOOKS_ISO's): a mistyped duration, which would otherwise be read as a variable of that
# name and fail only when a case reaches the timer; `${PTxyz}` still reads such a variable
_WORD_LIKE_DURATION = re.compile(r"^PT(?!\d)[A-Za-z0-9_]*$")
# a Quartz (Camunda 7) or Unix cron expression: 5 to 7 fields such as `0 0 9 * * ?`
_CRON_FIELD = r"(?:[0-9*?/,#LW-]|MON|TUE|WED|THU|FRI|SAT|SUN|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)+"
_CRON = re.compile(rf"^{_CRON_FIELD}(?:\s+{_CRON_FIELD}){{4,6}}$", re.IGNORECASE)


def check_timer(name: str, element, problems: list) -> None:
    text = (element.text or "").strip()
    kind = etree.QName(element).localname
    what = f"timer {kind}"
    if not text:
        problems.append(Problem(name, f"{what} is empty", element.sourceline, None, _owner_id(element)))
        return
    if kind == "timeCycle" and _CRON.match(text):
        problems.append(Problem(name, f"{what} {text!r}: cron expressions are not supported here; write an ISO-8601 "
                                      "repeating interval, e.g. R/2026-01-01T09:00+08:00/P1D (every day at 9:00 "
                                      "from 1 January 2026)", element.sourceline, None, _owner_id(element)))
        return
    if _WORD_LIKE_DURATION.match(text):
        problems.append(Problem(name, f"{what} {text!r} is not a valid ISO-8601 duration such as P3D or PT2H (it "
                                      f"would be read as a variable named {text}); to read such a variable, write "
                                      f"${{{text}}}", element.sourceline, None, _owner_id(element)))
        return
    if is_iso_literal(text) or (_LOOKS_ISO.match(text) and not is_expression(text)):
        if text.startswith("-"):
            problems.append(Problem(name, f"{what} {text!r} is negative: a timer waits a positive duration such "
                                          "as PT1H", element.sourceline, None, _owner_id(element)))
            return
        try:
            if kind == "timeCycle":
                TimerEventDefinition.parse_iso_recurring_interval(text)
            elif kind == "timeDuration":
                TimerEventDefinition.parse_iso_duration(text)
            else:
                TimerEventDefinition.parse_time_or_duration(text)
        except Exception as err:      # noqa: BLE001 - SpiffWorkflow's parsers raise bare Exceptions
            reason = str(err) if isinstance(err, ValueError) and "'" in str(err) else ""
            problems.append(Problem(name, f"{what} {text!r} is not a valid ISO-8601 "
                                          + {"timeCycle": "cycle such as R3/PT10M",
                                             "timeDuration": "duration such as P3D or PT2H"}.get(kind, "date such as 2025-10-01T09:00:00+08:00")
                                          + (f": {reason}" if reason else ""),
                                    element.sourceline, None, _owner_id(element)))
        return
    check_expression(name, element, text, what, problems)


# Camunda 7's task priority is a Java int (user_task.priority too): a literal is checked
# here, an expression's value where the task opens (engine/runtime.py task_facts)
PRIORITY_MIN, PRIORITY_MAX = -2**31, 2**31 - 1


def check_priority(name: str, element, attr: str, value: str, problems: list) -> None:
    """A literal priority must be a whole number in Camunda's int: `abc` or thirty digits
    deployed, then failed every case at the task."""
    text = value.strip()
    if not text or embedded_expressions(text) or has_unterminated_expression(text):
        return                                  # an expression's value is checked where the task opens
    try:
        number = int(text)
    except ValueError:
        number = None
    if number is None or not PRIORITY_MIN <= number <= PRIORITY_MAX:
        problems.append(Problem(name, f"camunda:{attr} {value!r} is not a whole number from {PRIORITY_MIN} to "
                                      f"{PRIORITY_MAX} (Camunda's int) nor an expression such as ${{urgency}}",
                                element.sourceline, None, _owner_id(element)))


def check_due_date(name: str, element, attr: str, value: str, problems: list) -> None:
    """A literal due or follow-up date must be a date-time or a duration: `P2D` and `tomorrow`
    deployed, then failed every case at the task (engine/due_dates.py reads them there)."""
    text = value.strip()
    if not text or embedded_expressions(text) or has_unterminated_expression(text):
        return                                  # an expression's value is checked where the task opens
    reason = due_dates.literal_problem(text)
    if reason is not None:
        problems.append(Problem(name, f"camunda:{attr} {value!r} is neither {due_dates.FORMS} nor an expression "
                                      "such as ${workdays(3)}" + (f": {reason}" if reason else ""),
                                element.sourceline, None, _owner_id(element)))


def check_cycle_place(name: str, element, problems: list) -> None:
    """A timeCycle waits on a start event or a boundary event.  On an intermediate catch
    event SpiffWorkflow passes the token on at every beat, each a new path through the rest
    of the process (R/PT5S: two more tasks every ten seconds, without end); Camunda 7
    passes it on once."""
    event = element.getparent().getparent() if element.getparent() is not None else None
    process = next((a for a in element.iterancestors(f"{{{BPMN_NS}}}process")), None)
    if process is not None and not _is_executable(process):
        return                                  # a documentation pool
    if event is not None and etree.QName(event).localname == "intermediateCatchEvent":
        problems.append(Problem(name, "timer timeCycle on an intermediate catch event: it would pass the case on "
                                      "at every beat, each time down the rest of the process; use timeDuration "
                                      "or timeDate to wait once", element.sourceline, None, event.get("id")))


# what to do instead of an expression in a message's or a signal's name
_NAMED_EVENT_ADVICE = {"message": " and pick the case by businessKey or correlationKeys in POST /message",
                       "signal": "; POST /signal with executionId reaches one case"}


def check_dialect(name: str, root, problems: list, scripts_enabled: bool) -> None:
    for flow in root.iterfind(".//bpmn:sequenceFlow/bpmn:conditionExpression", NS):
        language = flow.get("language")
        if language and language.lower() not in ("python", "text/x-python"):
            problems.append(Problem(name, f"condition language {language!r} is not supported; write a Python expression",
                                    flow.sourceline, None, _owner_id(flow)))
            continue
        check_expression(name, flow, flow.text, "condition", problems)
    for tag in ("completionCondition", "loopCardinality"):
        for element in root.iterfind(f".//bpmn:{tag}", NS):
            check_expression(name, element, element.text, tag, problems)
    for tag in ("timeDate", "timeDuration", "timeCycle"):
        for element in root.iterfind(f".//bpmn:{tag}", NS):
            check_timer(name, element, problems)
            if tag == "timeCycle":
                check_cycle_place(name, element, problems)
    for condition in root.iterfind(".//bpmn:conditionalEventDefinition/bpmn:condition", NS):
        check_expression(name, condition, condition.text, "event condition", problems)
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for attr in EXPRESSION_ATTRIBUTES:
            value = element.get(f"{{{CAMUNDA_NS}}}{attr}")
            if value is not None:
                check_text(name, element, value, f"camunda:{attr}", problems)
                if attr in ("priority", "taskPriority"):
                    check_priority(name, element, attr, value, problems)
                elif attr in ("dueDate", "followUpDate"):
                    check_due_date(name, element, attr, value, problems)
        if etree.QName(element).localname == "userTask" and element.get("name"):
            check_text(name, element, element.get("name"), "the task name", problems)
    for param in root.iterfind(".//camunda:inputOutput/*", NS):
        local = etree.QName(param).localname
        if len(param):
            problems.append(Problem(name, f"camunda:{local} '{param.get('name')}': only text, ${{...}} expressions "
                                          "and text with them are supported (no lists, maps or scripts)",
                                    param.sourceline, None, _owner_id(param)))
        elif param.text:
            check_text(name, param, param.text.strip(), f"camunda:{local} '{param.get('name')}'", problems)
    for definition in root.iterfind(".//camunda:errorEventDefinition", NS):
        check_thrown_error(name, root, definition, problems)
    for mapping in root.xpath("//bpmn:callActivity/bpmn:extensionElements/camunda:*[local-name()='in' or "
                              "local-name()='out'] | //bpmn:signalEventDefinition/bpmn:extensionElements/camunda:in",
                              namespaces=NS):
        check_call_mapping(name, mapping, problems)      # a thrown signal's: what the cases it starts get
    for ext, advice in UNSUPPORTED_EXTENSIONS.items():
        for element in root.iterfind(f".//camunda:{ext}", NS):
            problems.append(Problem(name, f"camunda:{ext} is not supported: {advice}", element.sourceline, None,
                                    _owner_id(element)))
    for listener in root.xpath(".//camunda:executionListener | .//camunda:taskListener", namespaces=NS):
        problems.append(Problem(name, _listener_refusal(listener), listener.sourceline, None, _owner_id(listener)))
    for tag, advice in UNSUPPORTED_ELEMENTS.items():
        for element in root.iterfind(f".//bpmn:{tag}", NS):
            problems.append(Problem(name, advice, element.sourceline, None, element.get("id")))
    for tag in ("startEvent", "intermediateCatchEvent", "boundaryEvent"):
        for definition in root.iterfind(f".//bpmn:{tag}/bpmn:messageEventDefinition", NS):
            if not definition.get("messageRef"):
                event = definition.getparent()
                problems.append(Problem(name, "the message event names no message: pick one under 'Message' in the "
                                              "modeler (messageRef), the name POST /message correlates by",
                                        event.sourceline, None, event.get("id")))
    for task in root.iterfind(".//bpmn:receiveTask", NS):
        if not task.get("messageRef"):
            problems.append(Problem(name, "the receive task names no message: pick one under 'Message' in the "
                                          "modeler (messageRef), the name POST /message correlates by",
                                    task.sourceline, None, task.get("id")))
    scopes = root.xpath(".//bpmn:process | .//bpmn:subProcess[not(@triggeredByEvent='true')] | .//bpmn:transaction",
                        namespaces=NS)
    for scope in scopes:
        plain = [s for s in scope.iterfind("bpmn:startEvent", NS) if not any(
            isinstance(c.tag, str) and c.tag.endswith("EventDefinition") for c in s)]
        for extra in plain[1:]:
            problems.append(Problem(name, f"'{scope.get('id')}' has more than one none start event (also "
                                          f"'{plain[0].get('id')}'); as in Camunda 7 one is allowed: join the "
                                          "paths after a single start event", extra.sourceline, None, extra.get("id")))
    for sub in root.iterfind(".//bpmn:subProcess[@triggeredByEvent='true']", NS):
        starts = sub.findall("bpmn:startEvent", NS)
        kinds = {etree.QName(c).localname for s in starts for c in s if isinstance(c.tag, str)
                 and c.tag.endswith("EventDefinition")}
        if not (starts and all(s.get("isInterrupting") == "false" for s in starts)
                and kinds == {"timerEventDefinition"}):
            problems.append(Problem(name, "an event subprocess runs here only on a non-interrupting timer start "
                                          "event (SpiffWorkflow starts an error or escalation one with the case, "
                                          "never interrupts, and takes no message): draw a boundary event on the "
                                          "activity instead, interrupting or not", sub.sourceline, None,
                                    sub.get("id")))
    for kind, advice in _NAMED_EVENT_ADVICE.items():
        for element in root.iterfind(f".//bpmn:{kind}", NS):
            if re.search(r"[$#]\{", element.get("name") or ""):
                problems.append(Problem(name, f"{kind} name {element.get('name')!r}: an expression in a {kind} name "
                                              f"is not evaluated here (it would be taken literally): name the {kind} "
                                              f"plainly{advice}", element.sourceline, None, element.get("id")))
    for link in root.iterfind(".//bpmn:linkEventDefinition", NS):
        event = link.getparent()
        problems.append(Problem(name, "link events are not supported on this server (a case reaching the link "
                                      "would wait forever): join the two points with a sequence flow",
                                event.sourceline, None, event.get("id")))
    for compensate in root.iterfind(".//bpmn:compensateEventDefinition", NS):
        event = compensate.getparent()
        problems.append(Problem(name, "compensation events are not supported on this server (SpiffWorkflow reads a "
                                      "compensation throw event as a none event: the handlers would never run): "
                                      "draw the undo as tasks on the path that needs it, e.g. after an error "
                                      "boundary event", event.sourceline, None, event.get("id")))
    for handler in root.xpath(".//*[@isForCompensation='true']"):
        problems.append(Problem(name, "compensation handlers (isForCompensation) are not supported on this server: "
                                      "nothing would ever run them; draw the undo as tasks on the path that needs "
                                      "it", handler.sourceline, None, handler.get("id")))
    for task in root.iterfind(".//bpmn:scriptTask", NS):
        fmt = (task.get("scriptFormat") or "python").lower()
        script = task.find("bpmn:script", NS)
        if fmt not in ("python", "text/x-python", "py"):
            problems.append(Problem(name, f"script format {fmt!r} is not supported; scripts are sandboxed Python",
                                    task.sourceline, None, task.get("id")))
        elif not scripts_enabled:
            problems.append(Problem(name, "script tasks are disabled on this server; model the step as an external "
                                          "service task, or ask the operator to set APPROVALS_SCRIPT_TASKS=1",
                                    task.sourceline, None, task.get("id")))
        elif script is None or not (script.text or "").strip():
            problems.append(Problem(name, "the script task has no script", task.sourceline, None, task.get("id")))
        else:
            check_expression(name, script, script.text, "script", problems, mode="exec")


# SpiffWorkflow names its own start and end steps like this; a flow node with one of
# these ids would silently replace them.
RESERVED_IDS = {"Start", "End", "Root"}


def check_references(name: str, root, problems: list) -> None:
    """Ids that must resolve inside the file (flows, defaults, attachments, event refs)."""
    ids = {e.get("id") for e in root.iter() if isinstance(e.tag, str) and e.get("id")}
    for element in root.iter():
        if isinstance(element.tag, str) and element.get("id") in RESERVED_IDS:
            problems.append(Problem(name, f"the id '{element.get('id')}' is reserved by the engine; rename the "
                                          "element (Camunda Modeler's default ids such as StartEvent_1 are fine)",
                                    element.sourceline, None, element.get("id")))
    for process in root.iterfind(".//bpmn:process", NS):
        for flow in process.iter(f"{{{BPMN_NS}}}sequenceFlow"):
            for attr in ("sourceRef", "targetRef"):
                if flow.get(attr) not in ids:
                    problems.append(Problem(name, f"sequence flow {attr} '{flow.get(attr)}' does not exist",
                                            flow.sourceline, None, flow.get("id")))
        for element in process.iter():
            if not isinstance(element.tag, str):
                continue
            default = element.get("default")
            if default is not None and default not in ids:
                problems.append(Problem(name, f"default flow '{default}' does not exist", element.sourceline, None,
                                        element.get("id")))
            attached = element.get("attachedToRef")
            if attached is not None and attached not in ids:
                problems.append(Problem(name, f"boundary event is attached to '{attached}', which does not exist",
                                        element.sourceline, None, element.get("id")))
            for attr in ("messageRef", "errorRef", "signalRef", "escalationRef"):
                ref = element.get(attr)
                if ref is not None and ref not in ids:
                    problems.append(Problem(name, f"{attr} '{ref}' does not exist in this file",
                                            element.sourceline, None, _owner_id(element)))


# a task or event without an outgoing flow ends its path (an implicit end); a gateway
# cannot: a case reaching it would fail there, so Camunda 7 refuses it at deploy
_GATEWAYS = {"exclusiveGateway": "Exclusive Gateway", "inclusiveGateway": "Inclusive Gateway",
             "parallelGateway": "Parallel Gateway", "eventBasedGateway": "Event-based Gateway"}


def check_dead_ends(name: str, root, problems: list) -> None:
    """A gateway of an executable process without an outgoing flow (a non-executable pool,
    which Camunda Modeler draws for the applicant's side, is documentation: left alone)."""
    sources = {flow.get("sourceRef") for flow in root.iter(f"{{{BPMN_NS}}}sequenceFlow")}
    for tag, label in _GATEWAYS.items():
        for gateway in (g for process in executable_processes(root) for g in process.iter(f"{{{BPMN_NS}}}{tag}")):
            if gateway.get("id") not in sources:
                problems.append(Problem(name, f"{label} '{gateway.get('id')}' has no outgoing sequence flow: a case "
                                              "reaching it could not continue; draw a flow out of it",
                                        gateway.sourceline, None, gateway.get("id")))


def executable_processes(root) -> list:
    return [p for p in root.iterfind("bpmn:process", NS) if _is_executable(p)]


def _is_executable(process) -> bool:
    """Not a documentation pool (isExecutable="false", the applicant's side Camunda Modeler draws)."""
    return process.get("isExecutable", "true").lower() != "false"


def check_bpmn(name: str, content: bytes, scripts_enabled: bool = False) -> tuple[CheckedBpmn | None, list]:
    """Everything that can be checked on one file alone."""
    problems: list[Problem] = []
    root = parse_xml(name, content, problems)
    if root is None:
        return None, problems
    check_xsd(name, root, problems)
    check_references(name, root, problems)
    check_dead_ends(name, root, problems)
    check_dialect(name, root, problems, scripts_enabled)
    processes = executable_processes(root)
    if not root.findall("bpmn:process", NS):
        problems.append(Problem(name, "the file contains no bpmn:process", root.sourceline))
    elif not processes:
        problems.append(Problem(name, "no process in this file is executable; tick 'Executable' in the modeler",
                                root.sourceline, warning=True))
    return CheckedBpmn(name, root, processes), problems


def spiff_problem(name_by_file: dict, err) -> Problem:
    """A SpiffWorkflow ValidationException as a Problem with the line looked up."""
    filename = getattr(err, "file_name", "") or ""
    element_id = getattr(err, "id", None) or None
    root = name_by_file.get(filename)
    line = None
    if root is not None and element_id:
        found = root.xpath("//*[@id=$i]", i=element_id)
        line = found[0].sourceline if found else None
    message = str(err)
    for prefix in (f"{element_id}: ",):
        if message.startswith(prefix):
            message = message[len(prefix):]
    if "RecursionError" in message:
        # SpiffWorkflow walks a path element by element, recursively, when it parses it
        message = ("the process is too long a chain to run: SpiffWorkflow follows a path one element after "
                   "another, recursively, and gives up some 450 elements into it (here); split the chain into "
                   "subprocesses or call activities")
    return Problem(os.path.basename(filename) or "<deployment>", message, line, None, element_id)
