"""Offer queries: the tenant's offers (its default offers among them), redemptions, this month's
budgets and the billing connection."""

import strawberry

from churnsaver.backend.billing import service as billing
from churnsaver.backend.offers import service
from churnsaver.backend.offers.repository import RedemptionFilter
from churnsaver.graphql.node import parse_node_uuid
from churnsaver.graphql.offers.types import (
    BillingConnectionType,
    BudgetType,
    OfferConnection,
    OfferSettingsType,
    OfferStatus,
    OfferType,
    RedemptionConnection,
    RedemptionStatus,
    RedemptionType,
)
from churnsaver.graphql.pagination import connection_from_page
from churnsaver.graphql.permissions import CanRead


@strawberry.input
class RedemptionFilterInput:
    status: list[RedemptionStatus] | None = None
    offer_id: strawberry.ID | None = None
    customer_id: strawberry.ID | None = None
    case_id: strawberry.ID | None = None


@strawberry.type
class OfferQueries:
    @strawberry.field(permission_classes=[CanRead], description="Offers, oldest first; `first` is at most 100.")
    async def offers(
        self,
        info: strawberry.Info,
        first: int | None = 20,
        after: str | None = None,
        status: list[OfferStatus] | None = None,
    ) -> OfferConnection:
        context = info.context
        page = await service.list_offers(
            context.session,
            context.auth,
            statuses=[item.value for item in status] if status is not None else None,
            first=first,
            after=after,
        )
        return connection_from_page(page, OfferType.from_row)

    @strawberry.field(permission_classes=[CanRead], description="Redemptions, newest first; `first` is at most 100.")
    async def redemptions(
        self,
        info: strawberry.Info,
        first: int | None = 20,
        after: str | None = None,
        filter: RedemptionFilterInput | None = None,
    ) -> RedemptionConnection:
        context = info.context
        where = RedemptionFilter()
        if filter is not None:
            where = RedemptionFilter(
                status=[item.value for item in filter.status] if filter.status is not None else None,
                offer_id=parse_node_uuid(filter.offer_id, "Offer") if filter.offer_id else None,
                customer_id=parse_node_uuid(filter.customer_id, "Customer") if filter.customer_id else None,
                case_id=parse_node_uuid(filter.case_id, "Case") if filter.case_id else None,
            )
        page = await service.list_redemptions(context.session, context.auth, where, first=first, after=after)
        return connection_from_page(page, RedemptionType.from_row)

    @strawberry.field(
        permission_classes=[CanRead],
        description="A month's offer budgets (this month by default; `month` is YYYY-MM): the tenant's first.",
    )
    async def budgets(self, info: strawberry.Info, month: str | None = None) -> list[BudgetType]:
        context = info.context
        return [
            BudgetType.from_budget(budget) for budget in await service.budgets(context.session, context.auth, month)
        ]

    @strawberry.field(permission_classes=[CanRead], description="The tenant budget, choice policy and cooldown.")
    async def offer_settings(self, info: strawberry.Info) -> OfferSettingsType:
        context = info.context
        return OfferSettingsType.from_settings(await service.get_settings(context.session, context.auth))

    @strawberry.field(permission_classes=[CanRead], description="The billing provider; null: the sandbox.")
    async def billing_connection(self, info: strawberry.Info) -> BillingConnectionType | None:
        context = info.context
        row = await billing.billing_connection(context.session, context.auth)
        return BillingConnectionType.from_row(row) if row is not None else None
