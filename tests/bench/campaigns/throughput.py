"""`python -m tests.bench campaigns`: due campaign steps to an SMTP server, none twice.

For each backend: the embedded default (SQLite, the jobs in-process as `serve` runs them) and,
when CHURNSAVER_TEST_DATABASE_URL and CHURNSAVER_TEST_REDIS_URL are set, PostgreSQL + Redis with
a separate `churnsaver worker` process. A tenant is seeded with `steps` due steps (one email step of
one open case per customer, seed.py), an aiosmtpd server is started and named by
CHURNSAVER_SMTP_URL, and `dispatchers` `campaigns.dispatch_due` jobs are queued at once. The clock
runs from the queueing to the last mail accepted by the SMTP server. Checked afterwards: every
customer got exactly one mail (by recipient and by Message-ID), every step is `sent` and every
message `sent`. The target is >= 500 messages/s; a mail missing or sent twice fails the run (exit
1), a missed target does not. Prints a table per backend and writes var/bench/campaigns.json.
"""

import argparse
import asyncio
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select

from churnsaver.backend.campaigns.enrollment import DISPATCH_DUE
from churnsaver.backend.campaigns.models import CampaignStepDue
from churnsaver.backend.channels.models import Message
from churnsaver.backend.core.db import Database
from churnsaver.jobs.outbox import enqueue
from churnsaver.jobs.worker import running_jobs
from tests.bench.campaigns.seed import seed_due_steps
from tests.bench.dataset import settle_statistics
from tests.bench.server import REPO_ROOT, running_worker
from tests.bench.suite import run_on_backends
from tests.fixtures.databases import migrated_database
from tests.fixtures.factories import create_tenant_with_key
from tests.fixtures.smtp import free_port

TARGET_PER_SECOND = 500
RUN_TIMEOUT_SECONDS = 1_800


@dataclass
class CountingMailbox:
    """Keeps only what the check needs: each mail's recipients and Message-ID, and when it came."""

    recipients: Counter[str] = field(default_factory=Counter)
    message_ids: Counter[str] = field(default_factory=Counter)
    last_at: float = 0.0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            self.recipients[address] += 1
        content = envelope.original_content or b""
        header = next((line for line in content.split(b"\r\n") if line.lower().startswith(b"message-id:")), b"")
        self.message_ids[header.split(b":", 1)[-1].strip().decode()] += 1
        self.last_at = time.perf_counter()
        return "250 Message accepted for delivery"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--campaign-steps", type=int, default=100_000, help="due steps to send")
    parser.add_argument("--campaign-dispatchers", type=int, default=4, help="dispatch jobs queued at once")
    parser.add_argument("--campaign-worker-threads", type=int, default=8)
    parser.add_argument(
        "--campaign-redis-url",
        default=os.environ.get("CHURNSAVER_TEST_REDIS_URL"),
        help="Redis for the scaled-out run (emptied first); default CHURNSAVER_TEST_REDIS_URL",
    )
    parser.add_argument("--campaigns-output", type=Path, default=REPO_ROOT / "var" / "bench" / "campaigns.json")


async def bench_backend(backend: str, arguments: argparse.Namespace) -> dict[str, Any]:
    if backend == "postgres" and not arguments.campaign_redis_url:
        return {"skipped": "PostgreSQL is benched with Redis and a worker: set CHURNSAVER_TEST_REDIS_URL"}
    count = arguments.campaign_steps
    mailbox = CountingMailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with tempfile.TemporaryDirectory(prefix=f"churnsaver-bench-campaigns-{backend}-") as data_dir:
            async with migrated_database(backend, Path(data_dir)) as base:
                redis_url = arguments.campaign_redis_url if backend == "postgres" else None
                if redis_url:
                    redis.Redis.from_url(redis_url).flushdb()
                settings = base.model_copy(
                    update={"smtp_url": f"smtp://127.0.0.1:{port}", "redis_url": redis_url, "log_level": "warning"}
                )
                db = Database(settings)
                try:
                    tenant = await create_tenant_with_key(db)
                    seeding = time.perf_counter()
                    await seed_due_steps(db, tenant.id, count)
                    await settle_statistics(db)
                    seeded = time.perf_counter() - seeding
                    elapsed, dispatched = await _send_all(db, settings, tenant.id, mailbox, count, arguments)
                    stored = await _stored(db, tenant.id)
                finally:
                    await db.dispose()
    finally:
        controller.stop()
    twice = sum(1 for n in mailbox.recipients.values() if n > 1) + sum(1 for n in mailbox.message_ids.values() if n > 1)
    result: dict[str, Any] = {
        "config": {
            "steps": count,
            "dispatchers": arguments.campaign_dispatchers,
            "worker_threads": arguments.campaign_worker_threads,
            "jobs": "churnsaver worker (own process)" if backend == "postgres" else "in-process, as serve runs them",
        },
        "seed_seconds": round(seeded, 1),
        "seconds": round(elapsed, 2),
        "dispatched_seconds": round(dispatched, 2) if dispatched is not None else None,
        "messages_per_second": round(len(mailbox.recipients) / elapsed, 1) if elapsed else None,
        "mails": len(mailbox.recipients),
        "sent_twice": twice,
        "stored": stored,
        "target": f">= {TARGET_PER_SECOND} messages/s",
        "load_average_after": os.getloadavg(),
    }
    if len(mailbox.recipients) != count or twice or stored["steps"] != {"sent": count}:
        result["error"] = f"{count} mails expected once each; got {len(mailbox.recipients)}, {twice} twice"
    return result


async def _send_all(
    db: Database, settings: Any, tenant_id: Any, mailbox: CountingMailbox, count: int, arguments: argparse.Namespace
) -> tuple[float, float | None]:
    """Queue the dispatch jobs and wait for the last mail: the seconds from queueing to it, and to
    the last step dispatched (handed to channels)."""
    threads = arguments.campaign_worker_threads

    async def go() -> tuple[float, float | None]:
        started = time.perf_counter()
        async with db.tenant_unit_of_work(tenant_id) as session:
            for _ in range(arguments.campaign_dispatchers):
                enqueue(session, DISPATCH_DUE, tenant_id=tenant_id)
        deadline = started + RUN_TIMEOUT_SECONDS
        dispatched = None
        while len(mailbox.recipients) < count and time.perf_counter() < deadline:
            await asyncio.sleep(0.5)
            if dispatched is None and not await _pending(db, tenant_id):
                dispatched = time.perf_counter() - started
        return (mailbox.last_at or time.perf_counter()) - started, dispatched

    if settings.redis_url:
        async with running_worker(settings, threads), running_jobs(settings, db, consume=False):
            return await go()
    async with running_jobs(settings, db, consume=True, worker_threads=threads):
        return await go()


async def _pending(db: Database, tenant_id: Any) -> bool:
    async with db.tenant_session(tenant_id) as session:
        statement = select(CampaignStepDue.id).where(CampaignStepDue.status == "pending").limit(1)
        return (await session.execute(statement)).first() is not None


async def _stored(db: Database, tenant_id: Any) -> dict[str, Any]:
    async with db.tenant_session(tenant_id) as session:
        steps = dict(
            (await session.execute(select(CampaignStepDue.status, func.count()).group_by(CampaignStepDue.status))).all()
        )
        messages = dict((await session.execute(select(Message.status, func.count()).group_by(Message.status))).all())
    return {"steps": steps, "messages": messages}


def format_backend(title: str, result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"== {title}: skipped ({result['skipped']})"
    config = result["config"]
    verdict = (
        "FAILED: " + result["error"]
        if "error" in result
        else ("met" if (result["messages_per_second"] or 0) >= TARGET_PER_SECOND else "missed")
    )
    return "\n".join(
        [
            f"== {title}: {config['steps']:,} due steps -> aiosmtpd, {config['dispatchers']} dispatch jobs, "
            f"jobs {config['jobs']}",
            f"  {result['mails']:,} mails in {result['seconds']} s = {result['messages_per_second']} messages/s "
            f"(target {result['target']}: {verdict}); sent twice: {result['sent_twice']}",
            f"  every step handed to channels after {result['dispatched_seconds']} s; stored: {result['stored']}",
        ]
    )


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    return await run_on_backends(
        arguments,
        benchmark="campaigns: due steps to aiosmtpd, none twice",
        output=arguments.campaigns_output,
        bench_backend=bench_backend,
        format_backend=format_backend,
    )
