"""What the risk engine stores: model versions, scores and their history, settings.

Features come from the customers' daily aggregates (`customers/activity.py`)."""

import uuid
from datetime import datetime
from typing import TypedDict

from sqlalchemy import JSON, Float, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from churnsaver.backend.core.db import Base, TenantOwned, utcnow

TIERS = ("critical", "high", "medium", "low")  # a score's tier, highest first
# The domain event a customer's move between tiers records (payload: from, to, score, as_of, ...).
TIER_CHANGED = "risk.tier_changed"


class FeatureImportanceItem(TypedDict):
    """One entry of `RiskModel.feature_importances`."""

    feature: str
    importance: float


class RiskModel(TenantOwned, Base):
    """One model version of a tenant: `version` is "v1", "v2", ... or "rules" (cold start).

    A training run creates its row first (status queued), so its progress is visible while it
    runs; `active` marks the version that scores (at most one per tenant)."""

    __tablename__ = "risk_models"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # the family that scores: "catboost", "logistic", "blend" or "rules"
    status: Mapped[str] = mapped_column(String(16))  # queued, training, ready, rejected, failed
    progress: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(default=False)
    as_of: Mapped[datetime]
    horizon_days: Mapped[int]
    metrics: Mapped[dict[str, object] | None] = mapped_column(JSON)
    baseline_metrics: Mapped[dict[str, object] | None] = mapped_column(JSON)
    training_summary: Mapped[dict[str, object] | None] = mapped_column(JSON)
    feature_importances: Mapped[list[FeatureImportanceItem] | None] = mapped_column(JSON)
    feature_spec: Mapped[dict[str, object] | None] = mapped_column(JSON)
    model_blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    activated_at: Mapped[datetime | None]


class ScoreColumns:
    """What a score says, the same in the current score and in its history."""

    score: Mapped[float] = mapped_column(Float)
    tier: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    model_version: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[datetime]
    scored_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskScore(ScoreColumns, TenantOwned, Base):
    """A customer's current score; every score is also appended to `risk_score_history`."""

    __tablename__ = "risk_scores"
    __table_args__ = (
        Index("ix_risk_scores_tenant_score", "tenant_id", "score", "customer_id"),
        Index("ix_risk_scores_tenant_tier", "tenant_id", "tier"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)


class RiskScoreHistory(ScoreColumns, TenantOwned, Base):
    __tablename__ = "risk_score_history"
    __table_args__ = (Index("ix_risk_score_history_customer", "tenant_id", "customer_id", "scored_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))


class RiskSettings(TenantOwned, Base):
    """Per-tenant risk configuration; a tenant without a row uses the defaults in `risk/settings.py`."""

    __tablename__ = "risk_settings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    critical_threshold: Mapped[float] = mapped_column(Float)
    high_threshold: Mapped[float] = mapped_column(Float)
    medium_threshold: Mapped[float] = mapped_column(Float)
    min_churners: Mapped[int]
    horizon_days: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
