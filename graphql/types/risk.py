"""Risk types: a score with its reasons, tiers, the tier thresholds, the distribution over tiers."""

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from churnsaver.backend.risk.queries import Distribution
from churnsaver.backend.risk.settings import RiskConfig
from churnsaver.graphql.pagination import Connection


@strawberry.enum(name="RiskTier", description="Where a score falls against the tenant's thresholds.")
class RiskTier(Enum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@strawberry.enum(name="RiskDirection", description="Whether a reason raised the score or lowered it.")
class RiskDirection(Enum):
    UP = "up"
    DOWN = "down"


@strawberry.type(name="RiskReason", description="One of a score's top reasons, e.g. 'No logins in 21 days (+0.18)'.")
class RiskReasonType:
    feature: str = strawberry.field(description="The feature's name, e.g. days_since_last_activity.")
    label: str = strawberry.field(description="What the feature's value means, for people.")
    direction: RiskDirection
    impact: float = strawberry.field(description="How much it moved the probability, signed (+0.18).")

    @classmethod
    def from_json(cls, reason: dict[str, Any]) -> "RiskReasonType":
        return cls(
            feature=reason["feature"],
            label=reason["label"],
            direction=RiskDirection(reason["direction"]),
            impact=reason["impact"],
        )


@strawberry.type(name="RiskScore", description="A churn risk score: the probability of churning within the horizon.")
class RiskScoreType:
    score: float = strawberry.field(description="Between 0 and 1.")
    tier: RiskTier
    reasons: list[RiskReasonType] = strawberry.field(description="The top reasons, largest first.")
    model_version: str = strawberry.field(description='"v1", "v2", … or "rules" (the cold-start score).')
    as_of: datetime = strawberry.field(description="The moment the customer was scored as of.")
    scored_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> "RiskScoreType":
        """From a current score or a history row: both hold the same fields."""
        return cls(
            score=row.score,
            tier=RiskTier(row.tier),
            reasons=[RiskReasonType.from_json(reason) for reason in row.reasons],
            model_version=row.model_version,
            as_of=row.as_of,
            scored_at=row.scored_at,
        )


RiskScoreConnection = Connection[RiskScoreType]


@strawberry.type(name="RiskThresholds", description="A score is in the highest tier whose threshold it reaches.")
class RiskThresholdsType:
    critical: float
    high: float
    medium: float = strawberry.field(description="Below it, a score is low.")
    is_default: bool = strawberry.field(description="True until the tenant sets its own.")

    @classmethod
    def from_config(cls, config: RiskConfig) -> "RiskThresholdsType":
        thresholds = config.thresholds
        return cls(
            critical=thresholds.critical, high=thresholds.high, medium=thresholds.medium, is_default=config.is_default
        )


@strawberry.type(name="RiskDistribution", description="How many customers are in each tier now.")
class RiskDistributionType:
    critical: int
    high: int
    medium: int
    low: int
    unscored: int = strawberry.field(description="Customers not scored yet.")

    @classmethod
    def from_distribution(cls, distribution: Distribution) -> "RiskDistributionType":
        counts = distribution.counts
        return cls(
            critical=counts["critical"],
            high=counts["high"],
            medium=counts["medium"],
            low=counts["low"],
            unscored=distribution.unscored,
        )
