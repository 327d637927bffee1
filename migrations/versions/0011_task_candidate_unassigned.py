"""a department's queue is counted from one index (GET /task/count?candidateGroup=...)

The count of a department's queue (its unassigned tasks) read each task of the group
from task_candidate's index and then the task's row for its assignee: two searches of
user_task per task, 14-27 ms for a queue of 10,000 on SQLite.  task_candidate now
repeats whether its task is unassigned, and an index on (group_id, unassigned,
task_id) holds all the count needs: ~1 ms for the same queue (bench/bench_flatness.py,
"the count of that queue").  The rows of tasks open now are filled from their tasks.
A task that named a group (or user) twice had two rows of it; it keeps one, as a new
task does, so that the count has no duplicates to remove (a downgrade does not bring
the second rows back: they said nothing the first did not).

On 100,000 cases (50,000 open tasks, bench/bench_flatness.py's padding) the upgrade took
233 ms on SQLite and 134 ms on PostgreSQL (measured once, 2026-12-06).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 14:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a second row of the same task and name goes (NOT IN over a GROUP BY took PostgreSQL
    # 45 s for 50,000 rows: its subquery was scanned once per row)
    op.execute("DELETE FROM task_candidate WHERE EXISTS (SELECT 1 FROM task_candidate AS earlier "
               "WHERE earlier.task_id = task_candidate.task_id AND earlier.id < task_candidate.id "
               "AND COALESCE(earlier.group_id, '') = COALESCE(task_candidate.group_id, '') "
               "AND COALESCE(earlier.user_id, '') = COALESCE(task_candidate.user_id, ''))")
    with op.batch_alter_table('task_candidate') as batch:
        batch.add_column(sa.Column('unassigned', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.execute("UPDATE task_candidate SET unassigned = false WHERE task_id IN "
               "(SELECT id FROM user_task WHERE assignee IS NOT NULL)")
    op.create_index('ix_task_candidate_queue', 'task_candidate', ['group_id', 'unassigned', 'task_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_task_candidate_queue', table_name='task_candidate')
    with op.batch_alter_table('task_candidate') as batch:
        batch.drop_column('unassigned')
