"""core/pubsub.py: messages published after commit (never on rollback) reach every subscriber, on
either broker; a slow subscriber is dropped without holding up the publisher; through Redis, a
message published by one process reaches a subscriber of another."""

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.pubsub import (
    IN_PROCESS,
    Broker,
    RedisBroker,
    SubscriberDropped,
    Subscription,
    publish_after_commit,
    publishing_through,
)
from churnsaver.backend.core.unit_of_work import UnitOfWork
from tests.fixtures.databases import REDIS_URL, skip_or_fail

TIMEOUT = 10


@pytest.fixture(params=["in_process", "redis"])
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """Each broker, as what `publish_after_commit` publishes through."""
    if request.param == "in_process":
        chosen: Broker = IN_PROCESS
    else:
        if not REDIS_URL:
            skip_or_fail("Redis tests need CHURNSAVER_TEST_REDIS_URL")
        chosen = RedisBroker(REDIS_URL)
    with publishing_through(chosen):
        yield chosen
    chosen.close()


@pytest.fixture
def channel() -> str:
    return f"test:{uuid.uuid4()}"


async def next_message(subscription: Subscription) -> dict:
    return await asyncio.wait_for(anext(subscription), TIMEOUT)


async def publish_committed(db: Database, tenant_id: uuid.UUID, channel: str, message: dict) -> None:
    async with db.tenant_unit_of_work(tenant_id) as session:
        await session.execute(text("SELECT 1"))
        publish_after_commit(session, channel, message)


async def test_a_committed_message_reaches_the_subscriber(db: Database, tenant, broker, channel):
    async with broker.subscribe(channel) as subscription:
        await publish_committed(db, tenant.id, channel, {"n": 1, "text": "committed"})

        assert await next_message(subscription) == {"n": 1, "text": "committed"}


async def test_nothing_is_published_before_the_commit(db: Database, tenant, broker, channel):
    async with broker.subscribe(channel) as subscription:
        async with db.tenant_unit_of_work(tenant.id) as session:
            publish_after_commit(session, channel, {"n": 1})
            await session.execute(text("SELECT 1"))
            await asyncio.sleep(0.2)
            assert subscription._queue.empty()

        assert await next_message(subscription) == {"n": 1}


async def test_a_rolled_back_transaction_publishes_nothing(db: Database, tenant, broker, channel):
    async with broker.subscribe(channel) as subscription:
        with pytest.raises(LookupError):
            async with db.tenant_unit_of_work(tenant.id) as session:
                publish_after_commit(session, channel, {"n": "raised"})
                raise LookupError("changed its mind")
        async with db.tenant_session(tenant.id) as session:
            await session.execute(text("SELECT 1"))
            publish_after_commit(session, channel, {"n": "rolled back"})
            await session.rollback()
        # The session's next transaction starts without what the rolled-back one held.
        await publish_committed(db, tenant.id, channel, {"n": "after"})

        assert await next_message(subscription) == {"n": "after"}


async def test_a_unit_of_work_publishes_once_committed_and_never_when_it_raises(db: Database, tenant, broker, channel):
    """The writer thread on SQLite, the asyncpg connection on PostgreSQL (core/unit_of_work.py)."""

    def work(unit: UnitOfWork, n: int, *, fail: bool = False, through_session: bool = False) -> None:
        publish_after_commit(unit.session if through_session else unit, channel, {"n": n})
        if fail:
            raise LookupError("changed its mind")

    async with broker.subscribe(channel) as subscription:
        with pytest.raises(LookupError):
            await db.run_unit_of_work(tenant.id, lambda unit: work(unit, 1, fail=True))
        with pytest.raises(LookupError):
            await db.run_unit_of_work(tenant.id, lambda unit: work(unit, 2, fail=True, through_session=True))
        await db.run_unit_of_work(tenant.id, lambda unit: work(unit, 3))
        await db.run_unit_of_work(tenant.id, lambda unit: work(unit, 4, through_session=True))

        assert [await next_message(subscription) for _ in range(2)] == [{"n": 3}, {"n": 4}]


async def test_every_subscriber_of_the_channel_gets_each_message_in_order(db: Database, tenant, broker, channel):
    other_channel = f"{channel}:other"
    async with (
        broker.subscribe(channel) as first,
        broker.subscribe(channel) as second,
        broker.subscribe(other_channel) as elsewhere,
    ):
        for n in range(3):
            await publish_committed(db, tenant.id, channel, {"n": n})

        assert [await next_message(first) for _ in range(3)] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert [await next_message(second) for _ in range(3)] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert elsewhere._queue.empty()


async def test_a_slow_subscriber_is_dropped_while_the_publisher_goes_on(db: Database, tenant, broker, channel):
    async with broker.subscribe(channel, max_pending=5) as slow, broker.subscribe(channel) as keeping_up:
        started = time.monotonic()
        for n in range(20):
            await publish_committed(db, tenant.id, channel, {"n": n})
        publishing_took = time.monotonic() - started

        assert [(await next_message(keeping_up))["n"] for _ in range(20)] == list(range(20))
        with pytest.raises(SubscriberDropped, match="too slow: 5 messages were waiting"):
            await next_message(slow)
        assert slow.dropped is not None
    # Twenty commits, none of them waiting for the subscriber that never read.
    assert publishing_took < TIMEOUT


async def test_a_subscriber_that_leaves_is_no_longer_delivered_to(channel):
    async with IN_PROCESS.subscribe(channel):
        assert IN_PROCESS.subscriber_count(channel) == 1
    assert IN_PROCESS.subscriber_count(channel) == 0
    IN_PROCESS.publish(channel, {"n": "nobody listens"})


def test_a_message_must_be_a_json_object(channel):
    with pytest.raises(TypeError, match="JSON object"):
        IN_PROCESS.publish(channel, ["a", "list"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        IN_PROCESS.publish(channel, {"n": float("nan")})


PUBLISH_FROM_ANOTHER_PROCESS = """
import sys
from churnsaver.backend.core.pubsub import RedisBroker
broker = RedisBroker(sys.argv[1])
broker.publish(sys.argv[2], {"from": "another process"})
broker.close()
"""


@pytest.fixture
async def redis_settings(settings: Settings) -> AsyncIterator[Settings]:
    if not REDIS_URL:
        skip_or_fail("Redis tests need CHURNSAVER_TEST_REDIS_URL")
    yield settings.model_copy(update={"redis_url": REDIS_URL})


async def test_through_redis_another_process_reaches_this_ones_subscriber(redis_settings: Settings, channel):
    assert redis_settings.redis_url is not None
    subscriber_broker = RedisBroker(redis_settings.redis_url)
    async with subscriber_broker.subscribe(channel) as subscription:
        command = [sys.executable, "-c", PUBLISH_FROM_ANOTHER_PROCESS, redis_settings.redis_url, channel]
        await asyncio.to_thread(subprocess.run, command, check=True, timeout=60)

        assert await next_message(subscription) == {"from": "another process"}


async def test_through_redis_one_broker_instance_reaches_another_ones_subscriber(
    redis_settings: Settings, db: Database, tenant, channel
):
    assert redis_settings.redis_url is not None
    publishing, subscribing = RedisBroker(redis_settings.redis_url), RedisBroker(redis_settings.redis_url)
    try:
        async with subscribing.subscribe(channel) as subscription:
            with publishing_through(publishing):
                await publish_committed(db, tenant.id, channel, {"n": "across brokers"})

            assert await next_message(subscription) == {"n": "across brokers"}
    finally:
        publishing.close()
        subscribing.close()
