"""Training rows: customers as they were at past weekly dates, labelled by what happened next.

A snapshot at t (a UTC midnight) holds every customer active at t (seen before t, not churned),
with features as of t and the label "churned within the horizon": a subscription_canceled event,
a subscription state that ended (canceled, expired, ...) or the customer's `churned_at` in
(t, t + horizon]. Only dates whose whole horizon has passed by `as_of` are taken. Features come
from `customer_facts` as of t, which reads the aggregates of days before t only, with traits as
identify events had set them by t (`trait_history.py`): nothing after t reaches a row.

Customers imported with a known label (`churn_label`) add one row each: their traits are their
features, everything that comes from events is missing (it would be read after their outcome).

Validation is by time: the newest snapshot dates (HOLDOUT_SHARE of them) are held out; imported
rows, having no date, are a random stratified holdout (one in five of each outcome, ordered by a
hash of their id), so the split is the same every run.
"""

import hashlib
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.customers.activity import ACTIVITY, STATE
from churnsaver.backend.customers.events import EventType
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import (
    CustomerDailyActivityRepository,
    CustomerDailyStateRepository,
    CustomerRepository,
)
from churnsaver.backend.customers.subscription_state import ENDED_STATUSES
from churnsaver.backend.risk.features import (
    MISSING_CATEGORY,
    TRAIT_PREFIX,
    WINDOW_DAYS,
    FeatureMatrix,
    FeatureSpec,
    customer_facts,
    discover_spec,
    key_column,
    last_day,
    query_frame,
)
from churnsaver.backend.risk.trait_history import TraitHistory

DEFAULT_HORIZON_DAYS = 30
SNAPSHOT_EVERY = timedelta(days=7)
MAX_SNAPSHOTS = 26
HOLDOUT_SHARE = 0.2
IMPORTED_HOLDOUT_BUCKETS = 5  # one bucket in five: 20% of the imported labelled rows


@dataclass(frozen=True)
class TrainingSet:
    matrix: FeatureMatrix  # one row per (customer, snapshot date), then the imported labelled rows
    labels: np.ndarray  # bool per row: churned within the horizon
    holdout: np.ndarray  # bool per row: kept out of training, for validation
    summary: dict[str, Any]


def training_window(horizon_days: int) -> timedelta:
    """How far before `as_of` training reads at most: the horizon, the weekly snapshot dates before
    it, the feature window before each, and the day `last_day` steps back."""
    return timedelta(days=horizon_days + WINDOW_DAYS + 1) + SNAPSHOT_EVERY * MAX_SNAPSHOTS


def snapshot_dates(as_of: datetime, horizon_days: int, first_day: date | None, limit: int) -> list[datetime]:
    """Weekly UTC midnights t, oldest first, with t + horizon <= as_of and some history before t."""
    if first_day is None:
        return []
    newest = datetime.combine(as_of.astimezone(UTC).date(), time(), UTC) - timedelta(days=horizon_days)
    dates: list[datetime] = []
    moment = newest
    while len(dates) < limit and last_day(moment) >= first_day:
        dates.append(moment)
        moment -= SNAPSHOT_EVERY
    return dates[::-1]


async def training_rows(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    as_of: datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    *,
    spec: FeatureSpec | None = None,
    max_snapshots: int = MAX_SNAPSHOTS,
) -> TrainingSet:
    """The tenant's training rows as of `as_of` (see the module docstring)."""
    if horizon_days < 1:
        raise ValueError("the horizon must be at least one day")
    spec = spec or await discover_spec(session, tenant_id, as_of)
    first_day = await session.scalar(
        CustomerDailyActivityRepository(session, tenant_id).select_readable(func.min(ACTIVITY.c.day))
    )
    dates = snapshot_dates(as_of, horizon_days, first_day, max_snapshots)
    churns = await _churn_days(session, tenant_id, last_day(as_of))
    holdout_dates = set(dates[len(dates) - _holdout_count(len(dates)) :])
    frames, labels, holdout, ids, moments = [], [], [], [], []
    traits = await TraitHistory.load(session, tenant_id) if dates and spec.traits else TraitHistory()
    for moment in dates:
        facts = await customer_facts(session, tenant_id, moment, spec)
        facts = traits.as_of(facts[_active(facts, moment)], moment, spec)
        frames.append(facts[list(spec.columns)])
        labels.append(_churned(facts, moment, horizon_days, churns))
        holdout.append(np.full(len(facts), moment in holdout_dates))
        ids += facts["customer_id"].tolist()
        moments += [moment] * len(facts)
    snapshot_rows = len(ids)
    imported = await _imported(session, tenant_id, as_of, spec)
    if len(imported):
        frames.append(imported[list(spec.columns)])
        labels.append(imported["churn_label"].to_numpy(dtype=bool))
        imported_ids = imported["customer_id"].tolist()
        holdout.append(_imported_holdout(imported["external_id"].tolist(), labels[-1]))
        ids += imported_ids
        moments += [as_of] * len(imported)
    columns = list(spec.columns)
    frame = pd.concat(frames, ignore_index=True) if frames else _empty_frame(spec)
    label_array = np.concatenate(labels) if labels else np.zeros(0, dtype=bool)
    holdout_array = np.concatenate(holdout) if holdout else np.zeros(0, dtype=bool)
    order = await _stable_order(session, tenant_id, ids, moments)
    frame = frame.iloc[order].reset_index(drop=True)
    label_array, holdout_array = label_array[order], holdout_array[order]
    ids, moments = [ids[i] for i in order], [moments[i] for i in order]
    summary = {
        "rows": len(ids),
        "positives": int(label_array.sum()),
        "dates": len(dates),
        "first_date": dates[0].isoformat() if dates else None,
        "last_date": dates[-1].isoformat() if dates else None,
        "holdout_from": min(holdout_dates).isoformat() if holdout_dates else None,
        "snapshot_rows": snapshot_rows,
        "imported_labelled": len(imported),
        "holdout_rows": int(holdout_array.sum()),
        "holdout_positives": int(label_array[holdout_array].sum()),
        "horizon_days": horizon_days,
    }
    return TrainingSet(FeatureMatrix(ids, moments, frame[columns], spec), label_array, holdout_array, summary)


async def _stable_order(
    session: AsyncSession, tenant_id: uuid.UUID, ids: list[uuid.UUID], moments: list[datetime]
) -> np.ndarray:
    """Rows by date, then by the customer's external id. CatBoost's result depends on the order
    of its rows, and internal ids are made at ingest (their order within a millisecond is
    random): ordered by what the merchant's data says, the same history trains the same model,
    on any database, however often it is loaded."""
    if not ids:
        return np.zeros(0, dtype=int)
    statement = CustomerRepository(session, tenant_id).select_readable(Customer.id, Customer.external_id)
    external = dict((await session.execute(statement)).all())
    dates = np.array([moment.timestamp() for moment in moments])
    _, keys = np.unique(np.array([external.get(customer_id, "") for customer_id in ids]), return_inverse=True)
    return np.lexsort((keys, dates))


def _holdout_count(dates: int) -> int:
    """The newest ~20% of the dates, at least one as soon as there are two to split."""
    return 0 if dates < 2 else max(1, math.ceil(dates * HOLDOUT_SHARE))


def _imported_holdout(external_ids: list[str], labels: np.ndarray) -> np.ndarray:
    """One row in IMPORTED_HOLDOUT_BUCKETS of each outcome, in the order of a hash of the
    merchant's ids: a random stratified holdout (the holdout's churn rate is the table's), the
    same every run and for the same table imported anywhere."""
    keys = np.array([hashlib.sha256(str(external_id).encode()).hexdigest() for external_id in external_ids])
    holdout = np.zeros(len(external_ids), dtype=bool)
    for outcome in (False, True):
        members = np.flatnonzero(labels == outcome)
        holdout[members[np.argsort(keys[members], kind="stable")][::IMPORTED_HOLDOUT_BUCKETS]] = True
    return holdout


def _active(facts: pd.DataFrame, moment: datetime) -> pd.Series:
    """Seen before `moment`, and neither ended nor marked churned by then."""
    seen = facts["first_day"].notna()
    ended = facts["subscription_status"].isin(ENDED_STATUSES)
    churned_at = pd.to_datetime(facts["churned_at"], utc=True)
    return seen & ~ended & ~(churned_at <= pd.Timestamp(moment))


def _churned(facts: pd.DataFrame, moment: datetime, horizon_days: int, churns: pd.DataFrame) -> np.ndarray:
    """Whether each customer churned in (moment, moment + horizon]."""
    end = moment + timedelta(days=horizon_days)
    days = churns["day"]
    within = churns[(days >= moment.date()) & (days <= last_day(end))]
    churned_at = pd.to_datetime(facts["churned_at"], utc=True)
    marked = (churned_at > pd.Timestamp(moment)) & (churned_at <= pd.Timestamp(end))
    return (facts.index.isin(within["customer_id"]) | marked.to_numpy()).astype(bool)


async def _churn_days(session: AsyncSession, tenant_id: uuid.UUID, until: date) -> pd.DataFrame:
    """(customer, day) of every cancellation event and every ended subscription state up to `until`."""
    activity = CustomerDailyActivityRepository(session, tenant_id)
    canceled = activity.select_readable(key_column(ACTIVITY.c.customer_id), ACTIVITY.c.day).where(
        ACTIVITY.c.name == EventType.subscription_canceled.value,
        ACTIVITY.c.day <= until,
    )
    state = CustomerDailyStateRepository(session, tenant_id)
    ended = state.select_readable(key_column(STATE.c.customer_id), STATE.c.day).where(
        STATE.c.status.in_(ENDED_STATUSES), STATE.c.day <= until
    )
    return await query_frame(session, canceled.union_all(ended), ["customer_id", "day"])


async def _imported(session: AsyncSession, tenant_id: uuid.UUID, as_of: datetime, spec: FeatureSpec) -> pd.DataFrame:
    """The imported labelled customers: their traits as of `as_of`, every other feature missing."""
    labelled = CustomerRepository(session, tenant_id).select_readable(Customer.id, Customer.external_id)
    statement = labelled.where(Customer.churn_label.is_not(None))
    external = dict((await session.execute(statement.order_by(Customer.id))).all())
    if not external:
        return pd.DataFrame(columns=[*spec.columns, "customer_id", "external_id", "churn_label"])
    facts = (await customer_facts(session, tenant_id, as_of, spec, list(external))).copy()
    facts["external_id"] = facts["customer_id"].map(external)
    for column in spec.numeric:
        if not column.startswith(TRAIT_PREFIX):
            facts[column] = np.nan
    for column in spec.categorical:
        if not column.startswith(TRAIT_PREFIX):
            facts[column] = MISSING_CATEGORY
    return facts


def _empty_frame(spec: FeatureSpec) -> pd.DataFrame:
    numeric = {column: pd.Series(dtype=float) for column in spec.numeric}
    return pd.DataFrame(numeric | {column: pd.Series(dtype=object) for column in spec.categorical})
