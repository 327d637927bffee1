"""flask-smorest's Blueprint, with request schemas built once.

webargs instantiates a marshmallow schema from its class on every request
(`@blp.arguments(schemas.CompleteBody)`), which cost about a tenth of a task completion's
HTTP overhead (bench/bench_http.py).  The schemas keep no per-request state, so one
instance per class serves every request; the OpenAPI document still sees the class."""
from __future__ import annotations

import json
import re
import sys
import threading
from functools import wraps

import flask_smorest
import marshmallow as ma
from flask import Response, jsonify
from webargs import core
from webargs.flaskparser import FlaskParser

from engine.errors import BadRequest
from engine.variables import SURROGATE_ESCAPE, surrogate_problem

_SURROGATE_ESCAPE = re.compile(SURROGATE_ESCAPE.pattern.encode())   # in the body's bytes


class GivenArgs:
    """A schema of query parameters of which a request gives few among many (Camunda's
    task query: ~65): it is loaded with an instance of the names the request gives only,
    built once per set of names (at most _GIVEN_KEPT kept).  marshmallow's load goes
    through every declared field: 229 against 9 us for GET /task?candidateGroup=fgw&
    maxResults=15 (63 us with the 15 fields it had before Camunda's filters).  A field's
    load_default is not applied: read a missing one with args.get(name, default)."""


_GIVEN_KEPT = 256


class SchemaCachingParser(FlaskParser):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._schemas: dict[type, ma.Schema] = {}
        self._given: dict[tuple, ma.Schema] = {}
        self._lock = threading.Lock()

    def _get_schema(self, argmap, req):
        if isinstance(argmap, type) and issubclass(argmap, GivenArgs):
            names = frozenset(req.args).intersection(argmap._declared_fields)
            schema = self._given.get((argmap, names))
            if schema is None:
                with self._lock:
                    if len(self._given) >= _GIVEN_KEPT:
                        self._given.clear()
                    schema = self._given.setdefault((argmap, names), argmap(only=names))
            return schema
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                with self._lock:
                    schema = self._schemas.setdefault(argmap, argmap())
            return schema
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req):
        try:
            data = super()._raw_load_json(req)
        except ValueError as err:
            if isinstance(err, json.JSONDecodeError):    # webargs answers it: 'Invalid JSON body.'
                raise
            # json.loads's only other ValueError: an integer literal longer than Python converts
            # (sys.set_int_max_str_digits, against quadratic-time parsing)
            raise BadRequest(f"a number in the body has more than {sys.get_int_max_str_digits()} digits; "
                             "nothing was changed") from None
        if data is not core.missing and _SURROGATE_ESCAPE.search(req.get_data(cache=True)):
            problem = surrogate_problem(data)
            if problem:
                raise BadRequest(f"{problem}; nothing was changed")
        return data


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = SchemaCachingParser()

    def response(self, status_code, schema=None, *, rendered: bool = False, **kwargs):
        """flask-smorest's, and with `rendered` the view's result is sent as it is: it is the
        wire format already (api/render.py), and `schema` documents it without dumping it
        field by field.  marshmallow's dump of a page of 15 tasks (28 fields each) cost
        0.3-0.4 ms of GET /task's 3.1 ms of CPU, in-process (bench/TUNING.md).
        tests/security/test_openapi_fuzz.py checks the answers against the schemas, and
        tests/api/test_task_order.py, tests/api/test_fetch_filters.py,
        tests/api/test_parallel_review.py and tests/api/test_legal_clock.py that the
        schema's dump of a task list, a task, fetchAndLock's locked tasks, the history's
        activities, a case read alone (its row, activity tree and history), its legal
        clocks, and the lists of cases and of the history's cases and variables is the
        answer itself."""
        document = super().response(status_code, schema, **kwargs)
        if not rendered:
            return document

        def decorator(func):
            @wraps(func)
            def as_is(*args, **kw):
                result = func(*args, **kw)
                return result if isinstance(result, Response) else jsonify(result)
            return document(as_is)
        return decorator
