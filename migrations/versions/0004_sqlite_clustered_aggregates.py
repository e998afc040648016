"""SQLite: the daily aggregate tables keep their rows in primary-key order (WITHOUT ROWID).

Features read a tenant's aggregates in key order (customer, name, day). In a rowid table that
order is an index whose every entry costs a look-up of the row elsewhere in the file; clustered
on the key, the read is one sequential pass (docs/performance.md, risk features). PostgreSQL is
unchanged (its heap has no such choice).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 07:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("customer_daily_activity", "customer_daily_state")


def upgrade() -> None:
    _recreate(with_rowid=False)


def downgrade() -> None:
    _recreate(with_rowid=True)


def _recreate(*, with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}):
            pass
