"""Features of customers as of a time t, from the daily aggregates only (never the raw timeline).

CONTRACT (shared by training, scoring, explanations):

- Feature names: `usage.<event>.7d|14d|28d|30d|56d|90d` (counts in the window ending at t),
  `usage.<event>.trend` (last 7 days against the 28-day rate: 4 * count7 / count28, NaN without
  events in 28 days), `usage.<event>.trend_14d` (last 14 days against the 56-day rate),
  `usage.<event>.change` (the last 28 days against the 28 before: (c28 - p28) / (c28 + p28), in
  [-1, 1], NaN without events in 56 days), `usage.<event>.share` (of the spec's usage events in 28
  days, NaN without any), `usage.<event>.days_since` (since the newest day with it, WINDOW_DAYS
  when none in the window), `usage.<event>.daily_90d` (the 90-day count per day of tenure in
  it: a new customer's counts on the scale of an old one's), `usage.<event>.daily_life` (its count
  over the customer's whole history per day since the first use of any event, NaN before one),
  `usage.<event>.vs_life` (the 28-day rate against that lifetime rate: a fall however long ago it
  began, NaN without a lifetime use), `usage.<event>.share_vs_life` (its 28-day share minus its
  lifetime share, NaN without use in 28 days); `days_since_last_activity` (last
  usage event), `active_days_7d|28d|30d|90d` (days with usage), `active_day_share_28d` (active
  days over the days of tenure in the last 28), `active_days_change_28d` and `usage_change_28d`
  (last 28 days against the 28 before, as `change`), `usage_28d` (the spec's usage events),
  `usage_trend` (as `trend`, all of them), `usage_daily_90d` (as `daily_90d`), `usage_vs_life`
  (as `vs_life`, all of them), `mrr_per_usage_28d`
  and `mrr_per_active_day_28d` (MRR over 1 + the 28-day usage or active days: what a unit of use
  costs the customer), `payment_failures_30d`, `payment_failures_90d`, `days_since_payment_failure`
  (WINDOW_DAYS when none in the window), `last_decline_class` (cat: hard/soft, of the newest
  failure in 90 days), `tenure_days` (since the first event), `plan` (cat), `mrr`,
  `discounts_received` (ever), `cancel_scheduled` (0/1), `subscription_status` (cat), and
  `trait.<name>` for every trait (cat or number by its type, see `traits.py`).
- `FeatureMatrix.frame`: one row per customer, in `customer_ids` order; numeric columns float64
  with NaN for missing; categorical columns str with MISSING_CATEGORY for missing. Every spec
  from `discover_spec` holds the base features, so `subscription_status` tells churned customers
  (ENDED_STATUSES) apart.
- `FeatureSpec` fixes the columns a model was trained on; scoring builds exactly those columns
  (a usage event or trait unknown at training is left out; one that vanished is missing).

Time: t resolves to whole UTC days: the days up to the one holding the instant just before t.
Weekly snapshots are taken at midnight, so nothing of their own day (after t) reaches them.
Traits are the customer's current ones (no daily history is kept for them); training snapshots
put back what identify events had set by t (`trait_history.py`).

Cost: four SQL statements whatever the number of customers (activity per customer and event
name over the windows and the whole history, activity per customer over its life, the latest
subscription state, the customers), each an aggregation in the database; numpy pivots the
results. Both activity statements read the tenant's rows in primary-key order (customer, name,
day), already grouped, and both read each customer's whole history: the lifetime rates need it,
and the window sums are conditional sums in the same pass (docs/performance.md, risk features). Lists of up to
IN_LIST_LIMIT customers filter in SQL, longer ones (and the whole tenant) read the tenant and select in pandas.
"""

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import String, Text, and_, case, cast, distinct, func
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.customers.activity import (
    ACTIVITY,
    DECLINE_NAMES,
    DECLINE_PREFIX,
    DISCOUNT_NAMES,
    NON_USAGE_NAMES,
    STATE,
    decline_name,
)
from churnsaver.backend.customers.events import DeclineClass, EventType
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import (
    CustomerDailyActivityRepository,
    CustomerDailyStateRepository,
    CustomerRepository,
)
from churnsaver.backend.risk.traits import (
    MISSING_CATEGORY,
    is_identifier,
    is_numeric_trait,
    trait_category,
    trait_number,
)

__all__ = ["MISSING_CATEGORY", "FeatureMatrix", "FeatureSpec", "discover_spec", "feature_matrix", "feature_rows"]

WINDOW_DAYS = 90
USAGE_WINDOWS = (7, 14, 28, 30, 56, 90)
TREND_DAYS = (7, 28)
LONG_TREND_DAYS = (14, 56)
PERIOD_DAYS = 28  # the period `change` compares with the one before it
ACTIVE_DAY_WINDOWS = (7, 28, 30, 56, 90)
USAGE_RATIOS = (
    "trend",
    "trend_14d",
    "change",
    "share",
    "days_since",
    "daily_90d",
    "daily_life",
    "vs_life",
    "share_vs_life",
)
USAGE_PREFIX = "usage."
TRAIT_PREFIX = "trait."
BASE_NUMERIC = (
    "days_since_last_activity",
    "active_days_7d",
    "active_days_28d",
    "active_days_30d",
    "active_days_90d",
    "active_day_share_28d",
    "active_days_change_28d",
    "usage_28d",
    "usage_trend",
    "usage_change_28d",
    "usage_daily_90d",
    "usage_vs_life",
    "mrr_per_usage_28d",
    "mrr_per_active_day_28d",
    "payment_failures_30d",
    "payment_failures_90d",
    "days_since_payment_failure",
    "tenure_days",
    "mrr",
    "discounts_received",
    "cancel_scheduled",
)
BASE_CATEGORICAL = ("last_decline_class", "plan", "subscription_status")
# The widest a spec gets: the most frequent usage events, the traits most customers have.
MAX_USAGE_EVENTS = 50
MAX_TRAITS = 100
IN_LIST_LIMIT = 5_000  # bound parameters: SQLite and asyncpg take up to 32,766
TRAIT_SAMPLE = 20_000  # customers whose traits decide which traits exist and their types
STATE_FEATURE_FIELDS = ("status", "plan", "mrr", "cancel_at_period_end")


@dataclass(frozen=True)
class FeatureSpec:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    @property
    def usage_events(self) -> tuple[str, ...]:
        """The usage event names the spec has columns for, in column order."""
        names = (column[len(USAGE_PREFIX) :].rsplit(".", 1)[0] for column in self.numeric)
        starts = (column.startswith(USAGE_PREFIX) for column in self.numeric)
        return tuple(dict.fromkeys(name for name, usage in zip(names, starts, strict=True) if usage))

    @property
    def traits(self) -> tuple[str, ...]:
        return tuple(column[len(TRAIT_PREFIX) :] for column in self.columns if column.startswith(TRAIT_PREFIX))

    def to_json(self) -> dict[str, Any]:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FeatureSpec":
        return cls(tuple(data["numeric"]), tuple(data["categorical"]))


@dataclass(frozen=True)
class FeatureMatrix:
    customer_ids: list[uuid.UUID]
    as_of: list[datetime]  # per row: snapshots of one customer at several dates share its id
    frame: pd.DataFrame
    spec: FeatureSpec


@dataclass(frozen=True, slots=True)
class IdRange:
    """The tenant's customers whose id lies in [first, last]: a slice of the tenant in id order.
    Every table the features read is keyed by (tenant, customer, ...), so a slice is a range of
    each primary key: whole-tenant scoring reads the tenant slice by slice (`id_ranges`)."""

    first: uuid.UUID
    last: uuid.UUID


# Which customers a read covers: the whole tenant (None), a few ids, or a slice in id order.
Scope = list[uuid.UUID] | IdRange | None


async def id_ranges(session: AsyncSession, tenant_id: uuid.UUID, size: int) -> list[tuple[IdRange, int]]:
    """The tenant's customers cut into slices of `size` in id order, with each slice's count.
    Only the ids are read (the primary key's index), as text: no UUID object per customer."""
    statement = CustomerRepository(session, tenant_id).select_readable(key_column(Customer.id)).order_by(Customer.id)
    keys = list((await session.scalars(statement)).all())
    slices = []
    for start in range(0, len(keys), size):
        last = min(start + size, len(keys)) - 1
        slices.append((IdRange(uuid.UUID(hex=keys[start]), uuid.UUID(hex=keys[last])), last - start + 1))
    return slices


def usage_columns(event: str) -> tuple[str, ...]:
    return (
        *(f"{USAGE_PREFIX}{event}.{days}d" for days in USAGE_WINDOWS),
        *(f"{USAGE_PREFIX}{event}.{ratio}" for ratio in USAGE_RATIOS),
    )


def trait_column(name: str) -> str:
    return TRAIT_PREFIX + name


def last_day(as_of: datetime) -> date:
    """The last whole-or-partial UTC day before `as_of`: midnight belongs to the day before."""
    if as_of.tzinfo is None:
        raise ValueError("as of must be a timezone-aware time")
    return (as_of.astimezone(UTC) - timedelta(microseconds=1)).date()


async def discover_spec(session: AsyncSession, tenant_id: uuid.UUID, as_of: datetime | None = None) -> FeatureSpec:
    """The features a tenant's data supports: the base ones, its usage events, its traits."""
    usage = CustomerDailyActivityRepository(session, tenant_id).select_readable(ACTIVITY.c.name)
    usage = usage.where(ACTIVITY.c.name.not_in(NON_USAGE_NAMES))
    if as_of is not None:
        usage = usage.where(ACTIVITY.c.day <= last_day(as_of))
    total = func.sum(ACTIVITY.c["count"])
    usage = usage.group_by(ACTIVITY.c.name).order_by(total.desc(), ACTIVITY.c.name).limit(MAX_USAGE_EVENTS)
    events = sorted(name for (name,) in await session.execute(usage))
    values: dict[str, list[Any]] = defaultdict(list)
    sample = CustomerRepository(session, tenant_id).select_readable(Customer.traits)
    sample = sample.order_by(Customer.id).limit(TRAIT_SAMPLE)
    for (traits,) in await session.execute(sample):
        for name, value in (traits if isinstance(traits, dict) else {}).items():
            values[name].append(value)
    numeric_traits, categorical_traits = [], []
    for name in sorted(values, key=lambda name: (-len(values[name]), name))[:MAX_TRAITS]:
        kind = is_numeric_trait(values[name])
        if kind:
            numeric_traits.append(trait_column(name))
        elif kind is not None and not is_identifier(values[name]):
            categorical_traits.append(trait_column(name))
    return FeatureSpec(
        numeric=(
            *BASE_NUMERIC,
            *(column for event in events for column in usage_columns(event)),
            *sorted(numeric_traits),
        ),
        categorical=(*BASE_CATEGORICAL, *sorted(categorical_traits)),
    )


async def feature_matrix(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    as_of: datetime | None,
    spec: FeatureSpec,
    customer_ids: Sequence[uuid.UUID] | None = None,
    *,
    readers: "Readers | None" = None,
    id_range: IdRange | None = None,
) -> FeatureMatrix:
    """The spec's features as of `as_of` (default now) for `customer_ids` (default: every customer
    of the tenant, or of `id_range`; ids of no customer of the tenant are left out). With
    `readers`, the queries run at the same time, each in a session of its own (see `customer_facts`)."""
    moment = as_of or utcnow()
    facts = await customer_facts(session, tenant_id, moment, spec, customer_ids, readers=readers, id_range=id_range)
    return _matrix(facts, [moment] * len(facts), spec)


async def feature_rows(
    session: AsyncSession, tenant_id: uuid.UUID, rows: Sequence[tuple[uuid.UUID, datetime]], spec: FeatureSpec
) -> FeatureMatrix:
    """Features per (customer, as of) row, in `rows` order (rows of no customer of the tenant are
    left out): one pass per distinct date."""
    by_date: dict[datetime, list[uuid.UUID]] = defaultdict(list)
    for customer_id, moment in rows:
        by_date[moment].append(customer_id)
    parts = {moment: await customer_facts(session, tenant_id, moment, spec, ids) for moment, ids in by_date.items()}
    offsets, start = {}, 0
    for moment, facts in parts.items():
        offsets[moment] = (start, {key: index for index, key in enumerate(facts.index)})
        start += len(facts)
    found = [(row, offsets[row[1]]) for row in rows if row[0].hex in offsets[row[1]][1]]
    positions = [offset + index[customer_id.hex] for (customer_id, _), (offset, index) in found]
    columns = list(spec.columns)
    everything = pd.concat([facts[columns] for facts in parts.values()]) if parts else pd.DataFrame(columns=columns)
    frame = everything.iloc[positions].reset_index(drop=True)
    return FeatureMatrix([row[0] for row, _ in found], [row[1] for row, _ in found], frame, spec)


def _matrix(facts: pd.DataFrame, as_of: list[datetime], spec: FeatureSpec) -> FeatureMatrix:
    frame = facts[list(spec.columns)].reset_index(drop=True)
    return FeatureMatrix(facts["customer_id"].tolist(), as_of, frame, spec)


# Columns `customer_facts` adds to the features: the id, and what snapshots and labels need.
FACT_COLUMNS = ("customer_id", "first_day", "churned_at", "churn_label")


async def customer_facts(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    as_of: datetime,
    spec: FeatureSpec,
    customer_ids: Sequence[uuid.UUID] | None = None,
    *,
    readers: "Readers | None" = None,
    id_range: IdRange | None = None,
) -> pd.DataFrame:
    """The spec's features as of `as_of` plus FACT_COLUMNS, indexed by `customer_key`, for
    `customer_ids`, else the customers of `id_range`, else the whole tenant.

    Customers are keyed by the hex text of their id: pandas hashes text in C, while every
    uuid.UUID hash is a Python call, which for a large tenant costs more than the queries.
    Query results stay numpy columns (`Columns`) until the one frame at the end: a real-time
    re-score of one customer would otherwise spend most of its time building small frames.

    `readers` (a factory of sessions of the tenant) runs the four queries concurrently, each in
    its own session: the database works on two of them at once, and on the others while this
    process converts rows (SQLite runs each connection in its own thread, outside the GIL). For
    whole-tenant scoring, where the reads are most of the time. The reads are then not one
    snapshot: an event ingested meanwhile may reach some of them and not others, as it may reach
    a score or miss it anyway; it re-scores its customer next."""
    day = last_day(as_of)
    few: Scope = id_range
    if customer_ids is not None and len(customer_ids) <= IN_LIST_LIMIT:
        few = list(customer_ids)
    customers, window, life, state = await _read(
        session,
        readers,
        lambda reader: _customers(reader, tenant_id, few, with_traits=bool(spec.traits)),
        lambda reader: _window_activity(reader, tenant_id, day, spec.usage_events, few),
        lambda reader: _life_activity(reader, tenant_id, day, few),
        lambda reader: _latest_state(reader, tenant_id, day, few),
    )
    keys = pd.Index(customers["key"])
    if customer_ids is not None:
        wanted = pd.Index([customer_key(customer_id) for customer_id in customer_ids]).drop_duplicates()
        wanted = wanted[wanted.isin(keys)]
        customers = {name: values[keys.get_indexer(wanted)] for name, values in customers.items()}
        keys = wanted
    rows = keys.get_indexer(window["customer_id"])
    columns: dict[str, Any] = _life_features(life, keys.get_indexer(life["customer_id"]), len(keys), day)
    columns |= _usage_features(window, rows, spec.usage_events, len(keys), day, columns)
    columns |= _payment_features(window, rows, len(keys), day)
    columns |= _state_features(state, keys.get_indexer(state["customer_id"]), len(keys))
    columns |= _value_features(columns)
    columns |= _trait_features(customers, spec)
    columns["customer_id"] = customers["id"]
    columns["churned_at"] = customers["churned_at"]
    columns["churn_label"] = customers["churn_label"]
    return pd.DataFrame(columns, index=keys)


Readers = Callable[[], AsyncSession]  # a new session of the tenant, closed by `async with`
Read = Callable[[AsyncSession], Awaitable["Columns"]]


async def _read(session: AsyncSession, readers: Readers | None, *reads: Read) -> list["Columns"]:
    if readers is None:
        return [await read(session) for read in reads]

    async def on_its_own(read: Read) -> "Columns":
        async with readers() as reader:
            return await read(reader)

    return list(await asyncio.gather(*(on_its_own(read) for read in reads)))


def customer_key(customer_id: uuid.UUID) -> str:
    return customer_id.hex


def key_column(column: Any) -> Any:
    """A customer id column as `customer_key` text, computed by the database (PostgreSQL's text
    form has dashes, SQLite stores the bare hex)."""
    return func.replace(cast(column, String), "-", "")


def _scoped(statement: Any, column: Any, scope: Scope) -> Any:
    if scope is None:
        return statement
    if isinstance(scope, IdRange):
        return statement.where(column.between(scope.first, scope.last))
    return statement.where(column.in_(scope))


async def _customers(
    session: AsyncSession, tenant_id: uuid.UUID, customer_ids: Scope, *, with_traits: bool
) -> "Columns":
    columns = [key_column(Customer.id), Customer.id, Customer.churned_at, Customer.churn_label]
    if with_traits:  # as text, decoded by `_traits` (the JSON type's stdlib decoder is slower)
        columns.append(cast(Customer.traits, Text))
    statement = _scoped(CustomerRepository(session, tenant_id).select_readable(*columns), Customer.id, customer_ids)
    names = ["key", "id", "churned_at", "churn_label", *(["traits"] if with_traits else [])]
    return await query_columns(session, statement.order_by(Customer.id), names)


async def _window_activity(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    day: date,
    usage_events: Sequence[str],
    customer_ids: Scope,
) -> "Columns":
    """Per customer and name (usage events of the spec, payment failures, declines): counts in
    the last 7/14/28/30/56/90 days, over the customer's whole history, and the newest day in the
    90-day window (NULL when none)."""
    count = ACTIVITY.c["count"]

    def within(days: int) -> Any:
        return func.sum(case((ACTIVITY.c.day > day - timedelta(days=days), count), else_=0))

    names = [*usage_events, EventType.payment_failed.value, *sorted(DECLINE_NAMES)]
    statement = CustomerDailyActivityRepository(session, tenant_id).select_readable(
        key_column(ACTIVITY.c.customer_id),
        ACTIVITY.c.name,
        *(within(days) for days in USAGE_WINDOWS),
        func.sum(count),
        func.max(case((ACTIVITY.c.day > day - timedelta(days=WINDOW_DAYS), ACTIVITY.c.day))),
    )
    statement = statement.where(ACTIVITY.c.day <= day, ACTIVITY.c.name.in_(names))
    statement = _scoped(statement, ACTIVITY.c.customer_id, customer_ids)
    statement = statement.group_by(ACTIVITY.c.customer_id, ACTIVITY.c.name)
    counts = [f"c{days}" for days in USAGE_WINDOWS]
    return await query_columns(session, statement, ["customer_id", "name", *counts, "life", "newest"])


async def _life_activity(session: AsyncSession, tenant_id: uuid.UUID, day: date, customer_ids: Scope) -> "Columns":
    """Per customer over its whole history up to `day`: first day, first and last usage day, days
    with usage in the last 7, 28, 30, 56 and 90 days, discounts received."""
    usage = ACTIVITY.c.name.not_in(NON_USAGE_NAMES)

    def usage_days(days: int) -> Any:
        return func.count(distinct(case((and_(usage, ACTIVITY.c.day > day - timedelta(days=days)), ACTIVITY.c.day))))

    statement = CustomerDailyActivityRepository(session, tenant_id).select_readable(
        key_column(ACTIVITY.c.customer_id),
        func.min(ACTIVITY.c.day),
        func.min(case((usage, ACTIVITY.c.day))),
        func.max(case((usage, ACTIVITY.c.day))),
        *(usage_days(days) for days in ACTIVE_DAY_WINDOWS),
        func.sum(case((ACTIVITY.c.name.in_(DISCOUNT_NAMES), ACTIVITY.c["count"]), else_=0)),
    )
    statement = statement.where(ACTIVITY.c.day <= day)
    statement = _scoped(statement, ACTIVITY.c.customer_id, customer_ids)
    active = [f"active_{days}" for days in ACTIVE_DAY_WINDOWS]
    names = ["customer_id", "first_day", "first_usage_day", "last_usage_day", *active, "discounts"]
    return await query_columns(session, statement.group_by(ACTIVITY.c.customer_id), names)


async def _latest_state(session: AsyncSession, tenant_id: uuid.UUID, day: date, customer_ids: Scope) -> "Columns":
    """Per customer, each subscription field as the newest day up to `day` that says it.

    One grouped pass: the max of "<day as text><value>" is the newest day's value (a day without
    the field concatenates to NULL, which max skips), where window functions need one sort per
    field."""
    day_text = cast(STATE.c.day, String)

    def newest(name: str) -> Any:
        return func.max(day_text.concat(cast(STATE.c[name], String)))

    statement = CustomerDailyStateRepository(session, tenant_id).select_readable(
        key_column(STATE.c.customer_id), *(newest(name) for name in STATE_FEATURE_FIELDS)
    )
    statement = statement.where(STATE.c.day <= day)
    statement = _scoped(statement, STATE.c.customer_id, customer_ids).group_by(STATE.c.customer_id)
    state = await query_columns(session, statement, ["customer_id", *STATE_FEATURE_FIELDS])
    for name in STATE_FEATURE_FIELDS:
        state[name] = _object_array([None if value is None else value[len("YYYY-MM-DD") :] for value in state[name]])
    return state


async def query_frame(
    session: AsyncSession, statement: Any, columns: list[str], index: str | None = None
) -> pd.DataFrame:
    """The statement's rows as a frame of object columns. On the connection, plain tuples: the
    ORM's result handling and pandas' per-record checks cost more than the database for a large
    tenant."""
    rows = list(map(tuple, (await (await session.connection()).execute(statement)).all()))
    if rows:
        frame = pd.DataFrame(rows, columns=columns, dtype=object)
    else:
        frame = pd.DataFrame({name: pd.Series(dtype=object) for name in columns})
    return frame.set_index(index) if index else frame


Columns = dict[str, np.ndarray]  # a query's result: one object array per column


async def query_columns(session: AsyncSession, statement: Any, names: list[str]) -> Columns:
    """The statement's rows as one object array per column (plain tuples on the connection, as
    in `query_frame`)."""
    rows = (await (await session.connection()).execute(statement)).all()
    values = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return {name: _object_array(column) for name, column in zip(names, values, strict=True)}


def _object_array(values: Sequence[Any]) -> np.ndarray:
    # Filled element by element: np.array would turn a column of lists into a 2-d array.
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _usage_features(
    window: Columns, rows: np.ndarray, usage_events: Sequence[str], size: int, day: date, life: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Per usage event, its counts and ratios, and the same over all of the spec's usage events:
    the window's rows scattered into (customer, event) grids. `life` holds `_life_features`."""
    events = pd.Index(usage_events).get_indexer(window["name"])
    hit = (rows >= 0) & (events >= 0)

    def grid_of(column: str) -> np.ndarray:
        grid = np.zeros((size, len(usage_events)))
        grid[rows[hit], events[hit]] = window[column][hit].astype(float)
        return grid

    grids = {days: grid_of(f"c{days}") for days in USAGE_WINDOWS}
    lifetime = grid_of("life")
    newest = np.full((size, len(usage_events)), np.nan)
    newest[rows[hit], events[hit]] = _day_numbers(window["newest"][hit])
    days_since = np.nan_to_num(day.toordinal() - newest, nan=float(WINDOW_DAYS))
    # Days of the 90-day window the customer existed in: a count per day it could have been used.
    observed = np.clip(np.nan_to_num(life["tenure_days"], nan=WINDOW_DAYS) + 1, 1, WINDOW_DAYS)
    # Days since the first use: the customer's own long-run rate, against which a fall shows
    # however long ago it began (a billing history may start long before the usage one).
    used_since = life["usage_history_days"]
    recent = grids[PERIOD_DAYS]
    share = _divide(recent, recent.sum(axis=1, keepdims=True))
    daily_life = _divide(lifetime, used_since[:, None])
    ratios = {
        "trend": _rate_ratio(grids[TREND_DAYS[0]], grids[TREND_DAYS[1]], TREND_DAYS),
        "trend_14d": _rate_ratio(grids[LONG_TREND_DAYS[0]], grids[LONG_TREND_DAYS[1]], LONG_TREND_DAYS),
        "change": _change(recent, grids[2 * PERIOD_DAYS] - recent),
        "share": share,
        "days_since": days_since,
        "daily_90d": grids[WINDOW_DAYS] / observed[:, None],
        "daily_life": daily_life,
        "vs_life": _divide(recent / PERIOD_DAYS, daily_life),
        "share_vs_life": share - _divide(lifetime, lifetime.sum(axis=1, keepdims=True)),
    }
    columns: dict[str, np.ndarray] = {}
    for index, event in enumerate(usage_events):
        names = iter(usage_columns(event))
        for days in USAGE_WINDOWS:
            columns[next(names)] = grids[days][:, index]
        for ratio in USAGE_RATIOS:
            columns[next(names)] = ratios[ratio][:, index]
    totals = {days: grid.sum(axis=1) for days, grid in grids.items()}
    columns["usage_28d"] = totals[PERIOD_DAYS]
    columns["usage_trend"] = _rate_ratio(totals[TREND_DAYS[0]], totals[TREND_DAYS[1]], TREND_DAYS)
    columns["usage_change_28d"] = _change(totals[PERIOD_DAYS], totals[2 * PERIOD_DAYS] - totals[PERIOD_DAYS])
    columns["usage_daily_90d"] = totals[WINDOW_DAYS] / observed
    columns["usage_vs_life"] = _divide(totals[PERIOD_DAYS] / PERIOD_DAYS, _divide(lifetime.sum(axis=1), used_since))
    return columns


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _rate_ratio(short: np.ndarray, long: np.ndarray, days: tuple[int, int]) -> np.ndarray:
    """The daily rate over the short window against the long one's (NaN without any in the long)."""
    return _divide(short / days[0], long / days[1])


def _change(recent: np.ndarray, before: np.ndarray) -> np.ndarray:
    """(recent - before) / (recent + before): -1 gone, 0 flat, 1 new; NaN when both are 0."""
    return _divide(recent - before, recent + before)


def _value_features(columns: dict[str, Any]) -> dict[str, np.ndarray]:
    """What the customer pays per unit of use: the subscription's MRR over 1 + its 28-day use."""
    mrr = columns["mrr"]
    return {
        "mrr_per_usage_28d": mrr / (1 + columns["usage_28d"]),
        "mrr_per_active_day_28d": mrr / (1 + columns["active_days_28d"]),
    }


def _payment_features(window: Columns, rows: np.ndarray, size: int, day: date) -> dict[str, Any]:
    names = window["name"]
    failures = (names == EventType.payment_failed.value) & (rows >= 0)
    thirty, ninety = np.zeros(size), np.zeros(size)
    thirty[rows[failures]] = window["c30"][failures].astype(float)
    ninety[rows[failures]] = window["c90"][failures].astype(float)
    since = np.full(size, float(WINDOW_DAYS))
    since[rows[failures]] = day.toordinal() - _day_numbers(window["newest"][failures])
    since = np.nan_to_num(since, nan=float(WINDOW_DAYS))  # failures before the window only
    # The newest failure's class; a day with both counts as hard (the worse one): sorted by
    # customer, newest day, hard last, the last row of each customer is its class.
    in_window = np.array([newest is not None for newest in window["newest"]], dtype=bool)
    declines = np.flatnonzero(np.isin(names, list(DECLINE_NAMES)) & (rows >= 0) & in_window)
    classes = np.full(size, MISSING_CATEGORY, dtype=object)
    if len(declines):
        hard = names[declines] == decline_name(DeclineClass.hard)
        newest = _day_numbers(window["newest"][declines])
        order = declines[np.lexsort((hard, newest, rows[declines]))]
        owners = rows[order]
        last = np.append(owners[1:] != owners[:-1], True)
        classes[owners[last]] = [name.removeprefix(DECLINE_PREFIX) for name in names[order[last]]]
    return {
        "payment_failures_30d": thirty,
        "payment_failures_90d": ninety,
        "days_since_payment_failure": since,
        "last_decline_class": classes,
    }


def _life_features(life: Columns, rows: np.ndarray, size: int, day: date) -> dict[str, np.ndarray]:
    found = rows >= 0
    rows = rows[found]
    today = float(day.toordinal())

    def spread(values: np.ndarray, missing: float) -> np.ndarray:
        column = np.full(size, missing)
        column[rows] = values[found]
        return column

    first_day = np.full(size, None, dtype=object)
    first_day[rows] = life["first_day"][found]
    active = {days: spread(life[f"active_{days}"].astype(float), 0.0) for days in ACTIVE_DAY_WINDOWS}
    tenure = today - spread(_day_numbers(life["first_day"]), np.nan)
    # Days from the first use to `day`, both counted (NaN without any use): what lifetime rates divide by.
    usage_history_days = today - spread(_day_numbers(life["first_usage_day"]), np.nan) + 1
    # The days of the last 28 the customer existed on (NaN for none: nothing seen yet).
    existed = np.clip(tenure + 1, 1, PERIOD_DAYS)
    return {
        "days_since_last_activity": today - spread(_day_numbers(life["last_usage_day"]), np.nan),
        # 56 days serve the change only: the days before the last 28.
        **{f"active_days_{days}d": active[days] for days in ACTIVE_DAY_WINDOWS if days != 2 * PERIOD_DAYS},
        "active_day_share_28d": active[PERIOD_DAYS] / existed,
        "active_days_change_28d": _change(active[PERIOD_DAYS], active[2 * PERIOD_DAYS] - active[PERIOD_DAYS]),
        "tenure_days": tenure,
        "usage_history_days": usage_history_days,
        "discounts_received": spread(life["discounts"].astype(float), 0.0),
        "first_day": first_day,
    }


def _day_numbers(days: np.ndarray) -> np.ndarray:
    """Days as ordinals (NaN for none), to subtract and sort as numbers."""
    return np.fromiter((np.nan if day is None else day.toordinal() for day in days), dtype=float, count=len(days))


def _state_features(state: Columns, rows: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """The state's fields, read back from their text (booleans: "true"/"false" on PostgreSQL,
    "1"/"0" on SQLite). A subscription whose events never mentioned a cancellation has none
    scheduled (as `subscriptions.cancel_at_period_end` says); without any state it is unknown."""
    found = rows >= 0
    rows = rows[found]

    def spread(values: Sequence[Any] | np.ndarray, missing: Any, dtype: Any) -> np.ndarray:
        column = np.full(size, missing, dtype=dtype)
        column[rows] = np.asarray(values, dtype=dtype)[found] if len(values) else []
        return column

    fields = [state[name] for name in STATE_FEATURE_FIELDS]
    known = [any(value is not None for value in values) for values in zip(*fields, strict=True)]
    flags = [
        _FLAGS.get(flag, 0.0 if any_state else np.nan)
        for flag, any_state in zip(state["cancel_at_period_end"], known, strict=True)
    ]
    return {
        "plan": _categories(spread(state["plan"], None, object)),
        "mrr": spread([_number(value) for value in state["mrr"]], np.nan, float),
        "cancel_scheduled": spread(flags, np.nan, float),
        "subscription_status": _categories(spread(state["status"], None, object)),
    }


_FLAGS = {"true": 1.0, "1": 1.0, "false": 0.0, "0": 0.0}


def _number(value: str | None) -> float:
    try:
        return float(value) if value is not None else np.nan
    except ValueError:
        return np.nan


def _categories(values: np.ndarray) -> np.ndarray:
    return np.where(pd.isna(values), MISSING_CATEGORY, values).astype(object)


def _traits(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN or Infinity, which the stdlib encoder writes
        value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _trait_features(customers: Columns, spec: FeatureSpec) -> dict[str, np.ndarray]:
    if not spec.traits:
        return {}
    traits = [_traits(text) for text in customers["traits"]]
    numeric = set(spec.numeric)
    columns: dict[str, np.ndarray] = {}
    for name in spec.traits:
        column = trait_column(name)
        values = [trait.get(name) for trait in traits]
        if column in numeric:
            columns[column] = np.fromiter((trait_number(value) for value in values), dtype=float, count=len(values))
        else:
            columns[column] = np.array([trait_category(value) for value in values], dtype=object)
    return columns
