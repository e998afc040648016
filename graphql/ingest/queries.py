"""Ingest queries: the delivery counters by day and source, the tenant's webhook endpoints, and the
deliveries that failed or were quarantined."""

from datetime import date
from typing import Annotated

import strawberry

from churnsaver.backend.ingest import service
from churnsaver.graphql.ingest.types import (
    FailedEventConnection,
    FailedEventType,
    IngestDailyStatType,
    WebhookEndpointType,
)
from churnsaver.graphql.pagination import connection_from_page, selects_total_count
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
        return [IngestDailyStatType.from_daily(row) for row in rows]

    @strawberry.field(
        permission_classes=[CanRead],
        description=(
            "Deliveries that were stored but not processed (failed or quarantined), newest first; "
            "`first` is at most 100. Retry them with retryFailedEvents once the cause is fixed."
        ),
    )
    async def failed_events(
        self, info: strawberry.Info, first: int | None = 20, after: str | None = None
    ) -> FailedEventConnection:
        context = info.context
        page = await service.list_failed_events(
            context.session, context.auth, first=first, after=after, with_total=selects_total_count(info)
        )
        return connection_from_page(page, FailedEventType.from_row)

    @strawberry.field(permission_classes=[CanRead], description="The tenant's webhook endpoints, oldest first.")
    async def webhook_endpoints(self, info: strawberry.Info) -> list[WebhookEndpointType]:
        context = info.context
        rows = await service.list_endpoints(context.session, context.auth)
        return [WebhookEndpointType.from_row(row) for row in rows]
