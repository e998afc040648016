"""Customer fields."""

import strawberry
from strawberry import relay

from churnsaver.backend.customers import service
from churnsaver.graphql.permissions import CanRead
from churnsaver.graphql.types.customer import CustomerConnection, CustomerType


@strawberry.type
class CustomerQueries:
    @strawberry.field(permission_classes=[CanRead], description="Customers, oldest first; `first` is at most 100.")
    async def customers(
        self, info: strawberry.Info, first: int | None = 20, after: str | None = None
    ) -> CustomerConnection:
        context = info.context
        page = await service.list_customers(context.session, context.auth.tenant_id, first=first, after=after)
        edges = [
            relay.Edge(cursor=cursor, node=CustomerType(row=row))
            for row, cursor in zip(page.rows, page.cursors, strict=True)
        ]
        return CustomerConnection(
            edges=edges,
            page_info=relay.PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.cursors[0] if page.cursors else None,
                end_cursor=page.cursors[-1] if page.cursors else None,
            ),
            total_count=page.total_count,
        )
