"""The events API: events/s acknowledged in batches of 500, and how fast processing follows.

One tenant with an API key (write scope) posts pre-built batches of track and identify items
(usage events, reserved billing events, traits) to the real app, its jobs running. The ack
figure is what `POST /v1/events` answers 200 for (stored, processing enqueued); end to end is
from the first post until processing has settled every item.
"""

import json
from dataclasses import dataclass
from typing import Any

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.customers.events import Source
from tests.bench.ingest.deliveries import events_batches
from tests.bench.ingest.load import Answer, Prepared, post_all
from tests.bench.ingest.verify import ProcessingMonitor, counters, inbox_by_status, processing_summary
from tests.bench.ingest.webhooks import SETTLE_TIMEOUT_SECONDS, BenchFailed
from tests.bench.server import running_server
from tests.fixtures.factories import create_tenant_with_key

TARGET_EVENTS_PER_SECOND = 20_000


@dataclass(frozen=True)
class EventsConfig:
    batches: int
    batch_size: int
    warmup_batches: int
    concurrency: int
    customers: int


def _accepted(answer: Answer) -> int | None:
    return answer.json().get("accepted") if answer.status == 200 else None


async def bench_events(settings: Settings, config: EventsConfig) -> dict[str, Any]:
    db = Database(settings)
    try:
        tenant = await create_tenant_with_key(db, name="Events bench", scopes=["write"])
        bodies = events_batches(config.warmup_batches + config.batches, config.batch_size, customers=config.customers)
        headers = {**tenant.headers, "content-type": "application/json"}
        requests = [Prepared("/v1/events", json.dumps(body).encode(), headers) for body in bodies]
        warmup, measured = requests[: config.warmup_batches], requests[config.warmup_batches :]
        monitor = ProcessingMonitor(db, tenant.id, Source.api)
        async with running_server(settings, "ingest") as server:
            warm = await post_all(server.base_url, warmup, concurrency=config.concurrency, server_pid=server.pid)
            if warm.statuses.keys() != {200}:
                raise BenchFailed(f"warm-up batches were answered {dict(warm.statuses)}")
            warm_items = len(warmup) * config.batch_size
            if await monitor.wait_settled(warm_items, SETTLE_TIMEOUT_SECONDS) is None:
                raise BenchFailed("the warm-up events were not processed in time")
            await monitor.sample()
            monitor.start()
            try:
                result = await post_all(
                    server.base_url, measured, concurrency=config.concurrency, server_pid=server.pid, keep=_accepted
                )
                total = warm_items + len(measured) * config.batch_size
                settled_at = await monitor.wait_settled(total, SETTLE_TIMEOUT_SECONDS)
            finally:
                await monitor.stop()
        by_status = await inbox_by_status(db, tenant.id, Source.api)
        counted = await counters(db, tenant.id, Source.api)
    finally:
        await db.dispose()
    checks = {
        "sent": total,
        "answered_accepted": warm_items + sum(n for n in result.kept if n is not None),
        "inbox_by_status": by_status,
        "counters": counted,
    }
    checks["every_event_stored_and_processed_once"] = (
        checks["answered_accepted"] == total
        and by_status == {"processed": total}
        and counted == {"accepted": total, "duplicate": 0, "rejected": 0}
    )
    if not checks["every_event_stored_and_processed_once"]:
        raise BenchFailed(f"events were not all stored, processed and counted once: {checks}")
    summary = result.summary(items_per_request=config.batch_size)
    processing = processing_summary(monitor, [result], [settled_at], items_per_request=config.batch_size)
    return {
        "config": config.__dict__,
        "ack": summary,
        "processing": processing,
        "checks": checks,
        "targets": {
            f"ack >= {TARGET_EVENTS_PER_SECOND:,} events/s": summary["items_per_second"] >= TARGET_EVENTS_PER_SECOND
        },
    }
