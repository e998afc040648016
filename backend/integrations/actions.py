"""Billing actions as the provider clients take them, and what a provider answered.

An action is one accepted offer (or a cancellation) to apply to one subscription, under the
redemption's idempotency key: the provider applies a repeated request once. A client retries
timeouts, connection errors, 429 and 5xx a few times (`with_retries`); if none of its tries got an
answer it raises ProviderUnavailable, and the redemption stays pending for the fallback job. A
refusal (4xx) is an answer: `applied=False` with the provider's reason.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

RETRY_DELAYS = (0.2, 0.8)  # seconds before the second and third try


@dataclass(frozen=True, slots=True)
class BillingAction:
    kind: str  # an offers OfferKind, or "CANCEL"
    value: dict[str, Any]
    idempotency_key: str
    subscription_id: str | None  # the provider's id: Whop `mem_…`, Stripe `sub_…`
    customer_ref: str | None  # the provider's customer id: Whop `user_…`, Stripe `cus_…`
    cancel_scheduled: bool = False  # an incentive also withdraws a scheduled cancel
    reason: str | None = None  # CANCEL: the customer's reason and comment
    comment: str | None = None
    return_url: str | None = None  # UPDATE_PAYMENT: where the hosted page sends the customer back


@dataclass(slots=True)
class CallRecord:
    """One HTTP request to a provider, and what came back (status None: no answer)."""

    action: str
    request: dict[str, Any]
    status_code: int | None
    answer: dict[str, Any]


@dataclass(slots=True)
class ProviderAnswer:
    applied: bool
    reason: str | None = None
    answer: dict[str, Any] = field(default_factory=dict)
    hosted_url: str | None = None
    calls: list[CallRecord] = field(default_factory=list)


class ProviderUnavailable(Exception):
    """No try got an answer (timeouts, connection errors, 5xx): the outcome is unknown."""

    def __init__(self, reason: str, calls: list[CallRecord]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.calls = calls


class ConnectionCheckFailed(Exception):
    """The API key was refused by the provider's harmless check call; `reason` is for the merchant."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientFailure(Exception):
    """A try that may succeed if repeated: raised inside a client's try, caught by `with_retries`."""


async def with_retries(attempt: Callable[[], Awaitable[ProviderAnswer]], calls: list[CallRecord]) -> ProviderAnswer:
    """`attempt()` up to three times while it raises TransientFailure; ProviderUnavailable after."""
    for delay in (*RETRY_DELAYS, None):
        try:
            return await attempt()
        except TransientFailure as error:
            if delay is None:
                raise ProviderUnavailable(str(error), calls) from None
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
