"""The inbox's pending index leads with the tenant: (tenant_id, status, received_at).

Every read of pending rows is one tenant's: a processing job asks when the tenant's oldest and
newest pending deliveries arrived, several times a second while a burst is arriving, and claims
the oldest. On (status, received_at) those reads had to gather every tenant's pending rows and
sort them, taking CPU from the requests being acknowledged (docs/performance.md, ingest
processing). With the tenant first, each is a probe at one end of the tenant's range.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 06:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_inbox_events_pending"


def upgrade() -> None:
    _replace(["tenant_id", "status", "received_at"])


def downgrade() -> None:
    _replace(["status", "received_at"])


def _replace(columns: list[str]) -> None:
    with op.batch_alter_table("inbox_events") as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.create_index(INDEX, columns, unique=False)
