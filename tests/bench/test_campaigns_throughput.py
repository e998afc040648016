"""The campaigns benchmark at a tiny size, so that it cannot rot: due steps through the real jobs
(and, scaled out, a `churnsaver worker` on Redis) to a real aiosmtpd, each mail once."""

import argparse

import pytest

from tests.bench.campaigns.throughput import bench_backend
from tests.fixtures.databases import POSTGRES_URL, REDIS_URL, skip_or_fail


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_campaigns_bench_sends_every_due_step_once(backend: str) -> None:
    if backend == "postgres" and not (POSTGRES_URL and REDIS_URL):
        skip_or_fail("the scaled-out campaigns bench needs PostgreSQL and Redis")
    arguments = argparse.Namespace(
        campaign_steps=40, campaign_dispatchers=2, campaign_worker_threads=2, campaign_redis_url=REDIS_URL
    )

    result = await bench_backend(backend, arguments)

    assert "error" not in result, result
    assert (result["mails"], result["sent_twice"]) == (40, 0)
    assert result["stored"] == {"steps": {"sent": 40}, "messages": {"sent": 40}}
    assert result["messages_per_second"] > 0
