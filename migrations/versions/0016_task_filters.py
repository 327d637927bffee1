"""task filters (Camunda's /filter: saved task queries, what Camunda's Tasklist lists by)

A user's own saved query, or one shared with everyone (no owner, an administrator's).
A downgrade drops the table and the filters.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 06:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'task_filter',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('resource_type', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('owner', sa.String(length=64), nullable=True),
        sa.Column('query', sa.JSON(), nullable=False),
        sa.Column('properties', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_task_filter_owner', 'task_filter', ['owner'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_task_filter_owner', table_name='task_filter')
    op.drop_table('task_filter')
