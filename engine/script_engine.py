"""SpiffWorkflow's script engine, with every model expression run in `engine.sandbox`.

SpiffWorkflow's default environment is `eval` with full builtins; we replace it at
its seam (`PythonScriptEngine`) so conditions, timers, mappings and script tasks all
go through one restricted evaluator.  `${expr}` (Camunda's syntax) is accepted.
"""
from __future__ import annotations

import reprlib
from contextvars import ContextVar
from typing import Any, Callable, Mapping

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from . import sandbox, variables
from .parser import Condition, Expression, is_expression, is_template, text_parts, unwrap_placeholder


current_task: ContextVar = ContextVar("evaluating_task", default=None)


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    def __init__(self, functions: Mapping[str, Callable] | None = None) -> None:
        super().__init__({})
        self.functions = dict(functions or {})

    def evaluate(self, expression, context, external_context=None):
        names = {**external_context, **context} if external_context else context
        return sandbox.evaluate(unwrap_placeholder(expression), names, self.functions)

    def execute(self, script, context, external_context=None):
        if external_context:
            context.update(external_context)
        sandbox.execute(script, context, self.functions)
        return True

    def call_service(self, context, **kwargs):
        raise NotImplementedError("service tasks run through external workers")


class ApprovalScriptEngine(PythonScriptEngine):
    def __init__(self, functions: Mapping[str, Callable] | None = None, scripts_enabled: bool = False):
        super().__init__(environment=SandboxEnvironment(functions))
        self.scripts_enabled = scripts_enabled

    def evaluate(self, task, expression, external_context=None, local: dict | None = None) -> Any:
        """`local`: names that hide the task's variables of the same name (a multi-instance
        body's counters), where `external_context` gives way to them."""
        token = current_task.set(task)      # host functions such as legal_deadline() need the task
        try:
            names = task.data if local is None else {**task.data, **local}
            value = self.environment.evaluate(expression, names, external_context)
        except sandbox.SandboxError as err:
            raise WorkflowTaskException(f"expression {str(expression).strip()!r} failed: {err}",
                                        task=task, exception=err) from err
        finally:
            current_task.reset(token)
        if isinstance(expression, Condition) and not isinstance(value, bool):
            raise WorkflowTaskException(_not_boolean(expression, value), task=task)
        return value

    def evaluate_text(self, task, text: str | None, local: dict | None = None) -> Any:
        """A camunda attribute's or parameter's value: `${expr}` is the expression's value
        (its type kept); text with `${...}` in it (`dept_${region}`, `${a}-${b}`) is that text
        with each value put in, as Camunda 7 evaluates a composite expression; other text is
        itself.  `local` as for `evaluate`."""
        if is_expression(text):
            return self.evaluate(task, unwrap_placeholder(text), local=local)
        if is_template(text):
            return self._fill_template(task, text, local)
        return text

    def _fill_template(self, task, text: str, local: dict | None) -> str:
        """`text` with each `${...}` replaced by its value, as JUEL coerces it to text: None as
        nothing, a boolean as `true` / `false`."""
        def piece(part):
            if not isinstance(part, Expression):
                return part
            value = self.evaluate(task, part.strip(), local=local)
            if isinstance(value, bool):
                return "true" if value else "false"
            return "" if value is None else str(value)
        return "".join(piece(part) for part in text_parts(text)[0])

    def execute(self, task, script, external_context=None):
        if not self.scripts_enabled:
            raise WorkflowTaskException(
                "script tasks are disabled on this server (set APPROVALS_SCRIPT_TASKS=1 to allow "
                "sandboxed scripts)", task=task)
        try:
            done = self.environment.execute(script, task.data, external_context)
        except sandbox.SandboxError as err:
            raise WorkflowTaskException(f"script failed: {err}", task=task, exception=err,
                                        line_number=getattr(err, "line", None) or 0) from err
        for name, value in task.data.items():
            problem = variables.unfit_for_state(value)
            if problem:
                raise WorkflowTaskException(f"script left variable '{name}' unfit to store: {problem}", task=task)
        return done

    def call_service(self, task, **kwargs):
        # SpiffWorkflow 3.2.0's own call_service raises NameError; our service tasks
        # are external tasks and never reach here.
        raise WorkflowTaskException("service tasks must be external tasks (camunda:type=\"external\")", task=task)


def _not_boolean(condition: Condition, value) -> str:
    """Camunda 7 refuses such a result too (UelExpressionCondition: "condition expression
    returns non-Boolean"): Python's truthiness took the text "false" as true."""
    where = f" of {condition.element}" if condition.element else ""
    return (f"the condition {condition.strip()!r}{where} gave {reprlib.repr(value)} "
            f"({variables.type_of(value)}), not a Boolean: a condition must give true or false; compare the "
            f"value (`approved == \"yes\"`) or set the variable as a Boolean")
