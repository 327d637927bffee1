"""task comments (Camunda's POST /task/{id}/comment/create)

An officer's note on a task, kept with the case's history after the task is done and
deleted with the case.  A downgrade drops the table and its notes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 06:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'task_comment',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('task_id', sa.String(length=64), nullable=False),
        sa.Column('instance_id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('time', sa.DateTime(), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_task_comment_task_id', 'task_comment', ['task_id'], unique=False)
    op.create_index('ix_task_comment_instance_id', 'task_comment', ['instance_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_task_comment_instance_id', table_name='task_comment')
    op.drop_index('ix_task_comment_task_id', table_name='task_comment')
    op.drop_table('task_comment')
