"""The event-stream simulator: deterministic, its planted hazard drives churn, and the model
trained through the real ingest and training path ranks its churners well above chance."""

from datetime import UTC, datetime, timedelta

import numpy as np

from churnsaver.backend.risk.snapshots import training_rows
from churnsaver.backend.risk.training import fit
from churnsaver.backend.synthetic import load_dataset
from churnsaver.backend.synthetic.event_stream import monthly_churn, simulate

START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2025, 9, 1, tzinfo=UTC)


def test_the_same_seed_gives_the_same_stream_and_churn_is_monthly_a_few_percent() -> None:
    first = simulate(3, 40, START, END)
    again = simulate(3, 40, START, END)
    other = simulate(4, 40, START, END)
    assert first.dataset.items == again.dataset.items and np.array_equal(first.hazards, again.hazards)
    assert other.dataset.items != first.dataset.items
    assert 0.03 <= monthly_churn(simulate(3, 300, START, END)) <= 0.15


def test_customers_with_a_higher_true_hazard_churn_more() -> None:
    simulated = simulate(8, 500, START, END)
    cutoff = START + timedelta(days=120)
    hazard = simulated.hazard_at(cutoff)
    truth = simulated.dataset.truth
    alive = [customer for customer, value in hazard.items() if value > 0]
    churned = {
        customer
        for customer in alive
        if (at := truth[customer].churned_at) is not None and cutoff <= at < cutoff + timedelta(days=30)
    }
    ranked = sorted(alive, key=lambda customer: -hazard[customer])
    riskiest, rest = ranked[: len(ranked) // 5], ranked[len(ranked) // 5 :]

    def rate(group: list[str]) -> float:
        return sum(customer in churned for customer in group) / len(group)

    assert rate(riskiest) > 2 * rate(rest)


async def test_the_trained_model_ranks_simulated_churners_well_above_chance(db, tenant) -> None:
    simulated = simulate(21, 250, START, END)
    await load_dataset(db, tenant.id, simulated.dataset)
    async with db.tenant_session(tenant.id) as session:
        # Ten weekly dates keep the fit to seconds; the holdout's two newest still hold churners.
        training_set = await training_rows(session, tenant.id, END - timedelta(days=1), max_snapshots=10)
    trained = fit(training_set)
    assert trained.summary["split"]["holdout"]["churners"] >= 15
    assert trained.metrics["roc_auc"] >= 0.65  # chance is 0.5
