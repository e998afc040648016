"""The pure decisions of campaigns: holdout and variant assignment, audiences, due times, quiet
hours across time zones and daylight saving changes, and frequency caps (no database)."""

import uuid
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from churnsaver.backend.campaigns.playbooks import Step, Variant
from churnsaver.backend.campaigns.timing import (
    DEFAULT_RETRY_WAIT,
    AudienceFacts,
    Caps,
    after_quiet_hours,
    assign,
    cap_allows,
    cap_allows_at,
    customer_zone,
    in_audience,
    step_due,
)

QUIET = (time(21, 0), time(8, 0))
UTC_ZONE = ZoneInfo("UTC")
OPENED = datetime(2026, 3, 2, 12, tzinfo=UTC)
VARIANTS = [Variant("a", [Step("PT0S", "email", "t")]), Variant("b", [Step("PT0S", "email", "t")], weight=3)]


def test_assignment_is_a_pure_function_of_campaign_and_customer() -> None:
    campaign, customer = uuid.uuid4(), uuid.uuid4()
    first = assign(campaign, customer, 0.1, VARIANTS)
    assert all(assign(campaign, customer, 0.1, VARIANTS) == first for _ in range(20))
    assert assign(uuid.UUID(str(campaign)), uuid.UUID(str(customer)), 0.1, VARIANTS) == first


def test_the_holdout_share_and_variant_weights_hold_over_many_customers() -> None:
    campaign = uuid.uuid4()
    counts = Counter(
        "holdout" if (a := assign(campaign, uuid.uuid4(), 0.10, VARIANTS)).holdout else a.variant for _ in range(20_000)
    )
    assert 0.09 < counts["holdout"] / 20_000 < 0.11
    assert 2.7 < counts["b"] / counts["a"] < 3.3  # weights 1:3
    assert all(a.variant is None for a in [assign(campaign, uuid.uuid4(), 1.0, VARIANTS)])


def test_a_zero_holdout_holds_out_nobody() -> None:
    campaign = uuid.uuid4()
    assert not any(assign(campaign, uuid.uuid4(), 0.0, VARIANTS).holdout for _ in range(2_000))


def test_audience_criteria_each_narrow_and_an_empty_audience_takes_everyone() -> None:
    facts = AudienceFacts(tier="high", plans=frozenset({"pro"}), mrr=5_000, decline_class="hard", country="DE")
    assert in_audience({}, facts)
    assert in_audience({"tiers": ["high"], "plans": ["pro", "team"], "countries": ["DE"]}, facts)
    assert in_audience({"mrr_min": 5_000, "mrr_max": 5_000, "decline_classes": ["hard"]}, facts)
    assert not in_audience({"tiers": ["critical"]}, facts)
    assert not in_audience({"plans": ["basic"]}, facts)
    assert not in_audience({"mrr_min": 5_001}, facts)
    assert not in_audience({"mrr_max": 4_999}, facts)
    assert not in_audience({"decline_classes": ["soft"]}, facts)
    assert not in_audience({"countries": ["US"]}, facts)
    unknown = AudienceFacts(tier=None, plans=frozenset(), mrr=None, decline_class=None, country=None)
    assert not in_audience({"mrr_min": 0}, unknown)


def test_a_step_is_due_its_delay_after_the_case_opened() -> None:
    assert step_due(Step("PT90S", "email", "t"), OPENED, {}, None) == OPENED + timedelta(seconds=90)
    assert step_due(Step("P3D", "email", "t"), OPENED, {}, None) == OPENED + timedelta(days=3)


def test_a_notice_before_access_ends_counts_back_from_the_end() -> None:
    step = Step("P3D", "email", "t", condition="before_access_ends")
    ends = OPENED + timedelta(days=10)
    assert step_due(step, OPENED, {"access_ends_at": ends.isoformat()}, None) == ends - timedelta(days=3)
    assert step_due(step, OPENED, {}, ends) == ends - timedelta(days=3)  # the fallback end
    assert step_due(step, OPENED, {}, OPENED + timedelta(days=1)) == OPENED  # never before the case
    assert step_due(step, OPENED, {}, None) is None


def test_a_soft_decline_step_waits_for_the_next_retry() -> None:
    step = Step("PT0S", "email", "t", condition="after_next_retry")
    retry = OPENED + timedelta(hours=30)
    assert step_due(step, OPENED, {"next_payment_attempt": int(retry.timestamp())}, None) == retry
    assert step_due(step, OPENED, {}, None) == OPENED + DEFAULT_RETRY_WAIT


def test_outside_quiet_hours_a_step_keeps_its_time() -> None:
    due = datetime(2026, 6, 1, 12, 30, 15, tzinfo=UTC)
    assert after_quiet_hours(due, UTC_ZONE, *QUIET) == due


def test_a_step_due_in_the_evening_moves_to_the_next_morning_in_the_customers_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")  # UTC+9, no daylight saving
    due = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)  # 22:00 in Tokyo
    assert after_quiet_hours(due, tokyo, *QUIET) == datetime(2026, 6, 1, 23, 0, tzinfo=UTC)  # 08:00 next day
    early = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)  # 05:00 in Tokyo
    assert after_quiet_hours(early, tokyo, *QUIET) == datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
    new_york = ZoneInfo("America/New_York")  # 13:00 UTC is 09:00 there: allowed
    assert after_quiet_hours(due, new_york, *QUIET) == due


def test_quiet_hours_end_at_the_local_morning_across_a_spring_forward_night() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # 2026-03-29: 02:00 CET becomes 03:00 CEST
    due = datetime(2026, 3, 28, 21, 30, tzinfo=UTC)  # 22:30 CET
    moved = after_quiet_hours(due, berlin, *QUIET)
    assert moved == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 CEST, not 07:00 UTC
    assert moved.astimezone(berlin).hour == 8


def test_quiet_hours_end_at_the_local_morning_across_a_fall_back_night() -> None:
    new_york = ZoneInfo("America/New_York")  # 2026-11-01: 02:00 EDT becomes 01:00 EST
    due = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)  # 22:00 EDT on Oct 31
    moved = after_quiet_hours(due, new_york, *QUIET)
    assert moved == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)  # 08:00 EST
    assert moved.astimezone(new_york).hour == 8


def test_a_quiet_end_that_does_not_exist_that_day_moves_to_the_first_minute_that_does() -> None:
    new_york = ZoneInfo("America/New_York")  # 2026-03-08: 02:00 EST jumps to 03:00 EDT
    due = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # 00:00 EST, inside 23:00-02:30
    moved = after_quiet_hours(due, new_york, time(23, 0), time(2, 30))
    assert moved == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, the first minute after the gap
    assert moved.astimezone(new_york).time() == time(3, 0)


def test_quiet_hours_that_do_not_wrap_midnight_and_equal_bounds() -> None:
    due = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    assert after_quiet_hours(due, UTC_ZONE, time(12, 0), time(14, 0)) == datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
    assert after_quiet_hours(due, UTC_ZONE, time(9, 0), time(9, 0)) == due


def test_the_customers_zone_comes_from_timezone_then_country_then_the_tenant() -> None:
    tenant = ZoneInfo("Europe/Paris")
    assert customer_zone({"timezone": "Asia/Tokyo", "country": "US"}, tenant) == ZoneInfo("Asia/Tokyo")
    assert customer_zone({"timezone": "Not/AZone", "country": "us"}, tenant) == ZoneInfo("America/New_York")
    assert customer_zone({"timezone": "../../etc/passwd"}, tenant) == tenant
    assert customer_zone({"country": "ZZ"}, tenant) == tenant
    assert customer_zone({}, tenant) == tenant


def test_caps_count_across_channels_per_week_and_per_channel_per_day() -> None:
    caps = Caps(per_customer_per_week=3, per_channel_per_day=1)
    assert cap_allows(caps, "email", {}, {})
    assert cap_allows(caps, "sms", {"email": 1}, {"email": 1})
    assert not cap_allows(caps, "email", {"email": 1}, {"email": 1})
    assert not cap_allows(caps, "whop", {"email": 2, "sms": 1}, {})
    assert cap_allows(caps, "whop", {"email": 1, "sms": 1}, {"sms": 1})


def test_a_capped_message_waits_until_the_oldest_message_filling_the_cap_leaves_its_window() -> None:
    caps = Caps(per_customer_per_week=3, per_channel_per_day=1)
    now = datetime(2026, 6, 10, 12, tzinfo=UTC)
    assert cap_allows_at(caps, "email", [], now) == now
    assert cap_allows_at(caps, "email", [("in_app", now - timedelta(minutes=1))] * 5, now) == now
    emailed = now - timedelta(hours=3)
    assert cap_allows_at(caps, "email", [("email", emailed)], now) == emailed + timedelta(days=1)
    assert cap_allows_at(caps, "sms", [("email", emailed)], now) == now
    week = [("email", now - timedelta(days=6)), ("sms", now - timedelta(days=4)), ("whop", now - timedelta(days=2))]
    assert cap_allows_at(caps, "email", week, now) == now + timedelta(days=1)  # the 6-day-old one leaves
    assert cap_allows_at(Caps(3, 0), "email", [], now) == now + timedelta(days=1)
