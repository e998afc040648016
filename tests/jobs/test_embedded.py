"""The embedded default's jobs process: it runs what the web process commits, comes back when it
dies, and stops with the block that started it."""

import asyncio
import json
import multiprocessing
import os
import signal
import threading
import uuid

from sqlalchemy import select

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.pubsub import IN_PROCESS, ForwardingBroker
from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest.inbox import Delivery, store
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus
from churnsaver.jobs.embedded import forwarded_frame, jobs_in_child_process, publish_forwarded
from churnsaver.jobs.outbox import enqueue
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.jobs import eventually

JOB = "ingest.process_inbox"
WAIT_SECONDS = 60


async def receive_whop_payment(db: Database, tenant_id: uuid.UUID, user_id: str) -> uuid.UUID:
    """Store a Whop delivery and enqueue its processing in one transaction, as the receivers do."""
    payload = payloads.whop_payment_succeeded(user_id=user_id, membership_id=f"mem_{user_id}")
    delivery = Delivery(payload["id"], payload["type"], json.dumps(payload))
    async with db.tenant_unit_of_work(tenant_id) as session:
        [inbox_id] = await store(session, tenant_id, Source.whop, [delivery])
        enqueue(session, JOB, tenant_id=tenant_id, inbox_ids=[str(inbox_id)])
    return inbox_id


async def status_of(db: Database, tenant_id: uuid.UUID, inbox_id: uuid.UUID) -> str:
    async with db.tenant_session(tenant_id) as session:
        return (await session.execute(select(InboxEvent.status).where(InboxEvent.id == inbox_id))).scalar_one()


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_the_jobs_process_runs_what_this_process_commits_and_survives_a_crash(
    settings: Settings, db: Database, tenant: TenantWithKey
) -> None:
    async with jobs_in_child_process(settings) as jobs:
        first_pid = jobs.pid
        assert first_pid is not None and first_pid != os.getpid()
        first = await receive_whop_payment(db, tenant.id, "user_Before")

        async def processed(inbox_id: uuid.UUID) -> bool:
            return await status_of(db, tenant.id, inbox_id) == InboxStatus.processed

        await eventually(lambda: processed(first), timeout=WAIT_SECONDS)

        os.kill(first_pid, signal.SIGKILL)
        await eventually(lambda: jobs.pid != first_pid, timeout=WAIT_SECONDS)
        # Stored while no jobs process runs: it waits in the outbox for the next one.
        second = await receive_whop_payment(db, tenant.id, "user_After")
        await eventually(lambda: processed(second), timeout=WAIT_SECONDS)
        second_pid = jobs.pid
    assert second_pid is not None and not is_running(second_pid)


async def test_what_the_jobs_process_publishes_reaches_this_process_subscribers() -> None:
    """The child publishes through a pipe (jobs/embedded.py); this end publishes it in-process."""
    channel = f"test:{uuid.uuid4()}"
    reader, writer = multiprocessing.Pipe(duplex=False)
    forwarding = ForwardingBroker(lambda name, encoded: writer.send_bytes(forwarded_frame(name, encoded)))
    forwarder = threading.Thread(target=publish_forwarded, args=(reader,), daemon=True)
    forwarder.start()
    async with IN_PROCESS.subscribe(channel) as subscription:
        forwarding.publish(channel, {"case": "opened", "text": "two\nlines"})

        assert await asyncio.wait_for(anext(subscription), WAIT_SECONDS) == {"case": "opened", "text": "two\nlines"}
    forwarding.close()
    writer.close()
    await asyncio.to_thread(forwarder.join, WAIT_SECONDS)
    assert not forwarder.is_alive()
