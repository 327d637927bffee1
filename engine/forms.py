"""Camunda Forms (form-js `.form` files): the deployment check, and server-side validation of
what a user submits through a form.

Deployment: the structure is checked against forms/schema/form-js.schema.json with `jsonschema`
(our rendering of form-js's own JSON Schema, see the README there); then the rules a schema cannot
express: unique keys (group paths and dotted keys make nested data) and ids, patterns that compile,
min <= max, an options source for every choice field, unique static option values, FEEL that is
surely broken (feel.syntax_problem), schemaVersion >= 16.  Both passes run, so every problem is listed.

Submission: a marshmallow schema built from the input fields (once per form checksum) repeats
form-js's client-side validation, so the server accepts what the browser accepted and a crafted
request cannot skip a rule.  FEEL runs here only as far as engine/feel.py reads it: a required
field with `conditional.hide` is required where the form shows it when every hide condition above
it is in that subset (and it is not in a dynamic list), and never required otherwise; a field
with readonly/disabled given as an expression is never required; a rule given as `=expression`
(min, max, minLength, maxLength) is skipped; options from `valuesExpression` are not checked.
Read-only and disabled fields keep the case's value, nested ones included (_keep_readonly).
"""
from __future__ import annotations

import contextvars
import hashlib
import json
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

import jsonschema
import regex
from marshmallow import INCLUDE, Schema, ValidationError, fields, pre_load

from . import feel

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "forms" / "schema" / "form-js.schema.json"
MIN_SCHEMA_VERSION = 16          # what Camunda Modeler 5.x writes for Camunda 7.2x
MAX_FORM_BYTES = 2 * 1024 * 1024
LIST_ITEM = "[]"                 # path segment for "each entry of a dynamic list"

INPUT_TYPES = frozenset({"textfield", "textarea", "number", "datetime", "checkbox", "checklist", "radio",
                         "select", "taglist", "expression", "filepicker"})
OPTION_TYPES = frozenset({"radio", "select", "checklist", "taglist"})
MULTI_OPTION_TYPES = frozenset({"checklist", "taglist"})
CONTAINER_TYPES = frozenset({"group", "dynamiclist", "multipage", "page"})
# computed in the browser (expression) or uploaded separately (filepicker): passed through unchecked
UNCHECKED_TYPES = frozenset({"expression", "filepicker"})


class FormDefinitionError(ValueError):
    """A `.form` file the engine refuses.  `problems` lists every (location, message) found."""

    def __init__(self, filename: str, location: str, message: str, problems: list | None = None,
                 line: int | None = None, column: int | None = None) -> None:
        self.filename = filename
        self.location = location
        self.message = message
        self.line, self.column = line, column          # where JSON that does not parse went wrong
        self.problems = problems or [(location, message)]
        more = len(self.problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''} in this form)" if more else ""
        super().__init__(f"{filename}: {location}: {message}{suffix}")


class FormValidationError(ValueError):
    """Submitted values break the form's rules.  `errors`: field key -> messages, every field at once."""

    def __init__(self, errors: dict[str, list[str]], labels: Mapping[str, str] | None = None,
                 form_id: str = "") -> None:
        self.errors = errors
        labels = labels or {}
        parts = []
        for key, messages in errors.items():
            label = labels.get(re.sub(r"\[\d+\]", LIST_ITEM, key))
            name = f"{key} ({label})" if label and label != key else key
            parts.append(f"{name}: {' '.join(messages)}")
        count = f"{len(errors)} invalid field{'s' if len(errors) != 1 else ''}"
        super().__init__(f"form '{form_id}' has {count}: " + "; ".join(parts))


@dataclass(frozen=True)
class FormField:
    """One input field of a form, with the rules the server enforces for it."""
    key: str                     # data path as submitted: "applicant.name", in a dynamic list "contacts[].name"
    path: tuple                  # key's segments; LIST_ITEM marks a dynamic list entry
    type: str
    label: str
    id: str | None
    location: str                # where it sits in the .form: "components[2]"
    required: bool               # validate.required, and the server can enforce it (see module doc)
    readonly: bool               # readonly or disabled: the case's value is kept (validate_submission)
    hidden_when: tuple           # FEEL `conditional.hide` of the field and of its enclosing containers
    options: tuple | None        # static option values (radio/select/checklist/taglist)
    values_key: str | None       # options come from this process variable
    component: Mapping = field(repr=False, compare=False, default_factory=dict)
    required_when_shown: bool = False   # validate.required under hide conditions engine/feel.py reads
    shown_default: tuple = ()    # (defaultValue,) of a read-only (not disabled) field: form-js shows and submits it


@dataclass(frozen=True)
class FormDefinition:
    """A parsed, checked form.  Equal (and hashed) by id, version and checksum of the deployed bytes."""
    id: str
    schema_version: int
    raw: dict = field(compare=False)        # the JSON as deployed; treat as read-only
    fields: tuple = field(compare=False)    # FormField, in document order
    checksum: str = ""                      # sha256 of the deployed bytes: caches key on it
    filename: str = "<form>"

    @property
    def variable_names(self) -> tuple:
        """Top-level process variables the form reads or writes (keys and option sources)."""
        names = [f.path[0] for f in self.fields] + [f.values_key for f in self.fields if f.values_key]
        return tuple(dict.fromkeys(names))


# --- parsing and the deployment check ----------------------------------------------------------

def parse_form(source: bytes | str, filename: str = "<form>") -> FormDefinition:
    """Parse and check a `.form` file; raises FormDefinitionError naming file, JSON path and fix."""
    raw_bytes = source.encode("utf-8") if isinstance(source, str) else bytes(source)
    if len(raw_bytes) > MAX_FORM_BYTES:
        raise FormDefinitionError(filename, "(file)", f"the form is {len(raw_bytes)} bytes; at most "
                                  f"{MAX_FORM_BYTES} are accepted: split it into several forms")
    doc = _load_json(raw_bytes, filename)
    checksum = hashlib.sha256(raw_bytes).hexdigest()
    problems = [] if _CONFORMING.holds(checksum) else _schema_problems(doc)
    if problems and not isinstance(doc, dict):
        raise FormDefinitionError(filename, *problems[0], problems=problems)
    # the rules beyond the schema run on a form that breaks it too, so one deployment lists
    # every problem; the walk skips the parts the schema already refused (a key that is no key)
    semantic, form_fields = _semantic_problems(doc)
    reported = {location for location, _ in problems}
    problems += [problem for problem in semantic if problem[0] not in reported]
    if problems:
        raise FormDefinitionError(filename, *problems[0], problems=problems)
    _CONFORMING.add(checksum)
    return FormDefinition(id=doc["id"], schema_version=doc["schemaVersion"], raw=doc, fields=tuple(form_fields),
                          checksum=checksum, filename=filename)


class _Checksums:
    """The sha256 of the form files that passed the check, so a file deployed again (the
    same library redeployed after a change to one diagram) skips form-js's JSON schema:
    ~16 ms a form, two thirds of the time of the deployments in a profile of the tests."""

    def __init__(self, size: int = 4096) -> None:
        self.size, self._seen, self._lock = size, OrderedDict(), threading.Lock()

    def holds(self, checksum: str) -> bool:
        with self._lock:
            return checksum in self._seen

    def add(self, checksum: str) -> None:
        with self._lock:
            self._seen[checksum] = None
            if len(self._seen) > self.size:
                self._seen.popitem(last=False)


_CONFORMING = _Checksums()


def _load_json(raw_bytes: bytes, filename: str) -> dict:
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise FormDefinitionError(filename, f"byte {err.start}", "the file is not UTF-8 text: save the form "
                                  "again from Camunda Modeler (it writes UTF-8)") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise FormDefinitionError(filename, f"line {err.lineno}, column {err.colno}",
                                  f"not valid JSON ({err.msg}): fix the file or save it again from "
                                  "Camunda Modeler", line=err.lineno, column=err.colno) from None
    except _NotJson as err:
        # Python's json accepts NaN and Infinity; JSON (and JavaScript's JSON.parse) does not
        at = re.search(rf"(?<![\w\"]){re.escape(err.token)}", text)
        err = json.JSONDecodeError(f"{err.token} is not a JSON value", text, at.start() if at else 0)
        raise FormDefinitionError(filename, f"line {err.lineno}, column {err.colno}",
                                  f"not valid JSON ({err.msg}): write a number", line=err.lineno,
                                  column=err.colno) from None
    except RecursionError:
        raise FormDefinitionError(filename, "(file)", "the JSON is nested too deeply to be a form") from None
    except ValueError:
        # json.loads's last ValueError: an integer longer than Python converts (sys.set_int_max_str_digits)
        limit = sys.get_int_max_str_digits()
        at = re.search(rf"\d{{{limit + 1},}}", text)
        err = json.JSONDecodeError("", text, at.start() if at else 0)
        raise FormDefinitionError(filename, f"line {err.lineno}, column {err.colno}",
                                  f"a number has more than {limit} digits: write a number a form can hold "
                                  "(form-js reads numbers as JavaScript's, exact to about 16 digits)",
                                  line=err.lineno, column=err.colno) from None


class _NotJson(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _reject_constant(name: str):
    raise _NotJson(name)


_VALIDATOR = None
_VALIDATOR_LOCK = threading.Lock()


def _structure_validator() -> jsonschema.protocols.Validator:
    global _VALIDATOR
    with _VALIDATOR_LOCK:
        if _VALIDATOR is None:
            schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
            _VALIDATOR = jsonschema.Draft202012Validator(schema)
        return _VALIDATOR


def _schema_problems(doc: Any) -> list[tuple[str, str]]:
    if not isinstance(doc, dict):
        return [("(root)", "a form is a JSON object with \"type\": \"default\" and \"components\"; "
                           "this file holds something else")]
    try:
        errors = list(_structure_validator().iter_errors(doc))
    except RecursionError:
        return [("components", "components are nested too deeply")]
    # document order, a component's `type` first; a component of a wrong type gets no other complaints
    errors.sort(key=lambda e: [(0, p, "") if isinstance(p, int) else (1, p != "type", p) for p in e.absolute_path])
    wrong_type = [list(e.absolute_path)[:-1] for e in errors if list(e.absolute_path)[-1:] == ["type"]]
    problems = []
    for error in errors:
        path = list(error.absolute_path)
        if any(path[:len(w)] == w and path != w + ["type"] for w in wrong_type if w):
            continue
        problem = _explain(error, doc)
        if problem not in problems:
            problems.append(problem)
    return problems


def _explain(error: jsonschema.ValidationError, doc: dict) -> tuple[str, str]:
    """Turn a jsonschema error into (location, message) a form designer can act on."""
    path = list(error.absolute_path)
    component = _component_at(doc, path)
    subject = f"{_describe(component)}: " if component is not None else ""
    instance, kind, expected = error.instance, error.validator, error.validator_value
    if kind == "required":
        missing = next((p for p in expected if p not in instance), expected[0])
        hint = _REQUIRED_HINTS.get(missing, "add it")
        return _location(path + [missing]), subject + f"'{missing}' is missing: {hint}"
    if kind == "not" and expected == {}:
        return _location(path), (subject + f"'{path[-1]}' is not allowed on a "
                                 f"{(component or {}).get('type', 'form')} component: remove it")
    if path and path[-1] == "type" and component is not None:
        if instance == "page" or kind == "const":
            return _location(path), subject + "a 'page' may only sit directly inside a 'multipage' component, " \
                                              "and a 'multipage' holds only pages: move the component"
        if kind == "enum":
            return _location(path), (f"unknown component type {instance!r}: this server knows "
                                     f"{', '.join(sorted(_known_types()))}; replace the component or "
                                     "save the form with a Camunda Modeler that matches this engine")
    if path == ["type"]:
        return "type", 'the form\'s "type" must be "default": this is not a Camunda Form (.form) file'
    if kind == "type":
        name = path[-1] if path and isinstance(path[-1], str) else "the value"
        return _location(path), subject + f"{name} must be {_json_kinds(expected)}, not {_json_kind(instance)}"
    if kind == "pattern":
        hint = _PATTERN_HINTS.get(path[-1], f"must match {expected}")
        return _location(path), subject + f"{path[-1]} {instance!r} is not valid: {hint}"
    name = ".".join(str(p) for p in path[-2:]) if path[-2:-1] in (["validate"], ["layout"]) else str(path[-1]) \
        if path else "the form"
    if kind in ("minimum", "maximum"):
        least = "at least" if kind == "minimum" else "at most"
        return _location(path), subject + f"{name} must be {least} {expected}, not {instance!r}: " \
                                          f"{_BOUND_HINTS.get(name, _range_hint(error))}"
    if kind == "minLength" and instance == "":
        if path == ["id"]:
            return "id", "the form's id is empty: " + _REQUIRED_HINTS["id"]
        return _location(path), subject + f"{name} is empty: " + _EMPTY_HINTS.get(name, f"set a {name} or remove it")
    if kind == "enum":
        choices = ", ".join(repr(e) for e in expected if e not in ("", None))
        empty = " (or leave it empty)" if "" in expected or None in expected else ""
        return _location(path), subject + f"{name} {instance!r} is not one form-js knows: use one of {choices}{empty}"
    if kind == "anyOf" and component is not None and component.get("type") == "table":
        return _location(path), subject + "a table needs 'columns' or 'columnsExpression': set one of them"
    if kind == "not" and component is not None and component.get("type") == "table":
        return _location(path), subject + "a table takes 'columns' or 'columnsExpression', not both: remove one"
    return _location(path) or "(root)", subject + error.message


_REQUIRED_HINTS = {
    "key": "give the field a Key in the modeler's properties panel (the process variable it writes)",
    "id": "set the form's ID in Camunda Modeler (a BPMN camunda:formRef refers to it)",
    "type": "every component needs a type; save the form again from Camunda Modeler",
    "components": "a form needs a \"components\" list (it may be empty)",
    "dataSource": "set the table's data source (the variable holding its rows)",
    "value": "every option needs a value",
}
_BOUND_HINTS = {
    "validate.minLength": "a length cannot be negative; enter 0 or more, or remove the rule",
    "validate.maxLength": "a length cannot be negative; enter 0 or more, or remove the rule",
    "decimalDigits": "enter 0 (whole numbers only) or more, or remove it to allow any number of decimals",
    "timeInterval": "the time picker's step is 1 to 60 minutes",
    "layout.columns": "a field spans 2 to 16 of the form's 16 columns; remove it for the automatic width",
}
_EMPTY_HINTS = {
    "id": "give the component an id (Camunda Modeler writes one like Field_0abc123) or remove the empty one",
}


def _range_hint(error: jsonschema.ValidationError) -> str:
    bounds = error.schema
    low, high = bounds.get("minimum"), bounds.get("maximum")
    if low is not None and high is not None:
        return f"enter a number from {low} to {high}"
    return f"enter {low} or more" if low is not None else f"enter {high} or less"


_PATTERN_HINTS = {
    "key": "use letters, digits and underscores, dot-separated for nested data (for example applicant.name)",
    "path": "use letters, digits and underscores, dot-separated for nested data (for example applicant)",
    "valuesKey": "a process variable name without spaces",
}


def _known_types() -> list:
    return _structure_validator().schema["$defs"]["component"]["properties"]["type"]["enum"]


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    kinds = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
    return kinds.get(type(value), "a value")


def _json_kinds(expected: Any) -> str:
    names = {"string": "a string", "number": "a number", "integer": "a whole number", "boolean": "true or false",
             "array": "a list", "object": "an object", "null": "null"}
    expected = expected if isinstance(expected, list) else [expected]
    return " or ".join(names.get(e, e) for e in expected)


def _location(path: list) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _component_at(doc: dict, path: list) -> dict | None:
    """The innermost component whose JSON holds `path`."""
    node, found = doc, None
    for i, part in enumerate(path):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(part, int) and i > 0 and path[i - 1] == "components" and isinstance(node, dict):
            found = node
    return found


def _describe(component: Mapping) -> str:
    kind = component.get("type", "component")
    name = component.get("key") or component.get("path") or component.get("label")
    text = f"{kind} '{name}'" if isinstance(name, str) and name else str(kind)
    component_id = component.get("id")
    return text + (f" ({component_id})" if isinstance(component_id, str) and component_id else "")


# The semantic pass: one walk over the components claims data paths and checks each field.

@dataclass
class _Slot:
    """One place in the submitted data, as the form's components claim it."""
    owner: str
    kind: str                    # "object" (open: groups share it) | "list" | "value"
    children: dict = field(default_factory=dict)


@dataclass
class _Walk:
    problems: list = field(default_factory=list)
    fields: list = field(default_factory=list)
    ids: dict = field(default_factory=dict)


def _semantic_problems(doc: dict) -> tuple[list, list]:
    """Unique keys and ids, rules, options, FEEL syntax; tolerant of a form that breaks the
    schema (parse_form reports those problems), whose malformed parts it skips."""
    walk = _Walk()
    version = doc.get("schemaVersion")
    if not isinstance(version, int) or version < MIN_SCHEMA_VERSION:
        found = "is missing" if version is None else f"{version} is older than {MIN_SCHEMA_VERSION}"
        walk.problems.append(("schemaVersion", f"schemaVersion {found}: open the form in a current Camunda "
                              "Modeler (5.x) and save it again, which upgrades it"))
    _walk_components(_list(doc.get("components")), "components", _Slot("the form", "object"), (), (), walk)
    return walk.problems, walk.fields


def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


_DATA_PATH = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")      # the schema's key and path pattern


def _walk_components(components: list, location: str, slot: _Slot, prefix: tuple,
                     hidden_when: tuple, walk: _Walk) -> None:
    for index, component in enumerate(components):
        where = f"{location}[{index}]"
        kind = component.get("type") if isinstance(component, dict) else None
        if not isinstance(kind, str):
            continue                     # the schema check reported it
        _claim_id(component, where, walk)
        _check_feel(component, where, walk)
        hidden = hidden_when + _hidden_when(component)
        if kind in INPUT_TYPES:
            if not (isinstance(component.get("key"), str) and _DATA_PATH.fullmatch(component["key"])):
                continue                 # no key, or one the schema refused
            path = prefix + tuple(component["key"].split("."))
            if _claim(slot, tuple(component["key"].split(".")), "value", component, where, prefix, walk):
                walk.fields.append(_field(component, path, where, hidden, walk))
        elif kind in CONTAINER_TYPES:
            _walk_container(component, where, slot, prefix, hidden, walk)


def _walk_container(component: dict, where: str, slot: _Slot, prefix: tuple, hidden: tuple, walk: _Walk) -> None:
    path = component.get("path")
    if path and not (isinstance(path, str) and _DATA_PATH.fullmatch(path)):
        return                           # the schema check reported it
    segments = tuple(path.split(".")) if path else ()
    children = _list(component.get("components"))
    if component["type"] == "dynamiclist":
        if not segments:
            walk.problems.append((f"{where}.path", f"{_describe(component)}: a dynamic list needs a path "
                                  "(the list variable its entries go to): set Path in the properties panel"))
            return
        target = _claim(slot, segments, "list", component, where, prefix, walk)
        if target is not None:
            item = target.children.setdefault(LIST_ITEM, _Slot(target.owner, "object"))
            _walk_components(children, f"{where}.components", item, prefix + segments + (LIST_ITEM,), hidden, walk)
        return
    target = _claim(slot, segments, "object", component, where, prefix, walk) if segments else slot
    if target is not None:
        _walk_components(children, f"{where}.components", target, prefix + segments, hidden, walk)


def _claim(slot: _Slot, segments: tuple, kind: str, component: dict, where: str, prefix: tuple,
           walk: _Walk) -> _Slot | None:
    """Claim a data path below `slot`; on a collision record the problem and return None."""
    owner = f"{_describe(component)} at {where}"
    node = slot
    for depth, segment in enumerate(segments):
        last = depth == len(segments) - 1
        child = node.children.get(segment)
        if child is None:
            child = node.children[segment] = _Slot(owner, kind if last else "object")
        elif child.kind != "object" or (last and kind != "object"):
            full = ".".join(prefix + segments[:depth + 1]).replace("." + LIST_ITEM, LIST_ITEM)
            what = "key" if component["type"] in INPUT_TYPES else "path"
            walk.problems.append((f"{where}.{what}", f"{_describe(component)}: data path '{full}' is already "
                                  f"used by {child.owner}: give one of them another {what} (or put them in "
                                  "groups with different paths)"))
            return None
        node = child
    return node


def _claim_id(component: dict, where: str, walk: _Walk) -> None:
    component_id = component.get("id")
    if not isinstance(component_id, str) or not component_id:
        return                           # absent, or the schema check reported it
    if component_id in walk.ids:
        walk.problems.append((f"{where}.id", f"{_describe(component)}: component id '{component_id}' is also "
                              f"used at {walk.ids[component_id]}: ids must be unique; give one a new id"))
    else:
        walk.ids[component_id] = where


# the properties form-js evaluates as FEEL when they start with "="
_FEEL_PROPERTIES = (("conditional", "hide"), ("readonly",), ("disabled",), ("valuesExpression",), ("expression",),
                    ("columnsExpression",), ("dataSource",), ("label",), ("description",), ("text",), ("source",),
                    ("url",), ("validate", "min"), ("validate", "max"), ("validate", "minLength"),
                    ("validate", "maxLength"))


def _check_feel(component: dict, where: str, walk: _Walk) -> None:
    """Refuse an expression that is surely no FEEL: form-js could not evaluate it, and a
    `conditional.hide` that fails would leave its field optional without a word."""
    for path in _FEEL_PROPERTIES:
        text = _mapping(component.get(path[0])).get(path[1]) if len(path) == 2 else component.get(path[0])
        problem = feel.syntax_problem(text)
        if problem:
            name = ".".join(path)
            walk.problems.append((f"{where}.{name}", f"{_describe(component)}: {name} {text!r} is not a FEEL "
                                  f"expression ({problem}), so form-js cannot evaluate it: correct the expression"))


def _hidden_when(component: dict) -> tuple:
    hide = _mapping(component.get("conditional")).get("hide")
    if hide is True:
        return ("=true",)
    return (hide,) if isinstance(hide, str) and hide.strip() else ()


def _field(component: dict, path: tuple, where: str, hidden: tuple, walk: _Walk) -> FormField:
    kind = component["type"]
    validate = _mapping(component.get("validate"))
    readonly_flags = [component.get("readonly"), component.get("disabled")]
    readonly = any(flag is True or (isinstance(flag, str) and flag and not _is_feel(flag)) for flag in readonly_flags)
    feel_readonly = any(isinstance(flag, str) and _is_feel(flag) for flag in readonly_flags)
    enforceable = (validate.get("required") is True and not readonly and not feel_readonly
                   and kind not in UNCHECKED_TYPES)
    required = enforceable and not hidden
    # form-js requires a hidden field never: where the server can evaluate the hide conditions
    # (top-level data, engine/feel.py's subset), it requires the field where they show it
    required_when_shown = (enforceable and bool(hidden) and LIST_ITEM not in path
                           and all(feel.condition(text) is not None for text in hidden))
    options = values_key = None
    if kind in OPTION_TYPES:
        options, values_key = _options_source(component, where, walk)
    _check_rules(component, where, walk)
    label = component.get("label") or component.get("dateLabel") or component.get("timeLabel") or component["key"]
    shown_default = ((component["defaultValue"],) if readonly and "defaultValue" in component
                     and component.get("disabled") is not True else ())
    return FormField(key=".".join(path).replace("." + LIST_ITEM, LIST_ITEM), path=path, type=kind, label=label,
                     id=component.get("id"), location=where, required=required, readonly=readonly,
                     hidden_when=hidden, options=options, values_key=values_key, component=component,
                     required_when_shown=required_when_shown, shown_default=shown_default)


def _options_source(component: dict, where: str, walk: _Walk) -> tuple:
    values, values_key = component.get("values"), component.get("valuesKey")
    expression = component.get("valuesExpression")
    if values_key:
        return None, values_key
    if isinstance(expression, str) and expression.strip("= "):
        return None, None
    if values:
        options = [option.get("value") for option in _list(values) if isinstance(option, Mapping)]
        _check_unique_options(values, component, where, walk)
        return tuple(options), None
    walk.problems.append((f"{where}.values", f"{_describe(component)} has no options: add static options "
                          "(Options source: Static), or take them from a variable (valuesKey) or a FEEL "
                          "expression (valuesExpression)"))
    return None, None


def _check_unique_options(values: Any, component: dict, where: str, walk: _Walk) -> None:
    """Two options with one value: the submitted value cannot tell which was chosen."""
    first: dict = {}
    for index, option in enumerate(_list(values)):
        value = option.get("value") if isinstance(option, Mapping) else None
        if not isinstance(value, str):
            continue                     # the schema check reported it
        if value in first:
            walk.problems.append((f"{where}.values[{index}].value", f"{_describe(component)}: option value "
                                  f"{value!r} is also the value of values[{first[value]}]: the submitted value could not "
                                  "tell the two apart; give each option its own value"))
        else:
            first[value] = index


def _check_rules(component: dict, where: str, walk: _Walk) -> None:
    validate = _mapping(component.get("validate"))
    subject = _describe(component)
    bounds = {}
    for name in ("min", "max", "minLength", "maxLength"):
        try:
            bounds[name] = _literal_number(validate.get(name), whole=name.endswith("Length"))
        except ValueError:
            walk.problems.append((f"{where}.validate.{name}", f"{subject}: {name} {validate[name]!r} is not a "
                                  "number: enter a number, or a FEEL expression starting with '='"))
    for low, high in (("min", "max"), ("minLength", "maxLength")):
        if bounds.get(low) is not None and bounds.get(high) is not None and bounds[low] > bounds[high]:
            walk.problems.append((f"{where}.validate.{low}", f"{subject}: {low} {_show(bounds[low])} is greater "
                                  f"than {high} {_show(bounds[high])}, so no value can pass: "
                                  f"make {low} at most {high}"))
    if isinstance(validate.get("pattern"), str):
        try:
            compile_js_pattern(validate["pattern"])
        except (re.error, regex.error) as err:
            walk.problems.append((f"{where}.validate.pattern", f"{subject}: pattern {validate['pattern']!r} does "
                                  f"not compile ({err}). form-js runs it as a JavaScript regular expression and "
                                  "this server accepts the subset Python's re understands too: rewrite it "
                                  "without JavaScript- or Python-only syntax (use [\\s\\S] instead of [^], "
                                  "\\uFFFF instead of \\u{...}, no inline flags like (?i))"))
    if "increment" in component:
        try:
            step = _literal_number(component["increment"], whole=False)
        except ValueError:
            step = Decimal(0)
        if step is not None and step <= 0:
            walk.problems.append((f"{where}.increment", f"{subject}: increment {component['increment']!r} "
                                  "must be a positive number"))


def _is_feel(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("=")


def _literal_number(value: Any, whole: bool) -> Decimal | None:
    """A rule's bound, or None when absent or a FEEL expression (evaluated only in the browser)."""
    if value is None or value == "" or _is_feel(value):
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(value) from None
    if not number.is_finite() or (whole and (number != number.to_integral_value() or number < 0)):
        raise ValueError(value)
    return number


_JS_ONLY = ((re.compile(r"\(\?<([A-Za-z_]\w*)>"), r"(?P<\1>"), (re.compile(r"\\k<([A-Za-z_]\w*)>"), r"(?P=\1)"))
_PY_ONLY = re.compile(r"\(\?(?:P|>|[aiLmsux-]+[:)])")


# A pattern's test of one value may take this long.  Python's re has no limit, and a
# pattern with nested quantifiers, such as (a+)+$, takes twice as long for every character
# of a value it does not match (36 s for 28 characters): the one request runner would hold
# every other request meanwhile.  The regex module runs the same syntax with a time limit.
PATTERN_SECONDS = 0.1


def compile_js_pattern(pattern: str) -> regex.Pattern:
    """A form-js `validate.pattern` (a JavaScript RegExp without flags) as a Python regex.

    Named groups are translated, and `$` and `.` outside character classes (_js_end_and_dot);
    ASCII gives \\d and \\w JavaScript's ASCII meaning (so a full-width digit does not pass
    \\d).  Left different: \\s is ASCII-only here.  Checked against the syntax of Python's re
    (what the deploy-time message promises), compiled by the regex module (V0, re's
    behaviour), whose search takes a timeout (PATTERN_SECONDS)."""
    if _PY_ONLY.search(pattern):
        raise re.error("(?P..., (?>..., and inline flags are not JavaScript syntax")
    for js, python in _JS_ONLY:
        pattern = js.sub(python, pattern)
    pattern = _js_end_and_dot(pattern)
    re.compile(pattern, re.ASCII)
    return regex.compile(pattern, regex.ASCII | regex.V0)


# JavaScript's `.` matches anything but its four line terminators; Python's all but \n
_JS_DOT = "[^\\n\\r\\u2028\\u2029]"


def _js_end_and_dot(pattern: str) -> str:
    """`$` as JavaScript reads it without the m flag, the end of the value only (Python's `$`
    matches before a final newline too, so ^\\d{17}[\\dX]$ would pass "...X\\n"), and `.` as
    JavaScript's.  Escapes and character classes, where both are literal, are left alone."""
    out, index, in_class = [], 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            out.append(pattern[index:index + 2])
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        elif char == ".":
            char = _JS_DOT
        out.append(char)
        index += 1
    return "".join(out)


def _show(number: Decimal) -> str:
    return format(number.normalize(), "f")


# --- submission ---------------------------------------------------------------------------------

_CONTEXT: contextvars.ContextVar[Mapping | None] = contextvars.ContextVar("form_context", default=None)
_SCHEMAS: OrderedDict[str, Schema] = OrderedDict()
_SCHEMAS_LOCK = threading.Lock()
_SCHEMA_CACHE_SIZE = 256


def validate_submission(form: FormDefinition, values: Mapping[str, Any],
                        context: Mapping[str, Any] | None = None, options: Mapping[str, Any] | None = None) -> dict:
    """Check submitted values against the form; return the values to write.

    Read-only and disabled fields keep the case's value (_keep_readonly), keys that are no form
    field pass through (they are ordinary process variables).  `context` (the current process variables) supplies
    options for fields with a valuesKey, unless `options` names other variables to take them from
    (a start form's: the values submitted, as the case has none yet); a valuesKey that holds no
    list there leaves its field's options unchecked.
    Raises FormValidationError listing every invalid field."""
    if not isinstance(values, Mapping):
        raise TypeError(f"submitted values must be a mapping, not {type(values).__name__}")
    token = _CONTEXT.set(context if options is None else options)
    try:
        try:
            loaded, errors = submission_schema(form).load(dict(values)), {}
        except ValidationError as err:
            loaded, errors = None, _flatten(err.messages)
    finally:
        _CONTEXT.reset(token)
    for key, message in _missing_where_shown(form, values, context).items():
        errors.setdefault(key, []).append(message)
    if errors:
        raise FormValidationError(errors, {f.key: f.label for f in form.fields}, form.id)
    _keep_readonly(_data_tree(form.fields), loaded, context or {}, top=True)
    return loaded


def _keep_readonly(tree: dict, data: dict, stored: Any, top: bool = False, column: list | None = None) -> None:
    """Give every read-only or disabled field in `data` (one level of the loaded values) the value
    the case holds for it (`stored`, the case's value at the same level), not the submitted one:
    the user could not change it in the form.  form-js submits read-only values (not disabled
    ones), and a submitted object replaces the stored one, so a nested key is put back from the
    case, never dropped: the stored object loses nothing.  A top-level one is dropped, which keeps
    the variable as it is.  Where the case holds no value, a read-only field's defaultValue as
    submitted is kept (what form-js showed).  In a dynamic list's entry (`column`: the stored
    entries, which the user may have removed or reordered) a value the case holds in that column
    of any entry is kept as submitted; another takes the value of the stored entry at its position."""
    stored = stored if isinstance(stored, Mapping) else {}
    for segment, node in tree.items():
        if isinstance(node, FormField):
            if node.readonly:
                _keep_field(node, segment, data, stored, top, column)
            continue
        value = data.get(segment)
        if LIST_ITEM in node and isinstance(value, list):
            entries = stored.get(segment) if isinstance(stored.get(segment), list) else []
            for index, entry in enumerate(value):
                if isinstance(entry, dict):
                    below = entries[index] if index < len(entries) else None
                    _keep_readonly(node[LIST_ITEM], entry, below, column=entries)
        elif LIST_ITEM not in node and isinstance(value, dict):
            _keep_readonly(node, value, stored.get(segment))


_ABSENT = object()


def _keep_field(form_field: FormField, segment: str, data: dict, stored: Mapping, top: bool,
                column: list | None) -> None:
    submitted, held = data.get(segment, _ABSENT), stored.get(segment, _ABSENT)
    held_in_column = [entry[segment] for entry in column or () if isinstance(entry, Mapping) and segment in entry]
    if submitted is not _ABSENT and any(_same(submitted, other) for other in held_in_column):
        return
    if held is not _ABSENT:
        if top:
            data.pop(segment, None)
        else:
            data[segment] = held
    elif submitted is _ABSENT or not any(_same(submitted, d) for d in form_field.shown_default):
        data.pop(segment, None)


def _missing_where_shown(form: FormDefinition, values: Mapping, context: Mapping | None) -> dict[str, str]:
    """The fields required where the form shows them (FormField.required_when_shown) that
    are shown and empty.  form-js judges the conditions over the form's data: the
    variables it was opened with (`context`), the values entered over them."""
    fields_ = [f for f in form.fields if f.required_when_shown]
    if not fields_:
        return {}
    data = _overlay(context or {}, values)
    missing = {}
    for form_field in fields_:
        if any(feel.condition(text)(data) is True for text in form_field.hidden_when):
            continue
        value = feel.value_at(values, form_field.path)
        if _is_empty(value) or (form_field.type == "checkbox" and value is False):
            hides = " or ".join(text[1:].strip() for text in form_field.hidden_when)
            missing[form_field.key] = f"Field is required: the form hides it only when {hides}."
    return missing


def _overlay(base: Mapping, top: Mapping) -> dict:
    """`top` over `base`, nested objects merged key by key."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        merged[key] = _overlay(below, value) if isinstance(below, Mapping) and isinstance(value, Mapping) else value
    return merged


def default_values(form: FormDefinition) -> dict:
    """What a fresh form shows: each field's defaultValue at its data path (a group's fields
    nested in its object).  Fields in a dynamic list are left out: a new form has no entries."""
    values: dict = {}
    for form_field in form.fields:
        if "defaultValue" not in form_field.component or LIST_ITEM in form_field.path:
            continue
        node = values
        for segment in form_field.path[:-1]:
            node = node.setdefault(segment, {})
        node[form_field.path[-1]] = form_field.component["defaultValue"]
    return values


def submission_schema(form: FormDefinition) -> Schema:
    """The marshmallow schema for a form, built once per form checksum (deployed forms never change)."""
    key = form.checksum or hashlib.sha256(json.dumps(form.raw, sort_keys=True).encode()).hexdigest()
    with _SCHEMAS_LOCK:
        schema = _SCHEMAS.get(key)
        if schema is not None:
            _SCHEMAS.move_to_end(key)
            return schema
    schema = _level_schema(_data_tree(form.fields), f"Form_{form.id}")()
    with _SCHEMAS_LOCK:
        _SCHEMAS[key] = schema
        while len(_SCHEMAS) > _SCHEMA_CACHE_SIZE:
            _SCHEMAS.popitem(last=False)
    return schema


def _data_tree(form_fields: tuple) -> dict:
    """Nest the fields by path: {segment: FormField | subtree}; a LIST_ITEM key marks a list's entries."""
    tree: dict = {}
    for form_field in form_fields:
        node = tree
        for segment in form_field.path[:-1]:
            node = node.setdefault(segment, {})
        node[form_field.path[-1]] = form_field
    return tree


class _Level(Schema):
    """One object level of the submitted data.  Attribute names are generated ("f0", ...) so that a
    form key like `load` or `fields` cannot shadow Schema's own members."""

    class Meta:
        unknown = INCLUDE
        register = False

    error_messages = {"type": "Must be an object holding the fields of this group."}
    opened: frozenset = frozenset()      # nested levels holding a required field

    @pre_load
    def _open_groups_with_required_fields(self, data, **kwargs):
        # a missing group must still report its required fields as missing
        if isinstance(data, Mapping) and any(data.get(key) is None for key in self.opened):
            data = {**data, **{key: {} for key in self.opened if data.get(key) is None}}
        return data


def _level_schema(tree: dict, name: str) -> type[Schema]:
    attributes, opened = {}, []
    for index, (segment, node) in enumerate(tree.items()):
        if isinstance(node, FormField):
            # a read-only field is left unchecked here: its value is the case's (_keep_readonly)
            if not node.readonly and node.type not in UNCHECKED_TYPES:
                attributes[f"f{index}"] = _marshmallow_field(node, segment)
            continue
        if LIST_ITEM in node:
            item = _level_schema(node[LIST_ITEM], f"{name}_{segment}")
            attributes[f"f{index}"] = fields.List(
                fields.Nested(item), data_key=segment, attribute=segment, allow_none=True,
                error_messages={"invalid": "Must be a list of entries."})
            continue
        if _has_required(node):
            opened.append(segment)
        attributes[f"f{index}"] = fields.Nested(_level_schema(node, f"{name}_{segment}"), data_key=segment,
                                                attribute=segment, allow_none=True)
    attributes.update(opened=frozenset(opened))
    return type(name, (_Level,), attributes)


def _has_required(tree: dict) -> bool:
    return any(node.required if isinstance(node, FormField) else (LIST_ITEM not in node and _has_required(node))
               for node in tree.values())


# Field types and rules, mirroring form-js's Validator (runPresetValidation, runNumberValidation).

class _Value(fields.Field):
    """A form value: empty ("" / [] / null) is allowed through here; `required` is a validator."""
    default_error_messages = {"required": "Field is required.", "null": "Field is required."}
    kinds: tuple = ()

    def _deserialize(self, value, attr, data, **kwargs):
        if _is_empty(value) or self._accepts(value):
            return value
        raise self.make_error("invalid")

    def _accepts(self, value) -> bool:
        return isinstance(value, self.kinds) and not isinstance(value, bool)


class _Text(_Value):
    default_error_messages = {"invalid": "Must be text."}
    kinds = (str,)


class _Boolean(_Value):
    default_error_messages = {"invalid": "Must be true or false."}

    def _accepts(self, value) -> bool:
        return isinstance(value, bool)


class _Number(_Value):
    default_error_messages = {"invalid": "Must be a number."}

    def __init__(self, as_string: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.as_string = as_string    # serializeToString: form-js submits the number as text

    def _accepts(self, value) -> bool:
        if isinstance(value, str) and self.as_string:
            return _to_decimal(value) is not None
        return isinstance(value, (int, float)) and not isinstance(value, bool) and _to_decimal(value) is not None


class _Choice(_Value):
    default_error_messages = {"invalid": "Must be a single option value."}

    def _accepts(self, value) -> bool:
        return isinstance(value, (str, int, float, bool, dict))


class _Choices(_Value):
    default_error_messages = {"invalid": "Must be a list of option values."}
    kinds = (list, tuple)


_FIELD_TYPES = {"textfield": _Text, "textarea": _Text, "datetime": _Text, "checkbox": _Boolean,
                "radio": _Choice, "select": _Choice, "checklist": _Choices, "taglist": _Choices}


def _marshmallow_field(form_field: FormField, segment: str) -> fields.Field:
    component = form_field.component
    if form_field.type == "number":
        cls, extra = _Number, {"as_string": component.get("serializeToString") is True}
    else:
        cls, extra = _FIELD_TYPES[form_field.type], {}
    return cls(data_key=segment, attribute=segment, required=form_field.required,
               allow_none=not form_field.required, validate=_rules(form_field), **extra)


def _rules(form_field: FormField) -> list:
    component, kind = form_field.component, form_field.type
    validate = component.get("validate") or {}
    rules = [_required(kind)] if form_field.required else []
    if kind == "number":
        rules += _number_rules(component, validate)
    if kind in ("textfield", "textarea"):
        rules += _text_rules(validate)
    if kind == "datetime":
        rules.append(_datetime_rule(component.get("subtype") or "date"))
    if kind in OPTION_TYPES:
        rules.append(_options_rule(form_field, kind in MULTI_OPTION_TYPES))
    return rules


def _required(kind: str):
    def check(value):
        if _is_empty(value) or (kind == "checkbox" and value is False):
            raise ValidationError("Field is required.")
    return check


def _is_empty(value) -> bool:
    return value is None or value == "" or (isinstance(value, (list, tuple)) and not value)


def _to_decimal(value) -> Decimal | None:
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _number_rules(component: Mapping, validate: Mapping) -> list:
    rules = []
    low = _literal_number(validate.get("min"), whole=False)
    high = _literal_number(validate.get("max"), whole=False)
    digits = component.get("decimalDigits")
    step = _literal_number(component.get("increment"), whole=False)

    def check(value):
        number = None if _is_empty(value) else _to_decimal(value)
        if number is None:
            return
        problems = []
        if isinstance(digits, int) and _decimals(number) > digits:
            problems.append("Value is expected to be an integer." if digits == 0 else
                            f"Value is expected to have at most {digits} decimal digit{'s' if digits > 1 else ''}.")
        if step:
            problems += _increment_problems(number, step)
        if low is not None and number < low:
            problems.append(f"Field must have minimum value of {_show(low)}.")
        if high is not None and number > high:
            problems.append(f"Field must have maximum value of {_show(high)}.")
        if problems:
            raise ValidationError(problems)
    rules.append(check)
    return rules


# digits a value and its increment may span together (1e300 with increment 1: 302) for the
# increment check to be exact; JavaScript's numbers reach 1.8e308, so a form's values fit
MAX_STEP_DIGITS = 1000


def _increment_problems(number: Decimal, step: Decimal) -> list[str]:
    """The increment check, exact: decimal's default 28 digits cannot divide 1e28 by 1
    (DivisionImpossible), so the context gets as many digits as the two numbers span."""
    span = max(number.adjusted(), step.adjusted()) - min(number.as_tuple().exponent, step.as_tuple().exponent) + 2
    if span > MAX_STEP_DIGITS:
        return [f"Value spans too many digits to be checked against the increment {_show(step)}: "
                "enter a smaller value."]
    with localcontext() as exact:
        exact.prec = max(span, 28)
        offset = number % step
        if not offset:
            return []
        previous = number - offset
        return [f"Please select a valid value, the two nearest valid values are "
                f"{_show(previous)} and {_show(previous + step)}."]


def _decimals(number: Decimal) -> int:
    with localcontext() as exact:       # normalize() rounds to the context's 28 digits otherwise
        exact.prec = max(len(number.as_tuple().digits), 28)
        exponent = number.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


# HTML Living Standard's "valid e-mail address", which form-js uses too
EMAIL = re.compile(r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                   r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*")
# form-js's phone rule (its Validator's PHONE_PATTERN, tested with RegExp.test): somewhere in
# the value "+" or "00", a country's calling code, then digits to the end of the value that
# begin like a calling code again (1 or 7; 2 digits; 3 after the prefixes below) and run 4 to
# 20 digits past that.  Calling codes as form-js lists them (its country table, with Svalbard's
# 4779 and the Vatican's 3906698).
CALLING_CODES = frozenset("""
1 7 20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 76
77 81 82 84 86 90 91 92 93 94 95 98 211 212 213 216 218 220 221 222 223 224 225 226 227 228 229 230 231
232 233 234 235 236 237 238 239 240 241 242 243 244 245 246 248 249 250 251 252 253 254 255 256 257 258
260 261 262 263 264 265 266 267 268 269 291 297 298 299 350 351 352 353 354 355 356 357 358 359 370 371
372 373 374 375 376 377 378 379 380 381 382 383 385 386 387 389 420 421 423 500 501 502 503 504 505 506
507 508 509 590 591 592 593 594 595 596 597 598 670 672 673 674 675 676 677 678 679 680 681 682 683 685
686 687 688 689 690 691 692 850 852 853 855 856 880 886 960 961 962 963 964 965 966 967 968 970 971 972
973 974 975 976 977 992 993 994 995 996 998 1242 1246 1264 1268 1284 1340 1345 1441 1473 1649 1664 1670
1671 1684 1721 1758 1767 1784 1787 1809 1829 1849 1868 1869 1876 1939 4779 5999 3906698
""".split())
_THREE_DIGIT_ZONES = frozenset("21 22 23 24 25 26 28 29 35 37 38 42 50 59 67 68 69 80 83 85 87 88 89 96 97 99".split())
_TRAILING_DIGITS = re.compile(r"[0-9]*\Z")      # JavaScript's \d: ASCII digits only


def is_phone_number(value: str) -> bool:
    """form-js's phone check (CALLING_CODES above), exactly: RegExp.test finds the number
    anywhere ("Tel. +8613800138000" passes) as long as it runs to the end of the value."""
    run = _TRAILING_DIGITS.search(value)
    digits = run.group()
    after_prefix = [digits] if value[:run.start()].endswith("+") else []
    after_prefix += [digits[at + 2:] for at in range(len(digits) - 1) if digits.startswith("00", at)]
    return any(_calling_code_then_number(rest) for rest in after_prefix)


def _calling_code_then_number(digits: str) -> bool:
    for length in range(1, 8):
        if digits[:length] not in CALLING_CODES:
            continue
        rest = digits[length:]
        if not rest or rest[0] == "0":
            continue
        zone = 1 if rest[0] in "17" else 3 if rest[:2] in _THREE_DIGIT_ZONES else 2
        if 4 <= len(rest) - zone <= 20:
            return True
    return False


def _text_rules(validate: Mapping) -> list:
    low = _literal_number(validate.get("minLength"), whole=True)
    high = _literal_number(validate.get("maxLength"), whole=True)
    pattern = compile_js_pattern(validate["pattern"]) if validate.get("pattern") else None
    pattern_message = validate.get("patternErrorMessage") or f"Field must match pattern {validate.get('pattern')}."
    kind = validate.get("validationType")

    def check(value):
        if _is_empty(value):
            return
        problems = []
        length = _js_length(value.strip())
        if low is not None and length < low:
            problems.append(f"Field must have minimum length of {_show(low)} (it has {length}).")
        if high is not None and length > high:
            problems.append(f"Field must have maximum length of {_show(high)} (it has {length}).")
        # form-js tests the pattern with RegExp.test: a match anywhere, so anchor it (^...$) to match the whole value
        if pattern is not None:
            try:
                if not pattern.search(value, timeout=PATTERN_SECONDS):
                    problems.append(pattern_message)
            except TimeoutError:
                problems.append(f"Field could not be checked against pattern {validate.get('pattern')} within "
                                f"{PATTERN_SECONDS} s: the form's pattern backtracks on this value; the process "
                                "designer should simplify it (no nested repetition such as (a+)+).")
        if kind == "email" and not EMAIL.fullmatch(value):
            problems.append("Field must be a valid email.")
        if kind == "phone" and not is_phone_number(value):
            problems.append("Field must be a valid international phone number (e.g. +8613800138000).")
        if problems:
            raise ValidationError(problems)
    return [check]


def _js_length(text: str) -> int:
    """String length as JavaScript counts it (UTF-16 code units), so limits agree with the browser."""
    return len(text.encode("utf-16-le")) // 2


_DATETIME_FORMATS = {
    "date": (re.compile(r"\d{4}-\d{2}-\d{2}"), date.fromisoformat, "Must be a date like 2024-05-01."),
    "time": (re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"), time.fromisoformat,
             "Must be a time like 14:30, optionally with a UTC offset (14:30+08:00)."),
    "datetime": (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"),
                 datetime.fromisoformat, "Must be a date and time like 2024-05-01T14:30+08:00."),
}


def _datetime_rule(subtype: str):
    shape, parse, message = _DATETIME_FORMATS[subtype]

    def check(value):
        if _is_empty(value):
            return
        try:
            if shape.fullmatch(value):
                parse(value)
                return
        except ValueError:
            pass
        raise ValidationError(message)
    return check


def _options_rule(form_field: FormField, multiple: bool):
    def check(value):
        if _is_empty(value):
            return
        allowed = _allowed_options(form_field)
        if allowed is None:
            return
        chosen = list(value) if multiple else [value]
        wrong = [v for v in chosen if not any(_same(v, option) for option in allowed)]
        if wrong:
            shown = ", ".join(str(option) for option in allowed[:12]) + (", ..." if len(allowed) > 12 else "")
            bad = ", ".join(repr(v) for v in wrong)
            verb = "is" if len(wrong) == 1 else "are"
            raise ValidationError(f"{bad} {verb} not among the options: choose from {shown}.")
    return check


def _allowed_options(form_field: FormField) -> list | None:
    if form_field.options is not None:
        return list(form_field.options)
    if form_field.values_key is None:
        return None                      # valuesExpression: FEEL, not evaluated here
    source = (_CONTEXT.get() or {}).get(form_field.values_key)
    if not isinstance(source, (list, tuple)):
        return None
    # like form-js: an option is a primitive, or {label, value}
    return [option.get("value") if isinstance(option, Mapping) else option for option in source]


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested errors -> {"applicant.name": [...], "contacts[0].phone": [...]}."""
    if isinstance(messages, list):
        return {prefix or "_form": [str(m) for m in messages]}
    out: dict[str, list[str]] = {}
    for key, value in messages.items():
        if key == "_schema":
            path = prefix or "_form"
        elif isinstance(key, int):
            path = f"{prefix}[{key}]"
        else:
            path = f"{prefix}.{key}" if prefix else str(key)
        for sub, texts in _flatten(value, path).items():
            out.setdefault(sub, []).extend(texts)
    return out
