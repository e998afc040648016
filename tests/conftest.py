"""Fixtures for the whole suite. Database-backed tests run once per backend (SQLite, PostgreSQL)."""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from churnsaver.backend.app import create_app
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from tests.fixtures.databases import BACKENDS, POSTGRES_URL, REDIS_URL, migrated_database
from tests.fixtures.factories import TenantWithKey, create_tenant_with_key

# Property-based tests: a short run in `make test`, a long one in `make fuzz` (HYPOTHESIS_PROFILE=fuzz).
# No deadline: an example's time is a database round trip, which the machine's load decides.
_FUZZ_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
hypothesis_settings.register_profile("default", max_examples=40, deadline=None, suppress_health_check=_FUZZ_HEALTH)
hypothesis_settings.register_profile("fuzz", max_examples=2000, deadline=None, suppress_health_check=_FUZZ_HEALTH)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    postgres = f"on ({POSTGRES_URL.split('@')[-1]})" if POSTGRES_URL else "off: PostgreSQL tests skipped"
    redis = "on" if REDIS_URL else "off: Redis tests skipped"
    return [
        f"PostgreSQL (CHURNSAVER_TEST_DATABASE_URL): {postgres}",
        f"Redis (CHURNSAVER_TEST_REDIS_URL): {redis}",
    ]


@pytest.fixture(scope="session", params=BACKENDS)
async def settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    """Settings for a migrated database, once per backend for the session."""
    data_dir = tmp_path_factory.mktemp(f"data-{request.param}")
    async with migrated_database(request.param, data_dir) as settings:
        yield settings


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def app(settings: Settings):
    """The real app without its background jobs (the jobs tests start those themselves)."""
    application = create_app(settings, run_jobs=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def tenant(db: Database) -> TenantWithKey:
    return await create_tenant_with_key(db)


@pytest.fixture
async def other_tenant(db: Database) -> TenantWithKey:
    return await create_tenant_with_key(db)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
