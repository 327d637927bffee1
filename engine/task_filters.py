"""Camunda 7's task query filters beyond a queue's own (engine/tasks.py owns the queue's,
the reader's visibility and how a list is read): what each means in SQL on user_task.

Each filter a query uses is an item of the list's *shape* (engine/tasks.py `_criteria`),
its values bound under names of its own, so that a query without them keeps the
statement it had.  Semantics as Camunda's (its Task.xml): dates compare strictly
(dueBefore is due < the date), a date "on" is that millisecond, nameLike and
descriptionLike ignore case, the other Likes do not (on SQLite too, whose LIKE ignores
the case of ASCII letters: they are read as GLOB patterns there), and every Like takes
the value as an SQL pattern (the client writes the % signs, \\ escapes one)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, exists, func, literal_column, not_, or_

from .errors import BadRequest
from .fastsql import LIKE_ESCAPE, bound, numbered
from .models import TaskCandidate, UserTask, VariableInstance
from .variable_values import NUMERIC_TYPES, JsonKind, JsonNumber, JsonText
from .variables import DATE_PRECISION

_TASKS, _VARIABLES = UserTask.__table__, VariableInstance.__table__


@dataclass
class Filters:
    """Camunda's other filters of a task query (engine/tasks.py TaskQuery.filters; their
    Camunda names in api/task_query.py).  Dates are naive UTC; a list with no values
    filters nothing."""
    task_id: str | None = None
    task_ids: tuple = ()
    process_instance_ids: tuple = ()
    business_keys: tuple = ()
    business_key_like: str | None = None
    process_definition_id: str | None = None
    execution_id: str | None = None
    activity_instance_ids: tuple = ()
    process_definition_keys: tuple = ()
    task_definition_keys: tuple = ()
    task_definition_keys_not: tuple = ()
    task_definition_key_like: str | None = None
    name_like: str | None = None
    name_not_equal: str | None = None
    name_not_like: str | None = None
    description: str | None = None
    description_like: str | None = None
    assignees: tuple = ()
    assignees_not: tuple = ()
    assignee_like: str | None = None
    assigned: bool = False
    owner: str | None = None
    delegation_state: str | None = None        # PENDING | RESOLVED
    involved_user: str | None = None
    candidate_groups: tuple = ()
    with_candidate_groups: bool = False
    without_candidate_groups: bool = False
    with_candidate_users: bool = False
    without_candidate_users: bool = False
    priority: int | None = None
    min_priority: int | None = None
    max_priority: int | None = None
    due_on: datetime | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    without_due: bool = False
    follow_up_on: datetime | None = None
    follow_up_before: datetime | None = None
    follow_up_after: datetime | None = None
    follow_up_before_or_none: datetime | None = None
    created_on: datetime | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None
    updated_after: datetime | None = None
    tenant_ids: tuple = ()
    without_tenant: bool = False
    suspended: bool = False        # no case is ever suspended here: such a query finds nothing
    process_variables: tuple = ()  # VariableFilter
    variable_names_ignore_case: bool = False
    variable_values_ignore_case: bool = False

    def candidates_asked(self) -> bool:
        """One of the candidate filters, which Camunda limits to unassigned tasks."""
        return bool(self.candidate_groups or self.with_candidate_groups or self.without_candidate_groups
                    or self.with_candidate_users or self.without_candidate_users)


def criteria(filters: Filters, shape: list, values: dict, sqlite: bool) -> None:
    """The filters as shape items appended to `shape` (engine/tasks.py `_criteria`), their
    values into `values`, bound as the store needs them (`sqlite`)."""
    _column_criteria(filters, shape, values, sqlite)
    _candidate_criteria(filters, shape, values)
    _variable_criteria(filters, shape, values, sqlite)


# A Filters field -> (the user_task column, its test).  A test's value
# is bound under the field's name (a list's one parameter per value, numbered).
COLUMN_TESTS = {
    "task_id": ("id", "="), "task_ids": ("id", "in"),
    "process_instance_ids": ("instance_id", "in"),
    "business_keys": ("business_key", "in"), "business_key_like": ("business_key", "like"),
    "process_definition_id": ("definition_id", "="), "process_definition_keys": ("definition_key", "in"),
    "execution_id": ("instance_id", "="),                   # a task's execution is its case (api/render.py)
    "activity_instance_ids": ("activity_instance_id", "in"),
    "task_definition_keys": ("task_definition_key", "in"),
    "task_definition_keys_not": ("task_definition_key", "not in"),
    "task_definition_key_like": ("task_definition_key", "like"),
    "name_like": ("name", "like, any case"), "name_not_equal": ("name", "!=, any case"),
    "name_not_like": ("name", "not like, any case"),
    "description": ("description", "=, any case"), "description_like": ("description", "like, any case"),
    "assignees": ("assignee", "in"), "assignees_not": ("assignee", "not in"), "assignee_like": ("assignee", "like"),
    "assigned": ("assignee", "is not null"), "owner": ("owner", "="),
    "delegation_state": ("delegation_state", "="),
    "priority": ("priority", "="), "min_priority": ("priority", ">="), "max_priority": ("priority", "<="),
    "due_on": ("due", "on"), "due_before": ("due", "<"), "due_after": ("due", ">"), "without_due": ("due", "is null"),
    "follow_up_on": ("follow_up", "on"), "follow_up_before": ("follow_up", "<"),
    "follow_up_after": ("follow_up", ">"), "follow_up_before_or_none": ("follow_up", "is null or <"),
    "created_on": ("created", "on"), "created_before": ("created", "<"), "created_after": ("created", ">"),
    "updated_after": ("last_updated", ">"),                 # a task never updated: its creation
    "tenant_ids": ("tenant_id", "in"), "without_tenant": ("tenant_id", "is null"),
}
_FLAGS = {test for _, test in COLUMN_TESTS.values() if test in ("is null", "is not null")}


def _asked(value) -> bool:
    return value is not None and value is not False and value != ()


def _column_criteria(filters: Filters, shape: list, values: dict, sqlite: bool) -> None:
    """The column tests `filters` asks for, as shape items ("test", field[, how many values])
    appended to `shape`, their values into `values`."""
    for field, (_, test) in COLUMN_TESTS.items():
        value = getattr(filters, field)
        if not _asked(value):
            continue
        if test in _FLAGS:
            shape.append(("test", field))
        elif test in ("in", "not in"):
            shape.append(("test", field, len(value)))
            values.update(numbered(field, list(value)))
        else:
            shape.append(("test", field))
            values[field] = glob(value) if test == "like" and sqlite else value
            if test == "on":
                values[f"{field}_end"] = value + DATE_PRECISION


def column_condition(sqlite: bool, field: str, size: int | None = None):
    """The SQL of a ("test", field[, size]) shape item."""
    name, test = COLUMN_TESTS[field]
    column = _TASKS.c[name]
    if test in ("in", "not in"):
        listed = bound(field, size)
        return column.in_(listed) if test == "in" else column.not_in(listed)
    value = bindparam(field)
    simple = {"=": column.__eq__, "<": column.__lt__, ">": column.__gt__, ">=": column.__ge__, "<=": column.__le__}
    if test in simple:
        return simple[test](value)
    return {
        "like": lambda: _like(column, value, sqlite),
        "like, any case": lambda: func.upper(column).like(func.upper(value), escape=LIKE_ESCAPE),
        "not like, any case": lambda: func.upper(column).not_like(func.upper(value), escape=LIKE_ESCAPE),
        "=, any case": lambda: func.upper(column) == func.upper(value),
        "!=, any case": lambda: func.upper(column) != func.upper(value),
        "is null": lambda: column.is_(None),
        "is not null": lambda: column.is_not(None),
        "is null or <": lambda: or_(column.is_(None), column < value),
        # to the millisecond, as Camunda writes a date: user_task keeps microseconds
        "on": lambda: and_(column >= value, column < bindparam(f"{field}_end")),
    }[test]()


def _like(text, pattern, sqlite: bool):
    """`text` LIKE `pattern`, minding case on both stores: on SQLite the pattern is bound as
    GLOB's (glob)."""
    return text.op("GLOB", is_comparison=True)(pattern) if sqlite else text.like(pattern, escape=LIKE_ESCAPE)


def glob(pattern: str) -> str:
    """A LIKE pattern (%, _, and \\ before a character meant as itself) as SQLite's GLOB
    pattern, which minds case as PostgreSQL's LIKE does."""
    out, chars = [], iter(pattern)
    for char in chars:
        if char == "\\":
            char = next(chars, "\\")
        elif char in "%_":
            out.append("*" if char == "%" else "?")
            continue
        out.append(f"[{char}]" if char in "*?[" else char)
    return "".join(out)


# --- who a task is offered to, beyond candidateGroup and candidateUser --------------------

def _candidate_criteria(filters: Filters, shape: list, values: dict) -> None:
    """candidateGroups, with(out)CandidateGroups/Users and involvedUser as shape items."""
    if filters.candidate_groups:
        shape.append(("candidate_groups", len(filters.candidate_groups)))
        values.update(numbered("candidate_groups", list(filters.candidate_groups)))
    for flag in ("with_candidate_groups", "without_candidate_groups", "with_candidate_users",
                 "without_candidate_users"):
        if getattr(filters, flag):
            shape.append(flag)
    if filters.involved_user:
        shape.append("involved_user")
        values["involved_user"] = filters.involved_user


CANDIDATE_KINDS = frozenset({"candidate_groups", "with_candidate_groups", "without_candidate_groups",
                             "with_candidate_users", "without_candidate_users", "involved_user"})


def candidate_condition(kind: str, size: int | None, offered):
    """The SQL of a _candidate_criteria item; `offered`: authz.offered_exists or offered_ids."""
    if kind == "candidate_groups":
        return offered(TaskCandidate.group_id.in_(bound("candidate_groups", size)))
    if kind == "involved_user":
        # Camunda's: an identity link of the user's (here: a candidate), the assignee or the owner
        me = bindparam("involved_user")
        return or_(_TASKS.c.assignee == me, _TASKS.c.owner == me, offered(TaskCandidate.user_id == me))
    column = TaskCandidate.group_id if kind.endswith("groups") else TaskCandidate.user_id
    has = offered(column.is_not(None))
    return has if kind.startswith("with_") else not_(has)


# --- processVariables ---------------------------------------------------------------------

OPERATORS = ("eq", "neq", "gt", "gteq", "lt", "lteq", "like", "notLike")
_ORDERS = {"gt": "__gt__", "gteq": "__ge__", "lt": "__lt__", "lteq": "__le__"}
_TEXT_NUMBER = r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$"


@dataclass(frozen=True)
class VariableFilter:
    """processVariables: the task's case has the variable `name` with a value that meets
    `operator` (OPERATORS) `value`: a str, an int or float, a bool or None.  `as_text`
    (Camunda's GET form, whose values are text): the text also matches a number or a
    Boolean written the same way."""
    name: str
    operator: str
    value: object
    as_text: bool = False

    def kinds(self) -> tuple:
        """The kinds of stored values this filter compares with: "string", "number",
        "boolean", "null"; a 400 for an operator the value's kind has not."""
        value = self.value
        if value is None:
            kinds = ("null",)
        elif isinstance(value, bool):
            kinds = ("boolean",)
        elif isinstance(value, (int, float)):
            kinds = ("number",)
        elif isinstance(value, str):
            kinds = ("string",) + (_text_kinds(value) if self.as_text else ())
        else:
            raise BadRequest(f"processVariables: variable '{self.name}': a value to compare must be a string, "
                             f"a number, a Boolean or null, not {type(value).__name__}")
        if self.operator in _ORDERS:
            if "number" not in kinds:
                raise BadRequest(f"processVariables: operator '{self.operator}' compares numbers here; "
                                 f"{value!r} (variable '{self.name}') is not a number")
            return ("number",)
        if self.operator in ("like", "notLike") and "string" not in kinds:
            raise BadRequest(f"processVariables: operator '{self.operator}' compares text; "
                             f"{value!r} (variable '{self.name}') is not a string")
        if self.operator in ("like", "notLike"):
            return ("string",)
        return kinds

    def number(self):
        """The value as a number (number kind)."""
        if isinstance(self.value, str):
            return float(self.value) if any(c in self.value for c in ".eE") else int(self.value)
        return self.value


def _text_kinds(text: str) -> tuple:
    kinds = ()
    if re.match(_TEXT_NUMBER, text) and math.isfinite(float(text)):
        kinds += ("number",)
    if text in ("true", "false"):
        kinds += ("boolean",)
    return kinds


def _variable_criteria(filters: Filters, shape: list, values: dict, sqlite: bool) -> None:
    """processVariables as shape items ("variable", index, operator, kinds, names in any
    case, values in any case), their values bound as variable_<index>_name, _string,
    _number and _boolean."""
    for index, wanted in enumerate(filters.process_variables):
        if wanted.operator not in OPERATORS:
            raise BadRequest(f"Invalid process variable comparator specified: {wanted.operator} "
                             f"(use one of {', '.join(OPERATORS)})")
        kinds = wanted.kinds()
        shape.append(("variable", index, wanted.operator, kinds, filters.variable_names_ignore_case,
                      filters.variable_values_ignore_case))
        prefix = f"variable_{index}"
        values[f"{prefix}_name"] = wanted.name
        if "string" in kinds:
            minds_case = wanted.operator in ("like", "notLike") and not filters.variable_values_ignore_case
            values[f"{prefix}_string"] = glob(wanted.value) if minds_case and sqlite else wanted.value
        if "number" in kinds:
            values[f"{prefix}_number"] = wanted.number()
        if "boolean" in kinds:
            values[f"{prefix}_boolean"] = "true" if wanted.value in (True, "true") else "false"


def variable_condition(index: int, operator: str, kinds: tuple, names_any_case: bool, values_any_case: bool,
                       sqlite: bool):
    """EXISTS a variable_instance row of the task's case (its unique index on (instance_id,
    name)) whose value meets the filter, as Camunda's Commons.xml has it: eq, one of the
    value's kinds matches (engine/variable_values.py: a String as text, an Integer, Long,
    Short or Double as a number, a Boolean as one, a null as null); neq, none does (a
    variable of another type is not equal); the others compare numbers or text."""
    v, prefix = _VARIABLES.c, f"variable_{index}"
    name = bindparam(f"{prefix}_name")
    named = func.upper(v.name) == func.upper(name) if names_any_case else v.name == name
    if operator in ("eq", "neq"):
        equal = or_(*[_equal(kind, bindparam(f"{prefix}_{kind}"), values_any_case) for kind in kinds])
        meets = equal if operator == "eq" else not_(equal)
    elif operator in _ORDERS:
        number = JsonNumber(v.value)
        meets = and_(_typed(NUMERIC_TYPES), getattr(number, _ORDERS[operator])(bindparam(f"{prefix}_number")))
    else:
        text, pattern = JsonText(v.value), bindparam(f"{prefix}_string")
        if values_any_case:
            matches = func.upper(text).like(func.upper(pattern), escape=LIKE_ESCAPE)
        else:
            matches = _like(text, pattern, sqlite)
        meets = and_(_typed(("String",)), matches if operator == "like" else not_(matches))
    return exists().where(v.instance_id == _TASKS.c.instance_id, named, meets)


def _typed(types: tuple):
    column = _VARIABLES.c.type
    if len(types) == 1:
        return column == literal_column(f"'{types[0]}'")
    return column.in_([literal_column(f"'{name}'") for name in types])


def _equal(kind: str, value, any_case: bool):
    """The stored value is of `kind` and equals `value` (Camunda's EQUALS for one kind): true
    or false, never null, so that neq is its negation (a null String is not equal to "5")."""
    stored = _VARIABLES.c.value
    if kind == "null":
        return JsonKind(stored) == literal_column("'null'")
    if kind == "boolean":
        return and_(_typed(("Boolean",)), JsonKind(stored) == value)
    if kind == "number":
        number = JsonNumber(stored)
        return and_(_typed(NUMERIC_TYPES), number.is_not(None), number == value)
    text = JsonText(stored)
    return and_(_typed(("String",)), text.is_not(None),
                func.upper(text) == func.upper(value) if any_case else text == value)
