"""the tasks of an instance's state in rows of their own (instance_task)

A command rewrote the whole state JSON, which grows with every task the case has
finished (227 KB after 500); now it writes the tasks it changed.  Cases stored before
keep their tasks inside state_json until their next command moves them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:40:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'instance_task',
        sa.Column('instance_id', sa.String(length=64), nullable=False),
        sa.Column('task_id', sa.String(length=64), nullable=False),
        sa.Column('workflow_id', sa.String(length=64), nullable=True),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('instance_id', 'task_id'),
    )


def downgrade() -> None:
    op.drop_table('instance_task')
