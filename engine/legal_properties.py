"""The legal-clock properties a designer writes on flow nodes (`camunda:properties`:
legalClock.*, tacitApproval.*, statistics.mark), the values each accepts, and their checks
at deploy, every problem of a deployment at once (engine/deployments.py).

A literal mistake (`5个工作日`, `80%`, a calendar that does not exist, a stop naming a clock
no element starts) deployed, then failed or did nothing when a case reached it, and such a
case cannot be moved past the step.  A value that is an expression is the case's: its
syntax is checked here, its value when the case reaches it (engine/legal.py).
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from lxml import etree
from sqlalchemy import select

from . import calendars
from .definitions import resource_content
from .legal import KINDS, OUTCOME, clock_calls, parse_limit, stage_names
from .models import ProcessDefinition
from .parser import BPMN_NS, SAFE_XML_PARSER, embedded_expressions, has_unterminated_expression, is_expression
from .validation import NS, Problem, check_text, executable_processes

EVENTS = ("tacitApproval", "yellow", "red")
MARKS = ("commitment", "deficiency")           # the marks the statistics count (commitmentShare, deficiencyShare)
# every property read, and the one (any of those) it needs beside it on the same element
NEEDS = {
    "legalClock.start": ("legalClock.limit",), "legalClock.limit": ("legalClock.start",),
    "legalClock.kind": ("legalClock.start",), "legalClock.calendar": ("legalClock.start",),
    "legalClock.yellow": ("legalClock.start",), "legalClock.department": ("legalClock.start", "statistics.mark"),
    "legalClock.pause": (), "legalClock.stop": (), "legalClock.outcome": ("legalClock.stop",),
    "legalClock.event": ("legalClock.stage",), "legalClock.stage": ("legalClock.event",),
    "tacitApproval.variable": ("legalClock.event",), "tacitApproval.value": ("legalClock.event",),
    "statistics.mark": (),
}
EVALUATED = ("legalClock.limit", "legalClock.department", "legalClock.outcome")   # as Camunda reads an attribute
PREFIXES = ("legalClock.", "tacitApproval.", "statistics.")
# the properties that name clocks to find (a stop finds the clocks of its own (sub)process and
# the ones around it, engine/legal.py scopes_up, a called process's those of its callers too)
REFERENCES = ("legalClock.pause", "legalClock.stop", "legalClock.stage")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCOPES = ("process", "subProcess", "transaction")


@dataclass
class Reference:
    """A name of a clock to find, where it is written."""
    resource: str
    element: etree._Element          # the property (or the timer expression) that names it
    owner: etree._Element            # the flow node
    what: str                        # e.g. "legalClock.stop 'review'", "legal_deadline('review')"
    stage: str


@dataclass
class FileClocks:
    """What the other checks need of one file: its references and its calendars."""
    references: list = field(default_factory=list)
    calendars: list = field(default_factory=list)       # (property element, owner, calendar id)


def check_file(name: str, root) -> tuple[list[Problem], FileClocks]:
    """The literal values of one file's legal-clock properties; its references to clocks
    and calendars for `check_references` and `check_calendars`."""
    problems: list[Problem] = []
    found = FileClocks()
    for process in executable_processes(root):
        for owner, props in _properties(process):
            if owner is process:
                for prop in props.values():
                    problems.append(_problem(name, prop, owner, f"{prop.get('name')} is read on flow nodes (a task, "
                                                                "an event, a subprocess), not on the process: move it"))
                continue
            _check_element(name, owner, props, problems, found)
        for event, expression in _timer_expressions(process):
            for function, stage in clock_calls(expression.text):
                found.references.append(Reference(name, expression, event, f"{function}({stage!r})", stage))
    return problems, found


def _properties(process):
    """(element, {name: property element}) of every element of the process with
    legal-clock properties."""
    for element in process.iter():
        if not isinstance(element.tag, str):
            continue
        props = {p.get("name"): p for p in element.xpath("bpmn:extensionElements/camunda:properties/camunda:property",
                                                         namespaces=NS)
                 if (p.get("name") or "").startswith(PREFIXES)}
        if props:
            yield element, props


def _timer_expressions(process):
    for tag in ("timeDate", "timeDuration", "timeCycle"):
        for expression in process.iter(f"{{{BPMN_NS}}}{tag}"):
            event = expression.getparent().getparent() if expression.getparent() is not None else None
            if event is not None:
                yield event, expression


def _check_element(name: str, owner, props: dict, problems: list, found: FileClocks) -> None:
    def refuse(prop, message):
        problems.append(_problem(name, prop, owner, message))

    for key, prop in props.items():
        value = prop.get("value") or ""
        if key not in NEEDS:
            close = difflib.get_close_matches(key, NEEDS, n=1)
            refuse(prop, f"{key} is no legal-clock property{f': did you mean {close[0]}?' if close else ''} (the "
                         f"ones read: {', '.join(NEEDS)})")
            continue
        needs = NEEDS[key]
        if needs and not any(n in props for n in needs):
            outcome = ("a case reaching it would fail" if key == "legalClock.start" else "without it, it does nothing")
            refuse(prop, f"{key} {value!r} needs {' or '.join(needs)} on the same element: {outcome}")
        if key in EVALUATED and (is_expression(value) or embedded_expressions(value)
                                 or has_unterminated_expression(value)):
            check_text(name, prop, value, key, problems)       # its value is the case's
            continue
        if "${" in value or "#{" in value:
            refuse(prop, f"{key} {value!r} is not evaluated (only legalClock.limit, legalClock.department and "
                         f"legalClock.outcome are): write the value itself")
            continue
        message = _literal_problem(key, value, props)
        if message:
            refuse(prop, message)
        elif key in REFERENCES:
            found.references.extend(Reference(name, prop, owner, f"{key} {stage!r}", stage)
                                   for stage in _stages(key, value))
        elif key == "legalClock.calendar":
            found.calendars.append((prop, owner, value))


def _stages(key: str, value: str) -> list[str]:
    return [value] if key == "legalClock.stage" else stage_names(value)


def _literal_problem(key: str, value: str, props: dict) -> str | None:
    """What is wrong with a literal value of property `key`, or None."""
    if key in ("legalClock.start", "legalClock.pause", "legalClock.stop", "legalClock.stage"):
        names = _stages(key, value)
        if not names or any(len(n) > 128 for n in names):
            return f"{key} {value!r} must name a clock (a stage of 1 to 128 characters, several separated by commas)"
    elif key == "legalClock.limit":
        try:
            parse_limit(value)
        except ValueError as err:
            return f"legalClock.limit {value!r}: {err}, or an expression such as ${{limits[\"review\"]}}"
    elif key == "legalClock.kind" and value not in KINDS:
        return (f"legalClock.kind {value!r} is not one of {', '.join(KINDS)} (legal: a statutory limit, 法定时限; "
                "promised: the hall's promise, 承诺时限)")
    elif key == "legalClock.yellow":
        try:
            share = float(value)
        except ValueError:
            share = None
        if share is None or not 0 < share <= 1:
            return (f"legalClock.yellow {value!r} is not a share of the limit between 0 and 1: write 0.8 for 80 % "
                    "(the default)")
    elif key == "legalClock.outcome" and not OUTCOME.fullmatch(value):
        return (f"legalClock.outcome {value!r} is not a word of letters, digits and _ (at most 32) such as decided, "
                "withdrawn or revoked, nor an expression giving one")
    elif key == "legalClock.event" and value not in EVENTS:
        return f"legalClock.event {value!r} is not one of {', '.join(EVENTS)}"
    elif key.startswith("tacitApproval.") and props.get("legalClock.event") is not None \
            and props["legalClock.event"].get("value") != "tacitApproval":
        return f"{key} is read when the tacit approval fires: set legalClock.event to tacitApproval, or remove it"
    elif key == "tacitApproval.variable" and not _VARIABLE.match(value):
        return f"tacitApproval.variable {value!r} is not a variable name (letters, digits and _)"
    elif key == "statistics.mark":
        unknown = [m for m in stage_names(value) if m not in MARKS]
        if unknown or not stage_names(value):
            return (f"statistics.mark {value!r} is not one of {', '.join(MARKS)} (告知承诺, 容缺受理: the marks the "
                    "statistics count)")
    return None


def _problem(name: str, prop, owner, message: str) -> Problem:
    return Problem(name, message, prop.sourceline, None, owner.get("id"))


# --- across the deployment ---------------------------------------------------------------------

def check_calendars(session, found: dict[str, FileClocks]) -> list[Problem]:
    """Each legalClock.calendar names a calendar of the server."""
    known = set(calendars.known_ids(session))
    return [_problem(name, prop, owner, f"legalClock.calendar {calendar_id!r}: no such calendar (known: "
                                        f"{', '.join(sorted(known))}); create it first (POST /api/v1/calendars, "
                                        "a copy of CN) or name a known one")
            for name, clocks in found.items() for prop, owner, calendar_id in clocks.calendars
            if calendar_id not in known]


def check_references(session, trees: dict, found: dict[str, FileClocks], tenant_id) -> list[Problem]:
    """Each stop, pause, event stage and legal_deadline()/legal_warning() names a clock some
    element starts where it can be found: in its own (sub)process or one around it, or in a
    process that calls its process (in this deployment, or deployed).  A stop naming a clock
    started nowhere there raised nothing: the clock ran on until its case ended."""
    problems, callers = [], None
    for name, clocks in found.items():
        for ref in clocks.references:
            reachable = _started_around(ref.owner)
            if ref.stage in reachable:
                continue
            if callers is None:
                callers = _Callers(session, trees, tenant_id)
            process = next(ref.owner.iterancestors(f"{{{BPMN_NS}}}process"))
            from_callers = callers.stages_starting(process.get("id"))
            if ref.stage in from_callers:
                continue
            started = sorted(reachable | from_callers)
            problems.append(_problem(name, ref.element, ref.owner, (
                f"{ref.what}: no element starts a clock '{ref.stage}' where this one can find it (its "
                f"own process or subprocess, those around it, and the processes that call its process); started "
                f"there: {', '.join(started) or 'none'}.  Correct the name, or deploy this process together with "
                "the process that calls it and starts the clock")))
    return problems


def _started_around(owner) -> set[str]:
    """The stages started by an element whose clock `owner` finds: one whose (sub)process is
    `owner`'s or one around it (legalClock.start on a subprocess starts in the one around it)."""
    scopes = [a for a in owner.iterancestors() if etree.QName(a).localname in _SCOPES]
    stages: set[str] = set()
    for scope in scopes:
        for element, props in _properties(scope):
            start = props.get("legalClock.start")
            if start is not None and _scope_of(element) is scope:
                stages |= set(_valid_stages(start.get("value")))
    return stages


def _scope_of(element):
    return next((a for a in element.iterancestors() if etree.QName(a).localname in _SCOPES), None)


def _valid_stages(value: str | None) -> list[str]:
    return [] if "${" in (value or "") or "#{" in (value or "") else stage_names(value)


def _stages_started(process) -> set[str]:
    return {stage for _, props in _properties(process) if "legalClock.start" in props
            for stage in _valid_stages(props["legalClock.start"].get("value"))}


class _Callers:
    """The processes that call a process, in this deployment and the latest deployed
    versions, read once per deployment when a reference is not found in its own process."""

    def __init__(self, session, trees: dict, tenant_id) -> None:
        self.session, self.tenant_id = session, tenant_id
        self.here = {p.get("id"): p for tree in trees.values() for p in executable_processes(tree)}
        self._deployed = None

    def stages_starting(self, key: str) -> set[str]:
        """The stages the processes calling `key`, and those calling them, start anywhere."""
        stages, seen, pending = set(), {key}, [key]
        while pending:
            for caller in self._callers_of(pending.pop()):
                if caller.get("id") not in seen:
                    seen.add(caller.get("id"))
                    pending.append(caller.get("id"))
                    stages |= _stages_started(caller)
        return stages

    def _callers_of(self, key: str) -> list:
        found = [p for p in self.here.values() if any(c.get("calledElement") == key
                                                      for c in p.iter(f"{{{BPMN_NS}}}callActivity"))]
        for caller_key, resource_id in self._deployed_calls().get(key, []):
            if caller_key not in self.here:
                _, content = resource_content(self.session, resource_id)
                tree = etree.fromstring(content, SAFE_XML_PARSER)
                found += [p for p in executable_processes(tree) if p.get("id") == caller_key]
        return found

    def _deployed_calls(self) -> dict:
        """called key -> [(caller key, resource id)] of the latest deployed version of each key."""
        if self._deployed is None:
            latest: dict = {}
            rows = self.session.execute(select(ProcessDefinition.key, ProcessDefinition.version,
                                               ProcessDefinition.called_keys, ProcessDefinition.resource_id)
                                        .where(ProcessDefinition.tenant_id.is_not_distinct_from(self.tenant_id)))
            for row in rows:
                if row.key not in latest or row.version > latest[row.key].version:
                    latest[row.key] = row
            self._deployed = {}
            for row in latest.values():
                for called in row.called_keys or []:
                    self._deployed.setdefault(called, []).append((row.key, row.resource_id))
        return self._deployed

