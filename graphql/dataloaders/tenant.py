"""Tenants by id: a subject sees its own tenant only."""

import uuid
from collections.abc import Sequence

from churnsaver.graphql.dataloaders.base import TenantScopedLoader
from churnsaver.tenants.models import Tenant
from churnsaver.tenants.service import get_tenants_by_id


class TenantLoader(TenantScopedLoader[uuid.UUID, Tenant | None]):
    async def load_batch(self, ids: Sequence[uuid.UUID]) -> list[Tenant | None]:
        async with self.read_session() as session:
            found = await get_tenants_by_id(session, [i for i in ids if i == self.tenant_id])
        return [found.get(tenant_id) for tenant_id in ids]
