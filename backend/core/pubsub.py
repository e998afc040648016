"""Publish and subscribe for live updates (GraphQL subscriptions): in-process, or Redis pub/sub.

One interface, two brokers, chosen once by the composition root (`broker_for(settings)`): the
embedded default publishes in-process, scaled out through Redis pub/sub so that a worker's news
reaches a subscriber on any web process. Domain code calls `publish_after_commit` in its
transaction; the message goes out once that transaction commits, and never if it rolls back.

Live updates are news, not records: the database holds the truth, and a subscriber that misses
a message reads it there. So nothing here ever waits for a subscriber. Each subscriber has a
bounded queue; one that falls `max_pending` messages behind is dropped, told why
(`SubscriberDropped`), rather than the publisher waiting for it or memory growing. Publishing
never waits for Redis either: messages are handed to a sender thread.

Messages are JSON objects, encoded as the transaction publishes them (an unencodable one fails
there, inside the transaction) and decoded by each subscriber, the same through either broker.
"""

import asyncio
import contextlib
import json
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Any, Self

import redis
import redis.asyncio as aioredis
import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.pg_driver import UNIT_OF_WORK, DriverUnitOfWork, before_commit
from churnsaver.backend.core.unit_of_work import UnitOfWork

logger = structlog.get_logger(__name__)

# How far a subscriber may fall behind before it is dropped: room for a burst (a bulk
# reconcile opening many cases at once), small enough that a stalled client holds little memory.
MAX_PENDING = 1000
# Messages waiting for the sender thread (Redis down or slow): beyond this they are dropped.
MAX_UNSENT = 10_000
# Redis pub/sub channels are shared by every database of a server: ours carry a prefix.
REDIS_CHANNEL_PREFIX = "churnsaver:"
_PENDING = "pubsub_pending"  # (channel, encoded message) published in this transaction


class SubscriberDropped(Exception):
    """The subscriber fell too far behind and was dropped; the message says why."""


class Subscription:
    """One subscriber of one channel: an async context manager (subscribed while the block runs)
    and, inside it, an async iterator of the channel's messages.

    Its queue belongs to the event loop that entered it; messages from any other thread are
    handed to that loop."""

    def __init__(
        self,
        channel: str,
        *,
        max_pending: int,
        attach: Callable[["Subscription"], Any],
        detach: Callable[["Subscription"], Any],
    ) -> None:
        self.channel = channel
        self.max_pending = max_pending
        self._attach = attach
        self._detach = detach
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id: int | None = None
        self.dropped: str | None = None  # why, once dropped

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        await self._attach(self)
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, _error: BaseException | None, _traceback: TracebackType | None
    ) -> None:
        await self._detach(self)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self

    async def __anext__(self) -> dict[str, Any]:
        encoded = await self._queue.get()
        if encoded is None:
            raise SubscriberDropped(self.dropped)
        message: dict[str, Any] = json.loads(encoded)
        return message

    def deliver(self, encoded: str) -> None:
        """Queue a message for the subscriber, from any thread; never waits."""
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._thread_id:
            self._offer(encoded)
            return
        # The subscriber's loop has ended without leaving the block: nobody is listening.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._offer, encoded)

    def _offer(self, encoded: str) -> None:
        if self.dropped is not None:
            return
        if self._queue.qsize() >= self.max_pending:
            self.drop(f"too slow: {self.max_pending} messages were waiting for this subscriber")
            return
        self._queue.put_nowait(encoded)

    def drop(self, reason: str) -> None:
        """Stop delivering: what is queued is discarded, and the iterator raises SubscriberDropped."""
        self.dropped = reason
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)


class _Fanout:
    """The subscribers of each channel in this process, for delivering from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = {}

    def add(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.setdefault(subscription.channel, set()).add(subscription)

    def remove(self, subscription: Subscription) -> None:
        with self._lock:
            subscribers = self._subscribers.get(subscription.channel, set())
            subscribers.discard(subscription)
            if not subscribers:
                self._subscribers.pop(subscription.channel, None)

    def deliver(self, channel: str, encoded: str) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(channel, ()))
        for subscription in subscribers:
            subscription.deliver(encoded)

    def count(self, channel: str) -> int:
        with self._lock:
            return len(self._subscribers.get(channel, ()))


class Broker(ABC):
    def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Send `message` to `channel`'s subscribers now, without waiting; from any thread."""
        self.publish_encoded(channel, encode(message))

    @abstractmethod
    def publish_encoded(self, channel: str, encoded: str) -> None:
        """`publish` for a message already encoded by `encode`."""

    @abstractmethod
    def subscribe(self, channel: str, *, max_pending: int = MAX_PENDING) -> Subscription:
        """A subscription to `channel`: `async with broker.subscribe(c) as messages: async for m in messages`."""

    @abstractmethod
    def close(self) -> None:
        """Release what the broker holds (connections, threads); a closed broker may be used again."""


class InProcessBroker(Broker):
    """Publisher and subscribers in one process (the embedded default), any thread or event loop.

    One per process (`IN_PROCESS`), so every app of the process reaches every subscriber."""

    def __init__(self) -> None:
        self._fanout = _Fanout()

    def publish_encoded(self, channel: str, encoded: str) -> None:
        self._fanout.deliver(channel, encoded)

    def subscribe(self, channel: str, *, max_pending: int = MAX_PENDING) -> Subscription:
        return Subscription(channel, max_pending=max_pending, attach=self._attach, detach=self._detach)

    async def _attach(self, subscription: Subscription) -> None:
        self._fanout.add(subscription)

    async def _detach(self, subscription: Subscription) -> None:
        self._fanout.remove(subscription)

    def subscriber_count(self, channel: str) -> int:
        return self._fanout.count(channel)

    def close(self) -> None:
        """Nothing to release: the process's one in-process broker lives as long as the process."""


IN_PROCESS = InProcessBroker()


class _Sender:
    """A daemon thread that sends what is handed to it, in order, so a publisher never waits on I/O."""

    def __init__(self, name: str, send: Callable[[str, str], None]) -> None:
        self._name = name
        self._send = send
        self._queue: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, channel: str, encoded: str) -> None:
        if self._queue.qsize() >= MAX_UNSENT:
            logger.warning("pubsub.dropped_unsent", channel=channel, waiting=MAX_UNSENT)
            return
        self._queue.put((channel, encoded))
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._send(*item)
            except Exception as error:
                logger.error("pubsub.send_failed", channel=item[0], error=str(error))

    def stop(self) -> None:
        """Send what is queued, then end the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(5)


class RedisBroker(Broker):
    """Redis pub/sub (scaled out): a message published by any process reaches every subscriber
    of every process connected to the same Redis.

    Publishing goes through one sender thread and a synchronous client. Each subscription has its
    own pub/sub connection and a task reading it into the subscription's queue."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: redis.Redis | None = None
        self._sender = _Sender("pubsub-redis", self._send)

    def publish_encoded(self, channel: str, encoded: str) -> None:
        self._sender.put(channel, encoded)

    def _send(self, channel: str, encoded: str) -> None:
        if self._client is None:
            self._client = redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=2)
        self._client.publish(REDIS_CHANNEL_PREFIX + channel, encoded)

    def subscribe(self, channel: str, *, max_pending: int = MAX_PENDING) -> Subscription:
        listener = _RedisListener(self.url, REDIS_CHANNEL_PREFIX + channel)
        return Subscription(channel, max_pending=max_pending, attach=listener.start, detach=listener.stop)

    def close(self) -> None:
        self._sender.stop()
        if self._client is not None:
            self._client.close()
            self._client = None


class _RedisListener:
    """One subscription's pub/sub connection and the task that reads it."""

    def __init__(self, url: str, redis_channel: str) -> None:
        self._client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
        self._pubsub = self._client.pubsub()
        self._redis_channel = redis_channel
        self._task: asyncio.Task[None] | None = None

    async def start(self, subscription: Subscription) -> None:
        await self._pubsub.subscribe(self._redis_channel)
        # Subscribed once Redis confirms: a message published after `start` returns is delivered.
        while (confirmation := await self._pubsub.get_message(timeout=5)) is None:
            pass
        assert confirmation["type"] == "subscribe", confirmation
        self._task = asyncio.create_task(self._read(subscription))

    async def _read(self, subscription: Subscription) -> None:
        try:
            async for message in self._pubsub.listen():
                if message["type"] == "message":
                    subscription.deliver(message["data"].decode())
        except (redis.RedisError, OSError) as error:
            subscription.drop(f"the connection to Redis was lost: {type(error).__name__}")

    async def stop(self, _subscription: Subscription) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(redis.RedisError, OSError):
            await self._pubsub.aclose()
        await self._client.aclose()


class ForwardingBroker(Broker):
    """Publishes by handing each message to `forward(channel, encoded)` on a sender thread: a
    process whose subscribers live in another process (the embedded jobs' child, jobs/embedded.py).
    It has no subscribers of its own."""

    def __init__(self, forward: Callable[[str, str], None]) -> None:
        self._sender = _Sender("pubsub-forward", forward)

    def publish_encoded(self, channel: str, encoded: str) -> None:
        self._sender.put(channel, encoded)

    def subscribe(self, channel: str, *, max_pending: int = MAX_PENDING) -> Subscription:
        raise RuntimeError("a forwarding broker has no subscribers: subscribe in the process it forwards to")

    def close(self) -> None:
        self._sender.stop()


def encode(message: dict[str, Any]) -> str:
    if not isinstance(message, dict):
        raise TypeError(f"a message is a JSON object, not {type(message).__name__}")
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def broker_for(settings: Settings) -> Broker:
    """The broker `settings` call for: Redis when CHURNSAVER_REDIS_URL is set, else in-process."""
    return RedisBroker(settings.redis_url) if settings.redis_url else IN_PROCESS


_publisher: Broker = IN_PROCESS


def publisher() -> Broker:
    """The broker messages published after commit go through (in-process unless set otherwise)."""
    return _publisher


@contextlib.contextmanager
def publishing_through(broker: Broker) -> Iterator[Broker]:
    """Within the block, messages this process publishes after commit go through `broker`."""
    global _publisher
    before, _publisher = _publisher, broker
    try:
        yield broker
    finally:
        _publisher = before


def publish_after_commit(session: AsyncSession | Session | UnitOfWork, channel: str, message: dict[str, Any]) -> None:
    """Publish `message` on `channel` once `session`'s transaction commits; a rollback drops it."""
    session.info.setdefault(_PENDING, []).append((channel, encode(message)))


def _publish(pending: list[tuple[str, str]]) -> None:
    broker = _publisher
    for channel, encoded in pending:
        broker.publish_encoded(channel, encoded)


@event.listens_for(Session, "after_commit")
def _publish_committed(session: Session) -> None:
    if pending := session.info.pop(_PENDING, None):
        if (work := session.info.get(UNIT_OF_WORK)) is not None:
            # The session of a driver unit of work: the transaction commits with the unit of work.
            work.info.setdefault(_PENDING, []).extend(pending)
            return
        _publish(pending)


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


@before_commit
def _publish_committed_on_driver(work: DriverUnitOfWork) -> None:
    """On PostgreSQL's driver unit of work: published by its after-commit callbacks, which a
    rollback never calls."""
    if pending := work.info.pop(_PENDING, None):
        work.after_commit.append(lambda: _publish(pending))
