"""a department's queue sorted by due date reads one page (GET /task?sortBy=dueDate)

The index on `due` alone gave the order of the dates but not of the tasks that share
one (legal deadlines fall at the end of a working day, so many do) or have none, and it
held the assigned tasks too, which a queue leaves out: a page of a department's queue of
10,000 tasks sorted by due date cost 25-60 ms on both stores, the whole queue read and
sorted.  The new index holds the unassigned tasks only (a partial index), by due date
and then id, the list's whole order: a page walks it and stops at the page's end.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 06:40:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    unassigned = sa.text("assignee IS NULL")
    op.create_index('ix_user_task_queue_due', 'user_task', ['due', 'id'], unique=False,
                    sqlite_where=unassigned, postgresql_where=unassigned)
    op.drop_index('ix_user_task_due', table_name='user_task')


def downgrade() -> None:
    op.create_index('ix_user_task_due', 'user_task', ['due'], unique=False)
    op.drop_index('ix_user_task_queue_due', table_name='user_task')
