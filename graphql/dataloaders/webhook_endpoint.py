"""Webhook endpoints by id."""

from churnsaver.backend.ingest.models import WebhookEndpoint
from churnsaver.backend.ingest.repository import WebhookEndpointRepository
from churnsaver.graphql.dataloaders.by_id import RowsById


class WebhookEndpointLoader(RowsById[WebhookEndpoint]):
    repository = WebhookEndpointRepository
