"""Each customer's provider ids."""

import uuid
from collections.abc import Sequence

from churnsaver.backend.customers.models import CustomerIdentity
from churnsaver.backend.customers.repository import CustomerIdentityRepository
from churnsaver.graphql.dataloaders.base import TenantScopedLoader


class IdentitiesLoader(TenantScopedLoader[uuid.UUID, list[CustomerIdentity]]):
    async def load_batch(self, customer_ids: Sequence[uuid.UUID]) -> list[list[CustomerIdentity]]:
        async with self.read_session() as session:
            found = await CustomerIdentityRepository(session, self.tenant_id).by_customer(list(customer_ids))
        return [found.get(customer_id, []) for customer_id in customer_ids]
