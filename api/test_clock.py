"""PUT/GET /api/v1/test/clock: move the engine clock (only with APPROVALS_TEST_CLOCK=1)."""
from __future__ import annotations

import marshmallow as ma

from engine.clock import clock
from engine.errors import BadRequest
from engine.identity import require_admin
from engine.variables import parse_date

from .auth import principal
from .blueprint import Blueprint

blp = Blueprint("test-clock", __name__, url_prefix="/api/v1/test/clock",
                description="Test clock (enabled by APPROVALS_TEST_CLOCK=1)")


class ClockBody(ma.Schema):
    now = ma.fields.String(required=True, metadata={"example": "2025-09-26T10:00:00+08:00"})


class ClockState(ma.Schema):
    now = ma.fields.String()
    moved = ma.fields.Boolean()


@blp.route("", methods=["GET"])
@blp.response(200, ClockState)
def read():
    return {"now": clock.now().isoformat(), "moved": clock.is_moved}


@blp.route("", methods=["PUT"])
@blp.arguments(ClockBody)
@blp.response(200, ClockState)
def move(body):
    """Set "now"; it then advances in real time.  Wakes the timer scheduler at once."""
    require_admin(principal(), "moving the test clock")
    value = parse_date(body["now"], "now")
    if "+" not in body["now"][10:] and "Z" not in body["now"] and "-" not in body["now"][10:]:
        raise BadRequest("'now' needs a UTC offset, e.g. 2025-09-26T10:00:00+08:00")
    clock.set(value)
    return {"now": clock.now().isoformat(), "moved": True}
