"""Fixtures of the ingest tests: a tenant's webhook endpoint for each provider."""

import pytest

from churnsaver.backend.customers.events import Source
from tests.fixtures.senders import WebhookTarget, create_webhook_target


@pytest.fixture
async def whop(db, settings, tenant) -> WebhookTarget:
    return await create_webhook_target(db, settings, tenant.id, Source.whop)


@pytest.fixture
async def stripe(db, settings, tenant) -> WebhookTarget:
    return await create_webhook_target(
        db, settings, tenant.id, Source.stripe, secret="whsec_stripeIssued0123456789abcd"
    )
