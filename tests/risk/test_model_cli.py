"""`churnsaver model train|evaluate`, run as a real subprocess against the test database."""

import json

from churnsaver.backend.ingest import imports
from churnsaver.backend.ingest.imports import CustomerColumns
from churnsaver.backend.synthetic import crm_export_csv
from churnsaver.backend.synthetic.crm_export import CHURN_DATE_COLUMN, LABEL_COLUMN
from tests.cli.test_cli import run_cli


async def import_crm_export(db, tenant_id, path) -> None:
    export = crm_export_csv(path, seed=8, rows=1500)
    columns = CustomerColumns(label=LABEL_COLUMN, churn_date=CHURN_DATE_COLUMN)
    await imports.import_customers(db, tenant_id, path=export.path, columns=columns, on_progress=lambda _done: None)


async def test_train_prints_both_models_metrics_and_evaluate_recomputes_them(db, settings, tenant, tmp_path):
    await import_crm_export(db, tenant.id, tmp_path / "crm.csv")
    slug = tenant.tenant.slug

    trained = run_cli(settings, "model", "train", "--tenant", slug, "--json")
    table = run_cli(settings, "model", "train", "--tenant", slug)
    evaluated = run_cli(settings, "model", "evaluate", "--tenant", slug, "--json")

    assert trained.returncode == 0, trained.stderr
    payload = json.loads(trained.stdout)
    assert (payload["version"], payload["status"], payload["active"]) == ("v1", "ready", True)
    assert set(payload["metrics"]) >= {"roc_auc", "pr_auc", "log_loss", "brier", "top_decile_lift", "calibration"}
    assert payload["baseline_metrics"]["rows"] == payload["metrics"]["rows"]
    assert table.returncode == 0, table.stderr
    assert "CatBoost" in table.stdout and "logistic baseline" in table.stdout and "ROC-AUC" in table.stdout
    assert "v2 is active: no worse than v1" in table.stdout or "v2 is not active: worse than v1" in table.stdout
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["version"] in ("v1", "v2")
    assert report["metrics"]["rows"] == payload["metrics"]["rows"]


def test_an_unknown_tenant_is_one_clear_line(settings):
    for command in (["train"], ["evaluate", "--json"]):
        result = run_cli(settings, "model", *command, "--tenant", "no-such-tenant")

        assert result.returncode == 1
        assert result.stderr.strip() == "error: tenant 'no-such-tenant' not found"


def test_a_bad_or_future_as_of_is_one_clear_line(settings, tenant):
    slug = tenant.tenant.slug
    bad = run_cli(settings, "model", "train", "--tenant", slug, "--as-of", "last tuesday")
    future = run_cli(settings, "model", "train", "--tenant", slug, "--as-of", "2999-01-01")

    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: --as-of 'last tuesday' is not an ISO 8601 date or time"
    assert future.returncode == 1
    assert future.stderr.strip() == "error: as of must not be in the future"


def test_too_few_churners_and_no_active_model_are_one_clear_line(settings, tenant):
    slug = tenant.tenant.slug
    trained = run_cli(settings, "model", "train", "--tenant", slug, "--json")
    evaluated = run_cli(settings, "model", "evaluate", "--tenant", slug, "--json")

    assert trained.returncode == 1 and trained.stdout == ""
    assert trained.stderr.strip() == (
        "error: 0 labelled churners; a model needs at least 50. The rule-based score stays in use."
    )
    assert evaluated.returncode == 1
    assert "no trained model is active for this tenant" in evaluated.stderr
    assert len(evaluated.stderr.strip().splitlines()) == 1
