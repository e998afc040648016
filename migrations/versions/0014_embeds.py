"""Embeds: each tenant's embedding settings (publishable key, sealed widget secret, branding,
survey reasons, cancel handling) and the origins allowed to embed the widget. Both tables are
tenant-owned, with RLS; the system connection may look a publishable key and an origin up
before a tenant is known (SELECT only).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 13:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from churnsaver.backend.core.db import UTCDateTime
from churnsaver.migrations.rls import allow_system_lookup, disable_tenant_rls, enable_tenant_rls

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ("embed_settings", "embed_origins")


def upgrade() -> None:
    op.create_table(
        "embed_settings",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("publishable_key", sa.String(length=64), nullable=False),
        sa.Column("widget_secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secret_rotated_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_embed_settings_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_embed_settings")),
        sa.UniqueConstraint("publishable_key", name=op.f("uq_embed_settings_publishable_key")),
    )
    op.create_table(
        "embed_origins",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_embed_origins_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embed_origins")),
        sa.UniqueConstraint("tenant_id", "origin", name=op.f("uq_embed_origins_tenant_id_origin")),
    )
    with op.batch_alter_table("embed_origins", schema=None) as batch_op:
        batch_op.create_index("ix_embed_origins_origin", ["origin"], unique=False)

    for table in TENANT_TABLES:
        enable_tenant_rls(table)
        allow_system_lookup(table)


def downgrade() -> None:
    for table in TENANT_TABLES:
        disable_tenant_rls(table)
    with op.batch_alter_table("embed_origins", schema=None) as batch_op:
        batch_op.drop_index("ix_embed_origins_origin")
    op.drop_table("embed_origins")
    op.drop_table("embed_settings")
