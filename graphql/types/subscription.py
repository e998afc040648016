"""The CustomerSubscription type: a customer's current subscription, as its provider reports it.

Not named `Subscription`: that is the name GraphQL gives the root type of subscriptions.
"""

from datetime import datetime

import strawberry

from churnsaver.backend.customers.models import Subscription as SubscriptionRow


@strawberry.type(name="CustomerSubscription")
class CustomerSubscriptionType:
    status: str = strawberry.field(description="As the provider says: active, trialing, past_due, canceled, …")
    plan: str | None
    mrr: int | None = strawberry.field(description="Monthly recurring revenue in minor units of `currency`.")
    currency: str | None = strawberry.field(description="ISO 4217 code.")
    current_period_end: datetime | None
    cancel_at_period_end: bool

    @classmethod
    def from_row(cls, row: SubscriptionRow) -> "CustomerSubscriptionType":
        return cls(
            status=row.status,
            plan=row.plan,
            mrr=row.mrr,
            currency=row.currency,
            current_period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
        )
