"""Reading the daily ingest counters: accepted, duplicate and rejected deliveries per source and day."""

import uuid
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.repository import TenantRepository
from churnsaver.backend.ingest.models import IngestDailyStat

DEFAULT_DAYS = 30
# A year of days (with a leap day) is plenty for an operational view and bounds the answer.
MAX_DAYS = 366


class IngestDailyStatRepository(TenantRepository[IngestDailyStat]):
    model = IngestDailyStat

    async def between(self, first_day: date, last_day: date) -> list[IngestDailyStat]:
        statement = (
            self.select_readable()
            .where(IngestDailyStat.day >= first_day, IngestDailyStat.day <= last_day)
            .order_by(IngestDailyStat.day, IngestDailyStat.source)
        )
        return list((await self.session.execute(statement)).scalars())


def stats_range(first_day: date | None, last_day: date | None, *, today: date) -> tuple[date, date]:
    """The inclusive range of days asked for: it ends today and spans 30 days unless told otherwise."""
    last = last_day or today
    first = first_day or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidInput("`from` must not be after `to`")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput(f"the range may span at most {MAX_DAYS} days")
    return first, last


async def ingest_stats(
    session: AsyncSession, tenant_id: uuid.UUID, *, first_day: date | None = None, last_day: date | None = None
) -> list[IngestDailyStat]:
    """The tenant's counters for each source and UTC day in the range, by day, then source."""
    first, last = stats_range(first_day, last_day, today=utcnow().date())
    return await IngestDailyStatRepository(session, tenant_id).between(first, last)
