"""POST /signal: broadcast a signal to every waiting case and start the processes it starts (Camunda 7)."""
from __future__ import annotations

from engine import signals
from engine.variables import from_wire

from .auth import engine, principal
from .blueprint import Blueprint
from .schemas import SignalBody

blp = Blueprint("signal", __name__, url_prefix="/engine-rest/signal", description="Signals")


@blp.route("", methods=["POST"])
@blp.arguments(SignalBody)
@blp.response(204)
def throw(body):
    """Deliver the signal to every waiting signal catch of every running case (or to one execution) and
    start the latest version of every process whose start event waits for it; 204 also when nobody waits."""
    signals.throw(engine(), principal(), signals.SignalRequest(
        name=body.get("name"), execution_id=body.get("executionId"), variables=from_wire(body.get("variables")),
        tenant_id=body.get("tenantId"), without_tenant_id=bool(body.get("withoutTenantId"))))
