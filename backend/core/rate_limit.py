"""Throttling of failures, such as wrong credentials, with the `limits` package.

Only failures are counted: in memory in the embedded set-up, in Redis when the app is scaled out,
so that every web process sees the same counts. A key that went over its limit is remembered by
the process that saw it, so asking whether a key is blocked is a local look-up: a request that
does not fail never waits on Redis.
"""

import math
import time

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

logger = structlog.get_logger(__name__)

# Blocks are dropped when they end; past this many at once, the ended ones are swept out first.
MAX_REMEMBERED_BLOCKS = 10_000


def failure_storage(redis_url: str | None) -> Storage:
    """Counts shared through Redis when there is one, else kept in this process."""
    if redis_url is None:
        return MemoryStorage()
    return RedisStorage(f"async+{redis_url}", implementation="redispy")


def parse_limit(text: str) -> RateLimitItem:
    """A limit in the `limits` notation, such as `20/minute`; ValueError if it is not one."""
    return parse(text)


class FailureThrottle:
    """Counts the failures of each key (a client address, a key prefix) against one limit."""

    def __init__(self, limit: str, storage: Storage, namespace: str) -> None:
        self.limit = parse_limit(limit)
        self.limiter = MovingWindowRateLimiter(storage)
        self.namespace = namespace
        self._blocked_until: dict[str, float] = {}

    def retry_after(self, key: str) -> int | None:
        """Seconds until `key` may fail again, if it is blocked now; no I/O."""
        until = self._blocked_until.get(key)
        if until is None:
            return None
        remaining = until - time.time()
        if remaining <= 0:
            del self._blocked_until[key]
            return None
        return max(1, math.ceil(remaining))

    async def failed(self, key: str) -> int | None:
        """Count a failure of `key`; the seconds to wait when it is one too many, else None."""
        if (blocked := self.retry_after(key)) is not None:
            return blocked
        try:
            if await self.limiter.hit(self.limit, self.namespace, key):
                return None
            reset_time, _ = await self.limiter.get_window_stats(self.limit, self.namespace, key)
        except Exception as error:
            # The counts are a defence, not the service: without their storage, failures go uncounted.
            logger.warning("rate_limit.storage_unavailable", namespace=self.namespace, error=type(error).__name__)
            return None
        self._block(key, reset_time)
        return self.retry_after(key) or 1

    def _block(self, key: str, until: float) -> None:
        if len(self._blocked_until) >= MAX_REMEMBERED_BLOCKS:
            now = time.time()
            self._blocked_until = {k: end for k, end in self._blocked_until.items() if end > now}
        self._blocked_until[key] = until


class RequestLimiter:
    """Counts every request of each key (a customer, a client address) against one limit: unlike
    FailureThrottle, it asks the storage each time, since every request counts."""

    def __init__(self, limit: str, storage: Storage, namespace: str) -> None:
        self.limit = parse_limit(limit)
        self.limiter = MovingWindowRateLimiter(storage)
        self.namespace = namespace

    async def hit(self, key: str) -> int | None:
        """Count a request of `key`; the seconds to wait when it is one too many, else None."""
        try:
            if await self.limiter.hit(self.limit, self.namespace, key):
                return None
            reset_time, _ = await self.limiter.get_window_stats(self.limit, self.namespace, key)
        except Exception as error:
            logger.warning("rate_limit.storage_unavailable", namespace=self.namespace, error=type(error).__name__)
            return None
        return max(1, math.ceil(reset_time - time.time()))
