"""The widget API tests talk to a real app of their own, with its own rate-limit counts."""

from collections.abc import AsyncIterator

import httpx
import pytest

from churnsaver.backend.app import create_app


@pytest.fixture(scope="module")
async def widget_app(settings):
    application = create_app(
        settings.model_copy(update={"widget_limit_per_ip": "1000/minute", "widget_limit_per_customer": "500/minute"}),
        run_jobs=False,
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def widget_client(widget_app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=widget_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
