"""candidate starters of a process, the system audit chain (admin changes, refused writes)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.add_column(sa.Column('starters', sa.JSON(), nullable=True))
    op.create_table('system_audit_event',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('instance_id', sa.String(length=64), nullable=True),
    sa.Column('target', sa.String(length=512), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('seq')
    )
    with op.batch_alter_table('system_audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_system_audit_event_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_system_audit_event_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_system_audit_event_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_system_audit_event_instance_id'), ['instance_id'], unique=False)
    op.create_table('audit_chain_head',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=True),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('audit_chain_head')
    with op.batch_alter_table('system_audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_system_audit_event_instance_id'))
        batch_op.drop_index(batch_op.f('ix_system_audit_event_kind'))
        batch_op.drop_index(batch_op.f('ix_system_audit_event_actor'))
        batch_op.drop_index(batch_op.f('ix_system_audit_event_at'))
    op.drop_table('system_audit_event')
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.drop_column('starters')
