"""A page of each customer's timeline, newest first."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.pagination import Page
from churnsaver.backend.customers import repository as customers
from churnsaver.backend.customers.models import CustomerEvent
from churnsaver.graphql.dataloaders.customer_pages import CustomerPagesLoader


class TimelineLoader(CustomerPagesLoader[CustomerEvent]):
    async def fetch(
        self,
        session: AsyncSession,
        customer_ids: list[uuid.UUID],
        *,
        first: int | None,
        after: str | None,
        with_total: bool,
    ) -> dict[uuid.UUID, Page[CustomerEvent]]:
        return await customers.customer_timelines(
            session, self.tenant_id, customer_ids, first=first, after=after, with_total=with_total
        )
