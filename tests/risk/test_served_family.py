"""The version that scores is the family that ranked the holdout best: CatBoost, the logistic
baseline, or (not activated) the rules; its comparison shows in `riskModels` and `model train --json`."""

import csv
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier

from churnsaver.backend.ingest import imports
from churnsaver.backend.ingest.imports import CustomerColumns
from churnsaver.backend.risk.baseline import LogisticBaseline
from churnsaver.backend.risk.features import FeatureSpec
from churnsaver.backend.risk.model_store import (
    Blend,
    CalibratedCatBoost,
    Calibration,
    catboost_pool,
    load_active_model,
    model_input,
    stored_model,
)
from churnsaver.backend.risk.models import RiskModel
from churnsaver.backend.risk.repository import RiskScoreRepository
from churnsaver.backend.risk.scoring import scoring_model
from churnsaver.backend.risk.tasks import score_every_customer, train_model
from churnsaver.backend.risk.training import AUC_TIE
from churnsaver.tenants.auth import AuthSubject
from tests.fixtures.graphql import graphql

ROWS = 600
COMPARISON = "{ riskModels { version kind active comparison { served reason candidates { family rocAuc prAuc } } } }"


def linear_table(path: Path, seed: int = 3) -> Path:
    """Churn from a sum of twelve small numeric effects: what a logistic regression fits best."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(ROWS, 12))
    labels = rng.random(ROWS) < 1 / (1 + np.exp(-(0.45 * values.sum(axis=1) - 1.0)))
    header = [f"x{index}" for index in range(12)]
    return _write(path, header, values.round(3).tolist(), labels)


def interaction_table(path: Path, seed: int = 4) -> Path:
    """Churn when exactly one of two plans' flags is set: no linear model ranks it."""
    rng = np.random.default_rng(seed)
    first, second = rng.uniform(-1, 1, ROWS), rng.uniform(-1, 1, ROWS)
    labels = ((first > 0) ^ (second > 0)) ^ (rng.random(ROWS) < 0.03)
    return _write(path, ["first", "second"], np.c_[first, second].round(3).tolist(), labels)


def _write(path: Path, header: list[str], values: list[list[float]], labels: np.ndarray) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["customer_id", *header, "churned"])
        for number, (row, label) in enumerate(zip(values, labels, strict=True)):
            writer.writerow([f"c{number:05d}", *row, "yes" if label else "no"])
    return path


async def import_table(db, tenant_id, path: Path) -> None:
    columns = CustomerColumns(label="churned")
    await imports.import_customers(db, tenant_id, path=path, columns=columns, on_progress=lambda _done: None)


async def test_the_logistic_baseline_is_served_when_it_ranks_the_holdout_best(db, tenant, tmp_path):
    await import_table(db, tenant.id, linear_table(tmp_path / "linear.csv"))

    row = await train_model(db, AuthSubject.system(tenant.id))
    report = await score_every_customer(db, tenant.id)

    comparison = row.training_summary["comparison"]
    figures = {item["family"]: item["roc_auc"] for item in comparison["candidates"]}
    assert (row.status, row.kind, row.active, comparison["served"]) == ("ready", "logistic", True, "logistic")
    assert figures["logistic"] > figures["catboost"] and figures["logistic"] > figures["rules"]
    assert comparison["reason"].startswith("logistic ranks the holdout best")
    async with db.tenant_session(tenant.id) as session:
        active = await load_active_model(session, tenant.id)
        scores = list((await session.execute(RiskScoreRepository(session, tenant.id).select_readable())).scalars())
    assert (active.kind, active.version) == ("logistic", row.version)
    # Customers labelled churned are left out of scoring; every other one is scored.
    assert report.model_version == row.version and report.scored + report.churned == ROWS and report.scored > 0
    assert {score.model_version for score in scores} == {row.version}
    assert any(score.reasons for score in scores)


async def test_a_catboost_family_is_served_when_no_linear_model_ranks_the_holdout(db, tenant, tmp_path):
    await import_table(db, tenant.id, interaction_table(tmp_path / "interaction.csv"))

    row = await train_model(db, AuthSubject.system(tenant.id))
    report = await score_every_customer(db, tenant.id)

    comparison = row.training_summary["comparison"]
    figures = {item["family"]: item["roc_auc"] for item in comparison["candidates"]}
    served = comparison["served"]
    assert (row.status, row.kind, row.active) == ("ready", served, True)
    # CatBoost alone or blended with the baseline: whichever ranked the holdout best.
    assert served in ("catboost", "blend")
    assert figures[served] >= max(figures.values()) - AUC_TIE
    assert figures["catboost"] > figures["logistic"] + 0.2
    # Customers labelled churned are left out of scoring; every other one is scored.
    assert report.model_version == row.version and report.scored + report.churned == ROWS and report.scored > 0


def train_by_cli(settings, slug: str) -> subprocess.CompletedProcess[str]:
    """`churnsaver model train --json`, with time for CatBoost's default 1000 trees on a busy machine."""
    env = {**os.environ, "CHURNSAVER_DATA_DIR": str(settings.data_dir), "CHURNSAVER_ENV": "test"}
    env.pop("CHURNSAVER_DATABASE_URL", None)
    if settings.database_url:
        env["CHURNSAVER_DATABASE_URL"] = settings.database_url
    command = [sys.executable, "-m", "churnsaver.backend.cli", "model", "train", "--tenant", slug, "--json"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


async def test_the_comparison_shows_in_risk_models_and_model_train_json(client, db, settings, tenant, tmp_path):
    await import_table(db, tenant.id, linear_table(tmp_path / "linear.csv"))

    trained = train_by_cli(settings, tenant.tenant.slug)
    shown = await graphql(client, COMPARISON, headers=tenant.headers)

    assert trained.returncode == 0, trained.stderr
    payload = json.loads(trained.stdout)
    [model] = shown["data"]["riskModels"]
    assert (payload["kind"], payload["comparison"]["served"]) == ("logistic", "logistic")
    assert (model["kind"], model["active"], model["comparison"]["served"]) == ("logistic", True, "logistic")
    assert model["comparison"]["reason"] == payload["comparison"]["reason"]
    assert [item["family"] for item in model["comparison"]["candidates"]] == ["catboost", "logistic", "rules", "blend"]
    assert model["comparison"]["candidates"][1]["rocAuc"] == payload["comparison"]["candidates"][1]["roc_auc"]


def test_a_blend_and_a_logistic_version_are_stored_loaded_and_scored_like_catboost():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"seats": rng.normal(size=400), "plan": rng.choice(["basic", "pro", "team"], 400)})
    labels = ((frame["seats"] > 0) ^ (frame["plan"] == "basic")).to_numpy(dtype=float)
    spec = FeatureSpec(("seats",), ("plan",))
    catboost = CatBoostClassifier(iterations=30, verbose=False, allow_writing_files=False)
    catboost.fit(catboost_pool(frame, spec, labels))
    blend = Blend(CalibratedCatBoost(catboost, spec, Calibration()), LogisticBaseline.fit(frame, spec, labels))

    for model in (blend, blend.logistic):
        row = RiskModel(id=uuid.uuid4(), version="v7", kind=model.kind)
        row.model_blob, row.feature_spec = model.to_blob(), model.spec_json()
        loaded = stored_model(row)
        probabilities, reasons = scoring_model("v7", loaded).score(model_input(frame, spec))

        assert type(loaded) is type(model)
        assert np.allclose(loaded.predict(frame), model.predict(frame))
        assert np.allclose(probabilities, model.predict(frame))
        assert all(reasons)
