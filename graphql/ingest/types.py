"""Ingest types: the webhook endpoints providers send to, and the daily delivery counters.

A WebhookEndpoint's secret is never part of it: it is returned once, by the mutation that creates
or rotates it.
"""

from datetime import date, datetime
from enum import Enum

import strawberry

from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest.models import IngestDailyStat as IngestDailyStatRow
from churnsaver.backend.ingest.models import WebhookEndpoint as WebhookEndpointRow
from churnsaver.graphql.node import RowNode


@strawberry.enum(name="WebhookSource", description="The billing provider that sends to an endpoint.")
class WebhookSource(Enum):
    WHOP = Source.whop.value
    STRIPE = Source.stripe.value


@strawberry.type(name="WebhookEndpoint")
class WebhookEndpointType(RowNode):
    row: strawberry.Private[WebhookEndpointRow]
    loader = "webhook_endpoint"
    source: WebhookSource
    created_at: datetime
    previous_secret_expires_at: datetime | None = strawberry.field(
        description="After a rotation, when the previous secret stops verifying deliveries."
    )

    @strawberry.field(description="Where the provider sends: give it this URL with the signing secret.")
    def url(self, info: strawberry.Info) -> str:
        base = str(info.context.request.base_url).rstrip("/")
        return f"{base}/webhooks/{self.row.source}/{self.row.id}"

    @classmethod
    def from_row(cls, row: WebhookEndpointRow) -> "WebhookEndpointType":
        return cls(
            row=row,
            id=cls.global_id(row),
            source=WebhookSource(row.source),
            created_at=row.created_at,
            previous_secret_expires_at=row.previous_secret_expires_at,
        )


@strawberry.type(name="IngestDailyStat", description="One source's deliveries on one UTC day.")
class IngestDailyStatType:
    source: str = strawberry.field(description="whop, stripe, api or import.")
    day: date
    accepted: int = strawberry.field(description="Stored for processing.")
    duplicate: int = strawberry.field(description="Already received: acknowledged, changed nothing.")
    rejected: int = strawberry.field(description="Refused: bad signature, malformed or unfit payload.")

    @classmethod
    def from_row(cls, row: IngestDailyStatRow) -> "IngestDailyStatType":
        return cls(
            source=row.source, day=row.day, accepted=row.accepted, duplicate=row.duplicate, rejected=row.rejected
        )
