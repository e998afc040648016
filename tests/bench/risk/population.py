"""A tenant of N customers with the rows ingestion would have left, written in bulk (bench only).

Ingesting N customers' months of events through the API would take far longer than the scoring
being measured, so the rows the features read are written directly: customers with traits,
their api identity, daily activity (usage, payment failures and their decline class, the
subscription start) and daily state (the start, and for some a scheduled cancellation or a
past-due payment), the same shapes `customers/activity.py` keeps. Each customer's behaviour is drawn
from a seeded generator; a churn label follows a known logistic model of it, for training.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import insert

from churnsaver.backend.core.db import Database
from churnsaver.backend.core.ids import ordered_uuid
from churnsaver.backend.customers.models import Customer, CustomerDailyActivity, CustomerDailyState, CustomerIdentity

BATCH_ROWS = 20_000
PLANS = (("starter", 2900), ("pro", 7900), ("business", 19900))
REGIONS = ("emea", "na", "latam", "apac")


@dataclass(frozen=True, slots=True)
class Population:
    customer_ids: list[uuid.UUID]
    labels: np.ndarray  # 1 = churns within the horizon, drawn from the planted model
    activity_rows: int
    state_rows: int


async def write_population(
    db: Database, tenant_id: uuid.UUID, customers: int, as_of: datetime, seed: int = 7
) -> Population:
    rng = np.random.default_rng(seed)
    today = as_of.astimezone(UTC).date()
    tenure = rng.integers(5, 900, customers)
    engagement = rng.beta(1.5, 8, customers)  # share of days active while engaged
    idle = np.where(rng.random(customers) < 0.25, rng.integers(7, 60, customers), 0)  # gone quiet lately
    failures = rng.poisson(0.15, customers)
    cancel = rng.random(customers) < 0.04
    plans = rng.integers(0, len(PLANS), customers)
    margin = -3.0 + 0.05 * idle + 0.9 * failures + 2.5 * cancel - 1.5 * engagement + 0.8 * (tenure < 60)
    labels = (rng.random(customers) < 1 / (1 + np.exp(-margin))).astype(float)

    ids = [ordered_uuid() for _ in range(customers)]
    created = [as_of - timedelta(days=int(days)) for days in tenure]
    customer_rows = [
        {
            "id": ids[i],
            "tenant_id": tenant_id,
            "external_id": f"cus_{i:06d}",
            "email": f"customer{i}@example.com",
            "name": f"Customer {i}",
            "traits": {"seats": int(1 + i % 40), "region": REGIONS[i % len(REGIONS)]},
            "created_at": created[i],
            "updated_at": created[i],
        }
        for i in range(customers)
    ]
    identity_rows = [
        {
            "id": ordered_uuid(),
            "tenant_id": tenant_id,
            "customer_id": ids[i],
            "provider": "api",
            "provider_id": f"cus_{i:06d}",
        }
        for i in range(customers)
    ]
    activity: list[dict[str, object]] = []
    state: list[dict[str, object]] = []
    for i in range(customers):
        start = today - timedelta(days=int(tenure[i]))
        plan, mrr = PLANS[plans[i]]
        activity.append(
            {"tenant_id": tenant_id, "customer_id": ids[i], "name": "subscription_started", "day": start, "count": 1}
        )
        state.append(_state(tenant_id, ids[i], start, "active", plan, mrr, False))
        window = min(int(tenure[i]), 90)
        active_days = np.flatnonzero(rng.random(window) < engagement[i])
        for days_ago in active_days[active_days >= idle[i]]:
            day = today - timedelta(days=int(days_ago))
            activity.append(
                {
                    "tenant_id": tenant_id,
                    "customer_id": ids[i],
                    "name": "login",
                    "day": day,
                    "count": int(rng.integers(1, 6)),
                }
            )
            if rng.random() < 0.15:
                activity.append(
                    {"tenant_id": tenant_id, "customer_id": ids[i], "name": "report_exported", "day": day, "count": 1}
                )
        if failures[i]:
            day = today - timedelta(days=int(rng.integers(1, min(window, 30) + 1)))
            decline = "payment_failed:hard" if rng.random() < 0.3 else "payment_failed:soft"
            for name in ("payment_failed", decline):
                activity.append(
                    {"tenant_id": tenant_id, "customer_id": ids[i], "name": name, "day": day, "count": int(failures[i])}
                )
            if day > start:
                state.append(_state(tenant_id, ids[i], day, "past_due", None, None, None))
        if cancel[i]:
            day = today - timedelta(days=int(rng.integers(0, min(window, 20) + 1)))
            if day > start and all(row["day"] != day for row in state[-2:] if row["customer_id"] == ids[i]):
                state.append(_state(tenant_id, ids[i], day, None, None, None, True))
    for model, rows in (
        (Customer, customer_rows),
        (CustomerIdentity, identity_rows),
        (CustomerDailyActivity, activity),
        (CustomerDailyState, state),
    ):
        await _bulk_insert(db, tenant_id, model, rows)
    return Population(customer_ids=ids, labels=labels, activity_rows=len(activity), state_rows=len(state))


def _state(
    tenant_id: uuid.UUID,
    customer_id: uuid.UUID,
    day,
    status: str | None,
    plan: str | None,
    mrr: int | None,
    cancel: bool | None,
) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "customer_id": customer_id,
        "day": day,
        "status": status,
        "plan": plan,
        "mrr": mrr,
        "currency": "USD" if mrr is not None else None,
        "cancel_at_period_end": cancel,
        "state_at": datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12),
    }


async def _bulk_insert(db: Database, tenant_id: uuid.UUID, model: type, rows: list[dict[str, object]]) -> None:
    for start in range(0, len(rows), BATCH_ROWS):
        async with db.tenant_unit_of_work(tenant_id) as session:
            await session.execute(insert(model.__table__), rows[start : start + BATCH_ROWS])
