"""Tenant-scoped reads of customers, their provider ids, subscriptions, timelines and daily aggregates.

The apply path (identities, profiles, subscription state, timeline, activity) reads and writes
in bulk, by columns rather than records: its statements still start from these repositories'
`select_readable(*columns)`, `update_owned()` and `delete_owned()`."""

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Select, SQLColumnExpression, case, or_, select
from sqlalchemy.orm import aliased

from churnsaver.backend.core.pagination import KeysetOrder, Page
from churnsaver.backend.core.repository import TenantRepository
from churnsaver.backend.customers.models import (
    Customer,
    CustomerDailyActivity,
    CustomerDailyState,
    CustomerEvent,
    CustomerIdentity,
    Subscription,
)

NEWEST_EVENT_FIRST = KeysetOrder(time_column="occurred_at", descending=True)
# Statuses of a subscription that is still running: the customer has it, or is being billed for it.
# A past-due subscription counts: it is the one a recovery campaign is about.
ACTIVE_STATUSES = ("active", "trialing", "past_due")


class CustomerRepository(TenantRepository[Customer]):
    model = Customer

    async def ids(self) -> list[uuid.UUID]:
        """Every customer's id, in id order."""
        statement = self.select_readable(Customer.id).order_by(Customer.id)
        return list((await self.session.execute(statement)).scalars())

    async def get_by_external_id(self, external_id: str) -> Customer | None:
        """The customer with this external id, or else the one holding it as a provider id:
        a customer first seen on Whop is still found by its Stripe id."""
        identities = CustomerIdentityRepository(self.session, self.tenant_id)
        holder = identities.select_readable().where(CustomerIdentity.provider_id == external_id)
        statement = (
            self.select_readable()
            .where(
                or_(
                    Customer.external_id == external_id,
                    Customer.id.in_(holder.with_only_columns(CustomerIdentity.customer_id)),
                )
            )
            .order_by(case((Customer.external_id == external_id, 0), else_=1), Customer.created_at, Customer.id)
            .limit(1)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()


class CustomerIdentityRepository(TenantRepository[CustomerIdentity]):
    model = CustomerIdentity

    async def by_customer(self, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[CustomerIdentity]]:
        statement = (
            self.select_readable()
            .where(CustomerIdentity.customer_id.in_(customer_ids))
            .order_by(CustomerIdentity.provider, CustomerIdentity.provider_id)
        )
        found: defaultdict[uuid.UUID, list[CustomerIdentity]] = defaultdict(list)
        for identity in (await self.session.execute(statement)).scalars():
            found[identity.customer_id].append(identity)
        return found


class SubscriptionRepository(TenantRepository[Subscription]):
    model = Subscription

    def current_id(self, customer_id: SQLColumnExpression[uuid.UUID]) -> Any:
        """The id of a customer's current subscription, as a correlated scalar subquery: the active
        one with the newest state, or else the one with the newest state. Newest by event time
        (`state_at`), never by arrival, so the answer does not depend on delivery order."""
        candidate = aliased(Subscription)
        return (
            select(candidate.id)
            .where(self.owned(candidate), candidate.customer_id == customer_id)
            .order_by(
                case((candidate.status.in_(ACTIVE_STATUSES), 0), else_=1),
                candidate.state_at.desc(),
                candidate.id.desc(),
            )
            .limit(1)
            .scalar_subquery()
        )

    def select_current(self) -> Select[Subscription]:
        """Every customer's current subscription; one row per customer that has any."""
        return self.select_readable().where(Subscription.id == self.current_id(Subscription.customer_id))

    async def current_by_customer(self, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, Subscription]:
        statement = self.select_current().where(Subscription.customer_id.in_(customer_ids))
        return {row.customer_id: row for row in (await self.session.execute(statement)).scalars()}


class CustomerEventRepository(TenantRepository[CustomerEvent]):
    model = CustomerEvent

    async def pages_by_customer(
        self, customer_ids: list[uuid.UUID], *, first: int | None, after: str | None, with_total: bool = True
    ) -> dict[uuid.UUID, Page[CustomerEvent]]:
        """The same page of each customer's timeline, newest first."""
        return await self.pages_by(
            CustomerEvent.customer_id,
            customer_ids,
            first=first,
            after=after,
            with_total=with_total,
            order=NEWEST_EVENT_FIRST,
        )


class CustomerDailyActivityRepository(TenantRepository[CustomerDailyActivity]):
    model = CustomerDailyActivity


class CustomerDailyStateRepository(TenantRepository[CustomerDailyState]):
    model = CustomerDailyState
