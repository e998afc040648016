"""Reasons of a CatBoost score: SHAP values in probability terms, and scoring with an active model."""

import io

import numpy as np
import pandas as pd
import pytest
from catboost import CatBoostClassifier, Pool
from sqlalchemy import select

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.risk.explain import shap_scores, top_reasons
from churnsaver.backend.risk.features import FeatureSpec, feature_matrix
from churnsaver.backend.risk.leaf_shap import leaf_shap_values, leaf_tables
from churnsaver.backend.risk.model_store import CalibratedCatBoost, Calibration, catboost_pool, model_input
from churnsaver.backend.risk.models import RiskScore
from churnsaver.backend.risk.rules import RULES_SPEC
from churnsaver.backend.risk.scoring import score_customers
from churnsaver.backend.risk.training import fit_frame
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.risk_activity import seed_two_customers
from tests.fixtures.risk_models import store_active_model

SPEC = FeatureSpec(numeric=RULES_SPEC.numeric, categorical=("plan",))


def trained_model(rows: int = 2000, seed: int = 5) -> tuple[CalibratedCatBoost, pd.DataFrame]:
    """A small model whose churn rises with idle days and failed payments, and with the basic plan."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "payment_failures_30d": rng.poisson(0.4, rows).astype(float),
            "cancel_scheduled": (rng.random(rows) < 0.1).astype(float),
            "days_since_last_activity": rng.exponential(10, rows),
            "active_days_30d": rng.integers(0, 30, rows).astype(float),
            "active_days_90d": rng.integers(0, 90, rows).astype(float),
            "tenure_days": rng.integers(1, 900, rows).astype(float),
            "plan": rng.choice(["basic", "pro"], rows),
        }
    )
    margin = -3 + 0.12 * frame["days_since_last_activity"] + 1.2 * frame["payment_failures_30d"]
    margin += np.where(frame["plan"] == "basic", 1.0, 0.0)
    labels = (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(int)
    model = CatBoostClassifier(iterations=60, depth=4, verbose=False, random_seed=seed, thread_count=1)
    model.fit(Pool(model_input(frame, SPEC), labels, cat_features=["plan"]))
    return CalibratedCatBoost(model, SPEC, Calibration(slope=0.8, intercept=-0.4)), frame


def test_shap_reasons_add_up_to_the_calibrated_probability_minus_the_base_rate() -> None:
    stored, frame = trained_model()
    inputs = model_input(frame.head(300), SPEC)

    explained = shap_scores(stored.model, Pool(inputs, cat_features=["plan"]), stored.calibration.apply)

    np.testing.assert_allclose(explained.probabilities, stored.predict(inputs), rtol=1e-9, atol=1e-12)
    expected_margin = stored.model.get_feature_importance(Pool(inputs, cat_features=["plan"]), type="ShapValues")[0, -1]
    base_rate = stored.calibration.apply(np.array([expected_margin]))[0]
    np.testing.assert_allclose(explained.impacts.sum(axis=1), explained.probabilities - base_rate, atol=1e-9)
    idle = explained.impacts[:, SPEC.columns.index("days_since_last_activity")]
    long_idle = inputs["days_since_last_activity"].to_numpy() > 30
    assert (idle[long_idle] > 0).all()  # a long idle spell always raises the score


def test_top_reasons_label_the_strongest_shap_values() -> None:
    stored, frame = trained_model()
    inputs = model_input(frame.head(50), SPEC)
    explained = shap_scores(stored.model, Pool(inputs, cat_features=["plan"]), stored.calibration.apply)

    reasons = top_reasons(explained.impacts, inputs)

    for row, row_reasons in enumerate(reasons):
        assert 0 < len(row_reasons) <= 3
        sizes = [abs(reason["impact"]) for reason in row_reasons]
        assert sizes == sorted(sizes, reverse=True)
        strongest = SPEC.columns[int(np.abs(explained.impacts[row]).argmax())]
        assert row_reasons[0]["feature"] == strongest
        assert all(reason["direction"] == ("up" if reason["impact"] > 0 else "down") for reason in row_reasons)


async def test_an_active_catboost_version_scores_with_shap_reasons(db: Database, tenant: TenantWithKey) -> None:
    ids = await seed_two_customers(db, tenant.id)
    stored, _ = trained_model()
    now = utcnow()
    await store_active_model(db, tenant.id, stored, as_of=now)
    async with db.tenant_unit_of_work(tenant.id) as session:
        report = await score_customers(session, tenant.id, now)
        scores = {row.customer_id: row for row in (await session.execute(select(RiskScore))).scalars()}

    assert (report.model_version, report.scored) == ("v1", 2)
    risky, healthy = scores[ids["risky"]], scores[ids["healthy"]]
    assert risky.model_version == "v1"
    assert risky.score > healthy.score
    assert risky.reasons[0]["feature"] in {"days_since_last_activity", "payment_failures_30d"}
    assert risky.reasons[0]["direction"] == "up" and risky.reasons[0]["impact"] > 0
    async with db.tenant_session(tenant.id) as session:
        features = await feature_matrix(session, tenant.id, now, SPEC, [ids["risky"]])
    assert risky.score == pytest.approx(float(stored.predict(features.frame)[0]), abs=1e-9)


def test_leaf_tables_give_catboosts_own_shap_values_exactly() -> None:
    rng = np.random.default_rng(9)
    rows = 3000
    frame = pd.DataFrame(
        {
            "a": np.where(rng.random(rows) < 0.2, np.nan, rng.normal(size=rows)),
            "b": rng.normal(size=rows),
            "plan": rng.choice(["starter", "pro", "team", "business"], rows),
            "region": rng.choice([f"r{number}" for number in range(15)], rows),
        }
    )
    margin = frame["b"] + np.nan_to_num(frame["a"]) * (frame["plan"] == "pro") + (frame["region"] == "r3")
    labels = (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(int)
    categorical = ["plan", "region"]
    # boost_from_average gives the model a bias, which each one-tree model repeats.
    model = CatBoostClassifier(iterations=40, depth=5, boost_from_average=True, verbose=False, thread_count=1)
    model.fit(Pool(frame, labels, cat_features=categorical))
    assert model.get_scale_and_bias()[1] != 0

    first, later = Pool(frame.head(200), cat_features=categorical), Pool(frame, cat_features=categorical)
    for pool in (first, later, first):  # empty tables, partly filled, full
        expected = model.get_feature_importance(pool, type="ShapValues")
        np.testing.assert_allclose(leaf_shap_values(model, pool), expected, rtol=1e-9, atol=1e-9)


def test_training_fills_the_tables_and_the_stored_model_brings_them_back() -> None:
    rng = np.random.default_rng(4)
    rows = 2000
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows), "plan": rng.choice(["x", "y"], rows)})
    labels = rng.random(rows) < 1 / (1 + np.exp(-(frame["a"] + (frame["plan"] == "x"))))
    spec = FeatureSpec(numeric=("a", "b"), categorical=("plan",))
    dates = np.repeat(
        np.array(["2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26"], dtype="datetime64[ns]"), rows // 4
    )
    trained = fit_frame(frame, spec, labels.to_numpy(dtype=float), snapshot_dates=dates, holdout=dates == dates.max())
    blob = trained.model.to_blob()

    restored = CalibratedCatBoost.from_stored(blob, trained.model.spec_json())
    bare = CalibratedCatBoost.from_stored(cbm_bytes(blob), trained.model.spec_json())  # as older versions stored it
    pool = catboost_pool(frame, spec)
    leaves = restored.model.calc_leaf_indexes(pool).T
    assert leaf_tables(restored.model, 3).covers(leaves)
    assert not leaf_tables(bare.model, 3).covers(leaves)
    expected = restored.model.get_feature_importance(pool, type="ShapValues")
    for model in (restored.model, bare.model):
        np.testing.assert_allclose(leaf_shap_values(model, pool), expected, rtol=1e-9, atol=1e-9)


def cbm_bytes(blob: bytes) -> bytes:
    with np.load(io.BytesIO(blob)) as archive:
        return archive["cbm"].tobytes()
