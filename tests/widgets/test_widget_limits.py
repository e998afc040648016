"""Widget rate limits scaled out: two web processes (two limiters) counting through the same
Redis see each other's requests, so a customer's limit holds across the fleet."""

import uuid

from churnsaver.backend.core.rate_limit import RequestLimiter, failure_storage
from tests.fixtures.databases import REDIS_URL, skip_or_fail


async def test_limiters_sharing_redis_count_one_customer_together() -> None:
    if REDIS_URL is None:
        skip_or_fail("needs Redis (CHURNSAVER_TEST_REDIS_URL)")
    first = RequestLimiter("3/minute", failure_storage(REDIS_URL), "widget-customer")
    second = RequestLimiter("3/minute", failure_storage(REDIS_URL), "widget-customer")
    customer = f"tenant:{uuid.uuid4()}"
    assert [await first.hit(customer), await second.hit(customer), await first.hit(customer)] == [None] * 3
    wait = await second.hit(customer)
    assert wait is not None and 1 <= wait <= 60
    assert await second.hit(f"tenant:{uuid.uuid4()}") is None  # another customer counts apart


async def test_without_its_storage_the_limit_lets_requests_through() -> None:
    """The counts are a defence, not the service: Redis down must not take the widget down."""
    limiter = RequestLimiter("1/minute", failure_storage("redis://127.0.0.1:1/0"), "widget-ip")
    assert [await limiter.hit("1.2.3.4"), await limiter.hit("1.2.3.4")] == [None, None]
