"""an ended case keeps its history, not its runtime state

A case's state document (`process_instance.state_json`, and its `instance_task` rows
once it has 100 tasks) is what a command restores the case from.  Once the case has
ended no command or read restores it: what is read of it is its history (activities,
variables, legal clocks, the audit chain).  The engine now drops the document with the
command that ends the case, as Camunda deletes an instance's runtime rows; this
migration does the same for the cases that ended before.  The document was 12.6 of an
ended case's 28.3 kB on SQLite for the five-department review (20.8 of 48.6 kB with
legal clocks; bench/TUNING.md).

It is one UPDATE of every ended case's row and one DELETE, in the upgrade's transaction.
The space comes back as the databases reuse it: SQLite's freed pages go to new rows
(the file shrinks only with VACUUM), and on PostgreSQL the old row versions and their
TOAST chunks are dead tuples until (auto)vacuum reclaims them.

A downgrade leaves the documents dropped: no revision reads an ended case's document
(older revisions restore only a case they have just found running).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 19:30:00
"""
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_ENDED = "state NOT IN ('ACTIVE', 'SUSPENDED')"


def upgrade() -> None:
    op.execute(f"DELETE FROM instance_task WHERE instance_id IN (SELECT id FROM process_instance WHERE {_ENDED})")
    op.execute(f"UPDATE process_instance SET state_json = NULL WHERE {_ENDED} AND state_json IS NOT NULL")


def downgrade() -> None:
    pass
