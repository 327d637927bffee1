"""A variable's stored value in SQL: variable_instance.value is JSON (engine/models.py),
read here on either store as text, as a number or as its JSON type, for the queries that
compare variables (the history's and case lists' `variables`, the task query's
processVariables).  A row's `type` says which Camunda type the value has."""
from __future__ import annotations

from sqlalchemy import Text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

NUMERIC_TYPES = ("Integer", "Long", "Short", "Double")


class JsonText(FunctionElement):
    """A JSON column's scalar as text (a string without its quotes; null for JSON null)."""
    type = Text()
    inherit_cache = True
    name = "json_text"


@compiles(JsonText, "sqlite")
def _json_text_sqlite(element, compiler, **kw):
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$')"


@compiles(JsonText, "postgresql")
def _json_text_postgresql(element, compiler, **kw):
    return f"({compiler.process(element.clauses, **kw)} #>> '{{}}')"


class JsonNumber(FunctionElement):
    """A JSON column's number as an SQL number, null for any other value.  PostgreSQL casts
    the text only where it is a number (a CASE: it checks a row's conditions in an order
    of its own, and a cast of other text fails)."""
    inherit_cache = True             # untyped: a bound value is compared as it is (an int as an int)
    name = "json_number"


@compiles(JsonNumber, "sqlite")
def _json_number_sqlite(element, compiler, **kw):
    value = compiler.process(element.clauses, **kw)
    return f"(CASE WHEN json_type({value}) IN ('integer', 'real') THEN json_extract({value}, '$') END)"


@compiles(JsonNumber, "postgresql")
def _json_number_postgresql(element, compiler, **kw):
    value = compiler.process(element.clauses, **kw)
    return f"(CASE WHEN json_typeof({value}) = 'number' THEN CAST({value} #>> '{{}}' AS NUMERIC) END)"


class JsonKind(FunctionElement):
    """A JSON column's value as 'null', 'true', 'false' or another word (the same words on
    both stores for these three)."""
    type = Text()
    inherit_cache = True
    name = "json_kind"


@compiles(JsonKind, "sqlite")
def _json_kind_sqlite(element, compiler, **kw):
    return f"json_type({compiler.process(element.clauses, **kw)})"


@compiles(JsonKind, "postgresql")
def _json_kind_postgresql(element, compiler, **kw):
    value = compiler.process(element.clauses, **kw)
    return f"(CASE WHEN json_typeof({value}) = 'boolean' THEN {value} #>> '{{}}' ELSE json_typeof({value}) END)"
