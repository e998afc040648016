"""Feature values as a merchant reads them: "No activity in 21 days", "Cancellation scheduled".

Explanations show a customer's strongest reasons with these labels, so each says the value in
plain words rather than a column name and a number. Any feature not named here (a trait, a
usage window) still reads sensibly from its name.
"""

import math
from typing import Any

from churnsaver.backend.risk.features import MISSING_CATEGORY, TRAIT_PREFIX, USAGE_PREFIX, WINDOW_DAYS


def describe(feature: str, value: Any) -> str:
    """The human label of `feature` at `value` (a number, a category, None/NaN for missing)."""
    missing = _is_missing(value)
    if feature.startswith(USAGE_PREFIX):
        return _usage(feature[len(USAGE_PREFIX) :], value, missing)
    if feature.startswith(TRAIT_PREFIX):
        return f"{_title(feature[len(TRAIT_PREFIX) :])}: {'unknown' if missing else _text(value)}"
    describe_base = BASE_LABELS.get(feature)
    if describe_base is not None:
        return describe_base(value, missing)
    return f"{_title(feature)}: {'unknown' if missing else _text(value)}"


def _is_missing(value: Any) -> bool:
    if value is None or value == MISSING_CATEGORY:
        return True
    return isinstance(value, float) and math.isnan(value)


def _usage(rest: str, value: Any, missing: bool) -> str:
    event, window = rest.rsplit(".", 1)
    if window == "trend":
        if missing:
            return f"{event}: no use in the last 4 weeks"
        return f"{event}: last week at {_number(value * 100)}% of the 4-week rate"
    ratio = USAGE_RATIO_LABELS.get(window)
    if ratio is not None:
        return f"{event}: {ratio(value, missing)}"
    period = f"{window[:-1]} days" if window.endswith("d") and window[:-1].isdigit() else window
    return f"{event}: {'unknown' if missing else _number(value)} in the last {period}"


def _percent(value: Any) -> str:
    return f"{_number(value * 100)}%"


USAGE_RATIO_LABELS = {
    "trend_14d": lambda value, missing: (
        "no use in the last 8 weeks" if missing else f"last 2 weeks at {_percent(value)} of the 8-week rate"
    ),
    "change": lambda value, missing: (
        "no use in the last 8 weeks"
        if missing
        else f"last 4 weeks against the 4 before {value:+.2f} (-1 stopped, +1 new)"
    ),
    "share": lambda value, missing: (
        "no use in the last 4 weeks" if missing else f"{_percent(value)} of use in the last 4 weeks"
    ),
    "days_since": lambda value, missing: (
        f"not used in {WINDOW_DAYS} days"
        if missing or value >= WINDOW_DAYS
        else f"last used {_count(int(value), 'day')} ago"
    ),
    "daily_90d": lambda value, missing: "unknown" if missing else f"{_number(value)} a day over 90 days",
    "daily_life": lambda value, missing: "never used" if missing else f"{_number(value)} a day since the first use",
    "vs_life": lambda value, missing: (
        "never used" if missing else f"last 4 weeks at {_percent(value)} of its rate since the first use"
    ),
    "share_vs_life": lambda value, missing: (
        "no use in the last 4 weeks"
        if missing
        else f"share of use in the last 4 weeks {value * 100:+.0f} points against its share since the first use"
    ),
}


def _days_since_activity(value: Any, missing: bool) -> str:
    if missing:
        return "No activity recorded"
    days = int(value)
    return "Active today" if days == 0 else f"No activity in {_count(days, 'day')}"


def _counted(noun: str, period: str) -> Any:
    def label(value: Any, missing: bool) -> str:
        return f"{_count(0 if missing else int(value), noun)} in {period}"

    return label


def _cancel_scheduled(value: Any, missing: bool) -> str:
    if missing:
        return "No cancellation on record"
    return "Cancellation scheduled" if value >= 0.5 else "No cancellation scheduled"


def _tenure(value: Any, missing: bool) -> str:
    return "Tenure unknown" if missing else f"Customer for {_count(int(value), 'day')}"


def _mrr(value: Any, missing: bool) -> str:
    # MRR is in minor units (cents); labels show major units without a currency.
    return "MRR unknown" if missing else f"MRR {value / 100:,.2f}"


def _category(title: str, unknown: str) -> Any:
    def label(value: Any, missing: bool) -> str:
        return unknown if missing else f"{title}: {_text(value)}"

    return label


BASE_LABELS = {
    "days_since_last_activity": _days_since_activity,
    "active_days_30d": _counted("active day", "30 days"),
    "active_days_90d": _counted("active day", "90 days"),
    "active_days_7d": _counted("active day", "7 days"),
    "active_days_28d": _counted("active day", "28 days"),
    "active_day_share_28d": lambda value, missing: (
        "Active days unknown" if missing else f"Active on {_percent(value)} of the last 28 days"
    ),
    "usage_28d": _counted("use", "28 days"),
    "usage_vs_life": lambda value, missing: (
        "No use recorded"
        if missing
        else f"Use in the last 4 weeks at {_percent(value)} of its rate since the first use"
    ),
    "days_since_payment_failure": lambda value, missing: (
        f"No payment failure in {WINDOW_DAYS} days"
        if missing or value >= WINDOW_DAYS
        else f"Last payment failure {_count(int(value), 'day')} ago"
    ),
    "payment_failures_30d": _counted("payment failure", "30 days"),
    "payment_failures_90d": _counted("payment failure", "90 days"),
    "discounts_received": lambda value, missing: f"{_count(0 if missing else int(value), 'discount')} received",
    "tenure_days": _tenure,
    "mrr": _mrr,
    "cancel_scheduled": _cancel_scheduled,
    "plan": _category("Plan", "Plan unknown"),
    "subscription_status": _category("Subscription", "Subscription status unknown"),
    "last_decline_class": lambda value, missing: (
        "No recent declined payment" if missing else f"Last declined payment: {_text(value)} decline"
    ),
}


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _number(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:.1f}"


def _text(value: Any) -> str:
    return _number(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _title(name: str) -> str:
    spaced = name.replace("_", " ").strip()
    return spaced[:1].upper() + spaced[1:] if spaced else name
