"""GraphQL `riskModels` and `trainRiskModel` over the real HTTP endpoint, tenant by tenant."""

from datetime import timedelta

from sqlalchemy import select

from churnsaver.backend.core.db import utcnow
from churnsaver.backend.risk.snapshots import DEFAULT_HORIZON_DAYS, training_window
from churnsaver.backend.risk.tasks import train_model
from churnsaver.backend.risk.training import EARLIEST_TIME
from churnsaver.jobs.models import OutboxJob
from churnsaver.tenants.auth import AuthSubject
from tests.fixtures.factories import create_api_key_for
from tests.fixtures.graphql import graphql
from tests.risk.test_model_cli import import_crm_export

RISK_MODELS = """
{ riskModels { version kind status progress active error horizonDays createdAt finishedAt
    metrics { rows positives rocAuc prAuc logLoss brier topDecileLift
              calibration { lower upper count meanPredicted observedRate } }
    baselineMetrics { rocAuc prAuc }
    trainingSummary
    featureImportances { feature importance } } }
"""
TRAIN = """
mutation Train($input: TrainRiskModelInput) {
  trainRiskModel(input: $input) {
    __typename
    ... on RiskModelQueued { model { version status progress active } }
    ... on UserError { code message }
  }
}
"""


async def test_risk_models_show_versions_with_metrics_and_stay_in_their_tenant(
    client, db, tenant, other_tenant, tmp_path
):
    await import_crm_export(db, tenant.id, tmp_path / "crm.csv")
    trained = await train_model(db, AuthSubject.system(tenant.id))

    mine = await graphql(client, RISK_MODELS, headers=tenant.headers)
    theirs = await graphql(client, RISK_MODELS, headers=other_tenant.headers)

    [model] = mine["data"]["riskModels"]
    assert (model["version"], model["status"], model["active"]) == ("v1", "ready", True)
    assert model["kind"] == trained.kind == trained.training_summary["comparison"]["served"]
    assert model["metrics"]["rocAuc"] == trained.metrics["roc_auc"]
    assert len(model["metrics"]["calibration"]) == 10
    assert model["baselineMetrics"]["rocAuc"] == trained.baseline_metrics["roc_auc"]
    assert model["trainingSummary"]["activation"]["activated"] is True
    assert model["featureImportances"][0]["feature"] == trained.feature_importances[0]["feature"]
    assert theirs["data"]["riskModels"] == []


async def test_train_risk_model_queues_a_version_with_its_job_once_at_a_time(client, db, tenant, other_tenant):
    first = await graphql(client, TRAIN, {"input": {"force": True}}, headers=tenant.headers)
    second = await graphql(client, TRAIN, headers=tenant.headers)
    elsewhere = await graphql(client, TRAIN, headers=other_tenant.headers)

    queued = first["data"]["trainRiskModel"]
    assert queued["__typename"] == "RiskModelQueued"
    assert queued["model"] == {
        "version": "v1",
        "status": "queued",
        "progress": {"stage": "queued", "percent": 0},
        "active": False,
    }
    assert second["data"]["trainRiskModel"] == {
        "__typename": "UserError",
        "code": "CONFLICT",
        "message": "training of v1 is already queued",
    }
    assert elsewhere["data"]["trainRiskModel"]["model"]["version"] == "v1"  # the other tenant's own v1
    async with db.system_session() as session:
        jobs = (await session.execute(select(OutboxJob).where(OutboxJob.actor_name == "risk.train"))).scalars()
        kwargs = [job.kwargs for job in jobs if job.tenant_id == tenant.id]
    assert len(kwargs) == 1 and kwargs[0]["force"] is True
    listed = await graphql(client, RISK_MODELS, headers=tenant.headers)
    assert [(m["version"], m["status"]) for m in listed["data"]["riskModels"]] == [("v1", "queued")]


async def test_train_risk_model_refuses_the_future_and_needs_the_write_scope(client, db, tenant):
    future = (utcnow() + timedelta(days=2)).isoformat()
    refused = await graphql(client, TRAIN, {"input": {"asOf": future}}, headers=tenant.headers)
    read_only = await create_api_key_for(db, tenant.id, scopes=["read"])
    forbidden = await graphql(client, TRAIN, headers={"Authorization": f"Bearer {read_only}"})

    assert refused["data"]["trainRiskModel"] == {
        "__typename": "UserError",
        "code": "BAD_USER_INPUT",
        "message": "as of must not be in the future",
    }
    assert forbidden["errors"][0]["message"] == "this requires the 'write' scope"
    assert (await graphql(client, RISK_MODELS, headers=tenant.headers))["data"]["riskModels"] == []


async def test_train_risk_model_refuses_an_as_of_without_room_for_the_training_window(client, db, tenant):
    answers = [
        await graphql(client, TRAIN, {"input": {"asOf": as_of}}, headers=tenant.headers)
        for as_of in ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00+01:00", "0001-06-30T00:00:00Z")
    ]
    # Before year 1 once in UTC: the DateTime scalar itself refuses it, naming the value.
    outside = await graphql(client, TRAIN, {"input": {"asOf": "0001-01-01T00:00:00+01:00"}}, headers=tenant.headers)

    for answer in answers:
        assert answer["data"]["trainRiskModel"] == {
            "__typename": "UserError",
            "code": "BAD_USER_INPUT",
            "message": "as of must leave room for the training window: 303 days of history before it",
        }
    assert outside["data"] is None
    assert [error["extensions"]["code"] for error in outside["errors"]] == ["BAD_USER_INPUT"]
    assert (await graphql(client, RISK_MODELS, headers=tenant.headers))["data"]["riskModels"] == []
    async with db.system_session() as session:
        jobs = (await session.execute(select(OutboxJob).where(OutboxJob.tenant_id == tenant.id))).scalars().all()
    assert jobs == []


async def test_a_model_trained_as_of_the_earliest_time_allowed_finishes(db, tenant):
    as_of = EARLIEST_TIME + training_window(DEFAULT_HORIZON_DAYS)

    trained = await train_model(db, AuthSubject.system(tenant.id), as_of=as_of)

    assert trained.status in ("ready", "rejected"), trained.error
