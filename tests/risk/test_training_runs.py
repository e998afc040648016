"""Training runs against the real database: versions, cold start, activation, CRM imports, the job."""

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from catboost import CatBoostClassifier
from sqlalchemy import select

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.errors import NotFound
from churnsaver.backend.ingest import imports
from churnsaver.backend.ingest.imports import CustomerColumns
from churnsaver.backend.risk.model_store import CalibratedCatBoost, Calibration, catboost_pool, load_active_model
from churnsaver.backend.risk.models import RiskModel
from churnsaver.backend.risk.repository import RiskModelRepository
from churnsaver.backend.risk.service import queue_training
from churnsaver.backend.risk.snapshots import training_rows
from churnsaver.backend.risk.tasks import TRAIN, train_model
from churnsaver.backend.risk.training import TrainingRefused, create_version
from churnsaver.backend.synthetic import crm_export_csv, generate, load_dataset
from churnsaver.backend.synthetic.crm_export import CHURN_DATE_COLUMN, LABEL_COLUMN
from churnsaver.jobs.models import OutboxJob
from churnsaver.jobs.registry import get_job
from churnsaver.jobs.runtime import JobRuntime, set_runtime
from churnsaver.tenants.auth import AuthSubject
from tests.fixtures.factories import create_tenant_with_key
from tests.fixtures.risk_models import store_active_model

START = datetime(2025, 1, 6, tzinfo=UTC)
END = datetime(2025, 10, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
async def synthetic_tenant(db: Database):
    """A tenant holding nine months of 800 synthetic customers."""
    tenant = await create_tenant_with_key(db)
    await load_dataset(db, tenant.id, generate(seed=21, customers=800, start=START, end=END))
    return tenant


@pytest.fixture(scope="module")
async def first_version(db: Database, synthetic_tenant) -> RiskModel:
    return await train_model(db, AuthSubject.system(synthetic_tenant.id), as_of=END)


async def versions(db: Database, tenant_id: uuid.UUID) -> list[RiskModel]:
    async with db.tenant_session(tenant_id) as session:
        return list(reversed(await RiskModelRepository(session, tenant_id).newest_first()))


async def test_the_first_version_is_active_and_beats_the_baseline_on_the_time_holdout(
    db, synthetic_tenant, first_version
):
    row = first_version
    print(
        f"\nCatBoost {row.metrics['roc_auc']:.3f}/{row.metrics['pr_auc']:.3f}, "
        f"baseline {row.baseline_metrics['roc_auc']:.3f}/{row.baseline_metrics['pr_auc']:.3f}"
    )

    # The family that ranked the holdout best is served (tests/risk/test_served_family.py).
    served = row.training_summary["comparison"]["served"]
    assert (row.version, row.kind, row.status, row.active) == ("v1", served, "ready", True)
    assert row.progress == {"stage": "ready", "percent": 100}
    # A floor well above chance (0.5), and better than the baseline on both ranking metrics.
    assert row.metrics["roc_auc"] > 0.7
    assert row.metrics["roc_auc"] > row.baseline_metrics["roc_auc"]
    assert row.metrics["pr_auc"] > row.baseline_metrics["pr_auc"]
    assert len(row.metrics["calibration"]) == 10
    summary = row.training_summary
    assert summary["churners"] >= 50 and summary["activation"]["reason"].startswith("no trained version was active")
    assert summary["split"]["validation"]["last_date"] < summary["split"]["holdout"]["first_date"]
    assert row.feature_importances[0]["importance"] >= row.feature_importances[-1]["importance"]
    async with db.tenant_session(synthetic_tenant.id) as session:
        active = await load_active_model(session, synthetic_tenant.id)
        rows = await training_rows(session, synthetic_tenant.id, END)
    assert (active.kind, active.version, active.model_id) == (served, "v1", row.id)
    probabilities = active.predict(rows.matrix.frame[rows.holdout])
    assert probabilities.shape == (int(rows.holdout.sum()),) and ((probabilities > 0) & (probabilities < 1)).all()


async def model_fit_on_the_holdout(db: Database, tenant_id: uuid.UUID) -> CalibratedCatBoost:
    """A model that saw the holdout's answers: no honest version can match it there."""
    async with db.tenant_session(tenant_id) as session:
        rows = await training_rows(session, tenant_id, END)
    spec = rows.matrix.spec
    model = CatBoostClassifier(iterations=300, depth=8, allow_writing_files=False, verbose=False, thread_count=2)
    model.fit(catboost_pool(rows.matrix.frame, spec, rows.labels.astype(float)))
    return CalibratedCatBoost(model, spec, Calibration())


async def test_a_worse_version_is_kept_inactive_unless_forced(db, synthetic_tenant, first_version):
    tenant_id = synthetic_tenant.id
    await store_active_model(db, tenant_id, await model_fit_on_the_holdout(db, tenant_id), as_of=END, version="v90")

    worse = await train_model(db, AuthSubject.system(tenant_id), as_of=END)
    forced = await train_model(db, AuthSubject.system(tenant_id), as_of=END, force=True)

    assert (worse.version, worse.status, worse.active) == ("v91", "ready", False)
    activation = worse.training_summary["activation"]
    assert activation["reason"] == "worse than v90 on the same holdout"
    assert activation["active_roc_auc"] > activation["new_roc_auc"]
    assert (forced.status, forced.active, forced.training_summary["activation"]["reason"]) == ("ready", True, "forced")
    assert [row.version for row in await versions(db, tenant_id) if row.active] == [forced.version]


async def test_a_better_version_replaces_the_active_one(db, synthetic_tenant, first_version):
    tenant_id = synthetic_tenant.id
    async with db.tenant_session(tenant_id) as session:
        rows = await training_rows(session, tenant_id, END)
    shuffled = np.random.default_rng(0).permutation(rows.labels.astype(float))
    noise = CatBoostClassifier(iterations=20, allow_writing_files=False, verbose=False, thread_count=2)
    noise.fit(catboost_pool(rows.matrix.frame, rows.matrix.spec, shuffled))
    await store_active_model(
        db, tenant_id, CalibratedCatBoost(noise, rows.matrix.spec, Calibration()), as_of=END, version="v95"
    )

    better = await train_model(db, AuthSubject.system(tenant_id), as_of=END)

    assert better.active
    assert better.training_summary["activation"]["reason"] == "no worse than v95 on the same holdout"
    assert [row.version for row in await versions(db, tenant_id) if row.active] == [better.version]


async def test_too_few_churners_is_refused_and_the_rules_stay(db, tenant):
    await load_dataset(db, tenant.id, generate(seed=4, customers=30, start=START, end=END, usage_scale=0.3))

    row = await train_model(db, AuthSubject.system(tenant.id), as_of=END)

    assert (row.status, row.active, row.metrics) == ("rejected", False, None)
    assert "a model needs at least 50" in row.error and "rule-based score stays in use" in row.error
    assert row.finished_at is not None
    async with db.tenant_session(tenant.id) as session:
        active = await load_active_model(session, tenant.id)
    assert (active.kind, active.version, active.model) == ("rules", "rules", None)


async def test_a_mixed_type_crm_export_trains_without_preprocessing(db, tenant, tmp_path):
    export = crm_export_csv(tmp_path / "crm.csv", seed=8, rows=1500)
    columns = CustomerColumns(label=LABEL_COLUMN, churn_date=CHURN_DATE_COLUMN)
    await imports.import_customers(db, tenant.id, path=export.path, columns=columns, on_progress=lambda _done: None)

    row = await train_model(db, AuthSubject.system(tenant.id))

    assert row.status == "ready", row.error
    assert row.active and row.training_summary["imported_labelled"] == export.rows
    assert row.metrics["roc_auc"] > 0.6
    assert any(item["feature"].startswith("trait.") for item in row.feature_importances)


async def test_a_second_run_is_refused_while_one_is_queued_and_the_future_is_refused(db, tenant):
    async with db.tenant_unit_of_work(tenant.id) as session:
        queued = await create_version(session, AuthSubject.system(tenant.id))
    with pytest.raises(TrainingRefused, match=f"training of {queued.version} is already queued"):
        async with db.tenant_unit_of_work(tenant.id) as session:
            await create_version(session, AuthSubject.system(tenant.id))
    with pytest.raises(Exception, match="must not be in the future"):
        async with db.tenant_unit_of_work(tenant.id) as session:
            await create_version(session, AuthSubject.system(tenant.id), as_of=utcnow() + timedelta(days=1))


async def test_the_training_job_runs_a_queued_version_once(db, settings, tenant):
    await load_dataset(db, tenant.id, generate(seed=4, customers=30, start=START, end=END, usage_scale=0.3))
    async with db.tenant_unit_of_work(tenant.id) as session:
        queued = await queue_training(session, AuthSubject.system(tenant.id), as_of=END)
    async with db.system_session() as session:
        [outbox] = (await session.execute(select(OutboxJob).where(OutboxJob.tenant_id == tenant.id))).scalars()
    assert outbox.actor_name == TRAIN and outbox.kwargs["model_id"] == str(queued.id)

    set_runtime(JobRuntime(settings=settings, db=db))
    try:
        await get_job(TRAIN).function(**outbox.kwargs)
        [first] = await versions(db, tenant.id)
        await get_job(TRAIN).function(**outbox.kwargs)  # a retry or a second copy
    finally:
        set_runtime(None)

    [again] = await versions(db, tenant.id)
    assert first.status == "rejected"  # 30 customers: too few churners, a final outcome
    assert (again.status, again.finished_at, again.error) == (first.status, first.finished_at, first.error)


async def test_versions_and_models_stay_within_their_tenant(db, synthetic_tenant, first_version, other_tenant):
    async with db.tenant_session(other_tenant.id) as session:
        assert await RiskModelRepository(session, other_tenant.id).newest_first() == []
        assert (await load_active_model(session, other_tenant.id)).kind == "rules"
    with pytest.raises(NotFound):
        await train_model(db, AuthSubject.system(other_tenant.id), model_id=first_version.id)
    [unchanged] = [row for row in await versions(db, synthetic_tenant.id) if row.id == first_version.id]
    assert unchanged.finished_at == first_version.finished_at
