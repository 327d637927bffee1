"""The declared types of a case's variables: a variable written with a type keeps it.

A case holds its variables as plain Python values (what SpiffWorkflow, conditions and
scripts see: `fee > 0` works on any number), and a value shows its own type
(engine.variables.type_of): 0 is an Integer, 5 parsed from a Json "5" too.  Camunda 7
keeps the type a variable was written with: a Long 0 stays a Long, a Json "5" a Json.
Where the two differ (a Long or Short that fits an Integer, a Json scalar, a typed
null), the case keeps the declared type beside the value it was declared with:
`workflow.declared_types`, name -> (type, value), in the state document as
"declared_types" (engine/workflows.py), and shows it while the variable holds that value:

* a write through the API (a start, a completion, a worker's result, a message, a
  signal, PUT/POST .../variables) declares the type it names; one without a type, or
  with the value's own, drops the declaration, as Camunda 7 infers the type then;
* a value the model sets (a script, an output mapping) has its own type: the
  declaration is dropped when a command leaves the variable with another value.  A
  model that sets the same value keeps the declared type, as the engine cannot tell
  that from no change;
* a deleted variable loses its declaration.

A declared value is a JSON scalar (a type that differs from a value's own is one of
Long, Short, Json or a typed null), so the comparison is a dict lookup and an equality.
"""
from __future__ import annotations

from typing import Mapping

from .variables import VariableMap, type_of

_SCALARS = frozenset({str, int, float, bool, type(None)})


def _table(workflow) -> dict:
    """The case's declarations (name -> (type, value)); the top workflow keeps them."""
    found = workflow.__dict__.get("declared_types")
    if found is None:
        found = workflow.declared_types = {}
    return found


def declare(workflow, values: Mapping) -> None:
    """Record the types `values` were written with (a VariableMap's types; a plain dict's
    values are written without one)."""
    types = values.types if isinstance(values, VariableMap) else {}
    declared = workflow.__dict__.get("declared_types")
    if not types and not declared:
        return
    declared = _table(workflow)
    for name, value in values.items():
        vtype = types.get(name)
        if vtype is not None and vtype != type_of(value) and type(value) in _SCALARS:
            declared[name] = (vtype, value)
        else:
            declared.pop(name, None)


def forget(workflow, names) -> None:
    """Deleted variables lose their declarations."""
    declared = workflow.__dict__.get("declared_types")
    if declared:
        for name in names:
            declared.pop(name, None)


def of(workflow, values: Mapping) -> dict:
    """name -> declared type, for the variables of `values` that still hold the value
    they were declared with."""
    declared = workflow.__dict__.get("declared_types")
    if not declared:
        return {}
    return {name: vtype for name, (vtype, value) in declared.items()
            if name in values and _same(values[name], value)}


def typed(workflow, values: Mapping) -> VariableMap:
    """`values` (a case's or a task's) with their declared types."""
    return VariableMap(values, of(workflow, values))


def settle(workflow, values: Mapping) -> None:
    """Drop the declarations of variables that a command left with another value (the
    model set them): `values` are the case's variables after it."""
    declared = workflow.__dict__.get("declared_types")
    if not declared:
        return
    for name in [name for name, (_, value) in declared.items()
                 if name in values and not _same(values[name], value)]:
        del declared[name]


def _same(current, declared) -> bool:
    # 0 == 0.0 == False: the type too (a Double 0.0 set over a Long 0 is a Double)
    return type(current) is type(declared) and current == declared
