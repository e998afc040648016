"""Per-request dataloaders, one per relation.

Each batch opens its own short read session: sibling fields resolve concurrently, and one
SQLAlchemy session must never be used by two coroutines at once.
"""

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from strawberry.dataloader import DataLoader

from churnsaver.backend.core.db import Database
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.pagination import MAX_PAGE_SIZE, Page
from churnsaver.backend.core.repository import TenantRepository
from churnsaver.backend.customers import service as customers
from churnsaver.backend.customers.models import Customer, CustomerEvent, CustomerIdentity, Subscription
from churnsaver.backend.customers.repository import (
    CustomerIdentityRepository,
    CustomerRepository,
    SubscriptionRepository,
)
from churnsaver.backend.ingest.endpoints import WebhookEndpointRepository
from churnsaver.backend.ingest.models import WebhookEndpoint
from churnsaver.backend.risk import queries as risk
from churnsaver.backend.risk.models import RiskScore, RiskScoreHistory
from churnsaver.tenants.api_keys import ApiKeyRepository
from churnsaver.tenants.models import ApiKey, Tenant
from churnsaver.tenants.service import get_tenants_by_id

BatchLoad = Callable[[Sequence[uuid.UUID]], Awaitable[Sequence[Any]]]


@dataclass(frozen=True, slots=True)
class TimelinePage:
    """Which page of which customer's timeline; keys with the same page arguments share a statement."""

    customer_id: uuid.UUID
    first: int | None
    after: str | None
    with_total: bool


@dataclass(frozen=True, slots=True)
class RiskHistoryPage:
    """Which page of which customer's score history; keys with the same arguments share a statement."""

    customer_id: uuid.UUID
    first: int | None
    after: str | None
    with_total: bool


class Loaders:
    def __init__(self, db: Database, tenant_id: uuid.UUID) -> None:
        self._db = db
        self._tenant_id = tenant_id
        self.tenant: DataLoader[uuid.UUID, Tenant | None] = DataLoader(self._load_tenants)
        self.customer: DataLoader[uuid.UUID, Customer | None] = DataLoader(self._by_id(CustomerRepository))
        self.api_key: DataLoader[uuid.UUID, ApiKey | None] = DataLoader(self._by_id(ApiKeyRepository))
        self.webhook_endpoint: DataLoader[uuid.UUID, WebhookEndpoint | None] = DataLoader(
            self._by_id(WebhookEndpointRepository)
        )
        self.subscription: DataLoader[uuid.UUID, Subscription | None] = DataLoader(self._load_subscriptions)
        self.identities: DataLoader[uuid.UUID, list[CustomerIdentity]] = DataLoader(self._load_identities)
        # One UNION ALL branch per customer: a batch stays well inside SQLite's 500-branch limit.
        self.timeline: DataLoader[TimelinePage, Page[CustomerEvent]] = DataLoader(
            self._load_timelines, max_batch_size=MAX_PAGE_SIZE
        )
        self.risk_score: DataLoader[uuid.UUID, RiskScore | None] = DataLoader(self._load_risk_scores)
        self.risk_history: DataLoader[RiskHistoryPage, Page[RiskScoreHistory]] = DataLoader(
            self._load_risk_histories, max_batch_size=MAX_PAGE_SIZE
        )

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

    async def _load_subscriptions(self, customer_ids: Sequence[uuid.UUID]) -> list[Subscription | None]:
        async with self._db.tenant_session(self._tenant_id) as session:
            found = await SubscriptionRepository(session, self._tenant_id).current_by_customer(list(customer_ids))
        return [found.get(customer_id) for customer_id in customer_ids]

    async def _load_identities(self, customer_ids: Sequence[uuid.UUID]) -> list[list[CustomerIdentity]]:
        async with self._db.tenant_session(self._tenant_id) as session:
            found = await CustomerIdentityRepository(session, self._tenant_id).by_customer(list(customer_ids))
        return [found.get(customer_id, []) for customer_id in customer_ids]

    async def _load_timelines(self, keys: Sequence[TimelinePage]) -> list[Page[CustomerEvent] | InvalidInput]:
        return await self._load_pages(keys, customers.customer_timelines)

    async def _load_risk_scores(self, customer_ids: Sequence[uuid.UUID]) -> list[RiskScore | None]:
        async with self._db.tenant_session(self._tenant_id) as session:
            found = await risk.RiskScoreRepository(session, self._tenant_id).by_customer(list(customer_ids))
        return [found.get(customer_id) for customer_id in customer_ids]

    async def _load_risk_histories(
        self, keys: Sequence[RiskHistoryPage]
    ) -> list[Page[RiskScoreHistory] | InvalidInput]:
        return await self._load_pages(keys, risk.score_histories)

    async def _load_pages(
        self, keys: Sequence[Any], fetch: Callable[..., Awaitable[dict[uuid.UUID, Page[Any]]]]
    ) -> list[Any]:
        """Pages of per-customer lists (`fetch`), one statement per distinct (first, after, with_total)."""
        by_arguments: defaultdict[tuple[int | None, str | None, bool], list[uuid.UUID]] = defaultdict(list)
        for key in keys:
            by_arguments[key.first, key.after, key.with_total].append(key.customer_id)
        found: dict[tuple[uuid.UUID, int | None, str | None, bool], Page[Any] | InvalidInput] = {}
        async with self._db.tenant_session(self._tenant_id) as session:
            for (first, after, with_total), customer_ids in by_arguments.items():
                try:
                    pages = await fetch(
                        session, self._tenant_id, customer_ids, first=first, after=after, with_total=with_total
                    )
                except InvalidInput as error:
                    # A bad cursor or page size fails the fields that passed it, not the whole batch.
                    pages = dict.fromkeys(customer_ids, error)
                for customer_id, page in pages.items():
                    found[customer_id, first, after, with_total] = page
        return [found[key.customer_id, key.first, key.after, key.with_total] for key in keys]
