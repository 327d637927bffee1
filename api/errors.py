"""Every error leaves as Camunda 7's body `{"type": "...Exception", "message": "..."}`."""
from __future__ import annotations

import logging
import threading

import marshmallow as ma
from flask import current_app, g, jsonify, request
from flask_smorest import Api
from sqlalchemy.exc import DataError, DisconnectionError, IntegrityError, InvalidRequestError, OperationalError
from werkzeug.exceptions import HTTPException

from engine import authz
from engine.errors import EngineError, Forbidden, code_for

log = logging.getLogger(__name__)

HTTP_TYPES = {400: "InvalidRequestException", 401: "AuthenticationException", 403: "AuthorizationException",
              404: "InvalidRequestException", 405: "InvalidRequestException", 409: "OptimisticLockingException",
              413: "InvalidRequestException", 415: "InvalidRequestException", 500: "ProcessEngineException",
              503: "ProcessEngineException"}


class ErrorSchema(ma.Schema):
    """Camunda 7's error body; some errors add context (userId, activityId, ...)."""

    class Meta:
        unknown = ma.INCLUDE

    type = ma.fields.String(metadata={"description": "exception class name, e.g. InvalidRequestException"})
    message = ma.fields.String(metadata={"description": "what went wrong and where"})
    code = ma.fields.Integer(allow_none=True, metadata={"description": "Camunda error code: 1 optimistic locking, 0 other engine exceptions, null for InvalidRequestException"})
    details = ma.fields.Dict(metadata={"description": "per-resource parse problems (deployments)"})
    errors = ma.fields.Dict(metadata={"description": "per-field problems (forms, request bodies)"})


def error_response(status: int, type_: str, message: str, code: int | None = None, **extra):
    body = {"type": type_, "message": message, "code": code_for(type_, code)}
    body.update({k: v for k, v in extra.items() if v is not None})
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="approvals", Bearer'
    return response


class CamundaApi(Api):
    """flask-smorest's Api with Camunda's error bodies, and an OpenAPI document written when
    it is first asked for (GET /engine-rest/openapi.json) instead of when the app is made.
    Documenting the 16 blueprints was two thirds of create_app's time, paid by every worker
    as it boots and by every test, whose app never serves the document."""

    ERROR_SCHEMA = ErrorSchema

    def __init__(self, app=None, **kwargs):
        self._undocumented: list = []
        self._documenting = threading.Lock()
        super().__init__(app, **kwargs)

    def register_blueprint(self, blp, *, parameters=None, **options):
        """What flask-smorest's does, less the documentation, which waits for `document`."""
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, name, parameters))

    def document(self):
        """The OpenAPI document with every registered blueprint in it."""
        with self._documenting:
            pending, self._undocumented = self._undocumented, []
            for blp, name, parameters in pending:
                blp.register_views_in_doc(self, self._app, self.spec, name=name, parameters=parameters)
                self.spec.tag({"name": name, "description": blp.description})
        return self.spec

    def _openapi_json(self):
        self.document()
        return super()._openapi_json()

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        status = 400 if error.code == 422 else error.code or 500
        errors = data.get("messages")
        if errors == _NOT_AN_OBJECT:
            message = f"the body of {request.method} {request.path} must be a JSON object"
        elif errors:
            message = "invalid request: " + _flatten(errors)
        else:
            message = data.get("message") or error.description or error.name
        if status == 413:
            message = f"request body too large: {message}"
        return error_response(status, HTTP_TYPES.get(status, "InvalidRequestException"), message,
                              errors=errors if errors else None)


# NOT NULL and CHECK violations (PostgreSQL's SQLSTATE, SQLite's extended code): a unique or a
# foreign key is the trace of a concurrent insert or delete, these are the same on every retry
_NOT_RACES = frozenset({"23502", "23514", "SQLITE_CONSTRAINT_NOTNULL", "SQLITE_CONSTRAINT_CHECK"})


def _never_a_race(orig) -> bool:
    return (getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)) in _NOT_RACES


# marshmallow's words for a JSON body of [], "x", null or 5 where a schema reads an object
_NOT_AN_OBJECT = {"json": {"_schema": ["Invalid input type."]}}


def _flatten(errors, prefix="") -> str:
    parts = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            if key in ("json", "query", "form", "files", "view_args", "headers"):
                parts.append(_flatten(value, prefix))
            else:
                parts.append(_flatten(value, f"{prefix}{key}: " if not prefix else f"{prefix}{key}."))
    elif isinstance(errors, list):
        parts.append(prefix + "; ".join(str(e) for e in errors))
    else:
        parts.append(prefix + str(errors))
    return "; ".join(p for p in parts if p)


def register(app) -> None:
    @app.errorhandler(EngineError)
    def engine_error(err: EngineError):
        if isinstance(err, Forbidden):          # every refused write is an audit event
            authz.record_denial(current_app.extensions["approvals_engine"], g.get("principal"), request.method,
                                request.path, request.view_args or {}, err.message)
        body = err.body()
        return error_response(err.status, body.pop("type"), body.pop("message"), **body)

    @app.errorhandler(IntegrityError)
    def integrity_error(err):
        if _never_a_race(err.orig):
            # a NOT NULL or CHECK constraint: a value the engine should have refused with a 400
            # (a process without an id was one), not a race that a retry gets past
            log.error("constraint violation the engine did not check first: %s", err.orig, exc_info=err)
            return error_response(500, "ProcessEngineException",
                                  "the database refused a value the engine did not check first (a missing or "
                                  "out-of-range value); nothing was changed, and a retry will fail the same way: "
                                  "report it with the request", code=0)
        log.info("integrity conflict: %s", err.orig)
        return error_response(409, "OptimisticLockingException",
                              "the change conflicts with a concurrent change (a duplicate or a race); retry", code=1)

    @app.errorhandler(OverflowError)
    @app.errorhandler(DataError)
    def unstorable_value(err):
        # hostile input: a number beyond 64 bits, a NUL character (PostgreSQL text refuses it)
        log.info("value refused by the database: %s", getattr(err, "orig", err))
        return error_response(400, "InvalidRequestException",
                              "a value in the request cannot be stored or compared: a number beyond 64 bits "
                              "or text containing a NUL character; nothing was changed")

    @app.errorhandler(RecursionError)
    def nested_too_deeply(err):
        # hostile input: JSON nested thousands deep overflows the parser (json.loads recurses)
        log.warning("request nested too deeply: %s", err)
        return error_response(400, "InvalidRequestException",
                              "the request body nests arrays or objects too deeply; at most 100 levels are accepted")

    @app.errorhandler(OperationalError)
    def database_unavailable(err):
        log.warning("database error: %s", err.orig)
        return _unavailable()

    @app.errorhandler(DisconnectionError)
    @app.errorhandler(InvalidRequestError)
    def no_connection(err):
        # The pool found each connection it opened closed again at checkout (PostgreSQL
        # cutting them as fast as they come, engine/db.py's _postgresql_checkout) and gave
        # up: SQLAlchemy says so with this InvalidRequestError.  Any other one is a bug.
        if isinstance(err, InvalidRequestError) and (type(err) is not InvalidRequestError
                                                     or str(err) != "This connection is closed"):
            raise err
        log.warning("no database connection: %s", err)
        return _unavailable()

    def _unavailable():
        return error_response(503, "ProcessEngineException",
                              "the database is unavailable or busy; nothing was changed, retry shortly")
