"""Jobs enqueued with a not-before time: sent once that time has come, never earlier, on every
backend; found again by a relay started later; dropped with a rolled-back transaction."""

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone

import dramatiq
import pytest
from dramatiq import Message

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.jobs.broker import create_broker
from churnsaver.jobs.outbox import enqueue
from churnsaver.jobs.relay import REDELIVER_AFTER, OutboxRelay
from churnsaver.jobs.worker import running_jobs
from tests.fixtures.jobs import enqueue_committed, eventually, outbox_rows
from tests.jobs.sample_jobs import record

LATER = timedelta(minutes=10)  # within REDELIVER_AFTER: a job sent at the start is not sent again


class Rollback(Exception):
    pass


def sent_tokens(broker: dramatiq.Broker) -> list[str]:
    """The tokens of the messages the relay has handed to the in-process broker, oldest first."""
    queue = broker.queues["default"]
    return [Message.decode(queue.get_nowait()).kwargs["token"] for _ in range(queue.qsize())]


async def test_a_job_is_sent_once_its_not_before_time_has_come_and_not_earlier(
    settings: Settings, db: Database
) -> None:
    now = utcnow()
    not_before = now + LATER
    async with db.system_unit_of_work() as session:
        enqueue(session, "tests.record", token="now")
        enqueue(session, "tests.record", token="later", not_before=not_before)

    broker = create_broker(settings)
    relay = OutboxRelay(db, broker)
    try:
        assert await relay.relay_once(now) == 1
        assert sent_tokens(broker) == ["now"]
        assert await relay.next_due(now) == not_before

        assert await relay.relay_once(not_before - timedelta(microseconds=1)) == 0
        assert sent_tokens(broker) == []

        assert await relay.relay_once(not_before) == 1
        assert sent_tokens(broker) == ["later"]
        assert await relay.next_due(not_before) is None
    finally:
        broker.close()
    rows = {row.kwargs["token"]: row for row in await outbox_rows(db)}
    assert (rows["now"].not_before, rows["later"].not_before) == (None, not_before)
    assert (rows["later"].dispatched_at, rows["later"].dispatch_count) == (not_before, 1)


async def test_a_job_sent_after_its_not_before_time_but_never_finished_is_sent_again(
    settings: Settings, db: Database
) -> None:
    not_before = utcnow() + LATER
    await enqueue_committed(db, "tests.record", token="lost-later", not_before=not_before)

    broker = create_broker(settings)
    relay = OutboxRelay(db, broker)
    try:
        assert await relay.relay_once(not_before) == 1
        assert await relay.relay_once(not_before + REDELIVER_AFTER) == 0
        assert await relay.relay_once(not_before + REDELIVER_AFTER + timedelta(seconds=1)) == 1
        assert sent_tokens(broker) == ["lost-later", "lost-later"]
    finally:
        broker.close()
    [row] = await outbox_rows(db)
    assert row.dispatch_count == 2


async def test_an_idle_relay_wakes_up_when_a_not_before_time_comes(settings: Settings, db: Database) -> None:
    # Polling once a minute: only waking at the job's time can send it within the test's wait.
    broker = create_broker(settings)
    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(db, broker, poll_seconds=60).run(stop))
    try:
        not_before = utcnow() + timedelta(seconds=0.5)
        await enqueue_committed(db, "tests.record", token="on-time", not_before=not_before)

        async def dispatched() -> bool:
            return all(row.dispatched_at is not None for row in await outbox_rows(db))

        await eventually(dispatched)
    finally:
        stop.set()
        await asyncio.wait_for(relay, timeout=5)
        broker.close()
    [row] = await outbox_rows(db)
    assert row.dispatched_at is not None and row.dispatched_at >= not_before
    assert sent_tokens(broker) == ["on-time"]


async def test_a_job_waiting_for_its_time_is_run_by_a_relay_started_after_a_restart(
    settings: Settings, db: Database
) -> None:
    not_before = utcnow() + timedelta(seconds=1)
    due_on_this_clock = time.monotonic() + (not_before - utcnow()).total_seconds()
    await enqueue_committed(db, "tests.record", token="after-restart", not_before=not_before)

    # The first process sees the job waiting, then goes away before it is due.
    first_process = Database(settings)
    broker = create_broker(settings)
    try:
        assert await OutboxRelay(first_process, broker).relay_once(not_before - timedelta(milliseconds=1)) == 0
    finally:
        broker.close()
        await first_process.dispose()

    # The next one starts with nothing but the database, and runs the job once it is due.
    second_process = Database(settings)
    try:
        async with running_jobs(settings, second_process, consume=True):
            await eventually(lambda: record.finished["after-restart"] == 1)
            await eventually(lambda: _outbox_is_empty(db))
    finally:
        await second_process.dispose()
    [started] = record.attempts["after-restart"]
    assert started >= due_on_this_clock - 0.05  # the two clocks read a few microseconds apart


async def test_a_naive_not_before_is_refused(db: Database) -> None:
    async with db.system_unit_of_work() as session:
        with pytest.raises(ValueError, match="timezone-aware"):
            enqueue(session, "tests.record", token="naive", not_before=datetime(2030, 1, 1, 9, 0))

    assert await outbox_rows(db) == []


async def test_a_not_before_in_another_time_zone_is_stored_as_the_same_instant_in_utc(db: Database) -> None:
    paris_summer = timezone(timedelta(hours=2))
    await enqueue_committed(
        db, "tests.record", token="zoned", not_before=datetime(2030, 6, 1, 9, 0, tzinfo=paris_summer)
    )

    [row] = await outbox_rows(db)
    assert row.not_before == datetime(2030, 6, 1, 7, 0, tzinfo=UTC)
    assert row.not_before.utcoffset() == timedelta(0)


async def test_a_job_with_a_not_before_time_in_a_rolled_back_transaction_is_dropped(
    settings: Settings, db: Database
) -> None:
    not_before = utcnow() + LATER
    with pytest.raises(Rollback):
        async with db.system_unit_of_work() as session:
            enqueue(session, "tests.record", token="rolled-back-later", not_before=not_before)
            raise Rollback

    broker = create_broker(settings)
    relay = OutboxRelay(db, broker)
    try:
        assert await relay.relay_once(not_before + LATER) == 0
        assert await relay.next_due(utcnow()) is None
    finally:
        broker.close()
    assert await outbox_rows(db) == []


async def _outbox_is_empty(db: Database) -> bool:
    return await outbox_rows(db) == []
