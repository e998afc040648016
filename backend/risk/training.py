"""Training a tenant's churn model: the pure fit on a TrainingSet, and the steps of a run that stores a version.

Rows are weekly snapshots (risk/snapshots.py): the newest snapshot dates are the holdout, scored
once at the end and never seen by the fit. The number of trees is chosen by early stopping on a
validation slice taken from the newest *training* dates (so it is tested on the future too); the
final model then grows that many trees on every training row, since churn drifts over time and
the newest training dates are the most telling ones.

Class imbalance (churners are a few percent of snapshots) is handled without re-weighting:
boosting on log loss estimates the churn probability itself, which tiers and expected losses
need calibrated, and on our synthetic tenants class weights (with Platt scaling to undo them)
ranked no better. What imbalance does need: a validation slice holding enough churners
(`validation_mask`), early stopping on log loss rather than accuracy, and PR-AUC and top-decile
lift reported beside ROC-AUC. The stored calibration is therefore the identity.
"""

import asyncio
import os
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import pandas as pd
import structlog
from catboost import CatBoostClassifier
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.core.errors import DomainError, InvalidInput
from churnsaver.backend.core.ids import ordered_uuid
from churnsaver.backend.risk import metrics
from churnsaver.backend.risk.baseline import LogisticBaseline
from churnsaver.backend.risk.features import FeatureMatrix, FeatureSpec
from churnsaver.backend.risk.leaf_shap import leaf_tables
from churnsaver.backend.risk.model_store import (
    RULES_VERSION,
    Blend,
    CalibratedCatBoost,
    Calibration,
    StoredModel,
    catboost_pool,
    stored_model,
)
from churnsaver.backend.risk.models import FeatureImportanceItem, RiskModel
from churnsaver.backend.risk.repository import RiskModelRepository
from churnsaver.backend.risk.rules import score_by_rules
from churnsaver.backend.risk.settings import RiskConfig, load_config
from churnsaver.backend.risk.snapshots import training_rows, training_window
from churnsaver.backend.risk.tasks import enqueue_score_tenant
from churnsaver.tenants.auth import AuthSubject

VALIDATION_SHARE = 0.2  # of the training rows, newest dates first
MIN_VALIDATION_CHURNERS = 5
IDENTIFYING_SHARE = 0.5  # a categorical feature with more levels than this share of customers is dropped
MAX_TREES = 1000
EARLY_STOPPING_ROUNDS = 50
LEARNING_RATE = 0.05
TREE_DEPTH = 6
# CatBoost releases the GIL while it works: a serving process keeps its event loop responsive
# with the fit in a worker thread, and a 2-core machine gives it both cores.
TRAINING_THREADS = max(1, min(os.cpu_count() or 1, 4))
RANDOM_SEED = 7
BOOSTING_TYPE = "Plain"
CTR_COMPLEXITY = 1
# Categoricals with at most this many levels (plan, status, decline class, a region) are one-hot
# encoded rather than turned into target statistics: snapshots repeat each customer weekly, and
# on them the statistics of a few broad levels were the less stable choice. Measured on four
# synthetic tenants, holdout ROC-AUC rose by 0.01-0.03 on three and held on the fourth.
ONE_HOT_MAX_LEVELS = 10


class NotEnoughData(ValueError):
    """The rows cannot train a model (the message says why): a final outcome, not a crash."""


class TrainingSet(Protocol):
    """What risk/snapshots.py builds: feature rows, their 0/1 labels and which rows are the holdout."""

    @property
    def matrix(self) -> FeatureMatrix: ...

    @property
    def labels(self) -> np.ndarray: ...

    @property
    def holdout(self) -> np.ndarray: ...

    @property
    def summary(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TrainedModel:
    model: CalibratedCatBoost
    metrics: dict[str, Any]  # CatBoost on the holdout
    baseline_metrics: dict[str, Any]  # logistic regression, same rows, same holdout
    importances: list[FeatureImportanceItem]
    summary: dict[str, Any]
    baseline: LogisticBaseline | None = None
    comparison: dict[str, Any] | None = None  # `compare`'s verdict on the holdout

    @property
    def served(self) -> StoredModel | None:
        """The model that scores if this version is activated; None when the rules ranked best."""
        winner = (self.comparison or {}).get("served", CalibratedCatBoost.kind)
        if winner == LogisticBaseline.kind and self.baseline is not None:
            return self.baseline
        if winner == Blend.kind and self.baseline is not None:
            return Blend(self.model, self.baseline)
        return self.model if winner == CalibratedCatBoost.kind else None

    @property
    def served_auc(self) -> float | None:
        """The served family's holdout ROC-AUC."""
        winner = (self.comparison or {}).get("served", CalibratedCatBoost.kind)
        figures = {item["family"]: item["roc_auc"] for item in (self.comparison or {}).get("candidates", [])}
        return figures.get(winner, self.metrics["roc_auc"])


# ROC-AUC differences below this on one holdout are noise: PR-AUC (the top of the list, where a
# merchant acts) decides between families that close.
AUC_TIE = 0.001


@dataclass(frozen=True)
class Candidate:
    """One family's ranking of the holdout."""

    family: str
    roc_auc: float | None
    pr_auc: float | None
    top_decile_lift: float | None

    def beats(self, other: "Candidate") -> bool:
        auc, other_auc = self.roc_auc or 0.0, other.roc_auc or 0.0
        if abs(auc - other_auc) > AUC_TIE:
            return auc > other_auc
        return (self.pr_auc or 0.0) > (other.pr_auc or 0.0)


def compare(labels: np.ndarray, candidates: dict[str, np.ndarray]) -> dict[str, Any]:
    """Which family ranks the holdout best: ROC-AUC first, PR-AUC within `AUC_TIE`; on a full
    tie the first candidate (CatBoost, the baseline, the rules, then the blend of the first two)
    is kept."""
    figures = [
        Candidate(
            family,
            metrics.roc_auc(labels, probabilities),
            metrics.average_precision(labels, probabilities),
            metrics.top_decile_lift(labels, probabilities),
        )
        for family, probabilities in candidates.items()
    ]
    best = figures[0]
    for candidate in figures[1:]:
        if candidate.beats(best):
            best = candidate
    others = [candidate for candidate in figures if candidate is not best]
    clear = all(abs((best.roc_auc or 0.0) - (other.roc_auc or 0.0)) > AUC_TIE for other in others)
    how = "highest ROC-AUC" if clear else f"ROC-AUC within {AUC_TIE} of the next, higher PR-AUC"
    against = ", ".join(f"{other.family} {_auc_text(other.roc_auc)}" for other in others)
    reason = f"{best.family} ranks the holdout best: ROC-AUC {_auc_text(best.roc_auc)} ({how}; {against})"
    return {"served": best.family, "reason": reason, "candidates": [asdict(candidate) for candidate in figures]}


def _auc_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def validation_mask(snapshot_dates: np.ndarray, labels: np.ndarray, training: np.ndarray) -> np.ndarray:
    """The newest training dates holding VALIDATION_SHARE of the training rows, or more dates until
    at least MIN_VALIDATION_CHURNERS churners are in it (never more than half the training rows).

    A date holding more than half the training rows (imported labelled customers share one date,
    and a tenant with only imported rows has nothing else) gives every fifth of its rows instead:
    taking it whole would leave nothing to fit on.
    """
    total = training.sum()
    chosen = np.zeros_like(training)
    for date in np.unique(snapshot_dates[training])[::-1]:
        rows_of_date = np.flatnonzero(training & (snapshot_dates == date))
        if len(rows_of_date) > total / 2:
            rows_of_date = rows_of_date[:: round(1 / VALIDATION_SHARE)]
        chosen[rows_of_date] = True
        rows, churners = chosen.sum(), labels[chosen].sum()
        if rows >= VALIDATION_SHARE * total and churners >= MIN_VALIDATION_CHURNERS:
            break
        if rows >= total / 2:
            break
    return chosen


def identifying_features(frame: pd.DataFrame, spec: FeatureSpec, customer_ids: np.ndarray) -> list[str]:
    """Categorical features with a level for nearly every customer (email, name, an account number).

    Snapshots repeat a customer at several dates with related labels, so such a column lets the
    model recognise the customer and recall its outcome on other dates: it shines on training rows
    and fails on new ones (CatBoost's target statistics on it turn into a label leak).
    """
    customers = len(pd.unique(customer_ids))
    return [name for name in spec.categorical if frame[name].nunique() > IDENTIFYING_SHARE * customers]


def is_static(training_set: TrainingSet) -> bool:
    """Rows without dates: only imported labelled customers, no weekly snapshots."""
    summary = training_set.summary
    return summary.get("snapshot_rows") == 0 and bool(summary.get("imported_labelled"))


def fit(training_set: TrainingSet) -> TrainedModel:
    """CatBoost and the baseline on the training rows, both measured on the holdout: rows without
    dates through `fit_static`, snapshots through `fit_frame`. CPU-heavy: callers on an event
    loop run it in a thread."""
    matrix = training_set.matrix
    if is_static(training_set):
        return fit_static(
            matrix.frame,
            matrix.spec,
            np.asarray(training_set.labels, dtype=float),
            holdout=np.asarray(training_set.holdout, dtype=bool),
            summary=training_set.summary,
        )
    return fit_frame(
        matrix.frame,
        matrix.spec,
        np.asarray(training_set.labels, dtype=float),
        snapshot_dates=pd.to_datetime(pd.Series(matrix.as_of), utc=True).dt.tz_localize(None).to_numpy(),
        holdout=np.asarray(training_set.holdout, dtype=bool),
        customer_ids=np.asarray([str(customer_id) for customer_id in matrix.customer_ids]),
        summary=training_set.summary,
    )


def fit_frame(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    labels: np.ndarray,
    *,
    snapshot_dates: np.ndarray,
    holdout: np.ndarray,
    customer_ids: np.ndarray | None = None,
    summary: dict[str, Any] | None = None,
) -> TrainedModel:
    """`fit` on plain arrays; without `customer_ids` every row is its own customer."""
    started = time.monotonic()
    frame = frame.reset_index(drop=True)
    training = ~holdout
    customer_ids = customer_ids if customer_ids is not None else np.arange(len(frame))
    dropped = identifying_features(frame[training], spec, customer_ids[training])
    spec = FeatureSpec(spec.numeric, tuple(name for name in spec.categorical if name not in dropped))
    validation = validation_mask(snapshot_dates, labels, training)
    fitting = training & ~validation
    if labels[fitting].sum() == 0 or labels[validation].sum() == 0:
        raise NotEnoughData(
            "the churners fall outside the training dates: too few to fit and validate a model. "
            "The rule-based score stays in use."
        )

    # Stage 1: how many trees, by early stopping on the validation slice.
    probe = _catboost(MAX_TREES)
    probe.fit(
        catboost_pool(frame[fitting], spec, labels[fitting]),
        eval_set=catboost_pool(frame[validation], spec, labels[validation]),
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
    )
    # Stage 2: that many trees (scaled to the larger set) on every training row. The validation
    # dates are the newest before the holdout and churn drifts over time (a price change, a
    # season): leaving them out of the final model costs more than a fixed tree count risks.
    trees = min(MAX_TREES, max(1, round(probe.tree_count_ * training.sum() / fitting.sum())))
    model = _catboost(trees)
    model.fit(catboost_pool(frame[training], spec, labels[training]))
    split = {
        "fit": _describe_rows(labels, snapshot_dates, fitting),
        "validation": _describe_rows(labels, snapshot_dates, validation),
        "holdout": _describe_rows(labels, snapshot_dates, holdout),
    }
    details = {
        "method": "snapshots: newest dates held out, trees by early stopping on the newest training dates",
        "split": split,
        "features": {"numeric": len(spec.numeric), "categorical": len(spec.categorical), "dropped": dropped},
        "early_stopping_trees": int(probe.tree_count_),
    }
    return _measured(model, frame, spec, labels, holdout, {**(summary or {}), **details}, started)


def fit_static(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    labels: np.ndarray,
    *,
    holdout: np.ndarray,
    summary: dict[str, Any] | None = None,
) -> TrainedModel:
    """Rows without dates (one per customer, imported with a label): the holdout is a random
    stratified one (risk/snapshots.py), and CatBoost fits the training rows with its defaults
    (native categorical statistics, ordered boosting on small tables, its own learning rate for
    its 1000 trees). No newest-dates slice, no one-hot encoding, and only true ids (a distinct
    value in every row) dropped: no row repeats a customer here, so no other column can recall
    one customer's outcome for another row of it."""
    started = time.monotonic()
    frame = frame.reset_index(drop=True)
    training = ~holdout
    rows = int(training.sum())
    dropped = [name for name in spec.categorical if rows > 1 and frame.loc[training, name].nunique() == rows]
    # Columns without two values on the training rows (event features of customers who have no
    # events) say nothing, and left in they still draw on CatBoost's random feature sampling.
    constant = [name for name in (*spec.numeric, *spec.categorical) if frame.loc[training, name].nunique() < 2]
    spec = FeatureSpec(
        tuple(name for name in spec.numeric if name not in constant),
        tuple(name for name in spec.categorical if name not in dropped and name not in constant),
    )
    if labels[training].sum() == 0 or labels[training].sum() == rows:
        raise NotEnoughData("the training rows hold only one outcome. The rule-based score stays in use.")
    model = CatBoostClassifier(
        random_seed=RANDOM_SEED, thread_count=TRAINING_THREADS, allow_writing_files=False, verbose=False
    )
    model.fit(catboost_pool(frame[training], spec, labels[training]))
    details = {
        "method": "static: random stratified holdout, CatBoost defaults",
        "split": {
            "fit": _describe_rows(labels, None, training),
            "validation": _describe_rows(labels, None, np.zeros(len(frame), dtype=bool)),
            "holdout": _describe_rows(labels, None, holdout),
        },
        "features": {
            "numeric": len(spec.numeric),
            "categorical": len(spec.categorical),
            "dropped": dropped,
            "constant": len(constant),
        },
    }
    return _measured(model, frame, spec, labels, holdout, {**(summary or {}), **details}, started)


def _measured(
    model: CatBoostClassifier,
    frame: pd.DataFrame,
    spec: FeatureSpec,
    labels: np.ndarray,
    holdout: np.ndarray,
    summary: dict[str, Any],
    started: float,
) -> TrainedModel:
    """The fitted CatBoost with its leaf SHAP tables, the baseline on the same training rows, and
    both (and the rules) measured on the holdout."""
    training = ~holdout
    calibrated = CalibratedCatBoost(model, spec, Calibration())  # identity: no class weights to undo
    # The leaf SHAP tables, from every row (the holdout's reach leaves the others may not): the
    # tables are stored with the model (`to_blob`), so its scoring seldom has one to fill.
    leaf_tables(model, len(spec.columns)).fill(catboost_pool(frame, spec))

    baseline = LogisticBaseline.fit(frame[training], spec, labels[training])
    holdout_frame, holdout_labels = frame[holdout], labels[holdout]
    holdout_scores = {
        CalibratedCatBoost.kind: calibrated.predict(holdout_frame),
        LogisticBaseline.kind: baseline.predict(holdout_frame),
        RULES_VERSION: score_by_rules(holdout_frame).scores,
    }
    holdout_scores = {
        **holdout_scores,
        Blend.kind: (holdout_scores[CalibratedCatBoost.kind] + holdout_scores[LogisticBaseline.kind]) / 2,
    }
    importances = sorted(
        (
            FeatureImportanceItem(feature=name, importance=float(value))
            for name, value in zip(spec.columns, model.get_feature_importance(), strict=True)
        ),
        key=lambda item: -item["importance"],
    )
    return TrainedModel(
        model=calibrated,
        metrics=metrics.evaluate(holdout_labels, holdout_scores[CalibratedCatBoost.kind]),
        baseline_metrics=metrics.evaluate(holdout_labels, holdout_scores[LogisticBaseline.kind]),
        baseline=baseline,
        comparison=compare(holdout_labels, holdout_scores),
        importances=importances,
        summary={**summary, "trees": int(model.tree_count_), "seconds": round(time.monotonic() - started, 2)},
    )


def _catboost(trees: int) -> CatBoostClassifier:
    return CatBoostClassifier(
        iterations=trees,
        learning_rate=LEARNING_RATE,
        depth=TREE_DEPTH,
        loss_function="Logloss",
        boosting_type=BOOSTING_TYPE,
        max_ctr_complexity=CTR_COMPLEXITY,
        one_hot_max_size=ONE_HOT_MAX_LEVELS,
        random_seed=RANDOM_SEED,
        thread_count=TRAINING_THREADS,
        allow_writing_files=False,
        verbose=False,
    )


def _describe_rows(labels: np.ndarray, snapshot_dates: np.ndarray | None, mask: np.ndarray) -> dict[str, Any]:
    """Rows and churners of `mask`, and its dates (None for rows without dates)."""
    dates = snapshot_dates[mask] if snapshot_dates is not None else np.zeros(0)
    return {
        "rows": int(mask.sum()),
        "churners": int(labels[mask].sum()),
        "first_date": _iso(dates.min()) if len(dates) else None,
        "last_date": _iso(dates.max()) if len(dates) else None,
    }


def _iso(value: np.datetime64) -> str:
    return pd.Timestamp(value).date().isoformat()


# --- A training run's steps: a version row whose progress is visible, the fit, the activation rule ---
# Each step runs in the caller's transaction and never commits: `risk/tasks.py: train_model` runs
# every step in a unit of work of its own, so the row shows each stage while the run goes on.

EARLIEST_TIME = datetime.min.replace(tzinfo=UTC)
STALE_RUN = timedelta(hours=1)  # a queued version (or a run with no heartbeat) older than this no longer blocks
# A run records a heartbeat in its progress this often while it works; one silent for
# STALE_HEARTBEAT has lost its process (killed, its machine gone), and its version is failed or resumed.
HEARTBEAT_EVERY = timedelta(seconds=30)
STALE_HEARTBEAT = 3 * HEARTBEAT_EVERY
FINISHED = ("ready", "rejected", "failed")
logger = structlog.get_logger(__name__)


class TrainingRefused(DomainError):
    code = "CONFLICT"


class NoActiveModel(DomainError):
    code = "NOT_FOUND"


@dataclass(frozen=True)
class TrainingRun:
    """What a claimed run trains on: its rows, and the tenant's settings."""

    config: RiskConfig
    training_set: TrainingSet

    @cached_property
    def churners(self) -> int:
        return labelled_churners(self.training_set)

    def rejection(self) -> str | None:
        """Why these rows cannot train a model, or None when they can."""
        if self.churners >= self.config.min_churners:
            return None
        return (
            f"{self.churners} labelled churners; a model needs at least {self.config.min_churners}. "
            "The rule-based score stays in use."
        )


async def create_version(session: AsyncSession, subject: AuthSubject, *, as_of: datetime | None = None) -> RiskModel:
    """A queued CatBoost version "v<n+1>", in the caller's transaction; refused while another run
    of the tenant is queued or training, for a time in the future, or for one too close to the
    start of the calendar for the training window before it."""
    subject.require_write()
    tenant_id = subject.tenant_id
    as_of = as_of or utcnow()
    if as_of.tzinfo is None:
        raise InvalidInput("as of needs a timezone (UTC)")
    if as_of > utcnow():
        raise InvalidInput("as of must not be in the future")
    config = await load_config(session, tenant_id)
    window = training_window(config.horizon_days)
    if as_of - EARLIEST_TIME < window:
        raise InvalidInput(f"as of must leave room for the training window: {window.days} days of history before it")
    repository = RiskModelRepository(session, tenant_id)
    versions = await repository.newest_first()
    for row in versions:
        if row.status == "training" and stalled(row):
            await finish_run(session, tenant_id, row.id, status="failed", error=STOPPED)
            row.status = "failed"
    running = [
        row for row in versions if row.status in ("queued", "training") and row.created_at > utcnow() - STALE_RUN
    ]
    if running:
        raise TrainingRefused(f"training of {running[0].version} is already {running[0].status}")
    numbers = [int(row.version[1:]) for row in versions if row.kind != RULES_VERSION and row.version[1:].isdigit()]
    return await repository.add(
        RiskModel(
            id=ordered_uuid(),
            tenant_id=tenant_id,
            version=f"v{max(numbers, default=0) + 1}",
            kind="catboost",
            status="queued",
            progress={"stage": "queued", "percent": 0},
            as_of=as_of,
            horizon_days=config.horizon_days,
        )
    )


STOPPED = "the training process stopped: no heartbeat"


def stalled(row: RiskModel) -> bool:
    """A run in "training" whose process is gone: its heartbeat (or, without one, its start) is stale."""
    beat = row.progress.get("heartbeat") if isinstance(row.progress, dict) else None
    if isinstance(beat, str):
        return datetime.fromisoformat(beat) < utcnow() - STALE_HEARTBEAT
    return row.created_at < utcnow() - STALE_RUN


def _progress(stage: str, percent: int) -> dict[str, object]:
    return {"stage": stage, "percent": percent, "heartbeat": utcnow().isoformat()}


async def claim_run(session: AsyncSession, tenant_id: uuid.UUID, model_id: uuid.UUID) -> bool:
    """Queued -> training, or a stalled run taken over (a redelivered job whose first process was
    killed); False when the version is finished or another live process runs it (a retried or
    duplicate job)."""
    progress = _progress("building training rows", 5)
    repository = RiskModelRepository(session, tenant_id)
    if await repository.claim(model_id, status="training", progress=progress):
        return True
    row = await repository.locked(model_id)  # of two copies resuming at once, the second sees the first's heartbeat
    if row is None or row.status != "training" or not stalled(row):
        return False
    await repository.set_values(model_id, progress=progress, error=None)
    return True


async def prepare_run(session: AsyncSession, tenant_id: uuid.UUID, model_id: uuid.UUID) -> TrainingRun:
    row = await RiskModelRepository(session, tenant_id).get_or_raise(model_id, what="risk model")
    config = await load_config(session, tenant_id)
    return TrainingRun(config, await training_rows(session, tenant_id, row.as_of, row.horizon_days))


async def record_progress(
    session: AsyncSession, tenant_id: uuid.UUID, model_id: uuid.UUID, stage: str, percent: int
) -> None:
    """The run's stage, with a heartbeat: the run is alive."""
    await RiskModelRepository(session, tenant_id).set_values(model_id, progress=_progress(stage, percent))


async def finish_run(
    session: AsyncSession, tenant_id: uuid.UUID, model_id: uuid.UUID, *, status: str, **values: Any
) -> None:
    """End a run that stored no model: "rejected" (with the reason) or "failed"."""
    if status not in FINISHED:
        raise ValueError(f"a run does not finish {status!r}")
    progress = {"stage": status, "percent": 100}
    await RiskModelRepository(session, tenant_id).set_values(
        model_id, status=status, finished_at=utcnow(), progress=progress, **values
    )


async def store_trained(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    model_id: uuid.UUID,
    trained: TrainedModel,
    run: TrainingRun,
    *,
    force: bool,
) -> RiskModel:
    """Store the holdout's winning family on the version, "ready", and activate it when
    `_activation` says so (a re-score of the tenant is then enqueued in the same transaction).
    When the rules ranked best, CatBoost is stored for inspection and not activated."""
    repository = RiskModelRepository(session, tenant_id)
    activation = await _activation(repository, trained, run.training_set, force)
    row = await repository.get_or_raise(model_id, what="risk model")
    stored = trained.served or trained.model
    row.status, row.finished_at, row.kind = "ready", utcnow(), stored.kind
    row.progress = {"stage": "ready", "percent": 100}
    row.metrics, row.baseline_metrics = trained.metrics, trained.baseline_metrics
    row.training_summary = {
        **trained.summary,
        "churners": run.churners,
        "comparison": trained.comparison,
        "activation": activation,
    }
    row.feature_importances = trained.importances
    row.feature_spec, row.model_blob = stored.spec_json(), stored.to_blob()
    if activation["activated"]:
        await repository.deactivate_others(model_id)
        row.active, row.activated_at = True, utcnow()
        enqueue_score_tenant(session, tenant_id)
    logger.info("risk.trained", tenant_id=str(tenant_id), version=row.version, **activation)
    return row


def labelled_churners(training_set: TrainingSet) -> int:
    """Distinct customers with a churn outcome among the rows (snapshots repeat a customer)."""
    ids = training_set.matrix.customer_ids
    return len({ids[index] for index in np.flatnonzero(np.asarray(training_set.labels) == 1)})


async def _activation(
    repository: RiskModelRepository, trained: TrainedModel, training_set: TrainingSet, force: bool
) -> dict[str, Any]:
    """Whether the new version scores from now on: never when the rules ranked its holdout best;
    when forced, when no trained version is active, or when its winner's holdout ROC-AUC is no
    worse than the active version's on the same holdout rows."""
    served = trained.served
    if served is None:
        return {"activated": False, "reason": "the rules rank the holdout better than either trained model"}
    active = await repository.active()
    if active is None:
        return {"activated": True, "reason": f"no trained version was active; {served.kind} won the holdout"}
    holdout = np.asarray(training_set.holdout, dtype=bool)
    frame = training_set.matrix.frame[holdout]
    labels = np.asarray(training_set.labels, dtype=float)[holdout]
    active_probabilities = await asyncio.to_thread(stored_model(active).predict, frame)
    active_auc = metrics.roc_auc(labels, active_probabilities)
    new_auc = trained.served_auc
    no_worse = new_auc is not None and (active_auc is None or new_auc >= active_auc)
    outcome = {
        "compared_with": active.version,
        "active_roc_auc": active_auc,
        "new_roc_auc": new_auc,
    }
    if force:
        return {**outcome, "activated": True, "reason": "forced"}
    if no_worse:
        return {**outcome, "activated": True, "reason": f"no worse than {active.version} on the same holdout"}
    return {**outcome, "activated": False, "reason": f"worse than {active.version} on the same holdout"}


async def evaluate_active(session: AsyncSession, tenant_id: uuid.UUID, as_of: datetime | None = None) -> dict[str, Any]:
    """The active version's metrics recomputed on the holdout of the rows as of `as_of` (now)."""
    row = await RiskModelRepository(session, tenant_id).active()
    if row is None:
        raise NoActiveModel("no trained model is active for this tenant: the rule-based score is in use")
    training_set = await training_rows(session, tenant_id, as_of or utcnow(), row.horizon_days)
    holdout = np.asarray(training_set.holdout, dtype=bool)
    labels = np.asarray(training_set.labels, dtype=float)[holdout]
    probabilities = await asyncio.to_thread(stored_model(row).predict, training_set.matrix.frame[holdout])
    return {
        "version": row.version,
        "trained_as_of": row.as_of.isoformat(),
        "metrics": metrics.evaluate(labels, probabilities),
        "metrics_at_training": row.metrics,
    }
