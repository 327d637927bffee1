"""the cases an officer worked are read from an index (who may read a case)

A department user reads the cases they take part in, and one way of taking part is
having worked an activity of the case (engine/authz.py).  activity_instance had no
index on its assignee, so that set was read by scanning every activity of every case:
with the other ways, an officer's read of one case cost 40-60 ms at 100,000 cases
(bench/bench_flatness.py's padding), against under 1 ms at 1,000.  The index holds the
assignee and the case, all that set needs.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 17:10:00
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_activity_instance_assignee', 'activity_instance', ['assignee', 'instance_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_activity_instance_assignee', table_name='activity_instance')
