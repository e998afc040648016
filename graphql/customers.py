"""Customer fields."""

import strawberry

from churnsaver.backend.customers import service
from churnsaver.graphql.pagination import connection_from_page, selects_total_count
from churnsaver.graphql.permissions import CanRead
from churnsaver.graphql.types.customer import CustomerConnection, CustomerType


@strawberry.type
class CustomerQueries:
    @strawberry.field(permission_classes=[CanRead], description="Customers, oldest first; `first` is at most 100.")
    async def customers(
        self, info: strawberry.Info, first: int | None = 20, after: str | None = None
    ) -> CustomerConnection:
        context = info.context
        page = await service.list_customers(
            context.session, context.auth.tenant_id, first=first, after=after, with_total=selects_total_count(info)
        )
        return connection_from_page(page, CustomerType.from_row)
