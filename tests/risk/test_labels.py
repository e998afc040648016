"""Human labels of feature values, as explanations show them."""

import math

import pytest

from churnsaver.backend.risk.features import MISSING_CATEGORY
from churnsaver.backend.risk.labels import describe


@pytest.mark.parametrize(
    ("feature", "value", "label"),
    [
        ("days_since_last_activity", 21.0, "No activity in 21 days"),
        ("days_since_last_activity", 1.0, "No activity in 1 day"),
        ("days_since_last_activity", 0.0, "Active today"),
        ("days_since_last_activity", math.nan, "No activity recorded"),
        ("payment_failures_30d", 3.0, "3 payment failures in 30 days"),
        ("payment_failures_90d", 1.0, "1 payment failure in 90 days"),
        ("active_days_30d", 12.0, "12 active days in 30 days"),
        ("cancel_scheduled", 1.0, "Cancellation scheduled"),
        ("cancel_scheduled", 0.0, "No cancellation scheduled"),
        ("usage.login.7d", 2.0, "login: 2 in the last 7 days"),
        ("usage.report.exported.30d", 0.0, "report.exported: 0 in the last 30 days"),
        ("usage.login.trend", 0.5, "login: last week at 50% of the 4-week rate"),
        ("usage.login.56d", 9.0, "login: 9 in the last 56 days"),
        ("usage.login.trend_14d", 1.5, "login: last 2 weeks at 150% of the 8-week rate"),
        ("usage.login.change", -0.5, "login: last 4 weeks against the 4 before -0.50 (-1 stopped, +1 new)"),
        ("usage.login.share", 0.25, "login: 25% of use in the last 4 weeks"),
        ("usage.login.days_since", 3.0, "login: last used 3 days ago"),
        ("usage.login.days_since", 90.0, "login: not used in 90 days"),
        ("usage.login.daily_life", 0.5, "login: 0.5 a day since the first use"),
        ("usage.login.vs_life", 0.25, "login: last 4 weeks at 25% of its rate since the first use"),
        (
            "usage.core_action.share_vs_life",
            -0.3,
            "core_action: share of use in the last 4 weeks -30 points against its share since the first use",
        ),
        ("usage_vs_life", 0.4, "Use in the last 4 weeks at 40% of its rate since the first use"),
        ("usage_vs_life", math.nan, "No use recorded"),
        ("active_day_share_28d", 0.5, "Active on 50% of the last 28 days"),
        ("days_since_payment_failure", 90.0, "No payment failure in 90 days"),
        ("plan", "pro", "Plan: pro"),
        ("plan", MISSING_CATEGORY, "Plan unknown"),
        ("subscription_status", "past_due", "Subscription: past_due"),
        ("last_decline_class", "hard", "Last declined payment: hard decline"),
        ("tenure_days", 400.0, "Customer for 400 days"),
        ("mrr", 2999.0, "MRR 29.99"),
        ("discounts_received", 2.0, "2 discounts received"),
        ("trait.seats", 3.0, "Seats: 3"),
        ("trait.company_size", "51-200", "Company size: 51-200"),
        ("trait.seats", math.nan, "Seats: unknown"),
        ("trait.region", MISSING_CATEGORY, "Region: unknown"),
        ("something_new", 4.5, "Something new: 4.5"),
    ],
)
def test_each_feature_value_reads_in_plain_words(feature, value, label) -> None:
    assert describe(feature, value) == label
