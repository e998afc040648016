"""Channels send throughput: scheduled emails through `deliver` (the channels.send job's body) to a
local aiosmtpd, in batches, with several jobs at once; or captured (no SMTP) to see the database part.

`python -m tests.bench.channels.send [sqlite|postgres] [messages] [concurrent jobs] [captured]`.
Prints messages/s and CPU per message (of the sending process; aiosmtpd runs in another) for scheduling (one
transaction, `schedule_messages` in batches of 500) and for delivering. PostgreSQL needs
CHURNSAVER_TEST_DATABASE_URL. Not part of `make bench`: campaigns' benchmark measures the whole path.
"""

import asyncio
import multiprocessing
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

from aiosmtpd.controller import Controller

from churnsaver.backend.channels import service
from churnsaver.backend.channels.delivery import deliver
from churnsaver.backend.channels.tasks import BATCH
from churnsaver.backend.core.db import Database
from churnsaver.backend.customers.models import Customer
from tests.fixtures.databases import migrated_database
from tests.fixtures.factories import create_tenant_with_key
from tests.fixtures.smtp import Mailbox, free_port

SCHEDULE_BATCH = 500  # messages per schedule_messages call


def smtp_server(port: int, stop: Event, accepted: Connection) -> None:
    """aiosmtpd in a process of its own, so that the benchmark's CPU figures are the sender's."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    stop.wait()
    controller.stop()
    accepted.send(len(mailbox.envelopes))


async def run(backend: str, count: int, concurrency: int, captured: bool) -> None:
    port = free_port()
    stop, (receiving, sending) = multiprocessing.Event(), multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=smtp_server, args=(port, stop, sending))
    server.start()
    await asyncio.sleep(1)  # the server listening
    try:
        async with migrated_database(backend, Path(tempfile.mkdtemp())) as settings:
            settings = settings.model_copy(update={"smtp_url": None if captured else f"smtp://127.0.0.1:{port}"})
            db = Database(settings)
            tenant = await create_tenant_with_key(db)
            customers = [
                Customer(tenant_id=tenant.id, external_id=f"c{n}", email=f"c{n}@example.com", name=f"C {n}")
                for n in range(count)
            ]
            async with db.tenant_unit_of_work(tenant.id) as session:
                session.add_all(customers)
            started, started_cpu = time.perf_counter(), time.process_time()
            async with db.tenant_unit_of_work(tenant.id) as session:
                requests = [
                    service.MessageRequest(
                        customer_id=customer.id,
                        case_id=None,
                        channel="email",
                        template="winback",
                        idempotency_key=f"bench:{customer.id}",
                    )
                    for customer in customers
                ]
                ids = [
                    outcome.message_id
                    for start in range(0, count, SCHEDULE_BATCH)
                    for outcome in await service.schedule_messages(
                        session, tenant.id, requests[start : start + SCHEDULE_BATCH]
                    )
                ]
            scheduled, scheduled_cpu = time.perf_counter(), time.process_time()
            waiting: asyncio.Queue = asyncio.Queue()
            for message_id in ids:
                waiting.put_nowait(message_id)

            async def job_runner() -> None:
                while not waiting.empty():
                    await deliver(db, settings, tenant.id, waiting.get_nowait(), batch=BATCH)

            await asyncio.gather(*(job_runner() for _ in range(concurrency)))
            delivered, delivered_cpu = time.perf_counter(), time.process_time()
            stop.set()
            accepted = "captured" if captured else f"{receiving.recv()} accepted by aiosmtpd"
            print(
                f"{backend}: schedule {count / (scheduled - started):.0f}/s "
                f"({(scheduled_cpu - started_cpu) / count * 1000:.2f} ms CPU each), "
                f"deliver {count / (delivered - scheduled):.0f}/s "
                f"({(delivered_cpu - scheduled_cpu) / count * 1000:.2f} ms CPU each; {accepted})"
            )
            await db.dispose()
    finally:
        stop.set()
        server.join()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    asyncio.run(
        run(
            arguments[0] if arguments else "sqlite",
            int(arguments[1]) if len(arguments) > 1 else 3000,
            int(arguments[2]) if len(arguments) > 2 else 4,
            "captured" in arguments,
        )
    )
