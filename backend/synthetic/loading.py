"""Loading a synthetic dataset into a tenant through the real ingest code, without HTTP.

Items go through the events API's normalizer and `apply_events`, exactly as `churnsaver import
events` would apply them, minus the inbox: a dataset is known good, so storing every item a
second time would only slow the load down. Batches go in time order, so each one is newer than
the state already stored and takes `apply_events`' fast path instead of a refold; loading the
same dataset again applies nothing (every item is a duplicate on the timeline).
"""

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import Database
from churnsaver.backend.customers.apply import apply_events, check_event
from churnsaver.backend.customers.events import CanonicalEvent
from churnsaver.backend.ingest.events_api import normalize_item
from churnsaver.backend.synthetic.generator import SyntheticDataset

LOAD_BATCH_EVENTS = 5000


@dataclass(frozen=True, slots=True)
class LoadReport:
    events: int
    applied: int  # new on the timeline; the rest were loaded before
    customers_created: int


async def load_dataset(
    db: Database, tenant_id: uuid.UUID, dataset: SyntheticDataset, *, batch_events: int = LOAD_BATCH_EVENTS
) -> LoadReport:
    """Apply every item of `dataset` to the tenant, one transaction per batch; idempotent."""
    applied = created = 0
    for offset in range(0, len(dataset.items), batch_events):
        async with db.tenant_unit_of_work(tenant_id) as session:
            batch = await apply_items(session, tenant_id, dataset.items[offset : offset + batch_events])
        applied += batch.applied
        created += batch.customers_created
    return LoadReport(events=len(dataset.items), applied=applied, customers_created=created)


async def apply_items(
    session: AsyncSession, tenant_id: uuid.UUID, items: list[dict[str, Any]], *, batch_events: int = LOAD_BATCH_EVENTS
) -> LoadReport:
    """Apply events-API `items` (in time order) in the caller's transaction, as processing the
    inbox would, `batch_events` at a time."""
    applied = created = 0
    for offset in range(0, len(items), batch_events):
        events: list[CanonicalEvent] = [
            event for item in items[offset : offset + batch_events] for event in normalize_item(item)
        ]
        for event in events:
            check_event(event)
        result = await apply_events(session, tenant_id, events)
        applied += result.applied
        created += result.customers_created
    return LoadReport(events=len(items), applied=applied, customers_created=created)
