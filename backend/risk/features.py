"""Features of customers as of a time t, from the daily aggregates only (never the raw timeline).

CONTRACT (shared by training, scoring, explanations; implementation in progress):

- Feature names: `usage.<event>.7d|30d|90d` (counts in the window ending at t), `usage.<event>.trend`
  (last 7 days against the 28-day rate), `days_since_last_activity`, `active_days_30d`,
  `active_days_90d`, `payment_failures_30d`, `payment_failures_90d`, `last_decline_class` (cat),
  `tenure_days`, `plan` (cat), `mrr`, `discounts_received`, `cancel_scheduled` (0/1),
  `subscription_status` (cat), and `trait.<name>` for every trait (cat or number by its type).
- `FeatureMatrix.frame`: one row per customer, in `customer_ids` order; numeric columns float64
  with NaN for missing; categorical columns str with MISSING_CATEGORY for missing.
- `FeatureSpec` fixes the columns a model was trained on; scoring builds exactly those columns
  (a usage event or trait unknown at training is left out; one that vanished is missing).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

MISSING_CATEGORY = "(missing)"


@dataclass(frozen=True)
class FeatureSpec:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def to_json(self) -> dict[str, Any]:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FeatureSpec":
        return cls(tuple(data["numeric"]), tuple(data["categorical"]))


@dataclass(frozen=True)
class FeatureMatrix:
    customer_ids: list[uuid.UUID]
    as_of: list[datetime]  # per row: snapshots of one customer at several dates share its id
    frame: pd.DataFrame
    spec: FeatureSpec
