"""Customers carry a status (`active` or `churned`), subscriptions the time they ended.

A customer whose subscriptions have all ended is churned, `churned_at` being the time of the
ending event; risk leaves churned customers out of tiers and orderings. Existing rows are
backfilled: an ended subscription's `ended_at` is its newest event time (the ending event is
not told apart in stored state), and a customer labelled churned by an import with no
subscription is churned too.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from churnsaver.backend.core.db import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in backend/customers/subscription_state.py when this revision was written.
ENDED = "('canceled', 'expired', 'completed', 'incomplete_expired')"


def upgrade() -> None:
    op.add_column("customers", sa.Column("status", sa.String(16), server_default="active", nullable=False))
    op.add_column("subscriptions", sa.Column("ended_at", UTCDateTime(timezone=True), nullable=True))
    op.execute(f"UPDATE subscriptions SET ended_at = state_at WHERE status IN {ENDED}")
    op.execute(
        f"""
        UPDATE customers SET status = 'churned', churned_at = (
            SELECT max(s.ended_at) FROM subscriptions s
            WHERE s.tenant_id = customers.tenant_id AND s.customer_id = customers.id
        )
        WHERE EXISTS (
            SELECT 1 FROM subscriptions s WHERE s.tenant_id = customers.tenant_id AND s.customer_id = customers.id
        ) AND NOT EXISTS (
            SELECT 1 FROM subscriptions s
            WHERE s.tenant_id = customers.tenant_id AND s.customer_id = customers.id AND s.status NOT IN {ENDED}
        )
        """
    )
    op.execute(
        """
        UPDATE customers SET status = 'churned'
        WHERE churn_label AND NOT EXISTS (
            SELECT 1 FROM subscriptions s WHERE s.tenant_id = customers.tenant_id AND s.customer_id = customers.id
        )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.drop_column("ended_at")
    with op.batch_alter_table("customers") as batch_op:
        batch_op.drop_column("status")
