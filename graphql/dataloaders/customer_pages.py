"""The base of the loaders that page a list per customer (timeline, score history): a loader
names the repository whose `pages_by_customer` reads the pages.

Keys with the same page arguments share one statement. One UNION ALL branch per customer: a batch
of MAX_PAGE_SIZE stays well inside SQLite's 500-branch limit.
"""

import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import Database
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.pagination import MAX_PAGE_SIZE, Page
from churnsaver.graphql.dataloaders.base import TenantScopedLoader

RowT = TypeVar("RowT")


class CustomerPages(Protocol[RowT]):
    async def pages_by_customer(
        self, customer_ids: list[uuid.UUID], *, first: int | None, after: str | None, with_total: bool = True
    ) -> dict[uuid.UUID, Page[RowT]]: ...


@dataclass(frozen=True, slots=True)
class CustomerPage:
    """Which page of which customer's list."""

    customer_id: uuid.UUID
    first: int | None
    after: str | None
    with_total: bool


class CustomerPagesLoader(TenantScopedLoader[CustomerPage, Page[RowT]]):
    repository: Callable[[AsyncSession, uuid.UUID], CustomerPages[RowT]]

    def __init__(self, db: Database, tenant_id: uuid.UUID) -> None:
        super().__init__(db, tenant_id, max_batch_size=MAX_PAGE_SIZE)

    async def load_batch(self, keys: Sequence[CustomerPage]) -> list[Page[RowT] | InvalidInput]:
        by_arguments: defaultdict[tuple[int | None, str | None, bool], list[uuid.UUID]] = defaultdict(list)
        for key in keys:
            by_arguments[key.first, key.after, key.with_total].append(key.customer_id)
        found: dict[tuple[uuid.UUID, int | None, str | None, bool], Page[RowT] | InvalidInput] = {}
        async with self.read_session() as session:
            for (first, after, with_total), customer_ids in by_arguments.items():
                pages: Mapping[uuid.UUID, Page[RowT] | InvalidInput]
                try:
                    pages = await self.repository(session, self.tenant_id).pages_by_customer(
                        customer_ids, first=first, after=after, with_total=with_total
                    )
                except InvalidInput as error:
                    # A bad cursor or page size fails the fields that passed it, not the whole batch.
                    pages = dict.fromkeys(customer_ids, error)
                for customer_id, page in pages.items():
                    found[customer_id, first, after, with_total] = page
        return [found[key.customer_id, key.first, key.after, key.with_total] for key in keys]
