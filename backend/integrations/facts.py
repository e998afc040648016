"""What one provider delivery says, before it is given its time and identity.

The Whop and Stripe normalizers build `Facts` per event type and turn them into the
`CanonicalEvent` with the delivery's event time and dedupe key.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from churnsaver.backend.customers.events import CanonicalEvent, CustomerRef, SubscriptionState


@dataclass(frozen=True, slots=True)
class Facts:
    type: str
    customer: CustomerRef
    subscription: SubscriptionState | None
    properties: dict[str, Any]

    def event(self, *, occurred_at: datetime, source: str, dedupe_key: str) -> CanonicalEvent:
        return CanonicalEvent(
            type=self.type,
            occurred_at=occurred_at,
            source=source,
            dedupe_key=dedupe_key,
            customer=self.customer,
            subscription=self.subscription,
            # Absent and null say the same; the timeline keeps only what the provider said.
            properties={key: value for key, value in self.properties.items() if value is not None},
        )
