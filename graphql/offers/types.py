"""Offer types: the offer, a choice of offers with its reason, a redemption, a month's budget and
the billing connection (its key is never readable)."""

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from churnsaver.backend.billing.models import BillingConnection
from churnsaver.backend.offers import models
from churnsaver.backend.offers.catalog import wording
from churnsaver.backend.offers.models import Offer, Redemption
from churnsaver.backend.offers.service import Budget, OfferChoice
from churnsaver.backend.offers.settings import OfferSettings
from churnsaver.graphql.cases.types import Money
from churnsaver.graphql.customers.types import CustomerType
from churnsaver.graphql.node import RowNode
from churnsaver.graphql.pagination import Connection

if TYPE_CHECKING:
    from churnsaver.graphql.cases.types import CaseType


@strawberry.enum(name="OfferKind", description="What an offer gives (incentives) or does (the free one-click actions).")
class OfferKind(Enum):
    PERCENT_OFF = models.OfferKind.PERCENT_OFF.value
    AMOUNT_OFF = models.OfferKind.AMOUNT_OFF.value
    FREE_DAYS = models.OfferKind.FREE_DAYS.value
    PAUSE = models.OfferKind.PAUSE.value
    PLAN_SWITCH = models.OfferKind.PLAN_SWITCH.value
    UNCANCEL = models.OfferKind.UNCANCEL.value
    RESUME = models.OfferKind.RESUME.value
    UPDATE_PAYMENT = models.OfferKind.UPDATE_PAYMENT.value
    RETRY_PAYMENT = models.OfferKind.RETRY_PAYMENT.value


@strawberry.enum(name="OfferStatus", description="Only ACTIVE offers are shown and redeemed.")
class OfferStatus(Enum):
    ACTIVE = models.OfferStatus.active.value
    ARCHIVED = models.OfferStatus.archived.value


@strawberry.enum(
    name="RedemptionStatus",
    description="PENDING: asked, no answer yet; APPLIED: billing applied it; FAILED: billing refused it (reason).",
)
class RedemptionStatus(Enum):
    PENDING = models.RedemptionStatus.PENDING.value
    APPLIED = models.RedemptionStatus.APPLIED.value
    FAILED = models.RedemptionStatus.FAILED.value


@strawberry.enum(name="BillingProvider")
class BillingProvider(Enum):
    WHOP = "WHOP"
    STRIPE = "STRIPE"
    SANDBOX = "SANDBOX"


@strawberry.type(name="Offer")
class OfferType(RowNode):
    row: strawberry.Private[Offer]
    loader = "offer"
    key: str | None = strawberry.field(description="The default offer it started as; null for your own.")
    name: str
    kind: OfferKind
    status: OfferStatus
    value: JSON = strawberry.field(description="percent, cycles, amount (minor units), currency, days, plan.")
    eligibility: JSON = strawberry.field(
        description="case_kinds, tiers, plans, mrr_min, mrr_max, tenure_days_min, cancel_reasons, cooldown_days."
    )
    texts: JSON = strawberry.field(description="Your own wording per locale: {locale: {title, description}}.")
    title: str = strawberry.field(description="The title customers see, in English.")
    description: str
    monthly_budget: int | None = strawberry.field(description="Minor units of `currency` a month; null: no limit.")
    currency: str | None
    priority: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Offer) -> "OfferType":
        title, description = wording(row.kind, row.value, row.texts, "en")
        return cls(
            row=row,
            id=cls.global_id(row),
            key=row.key,
            name=row.name,
            kind=OfferKind(row.kind),
            status=OfferStatus(row.status),
            value=JSON(row.value),
            eligibility=JSON(row.eligibility),
            texts=JSON(row.texts),
            title=title,
            description=description,
            monthly_budget=row.monthly_budget,
            currency=row.currency,
            priority=row.priority,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type(name="OfferChoice", description="An offer the customer would be shown now, and why.")
class OfferChoiceType:
    choice: strawberry.Private[OfferChoice]
    kind: OfferKind
    title: str
    description: str
    reason: str = strawberry.field(description="Why it was chosen (the rules' score or the learning policy's draw).")
    cost: Money = strawberry.field(description="Its value to the customer: what the budget is charged.")

    @classmethod
    def from_choice(cls, choice: OfferChoice) -> "OfferChoiceType":
        return cls(
            choice=choice,
            kind=OfferKind(choice.kind),
            title=choice.title,
            description=choice.description,
            reason=choice.reason,
            cost=Money(amount=choice.cost, currency=choice.currency),
        )

    @strawberry.field
    async def offer(self, info: strawberry.Info) -> OfferType | None:
        row = await info.context.loaders.offer.load(self.choice.offer_id)
        return OfferType.from_row(row) if row is not None else None


@strawberry.type(name="Redemption", description="An accepted offer and what billing made of it.")
class RedemptionType(RowNode):
    row: strawberry.Private[Redemption]
    loader = "redemption"
    status: RedemptionStatus
    reason: str | None = strawberry.field(description="The provider's reason, when it refused.")
    kind: OfferKind
    source: str = strawberry.field(description="email, widget or one_click.")
    cost: Money
    provider: BillingProvider | None
    hosted_url: str | None = strawberry.field(description="UPDATE_PAYMENT: the provider's card-update page.")
    created_at: datetime
    settled_at: datetime | None

    @classmethod
    def from_row(cls, row: Redemption) -> "RedemptionType":
        return cls(
            row=row,
            id=cls.global_id(row),
            status=RedemptionStatus(row.status),
            reason=row.reason,
            kind=OfferKind(row.kind),
            source=row.source,
            cost=Money(amount=row.cost, currency=row.currency),
            provider=BillingProvider(row.provider) if row.provider else None,
            hosted_url=row.hosted_url,
            created_at=row.created_at,
            settled_at=row.settled_at,
        )

    @strawberry.field
    async def offer(self, info: strawberry.Info) -> OfferType | None:
        row = await info.context.loaders.offer.load(self.row.offer_id)
        return OfferType.from_row(row) if row is not None else None

    @strawberry.field
    async def customer(self, info: strawberry.Info) -> CustomerType | None:
        row = await info.context.loaders.customer.load(self.row.customer_id)
        return CustomerType.from_row(row) if row is not None else None

    @strawberry.field(name="case")
    async def case_(
        self, info: strawberry.Info
    ) -> Annotated["CaseType", strawberry.lazy("churnsaver.graphql.cases.types")] | None:
        from churnsaver.graphql.cases.types import CaseType

        if self.row.case_id is None:
            return None
        row = await info.context.loaders.case.load(self.row.case_id)
        return CaseType.from_row(row) if row is not None else None


@strawberry.type(name="Budget", description="A month's offer budget: the tenant's, or one offer's.")
class BudgetType:
    budget: strawberry.Private[Budget]
    month: str = strawberry.field(description="YYYY-MM, UTC.")
    limit: Money | None = strawberry.field(description="Null: no limit.")
    reserved: Money = strawberry.field(description="In flight or applied this month.")
    spent: Money = strawberry.field(description="Applied this month.")
    remaining: Money | None

    @classmethod
    def from_budget(cls, budget: Budget) -> "BudgetType":
        currency = budget.currency
        return cls(
            budget=budget,
            month=budget.month,
            limit=Money(amount=budget.limit, currency=currency) if budget.limit is not None else None,
            reserved=Money(amount=budget.reserved, currency=currency),
            spent=Money(amount=budget.spent, currency=currency),
            remaining=Money(amount=budget.remaining, currency=currency) if budget.remaining is not None else None,
        )

    @strawberry.field(description="The offer this budget is for; null for the tenant's.")
    def offer(self) -> OfferType | None:
        return OfferType.from_row(self.budget.offer) if self.budget.offer is not None else None


@strawberry.enum(name="OfferPolicy", description="How offers are ordered: by the rules, or learned.")
class OfferPolicy(Enum):
    RULES = "rules"
    THOMPSON = "thompson"


@strawberry.type(name="OfferSettings")
class OfferSettingsType:
    monthly_budget: Money | None = strawberry.field(description="The tenant's offer budget a month; null: none.")
    policy: OfferPolicy
    control_share: float = strawberry.field(description="With THOMPSON, the share of choices left to the rules.")
    cooldown_days: int = strawberry.field(
        description="At most one redemption per customer and offer in this many days."
    )

    @classmethod
    def from_settings(cls, settings: OfferSettings) -> "OfferSettingsType":
        budget = settings.monthly_budget
        return cls(
            monthly_budget=Money(amount=budget, currency=settings.currency) if budget is not None else None,
            policy=OfferPolicy(settings.policy),
            control_share=settings.control_share,
            cooldown_days=settings.cooldown_days,
        )


@strawberry.type(name="BillingConnection", description="The tenant's billing provider; the key is never readable.")
class BillingConnectionType:
    provider: BillingProvider
    key_hint: str | None = strawberry.field(description="The key's last four characters.")
    account: str | None = strawberry.field(description="The provider account the key belongs to.")
    checked_at: datetime

    @classmethod
    def from_row(cls, row: BillingConnection) -> "BillingConnectionType":
        return cls(
            provider=BillingProvider(row.provider),
            key_hint=row.key_hint,
            account=row.account,
            checked_at=row.checked_at,
        )


OfferConnection = Connection[OfferType]
RedemptionConnection = Connection[RedemptionType]
