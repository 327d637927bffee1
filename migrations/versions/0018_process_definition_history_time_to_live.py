"""a process definition keeps its camunda:historyTimeToLive (days)

GET /process-definition shows `historyTimeToLive` as Camunda 7 does: the process's
camunda:historyTimeToLive in days (`180` or `P180D`), read at deploy.  The definitions
deployed before have theirs read from their deployed XML here; one Camunda would refuse
(deployed when nothing checked it) stays null.  A downgrade drops the column.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 10:00:00
"""
import re

import sqlalchemy as sa
from alembic import op
from lxml import etree


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

_BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_TTL_ATTRIBUTE = "{http://camunda.org/schema/1.0/bpmn}historyTimeToLive"
# the rule of engine/definitions.py history_time_to_live as this revision knows it (a
# migration keeps its own copy: it must do the same when that module has changed)
_TTL = re.compile(r"P(\d+)D|(\d+)", re.ASCII)
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _days(text):
    match = _TTL.fullmatch(text or "")
    days = int(match.group(1) or match.group(2)) if match else None
    return days if days is not None and days < 2**31 else None


def upgrade() -> None:
    with op.batch_alter_table('process_definition') as batch:
        batch.add_column(sa.Column('history_time_to_live', sa.Integer(), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT d.id, d.key, r.content FROM process_definition d "
                                "JOIN resource r ON r.id = d.resource_id")).all()
    for definition_id, key, content in rows:
        try:
            tree = etree.fromstring(bytes(content), _PARSER)
        except etree.XMLSyntaxError:
            continue
        process = next((p for p in tree.iter(f"{{{_BPMN}}}process") if p.get("id") == key), None)
        days = _days(process.get(_TTL_ATTRIBUTE)) if process is not None else None
        if days is not None:
            conn.execute(sa.text("UPDATE process_definition SET history_time_to_live = :days WHERE id = :id"),
                         {"days": days, "id": definition_id})


def downgrade() -> None:
    with op.batch_alter_table('process_definition') as batch:
        batch.drop_column('history_time_to_live')
