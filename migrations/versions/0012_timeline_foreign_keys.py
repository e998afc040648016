"""The timeline and the daily activity refer to their customer once: (tenant, customer).

Each of their rows was checked against `tenants` and against `customers`; one composite key to
`customers (tenant_id, id)` says more (the customer is the row's tenant's) and is checked once.
A tenant's deletion still reaches these rows, through its customers.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Table -> its table arguments when SQLite rebuilds it (batch mode), as migration 0004 left it.
TABLES = {"customer_events": {}, "customer_daily_activity": {"sqlite_with_rowid": False}}
COMPOSITE = "fk_{table}_tenant_id_customers"


def upgrade() -> None:
    op.create_index("uq_customers_tenant_id_id", "customers", ["tenant_id", "id"], unique=True)
    for table, table_kwargs in TABLES.items():
        with op.batch_alter_table(table, recreate="auto", table_kwargs=table_kwargs) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_tenant_id_tenants", type_="foreignkey")
            batch_op.drop_constraint(f"fk_{table}_customer_id_customers", type_="foreignkey")
            batch_op.create_foreign_key(
                COMPOSITE.format(table=table),
                "customers",
                ["tenant_id", "customer_id"],
                ["tenant_id", "id"],
                ondelete="CASCADE",
            )


def downgrade() -> None:
    for table, table_kwargs in TABLES.items():
        with op.batch_alter_table(table, recreate="auto", table_kwargs=table_kwargs) as batch_op:
            batch_op.drop_constraint(COMPOSITE.format(table=table), type_="foreignkey")
            batch_op.create_foreign_key(
                f"fk_{table}_tenant_id_tenants", "tenants", ["tenant_id"], ["id"], ondelete="CASCADE"
            )
            batch_op.create_foreign_key(
                f"fk_{table}_customer_id_customers", "customers", ["customer_id"], ["id"], ondelete="CASCADE"
            )
    op.drop_index("uq_customers_tenant_id_id", "customers")
