"""Customer types: the customer, its provider ids, its current subscription, its timeline entries,
and their connections."""

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from churnsaver.backend.customers.models import Customer as CustomerRow
from churnsaver.backend.customers.models import CustomerEvent as CustomerEventRow
from churnsaver.backend.customers.models import CustomerIdentity as CustomerIdentityRow
from churnsaver.backend.customers.models import CustomerStatus as Status
from churnsaver.backend.customers.models import Subscription as SubscriptionRow
from churnsaver.backend.customers.timeline import STATE_KEY
from churnsaver.graphql.dataloaders.customer_pages import CustomerPage
from churnsaver.graphql.node import RowNode
from churnsaver.graphql.pagination import Connection, connection_from_page, selects_total_count
from churnsaver.graphql.risk.types import RiskScoreConnection, RiskScoreType

if TYPE_CHECKING:
    from churnsaver.graphql.cases.types import CaseType


@strawberry.enum(name="CustomerStatus", description="Whether the customer can still churn.")
class CustomerStatus(Enum):
    ACTIVE = Status.active.value
    CHURNED = Status.churned.value


@strawberry.type(name="CustomerIdentity", description="One provider id that leads to the customer.")
class CustomerIdentityType:
    provider: str = strawberry.field(description="whop, stripe or api.")
    provider_id: str

    @classmethod
    def from_row(cls, row: CustomerIdentityRow) -> "CustomerIdentityType":
        return cls(provider=row.provider, provider_id=row.provider_id)


# Not named `Subscription`: that is the name GraphQL gives the root type of subscriptions.
@strawberry.type(name="CustomerSubscription")
class CustomerSubscriptionType:
    status: str = strawberry.field(description="As the provider says: active, trialing, past_due, canceled, …")
    plan: str | None
    mrr: int | None = strawberry.field(description="Monthly recurring revenue in minor units of `currency`.")
    currency: str | None = strawberry.field(description="ISO 4217 code.")
    current_period_end: datetime | None
    cancel_at_period_end: bool

    @classmethod
    def from_row(cls, row: SubscriptionRow) -> "CustomerSubscriptionType":
        return cls(
            status=row.status,
            plan=row.plan,
            mrr=row.mrr,
            currency=row.currency,
            current_period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
        )


@strawberry.type(name="CustomerEvent")
class CustomerEventType:
    type: str = strawberry.field(description="A canonical event (payment_failed, plan_changed, …) or a usage event.")
    occurred_at: datetime = strawberry.field(description="When it happened at the source, not when it arrived.")
    source: str = strawberry.field(description="whop, stripe, api or import.")
    properties: JSON

    @classmethod
    def from_row(cls, row: CustomerEventRow) -> "CustomerEventType":
        # STATE_KEY is ingestion's own bookkeeping (what the event said about the subscription).
        properties = {key: value for key, value in row.properties.items() if key != STATE_KEY}
        return cls(type=row.type, occurred_at=row.occurred_at, source=row.source, properties=JSON(properties))


CustomerEventConnection = Connection[CustomerEventType]


@strawberry.type(name="Customer")
class CustomerType(RowNode):
    """Plain data fields, copied from the row: a page of 100 customers resolves 500 of them, and a
    data field skips the resolver machinery (Info, arguments, extensions) a method field pays.
    Relations are method fields that go through the request's dataloaders."""

    row: strawberry.Private[CustomerRow]
    loader = "customer"
    external_id: str = strawberry.field(description="The tenant's own id for this customer.")
    email: str | None
    name: str | None
    phone: str | None
    traits: JSON
    churn_label: bool | None = strawberry.field(description="A known churn outcome, imported to train on.")
    status: CustomerStatus = strawberry.field(
        description="CHURNED once every subscription has ended (or an import labelled it so): "
        "left out of risk tiers, RISK_DESC and riskDistribution. ACTIVE again when one runs again."
    )
    churned_at: datetime | None = strawberry.field(description="When the ending event happened; null unless CHURNED.")
    created_at: datetime

    @classmethod
    def from_row(cls, row: CustomerRow) -> "CustomerType":
        return cls(
            row=row,
            id=cls.global_id(row),
            external_id=row.external_id,
            email=row.email,
            name=row.name,
            phone=row.phone,
            traits=JSON(row.traits),
            churn_label=row.churn_label,
            status=CustomerStatus(row.status),
            churned_at=row.churned_at,
            created_at=row.created_at,
        )

    @strawberry.field(description="Every provider id that leads to this customer.")
    async def identities(self, info: strawberry.Info) -> list[CustomerIdentityType]:
        rows = await info.context.loaders.identities.load(self.row.id)
        return [CustomerIdentityType.from_row(row) for row in rows]

    @strawberry.field(description="The current subscription: the most recent active one, or else the most recent one.")
    async def subscription(self, info: strawberry.Info) -> CustomerSubscriptionType | None:
        row = await info.context.loaders.subscription.load(self.row.id)
        return CustomerSubscriptionType.from_row(row) if row is not None else None

    @strawberry.field(description="The timeline, newest first; `first` is at most 100.")
    async def events(
        self, info: strawberry.Info, first: int | None = 20, after: str | None = None
    ) -> CustomerEventConnection:
        key = CustomerPage(self.row.id, first, after, with_total=selects_total_count(info))
        page = await info.context.loaders.timeline.load(key)
        return connection_from_page(page, CustomerEventType.from_row)

    @strawberry.field(
        description="The current churn risk score, with its top reasons; null until first scored, "
        "and null for a churned customer (its past scores stay in riskHistory)."
    )
    async def risk(self, info: strawberry.Info) -> RiskScoreType | None:
        if self.status is CustomerStatus.CHURNED:
            return None
        row = await info.context.loaders.risk_score.load(self.row.id)
        return RiskScoreType.from_row(row) if row is not None else None

    @strawberry.field(description="Every score the customer was given, newest first; `first` is at most 100.")
    async def risk_history(
        self, info: strawberry.Info, first: int | None = 20, after: str | None = None
    ) -> RiskScoreConnection:
        key = CustomerPage(self.row.id, first, after, with_total=selects_total_count(info))
        page = await info.context.loaders.risk_history.load(key)
        return connection_from_page(page, RiskScoreType.from_row)

    @strawberry.field(description="The customer's recovery cases, newest opened first; `first` is at most 100.")
    async def cases(
        self, info: strawberry.Info, first: int | None = 20, after: str | None = None
    ) -> Connection[Annotated["CaseType", strawberry.lazy("churnsaver.graphql.cases.types")]]:
        from churnsaver.graphql.cases.types import CaseType

        key = CustomerPage(self.row.id, first, after, with_total=selects_total_count(info))
        page = await info.context.loaders.customer_cases.load(key)
        return connection_from_page(page, CaseType.from_row)


CustomerConnection = Connection[CustomerType]
