"""Recovery cases: cases, their timeline of case events, per-tenant case settings, and the cursor
of the consumer that turns risk tier changes into cases. Every table is tenant-owned, with RLS.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 07:11:02.086400
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from churnsaver.backend.core.db import UTCDateTime
from churnsaver.migrations.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ("case_consumer_cursors", "case_settings", "cases", "case_events")


def upgrade() -> None:
    op.create_table(
        "case_consumer_cursors",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("last_event_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_case_consumer_cursors_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_case_consumer_cursors")),
    )
    op.create_table(
        "case_settings",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_case_settings_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_case_settings")),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger_key", sa.String(length=255), nullable=False),
        sa.Column("trigger_type", sa.String(length=100), nullable=False),
        sa.Column("trigger_occurred_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("subscription_id", sa.String(length=255), nullable=True),
        sa.Column("opened_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_ends_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("verified_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution_reason", sa.Text(), nullable=True),
        sa.Column("revenue_at_risk", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("first_touch_due_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_touch_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("assignee", sa.String(length=255), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("manual_status", sa.String(length=16), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_cases_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_cases_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint(
            "tenant_id",
            "customer_id",
            "kind",
            "trigger_key",
            name=op.f("uq_cases_tenant_id_customer_id_kind_trigger_key"),
        ),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_one_open",
            ["tenant_id", "customer_id", "kind"],
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )
        batch_op.create_index("ix_cases_tenant_customer", ["tenant_id", "customer_id"], unique=False)
        batch_op.create_index("ix_cases_tenant_opened", ["tenant_id", "opened_at", "id"], unique=False)
        batch_op.create_index("ix_cases_tenant_priority", ["tenant_id", "priority", "id"], unique=False)

    op.create_table(
        "case_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("occurred_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=300), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_case_events_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
        sa.UniqueConstraint("tenant_id", "case_id", "key", name=op.f("uq_case_events_tenant_id_case_id_key")),
    )
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.create_index("ix_case_events_case", ["tenant_id", "case_id", "occurred_at", "id"], unique=False)

    for table in TENANT_TABLES:
        enable_tenant_rls(table)


def downgrade() -> None:
    for table in TENANT_TABLES:
        disable_tenant_rls(table)
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_index("ix_case_events_case")

    op.drop_table("case_events")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_tenant_priority")
        batch_op.drop_index("ix_cases_tenant_opened")
        batch_op.drop_index("ix_cases_tenant_customer")
        batch_op.drop_index(
            "ix_cases_one_open", sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'")
        )

    op.drop_table("cases")
    op.drop_table("case_settings")
    op.drop_table("case_consumer_cursors")
