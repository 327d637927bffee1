"""external tasks listed in creation order use an index (GET /external-task)

bench/query_plans.py found the listing sorting every external task in a temporary
B-tree on SQLite and a sort after a sequential scan on PostgreSQL.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 17:05:00
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_external_task_created', 'external_task', ['created', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_external_task_created', table_name='external_task')
