"""channels.send run by the jobs machinery: through the outbox to a real SMTP server, and at most
once when the `churnsaver worker` process sending it is killed with SIGKILL mid-send."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta

from aiosmtpd.controller import Controller
from sqlalchemy import update

from churnsaver.backend.channels.delivery import INTERRUPTED
from churnsaver.backend.channels.models import Message
from churnsaver.backend.channels.service import SEND
from churnsaver.backend.core.db import utcnow
from churnsaver.jobs.models import OutboxJob
from churnsaver.jobs.outbox import enqueue
from churnsaver.jobs.relay import REDELIVER_AFTER
from churnsaver.jobs.worker import running_jobs
from tests.fixtures.channels import schedule, stored_message
from tests.fixtures.factories import create_customer, create_tenant_with_key
from tests.fixtures.jobs import clear_job_tables, eventually, with_redis
from tests.fixtures.smtp import Mailbox, free_port


async def test_a_scheduled_email_is_sent_by_the_jobs_after_commit(settings, db, tenant, smtp_server) -> None:
    url, mailbox = smtp_server
    await clear_job_tables(db)  # other tests' unsent messages are not this test's business
    customer = await create_customer(db, tenant.id, "cus_1", email="after-commit@example.com", name="Ana")
    smtp_settings = settings.model_copy(update={"smtp_url": url})
    async with running_jobs(smtp_settings, db, consume=True):
        outcome = await schedule(db, tenant.id, customer.id)

        async def sent() -> bool:
            return (await stored_message(db, tenant.id, outcome.message_id)).status == "sent"

        await eventually(sent, timeout=30)
    assert len(mailbox.to("after-commit@example.com")) == 1


class HoldingMailbox(Mailbox):
    """Accepts the mail, then holds its reply until released: the window in which the worker dies."""

    def __init__(self) -> None:
        super().__init__()
        self.received = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        self.envelopes.append(envelope)
        self.received.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        return "250 Message accepted for delivery"


def start_worker(settings, smtp_url: str) -> subprocess.Popen:
    env = {**os.environ, "CHURNSAVER_DATA_DIR": str(settings.data_dir), "CHURNSAVER_REDIS_URL": settings.redis_url}
    env["CHURNSAVER_SMTP_URL"] = smtp_url
    env.pop("CHURNSAVER_DATABASE_URL", None)
    if settings.database_url:
        env["CHURNSAVER_DATABASE_URL"] = settings.database_url
    return subprocess.Popen(
        [sys.executable, "-m", "churnsaver.backend.cli", "worker", "--threads", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_a_worker_killed_mid_send_never_sends_twice(settings, db) -> None:
    redis_settings = with_redis(settings)
    await clear_job_tables(db)
    tenant = await create_tenant_with_key(db)
    mailbox = HoldingMailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    url = f"smtp://127.0.0.1:{port}"
    try:
        customer = await create_customer(db, tenant.id, "cus_1", email="killed-worker@example.com")
        outcome = await schedule(db, tenant.id, customer.id)
        worker = start_worker(redis_settings, url)
        try:
            await eventually(lambda: mailbox.received.is_set(), timeout=60)
            assert (await stored_message(db, tenant.id, outcome.message_id)).status == "sending"
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        mailbox.release.set()

        # The job the dead worker took is sent again (the relay's redelivery, and a duplicate too),
        # by a fresh worker, after the dead one's lease has run out.
        long_ago = utcnow() - REDELIVER_AFTER - timedelta(minutes=1)
        async with db.system_unit_of_work() as session:
            await session.execute(
                update(OutboxJob).where(OutboxJob.dispatched_at.is_not(None)).values(dispatched_at=long_ago)
            )
        async with db.tenant_unit_of_work(tenant.id) as session:
            lapsed = {"lease_expires_at": utcnow() - timedelta(seconds=1)}
            await session.execute(update(Message).where(Message.id == outcome.message_id).values(**lapsed))
            enqueue(session, SEND, tenant_id=tenant.id, message_ids=[str(outcome.message_id)])
        worker = start_worker(redis_settings, url)
        try:

            async def resolved() -> bool:
                return (await stored_message(db, tenant.id, outcome.message_id)).status == "failed"

            await eventually(resolved, timeout=120)
        finally:
            worker.terminate()
            worker.wait(20)
        message = await stored_message(db, tenant.id, outcome.message_id)
        assert message.reason == INTERRUPTED
        assert len(mailbox.to("killed-worker@example.com")) == 1
    finally:
        mailbox.release.set()
        controller.stop()
