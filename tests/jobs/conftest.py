"""Fixtures for the jobs tests: empty job tables and a fresh record per test, settings for each
broker (the in-process StubBroker and Redis), and a check that no worker thread outlives its test."""

import threading
from collections.abc import Iterator

import pytest

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from tests.fixtures.jobs import clear_job_tables, with_redis
from tests.jobs.sample_jobs import record


@pytest.fixture(autouse=True)
async def empty_job_tables(db: Database) -> None:
    await clear_job_tables(db)
    record.reset()


@pytest.fixture(autouse=True)
def no_worker_thread_left() -> Iterator[None]:
    yield
    left = [thread.name for thread in threading.enumerate() if type(thread).__module__.startswith("dramatiq")]
    assert left == [], f"Dramatiq threads still running after the test: {left}"


@pytest.fixture
def redis_settings(settings: Settings) -> Settings:
    return with_redis(settings)


@pytest.fixture(params=["stub", "redis"])
def broker_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Settings for the in-process broker, then for Redis."""
    return settings if request.param == "stub" else with_redis(settings)
