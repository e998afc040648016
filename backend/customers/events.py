"""The canonical events every source is normalized into, and what applying one needs to know.

Normalizers (one module per source) turn a raw delivery into `CanonicalEvent`s; `apply.py`
applies them: upsert the customer by provider id, append to the timeline, and move the
subscription's state forward if the event is newer than what it holds.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Source(StrEnum):
    """Where an event came from. Also the `source` of the timeline entries it produces."""

    whop = "whop"
    stripe = "stripe"
    api = "api"
    csv = "import"


class EventType(StrEnum):
    payment_failed = "payment_failed"
    payment_succeeded = "payment_succeeded"
    subscription_started = "subscription_started"
    cancel_scheduled = "cancel_scheduled"
    cancel_unscheduled = "cancel_unscheduled"
    subscription_canceled = "subscription_canceled"
    subscription_paused = "subscription_paused"
    subscription_resumed = "subscription_resumed"
    subscription_updated = "subscription_updated"
    plan_changed = "plan_changed"
    refund = "refund"
    dispute = "dispute"
    identify = "identify"
    # Usage events keep the tenant's own event name as their type.


# Billing events: every canonical type but identify (usage events keep their own names).
BILLING_TYPES = frozenset(EventType) - {EventType.identify}


class DeclineClass(StrEnum):
    hard = "hard"  # retrying will not help: stolen card, closed account, do-not-honor
    soft = "soft"  # may pass on retry: insufficient funds, processing error, limits


@dataclass(frozen=True, slots=True)
class CustomerRef:
    """Who an event is about, as the source names them."""

    provider: str  # "whop", "stripe", "api"
    provider_id: str
    email: str | None = None
    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """What an event says about a subscription; None means "this event does not say"."""

    external_id: str
    status: str | None = None
    plan: str | None = None
    mrr: int | None = None
    currency: str | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool | None = None


@dataclass(frozen=True, slots=True)
class CanonicalEvent:
    type: str  # an EventType, or a usage event's own name
    occurred_at: datetime
    source: str  # a models.Source value
    dedupe_key: str  # unique per (tenant, source): replaying it adds nothing
    customer: CustomerRef
    subscription: SubscriptionState | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)  # identify: merged into the customer's traits
