"""Outbox jobs may wait for a time: `not_before`, and a pending index the relay can probe by it.

A job enqueued with `not_before` stays in the outbox until that time. The pending index becomes
(dispatched_at, not_before): the relay's probes for unsent rows that are due, and for the time
the next one falls due, each read only index entries they return, however many rows wait for
later. Rows written before this revision have no `not_before` and are due at once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from churnsaver.backend.core.db import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_outbox_jobs_pending"


def upgrade() -> None:
    with op.batch_alter_table("outbox_jobs") as batch_op:
        batch_op.add_column(sa.Column("not_before", UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_index(INDEX)
        batch_op.create_index(INDEX, ["dispatched_at", "not_before"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_jobs") as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.create_index(INDEX, ["dispatched_at", "created_at"], unique=False)
        batch_op.drop_column("not_before")
