"""Recovery campaigns: campaigns (playbooks), the cases enrolled in them, each enrolled case's
steps with their due time, and the cursor of the consumer of `case.changed` domain events. Every
table is tenant-owned, with RLS.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 09:59:48.218837
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from churnsaver.backend.core.db import UTCDateTime
from churnsaver.migrations.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ("campaigns", "campaign_enrollments", "campaign_steps_due", "campaign_consumer_cursors")


def upgrade() -> None:
    op.create_table(
        "campaign_consumer_cursors",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("last_event_id", sa.Uuid(), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_campaign_consumer_cursors_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_campaign_consumer_cursors")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("playbook", sa.String(length=64), nullable=True),
        sa.Column("case_kinds", sa.JSON(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("holdout_share", sa.Float(), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_campaigns_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("tenant_id", "playbook", name=op.f("uq_campaigns_tenant_id_playbook")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_campaigns_tenant_created", ["tenant_id", "created_at", "id"], unique=False)

    op.create_table(
        "campaign_enrollments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=True),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("enrolled_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_enrollments_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_campaign_enrollments_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_campaign_enrollments_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_campaign_enrollments_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_enrollments")),
        sa.UniqueConstraint(
            "tenant_id", "case_id", "campaign_id", name=op.f("uq_campaign_enrollments_tenant_id_case_id_campaign_id")
        ),
    )
    with op.batch_alter_table("campaign_enrollments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_enrollments_campaign", ["tenant_id", "campaign_id", "enrolled_at"], unique=False
        )

    op.create_table(
        "campaign_steps_due",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("enrollment_id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("offer_id", sa.Uuid(), nullable=True),
        sa.Column("condition", sa.String(length=32), nullable=True),
        sa.Column("due_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("sent_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_steps_due_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_campaign_steps_due_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_campaign_steps_due_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["campaign_enrollments.id"],
            name=op.f("fk_campaign_steps_due_enrollment_id_campaign_enrollments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_campaign_steps_due_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_steps_due")),
        sa.UniqueConstraint(
            "tenant_id",
            "enrollment_id",
            "step_index",
            name=op.f("uq_campaign_steps_due_tenant_id_enrollment_id_step_index"),
        ),
    )
    with op.batch_alter_table("campaign_steps_due", schema=None) as batch_op:
        batch_op.create_index("ix_campaign_steps_due_case", ["tenant_id", "case_id"], unique=False)
        batch_op.create_index("ix_campaign_steps_due_pending", ["tenant_id", "status", "due_at"], unique=False)

    for table in TENANT_TABLES:
        enable_tenant_rls(table)


def downgrade() -> None:
    for table in TENANT_TABLES:
        disable_tenant_rls(table)
    with op.batch_alter_table("campaign_steps_due", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_steps_due_pending")
        batch_op.drop_index("ix_campaign_steps_due_case")

    op.drop_table("campaign_steps_due")
    with op.batch_alter_table("campaign_enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_enrollments_campaign")

    op.drop_table("campaign_enrollments")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_tenant_created")

    op.drop_table("campaigns")
    op.drop_table("campaign_consumer_cursors")
