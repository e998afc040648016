"""Features as of a time, from the daily aggregates that ingestion keeps."""

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from churnsaver.backend.customers.events import EventType
from churnsaver.backend.risk.features import (
    BASE_CATEGORICAL,
    BASE_NUMERIC,
    MISSING_CATEGORY,
    WINDOW_DAYS,
    FeatureSpec,
    discover_spec,
    feature_matrix,
    feature_rows,
    usage_columns,
)
from tests.fixtures.sql import counting_statements
from tests.risk.events import apply, billing, customer_ids, failure, identify, usage

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)  # midnight: the features read days up to Feb 28
DAY = timedelta(days=1)


def at(days_before: float) -> datetime:
    """A moment `days_before` days before AS_OF, at 10:00 of its day."""
    return AS_OF - timedelta(days=math.ceil(days_before)) + timedelta(hours=10)


def history() -> list:
    logins = {1: 2, 5: 1, 10: 3, 40: 4, 95: 1}  # days before -> logins that day
    events = [
        usage("c1", "login", at(days), f"login-{days}-{n}") for days, count in logins.items() for n in range(count)
    ]
    events += [usage("c1", "export", at(3), "export-3")]
    events += [usage("c1", "login", AS_OF + timedelta(hours=1), "login-after")]  # after as_of: never counted
    events += [failure("c1", at(20), "pf-20", "hard"), failure("c1", at(3), "pf-3", "soft")]
    events += [failure("c1", at(60), "pf-60", "hard")]
    started = {"status": "active", "plan": "basic", "mrr": 1000, "currency": "USD"}
    events += [billing("c1", EventType.subscription_started, at(100), "start", started)]
    updated = {"plan": "pro", "mrr": 2000, "cancel_at_period_end": True}
    events += [billing("c1", EventType.subscription_updated, at(10), "update", updated)]
    events += [identify("c1", at(100), "identify", seats=3, company="Acme")]
    return events


async def test_windows_trend_and_state_are_exact_as_of_a_time(db, tenant) -> None:
    await apply(db, tenant.id, history())
    ids = await customer_ids(db, tenant.id)
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id)
        matrix = await feature_matrix(session, tenant.id, AS_OF, spec)

    assert spec.usage_events == ("export", "login")
    assert set(spec.numeric) >= {*BASE_NUMERIC, *usage_columns("login"), "trait.seats"}
    assert set(spec.categorical) == {*BASE_CATEGORICAL, "trait.company"}
    assert matrix.customer_ids == [ids["c1"]] and matrix.as_of == [AS_OF]
    row = matrix.frame.iloc[0].to_dict()
    last_day = date(2026, 2, 28)
    assert {key: row[key] for key in usage_columns("login")} == pytest.approx(
        {
            "usage.login.7d": 3.0,  # days 1 and 5
            "usage.login.14d": 6.0,  # + day 10
            "usage.login.28d": 6.0,
            "usage.login.30d": 6.0,
            "usage.login.56d": 10.0,  # + day 40
            "usage.login.90d": 10.0,  # day 95 is out, the one after as_of too
            "usage.login.trend": (3 / 7) / (6 / 28),
            "usage.login.trend_14d": (6 / 14) / (10 / 56),
            "usage.login.change": (6 - 4) / (6 + 4),  # 28 days against the 28 before (day 40's 4)
            "usage.login.share": 6 / 7,  # of the 7 usage events in 28 days (one export)
            "usage.login.days_since": 0.0,
            "usage.login.daily_90d": 10 / 90,  # a customer of 99 days existed on all 90
            # Lifetime: 11 logins (day 95's too) over the 95 days since the first use (day 95).
            "usage.login.daily_life": 11 / 95,
            "usage.login.vs_life": (6 / 28) / (11 / 95),
            "usage.login.share_vs_life": 6 / 7 - 11 / 12,  # of the 12 usage events ever
        }
    )
    assert row["usage.export.7d"] == 1.0 and row["usage.export.90d"] == 1.0
    assert (row["usage.export.change"], row["usage.export.share"]) == (1.0, pytest.approx(1 / 7))  # new
    assert row["usage.export.days_since"] == 2.0
    assert row["days_since_last_activity"] == 0.0  # a login on Feb 28
    assert row["active_days_7d"] == 3.0  # days 1, 3 (export), 5
    assert row["active_days_28d"] == row["active_days_30d"] == 4.0  # + day 10
    assert row["active_days_90d"] == 5.0
    assert row["active_day_share_28d"] == pytest.approx(4 / 28)
    assert row["active_days_change_28d"] == pytest.approx((4 - 1) / (4 + 1))  # day 40 before
    assert row["usage_28d"] == 7.0 and row["usage_trend"] == pytest.approx((4 / 7) / (7 / 28))
    assert row["usage_change_28d"] == pytest.approx((7 - 4) / (7 + 4))
    assert row["usage_daily_90d"] == pytest.approx(11 / 90)
    assert row["usage_vs_life"] == pytest.approx((7 / 28) / (12 / 95))
    assert row["usage.export.daily_life"] == pytest.approx(1 / 95)
    assert row["usage.export.share_vs_life"] == pytest.approx(1 / 7 - 1 / 12)
    assert (row["mrr_per_usage_28d"], row["mrr_per_active_day_28d"]) == (2000 / 8, 2000 / 5)
    assert (row["payment_failures_30d"], row["payment_failures_90d"]) == (2.0, 3.0)
    assert row["days_since_payment_failure"] == 2.0  # the soft failure on day 3
    assert row["last_decline_class"] == "soft"
    assert row["tenure_days"] == (last_day - at(100).date()).days
    assert (row["plan"], row["mrr"], row["cancel_scheduled"]) == ("pro", 2000.0, 1.0)
    assert row["subscription_status"] == "active"  # said by the older event, not overwritten by blanks
    assert (row["trait.seats"], row["trait.company"]) == (3.0, "Acme")
    assert row["discounts_received"] == 0.0


async def test_a_day_later_the_windows_move(db, tenant) -> None:
    await apply(db, tenant.id, history())
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id)
        later = await feature_matrix(session, tenant.id, AS_OF + 6 * DAY, spec)
    row = later.frame.iloc[0]
    # Days now end on Mar 6: the login after the old as_of is in; day 1 (Feb 28) is 7 days back.
    assert row["usage.login.7d"] == 3.0  # Feb 28 (2) + Mar 1 (1); Feb 24 is out
    assert row["days_since_last_activity"] == 5.0


async def test_a_new_customers_counts_are_per_day_of_its_tenure(db, tenant) -> None:
    """A customer seen for 10 days: its 90-day counts and 28-day active days are over 10 days, so
    it compares with an older customer at the same daily pace; an event it never sent is
    WINDOW_DAYS old, with a share of 0."""
    young = [usage("young", "login", at(days), f"young-{days}") for days in (1, 2, 4, 10)]
    young += [usage("young", "login", at(2), "young-2b")]
    await apply(db, tenant.id, [*history(), *young])
    ids = await customer_ids(db, tenant.id)
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id)
        matrix = await feature_matrix(session, tenant.id, AS_OF, spec, [ids["young"]])
    row = matrix.frame.iloc[0]
    assert row["tenure_days"] == 9.0  # Feb 19 to Feb 28
    assert row["usage.login.daily_90d"] == pytest.approx(5 / 10) and row["usage_daily_90d"] == pytest.approx(5 / 10)
    assert row["active_day_share_28d"] == pytest.approx(4 / 10)
    assert row["usage.login.share"] == 1.0 and row["usage.login.change"] == 1.0  # nothing before: all new
    assert row["usage.export.days_since"] == WINDOW_DAYS and row["usage.export.share"] == 0.0
    assert row["days_since_payment_failure"] == WINDOW_DAYS and math.isnan(row["mrr_per_usage_28d"])


async def test_history_before_the_window_counts_in_the_lifetime_rates_only(db, tenant) -> None:
    """A customer that used the product heavily 100-199 days ago and little since: its lifetime
    rate remembers the habit the 90-day window has lost; a payment failure older than the window
    is neither a recent failure nor a decline class."""
    old = [usage("faded", "login", at(days), f"faded-{days}") for days in range(100, 200)]  # 100 logins
    old += [usage("faded", "login", at(days), f"faded-{days}") for days in (3, 17)]
    old += [failure("faded", at(120), "faded-pf", "hard")]
    await apply(db, tenant.id, [*history(), *old])
    ids = await customer_ids(db, tenant.id)
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id)
        matrix = await feature_matrix(session, tenant.id, AS_OF, spec, [ids["faded"]])
    row = matrix.frame.iloc[0]
    assert (row["usage.login.28d"], row["usage.login.90d"]) == (2.0, 2.0)
    assert row["usage.login.daily_life"] == pytest.approx(102 / 199)  # first use 199 days back
    assert row["usage.login.vs_life"] == pytest.approx((2 / 28) / (102 / 199))
    assert row["usage_vs_life"] == pytest.approx((2 / 28) / (102 / 199))
    assert row["usage.login.share_vs_life"] == 0.0  # its only event, now and ever
    assert row["usage.export.daily_life"] == 0.0 and row["usage.export.share_vs_life"] == 0.0  # never used
    assert (row["payment_failures_90d"], row["days_since_payment_failure"]) == (0.0, WINDOW_DAYS)
    assert row["last_decline_class"] == MISSING_CATEGORY


async def test_customers_without_events_have_zero_counts_and_missing_state(db, tenant) -> None:
    await apply(db, tenant.id, [identify("quiet", at(3), "quiet", plan_tier="gold"), *history()])
    ids = await customer_ids(db, tenant.id)
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id)
        matrix = await feature_matrix(session, tenant.id, AS_OF, spec, [ids["quiet"]])
    row = matrix.frame.iloc[0]
    assert row["usage.login.30d"] == 0.0 and math.isnan(row["usage.login.trend"])
    assert math.isnan(row["days_since_last_activity"]) and row["tenure_days"] == 2.0  # identify counts as seen
    assert math.isnan(row["mrr"]) and math.isnan(row["cancel_scheduled"])
    assert row["plan"] == MISSING_CATEGORY and row["last_decline_class"] == MISSING_CATEGORY
    assert row["trait.plan_tier"] == "gold" and math.isnan(row["trait.seats"])


async def test_later_events_never_change_features_as_of_an_earlier_time(db, tenant) -> None:
    await apply(db, tenant.id, history())
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id)
        before = await feature_matrix(session, tenant.id, AS_OF, spec)
    later = [
        usage("c1", "login", AS_OF + timedelta(minutes=1), "later-login"),
        failure("c1", AS_OF + 2 * DAY, "later-failure", "hard"),
        billing("c1", EventType.subscription_canceled, AS_OF + 3 * DAY, "cancel", {"status": "canceled"}),
        billing("c1", EventType.subscription_updated, AS_OF + DAY, "upgrade", {"plan": "max", "mrr": 9000}),
    ]
    await apply(db, tenant.id, later)
    async with db.tenant_unit_of_work(tenant.id) as session:
        after = await feature_matrix(session, tenant.id, AS_OF, spec)
        now = await feature_matrix(session, tenant.id, AS_OF + 5 * DAY, spec)
    assert after.frame.equals(before.frame)
    assert now.frame.iloc[0]["subscription_status"] == "canceled" and now.frame.iloc[0]["plan"] == "max"
    assert now.frame.iloc[0]["last_decline_class"] == "hard"


async def test_rows_at_several_dates_each_see_their_own_past(db, tenant) -> None:
    await apply(db, tenant.id, history())
    ids = await customer_ids(db, tenant.id)
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id)
        rows = [(ids["c1"], AS_OF), (ids["c1"], AS_OF - 30 * DAY), (ids["c1"], AS_OF)]
        matrix = await feature_rows(session, tenant.id, rows, spec)
        single = await feature_matrix(session, tenant.id, AS_OF - 30 * DAY, spec)
    assert matrix.as_of == [AS_OF, AS_OF - 30 * DAY, AS_OF]
    assert list(matrix.frame["usage.login.90d"]) == [10.0, 5.0, 10.0]  # 30 days back: days 40 (4) and 95 (1)
    assert matrix.frame.iloc[[1]].reset_index(drop=True).equals(single.frame)
    assert matrix.frame.iloc[1]["plan"] == "basic"  # the upgrade came later
    assert matrix.frame.iloc[1]["cancel_scheduled"] == 0.0  # a subscription that never said it: none


async def test_another_tenants_events_never_reach_the_features(db, tenant, other_tenant) -> None:
    await apply(db, tenant.id, history())
    await apply(db, other_tenant.id, [usage("c1", "login", at(1), f"other-{n}") for n in range(50)])
    await apply(db, other_tenant.id, [usage("c1", "secret_feature", at(2), "other-secret")])
    other_ids = await customer_ids(db, other_tenant.id)
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id)
        matrix = await feature_matrix(session, tenant.id, AS_OF, spec)
        crossing = await feature_matrix(session, tenant.id, AS_OF, spec, [other_ids["c1"]])
    assert "secret_feature" not in spec.usage_events
    assert matrix.frame.iloc[0]["usage.login.7d"] == 3.0
    assert crossing.customer_ids == [] and len(crossing.frame) == 0


async def test_a_spec_column_unknown_to_the_data_is_missing_or_zero(db, tenant) -> None:
    await apply(db, tenant.id, history())
    spec = FeatureSpec(
        numeric=(*BASE_NUMERIC, *usage_columns("vanished"), "trait.gone"),
        categorical=(*BASE_CATEGORICAL, "trait.also_gone"),
    )
    async with db.tenant_unit_of_work(tenant.id) as session:
        matrix = await feature_matrix(session, tenant.id, AS_OF, spec)
    assert list(matrix.frame.columns) == list(spec.columns)
    row = matrix.frame.iloc[0]
    assert row["usage.vanished.30d"] == 0.0 and math.isnan(row["trait.gone"])
    assert row["trait.also_gone"] == MISSING_CATEGORY


async def test_feature_matrix_costs_the_same_statements_for_any_number_of_customers(db, tenant) -> None:
    async def statements_for(customers: int, prefix: str) -> tuple[int, int]:
        events = []
        for number in range(customers):
            name = f"{prefix}{number}"
            events += [
                usage(name, "login", at(number % 20), f"{name}-login"),
                failure(name, at(5), f"{name}-pf", "soft"),
            ]
            state = {"status": "active", "plan": "pro", "mrr": 100 * number}
            events += [billing(name, EventType.subscription_started, at(30), f"{name}-start", state)]
            events += [identify(name, at(30), f"{name}-id", seats=number, region="EU")]
        await apply(db, tenant.id, events)
        async with db.tenant_unit_of_work(tenant.id) as session:
            spec = await discover_spec(session, tenant.id)
            with counting_statements(db) as statements:
                matrix = await feature_matrix(session, tenant.id, AS_OF, spec)
        assert np.isfinite(matrix.frame["mrr"]).all()
        return len(statements), len(matrix.customer_ids)

    few, few_rows = await statements_for(3, "a")
    many, many_rows = await statements_for(60, "b")
    assert (few_rows, many_rows) == (3, 63)
    assert few == many

    ids = list((await customer_ids(db, tenant.id)).values())
    counted = []
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id)
        for chosen in (ids[:1], ids):
            with counting_statements(db) as statements:
                matrix = await feature_matrix(session, tenant.id, AS_OF, spec, chosen)
            assert matrix.customer_ids == chosen
            counted.append(len(statements))
    assert counted == [few, few]


async def test_a_time_without_a_zone_is_refused(db, tenant) -> None:
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id)
        with pytest.raises(ValueError, match="timezone-aware"):
            await feature_matrix(session, tenant.id, datetime(2026, 3, 1), spec)
