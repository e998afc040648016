"""Case queries: the prioritised, filtered list and the tenant's case settings (one case: `node(id:)`)."""

from enum import Enum

import strawberry

from churnsaver.backend.cases import service
from churnsaver.backend.core.errors import InvalidInput, NotFound
from churnsaver.graphql.cases.types import CaseConnection, CaseKind, CaseSettingsType, CaseStatus, CaseType
from churnsaver.graphql.node import parse_node_uuid
from churnsaver.graphql.pagination import connection_from_page, selects_total_count
from churnsaver.graphql.permissions import CanRead


@strawberry.input(description="Every condition given must hold; a list matches any of its values.")
class CaseFilter:
    status: list[CaseStatus] | None = None
    kind: list[CaseKind] | None = None
    customer_id: strawberry.ID | None = strawberry.field(default=None, description="A Customer's id.")
    overdue: bool | None = strawberry.field(default=None, description="Open, untouched and past the deadline.")
    assignee: str | None = None

    def to_service(self) -> service.CaseFilter:
        customer_id = None
        if self.customer_id is not None:
            try:
                customer_id = parse_node_uuid(self.customer_id, "Customer")
            except NotFound:
                raise InvalidInput("filter.customerId is not a customer's id") from None
        return service.CaseFilter(
            status=[status.value for status in self.status] if self.status is not None else None,
            kind=[kind.value for kind in self.kind] if self.kind is not None else None,
            customer_id=customer_id,
            overdue=self.overdue,
            assignee=self.assignee,
        )


@strawberry.enum(name="CaseOrder")
class CaseOrder(Enum):
    PRIORITY_DESC = service.CaseOrder.PRIORITY_DESC.value
    OPENED_AT_DESC = service.CaseOrder.OPENED_AT_DESC.value


@strawberry.type
class CaseQueries:
    @strawberry.field(
        permission_classes=[CanRead],
        description="Cases, highest expected loss first (PRIORITY_DESC) or newest first; `first` is at most 100.",
    )
    async def cases(
        self,
        info: strawberry.Info,
        first: int | None = 20,
        after: str | None = None,
        filter: CaseFilter | None = None,
        order_by: CaseOrder = CaseOrder.PRIORITY_DESC,
    ) -> CaseConnection:
        context = info.context
        page = await service.list_cases(
            context.session,
            context.auth,
            filter=filter.to_service() if filter is not None else None,
            order=service.CaseOrder(order_by.value),
            first=first,
            after=after,
            with_total=selects_total_count(info),
        )
        return connection_from_page(page, CaseType.from_row)

    @strawberry.field(permission_classes=[CanRead], description="How the tenant's cases open, run and are due.")
    async def case_settings(self, info: strawberry.Info) -> CaseSettingsType:
        context = info.context
        return CaseSettingsType.from_settings(await service.get_settings(context.session, context.auth))
