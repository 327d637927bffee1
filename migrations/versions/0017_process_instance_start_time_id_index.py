"""cases in their list's order along one index: (start_time, id)

The lists of cases are ordered by start time, then id (engine/history.py).  The index on
start_time alone left the cases that share a start time to be sorted by id apart, and
SQLite's index holds its rowid, not the id: a page of a busy department's running cases,
read from the first cases in that order, sorted every case of the same second first.  The
new index holds the whole order, on both stores.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 11:00:00
"""
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_process_instance_start_time_id', 'process_instance', ['start_time', 'id'], unique=False)
    op.drop_index('ix_process_instance_start_time', table_name='process_instance')


def downgrade() -> None:
    op.create_index('ix_process_instance_start_time', 'process_instance', ['start_time'], unique=False)
    op.drop_index('ix_process_instance_start_time_id', table_name='process_instance')
