"""POST /message: correlate a message to waiting instances or start one (Camunda 7)."""
from __future__ import annotations

import marshmallow as ma
from flask import request
from marshmallow import fields as f

from engine import messages, runtime
from engine.errors import BadRequest
from engine.variables import from_wire

from . import render
from .auth import engine, principal
from .blueprint import Blueprint
from .schemas import Strict, Variables

blp = Blueprint("message", __name__, url_prefix="/engine-rest/message", description="Message correlation")

Str, Bool = f.String, f.Boolean


class CorrelationBody(Strict):
    messageName = Str(allow_none=True, load_default=None, validate=ma.validate.Length(max=255))
    businessKey = Str(allow_none=True, load_default=None, validate=ma.validate.Length(max=255))
    processInstanceId = Str(allow_none=True, load_default=None)
    correlationKeys = Variables(load_default=dict)
    localCorrelationKeys = Variables(load_default=dict)
    processVariables = Variables(load_default=dict)
    processVariablesLocal = Variables(load_default=dict)
    all = Bool(load_default=False, allow_none=True)
    resultEnabled = Bool(load_default=False, allow_none=True)
    variablesInResultEnabled = Bool(load_default=False, allow_none=True)
    messageId = Str(allow_none=True, load_default=None, metadata={
        "description": "extension: idempotency key (or the Idempotency-Key header); a redelivery with the "
                       "same id changes nothing and returns the first result"})


class ExecutionDto(Strict):
    id = Str()
    processInstanceId = Str()
    ended = Bool()
    tenantId = Str(allow_none=True)


class CorrelationResult(Strict):
    resultType = Str(metadata={"description": "Execution or ProcessDefinition"})
    execution = f.Nested(ExecutionDto, allow_none=True)
    processInstance = f.Dict(allow_none=True)
    variables = Variables()


def _message_id(body) -> str | None:
    header = request.headers.get("Idempotency-Key")
    given = body.get("messageId")
    if header and given and header != given:
        raise BadRequest(f"messageId '{given}' and the Idempotency-Key header '{header}' differ; send one id")
    return given or header or None


def _render(result: dict, with_variables: bool) -> dict:
    if result["resultType"] == "Execution":
        body = {"resultType": "Execution", "processInstance": None,
                "execution": {"id": result["executionId"], "processInstanceId": result["processInstanceId"],
                              "ended": result["ended"], "tenantId": result["tenantId"]}}
    else:
        record = runtime.InstanceRecord(result["processInstanceId"], result["definitionId"], result["definitionKey"],
                                        result["businessKey"], "COMPLETED" if result["ended"] else "ACTIVE", 0, {},
                                        None, result["tenantId"])
        body = {"resultType": "ProcessDefinition", "execution": None,
                "processInstance": render.process_instance(record)}
    if with_variables:
        body["variables"] = result.get("variables", {})
    return body


@blp.route("", methods=["POST"])
@blp.arguments(CorrelationBody)
@blp.response(204)
@blp.alt_response(200, schema=CorrelationResult(many=True), description="with resultEnabled=true")
def correlate(body):
    """Deliver a message to the waiting instances it matches (business key, correlation keys,
    process instance), or start the process whose start event waits for it; 400 when nothing matches."""
    correlation = messages.CorrelationRequest(
        message_name=body.get("messageName"), business_key=body.get("businessKey"),
        correlation_keys=from_wire(body.get("correlationKeys")),
        local_correlation_keys=from_wire(body.get("localCorrelationKeys")),
        process_instance_id=body.get("processInstanceId"), process_variables=from_wire(body.get("processVariables")),
        process_variables_local=from_wire(body.get("processVariablesLocal")), all=bool(body.get("all")),
        variables_in_result=bool(body.get("variablesInResultEnabled")), message_id=_message_id(body))
    results = messages.correlate(engine(), principal(), correlation)
    if body.get("resultEnabled"):
        return [_render(r, correlation.variables_in_result) for r in results], 200
    return None
