"""Row-level security on `tenants` and `outbox_jobs`, the two tables that named a tenant without it.

A tenant session sees and writes its own `tenants` row only (the row's `id` is the tenant), and
only its own tenant's outbox rows. The system (owner) connection keeps full access to both: it
lists tenants for the scheduler and the CLI, and the relay sends and deletes every tenant's jobs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 04:00:00
"""

from collections.abc import Sequence

from churnsaver.migrations.rls import allow_system_access, disable_tenant_rls, enable_tenant_rls

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    enable_tenant_rls("tenants", tenant_column="id")
    allow_system_access("tenants")
    enable_tenant_rls("outbox_jobs")
    allow_system_access("outbox_jobs")


def downgrade() -> None:
    disable_tenant_rls("outbox_jobs")
    disable_tenant_rls("tenants")
