"""The cold-start score: documented rules, used until a tenant has enough labelled outcomes.

Its model version is `rules`. It reads the same feature frame a CatBoost model does and adds
fixed amounts of probability to a base rate, so every point of a score is one reason:

| rule | feature | adds |
|---|---|---|
| base rate | | 0.10 |
| failed payments in the last 30 days | `payment_failures_30d` | +0.15 each, at most 3 (+0.45) |
| cancellation scheduled at period end | `cancel_scheduled` | +0.35 |
| inactive: days since the last activity | `days_since_last_activity` | 7-13: +0.05, 14-29: +0.15, 30+: +0.25 |
| activity drop: active days in the last 30 under half the 90-day monthly average | `active_days_30d` | +0.10 |
| tenure: new customers churn more, loyal ones less | `tenure_days` | < 30: +0.05, >= 365: -0.10 |

The sum is kept within [0.01, 0.99]. A missing feature (a tenant that sends no usage events,
say) adds nothing.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnsaver.backend.risk.explain import Reason, top_reasons
from churnsaver.backend.risk.features import FeatureSpec

BASE_RATE = 0.10
FLOOR, CEILING = 0.01, 0.99

RULES_SPEC = FeatureSpec(
    numeric=(
        "payment_failures_30d",
        "cancel_scheduled",
        "days_since_last_activity",
        "active_days_30d",
        "active_days_90d",
        "tenure_days",
    ),
    categorical=(),
)


@dataclass(frozen=True, slots=True)
class RuleScores:
    scores: np.ndarray
    reasons: list[list[Reason]]


def rule_impacts(frame: pd.DataFrame) -> pd.DataFrame:
    """Each rule's contribution per customer, one column per feature it reads (0 where missing)."""

    def column(name: str) -> np.ndarray:
        return frame[name].to_numpy(dtype=float) if name in frame else np.full(len(frame), np.nan)

    failures = np.nan_to_num(column("payment_failures_30d"))
    cancel = np.nan_to_num(column("cancel_scheduled"))
    idle = column("days_since_last_activity")
    recent, quarter = column("active_days_30d"), column("active_days_90d")
    tenure = column("tenure_days")
    with np.errstate(invalid="ignore"):
        dropped = (quarter > 0) & (recent < 0.5 * quarter / 3)
        impacts = {
            "payment_failures_30d": 0.15 * np.clip(failures, 0, 3),
            "cancel_scheduled": np.where(cancel > 0, 0.35, 0.0),
            "days_since_last_activity": np.select([idle >= 30, idle >= 14, idle >= 7], [0.25, 0.15, 0.05], 0.0),
            "active_days_30d": np.where(dropped, 0.10, 0.0),
            "tenure_days": np.select([tenure < 30, tenure >= 365], [0.05, -0.10], 0.0),
        }
    return pd.DataFrame(impacts, index=frame.index)


def score_by_rules(frame: pd.DataFrame) -> RuleScores:
    impacts = rule_impacts(frame)
    scores = np.clip(BASE_RATE + impacts.to_numpy().sum(axis=1), FLOOR, CEILING)
    values = pd.DataFrame({name: frame.get(name, np.nan) for name in impacts.columns}, index=frame.index)
    return RuleScores(scores=scores, reasons=top_reasons(impacts.to_numpy(), values))
