"""`python -m tests.bench risk`: scoring throughput, real-time re-score latency, training time.

For each backend (the embedded SQLite always; PostgreSQL when CHURNSAVER_TEST_DATABASE_URL is
set) it migrates a fresh database and bulk-writes a tenant of `--risk-customers` customers
(`population.py`), then measures, in this process:
- training: the training helper's `fit_frame` on one snapshot row per customer (labels from the
  planted model), wall time; the model is stored as the tenant's active version;
- batch scoring: `score_tenant` of every customer end to end (features, SHAP probabilities and
  reasons, tiers, stored scores, history and tier events), against bare CatBoost
  `predict_proba` on the same feature matrix in the same run; the parts (features, SHAP,
  predict) are timed on their own too;
- real-time: `score_customers` of one customer in its own transaction, as the job runs it, for
  `--realtime-samples` customers: p50 and p99.
It prints a table per backend and writes var/bench/risk.json. Targets are reported, never
asserted on timings; the run fails only if a customer was left unscored.
"""

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from catboost import Pool
from sqlalchemy import func, select

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.risk.explain import shap_scores
from churnsaver.backend.risk.features import discover_spec, feature_matrix
from churnsaver.backend.risk.model_store import model_input
from churnsaver.backend.risk.models import RiskScore, RiskScoreHistory
from churnsaver.backend.risk.scoring import load_scoring_model, score_customers, score_tenant
from churnsaver.backend.risk.training import fit_frame
from tests.bench.dataset import settle_statistics
from tests.bench.risk.population import write_population
from tests.bench.risk.report import format_backend
from tests.bench.server import REPO_ROOT
from tests.bench.suite import run_on_backends
from tests.fixtures.databases import migrated_database
from tests.fixtures.factories import create_tenant_with_key
from tests.fixtures.risk_models import store_active_model

RUN_TIMEOUT_SECONDS = 1800
TARGET_CUSTOMERS_PER_SECOND = 10_000
TARGET_REALTIME_P99_MS = 50.0
TARGET_TRAINING_SECONDS = 120.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--risk-customers", type=int, default=100_000)
    parser.add_argument("--realtime-samples", type=int, default=300)
    parser.add_argument("--risk-output", type=Path, default=REPO_ROOT / "var" / "bench" / "risk.json")


async def bench_backend(backend: str, arguments: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"churnsaver-bench-risk-{backend}-") as data_dir:
        async with migrated_database(backend, Path(data_dir)) as settings:
            db = Database(settings)
            try:
                return await _bench(db, arguments)
            finally:
                await db.dispose()


async def _bench(db: Database, arguments: argparse.Namespace) -> dict[str, Any]:
    customers = arguments.risk_customers
    tenant = await create_tenant_with_key(db)
    as_of = utcnow()
    started = time.perf_counter()
    population = await write_population(db, tenant.id, customers, as_of)
    await settle_statistics(db)
    setup = {
        "customers": customers,
        "activity_rows": population.activity_rows,
        "state_rows": population.state_rows,
        "write_seconds": round(time.perf_counter() - started, 1),
    }
    training = await _train(db, tenant.id, as_of, population.customer_ids, population.labels)
    batch = await _batch(db, tenant.id, customers)
    realtime = await _realtime(db, tenant.id, population.customer_ids, arguments.realtime_samples)
    return {"setup": setup, "training": training, "batch": batch, "realtime": realtime}


async def _train(
    db: Database, tenant_id, as_of: datetime, customer_ids: list[uuid.UUID], labels: np.ndarray
) -> dict[str, Any]:
    """Fit on one snapshot row per customer (the features as of `as_of`, a known label), store
    the model as the active v1."""
    async with db.tenant_session(tenant_id) as session:
        spec = await discover_spec(session, tenant_id, as_of)
        matrix = await feature_matrix(session, tenant_id, as_of, spec)
    # The matrix is in id order, the labels in the order the customers were made: ids made in the
    # same millisecond sort randomly among themselves.
    position = {customer_id: index for index, customer_id in enumerate(customer_ids)}
    labels = labels[[position[customer_id] for customer_id in matrix.customer_ids]]
    rng = np.random.default_rng(3)
    holdout = rng.random(len(matrix.customer_ids)) < 0.2
    started = time.perf_counter()
    trained = fit_frame(
        matrix.frame,
        spec,
        labels,
        snapshot_dates=np.full(len(labels), np.datetime64(as_of.replace(tzinfo=None))),
        holdout=holdout,
    )
    seconds = time.perf_counter() - started
    await store_active_model(db, tenant_id, trained.model, as_of=as_of, metrics=trained.metrics)
    return {
        "snapshot_rows": len(labels),
        "features": len(spec.columns),
        "trees": trained.model.model.tree_count_,
        "seconds": round(seconds, 1),
        "auc": trained.metrics.get("roc_auc"),
        "target": f"<= {TARGET_TRAINING_SECONDS:.0f} s",
        "target_met": seconds <= TARGET_TRAINING_SECONDS,
    }


async def _batch(db: Database, tenant_id, customers: int) -> dict[str, Any]:
    as_of = utcnow()
    started = time.perf_counter()
    report = await score_tenant(db, tenant_id, as_of)
    end_to_end = time.perf_counter() - started

    # The parts, on the same matrix: what features cost, what bare CatBoost costs, what SHAP adds.
    async with db.tenant_session(tenant_id) as session:
        model = await load_scoring_model(session, tenant_id)
        started = time.perf_counter()
        matrix = await feature_matrix(session, tenant_id, as_of, model.spec)
        features_seconds = time.perf_counter() - started
    stored = model.stored  # the CatBoost model the run scored with
    inputs = model_input(matrix.frame, stored.spec)
    pool = Pool(inputs, cat_features=list(stored.spec.categorical))
    started = time.perf_counter()
    stored.model.predict_proba(pool)
    bare_seconds = time.perf_counter() - started
    started = time.perf_counter()
    shap_scores(stored.model, pool, stored.calibration.apply)
    shap_seconds = time.perf_counter() - started

    async with db.tenant_session(tenant_id) as session:
        scored = (
            await session.execute(select(func.count()).select_from(RiskScore).where(RiskScore.tenant_id == tenant_id))
        ).scalar_one()
        history = (
            await session.execute(
                select(func.count()).select_from(RiskScoreHistory).where(RiskScoreHistory.tenant_id == tenant_id)
            )
        ).scalar_one()
    rate = customers / end_to_end
    return {
        "model_version": report.model_version,
        "scored": report.scored,
        "tier_changes": report.tier_changes,
        "tiers": report.tiers,
        "stored_scores": scored,
        "history_rows": history,
        "end_to_end_seconds": round(end_to_end, 2),
        "customers_per_second": round(rate),
        "bare_predict_proba_seconds": round(bare_seconds, 3),
        "bare_customers_per_second": round(customers / bare_seconds),
        "end_to_end_over_bare_seconds": round(end_to_end / bare_seconds, 1),
        "parts_seconds": {"features": round(features_seconds, 2), "shap_with_probabilities": round(shap_seconds, 2)},
        "target": f">= {TARGET_CUSTOMERS_PER_SECOND:,} customers/s end to end",
        "target_met": rate >= TARGET_CUSTOMERS_PER_SECOND,
        "all_scored": scored == customers,
    }


async def _realtime(db: Database, tenant_id, customer_ids: list, samples: int) -> dict[str, Any]:
    """One customer per transaction, as `risk.rescore_customers` runs for an ingest batch."""
    rng = np.random.default_rng(11)
    chosen = [
        customer_ids[i] for i in rng.choice(len(customer_ids), size=min(samples, len(customer_ids)), replace=False)
    ]
    timings = []
    for index, customer_id in enumerate(chosen):
        as_of = utcnow() + timedelta(microseconds=index)  # newer than the batch: a real re-score
        started = time.perf_counter()
        async with db.tenant_unit_of_work(tenant_id) as session:
            await score_customers(session, tenant_id, as_of, [customer_id])
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p99 = timings[min(len(timings) - 1, int(0.99 * len(timings)))]
    return {
        "samples": len(timings),
        "p50_ms": round(statistics.median(timings), 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(timings[-1], 1),
        "target": f"p99 <= {TARGET_REALTIME_P99_MS:.0f} ms",
        "target_met": p99 <= TARGET_REALTIME_P99_MS,
    }


def failed(results: dict[str, Any]) -> bool:
    return any(not backend["batch"]["all_scored"] for backend in results["backends"].values())


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    return await run_on_backends(
        arguments,
        benchmark="risk: score every customer end to end against bare predict_proba, real-time re-score, training",
        output=arguments.risk_output,
        bench_backend=bench_backend,
        format_backend=format_backend,
    )
