"""The RiskModel type: one version of a tenant's churn model, with how it was trained and measured."""

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from churnsaver.backend.risk.models import RiskModel as RiskModelRow


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


@strawberry.type
class FeatureImportance:
    feature: str
    importance: float


@strawberry.type(name="RiskModel", description='A model version: "v1", "v2", … (CatBoost) or "rules".')
class RiskModelType:
    row: strawberry.Private[RiskModelRow]
    version: str
    kind: str = strawberry.field(description="catboost or rules.")
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
            progress=row.progress,
            active=row.active,
            as_of=row.as_of,
            horizon_days=row.horizon_days,
            error=row.error,
            metrics=RiskModelMetrics.from_json(row.metrics),
            baseline_metrics=RiskModelMetrics.from_json(row.baseline_metrics),
            training_summary=row.training_summary,
            feature_importances=[FeatureImportance(**item) for item in row.feature_importances or []] or None,
            created_at=row.created_at,
            finished_at=row.finished_at,
            activated_at=row.activated_at,
        )
