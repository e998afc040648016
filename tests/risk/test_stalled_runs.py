"""A training run whose process is gone (its heartbeat stopped) no longer blocks the next run,
and a redelivered job resumes its version."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.risk.models import RiskModel
from churnsaver.backend.risk.repository import RiskModelRepository
from churnsaver.backend.risk.tasks import train_model
from churnsaver.backend.risk.training import STALE_HEARTBEAT, STOPPED, TrainingRefused, create_version
from churnsaver.tenants.auth import AuthSubject
from tests.risk.test_served_family import import_table, linear_table


async def running_version(db: Database, tenant_id: uuid.UUID, *, heartbeat_age: timedelta) -> uuid.UUID:
    """A version "training" since a minute ago whose last heartbeat is `heartbeat_age` old."""
    row_id = uuid.uuid4()
    async with db.tenant_unit_of_work(tenant_id) as session:
        session.add(
            RiskModel(
                id=row_id,
                tenant_id=tenant_id,
                version="v1",
                kind="catboost",
                status="training",
                progress={"stage": "training", "percent": 20, "heartbeat": (utcnow() - heartbeat_age).isoformat()},
                as_of=utcnow(),
                horizon_days=30,
                created_at=utcnow() - timedelta(minutes=1),
            )
        )
    return row_id


async def version(db: Database, tenant_id: uuid.UUID, row_id: uuid.UUID) -> RiskModel:
    async with db.tenant_session(tenant_id) as session:
        return await RiskModelRepository(session, tenant_id).get_or_raise(row_id, what="risk model")


async def test_a_run_with_a_stale_heartbeat_is_failed_and_the_next_run_starts(db, tenant):
    stalled = await running_version(db, tenant.id, heartbeat_age=STALE_HEARTBEAT + timedelta(seconds=5))

    async with db.tenant_unit_of_work(tenant.id) as session:
        queued = await create_version(session, AuthSubject.system(tenant.id))

    assert (queued.version, queued.status) == ("v2", "queued")
    row = await version(db, tenant.id, stalled)
    assert (row.status, row.error) == ("failed", STOPPED)
    assert row.finished_at is not None


async def test_a_run_with_a_fresh_heartbeat_still_blocks_the_next(db, tenant):
    alive = await running_version(db, tenant.id, heartbeat_age=timedelta(seconds=5))

    with pytest.raises(TrainingRefused, match="training of v1 is already training"):
        async with db.tenant_unit_of_work(tenant.id) as session:
            await create_version(session, AuthSubject.system(tenant.id))

    assert (await version(db, tenant.id, alive)).status == "training"


async def test_a_redelivered_job_resumes_a_stalled_run_but_not_a_live_one(db, tenant, tmp_path):
    await import_table(db, tenant.id, linear_table(tmp_path / "static.csv"))
    live = await running_version(db, tenant.id, heartbeat_age=timedelta(seconds=5))

    untouched = await train_model(db, AuthSubject.system(tenant.id), model_id=live)
    async with db.tenant_unit_of_work(tenant.id) as session:
        await session.execute(
            RiskModelRepository(session, tenant.id)
            .update_owned()
            .where(RiskModel.id == live)
            .values(progress={"stage": "training", "heartbeat": (utcnow() - 2 * STALE_HEARTBEAT).isoformat()})
        )
    resumed = await train_model(db, AuthSubject.system(tenant.id), model_id=live)

    assert untouched.status == "training"
    assert (resumed.status, resumed.active, resumed.progress["stage"]) == ("ready", True, "ready")


async def test_a_killed_training_process_leaves_a_heartbeat_that_goes_stale(db, settings, tenant, tmp_path):
    await import_table(db, tenant.id, linear_table(tmp_path / "static.csv"))
    env = {**os.environ, "CHURNSAVER_DATA_DIR": str(settings.data_dir), "CHURNSAVER_ENV": "test"}
    env.pop("CHURNSAVER_DATABASE_URL", None)
    if settings.database_url:
        env["CHURNSAVER_DATABASE_URL"] = settings.database_url
    command = [sys.executable, "-m", "churnsaver.backend.cli", "model", "train", "--tenant", tenant.tenant.slug]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        row = await _first_version_training(db, tenant.id)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    with pytest.raises(TrainingRefused):  # its heartbeat is fresh: it might be alive
        async with db.tenant_unit_of_work(tenant.id) as session:
            await create_version(session, AuthSubject.system(tenant.id))
    async with db.tenant_unit_of_work(tenant.id) as session:  # STALE_HEARTBEAT later
        beat = utcnow() - STALE_HEARTBEAT - timedelta(seconds=1)
        progress = {**row.progress, "heartbeat": beat.isoformat()}
        await RiskModelRepository(session, tenant.id).set_values(row.id, progress=progress)
    nxt = await train_model(db, AuthSubject.system(tenant.id))

    assert "heartbeat" in row.progress
    assert (await version(db, tenant.id, row.id)).status == "failed"
    assert (nxt.version, nxt.status) == ("v2", "ready")


async def _first_version_training(db: Database, tenant_id: uuid.UUID) -> RiskModel:
    for _ in range(600):
        async with db.tenant_session(tenant_id) as session:
            rows = await RiskModelRepository(session, tenant_id).newest_first()
        if rows and rows[0].status == "training":
            return rows[0]
        await asyncio.sleep(0.1)
    raise AssertionError("the training process never started its run")
