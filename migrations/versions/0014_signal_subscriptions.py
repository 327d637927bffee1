"""signal catches are event subscriptions too (POST /signal)

A case waiting for a signal (an intermediate catch event, a boundary event, an
event-gateway branch) is mirrored into `message_subscription` as a waiting message
catch is, told apart by `event_type` ('message' or 'signal', Camunda's
ACT_RU_EVENT_SUBSCR.EVENT_TYPE_), so that a broadcast finds its receivers by a query.
The rows already there are the messages'.  The name index and the unique constraint
take the type in front: a gateway may wait for a message and a signal of one name.

Signal catches of the cases running at the upgrade are not in the table: they were
made to wait by a revision that did not mirror them, and a case waiting only for a
signal has no next command to write them.  Reading them needs the engine (a case's
state and its parsed model), so `python app.py migrate`, seeing that it crossed this
revision, writes them after the upgrade (engine/signals.py `mirror_waiting_catches`).

A downgrade drops the signal rows and the column.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 00:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('message_subscription') as batch:
        batch.add_column(sa.Column('event_type', sa.String(length=16), server_default='message', nullable=False))
        batch.drop_index('ix_message_subscription_name')
        batch.drop_constraint('uq_message_subscription_task', type_='unique')
        batch.create_index('ix_message_subscription_name', ['event_type', 'message_name', 'business_key'],
                           unique=False)
        batch.create_unique_constraint('uq_message_subscription_task', ['task_id', 'event_type', 'message_name'])


def downgrade() -> None:
    op.execute("DELETE FROM message_subscription WHERE event_type <> 'message'")
    with op.batch_alter_table('message_subscription') as batch:
        batch.drop_index('ix_message_subscription_name')
        batch.drop_constraint('uq_message_subscription_task', type_='unique')
        batch.drop_column('event_type')
        batch.create_index('ix_message_subscription_name', ['message_name', 'business_key'], unique=False)
        batch.create_unique_constraint('uq_message_subscription_task', ['task_id', 'message_name'])
