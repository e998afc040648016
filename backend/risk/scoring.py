"""Scoring customers: features -> probabilities -> reasons -> tiers -> stored scores and history.

One code path serves both modes: the real-time job re-scores the few customers an ingest batch
touched, the batch run scores every customer of a tenant. Features come from one read (a few
aggregate queries, `features.py`); then each chunk of `CHUNK_SIZE` customers is vectorised: one
SHAP pass (which gives the probabilities too), tiers, and one INSERT ... SELECT per table
(`core/bulk.py`). A re-score of one customer is about ten short statements and no pandas
work beyond its one-row frame.

Only customers who can still churn are scored: a customer churned as of the scoring time (its
`churned_at` not after it, or a churned one with no known time) is left out, read in one query per
chunk; one who churned later is scored as it was then, but moves no tier event, since consumers
act on customers at risk now.

A score is identified by (customer, as of, model version), which makes re-running idempotent:
- newer than the customer's current score: it replaces it, is appended to the history, and a
  tier different from the current one (for a first score: any tier above low) is recorded as a
  `risk.tier_changed` domain event;
- the same as of and model as the current score: nothing happens (a retried job);
- the same as of, another model (a new version was activated): as newer, once per version;
- older than the current score (a back-dated run): appended to the history only, once.
"""

import asyncio
import functools
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd
from catboost import Pool
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from churnsaver.backend.core.bulk import Insert, insert_rows, is_one_of
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.domain_events import DomainEvent
from churnsaver.backend.core.ids import ordered_uuid_hexes
from churnsaver.backend.customers.models import Customer, CustomerStatus
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.risk.baseline import LogisticBaseline
from churnsaver.backend.risk.explain import Explained, Reason, in_probability_terms, shap_scores, top_reasons
from churnsaver.backend.risk.features import FeatureMatrix, FeatureSpec, IdRange, feature_matrix, id_ranges
from churnsaver.backend.risk.model_store import RULES_VERSION, Blend, CalibratedCatBoost, StoredModel, stored_model
from churnsaver.backend.risk.models import TIER_CHANGED, RiskModel, RiskScore, RiskScoreHistory
from churnsaver.backend.risk.repository import RiskModelRepository, RiskScoreHistoryRepository, RiskScoreRepository
from churnsaver.backend.risk.rules import RULES_SPEC, score_by_rules
from churnsaver.backend.risk.settings import TIERS, Thresholds, load_config, tiers_for
from churnsaver.jobs.outbox import notify

# CatBoost's SHAP pass has a large fixed cost per call (its pre-calculation over the trees), so
# a chunk is as large as SQLite's and asyncpg's bound-parameter limits (32,766) allow for
# `customer_id IN (...)` with room to spare; its writes stay one short transaction.
CHUNK_SIZE = 20_000
LOWEST_TIER = TIERS[-1]
SCORE_COLUMNS = ("customer_id", "score", "tier", "reasons")
StageT = TypeVar("StageT")


# The current score only moves forward: of two jobs racing for a customer, the older as of never
# overwrites the newer, whichever commits last.
def _newer_wins(insert: Insert) -> Insert:
    replaced = ("score", "tier", "reasons", "model_version", "as_of", "scored_at")
    return insert.on_conflict_do_update(
        index_elements=["tenant_id", "customer_id"],
        set_={name: insert.excluded[name] for name in replaced},
        where=RiskScore.as_of <= insert.excluded.as_of,
    )


Progress = Callable[[int, int], None]  # (customers scored so far, customers to score)


class ScoringModel(Protocol):
    version: str
    spec: FeatureSpec

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[list[Reason]]]: ...


class RulesModel:
    """The documented cold-start rules (`rules.py`)."""

    version = RULES_VERSION
    spec = RULES_SPEC

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[list[Reason]]]:
        result = score_by_rules(frame)
        return result.scores, result.reasons


class ExplainedModel:
    """A trained version: probabilities and the reasons behind them, from `explained`."""

    spec: FeatureSpec

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[list[Reason]]]:
        # The matrix already holds exactly the spec's columns, typed as the model wants them
        # (features.py); re-normalising them (model_store.model_input) costs more than the SHAP
        # pass of a single customer.
        inputs = frame[list(self.spec.columns)]
        explained = self.explained(inputs)
        return explained.probabilities, top_reasons(explained.impacts, inputs)

    def explained(self, inputs: pd.DataFrame) -> Explained:
        raise NotImplementedError


class CatBoostModel(ExplainedModel):
    """Calibrated CatBoost probabilities and their reasons from one SHAP pass."""

    def __init__(self, version: str, stored: CalibratedCatBoost) -> None:
        self.version = version
        self.spec = stored.spec
        self.stored = stored

    def explained(self, inputs: pd.DataFrame) -> Explained:
        pool = Pool(inputs, cat_features=list(self.spec.categorical))
        return shap_scores(self.stored.model, pool, self.stored.calibration.apply)


class LogisticModel(ExplainedModel):
    """The logistic baseline, when it ranked the holdout best: its probabilities, and reasons
    from each feature's push on the log-odds."""

    def __init__(self, version: str, stored: LogisticBaseline) -> None:
        self.version = version
        self.spec = stored.spec
        self.stored = stored

    def explained(self, inputs: pd.DataFrame) -> Explained:
        return in_probability_terms(*self.stored.contributions(inputs))


class BlendModel(ExplainedModel):
    """The blend of CatBoost and the baseline, when it ranked the holdout best: the mean of both
    probabilities, and the mean of both models' reasons."""

    def __init__(self, version: str, stored: Blend) -> None:
        self.version = version
        self.spec = stored.spec
        self.parts = (CatBoostModel(version, stored.catboost), LogisticModel(version, stored.logistic))

    def explained(self, inputs: pd.DataFrame) -> Explained:
        explained = [part.explained(inputs) for part in self.parts]
        return Explained(
            probabilities=np.mean([part.probabilities for part in explained], axis=0),
            impacts=np.mean([part.impacts for part in explained], axis=0),
        )


def scoring_model(version: str, stored: StoredModel) -> ScoringModel:
    if isinstance(stored, Blend):
        return BlendModel(version, stored)
    if isinstance(stored, LogisticBaseline):
        return LogisticModel(version, stored)
    return CatBoostModel(version, stored)


@dataclass(slots=True)
class ScoringReport:
    as_of: datetime
    model_version: str
    scored: int = 0  # scores written (current or history)
    unchanged: int = 0  # already scored with this as of and model
    churned: int = 0  # left out: churned as of the scoring time
    tier_changes: int = 0
    tiers: dict[str, int] = field(default_factory=dict)  # tiers of the scores written

    @property
    def done(self) -> int:
        """Customers scored, already scored or left out so far."""
        return self.scored + self.unchanged + self.churned

    @classmethod
    def combined(cls, reports: "list[ScoringReport]", as_of: datetime, model_version: str) -> "ScoringReport":
        """One report for groups of customers scored one after another."""
        total = cls(as_of=as_of, model_version=model_version)
        for report in reports:
            total.scored += report.scored
            total.unchanged += report.unchanged
            total.churned += report.churned
            total.tier_changes += report.tier_changes
            for tier, count in report.tiers.items():
                total.tiers[tier] = total.tiers.get(tier, 0) + count
        return total


async def load_scoring_model(session: AsyncSession, tenant_id: uuid.UUID) -> ScoringModel:
    """The tenant's active trained version, or the rules until one is active.

    The model's bytes are read only when this process has not deserialised that version yet
    (model_store caches it by id): a real-time re-score should not fetch megabytes each time.
    """
    statement = (
        RiskModelRepository(session, tenant_id)
        .select_readable()
        .where(RiskModel.active.is_(True), RiskModel.kind != RULES_VERSION)
        .options(defer(RiskModel.model_blob))
    )
    row = (await session.execute(statement)).scalars().first()
    if row is None:
        return RulesModel()
    # In run_sync, reading the deferred bytes on a cache miss is an ordinary lazy load.
    stored = await session.run_sync(lambda _session: stored_model(row))
    return scoring_model(row.version, stored)


async def score_customers(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    as_of: datetime | None = None,
    customer_ids: list[uuid.UUID] | None = None,
    progress: Progress | None = None,
    *,
    model: ScoringModel | None = None,
) -> ScoringReport:
    """Score `customer_ids` (default: every customer of the tenant) as of `as_of` (default: now),
    in the caller's transaction. Ids of another tenant's customers are skipped."""
    as_of = as_of or utcnow()
    model = model or await load_scoring_model(session, tenant_id)
    features = await feature_matrix(session, tenant_id, as_of, model.spec, customer_ids)
    thresholds = (await load_config(session, tenant_id)).thresholds
    report = ScoringReport(as_of=as_of, model_version=model.version)
    for chunk in _chunks(features):
        writes = await _score_chunk(session, tenant_id, as_of, *chunk, model, thresholds, report)
        if writes is not None:
            await _write(session, writes)
        if progress is not None:
            progress(report.done, len(features.customer_ids))
    return report


async def score_tenant(
    db: Database, tenant_id: uuid.UUID, as_of: datetime | None = None, progress: Progress | None = None
) -> ScoringReport:
    """Every customer of the tenant, slice by slice (CHUNK_SIZE customers in id order), in a
    pipeline of three stages that run at the same time: the database reads slice k+1's features
    (its four queries side by side, each in a session of its own), this process scores slice k
    (its SHAP pass in a thread), and the database stores slice k-1. Reads and SQLite's work run
    outside the GIL, so on two cores most of the reading hides behind the scoring. Each slice is
    written in a transaction of its own: a long run never holds the write lock ingestion needs
    for more than a slice, and a retry redoes only what is missing.

    A slice's reads and its writes are then separate transactions; the current score's `as of`
    guard and the history check keep that as safe as one (under READ COMMITTED they never were
    one snapshot either). An event ingested meanwhile may reach a score or miss it, as it may
    anyway; it re-scores its customer next."""
    as_of = as_of or utcnow()
    async with db.tenant_session(tenant_id) as session:
        model = await load_scoring_model(session, tenant_id)
        thresholds = (await load_config(session, tenant_id)).thresholds
        slices = await id_ranges(session, tenant_id, CHUNK_SIZE)
    total = sum(count for _, count in slices)
    readers = functools.partial(db.tenant_session, tenant_id)

    async def read(id_range: IdRange) -> tuple[FeatureMatrix, _Known]:
        async with readers() as session:
            features = await feature_matrix(session, tenant_id, as_of, model.spec, readers=readers, id_range=id_range)
            return features, await _known(session, tenant_id, id_range)

    report = ScoringReport(as_of=as_of, model_version=model.version)
    if not slices:  # no customers
        return report
    stages: list[asyncio.Task[Any]] = []
    try:
        reading = _start(stages, read(slices[0][0]))
        writing: asyncio.Task[None] | None = None
        for position in range(len(slices)):
            features, known = await reading
            if position + 1 < len(slices):
                reading = _start(stages, read(slices[position + 1][0]))
            async with readers() as session:
                writes = await _score_chunk(
                    session,
                    tenant_id,
                    as_of,
                    features.customer_ids,
                    features.frame,
                    model,
                    thresholds,
                    report,
                    known=known,
                    threaded=True,
                )
            if writing is not None:
                await writing
            writing = _start(stages, _write_in_transaction(db, tenant_id, writes)) if writes is not None else None
            if progress is not None:
                progress(report.done, total)
        if writing is not None:
            await writing
    finally:  # a stage failed: let the others finish before the error leaves
        await asyncio.gather(*stages, return_exceptions=True)
    return report


def _start(stages: list[asyncio.Task[Any]], stage: Coroutine[Any, Any, StageT]) -> asyncio.Task[StageT]:
    task = asyncio.ensure_future(stage)
    stages.append(task)
    return task


async def _write_in_transaction(db: Database, tenant_id: uuid.UUID, writes: "_Writes") -> None:
    async with db.tenant_unit_of_work(tenant_id) as session:
        await _write(session, writes)


def _chunks(features: FeatureMatrix) -> Iterator[tuple[list[uuid.UUID], pd.DataFrame]]:
    for start in range(0, len(features.customer_ids), CHUNK_SIZE):
        stop = start + CHUNK_SIZE
        yield features.customer_ids[start:stop], features.frame.iloc[start:stop]


@dataclass(frozen=True, slots=True)
class _Current:
    tier: str
    as_of: datetime
    model_version: str


@dataclass(frozen=True, slots=True)
class _Known:
    """What scoring a chunk reads besides features: current scores, and the churned customers
    with the time each churned (None: not known)."""

    current: dict[uuid.UUID, _Current]
    churned: dict[uuid.UUID, datetime | None]


async def _known(session: AsyncSession, tenant_id: uuid.UUID, customers: "list[uuid.UUID] | IdRange") -> _Known:
    return _Known(await _current_scores(session, tenant_id, customers), await _churned(session, tenant_id, customers))


def _churned_by(churned_at: datetime | None, as_of: datetime) -> bool:
    return churned_at is None or churned_at <= as_of


async def _score_chunk(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    as_of: datetime,
    customer_ids: list[uuid.UUID],
    frame: pd.DataFrame,
    model: ScoringModel,
    thresholds: Thresholds,
    report: ScoringReport,
    *,
    known: _Known | None = None,
    threaded: bool = False,
) -> "_Writes | None":
    """What scoring the chunk writes (None when every customer in it is already scored so or
    churned): its current scores, history rows and tier events. `known` is what the caller has
    read of the chunk already; `threaded` runs the model in a thread."""
    if known is None:
        known = await _known(session, tenant_id, customer_ids)
    current, churned = known.current, known.churned
    replace, history_only = [], []
    for index, customer_id in enumerate(customer_ids):
        if customer_id in churned and _churned_by(churned[customer_id], as_of):
            report.churned += 1
            continue
        now = current.get(customer_id)
        if now is None or as_of > now.as_of or (as_of == now.as_of and now.model_version != model.version):
            replace.append(index)
        elif as_of == now.as_of:
            report.unchanged += 1
        else:
            history_only.append(index)
    # Only a score not newer than the current one can already be in the history.
    maybe_stored = [i for i in replace + history_only if (now := current.get(customer_ids[i])) and now.as_of >= as_of]
    already = (
        await _in_history(session, tenant_id, as_of, model.version, [customer_ids[i] for i in maybe_stored])
        if maybe_stored
        else set()
    )
    report.unchanged += sum(customer_ids[i] in already for i in history_only)
    history_only = [i for i in history_only if customer_ids[i] not in already]
    write = sorted(replace + history_only)
    if not write:
        return None
    rows = frame.iloc[write]
    scores, reasons = await asyncio.to_thread(model.score, rows) if threaded else model.score(rows)
    tiers = tiers_for(scores, thresholds).tolist()
    scores = scores.tolist()
    replacing = set(replace)
    current_rows, appended, changes = [], [], []
    for position, index in enumerate(write):
        customer_id = customer_ids[index]
        row = (customer_id.hex, scores[position], tiers[position], reasons[position])
        if index in replacing:
            current_rows.append(row)
            previous = current.get(customer_id)
            if customer_id not in churned and _tier_changed(previous, tiers[position]):
                payload = {
                    "from": previous.tier if previous else None,
                    "to": tiers[position],
                    "score": scores[position],
                    "model_version": model.version,
                    "as_of": as_of.isoformat(),
                }
                changes.append((customer_id.hex, payload))
        if customer_id not in already:
            appended.append(row)
    # The appended rows' ids, made in one go.
    history_rows = [(row_id, *row) for row_id, row in zip(ordered_uuid_hexes(len(appended)), appended, strict=True)]
    events = [(row_id, *change) for row_id, change in zip(ordered_uuid_hexes(len(changes)), changes, strict=True)]
    report.scored += len(write)
    report.tier_changes += len(events)
    for tier in tiers:
        report.tiers[tier] = report.tiers.get(tier, 0) + 1
    shared = {"tenant_id": tenant_id, "model_version": model.version, "as_of": as_of, "scored_at": utcnow()}
    return _Writes(shared, current_rows, history_rows, events)


@dataclass(frozen=True, slots=True)
class _Writes:
    shared: dict[str, Any]  # what every score row holds: tenant, model version, as of, scored at
    current: list[tuple[Any, ...]]
    history: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]


async def _write(session: AsyncSession, writes: _Writes) -> None:
    shared = writes.shared
    await insert_rows(session, RiskScore.__table__, shared, SCORE_COLUMNS, writes.current, on_conflict=_newer_wins)
    await insert_rows(session, RiskScoreHistory.__table__, shared, ("id", *SCORE_COLUMNS), writes.history)
    event_shared = {"tenant_id": shared["tenant_id"], "type": TIER_CHANGED, "occurred_at": shared["scored_at"]}
    await insert_rows(session, DomainEvent.__table__, event_shared, ("id", "subject_id", "payload"), writes.events)
    if writes.events:
        # Recovery cases (and later webhooks) react to tier changes: their consumers run after the commit.
        notify(session, shared["tenant_id"], TIER_CHANGED)


def _tier_changed(previous: "_Current | None", tier: str) -> bool:
    """A tier event marks a customer moving between tiers. A first score is a change only when it
    puts the customer in a tier above low: consumers (recovery cases, webhooks) react to customers
    at risk, and an event per healthy customer on a tenant's first scoring would say nothing."""
    return tier != LOWEST_TIER if previous is None else previous.tier != tier


def _within(session: AsyncSession, column: Any, customers: list[uuid.UUID] | IdRange) -> Any:
    """`column` among `customers`: a list of ids, or a slice of the tenant in id order."""
    if isinstance(customers, IdRange):
        return column.between(customers.first, customers.last)
    return is_one_of(session, column, customers)


async def _current_scores(
    session: AsyncSession, tenant_id: uuid.UUID, customers: list[uuid.UUID] | IdRange
) -> dict[uuid.UUID, _Current]:
    """The current scores of `customers`: a list of ids, or a slice of the tenant in id order."""
    column = RiskScore.customer_id
    statement = (
        RiskScoreRepository(session, tenant_id)
        .select_readable(column, RiskScore.tier, RiskScore.as_of, RiskScore.model_version)
        .where(_within(session, column, customers))
    )
    rows = await (await session.connection()).execute(statement)
    return {row[0]: _Current(row[1], row[2], row[3]) for row in rows}


async def _churned(
    session: AsyncSession, tenant_id: uuid.UUID, customers: list[uuid.UUID] | IdRange
) -> dict[uuid.UUID, datetime | None]:
    """The churned customers among `customers` (ids, or a slice in id order), with when each churned."""
    column = Customer.id
    statement = (
        CustomerRepository(session, tenant_id)
        .select_readable(column, Customer.churned_at)
        .where(_within(session, column, customers), Customer.status == CustomerStatus.churned.value)
    )
    rows = await (await session.connection()).execute(statement)
    return {row[0]: row[1] for row in rows}


async def _in_history(
    session: AsyncSession, tenant_id: uuid.UUID, as_of: datetime, version: str, customer_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    statement = RiskScoreHistoryRepository(session, tenant_id).select_readable(RiskScoreHistory.customer_id)
    statement = statement.where(
        is_one_of(session, RiskScoreHistory.customer_id, customer_ids),
        RiskScoreHistory.as_of == as_of,
        RiskScoreHistory.model_version == version,
    )
    return set((await session.execute(statement)).scalars())
