"""The tenant-scoping helper: the one way application code reaches tenant data.

Every repository for a tenant-owned model subclasses `TenantRepository`, and every statement it
builds starts from `select_readable()` (or `update_owned()` / `delete_owned()`), which filter on
the acting tenant; a statement that joins another tenant-owned table adds `owned(that table)`.
On PostgreSQL, row-level security enforces the same rule a second time, below the application.
"""

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar, overload

from sqlalchemy import ColumnElement, Delete, Select, Update, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import TenantOwned
from churnsaver.backend.core.errors import NotFound
from churnsaver.backend.core.pagination import KeysetOrder, Page, keyset_pages

ModelT = TypeVar("ModelT", bound=TenantOwned)


def owned_by(tenant_id: uuid.UUID, target: Any) -> ColumnElement[bool]:
    """The rows of `target` (a tenant-owned model, alias or table) that belong to `tenant_id`.
    Repositories build on it; synchronous bulk writers, which have no async session to give a
    repository, call it directly."""
    columns = target.c if hasattr(target, "c") else target
    return columns.tenant_id == tenant_id  # type: ignore[no-any-return]


class TenantRepository(Generic[ModelT]):
    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def owned(self, target: Any = None) -> ColumnElement[bool]:
        """The acting tenant's rows of `target`: this repository's model by default, or any other
        tenant-owned model, alias or table a statement joins."""
        return owned_by(self.tenant_id, self.model if target is None else target)

    @overload
    def select_readable(self) -> Select[ModelT]: ...

    @overload
    def select_readable(self, *columns: Any) -> Select[Any]: ...

    def select_readable(self, *columns: Any) -> Select[Any]:
        """The tenant's rows: whole records, or just `columns` of them (a bulk read skips the ORM)."""
        return select(*(columns or (self.model,))).where(self.owned())

    async def pages_by(
        self,
        column: Any,
        keys: Sequence[Any],
        *,
        first: int | None,
        after: str | None,
        with_total: bool,
        order: KeysetOrder,
    ) -> dict[Any, Page[ModelT]]:
        """The same keyset page of the tenant's rows for each of `keys` of `column` (each customer's
        timeline, say), from one statement: a dataloader's batch."""
        statements = {key: self.select_readable().where(column == key) for key in keys}
        return await keyset_pages(
            self.session, statements, self.model, first=first, after=after, with_total=with_total, order=order
        )

    def update_owned(self) -> Update:
        return update(self.model).where(self.owned())

    def delete_owned(self) -> Delete:
        return delete(self.model).where(self.owned())

    async def get(self, record_id: uuid.UUID) -> ModelT | None:
        statement = self.select_readable().where(self.model.id == record_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_or_raise(self, record_id: uuid.UUID, *, what: str) -> ModelT:
        record = await self.get(record_id)
        if record is None:
            raise NotFound(what)
        return record

    async def get_many(self, record_ids: list[uuid.UUID]) -> dict[uuid.UUID, ModelT]:
        if not record_ids:
            return {}
        statement = self.select_readable().where(self.model.id.in_(record_ids))
        records = (await self.session.execute(statement)).scalars()
        # Read by id only for models keyed by `id`, which TenantOwned does not declare.
        return {record.id: record for record in records}  # type: ignore[attr-defined]

    async def count(self, statement: Select[Any] | None = None) -> int:
        base = statement if statement is not None else self.select_readable()
        return (
            await self.session.execute(select(func.count()).select_from(base.order_by(None).subquery()))
        ).scalar_one()

    async def add(self, record: ModelT) -> ModelT:
        if record.tenant_id != self.tenant_id:
            raise ValueError("a record is added only by its own tenant's repository")
        self.session.add(record)
        await self.session.flush()
        return record
