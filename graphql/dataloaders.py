"""Per-request dataloaders, one per relation.

Each batch opens its own short read session: sibling fields resolve concurrently, and one
SQLAlchemy session must never be used by two coroutines at once.
"""

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.db import Database
from churnsaver.backend.repository import TenantRepository
from churnsaver.tenants.api_keys import ApiKeyRepository
from churnsaver.tenants.models import ApiKey, Tenant
from churnsaver.tenants.service import get_tenants_by_id

BatchLoad = Callable[[Sequence[uuid.UUID]], Awaitable[Sequence[Any]]]


class Loaders:
    def __init__(self, db: Database, tenant_id: uuid.UUID) -> None:
        self._db = db
        self._tenant_id = tenant_id
        self.tenant: DataLoader[uuid.UUID, Tenant | None] = DataLoader(self._load_tenants)
        self.customer: DataLoader[uuid.UUID, Customer | None] = DataLoader(self._by_id(CustomerRepository))
        self.api_key: DataLoader[uuid.UUID, ApiKey | None] = DataLoader(self._by_id(ApiKeyRepository))

    def _by_id(self, repository: type[TenantRepository[Any]]) -> BatchLoad:
        async def load(ids: Sequence[uuid.UUID]) -> list[Any]:
            async with self._db.tenant_session(self._tenant_id) as session:
                found = await repository(session, self._tenant_id).get_many(list(ids))
            return [found.get(record_id) for record_id in ids]

        return load

    async def _load_tenants(self, ids: Sequence[uuid.UUID]) -> list[Tenant | None]:
        # A subject sees its own tenant only.
        async with self._db.tenant_session(self._tenant_id) as session:
            found = await get_tenants_by_id(session, [i for i in ids if i == self._tenant_id])
        return [found.get(tenant_id) for tenant_id in ids]
