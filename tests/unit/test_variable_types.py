"""The declarations a case keeps (engine/variable_types.py), where the API cannot reach:
a model that sets a declared variable to another value and back."""
from __future__ import annotations

from types import SimpleNamespace

from engine import variable_types
from engine.variables import from_wire


def test_a_model_that_sets_another_value_and_then_the_declared_one_again_gets_its_own_type():
    case = SimpleNamespace()
    variable_types.declare(case, from_wire({"fee": {"value": 0, "type": "Long"}}))
    assert variable_types.of(case, {"fee": 0}) == {"fee": "Long"}
    variable_types.settle(case, {"fee": 100})                 # a command left it at 100
    assert variable_types.of(case, {"fee": 0}) == {}          # a later 0 is an Integer


def test_a_declaration_holds_for_its_value_only_and_by_type_too():
    case = SimpleNamespace()
    variable_types.declare(case, from_wire({"fee": {"value": 1, "type": "Short"}, "note": {"value": "x"}}))
    variable_types.settle(case, {"note": "y"})                # the model changed another variable
    assert variable_types.of(case, {"fee": 1}) == {"fee": "Short"}
    assert variable_types.of(case, {"fee": True}) == {} == variable_types.of(case, {"fee": 1.0})
    variable_types.forget(case, ["fee"])
    assert case.declared_types == {}
