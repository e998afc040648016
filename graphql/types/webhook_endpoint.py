"""The WebhookEndpoint type. Its secret is never part of it: it is returned once, by the mutation
that creates or rotates it."""

from datetime import datetime
from enum import Enum

import strawberry

from churnsaver.backend.ingest.models import Source
from churnsaver.backend.ingest.models import WebhookEndpoint as WebhookEndpointRow
from churnsaver.graphql.types.node import RowNode


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
