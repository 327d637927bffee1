"""tasks are delegated (委派), and a user task's history keeps its fields (GET /history/task)

Camunda 7's delegation: a task delegated to a colleague is PENDING until they resolve
it, and its owner is who delegated it.  user_task keeps the delegation state (its owner
column was there, never set); an index on owner reads the tasks an officer delegated, one
way a task is visible to them, and a partial one the delegated tasks (the task query's
delegationState), few among the open tasks.

A user task's row of activity_instance is its historic task: it now keeps the task's
name as the list showed it, description, owner, priority, due and follow-up dates (the
assignee it kept already), as the task row has them while it is open and as they were
when it ended, and why it ended (`completed`, `deleted`, or the deleted case's reason).
The rows of open tasks are filled from their tasks.  Of a task that ended before, only
what the row held is known: its name is the diagram's, its end `completed` or `deleted`
(cancelled), its other fields stay empty.  A partial index on (end_time, id) of the
user tasks' rows reads the "completed tasks" view in its order.

A downgrade drops the columns and the indexes.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-09 10:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

_TASK_COLUMNS = (("task_name", sa.String(255)), ("description", sa.Text()), ("owner", sa.String(64)),
                 ("priority", sa.Integer()), ("due", sa.DateTime()), ("follow_up", sa.DateTime()),
                 ("delete_reason", sa.Text()))
# the open task's columns its history row repeats (engine/projections.py TASK_HISTORY, as this revision knows it)
_COPIED = {"name": "task_name", "description": "description", "owner": "owner", "priority": "priority",
           "due": "due", "follow_up": "follow_up", "assignee": "assignee"}


def upgrade() -> None:
    with op.batch_alter_table('user_task') as batch:
        batch.add_column(sa.Column('delegation_state', sa.String(16), nullable=True))
    op.create_index('ix_user_task_owner', 'user_task', ['owner'], unique=False)
    op.create_index('ix_user_task_delegated', 'user_task', ['delegation_state'], unique=False,
                    sqlite_where=sa.text('delegation_state IS NOT NULL'),
                    postgresql_where=sa.text('delegation_state IS NOT NULL'))
    with op.batch_alter_table('activity_instance') as batch:
        for name, type_ in _TASK_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    copied = ", ".join(f"{target} = (SELECT t.{source} FROM user_task t WHERE t.id = activity_instance.id)"
                       for source, target in _COPIED.items())
    op.execute(f"UPDATE activity_instance SET {copied} "
               "WHERE task_id IS NOT NULL AND end_time IS NULL AND id IN (SELECT id FROM user_task)")
    op.execute("UPDATE activity_instance SET task_name = activity_name, "
               "delete_reason = CASE WHEN canceled THEN 'deleted' ELSE 'completed' END "
               "WHERE task_id IS NOT NULL AND end_time IS NOT NULL")
    op.create_index('ix_activity_instance_task_end', 'activity_instance', ['end_time', 'id'], unique=False,
                    sqlite_where=sa.text('task_id IS NOT NULL'), postgresql_where=sa.text('task_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_activity_instance_task_end', table_name='activity_instance')
    with op.batch_alter_table('activity_instance') as batch:
        for name, _ in reversed(_TASK_COLUMNS):
            batch.drop_column(name)
    op.drop_index('ix_user_task_delegated', table_name='user_task')
    op.drop_index('ix_user_task_owner', table_name='user_task')
    with op.batch_alter_table('user_task') as batch:
        batch.drop_column('delegation_state')
