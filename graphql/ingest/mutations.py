"""Ingest mutations: create a webhook endpoint, rotate its secret, delete it; retry failed deliveries."""

from typing import Annotated

import strawberry
from strawberry.relay import to_base64

from churnsaver.backend.core.errors import DomainError
from churnsaver.backend.customers.events import Source
from churnsaver.backend.ingest import service
from churnsaver.graphql.ingest.types import WebhookEndpointType, WebhookSource
from churnsaver.graphql.node import parse_node_uuid
from churnsaver.graphql.permissions import CanWrite
from churnsaver.graphql.results import UserError

CREATE_SECRET_HELP = (
    "The secret your provider issued for this endpoint. When omitted, a whsec_ secret is generated and "
    "returned once. Stripe issues its own once the URL is registered there: pass it to rotateWebhookSecret."
)
ROTATE_SECRET_HELP = (
    "The provider's new secret (Stripe's, after registering or rolling the endpoint). When omitted, a "
    "whsec_ secret is generated and returned once."
)


@strawberry.input
class CreateWebhookEndpointInput:
    source: WebhookSource
    signing_secret: str | None = strawberry.field(default=None, description=CREATE_SECRET_HELP)


@strawberry.type
class WebhookEndpointCreated:
    endpoint: WebhookEndpointType
    signing_secret: str = strawberry.field(description="Shown this once; only an encrypted copy is kept.")


@strawberry.type
class WebhookSecretRotated:
    endpoint: WebhookEndpointType
    signing_secret: str = strawberry.field(
        description="Shown this once. The previous secret keeps verifying until previousSecretExpiresAt."
    )


@strawberry.type
class WebhookEndpointDeleted:
    deleted_id: strawberry.ID


CreateWebhookEndpointResult = Annotated[
    WebhookEndpointCreated | UserError, strawberry.union("CreateWebhookEndpointResult")
]
RotateWebhookSecretResult = Annotated[WebhookSecretRotated | UserError, strawberry.union("RotateWebhookSecretResult")]
DeleteWebhookEndpointResult = Annotated[
    WebhookEndpointDeleted | UserError, strawberry.union("DeleteWebhookEndpointResult")
]


@strawberry.type
class FailedEventsRetried:
    requeued_ids: list[strawberry.ID] = strawberry.field(
        description="The deliveries put back to pending, oldest first; processing follows in the background."
    )


RetryFailedEventsResult = Annotated[FailedEventsRetried | UserError, strawberry.union("RetryFailedEventsResult")]


@strawberry.type
class IngestMutations:
    @strawberry.mutation(permission_classes=[CanWrite])
    async def create_webhook_endpoint(
        self, info: strawberry.Info, input: CreateWebhookEndpointInput
    ) -> CreateWebhookEndpointResult:
        context = info.context
        try:
            created = await service.create_endpoint(
                context.session,
                context.auth,
                source=Source(input.source.value),
                signing_secret=input.signing_secret,
                secret_key=context.settings.resolved_secret_key,
            )
        except DomainError as error:
            return UserError.from_error(error)
        return WebhookEndpointCreated(
            endpoint=WebhookEndpointType.from_row(created.endpoint), signing_secret=created.signing_secret
        )

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="A new signing secret; the previous one keeps verifying deliveries for 24 hours.",
    )
    async def rotate_webhook_secret(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        signing_secret: Annotated[str | None, strawberry.argument(description=ROTATE_SECRET_HELP)] = None,
    ) -> RotateWebhookSecretResult:
        context = info.context
        try:
            rotated = await service.rotate_secret(
                context.session,
                context.auth,
                parse_node_uuid(id, "WebhookEndpoint"),
                signing_secret=signing_secret,
                secret_key=context.settings.resolved_secret_key,
            )
        except DomainError as error:
            return UserError.from_error(error)
        return WebhookSecretRotated(
            endpoint=WebhookEndpointType.from_row(rotated.endpoint), signing_secret=rotated.signing_secret
        )

    @strawberry.mutation(
        permission_classes=[CanWrite], description="Deliveries to a deleted endpoint are refused (404)."
    )
    async def delete_webhook_endpoint(self, info: strawberry.Info, id: strawberry.ID) -> DeleteWebhookEndpointResult:
        context = info.context
        try:
            await service.delete_endpoint(context.session, context.auth, parse_node_uuid(id, "WebhookEndpoint"))
        except DomainError as error:
            return UserError.from_error(error)
        return WebhookEndpointDeleted(deleted_id=id)

    @strawberry.mutation(
        permission_classes=[CanWrite],
        description=(
            "Process failed or quarantined deliveries again (by their FailedEvent ids; every one when `ids` is "
            "omitted). A delivery that still cannot be processed is listed by failedEvents again, with its reason."
        ),
    )
    async def retry_failed_events(
        self, info: strawberry.Info, ids: list[strawberry.ID] | None = None
    ) -> RetryFailedEventsResult:
        context = info.context
        try:
            inbox_ids = [parse_node_uuid(id, "FailedEvent") for id in ids] if ids is not None else None
            requeued = await service.retry_failed_events(context.session, context.auth, inbox_ids)
        except DomainError as error:
            return UserError.from_error(error)
        return FailedEventsRetried(requeued_ids=[strawberry.ID(to_base64("FailedEvent", row)) for row in requeued])
