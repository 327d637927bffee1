"""the tasks of an instance's state in rows of their own (instance_task)

A command rewrote the whole state JSON, which grows with every task the case has
finished (227 KB after 500); now it writes the tasks it changed.  Cases stored before
keep their tasks inside state_json until their next command moves them.  The downgrade
puts the rows back into state_json.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:40:00
"""
import json

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
    """Put every case's tasks back into its state_json (as revision 0006 reads it), then
    drop the table."""
    conn = op.get_bind()
    cases = conn.execute(sa.text('SELECT DISTINCT instance_id FROM instance_task')).scalars().all()
    for instance_id in cases:
        document = json.loads(conn.execute(sa.text('SELECT state_json FROM process_instance WHERE id = :i'),
                                           {'i': instance_id}).scalar_one())
        rows = conn.execute(sa.text('SELECT task_id, workflow_id, body FROM instance_task '
                                    'WHERE instance_id = :i ORDER BY seq'), {'i': instance_id}).all()
        groups = {}
        for task_id, workflow_id, body in rows:
            groups.setdefault(workflow_id, []).append(f'"{task_id}": {body}')
        for workflow_id, parts in groups.items():
            target = document if workflow_id is None else document['subprocesses'][workflow_id]
            target['tasks'] = json.loads('{' + ', '.join(parts) + '}')
        conn.execute(sa.text('UPDATE process_instance SET state_json = :s WHERE id = :i'),
                     {'s': json.dumps(document), 'i': instance_id})
    op.drop_table('instance_task')
