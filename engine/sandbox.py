"""The restricted evaluator (受限执行环境) for all process-model code.

Gateway conditions, timer and due-date expressions, multi-instance collections,
input/output mappings and (when a deployment enables them) script tasks all run
here. Models are uploaded over HTTP by process designers: this is a security boundary.

Why hand-rolled: RestrictedPython 9.0 allows def/class/import/yield/try and leaves safety
to integrator hooks, and bounds neither time nor memory (most of this module);
simpleeval 1.0.8 walks the tree in Python (1.4 µs per cached gateway condition against
0.6 µs for `evaluate` here, see bench/bench_sandbox.py) and cannot run statements. So:
one AST allow-list, a rewrite routing risky operations through guards, `compile`, an LRU.

How a source runs
  1. `_Policy` walks the AST and refuses anything not allow-listed: imports, def,
     lambda, class, try, with, yield, global, `:=`, `*`/`**` unpacking, match, any
     name or attribute starting with `_`, frame/generator attributes, `format`,
     attribute assignment, slice assignment. Refusals carry line, column and snippet.
  2. `_Guarding` rewrites loops, attribute reads, growing operators, slices, keys,
     comparisons and f-string fields into calls of `Budget` methods (`_iter_`, ...).
  3. Each run gets a fresh `Budget`; attribute reads go through a per-type allow-list
     (`_ATTRIBUTES`), anything else is a `SandboxViolation` at run time.

Built-ins (the whole list): abs all any bool dict divmod enumerate float int len list
max min range reversed round set sorted str sum tuple zip, plus True False None, and
JUEL's `true` `false` `null` for them (models drawn for Camunda 7 write those).
Not offered, so `type`, `object` or a class is never reachable: isinstance, getattr,
type, eval, exec, compile, open, vars, globals, locals, print, iter, next, super.
`dict.keys()/values()/items()` return lists (a view could be combined with `|` in C).

Names: a variable (`names`) hides a built-in or a JUEL literal of its name.  A host function
(`functions`, trusted) is what a name *called* means (`days(3)`), a variable what the name
read as a value or assigned means (`days > 5`: data is never callable, so both can be
meant); where no variable has the name, a name read is the function.  One piece of code may
not use a host function's name both ways (`days(days)`): refused, also by `check`.

Limits (`Limits`, per evaluation; `time_limit=` overrides the time):
  time    1.0 s of the evaluating thread's CPU time (`time.thread_time`, no signals).
  steps   20,000,000 work units: a loop or comprehension iteration, an element
          copied, compared or walked by a guarded operation.
  cells   1,000,000 new cells. This is the memory bound: a cell is one element or one
          character created by a guarded operation (`*`, `+`, `%`, `<<`, `**`, slices,
          f-strings, str(), list(), sorted(), join, str methods, ...), one element
          added by append/insert/extend/add/setdefault/item assignment, or one
          comprehension iteration. Characters cost 1-4 bytes, list elements 8 bytes
          plus the element: about 8-40 MB for realistic data, at most ~100 MB
          (dict entries with fresh keys and values). `x += y` on a name counts the
          growth only, since the old value is dropped.
  size    1,000,000: the longest str/list/tuple/range one operation may produce, and
          the largest value (elements + characters, shared parts counted each time)
          that may be compared, sorted, hashed or formatted.
  output  10,000,000: the largest value (same measure) an expression may return or a
          script may leave in a variable it touched (JSON serialisation is next).
  int_bits 10,000: the largest integer `*`, `**` or `<<` may produce.
Each C-level operation is bounded by `size` and runs to completion (tens of ms at most);
it counts a step per 16 elements it copies or searches, and the clock is read every
1,000 steps, so a run stops within a few ms of its time limit. Host functions are
trusted and not bounded.
"""
from __future__ import annotations

import ast
import functools
import itertools
import math
import operator
import re
import textwrap
import time
from collections.abc import Collection, ItemsView, Iterator, KeysView, ValuesView
from dataclasses import dataclass, replace
from datetime import date, datetime, time as time_of_day, timedelta
from types import CodeType
from typing import Any, Callable, Mapping

FILENAME = "<process model>"
MAX_SOURCE_CHARS = 100_000
MAX_NESTING = 150
MAX_FORMAT_WIDTH = 10_000
MAX_DATA_DEPTH = 100           # JSON serialisation of the result recurses
CHECK_CLOCK_EVERY = 1_000


# --------------------------------------------------------------------------- errors

class SandboxError(Exception):
    """Base of every error raised here. `line` and `column` (1-based) point into the source."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 snippet: str | None = None, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.snippet = snippet
        self.source = source

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        where = f"line {self.line}" + (f", column {self.column}" if self.column is not None else "")
        return f"{self.message} (at {where}: {self.snippet})" if self.snippet else f"{self.message} (at {where})"


class SandboxViolation(SandboxError):
    """A forbidden construct, found statically or reached at run time."""


class SandboxLimitExceeded(SandboxError):
    """A time, step, memory or size bound was hit."""


class ExpressionFailed(SandboxError):
    """The code raised an ordinary error (NameError, ZeroDivisionError, ...); `original` is it."""

    def __init__(self, message: str, original: BaseException, **where) -> None:
        super().__init__(message, **where)
        self.original = original


def _shorten(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _locate(source: str, line: int | None, byte_col: int | None, end_line: int | None = None,
            end_byte_col: int | None = None, margin: int = 0) -> dict:
    """line/column/snippet for an error. AST columns are UTF-8 byte offsets into the dedented
    source; ours are 1-based characters in the source as written (`margin` was removed)."""
    lines = source.splitlines()
    if not line or line > len(lines):
        return {"line": line, "column": None, "snippet": None}
    encoded = lines[line - 1].encode()
    start = byte_col or 0
    stop = end_byte_col if end_line == line and end_byte_col is not None else len(encoded)
    snippet = encoded[start:stop].decode(errors="replace").strip() or lines[line - 1].strip()
    return {"line": line, "column": len(encoded[:start].decode(errors="ignore")) + 1 + margin,
            "snippet": _shorten(snippet)}


# --------------------------------------------------------------------------- limits and built-ins

@dataclass(frozen=True)
class Limits:
    time: float = 1.0
    steps: int = 20_000_000
    cells: int = 1_000_000
    size: int = 1_000_000
    output: int = 10_000_000
    int_bits: int = 10_000


DEFAULT_LIMITS = Limits()


def _limit(message: str) -> SandboxLimitExceeded:
    return SandboxLimitExceeded(message)


def _round(number, ndigits=None):
    # round(12, -10**9) computes 10**(10**9) inside CPython
    if ndigits is not None and abs(ndigits) > 1000:
        raise _limit("round() to more than 1000 digits is not supported")
    return round(number) if ndigits is None else round(number, ndigits)


_PLAIN_BUILTINS = {
    "abs": abs, "bool": bool, "divmod": divmod, "enumerate": enumerate, "float": float, "int": int,
    "len": len, "reversed": reversed, "round": _round, "zip": zip,
}
# built-ins that count work or new cells; bound to the run's Budget
_BUDGETED_BUILTINS = {
    "all": "all_", "any": "any_", "dict": "dict_", "list": "list_", "max": "max_", "min": "min_",
    "range": "range_", "set": "set_", "sorted": "sorted_", "str": "str_", "sum": "sum_", "tuple": "tuple_",
}
BUILTIN_NAMES = frozenset(_PLAIN_BUILTINS) | frozenset(_BUDGETED_BUILTINS)
# JUEL's literals, looked up after the variables (a case variable `null` wins), as built-ins are
_JUEL_LITERALS = {"true": True, "false": False, "null": None}
_SCOPE_BUILTINS = {"__builtins__": {**_PLAIN_BUILTINS, **_JUEL_LITERALS}}

# calling these is refused statically with a clear message (none of them is offered anyway)
_FORBIDDEN_CALLS = frozenset({
    "eval", "exec", "compile", "open", "globals", "locals", "vars", "getattr", "setattr", "delattr",
    "hasattr", "type", "object", "super", "input", "breakpoint", "help", "dir", "id", "memoryview",
    "bytearray", "bytes", "classmethod", "staticmethod", "property", "iter", "next", "print",
    "exit", "quit", "isinstance", "issubclass", "callable", "format", "repr", "ascii", "hash",
})
# attributes that lead to frames, code, globals or format-string attribute walks
_FORBIDDEN_ATTRIBUTES = frozenset({
    "format", "format_map", "mro", "gi_frame", "gi_code", "gi_yieldfrom", "gi_running",
    "cr_frame", "cr_code", "cr_await", "cr_origin", "ag_frame", "ag_code", "ag_await",
    "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "tb_frame", "tb_next",
    "co_code", "func_globals", "func_code", "im_func", "im_self", "send", "throw",
})
_MUTATORS = frozenset({"append", "extend", "insert", "update", "setdefault", "add", "pop",
                       "popitem", "remove", "discard", "clear", "sort", "reverse"})


# --------------------------------------------------------------------------- static policy

_ALLOWED_NODES = frozenset({
    ast.Expression, ast.Module, ast.Expr, ast.Assign, ast.AugAssign, ast.If, ast.For, ast.While,
    ast.Break, ast.Continue, ast.Pass, ast.Delete, ast.Assert,
    ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.IfExp, ast.Compare, ast.Call, ast.keyword,
    ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Slice, ast.List, ast.Tuple, ast.Dict,
    ast.Set, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension,
    ast.JoinedStr, ast.FormattedValue, ast.Load, ast.Store, ast.Del,
    ast.And, ast.Or, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.LShift, ast.RShift, ast.BitOr, ast.BitXor, ast.BitAnd, ast.UAdd, ast.USub, ast.Not,
    ast.Invert, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In,
    ast.NotIn,
})
_REFUSALS = {
    ast.Import: "import is not allowed; call the functions the engine provides",
    ast.ImportFrom: "import is not allowed; call the functions the engine provides",
    ast.Lambda: "lambda is not allowed; write the expression inline",
    ast.FunctionDef: "defining functions is not allowed in process models",
    ast.AsyncFunctionDef: "defining functions is not allowed in process models",
    ast.ClassDef: "defining classes is not allowed in process models",
    ast.Return: "return is not allowed; assign a process variable instead",
    ast.Global: "global is not allowed; assign process variables directly",
    ast.Nonlocal: "nonlocal is not allowed; assign process variables directly",
    ast.Try: "try/except is not allowed: let the error reach the engine, which raises an incident",
    ast.TryStar: "try/except* is not allowed: let the error reach the engine, which raises an incident",
    ast.Raise: "raise is not allowed; model the failure with a BPMN error event",
    ast.With: "with is not allowed in process models",
    ast.AsyncWith: "with is not allowed in process models",
    ast.AsyncFor: "async is not allowed in process models",
    ast.Await: "await is not allowed in process models",
    ast.Yield: "yield is not allowed in process models",
    ast.YieldFrom: "yield is not allowed in process models",
    ast.NamedExpr: "':=' is not allowed; assign the variable in a script task",
    ast.Starred: "'*' unpacking is not allowed; pass or build the items explicitly",
    ast.Match: "match is not allowed; use if/elif",
    ast.AnnAssign: "annotations are not allowed; write `name = value`",
}


@dataclass(frozen=True)
class _Program:
    source: str
    mode: str
    code: CodeType
    margin: int                 # indentation removed from every line of a script
    reads: frozenset[str]       # free names the code loads
    writes: frozenset[str]      # names a script assigns or deletes (written back)
    valued: frozenset[str]      # names read as a value (not only called) or written
    both_ways: frozenset[str]   # names both called and valued (a host function's name may not be)
    mutates: bool               # calls a mutating method or assigns items
    guards: tuple[str, ...]     # Budget hooks the code calls
    builtins: tuple[str, ...]   # budgeted built-ins it names

    @property
    def names(self) -> frozenset[str]:
        return self.reads | self.writes

    def locate(self, line, byte_col, end_line=None, end_byte_col=None) -> dict:
        return _locate(self.source, line, byte_col, end_line, end_byte_col, self.margin)


class _Policy(ast.NodeVisitor):
    """Refuses the first construct not on the allow-list; records the names used."""

    def __init__(self, source: str, margin: int) -> None:
        self.source = source
        self.margin = margin
        self.depth = 0
        self.comprehensions = 0
        self.reads: set[str] = set()
        self.writes: set[str] = set()
        self.loads: dict[str, int] = {}     # name -> how often it is read, and called
        self.calls: dict[str, int] = {}
        self.mutates = False

    @property
    def valued(self) -> set[str]:
        return {name for name, n in self.loads.items() if n > self.calls.get(name, 0)} | self.writes

    def where(self, node: ast.AST) -> dict:
        return _locate(self.source, getattr(node, "lineno", None), getattr(node, "col_offset", None),
                       getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None), self.margin)

    def refuse(self, node: ast.AST, message: str) -> None:
        raise SandboxViolation(message, source=self.source, **self.where(node))

    def visit(self, node: ast.AST) -> None:
        if type(node) not in _ALLOWED_NODES:
            self.refuse(node, _REFUSALS.get(type(node)) or f"{type(node).__name__} is not allowed in process models")
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise SandboxLimitExceeded(f"code nested deeper than {MAX_NESTING} levels; split it up",
                                       source=self.source, **self.where(node))
        super().visit(node)
        self.depth -= 1

    def visit_Name(self, node: ast.Name) -> None:
        if node.id.startswith("_"):
            self.refuse(node, f"'{node.id}': names starting with '_' are internal to Python and not allowed")
        if isinstance(node.ctx, ast.Load):
            self.reads.add(node.id)
            self.loads[node.id] = self.loads.get(node.id, 0) + 1
        elif node.id in BUILTIN_NAMES:
            self.refuse(node, f"'{node.id}' is a built-in function; choose another variable name")
        elif not self.comprehensions:
            self.writes.add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("_"):
            self.refuse(node, f"attribute '{node.attr}': names starting with '_' are internal to Python "
                              "and not allowed")
        if node.attr in _FORBIDDEN_ATTRIBUTES:
            hint = "; use an f-string" if node.attr.startswith("format") else ""
            self.refuse(node, f"attribute '{node.attr}' is not allowed in process models{hint}")
        if not isinstance(node.ctx, ast.Load):
            self.refuse(node, "setting or deleting attributes is not allowed; use dict items: d['key'] = value")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in _FORBIDDEN_CALLS:
            self.refuse(node, f"{node.func.id}() is not available in process models")
        if isinstance(node.func, ast.Name):
            self.calls[node.func.id] = self.calls.get(node.func.id, 0) + 1
        if isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATORS:
            self.mutates = True
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg is None:
            self.refuse(node, "'**' unpacking is not allowed; pass the arguments by name")
        if node.arg.startswith("_"):
            self.refuse(node, f"argument '{node.arg}': names starting with '_' are not allowed")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if type(node.value) not in (str, int, float, bool, type(None)):
            self.refuse(node, f"{type(node.value).__name__} literals are not allowed; use str, int, float, "
                              "bool or None")

    def visit_Dict(self, node: ast.Dict) -> None:
        if any(key is None for key in node.keys):
            self.refuse(node, "'**' unpacking is not allowed; merge dicts with |")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if not isinstance(node.ctx, ast.Load):
            self.mutates = True
            if isinstance(node.slice, ast.Slice):
                self.refuse(node, "assigning or deleting slices is not allowed; build a new list")
        if isinstance(node.slice, ast.Tuple) and any(isinstance(e, ast.Slice) for e in node.slice.elts):
            self.refuse(node, "extended slicing is not supported")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.MatMult):
            self.refuse(node, "'@' is not supported")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.op, ast.MatMult):
            self.refuse(node, "'@' is not supported")
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        if node.is_async:
            self.refuse(node.target, "async comprehensions are not allowed")
        self.generic_visit(node)

    def _visit_comprehension_scope(self, node: ast.AST) -> None:
        # comprehension variables are local to it: never written back
        self.comprehensions += 1
        self.generic_visit(node)
        self.comprehensions -= 1

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _visit_comprehension_scope


# --------------------------------------------------------------------------- rewrite to guards

_GUARDED_BINOPS = {ast.Add: "_add_", ast.Sub: "_sub_", ast.Mult: "_mul_", ast.Mod: "_mod_",
                   ast.Pow: "_pow_", ast.LShift: "_lshift_", ast.BitOr: "_or_", ast.BitAnd: "_and_",
                   ast.BitXor: "_xor_"}
_OPERATOR_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
                     ast.Mod: "%", ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
                     ast.BitAnd: "&", ast.BitXor: "^"}
_COMPARE_SYMBOLS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
                    ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in"}


def _is_constant(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and all(isinstance(e, ast.Constant) for e in node.elts)


class _Guarding(ast.NodeTransformer):
    """Routes every operation whose cost depends on the data through a Budget hook."""

    def __init__(self) -> None:
        self.guards: set[str] = set()

    def call(self, guard: str, args: list[ast.expr], at: ast.AST) -> ast.Call:
        self.guards.add(guard)
        return ast.copy_location(ast.Call(ast.Name(guard, ast.Load()), args, []), at)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        return self.call("_getattr_", [node.value, ast.Constant(node.attr)], node)

    def visit_For(self, node: ast.For) -> ast.AST:
        self.generic_visit(node)
        node.iter = self.call("_iter_", [node.iter], node.iter)
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        self.generic_visit(node)
        node.iter = self.call("_citer_", [node.iter], node.iter)
        return node

    def visit_While(self, node: ast.While) -> ast.AST:
        self.generic_visit(node)
        node.body.insert(0, ast.copy_location(ast.Expr(self.call("_tick_", [], node)), node))
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        guard = _GUARDED_BINOPS.get(type(node.op))
        return self.call(guard, [node.left, node.right], node) if guard else node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        value = self.visit(node.value)
        symbol = ast.Constant(_OPERATOR_SYMBOLS[type(node.op)])
        target = node.target
        if isinstance(target, ast.Name):
            current = ast.copy_location(ast.Name(target.id, ast.Load()), target)
            return ast.copy_location(ast.Assign([target], self.call("_inplace_", [symbol, current, value], node)), node)
        # t[k] op= v (the policy allows no other target): t and k evaluated once, like Python
        container, key = self.visit(target.value), self.visit(target.slice)
        return ast.copy_location(ast.Expr(self.call("_augitem_", [container, key, symbol, value], node)), node)

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.slice, ast.Slice):
            bounds = [part or ast.Constant(None) for part in (node.slice.lower, node.slice.upper, node.slice.step)]
            return self.call("_slice_", [node.value, *bounds], node)
        if not _is_constant(node.slice):
            guard = "_newkey_" if isinstance(node.ctx, ast.Store) else "_key_"
            node.slice = self.call(guard, [node.slice], node.slice)
        return node

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        self.generic_visit(node)
        node.keys = [k if _is_constant(k) else self.call("_key_", [k], k) for k in node.keys]
        return node

    def visit_Set(self, node: ast.Set) -> ast.AST:
        self.generic_visit(node)
        node.elts = [e if _is_constant(e) else self.call("_key_", [e], e) for e in node.elts]
        return node

    def visit_DictComp(self, node: ast.DictComp) -> ast.AST:
        self.generic_visit(node)
        node.key = self.call("_key_", [node.key], node.key)
        return node

    def visit_SetComp(self, node: ast.SetComp) -> ast.AST:
        self.generic_visit(node)
        node.elt = self.call("_key_", [node.elt], node.elt)
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        operands = [node.left, *node.comparators]
        if len(node.ops) == 1:
            op = node.ops[0]
            searches = isinstance(op, (ast.In, ast.NotIn))
            if isinstance(op, (ast.Is, ast.IsNot)) or _is_constant(node.comparators[0]) or \
                    (not searches and _is_constant(node.left)):
                return node     # cost bounded by the literal
            return self.call("_compare_", [ast.Constant(_COMPARE_SYMBOLS[type(op)]), *operands], node)
        # a < b < c: keep Python's short-circuit, bound each operand instead
        node.left, *node.comparators = [o if _is_constant(o) else self.call("_measured_", [o], o)
                                        for o in operands]
        return node

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        self.generic_visit(node)
        spec = node.format_spec or ast.Constant("")
        node.value = self.call("_format_", [node.value, ast.Constant(node.conversion), spec], node)
        node.conversion, node.format_spec = -1, None
        return node


def _parse(source: str, mode: str, margin: int) -> ast.AST:
    try:
        return ast.parse(source, FILENAME, mode)
    except SyntaxError as err:
        line_text = (source.splitlines() or [""])[(err.lineno or 1) - 1] if err.lineno else ""
        column = err.offset + margin if err.offset else None
        raise SandboxViolation(f"syntax error: {err.msg}", line=err.lineno, column=column,
                               snippet=_shorten(line_text.strip()) or None, source=source) from None
    except (RecursionError, MemoryError):
        raise SandboxLimitExceeded(f"code nested too deeply (over {MAX_NESTING} levels); split it up",
                                   source=source) from None


def _normalised(source: str, mode: str) -> tuple[str, int]:
    """The text to parse and the indentation removed from each line."""
    if not isinstance(source, str):
        raise SandboxViolation(f"process code must be text, not {type(source).__name__}")
    if len(source) > MAX_SOURCE_CHARS:
        raise SandboxLimitExceeded(f"code is {len(source):,} characters long; the limit is {MAX_SOURCE_CHARS:,}")
    if mode == "eval":
        return source.strip(), 0
    # BPMN editors indent script bodies under the XML element
    text = textwrap.dedent(source)
    first = next((line for line in source.splitlines() if line.strip()), "")
    return text, (len(first) - len(first.lstrip()) if text != source else 0)


@functools.lru_cache(maxsize=2048)
def _compile(source: str, mode: str) -> _Program:
    if mode not in ("eval", "exec"):
        raise ValueError(f"mode must be 'eval' or 'exec', not {mode!r}")
    text, margin = _normalised(source, mode)
    if not text.strip():
        raise SandboxViolation("the expression is empty" if mode == "eval" else "the script is empty", source=source)
    tree = _parse(text, mode, margin)
    policy = _Policy(text, margin)
    policy.visit(tree)
    guarding = _Guarding()
    tree = ast.fix_missing_locations(guarding.visit(tree))
    try:
        code = compile(tree, FILENAME, mode)
    except (RecursionError, MemoryError):
        raise SandboxLimitExceeded("code nested too deeply; split it up", source=source) from None
    valued = frozenset(policy.valued)
    return _Program(text, mode, code, margin, frozenset(policy.reads), frozenset(policy.writes), valued,
                    valued & policy.calls.keys(), policy.mutates or mode == "exec", tuple(sorted(guarding.guards)),
                    tuple(sorted(policy.reads & set(_BUDGETED_BUILTINS))))


# --------------------------------------------------------------------------- run-time guards

_FLAT = frozenset({str, int, float, bool, type(None), datetime, date, time_of_day, timedelta})
_NUMBERS = frozenset({int, float, bool})
_SIZED = (str, list, tuple, dict, set, frozenset)
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?.")
_COMPARISONS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
                ">": operator.gt, ">=": operator.ge, "in": lambda a, b: a in b,
                "not in": lambda a, b: a not in b}
_INPLACE = {"+": operator.iadd, "-": operator.isub, "*": operator.imul, "/": operator.itruediv,
            "//": operator.ifloordiv, "%": operator.imod, "**": operator.ipow, "<<": operator.ilshift,
            ">>": operator.irshift, "|": operator.ior, "&": operator.iand, "^": operator.ixor}


def _chunks(iterable, size: int = 1024):
    items = iter(iterable)
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _length(value) -> int:
    return len(value) if isinstance(value, _SIZED) else 0


def _grown_length(symbol: str, a, b) -> int:
    if symbol in ("+", "|"):
        return len(a) + _length(b)
    if symbol == "*" and type(b) in (int, bool):
        return len(a) * max(b, 0)
    return len(a)


def _check_format_spec(spec: str) -> None:
    if any(int(n) > MAX_FORMAT_WIDTH for n in re.findall(r"\d+", spec)):
        raise _limit(f"format width or precision over {MAX_FORMAT_WIDTH:,} in {_shorten(spec, 40)!r}")


class Budget:
    """Work, new data and CPU time one evaluation may still spend; its methods are the guards."""

    __slots__ = ("limits", "steps", "cells", "deadline", "next_check")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.steps = limits.steps
        self.cells = limits.cells
        self.deadline = time.thread_time() + limits.time
        self.next_check = self.steps - CHECK_CLOCK_EVERY

    # accounting

    def check(self) -> None:
        if self.steps < 0:
            raise _limit(f"the code did more than {self.limits.steps:,} steps of work (the work limit: loop "
                         "iterations, elements copied or compared); make it do less or split it up")
        if time.thread_time() > self.deadline:
            raise _limit(f"the code ran longer than {self.limits.time:g} s of CPU time")
        self.next_check = self.steps - CHECK_CLOCK_EVERY

    def spend(self, steps: int) -> None:
        self.steps -= steps
        if self.steps < self.next_check:
            self.check()

    def bulk(self, elements: int) -> None:
        """C-level work over `elements` (copy, search, sum): a step per 16, as an
        interpreted loop iteration costs about as much as copying 16 elements."""
        self.spend((elements >> 4) + 1)

    def allocate(self, cells: int) -> None:
        self.cells -= cells
        if self.cells < 0:
            raise _limit(f"the code created more than {self.limits.cells:,} new elements or characters "
                         "(the memory limit)")
        self.bulk(cells)

    def fits(self, size: int, what: str) -> None:
        if size > self.limits.size:
            raise _limit(f"{what} would have {size:,} elements or characters; the limit is {self.limits.size:,}")

    def produced(self, result):
        self.allocate(_length(result))
        return result

    def measure(self, value, limit: int | None = None, what: str = "a value") -> int:
        """Elements plus characters in `value`, shared parts counted each time: the cost of
        comparing, hashing, formatting or serialising it. Stops once over `limit`."""
        limit = self.limits.size if limit is None else limit
        total = 0
        pending = [(value, 1)]
        while pending:
            item, depth = pending.pop()
            total += len(item) + 1 if type(item) is str else 1
            if isinstance(item, (dict, list, tuple, set, frozenset)):
                if depth > MAX_DATA_DEPTH:
                    raise _limit(f"{what} is nested more than {MAX_DATA_DEPTH} levels deep")
                children = itertools.chain(item.keys(), item.values()) if isinstance(item, dict) else item
                pending.extend((child, depth + 1) for child in children)
            if total > limit:
                self.spend(total)
                raise _limit(f"{what} has over {limit:,} elements and characters (counting shared parts "
                             "each time); too large to compare, format or store")
        self.spend(total)
        return total

    def bounded(self, value):
        if type(value) not in _FLAT:
            self.measure(value)
        return value

    def collect(self, iterable) -> list | tuple:
        """The items of `iterable`, read in chunks so an endless or huge one stops at `size`;
        a list or tuple is returned as it is. The caller counts what it keeps."""
        if type(iterable) in (list, tuple):
            return iterable
        items: list = []
        for chunk in _chunks(iterable):
            items.extend(chunk)
            self.fits(len(items), "the collected items")
            self.bulk(len(chunk))
        return items

    # loops

    def _iter_(self, iterable):
        for item in iterable:
            self.steps -= 1
            if self.steps < self.next_check:
                self.check()
            yield item

    def _citer_(self, iterable):
        # a comprehension may add one element per iteration
        for item in iterable:
            self.steps -= 1
            self.cells -= 1
            if self.cells < 0:
                self.allocate(0)
            if self.steps < self.next_check:
                self.check()
            yield item

    def _tick_(self) -> None:
        self.steps -= 1
        if self.steps < self.next_check:
            self.check()

    # operators

    def _add_(self, a, b):
        if type(a) in _NUMBERS and type(b) in _NUMBERS:
            return a + b
        if isinstance(a, (str, list, tuple)) and isinstance(b, (str, list, tuple)):
            self.fits(len(a) + len(b), "the result of +")
            self.allocate(len(a) + len(b))
        return a + b

    def _sub_(self, a, b):
        if type(a) in _NUMBERS and type(b) in _NUMBERS:
            return a - b
        return self.produced(a - b)

    def _mul_(self, a, b):
        if type(a) in _NUMBERS and type(b) in _NUMBERS:
            if type(a) is not float and type(b) is not float:
                self._int_fits(abs(a).bit_length() + abs(b).bit_length(), "*")
            return a * b
        sequence, count = (a, b) if isinstance(a, (str, list, tuple)) else (b, a)
        if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
            size = len(sequence) * max(count, 0)
            self.fits(size, "the result of *")
            self.allocate(size)
        return a * b

    def _pow_(self, a, b):
        if type(a) in (int, bool) and type(b) in (int, bool) and b > 0 and abs(a) > 1:
            self._int_fits(math.log2(abs(a)) * b, "**")
        return a ** b

    def _lshift_(self, a, b):
        if type(a) in (int, bool) and type(b) in (int, bool) and a and b > 0:
            self._int_fits(abs(a).bit_length() + b, "<<")
        return a << b

    def _mod_(self, a, b):
        if type(a) is str:
            return self._percent_format(a, b)
        return a % b

    def _or_(self, a, b):
        if type(a) in _NUMBERS and type(b) in _NUMBERS:
            return a | b
        self.fits(_length(a) + _length(b), "the result of |")
        return self.produced(a | b)

    def _and_(self, a, b):
        return a & b if type(a) in _NUMBERS and type(b) in _NUMBERS else self.produced(a & b)

    def _xor_(self, a, b):
        return a ^ b if type(a) in _NUMBERS and type(b) in _NUMBERS else self.produced(a ^ b)

    _BINARY = {"+": "_add_", "-": "_sub_", "*": "_mul_", "%": "_mod_", "**": "_pow_", "<<": "_lshift_",
               "|": "_or_", "&": "_and_", "^": "_xor_"}

    def _inplace_(self, symbol: str, a, b):
        if isinstance(a, (list, dict, set)):
            # Python changes these in place: only the growth is new data
            if isinstance(a, list) and symbol == "+":
                b = self.collect(b)
            self.fits(_grown_length(symbol, a, b), f"the result of {symbol}=")
            before = len(a)
            result = _INPLACE[symbol](a, b)
            self.allocate(max(len(result) - before, 0))
            return result
        if type(a) is str and symbol == "+" and type(b) is str:
            # `text += line` drops the old text: count the growth, spend the copy
            self.fits(len(a) + len(b), "the result of +=")
            self.allocate(len(b))
            self.bulk(len(a))
            return a + b
        guard = self._BINARY.get(symbol)
        return getattr(self, guard)(a, b) if guard else _INPLACE[symbol](a, b)

    def _augitem_(self, container, key, symbol: str, value) -> None:
        key = self._key_(key)
        container[key] = self._inplace_(symbol, container[key], value)

    def _int_fits(self, bits: float, symbol: str) -> None:
        if bits > self.limits.int_bits:
            raise _limit(f"the result of {symbol} would be an integer of about {int(bits):,} bits; "
                         f"the limit is {self.limits.int_bits:,}")

    def _percent_format(self, template: str, args):
        for width, precision in _PERCENT_FIELD.findall(template):
            if "*" in (width, precision):
                raise SandboxViolation("'*' widths in %-formatting are not supported; use an f-string")
            if int(width or 0) > MAX_FORMAT_WIDTH or int(precision or 0) > MAX_FORMAT_WIDTH:
                raise _limit(f"%-format width or precision over {MAX_FORMAT_WIDTH:,}")
        self.bounded(args)
        return self.produced(template % args)

    # items, slices, comparisons, f-strings

    def _key_(self, key):
        # hashing or comparing a nested tuple costs its full size
        return key if type(key) in _FLAT else self.bounded(key)

    def _newkey_(self, key):
        self.allocate(1)
        return self._key_(key)

    def _slice_(self, value, lower, upper, step):
        result = value[lower:upper:step]
        return self.produced(result) if not isinstance(result, range) else result

    def _compare_(self, symbol: str, a, b):
        if symbol in ("in", "not in"):
            self._bound_search(a, b)
        elif type(a) not in _FLAT and type(b) not in _FLAT:
            self._bound_either(a, b)
        return _COMPARISONS[symbol](a, b)

    def _bound_search(self, needle, haystack) -> None:
        if type(haystack) is str:
            self.bulk(len(haystack))
        elif isinstance(haystack, (dict, set, frozenset)):
            self._key_(needle)
        elif isinstance(haystack, (list, tuple)):
            # each comparison costs at most the smaller side; a text needle may meet
            # the same long text many times, so then the haystack is measured
            flat = type(needle) in _FLAT and type(needle) is not str
            self.bulk(len(haystack)) if flat else self.measure(haystack)

    def _bound_either(self, a, b) -> None:
        try:
            self.measure(a)
        except SandboxLimitExceeded:
            self.measure(b)   # comparing costs at most the smaller side

    def _measured_(self, value):
        return self.bounded(value)

    def _format_(self, value, conversion: int, spec: str):
        self.bounded(value)
        _check_format_spec(spec)
        if conversion != -1:
            value = {115: str, 114: repr, 97: ascii}[conversion](value)
        return self.produced(format(value, spec))

    # attributes

    def _getattr_(self, obj, name: str):
        guard = _attribute_guard(type(obj), name)
        if guard is None:
            kind = type(obj).__name__
            if _data_type(type(obj)) and not hasattr(obj, name):
                raise AttributeError(f"'{kind}' object has no attribute '{name}'")   # a plain typo
            raise SandboxViolation(f"'{kind}.{name}' is not available in process models")
        return guard(self, obj, name)

    # built-ins

    def all_(self, iterable) -> bool:
        self.bulk(_length(iterable))
        return all(iterable)

    def any_(self, iterable) -> bool:
        self.bulk(_length(iterable))
        return any(iterable)

    def sum_(self, iterable, start=0):
        if type(start) not in _NUMBERS:
            raise TypeError("sum() adds numbers; use ''.join(...) for text or a comprehension for lists")
        self.bulk(_length(iterable))
        return sum(iterable, start)

    def list_(self, iterable=()) -> list:
        items = self.collect(iterable)
        return self.produced(list(items) if items is iterable else items)

    def tuple_(self, iterable=()) -> tuple:
        return self.produced(tuple(self.collect(iterable)))

    def set_(self, iterable=()) -> set:
        # filled in chunks with clock checks: colliding integer hashes make one C-level set() quadratic
        if isinstance(iterable, (set, frozenset, dict)):
            return self.produced(set(iterable))     # hashes are stored: no rehash
        result: set = set()
        for chunk in _chunks(iterable):
            for item in chunk:
                self._key_(item)
            result.update(chunk)
            self.allocate(len(chunk))
            self.fits(len(result), "the set")
            self.check()
        return result

    def dict_(self, pairs=(), **named) -> dict:
        if isinstance(pairs, dict):
            result = self.produced(dict(pairs))     # hashes are stored: no rehash
        else:
            result = {}
            for chunk in _chunks(pairs):
                result.update(self._pair(pair) for pair in chunk)
                self.allocate(len(chunk))
                self.fits(len(result), "the dict")
                self.check()
        self.allocate(len(named))
        result.update(named)
        return result

    def _pair(self, pair) -> tuple:
        key, value = pair
        return self._key_(key), value

    def sorted_(self, iterable, *, key=None, reverse=False) -> list:
        items = self.list_(iterable)
        self.measure(items)
        items.sort(key=key, reverse=reverse)
        return items

    def max_(self, *args, **options):
        items = self.collect(args[0]) if len(args) == 1 else args
        self.measure(items)
        return max(items, **options)

    def min_(self, *args, **options):
        items = self.collect(args[0]) if len(args) == 1 else args
        self.measure(items)
        return min(items, **options)

    def range_(self, *args: int) -> range:
        result = range(*args)
        try:
            length = len(result)
        except OverflowError:
            length = math.inf
        if length > self.limits.size:
            raise _limit(f"range() of {length:,} numbers is over the limit of {self.limits.size:,}")
        return result

    def str_(self, value="") -> str:
        self.bounded(value)
        return self.produced(str(value))


# --------------------------------------------------------------------------- attribute allow-list
# A guard takes (budget, obj, name) and returns what `obj.name` gives the model code.

def _plain(budget: Budget, obj, name: str):
    return getattr(obj, name)


def _producing(budget: Budget, obj, name: str):
    """Work proportional to the object, new data counted by the result's length."""
    method = getattr(obj, name)

    def call(*args, **kwargs):
        budget.bulk(_length(obj))
        return budget.produced(method(*args, **kwargs))
    return call


def _working(budget: Budget, obj, name: str):
    """Work proportional to the object, nothing new (reverse, clear, pop(0))."""
    method = getattr(obj, name)

    def call(*args):
        budget.bulk(len(obj))
        return method(*args)
    return call


def _listing(budget: Budget, obj, name: str):
    """dict.keys/values/items as lists: a view could be combined with | in C."""
    method = getattr(obj, name)
    return lambda: budget.produced(list(method()))


def _padding(budget: Budget, obj, name: str):
    method = getattr(obj, name)

    def call(width, *args):
        budget.fits(width, f"str.{name}()")
        return budget.produced(method(width, *args))
    return call


def _expanding_tabs(budget: Budget, obj: str, name: str):
    def call(tabsize=8):
        budget.fits(len(obj) + obj.count("\t") * max(tabsize, 0), "str.expandtabs()")
        return budget.produced(obj.expandtabs(tabsize))
    return call


def _replacing(budget: Budget, obj: str, name: str):
    def call(old, new, count=-1):
        found = (len(obj) + 1 if old == "" else obj.count(old)) if isinstance(old, str) else 0
        if count >= 0:
            found = min(found, count)
        if isinstance(old, str) and isinstance(new, str):
            budget.fits(len(obj) + found * (len(new) - len(old)), "str.replace()")
        budget.bulk(len(obj))
        return budget.produced(obj.replace(old, new, count))
    return call


def _joining(budget: Budget, obj: str, name: str):
    def call(iterable):
        items = budget.collect(iterable)
        budget.fits(sum(len(i) for i in items if type(i) is str) + len(obj) * max(len(items) - 1, 0),
                    "str.join()")
        return budget.produced(obj.join(items))
    return call


def _adding(budget: Budget, obj, name: str):
    """append/insert/add: one new element."""
    method = getattr(obj, name)

    def call(*args):
        budget.allocate(1)
        if name == "add":
            budget._key_(args[0] if args else None)
        return method(*args)
    return call


def _extending(budget: Budget, obj, name: str):
    """list.extend, dict.update, set.update: the new elements are new data."""
    method = getattr(obj, name)

    def call(*others, **named):
        others = [o if isinstance(o, (dict, set, frozenset)) else budget.collect(o) for o in others]
        added = sum(len(o) for o in others) + len(named)
        budget.fits(len(obj) + added, f"{type(obj).__name__}.{name}()")
        budget.allocate(added)
        return method(*others, **named)
    return call


def _keyed(budget: Budget, obj, name: str):
    """dict.get/pop/setdefault, set.discard/remove: the key is hashed and compared."""
    method = getattr(obj, name)

    def call(*args):
        if args:
            budget._key_(args[0])
        if name == "setdefault":
            budget.allocate(1)
        return method(*args)
    return call


def _searching(budget: Budget, obj, name: str):
    """count/index/remove on lists and tuples compare the argument with every element."""
    method = getattr(obj, name)

    def call(*args):
        budget.measure(obj)
        return method(*args)
    return call


def _sorting(budget: Budget, obj: list, name: str):
    def call(*, key=None, reverse=False):
        budget.measure(obj)
        obj.sort(key=key, reverse=reverse)
    return call


def _set_algebra(budget: Budget, obj, name: str):
    """union/intersection/...: arguments become sets through the chunked, counted set()."""
    method = getattr(obj, name)

    def call(*others):
        others = [o if isinstance(o, (set, frozenset)) else budget.set_(o) for o in others]
        budget.bulk(len(obj) + sum(len(o) for o in others))
        return budget.produced(method(*others))
    return call


def _table(guard, names: str) -> dict[str, Callable]:
    return {name: guard for name in names.split()}


_STR_ATTRIBUTES = {
    **_table(_producing, "capitalize casefold count endswith find index isalnum isalpha isascii isdecimal "
                         "isdigit isidentifier islower isnumeric isprintable isspace istitle isupper lower "
                         "lstrip partition removeprefix removesuffix rfind rindex rpartition rsplit rstrip "
                         "split splitlines startswith strip swapcase title upper"),
    **_table(_padding, "center ljust rjust zfill"),
    "expandtabs": _expanding_tabs, "replace": _replacing, "join": _joining,
}
_LIST_ATTRIBUTES = {
    **_table(_adding, "append insert"), "extend": _extending, **_table(_working, "pop clear reverse"),
    **_table(_searching, "count index remove"), "sort": _sorting, "copy": _producing,
}
_DICT_ATTRIBUTES = {
    **_table(_keyed, "get pop setdefault"), **_table(_listing, "keys values items"),
    "update": _extending, "copy": _producing, **_table(_plain, "clear popitem"),
}
_SET_ATTRIBUTES = {
    "add": _adding, **_table(_keyed, "discard remove"), **_table(_plain, "pop clear"), "copy": _producing,
    "update": _extending,
    **_table(_set_algebra, "union intersection difference symmetric_difference issubset issuperset "
                           "isdisjoint"),
}
_DATE_ATTRIBUTES = _table(_plain, "year month day weekday isoweekday isoformat isocalendar toordinal replace")
_TIME_ATTRIBUTES = _table(_plain, "hour minute second microsecond isoformat replace utcoffset")

_ATTRIBUTES: dict[type, dict[str, Callable]] = {
    str: _STR_ATTRIBUTES,
    list: _LIST_ATTRIBUTES,
    tuple: _table(_searching, "count index"),
    dict: _DICT_ATTRIBUTES,
    set: _SET_ATTRIBUTES,
    int: _table(_plain, "bit_length real imag numerator denominator"),
    float: _table(_plain, "is_integer real imag"),
    date: {**_DATE_ATTRIBUTES, "strftime": _producing},
    datetime: {**_DATE_ATTRIBUTES, **_TIME_ATTRIBUTES, "strftime": _producing,
               **_table(_plain, "date time timestamp astimezone tzname")},
    time_of_day: {**_TIME_ATTRIBUTES, "strftime": _producing},
    timedelta: _table(_plain, "days seconds microseconds total_seconds"),
}
# every attribute some value offers: another one (Java's `x.size()`) fails whatever the value
ATTRIBUTE_NAMES = frozenset(name for table in _ATTRIBUTES.values() for name in table)


@functools.lru_cache(maxsize=256)
def _data_type(kind: type) -> type | None:
    """The allow-listed type `kind` is or derives from (bool -> int, OrderedDict -> dict)."""
    return next((base for base in kind.__mro__ if base in _ATTRIBUTES), None)


@functools.lru_cache(maxsize=1024)
def _attribute_guard(kind: type, name: str) -> Callable | None:
    base = _data_type(kind)
    return _ATTRIBUTES[base].get(name) if base else None


# --------------------------------------------------------------------------- running

def check(source: str, mode: str = "eval", functions: Collection[str] = ()) -> None:
    """Deploy-time check: raises SandboxError (line, column, snippet) if `source` may not run
    with host functions of the names `functions`."""
    _refuse_both_ways(_compile(source, mode), functions)


def _refuse_both_ways(program: _Program, functions: Collection[str]) -> None:
    """`days(days)`: one name cannot be both the function and the variable in one scope."""
    for name in sorted(program.both_ways):
        if name in functions:
            way_out = (f": read the variable with variable('{name}')"
                       if "variable" in functions and name != "variable" else "; rename the variable")
            raise SandboxViolation(f"'{name}' is called here as the function {name}() the engine provides and "
                                   f"also used as a variable of that name; one piece of code cannot use it both "
                                   f"ways{way_out}", source=program.source)


def _scope(program: _Program, names: Mapping[str, Any], functions: Mapping[str, Callable],
           budget: Budget | None) -> dict:
    scope = dict(_SCOPE_BUILTINS)
    if budget is not None:
        for guard in program.guards:
            scope[guard] = getattr(budget, guard)
        for builtin in program.builtins:
            scope[builtin] = getattr(budget, _BUDGETED_BUILTINS[builtin])
    for name in program.names:
        if name in names and (name not in functions or name in program.valued):
            scope[name] = names[name]
        elif name in functions and name not in program.writes:     # a name a script assigns is a variable
            scope[name] = functions[name]
    return scope


def _run(program: _Program, scope: dict):
    try:
        return eval(program.code, scope)   # noqa: S307 - the code passed _Policy and _Guarding
    except SandboxError as err:
        if err.line is None:
            err.source = program.source
            _place(err, program, err.__traceback__)
        raise
    except MemoryError as err:
        raise SandboxLimitExceeded("the code ran out of memory", source=program.source) from err
    except Exception as err:
        failure = ExpressionFailed(f"{type(err).__name__}: {err} — in {_shorten(program.source, 120)!r}",
                                   err, source=program.source)
        _place(failure, program, err.__traceback__)
        raise failure from err


def _place(error: SandboxError, program: _Program, tb) -> None:
    """Point `error` at the innermost instruction of the model code that was running."""
    position = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == FILENAME and tb.tb_lasti >= 0:
            position = list(code.co_positions())[tb.tb_lasti // 2]   # one entry per 2-byte code unit
        tb = tb.tb_next
    if position and position[0]:
        line, end_line, byte_col, end_byte_col = position
        where = program.locate(line, byte_col, end_line, end_byte_col)
        error.line, error.column, error.snippet = where["line"], where["column"], where["snippet"]


def _as_data(value, budget: Budget, what: str):
    """Results and written-back variables must be data: iterators become lists, functions are refused."""
    if isinstance(value, (range, Iterator, KeysView, ValuesView, ItemsView)):
        value = budget.list_(value)
    elif callable(value):
        raise SandboxViolation(f"{what} is a function or type ({type(value).__name__}), not a value; call it")
    if type(value) not in _FLAT:
        budget.measure(value, budget.limits.output, what)
    return value


def _budget(limits: Limits | None, time_limit: float | None) -> Budget:
    limits = limits or DEFAULT_LIMITS
    return Budget(limits if time_limit is None else replace(limits, time=time_limit))


def evaluate(source: str, names: Mapping[str, Any], functions: Mapping[str, Callable] | None = None, *,
             time_limit: float | None = None, limits: Limits | None = None) -> Any:
    """Value of the expression `source` over the process variables `names` (not modified by
    assignment; methods like list.append still act on the objects). `functions` are trusted."""
    program = _compile(source, "eval")
    functions = functions or {}
    if program.both_ways:
        _refuse_both_ways(program, functions)
    needs_budget = program.guards or program.builtins or program.mutates
    budget = _budget(limits, time_limit) if needs_budget else None
    result = _run(program, _scope(program, names, functions, budget))
    if type(result) in _FLAT:
        return result
    budget = budget or _budget(limits, time_limit)
    if program.mutates:
        for name in program.reads & names.keys():
            budget.measure(names[name], budget.limits.output, f"variable '{name}'")
    return _as_data(result, budget, "the expression's result")


def execute(source: str, names: dict, functions: Mapping[str, Callable] | None = None, *,
            time_limit: float | None = None, limits: Limits | None = None) -> None:
    """Run the script `source`; its assignments and deletions land in `names`.
    `functions` are trusted host functions, callable but never written back (a name the
    script assigns is a variable, see "Names" above)."""
    program = _compile(source, "exec")
    functions = functions or {}
    _refuse_both_ways(program, functions)
    budget = _budget(limits, time_limit)
    scope = _scope(program, names, functions, budget)
    _run(program, scope)
    assigned = {name: _as_data(scope[name], budget, f"variable '{name}'")
                for name in sorted(program.writes) if name in scope}
    for name in program.reads - program.writes:
        if name in names and type(names[name]) not in _FLAT:   # changed in place, maybe
            budget.measure(names[name], budget.limits.output, f"variable '{name}'")
    for name in program.writes - assigned.keys():
        names.pop(name, None)
    names.update(assigned)
