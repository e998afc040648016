"""The billing tests' provider servers, and a Database whose settings point the Whop and Stripe
adapters at them (CHURNSAVER_WHOP_API_URL, CHURNSAVER_STRIPE_API_URL)."""

from collections.abc import AsyncIterator

import pytest

from churnsaver.backend.core.db import Database
from tests.fixtures.providers import StripeServer, WhopServer, stripe_api, whop_api

__all__ = ["stripe_api", "whop_api"]


@pytest.fixture
async def provider_db(settings, whop_api: WhopServer, stripe_api: StripeServer) -> AsyncIterator[Database]:
    local = settings.model_copy(update={"whop_api_url": whop_api.url, "stripe_api_url": stripe_api.url})
    database = Database(local)
    yield database
    await database.dispose()
