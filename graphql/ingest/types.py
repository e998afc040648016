"""Ingest types: the webhook endpoints providers send to, the daily delivery counters, and the
deliveries that failed or were quarantined.

A WebhookEndpoint's secret is never part of it: it is returned once, by the mutation that creates
or rotates it.
"""

from datetime import date, datetime
from enum import Enum

import strawberry
from strawberry.relay import to_base64

from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest.models import InboxEvent as InboxEventRow
from churnsaver.backend.ingest.models import InboxStatus
from churnsaver.backend.ingest.models import WebhookEndpoint as WebhookEndpointRow
from churnsaver.backend.ingest.service import DailyIngest
from churnsaver.graphql.node import RowNode
from churnsaver.graphql.pagination import Connection


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
    failed: int = strawberry.field(
        description="Of the accepted, those failed or quarantined as of now (listed by failedEvents)."
    )

    @classmethod
    def from_daily(cls, daily: DailyIngest) -> "IngestDailyStatType":
        row = daily.counters
        return cls(
            source=row.source,
            day=row.day,
            accepted=row.accepted,
            duplicate=row.duplicate,
            rejected=row.rejected,
            failed=daily.not_processed,
        )


@strawberry.enum(name="FailedEventStatus")
class FailedEventStatus(Enum):
    FAILED = InboxStatus.failed.value
    QUARANTINED = InboxStatus.quarantined.value


# The payload as stored is kept whole; a list shows its beginning.
PAYLOAD_PREVIEW_CHARS = 2000


@strawberry.type(name="FailedEvent", description="A stored delivery that was not processed, and why.")
class FailedEventType:
    id: strawberry.ID = strawberry.field(description="Opaque; pass it to retryFailedEvents.")
    source: str = strawberry.field(description="whop, stripe, api or import.")
    event_type: str
    external_id: str = strawberry.field(description="The provider's id of the delivery (an events-API messageId).")
    status: FailedEventStatus = strawberry.field(
        description="FAILED: it could not be read as events; QUARANTINED: its events could not be applied."
    )
    reason: str | None = strawberry.field(description="The error, trimmed.")
    received_at: datetime
    payload: str = strawberry.field(
        description=f"The delivery's JSON text as received, cut at {PAYLOAD_PREVIEW_CHARS} characters."
    )
    payload_truncated: bool

    @classmethod
    def from_row(cls, row: InboxEventRow) -> "FailedEventType":
        return cls(
            id=strawberry.ID(to_base64("FailedEvent", row.id)),
            source=row.source,
            event_type=row.event_type,
            external_id=row.external_id,
            status=FailedEventStatus(row.status),
            reason=row.error,
            received_at=row.received_at,
            payload=row.payload[:PAYLOAD_PREVIEW_CHARS],
            payload_truncated=len(row.payload) > PAYLOAD_PREVIEW_CHARS,
        )


FailedEventConnection = Connection[FailedEventType]
