"""Each customer's current subscription, or None."""

import uuid
from collections.abc import Sequence

from churnsaver.backend.customers.models import Subscription
from churnsaver.backend.customers.repository import SubscriptionRepository
from churnsaver.graphql.dataloaders.base import TenantScopedLoader


class SubscriptionLoader(TenantScopedLoader[uuid.UUID, Subscription | None]):
    async def load_batch(self, customer_ids: Sequence[uuid.UUID]) -> list[Subscription | None]:
        async with self.read_session() as session:
            found = await SubscriptionRepository(session, self.tenant_id).current_by_customer(list(customer_ids))
        return [found.get(customer_id) for customer_id in customer_ids]
