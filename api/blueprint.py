"""flask-smorest's Blueprint, with request schemas built once.

webargs instantiates a marshmallow schema from its class on every request
(`@blp.arguments(schemas.CompleteBody)`), which cost about a tenth of a task completion's
HTTP overhead (bench/bench_http.py).  The schemas keep no per-request state, so one
instance per class serves every request; the OpenAPI document still sees the class."""
from __future__ import annotations

import threading

import flask_smorest
import marshmallow as ma
from webargs.flaskparser import FlaskParser


class SchemaCachingParser(FlaskParser):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._schemas: dict[type, ma.Schema] = {}
        self._lock = threading.Lock()

    def _get_schema(self, argmap, req):
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                with self._lock:
                    schema = self._schemas.setdefault(argmap, argmap())
            return schema
        return super()._get_schema(argmap, req)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = SchemaCachingParser()
