"""The first-email benchmark at a tiny size, so that it cannot rot: real servers (and, scaled out, a
`churnsaver worker` on Redis), signed webhooks, every probe's first email at a real aiosmtpd."""

import argparse

import pytest

from tests.bench.campaigns.first_email import bench_backend
from tests.fixtures.databases import POSTGRES_URL, REDIS_URL, skip_or_fail


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_first_email_bench_times_every_probe_to_its_email(backend: str) -> None:
    if backend == "postgres" and not (POSTGRES_URL and REDIS_URL):
        skip_or_fail("the scaled-out first-email bench needs PostgreSQL and Redis")
    arguments = argparse.Namespace(
        email_probes=3, email_probe_interval=0.05, email_background_rate=20.0, email_redis_url=REDIS_URL
    )

    result = await bench_backend(backend, arguments)

    assert "error" not in result, result
    assert result["probes_emailed"] == 3
    assert 0 < result["latency"]["p50_ms"] <= result["latency"]["p99_ms"] <= result["latency"]["max_ms"]
    assert result["background"]["sent"] > 0
