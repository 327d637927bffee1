"""What a handler receives and what it may raise.

A handler gets an `ExternalTask` (Camunda 7's locked external task, variables already
turned into Python values) and returns a dict of variables for `complete`.  It raises
`BpmnError` for a business outcome the diagram models (an error boundary event catches
it) and `Failure` — or any other exception — for a technical problem (retried with
backoff, then an incident).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Mapping, NamedTuple

from engine.errors import BadRequest
from engine.variables import format_date, to_python, to_wire


class Typed(NamedTuple):
    """A variable with an explicit Camunda type, e.g. `Typed(12, "Long")`; plain values are typed
    automatically (str -> String, int -> Integer/Long, dict/list -> Json, datetime/date -> Date;
    a datetime without tzinfo, and a date, are the engine's local time)."""
    value: Any
    type: str
    value_info: dict | None = None


class Unencodable(TypeError):
    """A variable this runtime cannot send as JSON; the message names it and its type."""


def encode(variables: Mapping[str, Any] | None) -> dict:
    """Python values -> Camunda's `{"name": {"value", "type", "valueInfo"}}`; raises
    `Unencodable` for a value JSON cannot carry (a Decimal, a set of objects, a class instance)."""
    wire = {}
    for name, value in (variables or {}).items():
        try:
            wire[name] = _encode_one(value)
            json.dumps(wire[name])          # what the client sends: fail here, naming the variable
        except (TypeError, ValueError) as err:
            shown = value.value if isinstance(value, Typed) else value
            raise Unencodable(f"variable {name!r} holds a {type(shown).__name__}, which cannot be sent as "
                              f"JSON ({err}); send a str, int, float, bool, date, datetime, dict or list") from None
    return wire


def _encode_one(value: Any) -> dict:
    if isinstance(value, Typed):
        return {"value": _date_text(value.value) if value.type == "Date" else value.value,
                "type": value.type, "valueInfo": value.value_info or {}}
    if isinstance(value, date):
        return {"value": _date_text(value), "type": "Date", "valueInfo": {}}
    return to_wire(value)


def _date_text(value: Any) -> Any:
    """A Date's text.  A datetime without tzinfo, and a date, go without an offset: the engine
    reads them in its own time zone (China time) as it reads such a Date sent over REST, since
    department systems hand back local times.  Text goes as it is."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return format_date(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time()).isoformat(timespec="milliseconds")
    return value


def decode(variables: Mapping[str, Any] | None) -> dict:
    """Camunda typed variables -> Python values; types this runtime does not know
    (Object, File, Bytes) keep their raw value."""
    plain = {}
    for name, typed in (variables or {}).items():
        try:
            plain[name] = to_python(name, typed)
        except BadRequest:
            plain[name] = typed.get("value") if isinstance(typed, Mapping) else typed
    return plain


class BpmnError(Exception):
    """A business error the process model handles (reported through `/bpmnError`).

    `code` is matched against the error boundary event's `errorCode`; `variables` are set
    on the case before the boundary path runs."""

    def __init__(self, code: str, message: str | None = None, variables: Mapping[str, Any] | None = None):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.variables = dict(variables or {})


class Failure(Exception):
    """A technical failure, reported through `/failure`.

    By default the subscription's retry policy decides the retries left and the
    retryTimeout; `retries=0` asks for an incident at once (retrying cannot help, e.g. the
    department system rejected the request as malformed)."""

    def __init__(self, message: str, details: str | None = None, retries: int | None = None,
                 retry_timeout_ms: int | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.retries = retries
        self.retry_timeout_ms = retry_timeout_ms


@dataclass
class ExternalTask:
    """One locked external task as `fetchAndLock` returns it."""
    id: str
    topic_name: str
    worker_id: str | None = None
    business_key: str | None = None
    process_instance_id: str | None = None
    process_definition_id: str | None = None
    process_definition_key: str | None = None
    activity_id: str | None = None
    activity_instance_id: str | None = None
    execution_id: str | None = None
    retries: int | None = None
    priority: int | None = None
    lock_expiration_time: str | None = None
    error_message: str | None = None
    variables: dict = field(default_factory=dict)
    typed_variables: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> "ExternalTask":
        typed = data.get("variables") or {}
        return cls(
            id=data["id"], topic_name=data.get("topicName"), worker_id=data.get("workerId"),
            business_key=data.get("businessKey"), process_instance_id=data.get("processInstanceId"),
            process_definition_id=data.get("processDefinitionId"),
            process_definition_key=data.get("processDefinitionKey"), activity_id=data.get("activityId"),
            activity_instance_id=data.get("activityInstanceId"), execution_id=data.get("executionId"),
            retries=data.get("retries"), priority=data.get("priority"),
            lock_expiration_time=data.get("lockExpirationTime"), error_message=data.get("errorMessage"),
            variables=decode(typed), typed_variables=dict(typed), raw=dict(data))

    def get(self, name: str, default: Any = None) -> Any:
        return self.variables.get(name, default)
