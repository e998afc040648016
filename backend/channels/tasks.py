"""The channels domain's jobs: send messages (each at most once), and sweep messages whose sending
worker died (their lease ran out) to `failed`, so none stays `sending` for ever."""

import uuid
from collections import Counter
from datetime import timedelta

import structlog

from churnsaver.backend.channels.delivery import deliver_many, resolve_interrupted
from churnsaver.backend.channels.service import SEND
from churnsaver.jobs.outbox import enqueue
from churnsaver.jobs.registry import PROMPT, job
from churnsaver.jobs.runtime import runtime
from churnsaver.jobs.scheduler import every
from churnsaver.tenants.service import list_tenants

BATCH = 50  # messages one job claims and sends together (docs/performance.md, channels)
SWEEP = "channels.sweep"
SWEEP_TENANT = "channels.sweep_tenant"
logger = structlog.get_logger(__name__)


@job(SEND, queue="channels", priority=PROMPT, min_backoff=timedelta(seconds=5), merge="message_ids", merge_limit=BATCH)
async def send(tenant_id: str, message_ids: list[str] | None = None, message_id: str | None = None) -> None:
    """Send the messages still `scheduled`, with other due messages of the tenant beside them (one
    claim, one record, the sends side by side); a duplicate job finds its messages done. The relay
    merges the jobs of one tenant it reads in a pass into one. A temporary failure is rescheduled
    with a job of its own in the outbox, not retried in memory. (`message_id`: rows queued before
    jobs took a list.)"""
    wanted = [uuid.UUID(one) for one in [*(message_ids or []), *([message_id] if message_id else [])]]
    current = runtime()
    outcomes = await deliver_many(current.db, current.settings, uuid.UUID(tenant_id), wanted, batch=BATCH)
    logger.debug("channels.sent", tenant_id=tenant_id, outcomes=Counter(outcomes.values()))


@job(SWEEP)
async def sweep() -> None:
    """Every few minutes: one `channels.sweep_tenant` per tenant."""
    async with runtime().db.system_unit_of_work() as session:
        for tenant in await list_tenants(session):
            enqueue(session, SWEEP_TENANT, tenant_id=tenant.id)


@job(SWEEP_TENANT)
async def sweep_tenant(tenant_id: str) -> None:
    if resolved := await resolve_interrupted(runtime().db, uuid.UUID(tenant_id)):
        logger.warning("channels.interrupted_sends", tenant_id=tenant_id, messages=resolved)


every(timedelta(minutes=5), SWEEP)
