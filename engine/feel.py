"""The part of FEEL (the expression language of Camunda Forms) the server evaluates: a form
field's `conditional.hide`, so that a field form-js requires only while it shows it (the
review's special step, shown when `decision = "special"`) is required here too.

Understood: names and dotted paths into the form's data (`decision`, `applicant.type`),
string, number, `true`, `false` and `null` literals, `=`, `!=`, `<`, `<=`, `>`, `>=`, `and`,
`or`, `not(...)` and parentheses, with FEEL's values: comparing with null or across types
gives null (`null = null` is true), `and`/`or` are three-valued.  Anything else (function
calls, lists, `in`, arithmetic) makes `condition` return None: the server cannot tell, and
the forms module treats the field as it did every FEEL condition before, as optional.

`syntax_problem` names what is surely no FEEL (brackets that do not pair), for the deployment
check of every expression in a form, read here or not.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import lru_cache

_TOKEN = re.compile(r"""\s*(?:
    (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|=|<|>|\(|\)|\.)
  | (?P<name>[^\W\d]\w*)
)""", re.VERBOSE)
_LITERALS = {"true": True, "false": False, "null": None}
_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")

Condition = Callable[[Mapping], object]


class _Unsupported(ValueError):
    """The expression is outside the subset this module evaluates."""


@lru_cache(maxsize=512)
def condition(text: str) -> Condition | None:
    """`=expression` -> a function of the form's data giving FEEL's value (True, False,
    None or a value); None where the text is no FEEL expression or outside the subset."""
    if not isinstance(text, str) or not text.startswith("="):
        return None
    try:
        parser = _Parser(_tokens(text[1:]))
        evaluate = parser.disjunction()
        if parser.peek() is not None:
            raise _Unsupported(f"unexpected {parser.peek()[1]!r}")
    except _Unsupported:
        return None
    return evaluate


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if match is None:
            raise _Unsupported(f"cannot read {text[position:]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens, building closures over the data."""

    def __init__(self, tokens: list) -> None:
        self.tokens, self.at = tokens, 0

    def peek(self):
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, kind=None, value=None):
        token = self.peek()
        if token is None or (kind and token[0] != kind) or (value and token[1] != value):
            raise _Unsupported(f"expected {value or kind}")
        self.at += 1
        return token

    def _keyword(self, word: str) -> bool:
        return self.peek() == ("name", word)

    def disjunction(self) -> Condition:
        parts = [self.conjunction()]
        while self._keyword("or"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda data: _any([p(data) for p in parts]))

    def conjunction(self) -> Condition:
        parts = [self.comparison()]
        while self._keyword("and"):
            self.take()
            parts.append(self.comparison())
        return parts[0] if len(parts) == 1 else (lambda data: _all([p(data) for p in parts]))

    def comparison(self) -> Condition:
        left = self.operand()
        token = self.peek()
        if token is None or token[0] != "op" or token[1] not in _COMPARISONS:
            return left
        operator = self.take()[1]
        right = self.operand()
        compare = _COMPARE[operator]
        return lambda data: compare(left(data), right(data))

    def operand(self) -> Condition:
        kind, value = self.take()
        if (kind, value) == ("op", "("):
            inner = self.disjunction()
            self.take("op", ")")
            return inner
        if kind == "string":
            try:
                text = json.loads(value)        # FEEL's escapes are JSON's
            except ValueError as err:
                raise _Unsupported(str(err)) from err
            return lambda data: text
        if kind == "number":
            number = Decimal(value)
            return lambda data: number
        if kind != "name" or value in ("and", "or"):
            raise _Unsupported(f"unexpected {value!r}")
        if value == "not" and self.peek() == ("op", "("):
            self.take()
            inner = self.disjunction()
            self.take("op", ")")
            return lambda data: _not(inner(data))
        if value in _LITERALS:
            constant = _LITERALS[value]
            return lambda data: constant
        if self.peek() == ("op", "("):
            raise _Unsupported(f"function {value}() is not evaluated on the server")
        path = [value]
        while self.peek() == ("op", "."):
            self.take()
            path.append(self.take("name")[1])
        return lambda data: value_at(data, path)


def value_at(data, path) -> object:
    """The value at a field path (`applicant.type`) in the form's data; None where a step
    is missing or is no object.  engine/forms.py reads a field's submitted value so too."""
    for name in path:
        data = data.get(name) if isinstance(data, Mapping) else None
    return data


def _kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    return "string" if isinstance(value, str) else "other"


def _number(value) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _equal(a, b):
    if a is None or b is None:
        return a is None and b is None
    if _kind(a) != _kind(b):
        return None
    return _number(a) == _number(b) if _kind(a) == "number" else a == b


def _not_equal(a, b):
    return _not(_equal(a, b))


def _ordered(test):
    def compare(a, b):
        if a is None or b is None or _kind(a) != _kind(b) or _kind(a) not in ("number", "string"):
            return None
        return test(_number(a), _number(b)) if _kind(a) == "number" else test(a, b)
    return compare


def _not(value):
    return (not value) if isinstance(value, bool) else None


def _all(values: list):
    if any(v is False for v in values):
        return False
    return True if all(v is True for v in values) else None


def _any(values: list):
    if any(v is True for v in values):
        return True
    return False if all(v is False for v in values) else None


_COMPARE = {"=": _equal, "!=": _not_equal, "<": _ordered(lambda a, b: a < b), "<=": _ordered(lambda a, b: a <= b),
            ">": _ordered(lambda a, b: a > b), ">=": _ordered(lambda a, b: a >= b)}


_PAIRS = {"(": ")", "[": "]", "{": "}"}


def syntax_problem(text: str) -> str | None:
    """What makes `=expression` no FEEL at all, as far as that is sure without reading all of
    FEEL: a string that never ends, brackets that do not pair.  None otherwise, including for
    an expression with `..` (FEEL's ranges pair brackets freely: `(1..10]`, `]1..10[`).  A
    deployment refuses what this names; anything else wrong shows only in the browser."""
    if not isinstance(text, str) or not text.startswith("=") or ".." in text:
        return None
    open_, at, body = [], 0, text[1:]
    while at < len(body):
        char = body[at]
        if char in "\"`":
            end = _closing_quote(body, at)
            if end is None:
                return "a string that never ends: close it with \"" if char == '"' else None
            at = end
        elif body.startswith("//", at):
            at = body.find("\n", at) if "\n" in body[at:] else len(body)
        elif body.startswith("/*", at):
            at = body.find("*/", at + 2) + 1 if "*/" in body[at + 2:] else len(body)
        elif char in _PAIRS:
            open_.append(char)
        elif char in _PAIRS.values():
            if not open_:
                return f"a '{char}' that closes nothing"
            opened = open_.pop()
            if _PAIRS[opened] != char:
                return f"a '{opened}' closed by '{char}'"
        at += 1
    return f"a '{open_[-1]}' that is never closed" if open_ else None


def _closing_quote(text: str, start: int) -> int | None:
    at = start + 1
    while at < len(text):
        if text[at] == "\\":
            at += 2
            continue
        if text[at] == text[start]:
            return at
        at += 1
    return None
