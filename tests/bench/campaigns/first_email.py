"""`python -m tests.bench first-email`: from a hard-decline `payment.failed` webhook to the first
email of its campaign accepted by an SMTP server, while other webhooks keep arriving.

The cases bench's machinery (tests/bench/cases/latency.py) with an aiosmtpd server named by
CHURNSAVER_SMTP_URL in place of the subscription: per backend, the embedded default (SQLite,
`serve` with its jobs in-process) and, with CHURNSAVER_TEST_DATABASE_URL and
CHURNSAVER_TEST_REDIS_URL, PostgreSQL + Redis + a separate `churnsaver worker`. The tenant's
default playbooks are created first, with the hard-decline playbook's holdout at 0 (a held-out
probe would get no email) and quiet hours off (a probe at night would wait for the morning). Each
probe customer gets a short billing history first; then a background of signed Whop deliveries
arrives open loop at `background_rate`/s and `probes` hard declines are posted at exponential
gaps. A probe's latency runs from its webhook's 200 answer to aiosmtpd accepting the mail to its
customer. Target p99 < 2 s; a probe whose email never comes fails the run. Writes
var/bench/first_email.json.
"""

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from churnsaver.backend.campaigns import service as campaigns
from churnsaver.backend.channels.settings import load_settings, store_settings
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.customers.events import Source
from churnsaver.tenants.auth import AuthSubject
from tests.bench.cases.latency import (
    BenchFailed,
    Prober,
    flush_redis,
    history,
    percentiles,
    probe_request,
    probe_user,
    requests_for,
    running_backend,
)
from tests.bench.cases.open_loop import send_open_loop
from tests.bench.ingest.deliveries import whop_envelopes
from tests.bench.ingest.load import post_all
from tests.bench.ingest.verify import wait_jobs_done
from tests.bench.server import REPO_ROOT
from tests.bench.suite import run_on_backends
from tests.fixtures.databases import migrated_database
from tests.fixtures.factories import create_tenant_with_key
from tests.fixtures.senders import create_webhook_target
from tests.fixtures.smtp import free_port

TARGET_P99_SECONDS = 2.0
RUN_TIMEOUT_SECONDS = 900
SETTLE_TIMEOUT_SECONDS = 180


@dataclass
class ArrivalMailbox:
    """When the first mail to each recipient was accepted (monotonic)."""

    first_at: dict[str, float] = field(default_factory=dict)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        now = time.monotonic()
        for address in envelope.rcpt_tos:
            self.first_at.setdefault(address.lower(), now)
        return "250 Message accepted for delivery"

    async def wait_for(self, addresses: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not all(address in self.first_at for address in addresses):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


@dataclass
class FirstEmailConfig:
    probes: int = 200
    probe_interval: float = 0.3
    background_rate: float = 200.0
    background_members: int = 2_000
    lead_in: float = 5.0
    wait_after: float = 60.0
    worker_threads: int = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email-probes", type=int, default=200, help="hard-decline webhooks timed to their email")
    parser.add_argument("--email-probe-interval", type=float, default=0.3, help="mean seconds between probes")
    parser.add_argument("--email-background-rate", type=float, default=200.0, help="other webhooks per second")
    parser.add_argument(
        "--email-redis-url",
        default=os.environ.get("CHURNSAVER_TEST_REDIS_URL"),
        help="Redis for the scaled-out run (emptied first); default CHURNSAVER_TEST_REDIS_URL",
    )
    parser.add_argument("--first-email-output", type=Path, default=REPO_ROOT / "var" / "bench" / "first_email.json")


def address(user: str) -> str:
    return f"{user}@example.com".lower()  # the Whop fixtures' email of a user


async def prepare_tenant(db: Database, tenant_id: uuid.UUID) -> None:
    """The default playbooks, the hard-decline one without holdout, and no quiet hours."""
    subject = AuthSubject.system(tenant_id)
    async with db.tenant_unit_of_work(tenant_id) as session:
        page = await campaigns.list_campaigns(session, subject, first=100)
        hard = next(campaign for campaign in page.rows if campaign.playbook == "payment_failed_hard")
        await campaigns.update_campaign(session, subject, hard.id, holdout_share=0.0)
        settings = (await load_settings(session, tenant_id)).updated(quiet_hours_start="00:00", quiet_hours_end="00:00")
        await store_settings(session, tenant_id, settings)


async def measure(settings: Settings, config: FirstEmailConfig, mailbox: ArrivalMailbox) -> dict[str, Any]:
    db = Database(settings)
    try:
        tenant = await create_tenant_with_key(db, name="First email bench")
        await prepare_tenant(db, tenant.id)
        target = await create_webhook_target(db, settings, tenant.id, Source.whop)
        run, now = uuid.uuid4().hex[:6], utcnow()
        seconds = config.lead_in + config.probes * config.probe_interval * 2 + config.wait_after
        count = int(config.background_rate * seconds)
        background = whop_envelopes(
            count, members=config.background_members, start=now - timedelta(seconds=30 * count), prefix=f"q{run}"
        )
        users = [probe_user(run, number) for number in range(config.probes)]
        async with running_backend(settings, config.worker_threads) as (base_url, server_pid, _worker_pid):
            warm = await post_all(
                base_url, requests_for(target, history(run, config.probes, now)), concurrency=16, server_pid=server_pid
            )
            if set(warm.statuses) != {200}:
                raise BenchFailed(f"the probes' histories were answered {dict(warm.statuses)}")
            if not await wait_jobs_done(db, tenant.id, SETTLE_TIMEOUT_SECONDS):
                raise BenchFailed("the probes' histories were not processed in time")
            prober = Prober(base_url)
            await prober.post(probe_user(run + "warm", 0), probe_request(target, run + "warm", 0))
            if not await mailbox.wait_for([address(probe_user(run + "warm", 0))], SETTLE_TIMEOUT_SECONDS):
                raise BenchFailed("the warm-up probe's email never came")
            stop = asyncio.Event()
            sender = asyncio.create_task(
                send_open_loop(base_url, requests_for(target, background), rate=config.background_rate, stop=stop)
            )
            try:
                await asyncio.sleep(config.lead_in)
                rng = random.Random(13)
                for number, user in enumerate(users):
                    await asyncio.sleep(rng.expovariate(1 / config.probe_interval))
                    await prober.post(user, probe_request(target, run, number))
                in_time = await mailbox.wait_for([address(user) for user in users], config.wait_after)
            finally:
                stop.set()
                sent = await sender
            if not in_time:
                await mailbox.wait_for([address(user) for user in users], SETTLE_TIMEOUT_SECONDS)
    finally:
        await db.dispose()
    latencies = [
        mailbox.first_at[address(user)] - prober.accepted_at[user]
        for user in users
        if address(user) in mailbox.first_at
    ]
    result: dict[str, Any] = {
        "config": config.__dict__,
        "probes_emailed": len(latencies),
        "probes_emailed_within_wait_after": in_time,
        "latency": percentiles(latencies),
        "target": f"p99 < {TARGET_P99_SECONDS * 1000:.0f} ms",
        "target_met": bool(latencies) and in_time and percentiles(latencies)["p99_ms"] < TARGET_P99_SECONDS * 1000,
        "background": sent.summary(config.background_rate),
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
    }
    if len(latencies) != config.probes or set(sent.statuses) - {200}:
        result["error"] = (
            f"{config.probes - len(latencies)} probes' emails never came; background answers {dict(sent.statuses)}"
        )
    return result


async def bench_backend(backend: str, arguments: argparse.Namespace) -> dict[str, Any]:
    config = FirstEmailConfig(
        probes=arguments.email_probes,
        probe_interval=arguments.email_probe_interval,
        background_rate=arguments.email_background_rate,
    )
    if backend == "postgres" and not arguments.email_redis_url:
        return {"skipped": "the scaled-out run needs Redis: set CHURNSAVER_TEST_REDIS_URL or --email-redis-url"}
    mailbox = ArrivalMailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with tempfile.TemporaryDirectory(prefix=f"churnsaver-bench-email-{backend}-") as data_dir:
            async with migrated_database(backend, Path(data_dir)) as settings:
                redis_url = arguments.email_redis_url if backend == "postgres" else None
                if redis_url:
                    await asyncio.to_thread(flush_redis, redis_url)
                settings = settings.model_copy(update={"redis_url": redis_url, "smtp_url": f"smtp://127.0.0.1:{port}"})
                try:
                    return await measure(settings, config, mailbox)
                except (BenchFailed, OSError) as error:
                    return {"error": f"{type(error).__name__}: {error}"[:2000]}
    finally:
        controller.stop()


def format_backend(title: str, result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"== {title}: skipped ({result['skipped']})"
    if not result.get("latency"):
        return f"== {title}: FAILED: {result['error']}"
    config, latency, background = result["config"], result["latency"], result["background"]
    verdict = "PASS" if result["target_met"] else "FAIL"
    lines = [
        f"== {title}: hard-decline payment.failed webhook -> first email accepted by aiosmtpd, "
        f"{config['probes']} probes, {config['background_rate']:.0f} other webhooks/s "
        f"(achieved {background['rate_achieved_per_second']}/s)",
        f"  emailed {result['probes_emailed']}: p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms, "
        f"max {latency['max_ms']} ms; target {result['target']}: {verdict}",
    ]
    if "error" in result:
        lines.append(f"  FAILED: {result['error']}")
    return "\n".join(lines)


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    return await run_on_backends(
        arguments,
        benchmark="first email: hard-decline payment.failed webhook to its first email at aiosmtpd",
        output=arguments.first_email_output,
        bench_backend=bench_backend,
        format_backend=format_backend,
    )
