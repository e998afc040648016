"""Risk types: a score with its reasons, tiers, the tier thresholds, the distribution over tiers, and the
model versions with how each was trained and measured."""

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from churnsaver.backend.risk.models import RiskModel as RiskModelRow
from churnsaver.backend.risk.repository import Distribution
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


@strawberry.type(name="RiskDistribution", description="How many customers who can still churn are in each tier now.")
class RiskDistributionType:
    critical: int
    high: int
    medium: int
    low: int
    unscored: int = strawberry.field(description="Customers who can still churn, not scored yet.")
    churned: int = strawberry.field(description="Churned customers: in no tier.")

    @classmethod
    def from_distribution(cls, distribution: Distribution) -> "RiskDistributionType":
        counts = distribution.counts
        return cls(
            critical=counts["critical"],
            high=counts["high"],
            medium=counts["medium"],
            low=counts["low"],
            unscored=distribution.unscored,
            churned=distribution.churned,
        )


@strawberry.type(
    description="Predicted against observed churn for holdout rows whose probability fell in [lower, upper)."
)
class CalibrationBin:
    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed_rate: float | None


@strawberry.type(description="How well a model's probabilities fit outcomes on the newest (holdout) snapshots.")
class RiskModelMetrics:
    rows: int
    positives: int = strawberry.field(description="Holdout rows that churned within the horizon.")
    roc_auc: float | None
    pr_auc: float | None = strawberry.field(description="Average precision.")
    log_loss: float | None
    brier: float | None
    top_decile_lift: float | None = strawberry.field(
        description="Churn rate in the highest-scored tenth over the overall rate."
    )
    calibration: list[CalibrationBin]

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "RiskModelMetrics | None":
        if data is None:
            return None
        return cls(
            rows=data["rows"],
            positives=data["positives"],
            roc_auc=data.get("roc_auc"),
            pr_auc=data.get("pr_auc"),
            log_loss=data.get("log_loss"),
            brier=data.get("brier"),
            top_decile_lift=data.get("top_decile_lift"),
            calibration=[CalibrationBin(**row) for row in data.get("calibration", [])],
        )


@strawberry.type(name="RiskModelCandidate", description="One family's figures on a version's holdout.")
class RiskModelCandidate:
    family: str = strawberry.field(description="catboost, logistic, rules or blend (the mean of the first two).")
    roc_auc: float | None
    pr_auc: float | None
    top_decile_lift: float | None


@strawberry.type(
    name="RiskModelComparison",
    description="The families a training run measured on the same holdout, and the one it serves.",
)
class RiskModelComparison:
    served: str = strawberry.field(
        description="The family that ranked the holdout best: catboost, logistic, rules or blend."
    )
    reason: str
    candidates: list[RiskModelCandidate]

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "RiskModelComparison | None":
        if not data:
            return None
        candidates = [
            RiskModelCandidate(
                family=item["family"],
                roc_auc=item.get("roc_auc"),
                pr_auc=item.get("pr_auc"),
                top_decile_lift=item.get("top_decile_lift"),
            )
            for item in data["candidates"]
        ]
        return cls(served=data["served"], reason=data["reason"], candidates=candidates)


@strawberry.type
class FeatureImportance:
    feature: str
    importance: float


@strawberry.type(name="RiskModel", description='A model version: "v1", "v2", … (CatBoost) or "rules".')
class RiskModelType:
    row: strawberry.Private[RiskModelRow]
    version: str
    kind: str = strawberry.field(description="The family that scores: catboost, logistic, blend or rules.")
    status: str = strawberry.field(description="queued, training, ready, rejected or failed.")
    progress: JSON = strawberry.field(description="The stage a run is in and its percentage.")
    active: bool = strawberry.field(description="Whether this version scores the tenant's customers.")
    as_of: datetime = strawberry.field(description="Trained on what was known at this time.")
    horizon_days: int = strawberry.field(description="Predicts churn within this many days.")
    error: str | None = strawberry.field(description="Why a run was rejected or failed.")
    metrics: RiskModelMetrics | None = strawberry.field(description="CatBoost on the holdout.")
    baseline_metrics: RiskModelMetrics | None = strawberry.field(
        description="The logistic-regression baseline trained on the same rows, on the same holdout."
    )
    comparison: RiskModelComparison | None = strawberry.field(
        description="CatBoost, the logistic baseline and the rules on the holdout; the family served and why."
    )
    training_summary: JSON | None = strawberry.field(
        description="Rows, churners and dates of the fit, validation and holdout splits; the activation decision."
    )
    feature_importances: list[FeatureImportance] | None = strawberry.field(description="Most important first.")
    created_at: datetime
    finished_at: datetime | None
    activated_at: datetime | None

    @classmethod
    def from_row(cls, row: RiskModelRow) -> "RiskModelType":
        return cls(
            row=row,
            version=row.version,
            kind=row.kind,
            status=row.status,
            progress=JSON(row.progress),
            active=row.active,
            as_of=row.as_of,
            horizon_days=row.horizon_days,
            error=row.error,
            metrics=RiskModelMetrics.from_json(row.metrics),
            baseline_metrics=RiskModelMetrics.from_json(row.baseline_metrics),
            comparison=RiskModelComparison.from_json(_comparison(row.training_summary)),
            training_summary=JSON(row.training_summary) if row.training_summary is not None else None,
            feature_importances=[FeatureImportance(**item) for item in row.feature_importances or []] or None,
            created_at=row.created_at,
            finished_at=row.finished_at,
            activated_at=row.activated_at,
        )


def _comparison(summary: dict[str, object] | None) -> dict[str, Any] | None:
    comparison = (summary or {}).get("comparison")
    return comparison if isinstance(comparison, dict) else None
