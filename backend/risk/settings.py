"""A tenant's risk settings: tier thresholds, the cold-start bar, the churn horizon.

A tenant without a `risk_settings` row uses `DEFAULT_SETTINGS`. A score falls in the highest tier
whose threshold it reaches: critical >= `critical`, high >= `high`, medium >= `medium`, else low.
"""

import math
import uuid
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import insert_for, utcnow
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.risk.models import TIERS, RiskSettings
from churnsaver.backend.risk.repository import RiskSettingsRepository


@dataclass(frozen=True, slots=True)
class Thresholds:
    critical: float
    high: float
    medium: float

    def validated(self) -> "Thresholds":
        """Self, or InvalidInput unless 0 < medium < high < critical <= 1."""
        values = (self.medium, self.high, self.critical)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise InvalidInput("risk thresholds must be finite numbers")
        if not 0 < self.medium < self.high < self.critical <= 1:
            raise InvalidInput(
                "risk thresholds must satisfy 0 < medium < high < critical <= 1 "
                f"(got medium={self.medium}, high={self.high}, critical={self.critical})"
            )
        return self


@dataclass(frozen=True, slots=True)
class RiskConfig:
    thresholds: Thresholds
    min_churners: int  # labelled churners a tenant needs before a CatBoost model replaces the rules
    horizon_days: int  # "churns within this many days" is what a score predicts
    is_default: bool


DEFAULT_SETTINGS = RiskConfig(
    thresholds=Thresholds(critical=0.5, high=0.3, medium=0.15), min_churners=50, horizon_days=30, is_default=True
)


def tier_for(score: float, thresholds: Thresholds) -> str:
    return str(tiers_for(np.asarray([score], dtype=float), thresholds)[0])


def tiers_for(scores: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """The tier of each score, vectorised: a whole tenant's batch at once."""
    return np.select(
        [scores >= thresholds.critical, scores >= thresholds.high, scores >= thresholds.medium],
        list(TIERS[:3]),
        default=TIERS[3],
    )


async def load_config(session: AsyncSession, tenant_id: uuid.UUID) -> RiskConfig:
    row = await RiskSettingsRepository(session, tenant_id).find()
    if row is None:
        return DEFAULT_SETTINGS
    return RiskConfig(
        thresholds=Thresholds(critical=row.critical_threshold, high=row.high_threshold, medium=row.medium_threshold),
        min_churners=row.min_churners,
        horizon_days=row.horizon_days,
        is_default=False,
    )


async def set_thresholds(session: AsyncSession, tenant_id: uuid.UUID, thresholds: Thresholds) -> RiskConfig:
    """Store validated thresholds (InvalidInput otherwise); the other settings keep their values."""
    thresholds.validated()
    config = replace(await load_config(session, tenant_id), thresholds=thresholds, is_default=False)
    values = {
        "critical_threshold": thresholds.critical,
        "high_threshold": thresholds.high,
        "medium_threshold": thresholds.medium,
        "min_churners": config.min_churners,
        "horizon_days": config.horizon_days,
        "updated_at": utcnow(),
    }
    insert = insert_for(session)(RiskSettings).values(tenant_id=tenant_id, **values)
    await session.execute(insert.on_conflict_do_update(index_elements=["tenant_id"], set_=values))
    return config
