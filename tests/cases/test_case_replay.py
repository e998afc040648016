"""The 10,000-event billing stream, replayed shuffled, duplicated and in random batches, ends in
the same cases as in order; and the failed-payment and win-back cases are those an independent
recomputation from the raw events finds.

The oracle below is written apart from derivation.py, in another shape: it reads the raw
canonical events (never the timeline or its derived rows), folds subscription fields itself, and
settles each case by searching forward from its trigger, where derivation.py walks every event
once. It covers PAYMENT_FAILED and CANCELED (the kinds with the most rules: stale triggers,
joining, recovery, loss, windows, verification and its LOST turn); the other kinds the stream
produces (scheduled cancellations, downgrades) are checked for order independence.
"""

import itertools
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.cases.reconcile import reconcile_customers
from churnsaver.backend.core.db import Database
from churnsaver.backend.customers.apply import apply_events
from churnsaver.backend.customers.events import CanonicalEvent
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.ingest.tasks import normalize_delivery
from tests.fixtures.billing_stream import StreamDelivery, billing_stream, with_duplicates
from tests.fixtures.factories import create_tenant_with_key

STREAM_EVENTS = 10_000
NOW = datetime(2026, 2, 1, tzinfo=UTC)  # the stream runs on past it: some cases are still open
WINDOW = timedelta(days=30)
VERIFY = timedelta(days=14)
ENDED = {"canceled", "expired", "completed", "incomplete_expired"}

CaseRow = tuple[str, str, str, datetime, datetime | None, datetime | None, str]


def events_of(deliveries: list[StreamDelivery]) -> list[CanonicalEvent]:
    return [event for delivery in deliveries for event in normalize_delivery(delivery.source, delivery.body)]


async def replay(db: Database, tenant_id: uuid.UUID, events: list[CanonicalEvent], sizes) -> None:
    """Apply in batches, each followed by its customers' evaluation, as ingestion's jobs do."""
    start = 0
    while start < len(events):
        batch = events[start : start + next(sizes)]
        start += len(batch)
        async with db.tenant_unit_of_work(tenant_id) as session:
            result = await apply_events(session, tenant_id, batch)
        async with db.tenant_unit_of_work(tenant_id) as session:
            await reconcile_customers(session, tenant_id, result.billing_customers, NOW)


async def stored(db: Database, tenant_id: uuid.UUID) -> list[CaseRow]:
    async with db.tenant_session(tenant_id) as session:
        statement = select(
            Customer.external_id,
            RecoveryCase.kind,
            RecoveryCase.status,
            RecoveryCase.opened_at,
            RecoveryCase.resolved_at,
            RecoveryCase.verified_at,
            RecoveryCase.trigger_key,
        ).join(Customer, Customer.id == RecoveryCase.customer_id)
        rows = (await session.execute(statement.where(RecoveryCase.tenant_id == tenant_id))).all()
    return sorted(tuple(row) for row in rows)  # type: ignore[misc]


# The oracle.


@dataclass
class Happening:
    at: datetime
    key: str
    kind: str  # failed, paid, ended, runs, breaker
    sub: tuple[str, str] | None = None
    invoice: str | None = None
    amount: Any = None

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.at, self.key)


def happenings_of(events: list[CanonicalEvent]) -> dict[str, list[Happening]]:
    """Per customer (its provider id), what the raw events say happened, in event-time order."""
    unique = {(event.source, event.dedupe_key): event for event in events}
    ordered = sorted(unique.values(), key=lambda event: (event.occurred_at, event.dedupe_key))
    said: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    found: dict[str, list[Happening]] = defaultdict(list)
    for event in ordered:
        out = found[event.customer.provider_id]
        at, key = event.occurred_at, event.dedupe_key
        sub = None
        before: dict[str, Any] = {}
        if event.subscription is not None:
            sub = (event.customer.provider, event.subscription.external_id)
            before = dict(said[sub])
            for name in ("status", "cancel_at_period_end"):
                if getattr(event.subscription, name) is not None:
                    said[sub][name] = getattr(event.subscription, name)
        after = said[sub] if sub else {}
        props = event.properties
        if event.type == "payment_failed":
            if before.get("status") in ENDED:
                out.append(Happening(at, key, "failed_after_end", sub, props.get("invoice_id")))
            else:
                out.append(Happening(at, key, "failed", sub, props.get("invoice_id")))
        if event.type == "payment_succeeded":
            out.append(Happening(at, key, "paid", sub, props.get("invoice_id"), props.get("amount")))
        if event.type in ("refund", "dispute"):
            out.append(Happening(at, key, "breaker", sub))
        if sub is not None:
            was_ended, is_ended = before.get("status") in ENDED, after.get("status") in ENDED
            if is_ended and not was_ended:
                out.append(Happening(at, key, "ended", sub))
                out.append(Happening(at, key, "breaker", sub))
            if after.get("status") is not None and not is_ended and (before.get("status") is None or was_ended):
                out.append(Happening(at, key, "runs", sub))
            if after.get("cancel_at_period_end") and not before.get("cancel_at_period_end") and not is_ended:
                out.append(Happening(at, key + ":cancel_scheduled", "breaker", sub))
    return found


def settle_recovery(happenings: list[Happening], recovered: datetime) -> tuple[str, datetime | None, datetime | None]:
    """(status, resolved_at, verified_at) of a case recovered at `recovered`."""
    breakers = [h for h in happenings if h.kind == "breaker" and recovered <= h.at <= recovered + VERIFY]
    if breakers:
        return "lost", min(h.at for h in breakers), None
    if recovered + VERIFY <= NOW:
        return "recovered", recovered, recovered + VERIFY
    return "recovered", recovered, None


def payment_failed_cases(
    happenings: list[Happening],
) -> list[tuple[str, datetime, str, datetime | None, datetime | None]]:
    """Each failure that is not stale opens a case unless one is open (then it joins it); the case
    is settled by the first thing after it that recovers or loses it, else by its window."""
    cases = []
    open_until: tuple[datetime, str] | None = None  # while a case is open: when it stops being
    for index, happening in enumerate(happenings):
        if not is_fresh_failure(happenings, index) or (open_until is not None and happening.order < open_until):
            continue
        opened, subs, invoice = happening.at, {happening.sub} - {None}, happening.invoice
        status: tuple[str, datetime | None, datetime | None] = ("open", None, None)
        open_until = (datetime.max.replace(tzinfo=UTC), "")
        for position in range(index + 1, len(happenings)):
            later = happenings[position]
            if later.at > opened + WINDOW:
                break
            if later.kind == "failed" and later.sub and is_fresh_failure(happenings, position):
                subs.add(later.sub)  # a joining failure
            pays = later.kind == "paid" and (later.amount is None or later.amount > 0)
            if pays and (not subs or later.sub in subs or (invoice is not None and later.invoice == invoice)):
                status, open_until = settle_recovery(happenings, later.at), later.order
                break
            if later.kind == "ended":
                status, open_until = ("lost", later.at, None), later.order
                break
        if status[0] == "open" and opened + WINDOW <= NOW:
            status, open_until = ("lost", opened + WINDOW, None), (opened + WINDOW, "")
        cases.append((happening.key, opened, *status))
    return cases


def is_fresh_failure(happenings: list[Happening], index: int) -> bool:
    """A failure, not after its subscription ended, of an invoice not paid before it."""
    failure = happenings[index]
    if failure.kind != "failed":
        return False
    return failure.invoice is None or not any(
        h.kind == "paid" and h.invoice == failure.invoice for h in happenings[:index]
    )


def canceled_cases(happenings: list[Happening]) -> list[tuple[str, datetime, str, datetime | None, datetime | None]]:
    cases = []
    busy_until: tuple[datetime, str] | None = None
    for index, happening in enumerate(happenings):
        if happening.kind != "ended" or (busy_until is not None and happening.order < busy_until):
            continue
        opened = happening.at
        status: tuple[str, datetime | None, datetime | None] = ("open", None, None)
        end = (NOW, "\uffff")
        runs = [h for h in happenings[index + 1 :] if h.kind == "runs" and h.at <= opened + WINDOW]
        if runs:
            status, end = settle_recovery(happenings, runs[0].at), runs[0].order
        elif opened + WINDOW <= NOW:
            status, end = ("lost", opened + WINDOW, None), (opened + WINDOW, "")
        cases.append((happening.key, opened, *status))
        busy_until = end
    return cases


def oracle(events: list[CanonicalEvent]) -> list[tuple[str, str, str, datetime, datetime | None, datetime | None]]:
    expected = []
    for customer, happenings in happenings_of(events).items():
        for _key, opened, status, resolved, verified in payment_failed_cases(happenings):
            expected.append((customer, "payment_failed", status, opened, resolved, verified))
        for _key, opened, status, resolved, verified in canceled_cases(happenings):
            expected.append((customer, "canceled", status, opened, resolved, verified))
    return sorted(expected)


@pytest.fixture(scope="module")
def stream() -> list[StreamDelivery]:
    return billing_stream(STREAM_EVENTS)


@pytest.mark.slow
async def test_cases_replay_in_any_order_and_match_an_independent_recomputation(db, stream) -> None:
    events = events_of(stream)
    in_order = await create_tenant_with_key(db)
    await replay(db, in_order.id, events, itertools.repeat(500))
    expected = await stored(db, in_order.id)
    kinds = {row[1] for row in expected}
    assert kinds >= {"payment_failed", "canceled", "cancellation_scheduled", "downgraded"}, kinds
    assert {row[2] for row in expected} == {"open", "recovered", "lost"}

    checked = sorted(row[:6] for row in expected if row[1] in ("payment_failed", "canceled"))
    assert checked == oracle(events)

    for seed in (1, 2):
        rng = random.Random(seed)
        shuffled = with_duplicates(stream, 0.10, rng)
        rng.shuffle(shuffled)
        tenant = await create_tenant_with_key(db)
        await replay(db, tenant.id, events_of(shuffled), (rng.randint(50, 500) for _ in itertools.count()))
        assert await stored(db, tenant.id) == expected
