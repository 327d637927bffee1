"""a department's task list reads one page, not every unassigned task (GET /task?candidateGroup=...)

The list of tasks offered to a group is the unassigned ones (Camunda's default for a
candidate query) in creation order.  SQLite took every unassigned task of every
department through the index on `assignee` alone, checked each one's candidates and
sorted the lot: with 50,000 open tasks, 10,000 of them offered to the group, a page of
15 cost 79 ms, and grew with all the open tasks of the server.  With `created` beside
`assignee` in the index it walks the unassigned tasks in creation order and stops at
the page's end: 1.3 ms (bench/bench_flatness.py, "task list").  An officer's own tasks
(`assignee=...`) are read the same way.

Building the index holds writes to user_task while it runs: 51 ms on PostgreSQL and
106 ms on SQLite for 50,500 open tasks (measured once, 2026-12-06).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 04:40:00
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_user_task_assignee_created', 'user_task', ['assignee', 'created'], unique=False)
    op.drop_index('ix_user_task_assignee', table_name='user_task')


def downgrade() -> None:
    op.create_index('ix_user_task_assignee', 'user_task', ['assignee'], unique=False)
    op.drop_index('ix_user_task_assignee_created', table_name='user_task')
