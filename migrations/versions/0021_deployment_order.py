"""deployments carry their order: deployment.seq (1, 2, ...)

`config("items")` read the resource of the deployment with the latest deployment_time,
so a configuration deployed while the test clock stood behind the real time (or after a
backwards step of the wall clock) was never read: the library deployed before carried
a later time.  Each deployment now gets the next number when it is made, and "the
latest" is the one with the highest.  The deployments made before are numbered in the
order of their deployment_time (then id).  A downgrade drops the column.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 18:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deployment') as batch:
        batch.add_column(sa.Column('seq', sa.Integer(), nullable=True))
    conn = op.get_bind()
    ids = conn.execute(sa.text("SELECT id FROM deployment ORDER BY deployment_time, id")).scalars().all()
    for seq, deployment_id in enumerate(ids, start=1):
        conn.execute(sa.text("UPDATE deployment SET seq = :seq WHERE id = :id"), {"seq": seq, "id": deployment_id})
    op.create_index('ux_deployment_seq', 'deployment', ['seq'], unique=True)


def downgrade() -> None:
    op.drop_index('ux_deployment_seq', table_name='deployment')
    with op.batch_alter_table('deployment') as batch:
        batch.drop_column('seq')
