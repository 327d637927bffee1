"""the activity history names events as Camunda 7 does

`GET /history/activity-instance?activityType=...` filters by Camunda 7's ActivityTypes;
the history kept five events under names of its own (`boundaryCamundaError` for an error
boundary event, `startMessageEvent` for a message start event, ...).  New rows are
written with Camunda's names; this renames the rows written before.  A downgrade
writes the old names back.

An event subprocess's row and its start event's are now written when that event fires;
before, both stood open from the case's start (the only start events ever left open).
Those open rows are removed, so that the firing writes them anew (its INSERT of the
start event's row would meet the old one's id).  A downgrade does not put them back.
Rows of embedded subprocesses written before keep `callActivity` (now `subProcess`): the
row alone does not tell a bpmn:subProcess from a bpmn:callActivity.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 16:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

# the names written before this revision, and Camunda's (engine/projections.py _EVENT_TYPES)
RENAMED = {
    "boundaryCamundaError": "boundaryError",
    "startMessageEvent": "messageStartEvent",
    "startSignalEvent": "signalStartEvent",
    "startCamundaErrorEvent": "errorStartEvent",
    "startErrorEvent": "errorStartEvent",
    "startEscalationEvent": "escalationStartEvent",
    "startConditionalEvent": "conditionalStartEvent",
    "intermediateSignalThrowEvent": "intermediateSignalThrow",
    "camundaErrorEndEvent": "errorEndEvent",
    "boundaryCompensation": "compensationBoundaryCatch",
    "boundaryCancel": "cancelBoundaryCatch",
    "startCompensationEvent": "compensationStartEvent",
    "intermediateConditionalCatch": "intermediateConditional",
}


def _rename(pairs) -> None:
    activity = sa.table("activity_instance", sa.column("activity_type", sa.String))
    for old, new in pairs:
        if old != new:
            op.execute(activity.update().where(activity.c.activity_type == old).values(activity_type=new))


_START_EVENTS = ("startEvent", "startTimerEvent", "startMessageEvent", "messageStartEvent", "startSignalEvent",
                 "signalStartEvent", "startCamundaErrorEvent", "startErrorEvent", "errorStartEvent",
                 "startEscalationEvent", "escalationStartEvent", "startConditionalEvent", "conditionalStartEvent")


def upgrade() -> None:
    _rename(RENAMED.items())
    activity = sa.table("activity_instance", sa.column("id", sa.String), sa.column("activity_type", sa.String),
                        sa.column("end_time", sa.DateTime), sa.column("parent_activity_instance_id", sa.String))
    waiting = sa.select(activity.c.parent_activity_instance_id).where(
        activity.c.activity_type.in_(_START_EVENTS), activity.c.end_time.is_(None),
        activity.c.parent_activity_instance_id.is_not(None)).scalar_subquery()
    op.execute(activity.delete().where(activity.c.id.in_(waiting), activity.c.end_time.is_(None),
                                       activity.c.activity_type == "callActivity"))
    op.execute(activity.delete().where(activity.c.activity_type.in_(_START_EVENTS), activity.c.end_time.is_(None)))


def downgrade() -> None:
    # errorStartEvent had two spellings before; the error events of camunda:errorCode ones
    # are what the shipped models and Camunda Modeler write
    back = {new: old for old, new in RENAMED.items() if old not in ("startErrorEvent",)}
    _rename(back.items())
