"""Each customer's current risk score, or None until first scored."""

import uuid
from collections.abc import Sequence

from churnsaver.backend.risk.models import RiskScore
from churnsaver.backend.risk.repository import RiskScoreRepository
from churnsaver.graphql.dataloaders.base import TenantScopedLoader


class RiskScoreLoader(TenantScopedLoader[uuid.UUID, RiskScore | None]):
    async def load_batch(self, customer_ids: Sequence[uuid.UUID]) -> list[RiskScore | None]:
        async with self.read_session() as session:
            found = await RiskScoreRepository(session, self.tenant_id).by_customer(list(customer_ids))
        return [found.get(customer_id) for customer_id in customer_ids]
