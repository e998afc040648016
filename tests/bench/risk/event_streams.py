"""`python -m tests.bench.risk.event_streams`: holdout ROC-AUC on event streams, at three month-ends.

For each tenant (synthetic tenants of `generate`, and the event-stream simulator of
`backend/synthetic/event_stream.py`, whose true hazard is known) it loads the events through the
real ingest code into a fresh embedded database, then at each of three month-end cut-offs:
trains on the weekly snapshots as of the cut-off (`training_rows`, `fit`), scores the customers
active at the cut-off and measures the 30-day ROC-AUC of their outcomes (a churn in the 30 days
after it). It compares:
- `ours`: the training path's CatBoost on every feature, and beside it `served`: the family the
  path would serve (the holdout's winner: CatBoost, the logistic baseline or their blend);
- `before`: the same path on the features it had before issue 19 (counts over 7/30/90 days and
  the 7-vs-28-day trend per event, the base features, traits), the same rows;
- `logistic 28d`: a logistic regression on 28-day behaviour metrics (per-event 28-day counts,
  their 7-vs-28-day trends, shares between event types, change against the 28 days before,
  active-day share, tenure, MRR per use), the same training rows;
- `logistic all`: the baseline the training path reports, on every feature;
- `oracle` (the simulator only): the true hazard on the day before the cut-off.
It prints a table and writes var/bench/risk_event_streams.json. Nothing is asserted: the figures
go to docs/performance.md.
"""

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from churnsaver.backend.core.db import Database
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.risk import metrics
from churnsaver.backend.risk.baseline import LogisticBaseline
from churnsaver.backend.risk.features import (
    TRAIT_PREFIX,
    USAGE_PREFIX,
    FeatureSpec,
)
from churnsaver.backend.risk.snapshots import TrainingSet, training_rows
from churnsaver.backend.risk.training import fit_frame
from churnsaver.backend.synthetic import SyntheticDataset, generate, load_dataset
from churnsaver.backend.synthetic.event_stream import EventStreamDataset, simulate
from tests.bench.server import REPO_ROOT
from tests.fixtures.databases import migrated_database
from tests.fixtures.factories import create_tenant_with_key

HORIZON_DAYS = 30
START = datetime(2025, 1, 1, tzinfo=UTC)
CUTOFFS = (datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
END = CUTOFFS[-1] + timedelta(days=HORIZON_DAYS + 1)
# The base features the path had before issue 19; per usage event: 7/30/90-day counts, trend.
BEFORE_BASE = (
    "days_since_last_activity",
    "active_days_30d",
    "active_days_90d",
    "payment_failures_30d",
    "payment_failures_90d",
    "tenure_days",
    "mrr",
    "discounts_received",
    "cancel_scheduled",
)
BEFORE_USAGE = (".7d", ".30d", ".90d", ".trend")
LOGISTIC_28D_USAGE = (".28d", ".trend", ".share", ".change")
LOGISTIC_28D_BASE = ("active_day_share_28d", "tenure_days", "mrr_per_usage_28d")


@dataclass(frozen=True)
class Tenant:
    name: str
    dataset: SyntheticDataset
    oracle: EventStreamDataset | None = None


def synthetic_tenant(seed: int, customers: int) -> Tenant:
    return Tenant(f"synthetic seed {seed}", generate(seed, customers, START, END, usage_scale=0.5))


def simulated_tenant(seed: int, customers: int) -> Tenant:
    simulated = simulate(seed, customers, START, END, usage_scale=0.5)
    return Tenant(f"simulator seed {seed}", simulated.dataset, simulated)


def before_spec(spec: FeatureSpec) -> FeatureSpec:
    usage = tuple(name for name in spec.numeric if name.startswith(USAGE_PREFIX) and name.endswith(BEFORE_USAGE))
    traits = tuple(name for name in spec.numeric if name.startswith(TRAIT_PREFIX))
    return FeatureSpec((*BEFORE_BASE, *usage, *traits), spec.categorical)


def logistic_28d_spec(spec: FeatureSpec) -> FeatureSpec:
    usage = tuple(name for name in spec.numeric if name.startswith(USAGE_PREFIX) and name.endswith(LOGISTIC_28D_USAGE))
    return FeatureSpec((*usage, *LOGISTIC_28D_BASE), ())


def logistic_28d_frame(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The 28-day metrics as a logistic regression wants them: counts, ratios of rates, tenure
    and MRR per use on a log scale (log1p), so a few heavy users do not set every weight."""
    chosen = frame[list(spec.columns)].copy()
    for name in spec.numeric:
        if not name.endswith((".share", ".change", "active_day_share_28d")):
            chosen[name] = np.log1p(chosen[name].clip(lower=0))
    return chosen


def fit_on(training: TrainingSet, spec: FeatureSpec) -> Any:
    matrix = training.matrix
    dates = np.array([moment.replace(tzinfo=None) for moment in matrix.as_of], dtype="datetime64[ns]")
    return fit_frame(
        matrix.frame[list(spec.columns)],
        spec,
        np.asarray(training.labels, dtype=float),
        snapshot_dates=dates,
        holdout=np.asarray(training.holdout, dtype=bool),
        customer_ids=np.asarray([str(customer_id) for customer_id in matrix.customer_ids]),
    )


async def evaluate_cutoff(db: Database, tenant_id: Any, tenant: Tenant, cutoff: datetime) -> dict[str, Any]:
    async with db.tenant_session(tenant_id) as session:
        training = await training_rows(session, tenant_id, cutoff, HORIZON_DAYS)
        spec = training.matrix.spec
        # The snapshot at the cut-off, labelled by the 30 days after it.
        scoring = await training_rows(
            session, tenant_id, cutoff + timedelta(days=HORIZON_DAYS), spec=spec, max_snapshots=1
        )
    frame, labels = scoring.matrix.frame, np.asarray(scoring.labels, dtype=float)
    fitting = ~np.asarray(training.holdout, dtype=bool)
    training_labels = np.asarray(training.labels, dtype=float)[fitting]
    scores: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    ours = fit_on(training, spec)
    scores["ours"] = ours.model.predict(frame)
    served = ours.served
    scores["before"] = fit_on(training, before_spec(spec)).model.predict(frame)
    narrow = logistic_28d_spec(spec)
    logistic = LogisticBaseline.fit(logistic_28d_frame(training.matrix.frame[fitting], narrow), narrow, training_labels)
    scores["logistic 28d"] = logistic.predict(logistic_28d_frame(frame, narrow))
    scores["logistic all"] = LogisticBaseline.fit(training.matrix.frame[fitting], spec, training_labels).predict(frame)
    if tenant.oracle is not None:
        hazard = tenant.oracle.hazard_at(cutoff)
        external = await _external_ids(db, tenant_id)
        scores["oracle"] = np.array([hazard[external[customer_id]] for customer_id in scoring.matrix.customer_ids])
    return {
        "cutoff": cutoff.date().isoformat(),
        "training_rows": int(fitting.sum()),
        "training_churners": int(training_labels.sum()),
        "scored": len(labels),
        "churned_within_30_days": int(labels.sum()),
        "features": len(spec.columns),
        "seconds": round(time.perf_counter() - started, 1),
        "roc_auc": {name: _rounded(metrics.roc_auc(labels, values)) for name, values in scores.items()},
        "served": (ours.comparison or {}).get("served"),
        "served_roc_auc": None if served is None else _rounded(metrics.roc_auc(labels, served.predict(frame))),
        "top_features": [item["feature"] for item in ours.importances[:8]],
    }


async def _external_ids(db: Database, tenant_id: Any) -> dict[Any, str]:
    async with db.tenant_session(tenant_id) as session:
        rows = await session.execute(select(Customer.id, Customer.external_id).where(Customer.tenant_id == tenant_id))
        return {customer_id: external for customer_id, external in rows}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def bench_tenant(tenant: Tenant) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="churnsaver-bench-events-") as data_dir:
        async with migrated_database("sqlite", Path(data_dir)) as settings:
            db = Database(settings)
            try:
                created = await create_tenant_with_key(db)
                started = time.perf_counter()
                report = await load_dataset(db, created.id, tenant.dataset)
                load_seconds = round(time.perf_counter() - started, 1)
                cutoffs = [await evaluate_cutoff(db, created.id, tenant, cutoff) for cutoff in CUTOFFS]
            finally:
                await db.dispose()
    return {
        "tenant": tenant.name,
        "customers": len(tenant.dataset.truth),
        "events": report.events,
        "load_seconds": load_seconds,
        "cutoffs": cutoffs,
        "mean_roc_auc": {
            name: round(float(np.mean([cutoff["roc_auc"][name] for cutoff in cutoffs])), 3)
            for name in cutoffs[0]["roc_auc"]
        },
    }


def format_tenant(result: dict[str, Any]) -> str:
    names = list(result["mean_roc_auc"])
    lines = [
        f"== {result['tenant']}: {result['customers']:,} customers, {result['events']:,} events "
        f"(loaded in {result['load_seconds']} s)",
        f"  {'cut-off':<12}{'scored':>8}{'churned':>9}" + "".join(f"{name:>14}" for name in names) + "  served",
    ]
    for cutoff in result["cutoffs"]:
        aucs = "".join(f"{cutoff['roc_auc'][name]:>14.3f}" for name in names)
        served = f"  {cutoff['served']} {cutoff['served_roc_auc']}"
        lines.append(
            f"  {cutoff['cutoff']:<12}{cutoff['scored']:>8}{cutoff['churned_within_30_days']:>9}{aucs}{served}"
        )
    lines.append(f"  {'mean':<29}" + "".join(f"{result['mean_roc_auc'][name]:>14.3f}" for name in names))
    return "\n".join(lines)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.risk.event_streams", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--customers", type=int, default=1_200, help="per synthetic tenant")
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2], help="one synthetic tenant per seed")
    parser.add_argument("--simulator-seeds", type=int, nargs="*", default=[1, 2], help="one simulator tenant per seed")
    parser.add_argument("--simulator-customers", type=int, default=1_500)
    parser.add_argument("--only", choices=("synthetic", "simulator"), help="default: every tenant")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "var" / "bench" / "risk_event_streams.json")
    return parser.parse_args()


async def main() -> None:
    arguments = parse_arguments()
    chosen: list[Callable[[], Tenant]] = []
    if arguments.only != "simulator":
        chosen += [partial(synthetic_tenant, seed, arguments.customers) for seed in arguments.seeds]
    if arguments.only != "synthetic":
        chosen += [partial(simulated_tenant, seed, arguments.simulator_customers) for seed in arguments.simulator_seeds]
    results = []
    for make_tenant in chosen:
        result = await bench_tenant(make_tenant())
        results.append(result)
        print(format_tenant(result), end="\n\n", flush=True)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps({"horizon_days": HORIZON_DAYS, "tenants": results}, indent=2))
    print(f"results written to {arguments.output}")


if __name__ == "__main__":
    asyncio.run(main())
