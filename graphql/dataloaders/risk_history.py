"""A page of each customer's risk score history, newest first."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.pagination import Page
from churnsaver.backend.risk import repository as risk
from churnsaver.backend.risk.models import RiskScoreHistory
from churnsaver.graphql.dataloaders.customer_pages import CustomerPagesLoader


class RiskHistoryLoader(CustomerPagesLoader[RiskScoreHistory]):
    async def fetch(
        self,
        session: AsyncSession,
        customer_ids: list[uuid.UUID],
        *,
        first: int | None,
        after: str | None,
        with_total: bool,
    ) -> dict[uuid.UUID, Page[RiskScoreHistory]]:
        return await risk.score_histories(
            session, self.tenant_id, customer_ids, first=first, after=after, with_total=with_total
        )
