"""ingestStats(from, to): the viewer's counters by day, then source; the last 30 days by default."""

from datetime import date, timedelta

from churnsaver.backend.core.db import utcnow
from tests.fixtures.factories import create_api_key_for, create_ingest_stat
from tests.fixtures.graphql import graphql

STATS = """
query($from: Date, $to: Date) {
  ingestStats(from: $from, to: $to) { source day accepted duplicate rejected }
}
"""


async def stats(client, tenant, **variables: str) -> list[dict]:
    body = await graphql(client, STATS, variables, headers=tenant.headers)
    assert "errors" not in body, body["errors"]
    return body["data"]["ingestStats"]


def days(rows: list[dict]) -> list[tuple[str, str]]:
    return [(row["day"], row["source"]) for row in rows]


async def test_counters_come_by_day_then_source(client, db, tenant):
    await create_ingest_stat(db, tenant.id, source="whop", day=date(2025, 5, 2), accepted=7, duplicate=1)
    await create_ingest_stat(db, tenant.id, source="api", day=date(2025, 5, 2), accepted=500, rejected=3)
    await create_ingest_stat(db, tenant.id, source="stripe", day=date(2025, 5, 1), accepted=2)

    rows = await stats(client, tenant, **{"from": "2025-05-01", "to": "2025-05-02"})

    assert rows == [
        {"source": "stripe", "day": "2025-05-01", "accepted": 2, "duplicate": 0, "rejected": 0},
        {"source": "api", "day": "2025-05-02", "accepted": 500, "duplicate": 0, "rejected": 3},
        {"source": "whop", "day": "2025-05-02", "accepted": 7, "duplicate": 1, "rejected": 0},
    ]


async def test_the_range_includes_both_ends(client, db, tenant):
    for day in range(1, 6):
        await create_ingest_stat(db, tenant.id, source="whop", day=date(2025, 6, day), accepted=day)

    rows = await stats(client, tenant, **{"from": "2025-06-02", "to": "2025-06-04"})

    assert days(rows) == [("2025-06-02", "whop"), ("2025-06-03", "whop"), ("2025-06-04", "whop")]


async def test_by_default_the_last_30_days_up_to_today(client, db, tenant):
    today = utcnow().date()
    for days_ago in (-1, 0, 29, 30):
        await create_ingest_stat(db, tenant.id, source="api", day=today - timedelta(days=days_ago), accepted=1)

    rows = await stats(client, tenant)

    assert days(rows) == [(str(today - timedelta(days=29)), "api"), (str(today), "api")]


async def test_an_open_end_defaults_on_its_own(client, db, tenant):
    today = utcnow().date()
    day = {days_ago: str(today - timedelta(days=days_ago)) for days_ago in (0, 40, 45, 80)}
    for iso_day in day.values():
        await create_ingest_stat(db, tenant.id, source="api", day=date.fromisoformat(iso_day), accepted=1)

    since = await stats(client, tenant, **{"from": day[45]})
    until = await stats(client, tenant, to=day[40])

    # `to` defaults to today; `from` to 29 days before `to`, which leaves out the day 80 days ago.
    assert days(since) == [(day[45], "api"), (day[40], "api"), (day[0], "api")]
    assert days(until) == [(day[45], "api"), (day[40], "api")]


async def test_a_backwards_or_too_long_range_is_a_clear_error(client, tenant):
    backwards = await graphql(client, STATS, {"from": "2025-05-02", "to": "2025-05-01"}, headers=tenant.headers)
    too_long = await graphql(client, STATS, {"from": "2024-01-01", "to": "2025-01-01"}, headers=tenant.headers)

    assert backwards["errors"][0]["message"] == "`from` must not be after `to`"
    assert too_long["errors"][0]["message"] == "the range may span at most 366 days"


async def test_a_year_is_not_too_long(client, tenant):
    assert await stats(client, tenant, **{"from": "2024-01-01", "to": "2024-12-31"}) == []


async def test_another_tenants_counters_are_never_shown(client, db, tenant, other_tenant):
    await create_ingest_stat(db, tenant.id, source="whop", day=date(2025, 7, 1), accepted=1)
    await create_ingest_stat(db, other_tenant.id, source="whop", day=date(2025, 7, 1), accepted=99)
    await create_ingest_stat(db, other_tenant.id, source="stripe", day=date(2025, 7, 1), accepted=99)

    rows = await stats(client, tenant, **{"from": "2025-07-01", "to": "2025-07-01"})

    assert [(row["source"], row["accepted"]) for row in rows] == [("whop", 1)]


async def test_ingest_stats_need_the_read_scope(client, db, tenant):
    write_only = await create_api_key_for(db, tenant.id, scopes=["write"])

    body = await graphql(client, STATS, headers={"Authorization": f"Bearer {write_only}"})

    assert body["errors"][0]["message"] == "this requires the 'read' scope"


async def test_a_range_ending_in_the_first_days_of_year_one_is_answered(client, tenant):
    # The default 30 days before 0001-01-05 would start before the first day a date can hold.
    assert await stats(client, tenant, to="0001-01-05") == []
