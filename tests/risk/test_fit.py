"""The pure fit, on snapshot rows built here: no database, as the benchmark calls it."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnsaver.backend.risk import metrics
from churnsaver.backend.risk.features import MISSING_CATEGORY, FeatureMatrix, FeatureSpec
from churnsaver.backend.risk.model_store import CalibratedCatBoost
from churnsaver.backend.risk.training import NotEnoughData, fit, validation_mask

SPEC = FeatureSpec(
    numeric=("usage.login.30d", "days_since_last_activity", "payment_failures_30d", "mrr", "trait.seats"),
    categorical=("plan", "last_decline_class", "trait.region"),
)


@dataclass
class SnapshotRows:
    matrix: FeatureMatrix
    labels: np.ndarray
    holdout: np.ndarray
    summary: dict[str, Any] = field(default_factory=dict)


def snapshot_rows(customers: int = 1200, weeks: int = 12, seed: int = 3) -> SnapshotRows:
    """Weekly snapshots whose churn follows interactions a linear model cannot express:
    idle monthly customers churn, failed payments matter only for a card decline, and each of
    many regions has its own rate. The two newest weeks are the holdout."""
    rng = np.random.default_rng(seed)
    rows = customers * weeks
    start = datetime(2026, 1, 5, tzinfo=UTC)
    dates = [start + timedelta(weeks=week) for week in range(weeks) for _ in range(customers)]
    plan = rng.choice(["monthly", "annual", "team"], rows, p=[0.5, 0.3, 0.2])
    logins = rng.poisson(rng.gamma(2.0, 6.0, rows)).astype(float)
    idle = rng.exponential(8.0, rows)
    failures = rng.poisson(0.3, rows).astype(float)
    decline = np.where(failures > 0, rng.choice(["insufficient_funds", "expired_card", "do_not_honor"], rows), "")
    region = rng.choice([f"r{number}" for number in range(25)], rows)
    region_effect = dict(zip([f"r{number}" for number in range(25)], rng.normal(0, 1.0, 25), strict=True))
    margin = (
        -4.0
        + 2.5 * ((plan == "monthly") & (logins < 5))
        + 1.5 * (idle > 14) * (plan != "annual")
        + 2.0 * (failures > 0) * (decline == "insufficient_funds")
        + np.vectorize(region_effect.get)(region)
    )
    labels = (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(float)
    seats = np.where(rng.random(rows) < 0.3, np.nan, rng.integers(1, 50, rows).astype(float))
    frame = pd.DataFrame(
        {
            "usage.login.30d": logins,
            "days_since_last_activity": idle,
            "payment_failures_30d": failures,
            "mrr": rng.choice([1900.0, 4900.0, 9900.0], rows),
            "trait.seats": seats,
            "plan": plan,
            "last_decline_class": np.where(decline == "", MISSING_CATEGORY, decline),
            "trait.region": region,
        }
    )
    ids = [uuid.UUID(int=number) for _ in range(weeks) for number in range(customers)]
    holdout = np.array([date >= start + timedelta(weeks=weeks - 2) for date in dates])
    return SnapshotRows(FeatureMatrix(ids, dates, frame, SPEC), labels, holdout, {"source": "test"})


@pytest.fixture(scope="module")
def rows() -> SnapshotRows:
    return snapshot_rows()


@pytest.fixture(scope="module")
def trained(rows):
    return fit(rows)


def test_catboost_beats_the_baseline_and_a_floor_on_the_time_holdout(trained):
    assert trained.metrics["roc_auc"] > 0.75
    assert trained.metrics["roc_auc"] > trained.baseline_metrics["roc_auc"]
    assert trained.metrics["pr_auc"] > trained.baseline_metrics["pr_auc"]
    assert trained.metrics["rows"] == trained.baseline_metrics["rows"] == 2 * 1200


def test_validation_comes_from_the_newest_training_dates_never_the_holdout(trained, rows):
    split = trained.summary["split"]
    assert split["validation"]["last_date"] < split["holdout"]["first_date"]
    assert split["fit"]["last_date"] < split["validation"]["first_date"]
    assert split["validation"]["churners"] >= 5
    assert trained.summary["source"] == "test"


def test_validation_grows_until_it_holds_enough_churners_or_half_the_rows():
    dates = np.repeat(np.arange(10), 10).astype("datetime64[D]")
    training = dates < np.datetime64(9, "D")  # 90 training rows, dates 0..8
    sparse = np.zeros(100)
    sparse[[5, 15, 25, 35, 45, 55]] = 1  # one churner on each of dates 0..5
    dense = np.zeros(100)
    dense[70:90] = 1  # dates 7 and 8 hold 20 churners

    assert set(dates[validation_mask(dates, sparse, training)].astype(int)) == {4, 5, 6, 7, 8}
    assert set(dates[validation_mask(dates, dense, training)].astype(int)) == {7, 8}


def test_one_date_holding_most_rows_gives_every_fifth_row_to_validation():
    dates = np.array(["2026-01-05"] * 100, dtype="datetime64[D]")  # imported customers only
    labels = (np.arange(100) % 3 == 0).astype(float)

    chosen = validation_mask(dates, labels, np.ones(100, dtype=bool))

    assert np.flatnonzero(chosen).tolist() == list(range(0, 100, 5))


def test_probabilities_are_calibrated(trained, rows):
    holdout_labels = rows.labels[rows.holdout]
    predicted = trained.model.predict(rows.matrix.frame[rows.holdout])

    assert abs(predicted.mean() - holdout_labels.mean()) < 0.03
    assert trained.metrics["brier"] < metrics.brier_score(holdout_labels, np.full(len(predicted), 0.5))


def test_importances_rank_the_features_that_drive_churn(trained):
    top = [item["feature"] for item in trained.importances[:4]]
    assert "trait.seats" not in top and "mrr" not in top
    assert len(trained.importances) == len(SPEC.columns)


def test_a_stored_model_predicts_the_same_and_tolerates_changed_columns(trained, rows):
    restored = CalibratedCatBoost.from_stored(trained.model.to_blob(), trained.model.spec_json())
    frame = rows.matrix.frame.head(50)

    np.testing.assert_allclose(restored.predict(frame), trained.model.predict(frame))
    changed = frame.drop(columns=["trait.seats"]).assign(**{"trait.new": 1, "mrr": "n/a"})
    assert np.isfinite(restored.predict(changed)).all()


def test_a_category_naming_each_customer_is_left_out():
    rows = snapshot_rows(customers=300, weeks=6)
    frame = rows.matrix.frame.assign(
        **{"trait.email": [f"c{customer_id.int}@x.io" for customer_id in rows.matrix.customer_ids]}
    )
    spec = FeatureSpec(SPEC.numeric, (*SPEC.categorical, "trait.email"))

    trained = fit(
        SnapshotRows(FeatureMatrix(rows.matrix.customer_ids, rows.matrix.as_of, frame, spec), rows.labels, rows.holdout)
    )

    assert trained.summary["features"]["dropped"] == ["trait.email"]
    assert "trait.email" not in trained.model.spec.categorical
    assert "trait.region" in trained.model.spec.categorical


def test_the_fit_writes_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit(snapshot_rows(customers=400, weeks=8))
    assert list(tmp_path.iterdir()) == []


def test_churners_only_in_the_holdout_cannot_train():
    rows = snapshot_rows(customers=200, weeks=6)
    labels = rows.labels * rows.holdout  # every churner outside the holdout forgotten

    with pytest.raises(NotEnoughData, match="too few to fit and validate"):
        fit(SnapshotRows(rows.matrix, labels, rows.holdout))
