"""The cases benchmark's core at a tiny size, so that it cannot rot: real servers (and, scaled out,
a `churnsaver worker` on Redis), signed webhooks, every probe's case seen on the subscription and
through `cases(filter:)`. Timings are the bench's business; here only that it measures."""

from churnsaver.backend.core.config import Settings
from tests.bench.cases.latency import LatencyConfig, flush_redis, measure
from tests.fixtures.databases import REDIS_URL, skip_or_fail

TINY = LatencyConfig(
    probes=3,
    probe_interval=0.05,
    background_rate=20.0,
    background_members=20,
    lead_in=0.5,
    wait_after=60.0,
    worker_threads=1,
)


async def test_the_cases_bench_times_every_probe_to_its_case(settings: Settings) -> None:
    if not settings.is_sqlite:
        if not REDIS_URL:
            skip_or_fail("the scaled-out cases bench needs CHURNSAVER_TEST_REDIS_URL")
        flush_redis(REDIS_URL)
        settings = settings.model_copy(update={"redis_url": REDIS_URL})

    result = await measure(settings, TINY)

    assert "error" not in result, result
    assert (result["probes_seen"], result["probes_shown_by_cases_query"]) == (TINY.probes, TINY.probes)
    assert 0 < result["latency"]["p50_ms"] <= result["latency"]["p99_ms"] <= result["latency"]["max_ms"]
    assert result["background"]["sent"] > 0
    assert set(result["background"]["statuses"]) == {"200"}
    assert set(result["stages"]) == {"stored_to_processed", "processed_to_case_stored"}
    assert result["stages"]["stored_to_processed"], "the probes' inbox rows were processed"
