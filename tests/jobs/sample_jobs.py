"""Jobs that exist only for the jobs tests, and a record of what they did.

They run on the actors' event-loop thread while the test awaits on its own loop, so what they
did is kept in a lock-guarded record the test polls (see `tests.fixtures.jobs.eventually`).
"""

import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import timedelta

from sqlalchemy import select

from churnsaver.backend.customers.models import Customer
from churnsaver.jobs.registry import job
from churnsaver.jobs.runtime import runtime
from churnsaver.jobs.scheduler import every

TICK_INTERVAL = timedelta(hours=1)
FAST_BACKOFF = {"min_backoff": timedelta(milliseconds=20), "max_backoff": timedelta(milliseconds=100)}


class JobRecord:
    """Which tokens each job finished with, and when every attempt started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.finished: Counter[str] = Counter()
        self.attempts: defaultdict[str, list[float]] = defaultdict(list)
        self.tenant_ids: dict[str, str] = {}

    def attempt(self, token: str) -> int:
        with self._lock:
            self.attempts[token].append(time.monotonic())
            return len(self.attempts[token])

    def finish(self, token: str) -> None:
        with self._lock:
            self.finished[token] += 1

    def reset(self) -> None:
        with self._lock:
            self.finished.clear()
            self.attempts.clear()
            self.tenant_ids.clear()


record = JobRecord()


@job("tests.record")
async def record_token(token: str) -> None:
    record.attempt(token)
    record.finish(token)


@job("tests.record_items", merge="items", merge_limit=5)
async def record_items(token: str, items: list[str]) -> None:
    """One run per message: finished under `token:` and its items, in the order it got them."""
    record.attempt(token)
    record.finish(f"{token}:{','.join(items)}")


@job("tests.record_tenant")
async def record_tenant(token: str, tenant_id: str) -> None:
    record.tenant_ids[token] = tenant_id
    record.finish(token)


@job("tests.flaky", max_retries=5, **FAST_BACKOFF)
async def flaky(token: str, failures: int) -> None:
    """Fails its first `failures` attempts, then succeeds."""
    if record.attempt(token) <= failures:
        raise ConnectionError(f"provider unavailable for {token}")
    record.finish(token)


@job("tests.always_fails", max_retries=2, **FAST_BACKOFF)
async def always_fails(token: str) -> None:
    record.attempt(token)
    raise ValueError(f"cannot process {token}")


@job("tests.mark_contacted")
async def mark_contacted(tenant_id: str, customer_id: str, token: str) -> None:
    """Idempotent: the first run marks the customer contacted, later runs find it done."""
    record.attempt(token)
    async with runtime().db.tenant_unit_of_work(uuid.UUID(tenant_id)) as session:
        statement = select(Customer).where(
            Customer.tenant_id == uuid.UUID(tenant_id), Customer.id == uuid.UUID(customer_id)
        )
        customer = (await session.execute(statement)).scalar_one_or_none()
        if customer is not None and not customer.traits.get("contacted"):
            customer.traits = {**customer.traits, "contacted": True}
    record.finish(token)


@job("tests.tick")
async def tick() -> None:
    record.finish("tick")


every(TICK_INTERVAL, "tests.tick")
