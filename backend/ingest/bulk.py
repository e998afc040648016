"""Bulk writes for ingestion: one executemany on the connection, without the ORM's per-row work.

At thousands of events a second the ORM's bookkeeping (identity map, per-object state) costs
more than the database does; these statements name the table's columns directly.
"""

import uuid
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.ext.asyncio import AsyncSession


async def update_by_id(session: AsyncSession, model: Any, tenant_id: uuid.UUID, rows: list[dict[str, Any]]) -> None:
    """Set each row's other columns where `id` is the row's, within the tenant's rows; every row
    names the same columns."""
    if not rows:
        return
    table = model.__table__
    statement = table.update().where(table.c.tenant_id == tenant_id, table.c.id == bindparam("row_id"))
    parameters = [{"row_id": row["id"], **{key: value for key, value in row.items() if key != "id"}} for row in rows]
    await (await session.connection()).execute(statement, parameters)
