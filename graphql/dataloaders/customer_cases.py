"""A page of each customer's cases, newest opened first."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.cases.repository import NEWEST_OPENED_FIRST, CaseRepository
from churnsaver.backend.core.pagination import Page
from churnsaver.graphql.dataloaders.customer_pages import CustomerPagesLoader


class CasesOfCustomers:
    """The cases repository, read per customer as `CustomerPagesLoader` reads its pages."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.cases = CaseRepository(session, tenant_id)

    async def pages_by_customer(
        self, customer_ids: list[uuid.UUID], *, first: int | None, after: str | None, with_total: bool = True
    ) -> dict[uuid.UUID, Page[RecoveryCase]]:
        return await self.cases.pages_by(
            RecoveryCase.customer_id,
            customer_ids,
            first=first,
            after=after,
            with_total=with_total,
            order=NEWEST_OPENED_FIRST,
        )


class CustomerCasesLoader(CustomerPagesLoader[RecoveryCase]):
    repository = CasesOfCustomers
