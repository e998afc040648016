"""Rows without dates (customers imported with a label) train through the static path: a random
stratified holdout, CatBoost's defaults with native categorical features, no newest-dates slice."""

import csv
from pathlib import Path

import numpy as np

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.risk.model_store import stored_model
from churnsaver.backend.risk.snapshots import training_rows
from churnsaver.backend.risk.tasks import train_model
from churnsaver.backend.risk.training import is_static
from churnsaver.tenants.auth import AuthSubject
from tests.risk.test_served_family import import_table

ROWS = 600
REGIONS = [f"region-{number}" for number in range(12)]  # more levels than the snapshot path one-hot encodes


def static_table(path: Path, seed: int = 11) -> tuple[Path, int]:
    """A CRM export: an id, a plan, a region, seats, an email (a true id); churn from plan x region."""
    rng = np.random.default_rng(seed)
    churners = 0
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["customer_id", "email", "plan", "region", "seats", "churned"])
        for number in range(ROWS):
            plan, region = rng.choice(["basic", "pro", "team"]), rng.choice(REGIONS)
            risky = (plan == "basic") == (REGIONS.index(region) % 2 == 0)
            churned = rng.random() < (0.6 if risky else 0.1)
            churners += int(churned)
            seats = int(rng.integers(1, 50))
            writer.writerow([f"c{number:04d}", f"c{number}@example.com", plan, region, seats, int(churned)])
    return path, churners


async def test_rows_without_dates_train_through_the_static_path(db, tenant, tmp_path):
    path, churners = static_table(tmp_path / "static.csv")
    await import_table(db, tenant.id, path)

    async with db.tenant_session(tenant.id) as session:
        rows = await training_rows(session, tenant.id, utcnow())
    row = await train_model(db, AuthSubject.system(tenant.id))

    summary = row.training_summary
    held_out_churners = int(rows.labels[rows.holdout].sum())
    assert is_static(rows)
    assert row.status == "ready", row.error
    assert summary["method"] == "static: random stratified holdout, CatBoost defaults"
    assert summary["split"]["validation"]["rows"] == 0
    assert summary["split"]["fit"]["rows"] + summary["split"]["holdout"]["rows"] == ROWS
    assert abs(held_out_churners - churners / 5) <= 1  # stratified: the holdout keeps the churn rate
    assert abs(int(rows.holdout.sum()) - ROWS / 5) <= 2
    assert summary["trees"] == 1000  # CatBoost's default, not an early-stopped count
    assert row.metrics["roc_auc"] > 0.7
    if row.kind == "catboost":  # region's 12 levels go to CatBoost's category statistics, not one-hot
        params = stored_model(row).model.get_all_params()
        assert params.get("one_hot_max_size", 2) <= 2 and "trait.region" in stored_model(row).spec.categorical
