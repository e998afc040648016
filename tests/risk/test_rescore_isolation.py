"""A customer whose scoring fails on its data is left out of a re-score; the others are scored."""

import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier, Pool

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.risk.features import FeatureSpec
from churnsaver.backend.risk.model_store import CalibratedCatBoost, Calibration, model_input
from churnsaver.backend.risk.rules import RULES_SPEC
from churnsaver.backend.risk.tasks import RESCORE_CUSTOMERS, SCORE_TENANT
from churnsaver.jobs.registry import get_job
from churnsaver.jobs.runtime import JobRuntime, set_runtime
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.risk_activity import apply_items, customer_ids, logins, stored, subscribed
from tests.fixtures.risk_models import store_active_model

SPEC = FeatureSpec(numeric=(*RULES_SPEC.numeric, "trait.seats"), categorical=())
# A seat count no float holds: its feature cannot be computed (OverflowError).
TOO_MANY_SEATS = 10**400


def model_with_seats() -> CalibratedCatBoost:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({column: rng.random(300) for column in SPEC.numeric})
    classifier = CatBoostClassifier(iterations=10, depth=2, verbose=False, random_seed=1, thread_count=1)
    classifier.fit(Pool(model_input(frame, SPEC), (rng.random(300) < 0.3).astype(int)))
    return CalibratedCatBoost(classifier, SPEC, Calibration(slope=1.0, intercept=0.0))


async def customers_one_unscorable(db: Database, tenant: TenantWithKey) -> dict[str, uuid.UUID]:
    """Three customers scored by a model that reads their seats; the middle one has too many."""
    now = utcnow()
    items = []
    for name, seats in (("first", 3), ("unscorable", TOO_MANY_SEATS), ("last", 5)):
        identify = {"type": "identify", "messageId": f"id_{name}", "customerId": name, "timestamp": now.isoformat()}
        items += [subscribed(name, now - timedelta(days=50)), *logins(name, now - timedelta(days=50), 5)]
        items.append(identify | {"traits": {"seats": seats}})
    await apply_items(db, tenant.id, items)
    await store_active_model(db, tenant.id, model_with_seats(), as_of=now)
    return await customer_ids(db, tenant.id, "first", "unscorable", "last")


async def run_job(settings, db: Database, name: str, **kwargs: Any) -> None:
    set_runtime(JobRuntime(settings=settings, db=db))
    try:
        await get_job(name).function(**kwargs)
    finally:
        set_runtime(None)


async def test_a_customer_whose_features_blow_up_does_not_stop_the_others_rescore(
    settings, db: Database, tenant: TenantWithKey
) -> None:
    ids = await customers_one_unscorable(db, tenant)

    customers = sorted(map(str, ids.values()))
    await run_job(
        settings, db, RESCORE_CUSTOMERS, tenant_id=str(tenant.id), customer_ids=customers, as_of=utcnow().isoformat()
    )

    current, history, _events = await stored(db, tenant.id)
    assert set(current) == {ids["first"], ids["last"]}
    assert {row.model_version for row in current.values()} == {"v1"}
    assert sorted(str(row.customer_id) for row in history) == sorted(str(ids[name]) for name in ("first", "last"))


async def test_a_customer_whose_features_blow_up_does_not_stop_scoring_the_tenant(
    settings, db: Database, tenant: TenantWithKey
) -> None:
    ids = await customers_one_unscorable(db, tenant)

    await run_job(settings, db, SCORE_TENANT, tenant_id=str(tenant.id), as_of=utcnow().isoformat())

    current, history, _events = await stored(db, tenant.id)
    assert set(current) == {ids["first"], ids["last"]}
    assert len(history) == 2
