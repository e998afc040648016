"""The channels domain's jobs: send one message (at most once), and sweep messages whose sending
worker died (their lease ran out) to `failed`, so none stays `sending` for ever."""

import uuid
from datetime import timedelta

import structlog

from churnsaver.backend.channels.delivery import RetryLater, deliver, resolve_interrupted
from churnsaver.backend.channels.service import SEND
from churnsaver.jobs.outbox import enqueue
from churnsaver.jobs.registry import PROMPT, job
from churnsaver.jobs.runtime import runtime
from churnsaver.jobs.scheduler import every
from churnsaver.tenants.service import list_tenants

SWEEP = "channels.sweep"
SWEEP_TENANT = "channels.sweep_tenant"
logger = structlog.get_logger(__name__)


@job(SEND, queue="channels", priority=PROMPT, min_backoff=timedelta(seconds=5))
async def send(tenant_id: str, message_id: str) -> None:
    """Send the message if it is still `scheduled`; a duplicate or retried job finds it claimed or done."""
    current = runtime()
    try:
        outcome = await deliver(current.db, current.settings, uuid.UUID(tenant_id), uuid.UUID(message_id))
    except RetryLater as error:
        logger.info("channels.send_retry", tenant_id=tenant_id, message_id=message_id, reason=str(error))
        raise
    logger.info("channels.sent", tenant_id=tenant_id, message_id=message_id, outcome=outcome)


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
