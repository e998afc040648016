"""The CustomerEvent type: one entry of a customer's timeline, and its connection."""

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from churnsaver.backend.customers.models import CustomerEvent as CustomerEventRow
from churnsaver.backend.customers.timeline import STATE_KEY
from churnsaver.graphql.pagination import Connection


@strawberry.type(name="CustomerEvent")
class CustomerEventType:
    type: str = strawberry.field(description="A canonical event (payment_failed, plan_changed, …) or a usage event.")
    occurred_at: datetime = strawberry.field(description="When it happened at the source, not when it arrived.")
    source: str = strawberry.field(description="whop, stripe, api or import.")
    properties: JSON

    @classmethod
    def from_row(cls, row: CustomerEventRow) -> "CustomerEventType":
        # STATE_KEY is ingestion's own bookkeeping (what the event said about the subscription).
        properties = {key: value for key, value in row.properties.items() if key != STATE_KEY}
        return cls(type=row.type, occurred_at=row.occurred_at, source=row.source, properties=properties)


CustomerEventConnection = Connection[CustomerEventType]
