"""The documented cold-start rules, their reasons, and tiers by validated thresholds."""

import numpy as np
import pandas as pd
import pytest

from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.risk.explain import reason_text, top_reasons
from churnsaver.backend.risk.rules import BASE_RATE, FLOOR, score_by_rules
from churnsaver.backend.risk.settings import DEFAULT_SETTINGS, Thresholds, tier_for, tiers_for


def frame(**columns: list[float]) -> pd.DataFrame:
    defaults = {
        "payment_failures_30d": 0.0,
        "cancel_scheduled": 0.0,
        "days_since_last_activity": 1.0,
        "active_days_30d": 20.0,
        "active_days_90d": 60.0,
        "tenure_days": 200.0,
    }
    rows = len(next(iter(columns.values()))) if columns else 1
    return pd.DataFrame({name: columns.get(name, [value] * rows) for name, value in defaults.items()})


def test_each_rule_adds_its_documented_amount_and_is_a_reason() -> None:
    risky = frame(
        payment_failures_30d=[2.0],
        cancel_scheduled=[1.0],
        days_since_last_activity=[30.0],
        active_days_30d=[0.0],
        active_days_90d=[30.0],
        tenure_days=[400.0],
    )
    result = score_by_rules(risky)

    # base 0.10 + 2 failures 0.30 + cancel 0.35 + idle 30 days 0.25 + drop 0.10 - loyal 0.10
    assert result.scores[0] == pytest.approx(0.99)  # 1.00, kept under the ceiling
    [reasons] = result.reasons
    assert [reason["feature"] for reason in reasons] == [
        "cancel_scheduled",
        "payment_failures_30d",
        "days_since_last_activity",
    ]
    assert [reason["impact"] for reason in reasons] == [0.35, 0.3, 0.25]
    assert all(reason["direction"] == "up" and reason["label"] for reason in reasons)
    assert reason_text(reasons[0]).endswith("(+0.35)")


def test_a_healthy_loyal_customer_scores_low_and_the_reason_points_down() -> None:
    result = score_by_rules(frame(tenure_days=[800.0]))

    assert result.scores[0] == pytest.approx(FLOOR)  # 0.10 - 0.10, kept above the floor
    [reasons] = result.reasons
    assert [(reason["feature"], reason["direction"], reason["impact"]) for reason in reasons] == [
        ("tenure_days", "down", -0.1)
    ]


def test_missing_features_add_nothing() -> None:
    missing = frame(days_since_last_activity=[np.nan], active_days_30d=[np.nan], active_days_90d=[np.nan])
    result = score_by_rules(missing)

    assert result.scores[0] == pytest.approx(BASE_RATE)
    assert result.reasons == [[]]


def test_top_reasons_keeps_the_three_largest_by_size_either_sign() -> None:
    impacts = np.array([[0.01, -0.2, 0.05, 0.3, -0.001]])
    values = pd.DataFrame({"a": [1.0], "payment_failures_30d": [2.0], "c": [3.0], "tenure_days": [5.0], "e": [0.0]})

    [reasons] = top_reasons(impacts, values)

    assert [(r["feature"], r["direction"]) for r in reasons] == [
        ("tenure_days", "up"),
        ("payment_failures_30d", "down"),
        ("c", "up"),
    ]


@pytest.mark.parametrize(
    ("critical", "high", "medium"),
    [(0.8, 0.6, 0.0), (0.8, 0.6, 0.6), (0.6, 0.8, 0.3), (1.1, 0.6, 0.3), (0.8, 0.9, 0.3), (float("nan"), 0.5, 0.2)],
)
def test_thresholds_must_rise_from_medium_to_critical_within_zero_and_one(critical, high, medium) -> None:
    with pytest.raises(InvalidInput, match="risk thresholds"):
        Thresholds(critical=critical, high=high, medium=medium).validated()


def test_a_score_is_in_the_highest_tier_whose_threshold_it_reaches() -> None:
    thresholds = Thresholds(critical=0.9, high=0.5, medium=0.2).validated()
    scores = np.array([0.0, 0.19, 0.2, 0.49, 0.5, 0.89, 0.9, 1.0])

    assert tiers_for(scores, thresholds).tolist() == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "critical",
        "critical",
    ]
    assert tier_for(0.85, DEFAULT_SETTINGS.thresholds) == "critical"
    assert tier_for(0.85, thresholds) == "high"
