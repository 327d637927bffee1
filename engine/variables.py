"""Camunda 7 typed variables <-> the plain Python values a workflow holds.

Wire format: `{"name": {"value": ..., "type": "String|Integer|Long|Double|Boolean|Json|Date|Null", "valueInfo": {}}}`.
Json values travel as JSON text (as Camunda's Spin does); Dates as
`yyyy-MM-dd'T'HH:mm:ss.SSSZ` (e.g. `2025-09-26T10:00:00.000+0800`).
"""
from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timedelta, timezone
from functools import cache
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from .errors import BadRequest

INT_MIN, INT_MAX = -2**31, 2**31 - 1
LONG_MIN, LONG_MAX = -2**63, 2**63 - 1
SHORT_MIN, SHORT_MAX = -2**15, 2**15 - 1
TYPES = ("String", "Integer", "Long", "Short", "Double", "Boolean", "Json", "Date", "Null")

_TYPE_NAMES = {t.lower(): t for t in TYPES}
MAX_DEPTH = 100             # as engine.sandbox.MAX_DATA_DEPTH: what is stored must serialize
_ZONE = ZoneInfo("Asia/Shanghai")


def set_display_zone(name: str) -> None:
    global _ZONE
    _ZONE = ZoneInfo(name)


def display_zone() -> ZoneInfo:
    """The zone dates are shown in and naive ones are read in (the engine's `timezone`)."""
    return _ZONE


def format_date(value: datetime | None) -> str | None:
    """Camunda's date format; naive values are UTC (as stored in the database)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    # isoformat is C: ~4 µs against 8-10 µs for two strftime calls (a page of 15 tasks writes 60 dates);
    # its offset "+08:00" loses the colon.  An offset with seconds (local mean time before
    # 1901) or a year before 1000, which isoformat would write differently, take strftime.
    local = value.astimezone(_ZONE)
    text = local.isoformat(timespec="milliseconds")
    if len(text) == 29 and text[26] == ":" and text[0] != "0":
        return text[:26] + text[27:]
    # the year in four digits, as Camunda's yyyy: strftime's %Y writes year 99 as "99", which
    # no parser reads back (a form showing such a date could not be sent back unchanged)
    return (f"{local.year:04d}" + local.strftime("-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"
            + local.strftime("%z"))


# how fine Camunda writes a date: a date given in a query stands for that millisecond
DATE_PRECISION = timedelta(milliseconds=1)


def parse_date(text: str, what: str = "date") -> datetime:
    """Camunda's format, ISO-8601 with or without offset (naive = display zone); returns aware."""
    if not isinstance(text, str):
        raise BadRequest(f"{what}: expected a date string like 2025-09-26T10:00:00.000+0800, got {text!r}")
    candidate = text.strip().replace("Z", "+00:00")
    if len(candidate) >= 5 and candidate[-5] in "+-" and candidate[-3] != ":":
        candidate = candidate[:-2] + ":" + candidate[-2:]     # +0800 -> +08:00
    try:
        value = datetime.fromisoformat(candidate)
    except ValueError:
        raise BadRequest(f"{what}: cannot parse {text!r} as a date; use the form "
                         "2025-09-26T10:00:00.000+0800") from None
    value = value if value.tzinfo else value.replace(tzinfo=_ZONE)
    try:
        # stored in UTC and shown in the display zone: either beyond year 1..9999 failed
        # every later read of the case's variables (and every worker's fetch of its tasks)
        value.astimezone(timezone.utc).astimezone(_ZONE)
    except OverflowError:
        raise BadRequest(f"{what}: {text!r} is out of range: a date must fall within the years 1 to 9999 "
                         f"both in UTC and in {_ZONE.key}") from None
    return value


def to_utc_naive(value: Any, what: str = "date") -> datetime:
    """A datetime, date or date string (naive = display zone) as naive UTC for storage."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=_ZONE)
    elif isinstance(value, date):
        aware = datetime(value.year, value.month, value.day, tzinfo=_ZONE)
    else:
        aware = parse_date(str(value), what)
    return aware.astimezone(timezone.utc).replace(tzinfo=None)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name or name.startswith("__") or len(name) > 255:
        raise BadRequest(f"invalid variable name {name!r}: use a non-empty name that does not start with '__'")
    return name


class VariableMap(dict):
    """Variables as plain values by name, with `types`: the type each was declared with,
    where one was (Camunda's VariableMap of typed values).  A request's variables carry the
    types they were sent with (from_wire); a read's, the declared types its case keeps
    (engine/variable_types.py).  A name without one has its value's own type (type_of).
    `transient`: the names a request sent with `"valueInfo": {"transient": true}`, which
    the command sees and nothing stores (engine/transient_variables.py)."""

    __slots__ = ("types", "transient")

    def __init__(self, values: Any = (), types: dict | None = None, transient: frozenset = frozenset()) -> None:
        super().__init__(values)
        self.types = types if types is not None else {}
        self.transient = transient

    def copy(self) -> "VariableMap":
        return VariableMap(self, dict(self.types), self.transient)


def to_python(name: str, typed: Any) -> Any:
    """One wire variable -> a Python value; a clear 400 when type and value disagree."""
    return _typed_value(name, typed)[0]


def _typed_value(name: str, typed: Any) -> tuple[Any, str | None]:
    """One wire variable -> (its Python value, the type it names or None)."""
    check_name(name)
    if not isinstance(typed, Mapping):
        raise BadRequest(f"variable '{name}': expected an object like {{\"value\": ..., \"type\": \"String\"}}")
    value, vtype = typed.get("value"), typed.get("type")
    if vtype is None:
        return _storable(name, value), None
    vtype = _TYPE_NAMES.get(vtype.lower()) if isinstance(vtype, str) else None
    if vtype is None:
        raise BadRequest(f"variable '{name}': unsupported type {typed.get('type')!r}; use one of {', '.join(TYPES)}")
    if value is None or vtype == "Null":
        return None, vtype
    if vtype == "Date":
        return parse_date(value, f"variable '{name}'"), vtype
    try:
        return _storable(name, _CONVERTERS[vtype](value)), vtype
    except RecursionError:
        raise BadRequest(f"variable '{name}': the value nests deeper than {MAX_DEPTH} levels") from None
    except (ValueError, TypeError, OverflowError) as err:      # OverflowError: an integer beyond a double
        shown = value if not isinstance(value, int) or abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit number"
        raise BadRequest(f"variable '{name}': cannot convert value {shown!r} to type {vtype}: {err}") from None


def _storable(name: str, value: Any) -> Any:
    problem = unstorable_shape(value, numbers=True)
    if problem:
        raise BadRequest(f"variable '{name}': {problem}")
    return value


def unstorable_shape(value: Any, numbers: bool = False) -> str | None:
    """What makes `value` unfit for a case's state, or None.  Hostile input: deeply
    nested data would overflow the serializer's (and Python's) stack; an object named
    like one of the state's own typed values ({"typename": "datetime", ...}) would be read
    back as that type when the case is restored, and a value that is not one would fail
    every later command on the case, its deletion too.  Checked where the API takes
    values in, and where a model's script or mapping makes them (unfit_for_state).
    `numbers` (a request's values): a NaN or an infinity anywhere in the value, which a
    request body's JSON brings in as NaN, Infinity or 1e400 (Python's parser takes them,
    Camunda's Jackson does not), and which read back as null."""
    level, layer, reserved = 0, [value], _typenames()
    while True:
        if numbers and any(type(item) is float and not math.isfinite(item) for item in layer):
            return ("NaN, Infinity and numbers beyond a double's range (1e400) are not JSON numbers: "
                    "send a finite number, or the value as a String")
        containers = [item for item in layer if isinstance(item, (dict, list, tuple))]
        if not containers:
            return None
        level += 1
        if level > MAX_DEPTH:
            return f"the value nests deeper than {MAX_DEPTH} levels"
        for item in containers:
            typename = item.get("typename") if isinstance(item, dict) else None
            if isinstance(typename, str) and typename in reserved:
                return (f"an object with \"typename\": {typename!r} is how the engine stores its own typed "
                        "values; name that key otherwise")
        layer = [v for item in containers for v in (item.values() if isinstance(item, dict) else item)]


@cache
def _typenames() -> frozenset:
    """The typenames SpiffWorkflow's serializer turns back into objects when it restores a
    case (imported on first use: engine.workflows is heavier than this module)."""
    from .workflows import SERIALIZER
    return frozenset(SERIALIZER.registry.convert_from_dict)


SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")      # \ud800-\udfff, as JSON writes it
_SURROGATE = re.compile("[\ud800-\udfff]")


def surrogate_problem(value) -> str | None:
    """Where in parsed JSON (a request body, a Json variable's text) or a model's value a
    string or a name holds a lone UTF-16 surrogate ("\\ud800" without its pair), said as
    the error's text; None when none does.  JSON's escapes let such text in, but it cannot
    be encoded as UTF-8: not into the audit chain's hash, the database or a response, so a
    case holding it failed every command that showed or recorded it."""
    where = _lone_surrogate(value)
    if where is None:
        return None
    return f"invalid text at {where}: a lone UTF-16 surrogate (\\ud800-\\udfff without its pair) is not Unicode text"


def _lone_surrogate(value) -> str | None:
    """Where `value` holds a lone surrogate, as a dotted path, or None."""
    stack = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path or "the body"
        elif isinstance(item, dict):
            for key in item:
                if isinstance(key, str) and _SURROGATE.search(key):
                    return f"the name {ascii(key)}" + (f" in {path}" if path else "")
            stack.extend((child, f"{path}.{key}" if path else key) for key, child in reversed(item.items()))
        elif isinstance(item, (list, tuple)):
            stack.extend((item[i], f"{path}[{i}]") for i in reversed(range(len(item))))
    return None


def unfit_for_state(value: Any) -> str | None:
    """What a model's script or mapping made that the case could not keep, or None: what
    unstorable_shape refuses, and text with a lone surrogate, which the API refuses in a
    request's body (api/blueprint.py) and which no database or response could encode."""
    return unstorable_shape(value) or surrogate_problem(value)


def _to_int(low: int, high: int):
    def convert(value):
        if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
            raise ValueError("not a whole number")
        number = int(value)
        if isinstance(value, str) and value.strip() != str(number):
            raise ValueError("not a whole number")
        if not low <= number <= high:
            raise ValueError(f"out of range {low}..{high}")
        return number
    return convert


def _to_double(value):
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, str) and "_" in value:         # Python's float() reads "1_0" as 10.0
        raise ValueError("not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _to_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("expected true or false")


def _to_string(value):
    if isinstance(value, (dict, list)):
        raise ValueError("an object or list is not a string (use type Json)")
    return value if isinstance(value, str) else json.dumps(value)


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON (a Json value holds JSON's numbers only)")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is beyond a double's range")
    return number


def _to_json(value):
    if not isinstance(value, str):
        return value
    parsed = json.loads(value, parse_constant=_not_json, parse_float=_finite)
    if SURROGATE_ESCAPE.search(value) and (problem := surrogate_problem(parsed)):
        raise ValueError(problem)
    return parsed


_CONVERTERS = {
    "String": _to_string, "Integer": _to_int(INT_MIN, INT_MAX), "Long": _to_int(LONG_MIN, LONG_MAX),
    "Short": _to_int(SHORT_MIN, SHORT_MAX), "Double": _to_double, "Boolean": _to_bool,
    "Json": _to_json,
}


def from_wire(variables: Any) -> VariableMap:
    """A request's `variables` map -> plain values (all names checked), with the types
    the request named and the names it sent as transient."""
    if variables is None:
        return VariableMap()
    if not isinstance(variables, Mapping):
        raise BadRequest("'variables' must be an object mapping names to {\"value\", \"type\"}")
    values, types, transient = VariableMap(), {}, set()
    for name, typed in variables.items():
        values[name], vtype = _typed_value(name, typed)
        if vtype is not None:
            types[name] = vtype
        if _is_transient(name, typed):
            transient.add(name)
    values.types, values.transient = types, frozenset(transient)
    return values


def _is_transient(name: str, typed: Mapping) -> bool:
    """Camunda 7's `"valueInfo": {"transient": true}` (any type may be transient)."""
    info = typed.get("valueInfo")
    flag = info.get("transient") if isinstance(info, Mapping) else None
    if flag is not None and not isinstance(flag, bool):
        raise BadRequest(f"variable '{name}': valueInfo.transient must be true or false, got {flag!r}")
    return flag is True


def from_patch(modifications: Any, deletions: Any) -> tuple[VariableMap, list]:
    """Camunda's `{"modifications": {name: typed value}, "deletions": [name]}` -> (plain
    values, names): every value and name checked before anything changes."""
    if deletions is None:
        deletions = []
    if not isinstance(deletions, list):
        raise BadRequest("'deletions' must be a list of variable names")
    return from_wire(modifications), list(dict.fromkeys(check_name(name) for name in deletions))


def type_of(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer" if INT_MIN <= value <= INT_MAX else "Long"
    if isinstance(value, float):
        return "Double"
    if isinstance(value, str):
        return "String"
    if isinstance(value, (datetime, date)):
        return "Date"
    return "Json"


def to_wire(value: Any, vtype: str | None = None) -> dict:
    """A value as Camunda's typed value: of type `vtype` (a declared type) or its own."""
    vtype = vtype or type_of(value)
    if value is None:                   # Camunda keeps a null's declared type ({"type": "String", "value": null})
        return {"type": vtype, "value": None, "valueInfo": {}}
    if vtype == "Date":
        if not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day, tzinfo=_ZONE)
        return {"type": vtype, "value": format_date(value), "valueInfo": {}}
    if vtype == "Json":
        return {"type": vtype, "value": json.dumps(jsonable(value), ensure_ascii=False), "valueInfo": {}}
    return {"type": vtype, "value": value, "valueInfo": {}}


def map_to_wire(values: Mapping[str, Any]) -> dict:
    """Values as typed values: a VariableMap's by its declared types, others by their own."""
    types = values.types if isinstance(values, VariableMap) else {}
    return {name: to_wire(value, types.get(name)) for name, value in values.items()}


def jsonable(value: Any) -> Any:
    """Plain JSON for storage in history/audit rows (dates as ISO strings)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
