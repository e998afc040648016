"""Customer queries: the filtered list, and one customer by id or external id."""

from enum import Enum

import strawberry

from churnsaver.backend.core.errors import InvalidInput, NotFound
from churnsaver.backend.customers import service
from churnsaver.backend.risk import service as risk
from churnsaver.graphql.customers.types import CustomerConnection, CustomerType
from churnsaver.graphql.node import parse_node_uuid
from churnsaver.graphql.pagination import connection_from_page, selects_total_count
from churnsaver.graphql.permissions import CanRead
from churnsaver.graphql.risk.types import RiskTier


@strawberry.input(description="Every condition given must hold.")
class CustomerFilter:
    status: str | None = strawberry.field(default=None, description="The current subscription's status.")
    plan: str | None = strawberry.field(default=None, description="The current subscription's plan.")
    search: str | None = strawberry.field(
        default=None, description="Part of the email, name or external id; case-insensitive."
    )
    tier: RiskTier | None = strawberry.field(
        default=None, description="The tier of the current risk score; churned customers are in none."
    )

    def to_service(self) -> service.CustomerFilter:
        return service.CustomerFilter(status=self.status, plan=self.plan, search=self.search)


@strawberry.enum(name="CustomerOrder")
class CustomerOrder(Enum):
    CREATED_ASC = risk.CustomerOrder.created_asc.value
    RISK_DESC = risk.CustomerOrder.risk_desc.value


@strawberry.type
class CustomerQueries:
    @strawberry.field(
        permission_classes=[CanRead],
        description="Customers, oldest first, or (RISK_DESC) those who can still churn, highest risk first, "
        "unscored last; `first` is at most 100.",
    )
    async def customers(
        self,
        info: strawberry.Info,
        first: int | None = 20,
        after: str | None = None,
        filter: CustomerFilter | None = None,
        order_by: CustomerOrder = CustomerOrder.CREATED_ASC,
    ) -> CustomerConnection:
        context = info.context
        page = await risk.list_customers(
            context.session,
            context.auth,
            filter=filter.to_service() if filter is not None else None,
            tier=filter.tier.value if filter is not None and filter.tier is not None else None,
            order=risk.CustomerOrder(order_by.value),
            first=first,
            after=after,
            with_total=selects_total_count(info),
        )
        return connection_from_page(page, CustomerType.from_row)

    @strawberry.field(
        permission_classes=[CanRead],
        description="One customer, by `id` or by `externalId` (any of its provider ids); null when not found.",
    )
    async def customer(
        self, info: strawberry.Info, id: strawberry.ID | None = None, external_id: str | None = None
    ) -> CustomerType | None:
        context = info.context
        if external_id is not None and id is None:
            row = await service.get_customer_by_external_id(context.session, context.auth, external_id)
        elif id is not None and external_id is None:
            try:
                customer_id = parse_node_uuid(id, "Customer")
            except NotFound:
                return None  # a malformed id names no customer, like a missing one
            row = await service.get_customer(context.session, context.auth, customer_id)
        else:
            raise InvalidInput("pass exactly one of `id` and `externalId`")
        return CustomerType.from_row(row) if row is not None else None
