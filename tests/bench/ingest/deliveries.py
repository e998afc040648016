"""What the ingest benchmark sends: signed Whop v1 deliveries and events-API batches.

Deliveries are built with the test fixtures' payload builders and senders, so they are what
Whop sends: compact JSON envelopes of the real shapes and sizes, signed per Standard Webhooks.
Members recur, so processing updates customers and subscriptions as it would in production.
Every event id is unique within a run: each delivery must be stored once, and is.
"""

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fixtures import billing_payloads as payloads
from tests.fixtures.senders import SignedDelivery, whop_v1_delivery

START = datetime(2026, 1, 1, tzinfo=UTC)
PLANS = {"plan_Basic": 9.0, "plan_Pro": 29.0, "plan_Elite": 99.0}
FAILURES = ["Your card has insufficient funds.", "Your card was declined.", "Your card has expired."]
USAGE_EVENTS = ["report_exported", "dashboard_viewed", "invite_sent", "seat_added"]

Builder = Callable[[random.Random, str, str, datetime, str], dict[str, Any]]


def _succeeded(rng: random.Random, user: str, membership: str, at: datetime, event_id: str) -> dict[str, Any]:
    plan = rng.choice(list(PLANS))
    return payloads.whop_payment_succeeded(
        user_id=user, membership_id=membership, at=at, plan_id=plan, total=PLANS[plan], event_id=event_id
    )


def _failed(rng: random.Random, user: str, membership: str, at: datetime, event_id: str) -> dict[str, Any]:
    return payloads.whop_payment_failed(
        user_id=user, membership_id=membership, at=at, failure_message=rng.choice(FAILURES), event_id=event_id
    )


def _activated(rng: random.Random, user: str, membership: str, at: datetime, event_id: str) -> dict[str, Any]:
    plan = rng.choice(list(PLANS))
    return payloads.whop_membership_activated(
        user_id=user, membership_id=membership, at=at, plan_id=plan, event_id=event_id
    )


def _cancel_scheduled(rng: random.Random, user: str, membership: str, at: datetime, event_id: str) -> dict[str, Any]:
    return payloads.whop_membership_cancel_at_period_end_changed(
        user_id=user, membership_id=membership, at=at, cancel_at_period_end=rng.random() < 0.7, event_id=event_id
    )


def _deactivated(_rng: random.Random, user: str, membership: str, at: datetime, event_id: str) -> dict[str, Any]:
    return payloads.whop_membership_deactivated(user_id=user, membership_id=membership, at=at, event_id=event_id)


def _refund(_rng: random.Random, user: str, membership: str, at: datetime, event_id: str) -> dict[str, Any]:
    return payloads.whop_refund_created(user_id=user, membership_id=membership, at=at, event_id=event_id)


# Roughly a subscription business's mix: mostly renewals, some failures and lifecycle changes.
WHOP_MIX: list[tuple[Builder, int]] = [
    (_succeeded, 50),
    (_failed, 15),
    (_activated, 15),
    (_cancel_scheduled, 10),
    (_deactivated, 5),
    (_refund, 5),
]


def whop_envelopes(
    count: int, *, members: int, seed: int = 7, start: datetime = START, prefix: str = "b"
) -> list[dict[str, Any]]:
    """`count` Whop v1 envelopes for `members` recurring members (`user_<prefix>…`), each with a
    unique id, 30 s of event time apart from `start`."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    builders, weights = zip(*WHOP_MIX, strict=True)
    envelopes = []
    for number in range(count):
        member = rng.randrange(members)
        build = rng.choices(builders, weights)[0]
        at = start + timedelta(seconds=30 * number)
        user, membership = f"user_{prefix}{member:07d}", f"mem_{prefix}{member:07d}"
        envelopes.append(build(rng, user, membership, at, f"msg_{run}_{number:08d}"))
    return envelopes


def signed(secret: str, envelopes: list[dict[str, Any]]) -> list[SignedDelivery]:
    """Signed now: Standard Webhooks refuses timestamps more than 5 minutes old."""
    return [whop_v1_delivery(secret, envelope, msg_id=envelope["id"]) for envelope in envelopes]


def events_batches(batches: int, size: int, *, customers: int, seed: int = 11) -> list[dict[str, Any]]:
    """`batches` events-API bodies of `size` items: usage events, identifies and billing events."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    bodies = []
    for batch in range(batches):
        items = []
        for position in range(size):
            number = batch * size + position
            customer = f"acct_{rng.randrange(customers):07d}"
            at = (START + timedelta(seconds=10 * number)).isoformat()
            item: dict[str, Any] = {"messageId": f"m_{run}_{number:08d}", "customerId": customer, "timestamp": at}
            roll = rng.random()
            if roll < 0.1:
                item |= {"type": "identify", "traits": {"email": f"{customer}@example.com", "seats": rng.randrange(50)}}
            elif roll < 0.2:
                item |= {
                    "type": "track",
                    "event": "payment.failed",
                    "properties": {"amount": 2900, "currency": "usd", "decline_code": "insufficient_funds"},
                }
            else:
                item |= {
                    "type": "track",
                    "event": rng.choice(USAGE_EVENTS),
                    "properties": {"count": rng.randrange(1, 20), "page": f"/reports/{rng.randrange(100)}"},
                }
            items.append(item)
        bodies.append({"batch": items})
    return bodies
