"""The sandbox billing provider: answers every action as applied, with nothing charged anywhere.

Its effect is recorded like any provider call (`billing_calls`), and the billing service then
applies it to our own subscription state as a `sandbox` billing event (`sandbox_event`), so cases
derive their outcome from it exactly as they do from a provider's webhook: the embedded demo works
end to end without a billing account.
"""

import uuid
from datetime import datetime
from typing import Any

from churnsaver.backend.customers.events import CanonicalEvent, CustomerRef, EventType, SubscriptionState
from churnsaver.backend.integrations.actions import BillingAction, CallRecord, ProviderAnswer
from churnsaver.backend.offers.models import OfferKind

SOURCE = "sandbox"


class SandboxBilling:
    provider = "SANDBOX"

    async def apply(self, action: BillingAction) -> ProviderAnswer:
        request = {"kind": action.kind, "value": action.value, "subscription": action.subscription_id}
        answer = {"sandbox": True, "applied": action.kind, "idempotency_key": action.idempotency_key}
        hosted_url = None
        if action.kind == OfferKind.UPDATE_PAYMENT:
            hosted_url = action.return_url
            answer["url"] = hosted_url
        call = CallRecord(action=action.kind.lower(), request=request, status_code=200, answer=answer)
        return ProviderAnswer(applied=True, answer=answer, hosted_url=hosted_url, calls=[call])

    async def check(self) -> str:
        return "sandbox"


def sandbox_event(
    action: BillingAction, *, provider: str, customer_ref: str, redemption_id: uuid.UUID, at: datetime
) -> CanonicalEvent | None:
    """The billing event an applied sandbox action stands for on our own subscription state (None
    when it changes no state: a discount, free days, a card update page)."""
    if action.subscription_id is None:
        return None
    kind = action.kind
    state: dict[str, Any]
    if kind == OfferKind.UNCANCEL or (action.cancel_scheduled and kind not in (OfferKind.PAUSE, "CANCEL")):
        event_type, state = EventType.cancel_unscheduled, {"cancel_at_period_end": False}
    elif kind == OfferKind.RESUME:
        event_type, state = EventType.subscription_resumed, {"status": "active"}
    elif kind == OfferKind.PAUSE:
        event_type, state = EventType.subscription_paused, {"status": "paused"}
    elif kind == OfferKind.RETRY_PAYMENT:
        event_type, state = EventType.payment_succeeded, {"status": "active"}
    elif kind == "CANCEL":
        event_type, state = EventType.cancel_scheduled, {"cancel_at_period_end": True}
    else:
        return None
    return CanonicalEvent(
        type=event_type.value,
        occurred_at=at,
        source=SOURCE,
        dedupe_key=f"sandbox:{redemption_id}:{event_type.value}",
        customer=CustomerRef(provider=provider, provider_id=customer_ref),
        subscription=SubscriptionState(external_id=action.subscription_id, **state),
        properties={"redemption_id": str(redemption_id), "sandbox": True},
    )
