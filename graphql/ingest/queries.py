"""Ingest queries: the delivery counters by day and source, and the tenant's webhook endpoints."""

from datetime import date
from typing import Annotated

import strawberry

from churnsaver.backend.ingest import service
from churnsaver.graphql.ingest.types import IngestDailyStatType, WebhookEndpointType
from churnsaver.graphql.permissions import CanRead


@strawberry.type
class IngestQueries:
    @strawberry.field(
        permission_classes=[CanRead],
        description=(
            "Ingest counters by day, then source, for the days from `from` to `to` (inclusive, UTC). "
            "`to` defaults to today, `from` to 29 days before `to`; the range spans at most 366 days."
        ),
    )
    async def ingest_stats(
        self,
        info: strawberry.Info,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
    ) -> list[IngestDailyStatType]:
        context = info.context
        rows = await service.ingest_stats(context.session, context.auth, first_day=from_, last_day=to)
        return [IngestDailyStatType.from_row(row) for row in rows]

    @strawberry.field(permission_classes=[CanRead], description="The tenant's webhook endpoints, oldest first.")
    async def webhook_endpoints(self, info: strawberry.Info) -> list[WebhookEndpointType]:
        context = info.context
        rows = await service.list_endpoints(context.session, context.auth)
        return [WebhookEndpointType.from_row(row) for row in rows]
