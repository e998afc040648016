"""ingestStats: how many deliveries each source brought in each day, and what became of them."""

from datetime import date
from typing import Annotated

import strawberry

from churnsaver.backend.ingest import stats
from churnsaver.backend.ingest.models import IngestDailyStat as IngestDailyStatRow
from churnsaver.graphql.permissions import CanRead


@strawberry.type(name="IngestDailyStat", description="One source's deliveries on one UTC day.")
class IngestDailyStatType:
    source: str = strawberry.field(description="whop, stripe, api or import.")
    day: date
    accepted: int = strawberry.field(description="Stored for processing.")
    duplicate: int = strawberry.field(description="Already received: acknowledged, changed nothing.")
    rejected: int = strawberry.field(description="Refused: bad signature, malformed or unfit payload.")

    @classmethod
    def from_row(cls, row: IngestDailyStatRow) -> "IngestDailyStatType":
        return cls(
            source=row.source, day=row.day, accepted=row.accepted, duplicate=row.duplicate, rejected=row.rejected
        )


@strawberry.type
class IngestStatsQueries:
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
        rows = await stats.ingest_stats(context.session, context.auth.tenant_id, first_day=from_, last_day=to)
        return [IngestDailyStatType.from_row(row) for row in rows]
